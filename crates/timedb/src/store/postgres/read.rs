//! Reads: series and run listings, and the streaming value read.
//!
//! The value read is the SQLite backend's statement (same filters, same order: all
//! versions of one value key adjacent, preferred run first), so the flat selection is
//! the same single pass that keeps the first run seen per key, and both backends pick
//! the same rows. Rows are pulled through a portal `BATCH_ROWS` at a time inside a
//! read-only transaction: memory stays at one batch however large the result, and a
//! client that goes away stops the read at the next batch instead of leaving the
//! server to send the rest.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Object, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Portal, Row};

use super::{backend, tenant_tid};
use crate::model::time::{from_micros, to_micros};
use crate::model::{
    Labels, ReadMode, Run, RunFilter, RunId, Series, SeriesFilter, SeriesId, SeriesInfo, SeriesKey, Tags, TenantId,
    Unit, ValueId, ValueQuery, ValueRecord, WorkflowId,
};
use crate::store::StoreError;
use crate::store::stream::{BATCH_ROWS, Batch};

const SERIES_COLUMNS: &str = "sid, series_id, series_key, description, unit, labels, created_at";

fn series_from_row(r: &Row) -> Result<(i64, Series), tokio_postgres::Error> {
    Ok((
        r.try_get(0)?,
        Series {
            series_id: SeriesId(r.try_get(1)?),
            key: SeriesKey::from_stored(r.try_get(2)?),
            description: r.try_get(3)?,
            unit: Unit::from_stored(r.try_get(4)?),
            labels: Labels::from_json(r.try_get(5)?),
            created_at: from_micros(r.try_get(6)?).unwrap_or_default(),
        },
    ))
}

pub(super) async fn load_series_by_key(
    client: &impl GenericClient,
    tid: i64,
    key: &str,
) -> Result<Option<(i64, Series)>, StoreError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM series WHERE tid = $1 AND series_key = $2"))
        .await
        .map_err(backend)?;
    let row = client.query_opt(&stmt, &[&tid, &key]).await.map_err(backend)?;
    row.as_ref().map(series_from_row).transpose().map_err(backend)
}

pub(super) async fn load_series_by_id(
    client: &impl GenericClient,
    tid: i64,
    id: SeriesId,
) -> Result<Option<(i64, Series)>, StoreError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM series WHERE tid = $1 AND series_id = $2"))
        .await
        .map_err(backend)?;
    let row = client.query_opt(&stmt, &[&tid, &id.0]).await.map_err(backend)?;
    row.as_ref().map(series_from_row).transpose().map_err(backend)
}

/// Every series of the tenant that passes the filter, ordered by key.
async fn matching_series(
    client: &impl GenericClient,
    tid: i64,
    filter: &SeriesFilter,
) -> Result<Vec<(i64, Series)>, StoreError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {SERIES_COLUMNS} FROM series WHERE tid = $1 ORDER BY series_key"))
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[&tid]).await.map_err(backend)?;
    let mut out = Vec::new();
    for row in &rows {
        let (sid, series) = series_from_row(row).map_err(backend)?;
        if filter.matches(&series) {
            out.push((sid, series));
        }
    }
    Ok(out)
}

pub(super) async fn list_series(
    client: &Object,
    tenant: TenantId,
    filter: &SeriesFilter,
) -> Result<Vec<Series>, StoreError> {
    let Some(tid) = tenant_tid(client, tenant).await? else {
        return Ok(Vec::new());
    };
    Ok(matching_series(client, tid, filter).await?.into_iter().map(|(_, s)| s).collect())
}

pub(super) async fn get_series(client: &Object, tenant: TenantId, id: SeriesId) -> Result<Series, StoreError> {
    let not_found = || StoreError::NotFound(format!("series {id}"));
    let tid = tenant_tid(client, tenant).await?.ok_or_else(not_found)?;
    load_series_by_id(client, tid, id).await?.map(|(_, s)| s).ok_or_else(not_found)
}

const RUN_COLUMNS: &str = "run_id, workflow_id, run_start_time, run_finish_time, known_time, run_params, \
                           inserted_at, created_by, value_count";

