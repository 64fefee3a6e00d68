//! The store conformance suite: every case runs unchanged against every backend, so the
//! backends give the same outputs for the same inputs (SPEC §3).
//!
//! Each case is an `async fn(TestStore)` in `cases`; the `conformance!` macro
//! instantiates all of them once per backend module, the `auth_*` cases on a store
//! created with the users tables.

use std::sync::Arc;

use timedb::model::time::parse_timestamp;
use timedb::model::*;
use timedb::store::{SCHEMA_VERSION, StoreError};
use timedb::testing::TestStore;
use timedb::{Store, TenantId};

fn ts(s: &str) -> Timestamp {
    parse_timestamp("t", s).unwrap()
}

fn key(s: &str) -> SeriesKey {
    SeriesKey::parse("k", s).unwrap()
}

/// A run known at `known` with rows (series key, valid time, value).
fn run(known: &str, rows: &[(&str, &str, Option<f64>)]) -> NewRun {
    let mut r = NewRun::new(WorkflowId::parse("w", None).unwrap(), ts(known), None, Some(ts(known)), None).unwrap();
    for (i, (k, vt, v)) in rows.iter().enumerate() {
        r.push(
            i,
            RowInput {
                key: key(k),
                series_id: None,
                valid_time: ts(vt),
                valid_time_end: None,
                value: *v,
                annotation: None,
                tags: None,
            },
        )
        .unwrap();
    }
    r.finish()
}

async fn read(store: &Arc<dyn Store>, tenant: TenantId, q: ValueQuery) -> Vec<ValueRecord> {
    store.read_values(tenant, q).await.unwrap().collect_all().await.unwrap()
}

/// (series key, valid time hour, value) of each row, for compact assertions.
fn summary(rows: &[ValueRecord]) -> Vec<(String, String, Option<f64>)> {
    rows.iter().map(|r| (r.series.key.to_string(), r.valid_time.format("%dT%H").to_string(), r.value)).collect()
}

fn s(k: &str, h: &str, v: f64) -> (String, String, Option<f64>) {
    (k.to_owned(), h.to_owned(), Some(v))
}

const T: TenantId = TenantId::DEFAULT;

fn email(s: &str) -> Email {
    Email::parse("email", s).unwrap()
}

fn key_id(s: &str) -> KeyId {
    KeyId::parse("key_id", s).unwrap()
}

/// A key to store: id `id`, a hash derived from the id, the given scopes.
fn new_key(id: &str, scopes: Scopes) -> NewKey {
    let mut hash = [0u8; 32];
    for (i, b) in id.bytes().cycle().take(32).enumerate() {
        hash[i] = b.wrapping_add(i as u8);
    }
    NewKey { key_id: key_id(id), hash, note: None, scopes, expires_at: None, rate_limit: None }
}

/// Whether a call failed with `NotFound` naming exactly `what` (e.g. `key Abcd1234`).
fn is_not_found<R>(r: Result<R, StoreError>, what: &str) -> bool {
    matches!(r, Err(StoreError::NotFound(m)) if m == what)
}

mod cases {
    use super::*;

