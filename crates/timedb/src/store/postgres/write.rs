//! Writes: series get-or-create, atomic run inserts, and versioned corrections, safe
//! when many connections from many processes write at once.
//!
//! SQLite serialises writers with one lock; here the rules are kept row by row.
//! Get-or-create inserts with `ON CONFLICT DO NOTHING` and reads back whatever won, so
//! two uploads racing on one new key end with one series. New series are created in
//! key order, so two uploads creating the same keys wait for each other instead of
//! deadlocking. A correction batch locks the versions it supersedes (`FOR UPDATE`, in
//! key order, for the same reason) and re-checks that each is still current, so
//! concurrent corrections of one value queue up and each lands in the history; the partial unique index on current versions is the
//! backstop. Values go in with binary `COPY` inside the run's transaction: a run is
//! visible whole or not at all, at the speed of PostgreSQL's bulk path.

use std::pin::pin;

use deadpool_postgres::{GenericClient, Object, Transaction};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::read::{load_series_by_id, load_series_by_key};
use super::{backend, is_retryable, tenant_tid};
use crate::model::time::{format_timestamp, from_micros, now, to_micros};
use crate::model::{
    ModelError, NewRun, RunId, RunReceipt, Series, SeriesId, SeriesKey, SeriesSpec, Tags, TenantId, Timestamp, Unit,
    UpdateOutcome, UpdateReport, ValueAddress, ValueId, ValueUpdate,
};
use crate::store::StoreError;

/// Runs of at least this many values refresh the planner's statistics afterwards.
const ANALYZE_AFTER: i64 = 100_000;

/// Times a correction batch is run again after PostgreSQL aborted it to break a
/// deadlock (two batches correcting the same values in opposite orders).
const MAX_ATTEMPTS: usize = 5;
/// Times one correction re-reads a value whose current version other writers keep
/// replacing; each retry means another writer's correction has committed.
const MAX_LOCK_ATTEMPTS: usize = 1000;

pub(super) async fn tenant_tid_or_create(tx: &Transaction<'_>, tenant: TenantId) -> Result<i64, StoreError> {
    if let Some(tid) = tenant_tid(tx, tenant).await? {
        return Ok(tid);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO tenants (tenant_id, created_at) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .await
        .map_err(backend)?;
    tx.execute(&stmt, &[&tenant.0, &to_micros(now())]).await.map_err(backend)?;
    // Ours, or the one a concurrent writer committed first.
    tenant_tid(tx, tenant)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("tenant {tenant} vanished while being created")))
}

/// Compare a re-declared series with the stored one: every field the client gave must
/// match, or the definitions conflict. (The same rules and words as the SQLite backend.)
fn check_compatible(stored: &Series, spec: &SeriesSpec) -> Result<(), StoreError> {
    let key = stored.key.as_str();
    if let Some(unit) = &spec.unit
        && unit != &stored.unit
    {
        return Err(StoreError::Conflict(format!(
            "series '{key}' exists with unit '{}', not '{}'",
            stored.unit.as_str(),
            unit.as_str()
        )));
    }
    if let Some(desc) = &spec.description
        && Some(desc) != stored.description.as_ref()
    {
        return Err(StoreError::Conflict(format!("series '{key}' exists with a different description")));
    }
    if let Some(labels) = &spec.labels
        && labels != &stored.labels
    {
        return Err(StoreError::Conflict(format!("series '{key}' exists with different labels")));
    }
    Ok(())
}