fn run_from_row(r: &Row) -> Result<Run, tokio_postgres::Error> {
    let ts = |i: usize| -> Result<_, tokio_postgres::Error> { Ok(from_micros(r.try_get(i)?).unwrap_or_default()) };
    Ok(Run {
        run_id: RunId(r.try_get(0)?),
        workflow_id: WorkflowId::from_stored(r.try_get(1)?),
        run_start_time: ts(2)?,
        run_finish_time: r.try_get::<_, Option<i64>>(3)?.and_then(from_micros),
        known_time: ts(4)?,
        run_params: r
            .try_get::<_, Option<&str>>(5)?
            .and_then(|t| serde_json::from_str::<serde_json::Map<_, _>>(t).ok()),
        inserted_at: ts(6)?,
        created_by: r.try_get(7)?,
        value_count: r.try_get(8)?,
    })
}

pub(super) async fn list_runs(client: &Object, tenant: TenantId, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
    let Some(tid) = tenant_tid(client, tenant).await? else {
        return Ok(Vec::new());
    };
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE tid = $1");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tid)];
    if let Some(w) = &filter.workflow_id {
        args.push(Box::new(w.as_str().to_owned()));
        let _ = write!(sql, " AND workflow_id = ${}", args.len());
    }
    if let Some(t) = filter.start_known {
        args.push(Box::new(to_micros(t)));
        let _ = write!(sql, " AND known_time >= ${}", args.len());
    }
    if let Some(t) = filter.end_known {
        args.push(Box::new(to_micros(t)));
        let _ = write!(sql, " AND known_time < ${}", args.len());
    }
    args.push(Box::new(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
    let _ = write!(sql, " ORDER BY known_time DESC, inserted_at DESC, rid DESC LIMIT ${}", args.len());
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &borrowed(&args)).await.map_err(backend)?;
    rows.iter().map(run_from_row).collect::<Result<_, _>>().map_err(backend)
}

pub(super) async fn get_run(client: &Object, tenant: TenantId, id: RunId) -> Result<Run, StoreError> {
    let not_found = || StoreError::NotFound(format!("run {id}"));
    let tid = tenant_tid(client, tenant).await?.ok_or_else(not_found)?;
    let stmt = client
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE tid = $1 AND run_id = $2"))
        .await
        .map_err(backend)?;
    let row = client.query_opt(&stmt, &[&tid, &id.0]).await.map_err(backend)?;
    row.as_ref().map(run_from_row).transpose().map_err(backend)?.ok_or_else(not_found)
}

fn borrowed(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect()
}

/// Build the statement for a value read (the SQLite backend's, in PostgreSQL's
/// dialect). Only which filters are present shapes the text, and the series set is
/// one array parameter, so the statement cache holds a handful of variants.
fn value_sql(query: &ValueQuery, tid: i64, sids: Option<Vec<i64>>) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from(
        "SELECT v.sid, v.vt, v.vte, v.rid, v.value_id, v.value, v.annotation, v.tags, v.changed_by,
                v.change_time, v.is_current, r.known_time, r.run_id
         FROM value_versions v
         JOIN runs r ON r.tid = v.tid AND r.rid = v.rid
         JOIN series s ON s.tid = v.tid AND s.sid = v.sid
         WHERE v.tid = $1",
    );
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tid)];
    let mut bind = |sql: &mut String, clause: &str, t: Option<crate::model::Timestamp>| {
        if let Some(t) = t {
            args.push(Box::new(to_micros(t)));
            let _ = write!(sql, " AND {clause} ${}", args.len());
        }
    };
    bind(&mut sql, "v.vt >=", query.start_valid);
    bind(&mut sql, "v.vt <", query.end_valid);
    bind(&mut sql, "r.known_time >=", query.start_known);
    bind(&mut sql, "r.known_time <", query.end_known);
    if !query.all_versions {
        sql.push_str(" AND v.is_current");
    }
    if let Some(sids) = sids {
        args.push(Box::new(sids));
        let _ = write!(sql, " AND v.sid = ANY(${})", args.len());
    }
    sql.push_str(match query.mode {
        // All rows of one value key adjacent, preferred run first, versions oldest first.
        // `series_key` is `COLLATE "C"`, so keys sort bytewise as in SQLite.
        ReadMode::Flat => {
            " ORDER BY v.vt, s.series_key, v.sid, v.vte, r.known_time DESC, r.inserted_at DESC, v.rid DESC, v.version"
        }
        ReadMode::Overlapping => {
            " ORDER BY r.known_time, v.vt, s.series_key, v.sid, v.vte, r.inserted_at, v.rid, v.version"
        }
    });
    (sql, args)
}

