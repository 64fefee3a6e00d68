//! Writes: series get-or-create, atomic run inserts, and versioned corrections.
//!
//! Each public function is one `BEGIN IMMEDIATE` transaction on the writer connection:
//! the write lock is taken up front, so a read-then-write (allocate ids, find the
//! current version) can never interleave with another writer, in this process or
//! another one.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::read::{load_series_by_id, load_series_by_key};
use super::{backend, tenant_tid};
use crate::model::time::{from_micros, now, to_micros};
use crate::model::{
    ModelError, NewRun, RunId, RunReceipt, Series, SeriesId, SeriesSpec, Tags, TenantId, Timestamp, Unit,
    UpdateOutcome, UpdateReport, ValueAddress, ValueId, ValueUpdate,
};
use crate::store::StoreError;

fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)
}

/// Reserve `n` consecutive ids from a counter; returns the first.
fn allocate(tx: &Transaction<'_>, counter: &str, n: i64) -> Result<i64, StoreError> {
    let last: i64 = tx
        .prepare_cached("UPDATE timedb_counters SET value = value + ?1 WHERE name = ?2 RETURNING value")
        .and_then(|mut s| s.query_row(params![n, counter], |r| r.get(0)))
        .map_err(backend)?;
    Ok(last - n + 1)
}

fn tenant_tid_or_create(tx: &Transaction<'_>, tenant: TenantId) -> Result<i64, StoreError> {
    if let Some(tid) = tenant_tid(tx, tenant)? {
        return Ok(tid);
    }
    let tid = allocate(tx, "tenant", 1)?;
    tx.execute(
        "INSERT INTO tenants (tenant_id, tid, created_at) VALUES (?1, ?2, ?3)",
        params![&tenant.as_bytes()[..], tid, to_micros(now())],
    )
    .map_err(backend)?;
    Ok(tid)
}

/// Compare a re-declared series with the stored one: every field the client gave must
/// match, or the definitions conflict.
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
fn get_or_create_series(
    tx: &Transaction<'_>,
    tid: i64,
    spec: &SeriesSpec,
    created_at: Timestamp,
) -> Result<(i64, Series, bool), StoreError> {
    if let Some((sid, stored)) = load_series_by_key(tx, tid, spec.key.as_str())? {
        check_compatible(&stored, spec)?;
        return Ok((sid, stored, false));
    }
    let sid = allocate(tx, "series", 1)?;
    let series = Series {
        series_id: SeriesId::random(),
        key: spec.key.clone(),
        description: spec.description.clone(),
        unit: spec.unit.clone().unwrap_or_else(|| Unit::from_stored(Unit::DEFAULT.to_owned())),
        labels: spec.labels.clone().unwrap_or_default(),
        created_at,
    };
    tx.prepare_cached(
        "INSERT INTO series (tid, sid, series_id, series_key, description, unit, labels, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tid,
            sid,
            &series.series_id.as_bytes()[..],
            series.key.as_str(),
            series.description,
            series.unit.as_str(),
            series.labels.to_json(),
            to_micros(created_at),
        ])
    })
    .map_err(backend)?;
    Ok((sid, series, true))
}

pub(super) fn upsert_series(
    conn: &mut Connection,
    tenant: TenantId,
    spec: SeriesSpec,
) -> Result<(Series, bool), StoreError> {
    let tx = begin(conn)?;
    let tid = tenant_tid_or_create(&tx, tenant)?;
    let (_, series, created) = get_or_create_series(&tx, tid, &spec, now())?;
    tx.commit().map_err(backend)?;
    Ok((series, created))
}