/// The series' internal id, creating the series when the key is new.
async fn get_or_create_series(
    tx: &Transaction<'_>,
    tid: i64,
    spec: &SeriesSpec,
    created_at: Timestamp,
) -> Result<(i64, Series, bool), StoreError> {
    if let Some((sid, stored)) = load_series_by_key(tx, tid, spec.key.as_str()).await? {
        check_compatible(&stored, spec)?;
        return Ok((sid, stored, false));
    }
    let series = Series {
        series_id: SeriesId::random(),
        key: spec.key.clone(),
        description: spec.description.clone(),
        unit: spec.unit.clone().unwrap_or_else(|| Unit::from_stored(Unit::DEFAULT.to_owned())),
        labels: spec.labels.clone().unwrap_or_default(),
        created_at,
    };
    let stmt = tx
        .prepare_cached(
            "INSERT INTO series (tid, series_id, series_key, description, unit, labels, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tid, series_key) DO NOTHING
             RETURNING sid",
        )
        .await
        .map_err(backend)?;
    let inserted = tx
        .query_opt(
            &stmt,
            &[
                &tid,
                &series.series_id.0,
                &series.key.as_str(),
                &series.description,
                &series.unit.as_str(),
                &series.labels.to_json(),
                &to_micros(created_at),
            ],
        )
        .await
        .map_err(backend)?;
    if let Some(row) = inserted {
        return Ok((row.get(0), series, true));
    }
    // Another writer created the key between our look-up and our insert; its series
    // is the one, and it must agree with what this client declared.
    let (sid, stored) = load_series_by_key(tx, tid, spec.key.as_str())
        .await?
        .ok_or_else(|| StoreError::Backend(format!("series '{}' vanished while being created", spec.key)))?;
    check_compatible(&stored, spec)?;
    Ok((sid, stored, false))
}

pub(super) async fn upsert_series(
    client: &mut Object,
    tenant: TenantId,
    spec: SeriesSpec,
) -> Result<(Series, bool), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let tid = tenant_tid_or_create(&tx, tenant).await?;
    let (_, series, created) = get_or_create_series(&tx, tid, &spec, now()).await?;
    tx.commit().await.map_err(backend)?;
    Ok((series, created))
}

pub(super) async fn insert_run(
    client: &mut Object,
    tenant: TenantId,
    run: NewRun,
    created_by: Option<String>,
) -> Result<RunReceipt, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let tid = tenant_tid_or_create(&tx, tenant).await?;
    let inserted_at = now();
    let known_time = run.known_time.unwrap_or(inserted_at);

    // Resolve the series that exist, in upload order, so the first bad reference is
    // the one reported (as the SQLite backend reports it).
    let mut resolved: Vec<Option<(i64, Series)>> = Vec::with_capacity(run.series.len());
    for sref in &run.series {
        let found = match sref.id {
            Some(id) => {
                let (sid, stored) = load_series_by_id(&tx, tid, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("series {id}")))?;
                if stored.key != sref.spec.key {
                    return Err(ModelError::new(
                        "series_id",
                        format!(
                            "series {id} has key '{}', but the rows name it '{}'",
                            stored.key.as_str(),
                            sref.spec.key.as_str()
                        ),
                    )
                    .into());
                }
                check_compatible(&stored, &sref.spec)?;
                Some((sid, stored))
            }
            None => match load_series_by_key(&tx, tid, sref.spec.key.as_str()).await? {
                Some((sid, stored)) => {
                    check_compatible(&stored, &sref.spec)?;
                    Some((sid, stored))
                }
                None => None,
            },
        };
        resolved.push(found);
    }
    // Create the new ones in key order: uploads racing on the same new keys then take
    // their row locks in one order and wait for each other rather than deadlock.
    let mut missing: Vec<usize> = (0..resolved.len()).filter(|&i| resolved[i].is_none()).collect();
    missing.sort_by(|&a, &b| run.series[a].spec.key.cmp(&run.series[b].spec.key));
    for i in missing {
        let (sid, series, _) = get_or_create_series(&tx, tid, &run.series[i].spec, inserted_at).await?;
        resolved[i] = Some((sid, series));
    }
    let mut sids = Vec::with_capacity(resolved.len());
    let mut series_ids = Vec::with_capacity(resolved.len());
    for (sid, series) in resolved.into_iter().flatten() {
        sids.push(sid);
        series_ids.push((series.key, series.series_id));
    }

    let run_id = RunId::random();
    let count = run.values.len() as i64;
    let params_json = run.run_params.as_ref().map(|p| serde_json::Value::Object(p.clone()).to_string());
    let stmt = tx
        .prepare_cached(
            "INSERT INTO runs (tid, run_id, workflow_id, run_start_time, run_finish_time, known_time,
                               run_params, inserted_at, created_by, value_count)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING rid",
        )
        .await
        .map_err(backend)?;
    let rid: i64 = tx
        .query_one(
            &stmt,
            &[
                &tid,
                &run_id.0,
                &run.workflow_id.as_str(),
                &to_micros(run.run_start_time),
                &run.run_finish_time.map(to_micros),
                &to_micros(known_time),
                &params_json,
                &to_micros(inserted_at),
                &created_by,
                &count,
            ],
        )
        .await
        .map_err(backend)?
        .get(0);

    if count > 0 {
        copy_values(&tx, tid, rid, &sids, &run, &created_by, to_micros(inserted_at)).await?;
    }
    tx.commit().await.map_err(backend)?;
    if count >= ANALYZE_AFTER {
        // A bulk load leaves the planner's statistics far behind the table (right after
        // one, a read of it plans nested loops and a disk sort). Refresh them now rather
        // than at autovacuum's leisure; failure only costs speed.
        if let Err(e) = client.batch_execute("ANALYZE value_versions").await {
            tracing::warn!(error = %e, "ANALYZE after a bulk load failed");
        }
    }
    Ok(RunReceipt { run_id, known_time, series_ids, values_written: count as usize })
}