/// What a value read needs once its statement is bound.
struct Started<'a> {
    tx: Transaction<'a>,
    portal: Portal,
    infos: HashMap<i64, Arc<SeriesInfo>>,
}

/// Resolve the tenant and series, open the read transaction and bind the statement.
/// `None` when the read cannot match anything (unknown tenant, no matching series).
async fn start<'a>(
    client: &'a mut Object,
    tenant: TenantId,
    query: &ValueQuery,
) -> Result<Option<Started<'a>>, StoreError> {
    let Some(tid) = tenant_tid(&*client, tenant).await? else {
        return Ok(None);
    };
    let selective = !query.series.keys.is_empty() || !query.series.ids.is_empty() || query.series.labels.is_some();
    let series = matching_series(&*client, tid, &query.series).await?;
    if selective && series.is_empty() {
        return Ok(None);
    }
    let infos: HashMap<i64, Arc<SeriesInfo>> = series
        .into_iter()
        .map(|(sid, s)| (sid, Arc::new(SeriesInfo { series_id: s.series_id, key: s.key, unit: s.unit })))
        .collect();
    let sids = selective.then(|| infos.keys().copied().collect());
    let (sql, args) = value_sql(query, tid, sids);
    // A portal lives only inside a transaction; read-only says what this one is for.
    let tx = client.build_transaction().read_only(true).start().await.map_err(backend)?;
    let stmt = tx.prepare_cached(&sql).await.map_err(backend)?;
    let portal = tx.bind(&stmt, &borrowed(&args)).await.map_err(backend)?;
    Ok(Some(Started { tx, portal, infos }))
}

/// Run a value read on its own connection, signalling `ready` once the statement is
/// bound, then sending batches until done or until the receiver is gone.
pub(super) async fn stream_values(
    mut client: Object,
    tenant: TenantId,
    query: ValueQuery,
    ready: oneshot::Sender<Result<(), StoreError>>,
    out: mpsc::Sender<Batch>,
) {
    let started = match start(&mut client, tenant, &query).await {
        Ok(Some(started)) => started,
        Ok(None) => {
            let _ = ready.send(Ok(()));
            return;
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    if let Err(e) = pump(&started, &query, &out).await {
        let _ = out.send(Err(e)).await;
    }
    // Dropping the transaction rolls it back: it only read.
}

async fn pump(started: &Started<'_>, query: &ValueQuery, out: &mpsc::Sender<Batch>) -> Result<(), StoreError> {
    let Started { tx, portal, infos } = started;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    // Flat selection state: the value key being read and the run chosen for it.
    let mut last_key: Option<(i64, i64, i64)> = None;
    let mut chosen_rid = 0i64;
    loop {
        let rows = tx.query_portal(portal, BATCH_ROWS as i32).await.map_err(backend)?;
        let exhausted = rows.len() < BATCH_ROWS;
        for r in &rows {
            let sid: i64 = r.try_get(0).map_err(backend)?;
            let vt: i64 = r.try_get(1).map_err(backend)?;
            let vte: i64 = r.try_get(2).map_err(backend)?;
            let rid: i64 = r.try_get(3).map_err(backend)?;
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
            let record = (|| -> Result<ValueRecord, tokio_postgres::Error> {
                Ok(ValueRecord {
                    series: series.clone(),
                    valid_time: from_micros(vt).unwrap_or_default(),
                    valid_time_end: (vte != vt).then(|| from_micros(vte).unwrap_or_default()),
                    value_id: ValueId(r.try_get(4)?),
                    value: r.try_get(5)?,
                    annotation: r.try_get(6)?,
                    tags: r.try_get::<_, Option<&str>>(7)?.and_then(Tags::from_json),
                    changed_by: r.try_get(8)?,
                    change_time: from_micros(r.try_get(9)?).unwrap_or_default(),
                    is_current: r.try_get(10)?,
                    known_time: from_micros(r.try_get(11)?).unwrap_or_default(),
                    run_id: RunId(r.try_get(12)?),
                })
            })()
            .map_err(backend)?;
            batch.push(record);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if out.send(Ok(full)).await.is_err() {
                    return Ok(()); // the client went away
                }
            }
        }
        if exhausted {
            break;
        }
    }
    if !batch.is_empty() {
        let _ = out.send(Ok(batch)).await;
    }
    Ok(())
}