    pub async fn upload_reuses_series_by_key(t: TestStore) {
        let a = t
            .store
            .insert_run(T, run("2025-01-01T00:00Z", &[("wind", "2025-01-01T01:00Z", Some(1.0))]), None)
            .await
            .unwrap();
        let b = t
            .store
            .insert_run(T, run("2025-01-01T06:00Z", &[(" wind ", "2025-01-01T02:00Z", Some(2.0))]), None)
            .await
            .unwrap();
        assert_eq!(a.series_ids, b.series_ids);
        assert_ne!(a.run_id, b.run_id);
        let series = t.store.list_series(T, SeriesFilter::default()).await.unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].key.as_str(), "wind");
        assert_eq!(series[0].unit.as_str(), "dimensionless");
        assert_eq!(a.values_written, 1);
    }

    pub async fn flat_takes_latest_known_run(t: TestStore) {
        t.store
            .insert_run(
                T,
                run(
                    "2025-01-01T00:00Z",
                    &[("w", "2025-01-02T01:00Z", Some(1.0)), ("w", "2025-01-02T02:00Z", Some(2.0))],
                ),
                None,
            )
            .await
            .unwrap();
        t.store.insert_run(T, run("2025-01-01T12:00Z", &[("w", "2025-01-02T02:00Z", Some(20.0))]), None).await.unwrap();
        // An older forecast inserted later must not win: known_time decides, not insert order.
        t.store.insert_run(T, run("2024-12-31T00:00Z", &[("w", "2025-01-02T02:00Z", Some(-1.0))]), None).await.unwrap();
        let rows = read(&t.store, T, ValueQuery::default()).await;
        assert_eq!(summary(&rows), vec![s("w", "02T01", 1.0), s("w", "02T02", 20.0)]);
        assert_eq!(rows[1].known_time, ts("2025-01-01T12:00Z"));
    }

    pub async fn flat_ties_go_to_the_latest_insert(t: TestStore) {
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(1.0))]), None).await.unwrap();
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(2.0))]), None).await.unwrap();
        let rows = read(&t.store, T, ValueQuery::default()).await;
        assert_eq!(summary(&rows), vec![s("w", "02T01", 2.0)]);
    }

    pub async fn overlapping_shows_every_revision_in_order(t: TestStore) {
        t.store
            .insert_run(
                T,
                run(
                    "2025-01-01T12:00Z",
                    &[("b", "2025-01-02T01:00Z", Some(3.0)), ("a", "2025-01-02T01:00Z", Some(4.0))],
                ),
                None,
            )
            .await
            .unwrap();
        t.store
            .insert_run(
                T,
                run(
                    "2025-01-01T00:00Z",
                    &[("a", "2025-01-02T02:00Z", Some(2.0)), ("a", "2025-01-02T01:00Z", Some(1.0))],
                ),
                None,
            )
            .await
            .unwrap();
        let q = ValueQuery { mode: ReadMode::Overlapping, ..Default::default() };
        let rows = read(&t.store, T, q).await;
        // Ordered by (known_time, valid_time, series_key).
        assert_eq!(
            summary(&rows),
            vec![s("a", "02T01", 1.0), s("a", "02T02", 2.0), s("a", "02T01", 4.0), s("b", "02T01", 3.0)]
        );
        assert_eq!(rows[0].known_time, ts("2025-01-01T00:00Z"));
        assert_eq!(rows[3].known_time, ts("2025-01-01T12:00Z"));
    }

    pub async fn flat_orders_by_valid_time_then_key(t: TestStore) {
        t.store
            .insert_run(
                T,
                run(
                    "2025-01-01T00:00Z",
                    &[
                        ("zeta", "2025-01-02T01:00Z", Some(1.0)),
                        ("alpha", "2025-01-02T02:00Z", Some(2.0)),
                        ("alpha", "2025-01-02T01:00Z", Some(3.0)),
                    ],
                ),
                None,
            )
            .await
            .unwrap();
        let rows = read(&t.store, T, ValueQuery::default()).await;
        assert_eq!(summary(&rows), vec![s("alpha", "02T01", 3.0), s("zeta", "02T01", 1.0), s("alpha", "02T02", 2.0)]);
    }

    pub async fn as_of_sees_only_runs_known_before(t: TestStore) {
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(1.0))]), None).await.unwrap();
        t.store.insert_run(T, run("2025-01-01T12:00Z", &[("w", "2025-01-02T01:00Z", Some(2.0))]), None).await.unwrap();
        let as_of = |end: &str| ValueQuery { end_known: Some(ts(end)), ..Default::default() };
        assert_eq!(summary(&read(&t.store, T, as_of("2025-01-01T11:59Z")).await), vec![s("w", "02T01", 1.0)]);
        // end_known is exclusive.
        assert_eq!(summary(&read(&t.store, T, as_of("2025-01-01T12:00Z")).await), vec![s("w", "02T01", 1.0)]);
        assert_eq!(summary(&read(&t.store, T, as_of("2025-01-01T12:01Z")).await), vec![s("w", "02T01", 2.0)]);
        assert!(read(&t.store, T, as_of("2025-01-01T00:00Z")).await.is_empty());
        let since = ValueQuery {
            start_known: Some(ts("2025-01-01T12:00Z")),
            mode: ReadMode::Overlapping,
            ..Default::default()
        };
        assert_eq!(summary(&read(&t.store, T, since).await), vec![s("w", "02T01", 2.0)]);
    }

    pub async fn valid_window_is_half_open(t: TestStore) {
        let rows: Vec<(&str, String, Option<f64>)> =
            (0..6).map(|h| ("w", format!("2025-01-02T{h:02}:00Z"), Some(h as f64))).collect();
        let rows: Vec<(&str, &str, Option<f64>)> = rows.iter().map(|(k, t, v)| (*k, t.as_str(), *v)).collect();
        t.store.insert_run(T, run("2025-01-01T00:00Z", &rows), None).await.unwrap();
        let q = ValueQuery {
            start_valid: Some(ts("2025-01-02T01:00Z")),
            end_valid: Some(ts("2025-01-02T04:00Z")),
            ..Default::default()
        };
        assert_eq!(
            summary(&read(&t.store, T, q).await),
            vec![s("w", "02T01", 1.0), s("w", "02T02", 2.0), s("w", "02T03", 3.0)]
        );
    }

    pub async fn series_filters_by_key_id_and_labels(t: TestStore) {
        let labelled = |k: &str, site: &str| SeriesSpec {
            key: key(k),
            description: None,
            unit: Some(Unit::parse("u", Some("MW")).unwrap()),
            labels: Some(Labels::parse("l", [("site".to_owned(), site.to_owned())].into()).unwrap()),
        };
        let (north, created) = t.store.upsert_series(T, labelled("north", "n")).await.unwrap();
        assert!(created);
        t.store.upsert_series(T, labelled("south", "s")).await.unwrap();
        t.store
            .insert_run(
                T,
                run(
                    "2025-01-01T00:00Z",
                    &[
                        ("north", "2025-01-02T01:00Z", Some(1.0)),
                        ("south", "2025-01-02T01:00Z", Some(2.0)),
                        ("other", "2025-01-02T01:00Z", Some(3.0)),
                    ],
                ),
                None,
            )
            .await
            .unwrap();
        let by_key = ValueQuery::default().with_keys(vec![key("south"), key("other")]);
        assert_eq!(summary(&read(&t.store, T, by_key).await), vec![s("other", "02T01", 3.0), s("south", "02T01", 2.0)]);
        let by_id = ValueQuery::default().with_ids(vec![north.series_id]);
        let rows = read(&t.store, T, by_id).await;
        assert_eq!(summary(&rows), vec![s("north", "02T01", 1.0)]);
        assert_eq!(rows[0].series.unit.as_str(), "MW");
        let by_label = ValueQuery::default()
            .with_labels(Labels::parse("l", [("site".to_owned(), "s".to_owned())].into()).unwrap());
        assert_eq!(summary(&read(&t.store, T, by_label).await), vec![s("south", "02T01", 2.0)]);
        let unknown = ValueQuery::default().with_keys(vec![key("nope")]);
        assert!(read(&t.store, T, unknown).await.is_empty());
        let listed =
            t.store.list_series(T, SeriesFilter { keys: vec![key("north")], ..Default::default() }).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].series_id, north.series_id);
    }

    pub async fn intervals_and_nulls_are_distinct_values(t: TestStore) {
        let mut r = NewRun::new(
            WorkflowId::parse("w", Some("wf")).unwrap(),
            ts("2025-01-01"),
            None,
            Some(ts("2025-01-01")),
            None,
        )
        .unwrap();
        let base = RowInput {
            key: key("w"),
            series_id: None,
            valid_time: ts("2025-01-02T00:00Z"),
            valid_time_end: None,
            value: None,
            annotation: Some("  first "),
            tags: None,
        };
        r.push(0, base).unwrap();
        r.push(
            1,
            RowInput {
                key: key("w"),
                series_id: None,
                valid_time: ts("2025-01-02T00:00Z"),
                valid_time_end: Some(ts("2025-01-02T01:00Z")),
                value: Some(5.0),
                annotation: None,
                tags: None,
            },
        )
        .unwrap();
        t.store.insert_run(T, r.finish(), None).await.unwrap();
        let rows = read(&t.store, T, ValueQuery::default()).await;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].valid_time_end, None);
        assert_eq!(rows[0].value, None);
        assert_eq!(rows[0].annotation.as_deref(), Some("first"));
        assert_eq!(rows[1].valid_time_end, Some(ts("2025-01-02T01:00Z")));
        assert_eq!(rows[1].value, Some(5.0));
    }

    pub async fn updates_write_versions_and_keep_history(t: TestStore) {
        let receipt = t
            .store
            .insert_run(
                T,
                run(
                    "2025-01-01T00:00Z",
                    &[("w", "2025-01-02T01:00Z", Some(1.0)), ("w", "2025-01-02T02:00Z", Some(2.0))],
                ),
                Some("loader".into()),
            )
            .await
            .unwrap();
        let series_id = receipt.series_ids[0].1;
        let first = read(&t.store, T, ValueQuery::default()).await;
        assert_eq!(first[0].changed_by.as_deref(), Some("loader"));
        let tags = Tags::parse("t", &["Checked", " manual "]).unwrap().unwrap();
        let by_id = ValueUpdate::new(
            "u",
            ValueAddress::Id(first[0].value_id),
            Patch::Set(1.5),
            Patch::Set("fixed".into()),
            Patch::Set(tags.clone()),
        )
        .unwrap();
        let by_key = ValueUpdate::new(
            "u",
            ValueAddress::Key {
                run_id: receipt.run_id,
                series_id,
                valid_time: ts("2025-01-02T02:00Z"),
                valid_time_end: None,
            },
            Patch::Clear,
            Patch::Unchanged,
            Patch::Unchanged,
        )
        .unwrap();
        let report = t.store.update_values(T, vec![by_id, by_key], Some("alice@example.com".into())).await.unwrap();
        assert_eq!(report.updated.len(), 2);
        assert!(report.skipped_no_ops.is_empty());
        assert_eq!(report.updated[0].previous_value_id, first[0].value_id);
        assert!(report.updated[0].value_id > first[0].value_id);
        assert_eq!(report.updated[0].tags.as_ref(), Some(&tags));
        assert_eq!(report.updated[1].value, None);

        let flat = read(&t.store, T, ValueQuery::default()).await;
        assert_eq!(flat.iter().map(|r| r.value).collect::<Vec<_>>(), vec![Some(1.5), None]);
        let history = read(&t.store, T, ValueQuery { all_versions: true, ..Default::default() }).await;
        // Per value key, oldest version first; exactly one current.
        assert_eq!(
            history.iter().map(|r| (r.value, r.is_current)).collect::<Vec<_>>(),
            vec![(Some(1.0), false), (Some(1.5), true), (Some(2.0), false), (None, true)]
        );
        assert_eq!(history[1].annotation.as_deref(), Some("fixed"));
        assert_eq!(history[1].changed_by.as_deref(), Some("alice@example.com"));
        assert!(history[1].change_time >= history[0].change_time);

        // Same values again: a no-op, reported and not written.
        let again = ValueUpdate::new(
            "u",
            ValueAddress::Id(first[0].value_id),
            Patch::Set(1.5),
            Patch::Set("fixed".into()),
            Patch::Unchanged,
        )
        .unwrap();
        let report = t.store.update_values(T, vec![again], Some("bob".into())).await.unwrap();
        assert!(report.updated.is_empty());
        assert_eq!(report.skipped_no_ops.len(), 1);
        assert_eq!(report.skipped_no_ops[0].changed_by.as_deref(), Some("alice@example.com"));
        let count = read(&t.store, T, ValueQuery { all_versions: true, ..Default::default() }).await.len();
        assert_eq!(count, 4);

        // Clearing annotation and tags.
        let clear =
            ValueUpdate::new("u", ValueAddress::Id(first[0].value_id), Patch::Unchanged, Patch::Clear, Patch::Clear)
                .unwrap();
        let report = t.store.update_values(T, vec![clear], None).await.unwrap();
        assert_eq!(report.updated[0].annotation, None);
        assert_eq!(report.updated[0].tags, None);
        assert_eq!(report.updated[0].value, Some(1.5));
    }

    pub async fn flat_history_shows_only_the_chosen_run(t: TestStore) {
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(1.0))]), None).await.unwrap();
        t.store.insert_run(T, run("2025-01-01T06:00Z", &[("w", "2025-01-02T01:00Z", Some(2.0))]), None).await.unwrap();
        let latest = read(&t.store, T, ValueQuery::default()).await;
        let upd = ValueUpdate::new(
            "u",
            ValueAddress::Id(latest[0].value_id),
            Patch::Set(2.5),
            Patch::Unchanged,
            Patch::Unchanged,
        )
        .unwrap();
        t.store.update_values(T, vec![upd], None).await.unwrap();
        let flat_history = read(&t.store, T, ValueQuery { all_versions: true, ..Default::default() }).await;
        assert_eq!(flat_history.iter().map(|r| r.value).collect::<Vec<_>>(), vec![Some(2.0), Some(2.5)]);
        let all =
            read(&t.store, T, ValueQuery { all_versions: true, mode: ReadMode::Overlapping, ..Default::default() })
                .await;
        assert_eq!(all.iter().map(|r| r.value).collect::<Vec<_>>(), vec![Some(1.0), Some(2.0), Some(2.5)]);
    }

    pub async fn a_failing_update_batch_changes_nothing(t: TestStore) {
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(1.0))]), None).await.unwrap();
        let rows = read(&t.store, T, ValueQuery::default()).await;
        let good = ValueUpdate::new(
            "u",
            ValueAddress::Id(rows[0].value_id),
            Patch::Set(9.0),
            Patch::Unchanged,
            Patch::Unchanged,
        )
        .unwrap();
        let bad = ValueUpdate::new(
            "u",
            ValueAddress::Id(ValueId(999_999)),
            Patch::Set(9.0),
            Patch::Unchanged,
            Patch::Unchanged,
        )
        .unwrap();
        let err = t.store.update_values(T, vec![good, bad], None).await.unwrap_err();
        assert!(matches!(&err, StoreError::NotFound(m) if m.contains("updates[1]")), "{err}");
        let after = read(&t.store, T, ValueQuery { all_versions: true, ..Default::default() }).await;
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].value, Some(1.0));
    }

    pub async fn concurrent_updates_keep_one_current_and_every_version(t: TestStore) {
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(0.0))]), None).await.unwrap();
        let id = read(&t.store, T, ValueQuery::default()).await[0].value_id;
        const N: usize = 16;
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = t.store.clone();
            tasks.push(tokio::spawn(async move {
                let u = ValueUpdate::new(
                    "u",
                    ValueAddress::Id(id),
                    Patch::Set(i as f64 + 1.0),
                    Patch::Unchanged,
                    Patch::Unchanged,
                )
                .unwrap();
                store.update_values(T, vec![u], Some(format!("user{i}"))).await
            }));
        }
        for task in tasks {
            let report = task.await.unwrap().unwrap();
            assert_eq!(report.updated.len(), 1);
        }
        let history = read(&t.store, T, ValueQuery { all_versions: true, ..Default::default() }).await;
        assert_eq!(history.len(), N + 1);
        assert_eq!(history.iter().filter(|r| r.is_current).count(), 1);
        assert!(history.last().unwrap().is_current);
        let mut values: Vec<i64> = history.iter().map(|r| r.value.unwrap() as i64).collect();
        values.sort();
        assert_eq!(values, (0..=N as i64).collect::<Vec<_>>());
    }

    pub async fn tenants_are_isolated(t: TestStore) {
        let a = TenantId::random();
        let b = TenantId::random();
        let receipt = t
            .store
            .insert_run(a, run("2025-01-01T00:00Z", &[("secret", "2025-01-02T01:00Z", Some(1.0))]), None)
            .await
            .unwrap();
        t.store
            .insert_run(b, run("2025-01-01T00:00Z", &[("mine", "2025-01-02T01:00Z", Some(2.0))]), None)
            .await
            .unwrap();
        let series_a = receipt.series_ids[0].1;
        let value_a = read(&t.store, a, ValueQuery::default()).await[0].value_id;

        assert_eq!(summary(&read(&t.store, b, ValueQuery::default()).await), vec![s("mine", "02T01", 2.0)]);
        assert!(read(&t.store, b, ValueQuery::default().with_ids(vec![series_a])).await.is_empty());
        assert!(read(&t.store, T, ValueQuery::default()).await.is_empty());
        assert!(matches!(t.store.get_series(b, series_a).await, Err(StoreError::NotFound(_))));
        assert!(matches!(t.store.get_run(b, receipt.run_id).await, Err(StoreError::NotFound(_))));
        assert_eq!(t.store.list_series(b, SeriesFilter::default()).await.unwrap().len(), 1);
        assert_eq!(t.store.list_runs(b, RunFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 1);
        let steal =
            ValueUpdate::new("u", ValueAddress::Id(value_a), Patch::Set(0.0), Patch::Unchanged, Patch::Unchanged)
                .unwrap();
        assert!(matches!(t.store.update_values(b, vec![steal], None).await, Err(StoreError::NotFound(_))));
        let steal_by_key = ValueUpdate::new(
            "u",
            ValueAddress::Key {
                run_id: receipt.run_id,
                series_id: series_a,
                valid_time: ts("2025-01-02T01:00Z"),
                valid_time_end: None,
            },
            Patch::Set(0.0),
            Patch::Unchanged,
            Patch::Unchanged,
        )
        .unwrap();
        assert!(matches!(t.store.update_values(b, vec![steal_by_key], None).await, Err(StoreError::NotFound(_))));
        // Uploading into another tenant's series id is refused and writes nothing.
        let mut into = NewRun::new(WorkflowId::parse("w", None).unwrap(), ts("2025-01-01"), None, None, None).unwrap();
        into.push(
            0,
            RowInput {
                key: key("secret"),
                series_id: Some(series_a),
                valid_time: ts("2025-01-03T00:00Z"),
                valid_time_end: None,
                value: Some(9.0),
                annotation: None,
                tags: None,
            },
        )
        .unwrap();
        assert!(matches!(t.store.insert_run(b, into.finish(), None).await, Err(StoreError::NotFound(_))));
        assert_eq!(read(&t.store, a, ValueQuery::default()).await[0].value, Some(1.0));
        assert_eq!(t.store.list_runs(b, RunFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 1);
        // The same key in two tenants is two series.
        t.store
            .insert_run(b, run("2025-01-01T00:00Z", &[("secret", "2025-01-02T01:00Z", Some(5.0))]), None)
            .await
            .unwrap();
        let b_secret =
            t.store.list_series(b, SeriesFilter { keys: vec![key("secret")], ..Default::default() }).await.unwrap();
        assert_ne!(b_secret[0].series_id, series_a);
    }

    pub async fn series_definitions_conflict_or_match(t: TestStore) {
        let spec = |unit: &str| SeriesSpec {
            key: key("load"),
            description: Some("Total load".into()),
            unit: Some(Unit::parse("u", Some(unit)).unwrap()),
            labels: None,
        };
        let (first, created) = t.store.upsert_series(T, spec("MW")).await.unwrap();
        assert!(created);
        let (again, created) = t.store.upsert_series(T, spec("MW")).await.unwrap();
        assert!(!created);
        assert_eq!(again.series_id, first.series_id);
        assert!(matches!(t.store.upsert_series(T, spec("kW")).await, Err(StoreError::Conflict(m)) if m.contains("MW")));
        // A key-only declaration matches any definition.
        let (plain, created) = t.store.upsert_series(T, SeriesSpec::key_only(key("load"))).await.unwrap();
        assert!(!created);
        assert_eq!(plain.series_id, first.series_id);
    }

    pub async fn a_failed_upload_writes_nothing(t: TestStore) {
        t.store
            .upsert_series(
                T,
                SeriesSpec { unit: Some(Unit::parse("u", Some("MW")).unwrap()), ..SeriesSpec::key_only(key("b")) },
            )
            .await
            .unwrap();
        let mut r = run(
            "2025-01-01T00:00Z",
            &[("a_new", "2025-01-02T01:00Z", Some(1.0)), ("b", "2025-01-02T01:00Z", Some(2.0))],
        );
        r.declare_series(SeriesSpec {
            unit: Some(Unit::parse("u", Some("kW")).unwrap()),
            ..SeriesSpec::key_only(key("b"))
        });
        assert!(matches!(t.store.insert_run(T, r, None).await, Err(StoreError::Conflict(_))));
        let series = t.store.list_series(T, SeriesFilter::default()).await.unwrap();
        assert_eq!(series.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), vec!["b"]);
        assert!(t.store.list_runs(T, RunFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());
        assert!(read(&t.store, T, ValueQuery::default()).await.is_empty());
    }

    pub async fn series_id_must_match_the_key(t: TestStore) {
        let receipt = t
            .store
            .insert_run(T, run("2025-01-01T00:00Z", &[("a", "2025-01-02T01:00Z", Some(1.0))]), None)
            .await
            .unwrap();
        let mut r = NewRun::new(WorkflowId::parse("w", None).unwrap(), ts("2025-01-01"), None, None, None).unwrap();
        r.push(
            0,
            RowInput {
                key: key("b"),
                series_id: Some(receipt.series_ids[0].1),
                valid_time: ts("2025-01-03T00:00Z"),
                valid_time_end: None,
                value: Some(1.0),
                annotation: None,
                tags: None,
            },
        )
        .unwrap();
        assert!(matches!(t.store.insert_run(T, r.finish(), None).await, Err(StoreError::Invalid(_))));
        let mut unknown =
            NewRun::new(WorkflowId::parse("w", None).unwrap(), ts("2025-01-01"), None, None, None).unwrap();
        unknown
            .push(
                0,
                RowInput {
                    key: key("a"),
                    series_id: Some(SeriesId::random()),
                    valid_time: ts("2025-01-03T00:00Z"),
                    valid_time_end: None,
                    value: Some(1.0),
                    annotation: None,
                    tags: None,
                },
            )
            .unwrap();
        assert!(matches!(t.store.insert_run(T, unknown.finish(), None).await, Err(StoreError::NotFound(_))));
    }

    pub async fn runs_are_listed_and_described(t: TestStore) {
        let mut params = serde_json::Map::new();
        params.insert("model".into(), serde_json::json!("ecmwf"));
        let mut r = NewRun::new(
            WorkflowId::parse("w", Some("forecast")).unwrap(),
            ts("2025-01-01T00:00Z"),
            Some(ts("2025-01-01T00:05Z")),
            Some(ts("2025-01-01T06:00Z")),
            Some(params.clone()),
        )
        .unwrap();
        r.push(
            0,
            RowInput {
                key: key("w"),
                series_id: None,
                valid_time: ts("2025-01-02T00:00Z"),
                valid_time_end: None,
                value: Some(1.0),
                annotation: None,
                tags: None,
            },
        )
        .unwrap();
        let receipt = t.store.insert_run(T, r.finish(), Some("ops".into())).await.unwrap();
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[]), None).await.unwrap();
        let got = t.store.get_run(T, receipt.run_id).await.unwrap();
        assert_eq!(got.workflow_id.as_str(), "forecast");
        assert_eq!(got.known_time, ts("2025-01-01T06:00Z"));
        assert_eq!(got.run_finish_time, Some(ts("2025-01-01T00:05Z")));
        assert_eq!(got.run_params, Some(params));
        assert_eq!(got.created_by.as_deref(), Some("ops"));
        assert_eq!(got.value_count, 1);
        let all = t.store.list_runs(T, RunFilter { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].run_id, receipt.run_id, "newest known_time first");
        let forecast_only = t
            .store
            .list_runs(
                T,
                RunFilter {
                    workflow_id: Some(WorkflowId::parse("w", Some("forecast")).unwrap()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(forecast_only.len(), 1);
        let limited = t.store.list_runs(T, RunFilter { limit: 1, ..Default::default() }).await.unwrap();
        assert_eq!(limited.len(), 1);
        assert!(matches!(t.store.get_run(T, RunId::random()).await, Err(StoreError::NotFound(_))));
    }

    pub async fn schema_is_versioned_idempotent_and_droppable(t: TestStore) {
        let status = t.store.schema_status().await.unwrap();
        assert_eq!(status.version, Some(SCHEMA_VERSION));
        assert!(!status.has_users);
        t.store.insert_run(T, run("2025-01-01T00:00Z", &[("w", "2025-01-02T01:00Z", Some(1.0))]), None).await.unwrap();
        let again = t.store.create_schema(true).await.unwrap();
        assert!(again.created.contains(&"users".to_string()));
        assert!(!again.created.contains(&"series".to_string()));
        assert!(t.store.schema_status().await.unwrap().has_users);
        // Data survives create tables.
        assert_eq!(read(&t.store, T, ValueQuery::default()).await.len(), 1);
        let dropped = t.store.drop_schema().await.unwrap();
        for table in ["series", "runs", "value_versions", "users", "api_keys"] {
            assert!(dropped.contains(&table.to_string()), "{table} not dropped: {dropped:?}");
        }
        assert_eq!(t.store.schema_status().await.unwrap().version, None);
        assert!(matches!(t.store.list_series(T, SeriesFilter::default()).await, Err(StoreError::SchemaMissing)));
        assert!(matches!(t.store.read_values(T, ValueQuery::default()).await.err(), Some(StoreError::SchemaMissing)));
        t.store.create_schema(false).await.unwrap();
        assert!(read(&t.store, T, ValueQuery::default()).await.is_empty());
    }

    pub async fn large_reads_stream_in_batches(t: TestStore) {
        let times: Vec<String> =
            (0..5000).map(|m| format!("2025-01-02T{:02}:{:02}:{:02}Z", m / 3600, (m / 60) % 60, m % 60)).collect();
        let rows: Vec<(&str, &str, Option<f64>)> =
            times.iter().enumerate().map(|(i, t)| ("w", t.as_str(), Some(i as f64))).collect();
        t.store.insert_run(T, run("2025-01-01T00:00Z", &rows), None).await.unwrap();
        let mut stream = t.store.read_values(T, ValueQuery::default()).await.unwrap();
        let mut batches = 0;
        let mut total = 0;
        let mut last = None;
        while let Some(batch) = stream.next_batch().await {
            let batch = batch.unwrap();
            batches += 1;
            for r in batch {
                assert!(last < Some(r.valid_time));
                last = Some(r.valid_time);
                total += 1;
            }
        }
        assert_eq!(total, 5000);
        assert!(batches > 1, "a 5000-row read arrives in more than one batch");
    }

    // --- Users, keys and the auth counter (stores with the users tables). ---

    pub async fn auth_user_and_key_roundtrip(t: TestStore) {
        let mut first = new_key("Abcd1234", Scopes::READ.union(Scopes::WRITE));
        first.note = Some("laptop".into());
        first.expires_at = Some(ts("2030-01-01T00:00:00.123456Z"));
        first.rate_limit = Some(RateLimit::parse("r", "100/minute").unwrap());
        let (user, record) = t
            .store
            .create_user(T, email(" Alice@Example.com "), Role::Writer, first.clone(), Some("operator".into()))
            .await
            .unwrap();
        assert_eq!(user.email.as_str(), "alice@example.com");
        assert_eq!(user.tenant, T);
        assert_eq!(user.role, Role::Writer);
        assert!(user.is_active);
        assert_eq!(record.key_id, first.key_id);
        assert_eq!(record.user_id, user.user_id);
        assert_eq!(record.created_by.as_deref(), Some("operator"));
        assert_eq!(record.use_count, 0);

        let found = t.store.lookup_key(&first.key_id).await.unwrap().expect("key found by id");
        assert_eq!(found.hash, first.hash);
        assert_eq!(found.record, record);
        assert_eq!(found.record.scopes, Scopes::READ.union(Scopes::WRITE));
        assert_eq!(found.record.note.as_deref(), Some("laptop"));
        assert_eq!(found.record.expires_at, first.expires_at);
        assert_eq!(found.record.rate_limit, first.rate_limit);
        assert_eq!(found.user_role, Role::Writer);
        assert!(found.user_active);
        assert!(t.store.lookup_key(&key_id("Zzzz9999")).await.unwrap().is_none());

        let users = t.store.find_users(TenantScope::One(T), Some(email("alice@example.com")), false).await.unwrap();
        assert_eq!(users, vec![user.clone()]);

        let second =
            t.store.create_key(T, email("alice@example.com"), new_key("Bcde2345", Scopes::READ), None).await.unwrap();
        assert_eq!(second.created_by, None);
        let listed = t.store.list_keys(TenantScope::One(T), Some(email("alice@example.com")), false).await.unwrap();
        assert_eq!(listed.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(), vec!["Abcd1234", "Bcde2345"]);
        assert_eq!(listed[0], record);
        // A second key with a taken id is refused, and the first is untouched.
        let clash = t.store.create_key(T, email("alice@example.com"), new_key("Abcd1234", Scopes::READ), None).await;
        assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
        assert_eq!(t.store.lookup_key(&first.key_id).await.unwrap().unwrap().record, record);
        assert!(is_not_found(
            t.store.create_key(T, email("nobody@example.com"), new_key("Cdef3456", Scopes::READ), None).await,
            "user nobody@example.com"
        ));
    }

    pub async fn auth_duplicate_email_conflicts(t: TestStore) {
        let other = TenantId::random();
        t.store
            .create_user(T, email("bob@example.com"), Role::Reader, new_key("Key00001", Scopes::READ), None)
            .await
            .unwrap();
        let again =
            t.store.create_user(T, email("BOB@example.com"), Role::Admin, new_key("Key00002", Scopes::ALL), None).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        // Nothing of the refused user was written: not its key, not a second user.
        assert!(t.store.lookup_key(&key_id("Key00002")).await.unwrap().is_none());
        assert_eq!(t.store.find_users(TenantScope::One(T), None, true).await.unwrap().len(), 1);
        // The same email in another tenant is another user.
        let (theirs, _) = t
            .store
            .create_user(other, email("bob@example.com"), Role::Admin, new_key("Key00003", Scopes::ALL), None)
            .await
            .unwrap();
        assert_eq!(theirs.tenant, other);
        let all = t.store.find_users(TenantScope::All, Some(email("bob@example.com")), true).await.unwrap();
        assert_eq!(all.len(), 2);
    }

    pub async fn auth_keys_are_tenant_scoped(t: TestStore) {
        let a = TenantId::random();
        let b = TenantId::random();
        let never = TenantId::random();
        let carol = email("carol@example.com");
        t.store.create_user(a, carol.clone(), Role::Admin, new_key("Akey0001", Scopes::ALL), None).await.unwrap();
        t.store
            .create_user(b, email("dave@example.com"), Role::Admin, new_key("Bkey0001", Scopes::ALL), None)
            .await
            .unwrap();
        let id = key_id("Akey0001");
        for other in [b, never] {
            assert!(is_not_found(t.store.revoke_key(other, id.clone(), None).await, "key Akey0001"));
            assert!(is_not_found(t.store.delete_key(other, id.clone(), None).await, "key Akey0001"));
            assert!(is_not_found(
                t.store.set_user_active(other, carol.clone(), false, None).await,
                "user carol@example.com"
            ));
            assert!(is_not_found(
                t.store.create_key(other, carol.clone(), new_key("Xkey0001", Scopes::READ), None).await,
                "user carol@example.com"
            ));
            assert!(is_not_found(
                t.store.regenerate_key(other, carol.clone(), new_key("Xkey0002", Scopes::READ), None).await,
                "user carol@example.com"
            ));
            assert!(t.store.find_users(TenantScope::One(other), Some(carol.clone()), true).await.unwrap().is_empty());
            assert!(t.store.list_keys(TenantScope::One(other), Some(carol.clone()), true).await.unwrap().is_empty());
            let theirs = t.store.list_keys(TenantScope::One(other), None, true).await.unwrap();
            assert!(theirs.iter().all(|k| k.tenant == other && k.key_id != id), "{theirs:?}");
        }
        // Every refused call left the key as it was.
        let found = t.store.lookup_key(&id).await.unwrap().unwrap();
        assert_eq!(found.record.tenant, a);
        assert_eq!(found.record.revoked_at, None);
        assert!(found.user_active);
        assert!(t.store.lookup_key(&key_id("Xkey0001")).await.unwrap().is_none());
        let all = t.store.list_keys(TenantScope::All, None, true).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(t.store.list_keys(TenantScope::One(a), None, true).await.unwrap().len(), 1);
    }

    pub async fn auth_revoke_is_idempotent_and_bumps_generation(t: TestStore) {
        let erin = email("erin@example.com");
        t.store.create_user(T, erin.clone(), Role::Writer, new_key("Ekey0001", Scopes::READ), None).await.unwrap();
        let id = key_id("Ekey0001");
        let g0 = t.store.auth_generation().await.unwrap();
        let revoked = t.store.revoke_key(T, id.clone(), Some("admin@example.com".into())).await.unwrap();
        let at = revoked.revoked_at.expect("revoked");
        let g1 = t.store.auth_generation().await.unwrap();
        assert!(g1 > g0, "revoking bumps the generation ({g0} -> {g1})");
        let again = t.store.revoke_key(T, id.clone(), None).await.unwrap();
        assert_eq!(again.revoked_at, Some(at), "revoking again changes nothing");
        assert_eq!(t.store.auth_generation().await.unwrap(), g1);
        assert_eq!(t.store.lookup_key(&id).await.unwrap().unwrap().record.revoked_at, Some(at));
        assert!(t.store.list_keys(TenantScope::One(T), Some(erin.clone()), false).await.unwrap().is_empty());
        assert_eq!(t.store.list_keys(TenantScope::One(T), Some(erin.clone()), true).await.unwrap().len(), 1);

        t.store.delete_key(T, id.clone(), None).await.unwrap();
        let g2 = t.store.auth_generation().await.unwrap();
        assert!(g2 > g1, "deleting bumps the generation");
        assert!(t.store.lookup_key(&id).await.unwrap().is_none());
        assert!(is_not_found(t.store.delete_key(T, id.clone(), None).await, "key Ekey0001"));
        assert!(is_not_found(t.store.revoke_key(T, id, None).await, "key Ekey0001"));
        assert_eq!(t.store.auth_generation().await.unwrap(), g2);
        // The user stays, without keys.
        assert_eq!(t.store.find_users(TenantScope::One(T), Some(erin), false).await.unwrap().len(), 1);
    }

    pub async fn auth_deactivate_bumps_generation(t: TestStore) {
        let fay = email("fay@example.com");
        t.store.create_user(T, fay.clone(), Role::Admin, new_key("Fkey0001", Scopes::ALL), None).await.unwrap();
        let g0 = t.store.auth_generation().await.unwrap();
        let user = t.store.set_user_active(T, fay.clone(), false, Some("op".into())).await.unwrap();
        assert!(!user.is_active);
        let g1 = t.store.auth_generation().await.unwrap();
        assert!(g1 > g0);
        let found = t.store.lookup_key(&key_id("Fkey0001")).await.unwrap().unwrap();
        assert!(!found.user_active);
        assert_eq!(found.record.revoked_at, None, "deactivation stops keys without revoking them");
        assert!(t.store.find_users(TenantScope::One(T), Some(fay.clone()), false).await.unwrap().is_empty());
        let listed = t.store.find_users(TenantScope::One(T), Some(fay.clone()), true).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].is_active);

        let user = t.store.set_user_active(T, fay.clone(), true, None).await.unwrap();
        assert!(user.is_active);
        assert!(t.store.auth_generation().await.unwrap() > g1);
        assert!(t.store.lookup_key(&key_id("Fkey0001")).await.unwrap().unwrap().user_active);
        assert!(is_not_found(
            t.store.set_user_active(T, email("ghost@example.com"), false, None).await,
            "user ghost@example.com"
        ));

        // Concurrent changes each count: no bump is lost.
        let g2 = t.store.auth_generation().await.unwrap();
        const N: usize = 8;
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let store = t.store.clone();
                let fay = fay.clone();
                tokio::spawn(async move { store.set_user_active(T, fay, i % 2 == 0, None).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(t.store.auth_generation().await.unwrap(), g2 + N as i64);
    }

    pub async fn auth_regenerate_revokes_old_keys(t: TestStore) {
        let gus = email("gus@example.com");
        t.store.create_user(T, gus.clone(), Role::Writer, new_key("Gkey0001", Scopes::READ), None).await.unwrap();
        t.store.create_key(T, gus.clone(), new_key("Gkey0002", Scopes::WRITE), None).await.unwrap();
        let g0 = t.store.auth_generation().await.unwrap();
        let fresh = t.store.regenerate_key(T, gus.clone(), new_key("Gkey0003", Scopes::READ), None).await.unwrap();
        assert_eq!(fresh.key_id.as_str(), "Gkey0003");
        assert_eq!(fresh.revoked_at, None);
        assert!(t.store.auth_generation().await.unwrap() > g0);
        for old in ["Gkey0001", "Gkey0002"] {
            let found = t.store.lookup_key(&key_id(old)).await.unwrap().unwrap();
            assert!(found.record.revoked_at.is_some(), "{old} revoked");
        }
        assert_eq!(t.store.lookup_key(&key_id("Gkey0003")).await.unwrap().unwrap().record.revoked_at, None);
        let live = t.store.list_keys(TenantScope::One(T), Some(gus.clone()), false).await.unwrap();
        assert_eq!(live.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(), vec!["Gkey0003"]);
        assert_eq!(t.store.list_keys(TenantScope::One(T), Some(gus), true).await.unwrap().len(), 3);
    }

    pub async fn auth_usage_accumulates(t: TestStore) {
        let other = TenantId::random();
        t.store
            .create_user(T, email("hal@example.com"), Role::Reader, new_key("Hkey0001", Scopes::READ), None)
            .await
            .unwrap();
        let delta = |tenant: TenantId, id: &str, count: i64, at: &str| UsageDelta {
            tenant,
            key_id: key_id(id),
            count,
            last_used_at: ts(at),
        };
        // 1000 uses in several flushes; a flush may name a key twice, unknown keys
        // and another tenant's claim on the key are skipped without failing the flush.
        t.store
            .record_usage(vec![
                delta(T, "Hkey0001", 100, "2025-01-01T00:00:01Z"),
                delta(T, "Nokey001", 7, "2025-01-01T00:00:01Z"),
                delta(T, "Hkey0001", 150, "2025-01-01T00:00:02.5Z"),
                delta(other, "Hkey0001", 9, "2025-01-01T00:09:00Z"),
            ])
            .await
            .unwrap();
        let after = t.store.lookup_key(&key_id("Hkey0001")).await.unwrap().unwrap().record;
        assert_eq!(after.use_count, 250);
        assert_eq!(after.last_used_at, Some(ts("2025-01-01T00:00:02.5Z")));
        for (i, minute) in ["03", "05", "04"].iter().enumerate() {
            let at = format!("2025-01-01T00:{minute}:00Z");
            t.store.record_usage(vec![delta(T, "Hkey0001", 250 - i as i64, &at)]).await.unwrap();
        }
        t.store.record_usage(vec![delta(T, "Hkey0001", 3, "2024-12-31T00:00:00Z")]).await.unwrap();
        t.store.record_usage(Vec::new()).await.unwrap();
        let after = t.store.lookup_key(&key_id("Hkey0001")).await.unwrap().unwrap().record;
        assert_eq!(after.use_count, 1000);
        // last_used_at only moves forward, whatever order flushes arrive in.
        assert_eq!(after.last_used_at, Some(ts("2025-01-01T00:05:00Z")));
        let listed = t.store.list_keys(TenantScope::One(T), None, false).await.unwrap();
        assert_eq!(listed[0].use_count, 1000);
    }

    pub async fn auth_pepper_is_fixed_at_first_use(t: TestStore) {
        // Processes starting at once agree on one pepper, and one fingerprint.
        let tasks: Vec<_> = (1..=8u8)
            .map(|i| {
                let store = t.store.clone();
                tokio::spawn(async move { store.database_pepper([i; 32]).await.unwrap() })
            })
            .collect();
        let mut peppers = Vec::new();
        for task in tasks {
            peppers.push(task.await.unwrap());
        }
        let first = peppers[0].clone();
        assert_eq!(first.len(), 32);
        assert!((1..=8u8).any(|i| first == vec![i; 32]), "the pepper is one of the candidates");
        assert!(peppers.iter().all(|p| *p == first));
        assert_eq!(t.store.database_pepper([99; 32]).await.unwrap(), first, "the pepper never changes");

        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = t.store.clone();
                tokio::spawn(async move { store.claim_pepper_fingerprint(&format!("fp{i}")).await.unwrap() })
            })
            .collect();
        let mut claims = Vec::new();
        for task in tasks {
            claims.push(task.await.unwrap());
        }
        assert_eq!(claims.iter().filter(|c| c.is_none()).count(), 1, "{claims:?}");
        let winner = format!("fp{}", claims.iter().position(Option::is_none).unwrap());
        assert!(claims.iter().flatten().all(|c| *c == winner));
        assert_eq!(t.store.claim_pepper_fingerprint(&winner).await.unwrap(), None);
        assert_eq!(t.store.claim_pepper_fingerprint("other").await.unwrap(), Some(winner.clone()));
        assert_eq!(t.store.claim_pepper_fingerprint(&winner).await.unwrap(), None);
    }

    /// Turning auth on (creating the users tables) bumps the counter, so running
    /// servers notice; creating them again does not.
    pub async fn creating_users_tables_bumps_auth_generation(t: TestStore) {
        let g0 = t.store.auth_generation().await.unwrap();
        t.store.create_schema(false).await.unwrap();
        assert_eq!(t.store.auth_generation().await.unwrap(), g0);
        let report = t.store.create_schema(true).await.unwrap();
        assert!(report.created.contains(&"api_keys".to_string()));
        let g1 = t.store.auth_generation().await.unwrap();
        assert!(g1 > g0);
        t.store.create_schema(true).await.unwrap();
        assert_eq!(t.store.auth_generation().await.unwrap(), g1);
        // And the new tables work at once.
        t.store
            .create_user(T, email("ivy@example.com"), Role::Admin, new_key("Ikey0001", Scopes::ALL), None)
            .await
            .unwrap();
        assert!(t.store.lookup_key(&key_id("Ikey0001")).await.unwrap().is_some());
    }
}