/// Stream a run's values into `value_versions` with binary COPY. `value_id` is left to
/// its sequence default, so ids still increase in row order.
async fn copy_values(
    tx: &Transaction<'_>,
    tid: i64,
    rid: i64,
    sids: &[i64],
    run: &NewRun,
    created_by: &Option<String>,
    change_time: i64,
) -> Result<(), StoreError> {
    let sink = tx
        .copy_in(
            "COPY value_versions (tid, sid, vt, vte, rid, version, value, annotation, tags, changed_by,
                                  change_time, is_current)
             FROM STDIN (FORMAT binary)",
        )
        .await
        .map_err(backend)?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::FLOAT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::BOOL,
    ];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let (version, is_current) = (0i64, true);
    for v in &run.values {
        let vt = to_micros(v.valid_time);
        let vte = v.valid_time_end.map_or(vt, to_micros);
        let tags = v.tags.as_ref().map(Tags::to_json);
        writer
            .as_mut()
            .write(&[
                &tid,
                &sids[v.series],
                &vt,
                &vte,
                &rid,
                &version,
                &v.value,
                &v.annotation,
                &tags,
                created_by,
                &change_time,
                &is_current,
            ])
            .await
            .map_err(backend)?;
    }
    writer.as_mut().finish().await.map_err(backend)?;
    Ok(())
}

/// The current version of one value, as stored (and, once returned by
/// [`lock_current`], locked until the transaction ends).
struct Current {
    sid: i64,
    vt: i64,
    vte: i64,
    rid: i64,
    version: i64,
    value_id: i64,
    value: Option<f64>,
    annotation: Option<String>,
    tags: Option<Tags>,
    changed_by: Option<String>,
    change_time: i64,
}

/// Find the (sid, vt, vte, rid) an address names; `None` when it names nothing of
/// this tenant.
async fn resolve(
    tx: &Transaction<'_>,
    tid: i64,
    address: &ValueAddress,
) -> Result<Option<(i64, i64, i64, i64)>, StoreError> {
    match address {
        ValueAddress::Id(id) => {
            let stmt = tx
                .prepare_cached("SELECT sid, vt, vte, rid FROM value_versions WHERE tid = $1 AND value_id = $2")
                .await
                .map_err(backend)?;
            let row = tx.query_opt(&stmt, &[&tid, &id.0]).await.map_err(backend)?;
            Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
        }
        ValueAddress::Key { run_id, series_id, valid_time, valid_time_end } => {
            let stmt =
                tx.prepare_cached("SELECT rid FROM runs WHERE tid = $1 AND run_id = $2").await.map_err(backend)?;
            let rid: Option<i64> = tx.query_opt(&stmt, &[&tid, &run_id.0]).await.map_err(backend)?.map(|r| r.get(0));
            let sid = load_series_by_id(tx, tid, *series_id).await?.map(|(sid, _)| sid);
            let vt = to_micros(*valid_time);
            Ok(rid.zip(sid).map(|(rid, sid)| (sid, vt, valid_time_end.map_or(vt, to_micros), rid)))
        }
    }
}