pub(super) fn insert_run(
    conn: &mut Connection,
    tenant: TenantId,
    run: NewRun,
    created_by: Option<String>,
) -> Result<RunReceipt, StoreError> {
    let tx = begin(conn)?;
    let tid = tenant_tid_or_create(&tx, tenant)?;
    let inserted_at = now();
    let known_time = run.known_time.unwrap_or(inserted_at);

    // Resolve every series the run names to its internal id.
    let mut sids = Vec::with_capacity(run.series.len());
    let mut series_ids = Vec::with_capacity(run.series.len());
    for sref in &run.series {
        let (sid, series) = match sref.id {
            Some(id) => {
                let (sid, stored) =
                    load_series_by_id(&tx, tid, id)?.ok_or_else(|| StoreError::NotFound(format!("series {id}")))?;
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
                (sid, stored)
            }
            None => {
                let (sid, series, _) = get_or_create_series(&tx, tid, &sref.spec, inserted_at)?;
                (sid, series)
            }
        };
        sids.push(sid);
        series_ids.push((series.key, series.series_id));
    }

    let rid = allocate(&tx, "run", 1)?;
    let run_id = RunId::random();
    let count = run.values.len() as i64;
    let params_json = run.run_params.as_ref().map(|p| serde_json::Value::Object(p.clone()).to_string());
    tx.execute(
        "INSERT INTO runs (tid, rid, run_id, workflow_id, run_start_time, run_finish_time, known_time,
                           run_params, inserted_at, created_by, value_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            tid,
            rid,
            &run_id.as_bytes()[..],
            run.workflow_id.as_str(),
            to_micros(run.run_start_time),
            run.run_finish_time.map(to_micros),
            to_micros(known_time),
            params_json,
            to_micros(inserted_at),
            created_by,
            count,
        ],
    )
    .map_err(backend)?;

    if count > 0 {
        let first_value_id = allocate(&tx, "value", count)?;
        let change_time = to_micros(inserted_at);
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO value_versions (tid, sid, vt, vte, rid, version, value_id, value, annotation, tags,
                                             changed_by, change_time, is_current)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, 1)",
            )
            .map_err(backend)?;
        for (i, v) in run.values.iter().enumerate() {
            let vt = to_micros(v.valid_time);
            insert
                .execute(params![
                    tid,
                    sids[v.series],
                    vt,
                    v.valid_time_end.map_or(vt, to_micros),
                    rid,
                    first_value_id + i as i64,
                    v.value,
                    v.annotation,
                    v.tags.as_ref().map(Tags::to_json),
                    created_by,
                    change_time,
                ])
                .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(RunReceipt { run_id, known_time, series_ids, values_written: count as usize })
}

/// The current version of one value, as stored.
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
fn resolve(tx: &Transaction<'_>, tid: i64, address: &ValueAddress) -> Result<Option<(i64, i64, i64, i64)>, StoreError> {
    match address {
        ValueAddress::Id(id) => tx
            .prepare_cached("SELECT sid, vt, vte, rid FROM value_versions WHERE tid = ?1 AND value_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![tid, id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
            })
            .map_err(backend),
        ValueAddress::Key { run_id, series_id, valid_time, valid_time_end } => {
            let rid: Option<i64> = tx
                .prepare_cached("SELECT rid FROM runs WHERE tid = ?1 AND run_id = ?2")
                .and_then(|mut s| s.query_row(params![tid, &run_id.as_bytes()[..]], |r| r.get(0)).optional())
                .map_err(backend)?;
            let sid = load_series_by_id(tx, tid, *series_id)?.map(|(sid, _)| sid);
            let vt = to_micros(*valid_time);
            Ok(rid.zip(sid).map(|(rid, sid)| (sid, vt, valid_time_end.map_or(vt, to_micros), rid)))
        }
    }
}

fn load_current(tx: &Transaction<'_>, tid: i64, key: (i64, i64, i64, i64)) -> Result<Option<Current>, StoreError> {
    let (sid, vt, vte, rid) = key;
    tx.prepare_cached(
        "SELECT version, value_id, value, annotation, tags, changed_by, change_time FROM value_versions
         WHERE tid = ?1 AND sid = ?2 AND vt = ?3 AND vte = ?4 AND rid = ?5 AND is_current = 1",
    )
    .and_then(|mut s| {
        s.query_row(params![tid, sid, vt, vte, rid], |r| {
            Ok(Current {
                sid,
                vt,
                vte,
                rid,
                version: r.get(0)?,
                value_id: r.get(1)?,
                value: r.get(2)?,
                annotation: r.get(3)?,
                tags: r.get::<_, Option<String>>(4)?.and_then(|t| Tags::from_json(&t)),
                changed_by: r.get(5)?,
                change_time: r.get(6)?,
            })
        })
        .optional()
    })
    .map_err(backend)
}

