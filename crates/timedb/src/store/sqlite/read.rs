//! Reads: series and run listings, and the streaming value read.
//!
//! The value read is one SQL statement ordered so that all versions of one value key
//! are adjacent, with the preferred run first; the flat selection ("latest known run
//! wins") is then a single streaming pass that keeps only the first run seen per key.
//! Nothing is collected: rows go out in batches through a bounded channel.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tokio::sync::{mpsc, oneshot};

use super::{backend, tenant_tid, uuid_from};
use crate::model::time::{from_micros, to_micros};
use crate::model::{
    Labels, ReadMode, Run, RunFilter, RunId, Series, SeriesFilter, SeriesId, SeriesInfo, SeriesKey, Tags, TenantId,
    Unit, ValueId, ValueQuery, ValueRecord, WorkflowId,
};
use crate::store::StoreError;
use crate::store::stream::{BATCH_ROWS, Batch};

const SERIES_COLUMNS: &str = "sid, series_id, series_key, description, unit, labels, created_at";

fn series_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Series)> {
    Ok((
        r.get(0)?,
        Series {
            series_id: SeriesId::from_bytes(uuid_from(r, 1)?),
            key: SeriesKey::from_stored(r.get(2)?),
            description: r.get(3)?,
            unit: Unit::from_stored(r.get(4)?),
            labels: Labels::from_json(&r.get::<_, String>(5)?),
            created_at: from_micros(r.get(6)?).unwrap_or_default(),
        },
    ))
}

pub(super) fn load_series_by_key(conn: &Connection, tid: i64, key: &str) -> Result<Option<(i64, Series)>, StoreError> {
    conn.prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM series WHERE tid = ?1 AND series_key = ?2"))
        .and_then(|mut s| s.query_row(params![tid, key], series_from_row).optional())
        .map_err(backend)
}

pub(super) fn load_series_by_id(
    conn: &Connection,
    tid: i64,
    id: SeriesId,
) -> Result<Option<(i64, Series)>, StoreError> {
    conn.prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM series WHERE tid = ?1 AND series_id = ?2"))
        .and_then(|mut s| s.query_row(params![tid, &id.as_bytes()[..]], series_from_row).optional())
        .map_err(backend)
}

/// Every series of the tenant that passes the filter, ordered by key.
fn matching_series(conn: &Connection, tid: i64, filter: &SeriesFilter) -> Result<Vec<(i64, Series)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM series WHERE tid = ?1 ORDER BY series_key"))
        .map_err(backend)?;
    let rows = stmt.query_map(params![tid], series_from_row).map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (sid, series) = row.map_err(backend)?;
        if filter.matches(&series) {
            out.push((sid, series));
        }
    }
    Ok(out)
}

pub(super) fn list_series(
    conn: &Connection,
    tenant: TenantId,
    filter: &SeriesFilter,
) -> Result<Vec<Series>, StoreError> {
    let Some(tid) = tenant_tid(conn, tenant)? else {
        return Ok(Vec::new());
    };
    Ok(matching_series(conn, tid, filter)?.into_iter().map(|(_, s)| s).collect())
}

pub(super) fn get_series(conn: &Connection, tenant: TenantId, id: SeriesId) -> Result<Series, StoreError> {
    let tid = tenant_tid(conn, tenant)?;
    tid.map(|tid| load_series_by_id(conn, tid, id))
        .transpose()?
        .flatten()
        .map(|(_, s)| s)
        .ok_or_else(|| StoreError::NotFound(format!("series {id}")))
}

const RUN_COLUMNS: &str = "run_id, workflow_id, run_start_time, run_finish_time, known_time, run_params, \
                           inserted_at, created_by, value_count";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    let ts = |i: usize| -> rusqlite::Result<_> { Ok(from_micros(r.get(i)?).unwrap_or_default()) };
    Ok(Run {
        run_id: RunId::from_bytes(uuid_from(r, 0)?),
        workflow_id: WorkflowId::from_stored(r.get(1)?),
        run_start_time: ts(2)?,
        run_finish_time: r.get::<_, Option<i64>>(3)?.and_then(from_micros),
        known_time: ts(4)?,
        run_params: r.get::<_, Option<String>>(5)?.and_then(|t| serde_json::from_str::<serde_json::Map<_, _>>(&t).ok()),
        inserted_at: ts(6)?,
        created_by: r.get(7)?,
        value_count: r.get(8)?,
    })
}

