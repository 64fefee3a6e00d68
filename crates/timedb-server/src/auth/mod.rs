//! Authentication: from a presented API key to a [`Principal`] (tenant, user, scopes).
//!
//! [`key`] is the key format and its HMAC; [`verifier`] turns a key into a principal
//! with an in-process cache that every running server drops within a fraction of a second
//! of any change (a change counter in the database, polled); [`ratelimit`] and [`usage`]
//! are the per-key limits and use counts. The HTTP layer only calls [`Verifier`].

pub mod key;
pub mod ratelimit;
pub mod usage;
pub mod verifier;

pub use key::{ApiKey, KeyFormat, KeyHasher};
pub use verifier::{AuthConfig, AuthFailure, Principal, Verifier};

use timedb::model::{NewKey, RateLimit, Scopes, Timestamp};

/// A new key and what the store keeps of it. The plaintext goes to its owner once.
pub fn mint(
    format: &KeyFormat,
    hasher: &KeyHasher,
    scopes: Scopes,
    note: Option<String>,
    expires_at: Option<Timestamp>,
    rate_limit: Option<RateLimit>,
) -> (ApiKey, NewKey) {
    let key = format.generate();
    let stored = NewKey { key_id: key.key_id().clone(), hash: hasher.hash(&key), note, scopes, expires_at, rate_limit };
    (key, stored)
}

/// The pepper keys are hashed with: `TIMEDB_SECRET` when set, else the database's own
/// (created on first use). Refuses a pepper other than the one the database's keys were
/// made with, which would otherwise make every key fail with no hint why.
pub async fn resolve_hasher(store: &dyn timedb::Store, secret: Option<&str>) -> anyhow::Result<KeyHasher> {
    let hasher = match secret {
        Some(s) if !s.is_empty() => KeyHasher::new(s.as_bytes()),
        _ => KeyHasher::new(&store.database_pepper(key::random_pepper()).await?),
    };
    if store.claim_pepper_fingerprint(&hasher.fingerprint()).await?.is_some() {
        anyhow::bail!(
            "the key secret in use does not match the one this database's API keys were made with: \
             {}; every key would be refused",
            if secret.is_some_and(|s| !s.is_empty()) {
                "TIMEDB_SECRET differs from the original (set the original TIMEDB_SECRET, or unset it if keys were made without one)"
            } else {
                "the keys were made with TIMEDB_SECRET set (set it again)"
            }
        );
    }
    Ok(hasher)
}
