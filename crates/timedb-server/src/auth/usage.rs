//! Usage tracking: `use_count` and `last_used_at` per key, aggregated in memory and
//! written in one batch every few seconds and at shutdown — never a database write per
//! request. A failed flush keeps its counts for the next one, so none are lost.

use std::collections::HashMap;
use std::sync::Mutex;

use timedb::model::{KeyId, Timestamp, UsageDelta};
use timedb::{Store, TenantId};

#[derive(Default)]
pub struct Usage {
    // A std mutex: held for a hash-map update only, never across an await.
    pending: Mutex<HashMap<(TenantId, KeyId), (i64, Timestamp)>>,
}

impl Usage {
    /// Count one use.
    pub fn record(&self, tenant: TenantId, key_id: &KeyId, at: Timestamp) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(&(tenant, key_id.clone())) {
            Some((count, last)) => {
                *count += 1;
                if at > *last {
                    *last = at;
                }
            }
            None => {
                pending.insert((tenant, key_id.clone()), (1, at));
            }
        }
    }

    /// Write everything counted so far.
    pub async fn flush(&self, store: &dyn Store) {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.is_empty() {
            return;
        }
        let deltas: Vec<UsageDelta> = taken
            .iter()
            .map(|((tenant, key_id), (count, at))| UsageDelta {
                tenant: *tenant,
                key_id: key_id.clone(),
                count: *count,
                last_used_at: *at,
            })
            .collect();
        if let Err(e) = store.record_usage(deltas).await {
            tracing::warn!(error = %e, "could not flush key usage; keeping the counts for the next flush");
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (k, (count, at)) in taken {
                let entry = pending.entry(k).or_insert((0, at));
                entry.0 += count;
                if at > entry.1 {
                    entry.1 = at;
                }
            }
        }
    }
}