pub(super) fn list_runs(conn: &Connection, tenant: TenantId, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
    let Some(tid) = tenant_tid(conn, tenant)? else {
        return Ok(Vec::new());
    };
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE tid = ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![tid.into()];
    if let Some(w) = &filter.workflow_id {
        args.push(w.as_str().to_owned().into());
        let _ = write!(sql, " AND workflow_id = ?{}", args.len());
    }
    if let Some(t) = filter.start_known {
        args.push(to_micros(t).into());
        let _ = write!(sql, " AND known_time >= ?{}", args.len());
    }
    if let Some(t) = filter.end_known {
        args.push(to_micros(t).into());
        let _ = write!(sql, " AND known_time < ?{}", args.len());
    }
    args.push((filter.limit as i64).into());
    let _ = write!(sql, " ORDER BY known_time DESC, inserted_at DESC, rid DESC LIMIT ?{}", args.len());
    // Bounded shapes (three optional filters), so the statement cache applies here too.
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt.query_map(params_from_iter(args), run_from_row).map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

pub(super) fn get_run(conn: &Connection, tenant: TenantId, id: RunId) -> Result<Run, StoreError> {
    let not_found = || StoreError::NotFound(format!("run {id}"));
    let tid = tenant_tid(conn, tenant)?.ok_or_else(not_found)?;
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE tid = ?1 AND run_id = ?2"))
        .and_then(|mut s| s.query_row(params![tid, &id.as_bytes()[..]], run_from_row).optional())
        .map_err(backend)?
        .ok_or_else(not_found)
}

/// Build the statement for a value read; every value is bound, so the text depends only
/// on the query's shape (which bounds are given, the mode, history, whether series are
/// selected): at most 2^4 * 2 * 2 * 2 = 128 texts, which is what lets the statement
/// cache ([`Connection::prepare_cached`]) hit instead of re-planning every read. The
/// selected series travel as one JSON array (`IN (SELECT value FROM json_each(?))`), so
/// their number does not change the text either.
fn value_sql(query: &ValueQuery, sids: Option<&[i64]>) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::from(
        "SELECT v.sid, v.vt, v.vte, v.rid, v.value_id, v.value, v.annotation, v.tags, v.changed_by,
                v.change_time, v.is_current, r.known_time, r.run_id
         FROM value_versions v
         JOIN runs r ON r.tid = v.tid AND r.rid = v.rid
         JOIN series s ON s.tid = v.tid AND s.sid = v.sid
         WHERE v.tid = ?1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, t: Option<crate::model::Timestamp>| {
        if let Some(t) = t {
            args.push(to_micros(t).into());
            let _ = write!(sql, " AND {clause} ?{}", args.len() + 1);
        }
    };
    bind(&mut sql, "v.vt >=", query.start_valid);
    bind(&mut sql, "v.vt <", query.end_valid);
    bind(&mut sql, "r.known_time >=", query.start_known);
    bind(&mut sql, "r.known_time <", query.end_known);
    if !query.all_versions {
        sql.push_str(" AND v.is_current = 1");
    }
    if let Some(sids) = sids {
        let mut list = String::with_capacity(sids.len() * 8 + 2);
        list.push('[');
        for (i, sid) in sids.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            let _ = write!(list, "{sid}");
        }
        list.push(']');
        args.push(list.into());
        let _ = write!(sql, " AND v.sid IN (SELECT value FROM json_each(?{}))", args.len() + 1);
    }
    sql.push_str(match query.mode {
        // All rows of one value key adjacent, preferred run first, versions oldest first.
        ReadMode::Flat => {
            " ORDER BY v.vt, s.series_key, v.sid, v.vte, r.known_time DESC, r.inserted_at DESC, v.rid DESC, v.version"
        }
        ReadMode::Overlapping => {
            " ORDER BY r.known_time, v.vt, s.series_key, v.sid, v.vte, r.inserted_at, v.rid, v.version"
        }
    });
    (sql, args)
}