/// Lock the current version of a value. Under READ COMMITTED, a version that another
/// writer superseded while we waited for its lock no longer matches `is_current` and
/// is skipped; the next statement's snapshot then sees the writer's new version, so
/// the look-up is simply repeated. `None` only when the value does not exist.
async fn lock_current(tx: &Transaction<'_>, tid: i64, key: (i64, i64, i64, i64)) -> Result<Option<Current>, Attempt> {
    let (sid, vt, vte, rid) = key;
    let lock = tx
        .prepare_cached(
            "SELECT version, value_id, value, annotation, tags, changed_by, change_time FROM value_versions
             WHERE tid = $1 AND sid = $2 AND vt = $3 AND vte = $4 AND rid = $5 AND is_current
             FOR UPDATE",
        )
        .await
        .map_err(Attempt::pg)?;
    let exists = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM value_versions
                            WHERE tid = $1 AND sid = $2 AND vt = $3 AND vte = $4 AND rid = $5)",
        )
        .await
        .map_err(Attempt::pg)?;
    for _ in 0..MAX_LOCK_ATTEMPTS {
        if let Some(r) = tx.query_opt(&lock, &[&tid, &sid, &vt, &vte, &rid]).await.map_err(Attempt::pg)? {
            return Ok(Some(Current {
                sid,
                vt,
                vte,
                rid,
                version: r.get(0),
                value_id: r.get(1),
                value: r.get(2),
                annotation: r.get(3),
                tags: r.get::<_, Option<String>>(4).and_then(|t| Tags::from_json(&t)),
                changed_by: r.get(5),
                change_time: r.get(6),
            }));
        }
        let found: bool = tx.query_one(&exists, &[&tid, &sid, &vt, &vte, &rid]).await.map_err(Attempt::pg)?.get(0);
        if !found {
            return Ok(None);
        }
    }
    Err(Attempt::Failed(StoreError::Conflict("the value is being corrected by many writers at once; try again".into())))
}

fn describe(address: &ValueAddress) -> String {
    match address {
        ValueAddress::Id(id) => format!("value_id {id}"),
        ValueAddress::Key { run_id, series_id, valid_time, .. } => {
            format!("value of series {series_id} in run {run_id} at {}", format_timestamp(*valid_time))
        }
    }
}

/// How one attempt at a correction batch ended, when it did not succeed.
enum Attempt {
    /// PostgreSQL aborted the transaction to resolve a conflict; running it again is safe.
    Retry(tokio_postgres::Error),
    Failed(StoreError),
}

impl Attempt {
    fn pg(e: tokio_postgres::Error) -> Self {
        if is_retryable(&e) { Attempt::Retry(e) } else { Attempt::Failed(backend(e)) }
    }
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Self {
        Attempt::Failed(e)
    }
}