fn describe(address: &ValueAddress) -> String {
    match address {
        ValueAddress::Id(id) => format!("value_id {id}"),
        ValueAddress::Key { run_id, series_id, valid_time, .. } => format!(
            "value of series {series_id} in run {run_id} at {}",
            crate::model::time::format_timestamp(*valid_time)
        ),
    }
}

pub(super) fn update_values(
    conn: &mut Connection,
    tenant: TenantId,
    updates: Vec<ValueUpdate>,
    changed_by: Option<String>,
) -> Result<UpdateReport, StoreError> {
    let tx = begin(conn)?;
    let Some(tid) = tenant_tid(&tx, tenant)? else {
        return Err(match updates.first() {
            Some(u) => StoreError::NotFound(format!("updates[0]: {}", describe(&u.address))),
            None => StoreError::NotFound("value".into()),
        });
    };
    let mut report = UpdateReport::default();
    let change_time = now();
    for (i, update) in updates.iter().enumerate() {
        let not_found = || StoreError::NotFound(format!("updates[{i}]: {}", describe(&update.address)));
        let key = resolve(&tx, tid, &update.address)?.ok_or_else(not_found)?;
        let current = load_current(&tx, tid, key)?.ok_or_else(not_found)?;

        let value = update.value.apply(&current.value);
        let annotation = update.annotation.apply(&current.annotation);
        let tags = update.tags.apply(&current.tags);
        let same_value = match (value, current.value) {
            (Some(a), Some(b)) => a.to_bits() == b.to_bits(),
            (None, None) => true,
            _ => false,
        };
        let (series_id, series_key) = series_identity(&tx, tid, current.sid)?;
        let run_id = run_identity(&tx, tid, current.rid)?;
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
        tx.prepare_cached(
            "UPDATE value_versions SET is_current = 0
             WHERE tid = ?1 AND sid = ?2 AND vt = ?3 AND vte = ?4 AND rid = ?5 AND version = ?6",
        )
        .and_then(|mut s| s.execute(params![tid, current.sid, current.vt, current.vte, current.rid, current.version]))
        .map_err(backend)?;
        let value_id = allocate(&tx, "value", 1)?;
        tx.prepare_cached(
            "INSERT INTO value_versions (tid, sid, vt, vte, rid, version, value_id, value, annotation, tags,
                                         changed_by, change_time, is_current)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tid,
                current.sid,
                current.vt,
                current.vte,
                current.rid,
                current.version + 1,
                value_id,
                value,
                annotation,
                tags.as_ref().map(Tags::to_json),
                changed_by,
                to_micros(change_time),
            ])
        })
        .map_err(backend)?;
        report.updated.push(outcome(value_id, current.value_id, changed_by.clone(), to_micros(change_time)));
    }
    tx.commit().map_err(backend)?;
    Ok(report)
}

fn series_identity(
    tx: &Transaction<'_>,
    tid: i64,
    sid: i64,
) -> Result<(SeriesId, crate::model::SeriesKey), StoreError> {
    tx.prepare_cached("SELECT series_id, series_key FROM series WHERE tid = ?1 AND sid = ?2")
        .and_then(|mut s| {
            s.query_row(params![tid, sid], |r| {
                Ok((SeriesId::from_bytes(super::uuid_from(r, 0)?), crate::model::SeriesKey::from_stored(r.get(1)?)))
            })
        })
        .map_err(backend)
}

fn run_identity(tx: &Transaction<'_>, tid: i64, rid: i64) -> Result<RunId, StoreError> {
    tx.prepare_cached("SELECT run_id FROM runs WHERE tid = ?1 AND rid = ?2")
        .and_then(|mut s| s.query_row(params![tid, rid], |r| Ok(RunId::from_bytes(super::uuid_from(r, 0)?))))
        .map_err(backend)
}