macro_rules! conformance {
    ($backend_mod:ident, $backend:expr) => {
        mod $backend_mod {
            use timedb::testing::{Backend, TestStore, fresh, fresh_with};

            /// A fresh store with the users tables.
            async fn fresh_users(backend: Backend) -> TestStore {
                fresh_with(backend, true).await
            }

            conformance!(@cases $backend, fresh;
                upload_reuses_series_by_key,
                flat_takes_latest_known_run,
                flat_ties_go_to_the_latest_insert,
                overlapping_shows_every_revision_in_order,
                flat_orders_by_valid_time_then_key,
                as_of_sees_only_runs_known_before,
                valid_window_is_half_open,
                series_filters_by_key_id_and_labels,
                intervals_and_nulls_are_distinct_values,
                updates_write_versions_and_keep_history,
                flat_history_shows_only_the_chosen_run,
                a_failing_update_batch_changes_nothing,
                concurrent_updates_keep_one_current_and_every_version,
                tenants_are_isolated,
                series_definitions_conflict_or_match,
                a_failed_upload_writes_nothing,
                series_id_must_match_the_key,
                runs_are_listed_and_described,
                schema_is_versioned_idempotent_and_droppable,
                large_reads_stream_in_batches,
                creating_users_tables_bumps_auth_generation
            );
            conformance!(@cases $backend, fresh_users;
                auth_user_and_key_roundtrip,
                auth_duplicate_email_conflicts,
                auth_keys_are_tenant_scoped,
                auth_revoke_is_idempotent_and_bumps_generation,
                auth_deactivate_bumps_generation,
                auth_regenerate_revokes_old_keys,
                auth_usage_accumulates,
                auth_pepper_is_fixed_at_first_use
            );
        }
    };
    (@cases $backend:expr, $fresh:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::cases::$case($fresh($backend).await).await;
            }
        )*
    };
}

conformance!(sqlite, timedb::testing::Backend::Sqlite);
conformance!(postgres, timedb::testing::Backend::Postgres);