pub(super) async fn update_values(
    client: &mut Object,
    tenant: TenantId,
    updates: &[ValueUpdate],
    changed_by: Option<String>,
) -> Result<UpdateReport, StoreError> {
    let mut attempt = 1;
    loop {
        match try_update_values(client, tenant, updates, &changed_by).await {
            Ok(report) => return Ok(report),
            Err(Attempt::Retry(e)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "correction batch aborted by the server; retrying");
                attempt += 1;
            }
            Err(Attempt::Retry(e)) => return Err(backend(e)),
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
}

async fn try_update_values(
    client: &mut Object,
    tenant: TenantId,
    updates: &[ValueUpdate],
    changed_by: &Option<String>,
) -> Result<UpdateReport, Attempt> {
    let tx = client.transaction().await.map_err(Attempt::pg)?;
    let Some(tid) = tenant_tid(&tx, tenant).await? else {
        return Err(Attempt::Failed(match updates.first() {
            Some(u) => StoreError::NotFound(format!("updates[0]: {}", describe(&u.address))),
            None => StoreError::NotFound("value".into()),
        }));
    };
    let retire = tx
        .prepare_cached(
            "UPDATE value_versions SET is_current = false
             WHERE tid = $1 AND sid = $2 AND vt = $3 AND vte = $4 AND rid = $5 AND version = $6",
        )
        .await
        .map_err(Attempt::pg)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO value_versions (tid, sid, vt, vte, rid, version, value, annotation, tags, changed_by,
                                         change_time, is_current)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true)
             RETURNING value_id",
        )
        .await
        .map_err(Attempt::pg)?;
    // Lock every value the batch touches before changing any, in one global order:
    // two batches correcting the same values in different orders then queue instead
    // of deadlocking (which PostgreSQL would only detect after a second).
    let mut keys = Vec::with_capacity(updates.len());
    for update in updates {
        keys.push(resolve(&tx, tid, &update.address).await?);
    }
    let mut order: Vec<(i64, i64, i64, i64)> = keys.iter().flatten().copied().collect();
    order.sort_unstable();
    order.dedup();
    for key in order {
        lock_current(&tx, tid, key).await?;
    }

    let mut report = UpdateReport::default();
    let change_time = now();
    for (i, (update, key)) in updates.iter().zip(keys).enumerate() {
        let not_found = || StoreError::NotFound(format!("updates[{i}]: {}", describe(&update.address)));
        let key = key.ok_or_else(not_found)?;
        // Already locked; read again because an earlier update of this batch may have
        // written a newer version of the same value.
        let current = lock_current(&tx, tid, key).await?.ok_or_else(not_found)?;

        let value = update.value.apply(&current.value);
        let annotation = update.annotation.apply(&current.annotation);
        let tags = update.tags.apply(&current.tags);
        let same_value = match (value, current.value) {
            (Some(a), Some(b)) => a.to_bits() == b.to_bits(),
            (None, None) => true,
            _ => false,
        };
        let (series_id, series_key) = series_identity(&tx, tid, current.sid).await?;
        let run_id = run_identity(&tx, tid, current.rid).await?;
        let outcome = |value_id: i64, previous: i64, changed_by: Option<String>, at: i64| UpdateOutcome {
            value_id: ValueId(value_id),
            previous_value_id: ValueId(previous),
            run_id,
            series_id,
            series_key: series_key.clone(),
            valid_time: from_micros(current.vt).unwrap_or_default(),
            valid_time_end: (current.vte != current.vt).then(|| from_micros(current.vte).unwrap_or_default()),
            value,
            annotation: annotation.clone(),
            tags: tags.clone(),
            changed_by,
            change_time: from_micros(at).unwrap_or_default(),
        };
        if same_value && annotation == current.annotation && tags == current.tags {
            report.skipped_no_ops.push(outcome(
                current.value_id,
                current.value_id,
                current.changed_by.clone(),
                current.change_time,
            ));
            continue;
        }
        tx.execute(&retire, &[&tid, &current.sid, &current.vt, &current.vte, &current.rid, &current.version])
            .await
            .map_err(Attempt::pg)?;
        let value_id: i64 = tx
            .query_one(
                &insert,
                &[
                    &tid,
                    &current.sid,
                    &current.vt,
                    &current.vte,
                    &current.rid,
                    &(current.version + 1),
                    &value,
                    &annotation,
                    &tags.as_ref().map(Tags::to_json),
                    changed_by,
                    &to_micros(change_time),
                ],
            )
            .await
            .map_err(Attempt::pg)?
            .get(0);
        report.updated.push(outcome(value_id, current.value_id, changed_by.clone(), to_micros(change_time)));
    }
    tx.commit().await.map_err(Attempt::pg)?;
    Ok(report)
}

async fn series_identity(tx: &Transaction<'_>, tid: i64, sid: i64) -> Result<(SeriesId, SeriesKey), StoreError> {
    let stmt = tx
        .prepare_cached("SELECT series_id, series_key FROM series WHERE tid = $1 AND sid = $2")
        .await
        .map_err(backend)?;
    let row = tx.query_one(&stmt, &[&tid, &sid]).await.map_err(backend)?;
    Ok((SeriesId(row.get(0)), SeriesKey::from_stored(row.get(1))))
}

async fn run_identity(tx: &Transaction<'_>, tid: i64, rid: i64) -> Result<RunId, StoreError> {
    let stmt = tx.prepare_cached("SELECT run_id FROM runs WHERE tid = $1 AND rid = $2").await.map_err(backend)?;
    let row = tx.query_one(&stmt, &[&tid, &rid]).await.map_err(backend)?;
    Ok(RunId(row.get(0)))
}