/// Run a value read, signalling `ready` once the statement is prepared, then sending
/// batches until done or until the receiver is gone.
pub(super) fn stream_values(
    conn: &Connection,
    tenant: TenantId,
    query: &ValueQuery,
    ready: oneshot::Sender<Result<(), StoreError>>,
    tx: &mpsc::Sender<Batch>,
) -> Result<(), StoreError> {
    let prepared = (|| {
        let Some(tid) = tenant_tid(conn, tenant)? else {
            return Ok(None);
        };
        let selective = !query.series.keys.is_empty() || !query.series.ids.is_empty() || query.series.labels.is_some();
        let series = matching_series(conn, tid, &query.series)?;
        if selective && series.is_empty() {
            return Ok(None);
        }
        let infos: HashMap<i64, Arc<SeriesInfo>> = series
            .into_iter()
            .map(|(sid, s)| (sid, Arc::new(SeriesInfo { series_id: s.series_id, key: s.key, unit: s.unit })))
            .collect();
        let sids: Option<Vec<i64>> = selective.then(|| infos.keys().copied().collect());
        let (sql, args) = value_sql(query, sids.as_deref());
        let stmt = conn.prepare_cached(&sql).map_err(backend)?;
        Ok(Some((tid, infos, stmt, args)))
    })();
    let (tid, infos, mut stmt, args) = match prepared {
        Ok(Some(p)) => {
            let _ = ready.send(Ok(()));
            p
        }
        Ok(None) => {
            let _ = ready.send(Ok(()));
            return Ok(());
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };

    let mut params: Vec<rusqlite::types::Value> = Vec::with_capacity(args.len() + 1);
    params.push(tid.into());
    params.extend(args);
    let result = (|| -> Result<(), StoreError> {
        let mut rows = stmt.query(params_from_iter(params)).map_err(backend)?;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        // Flat selection state: the value key being read and the run chosen for it.
        let mut last_key: Option<(i64, i64, i64)> = None;
        let mut chosen_rid = 0i64;
        while let Some(r) = rows.next().map_err(backend)? {
            let sid: i64 = r.get(0).map_err(backend)?;
            let vt: i64 = r.get(1).map_err(backend)?;
            let vte: i64 = r.get(2).map_err(backend)?;
            let rid: i64 = r.get(3).map_err(backend)?;
            if query.mode == ReadMode::Flat {
                let key = (sid, vt, vte);
                if last_key != Some(key) {
                    last_key = Some(key);
                    chosen_rid = rid;
                } else if rid != chosen_rid || !query.all_versions {
                    continue;
                }
            }
            let Some(series) = infos.get(&sid) else { continue };
            let record = (|| -> rusqlite::Result<ValueRecord> {
                Ok(ValueRecord {
                    series: series.clone(),
                    valid_time: from_micros(vt).unwrap_or_default(),
                    valid_time_end: (vte != vt).then(|| from_micros(vte).unwrap_or_default()),
                    value_id: ValueId(r.get(4)?),
                    value: r.get(5)?,
                    annotation: r.get(6)?,
                    tags: r.get::<_, Option<String>>(7)?.and_then(|t| Tags::from_json(&t)),
                    changed_by: r.get(8)?,
                    change_time: from_micros(r.get(9)?).unwrap_or_default(),
                    is_current: r.get::<_, i64>(10)? != 0,
                    known_time: from_micros(r.get(11)?).unwrap_or_default(),
                    run_id: RunId::from_bytes(uuid_from(r, 12)?),
                })
            })()
            .map_err(backend)?;
            batch.push(record);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if tx.blocking_send(Ok(full)).is_err() {
                    return Ok(()); // the client went away
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
    Ok(())
}
