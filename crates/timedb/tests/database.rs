//! The embedded API ([`timedb::Database`]) as a library user drives it: open a DSN on an
//! empty database, upload, read flat / overlapping / as of, correct, read the history.
//! Every case runs on SQLite and on PostgreSQL (`TIMEDB_TEST_PG_DSN`).

use timedb::database::{RunBuilder, ValueRow};
use timedb::model::*;
use timedb::store::StoreError;
use timedb::testing::{Backend, TestStore, fresh_database};
use timedb::{Database, TenantId};

/// An instant as the HTTP API would parse it (a bare date is midnight UTC).
fn t(s: &str) -> Timestamp {
    timedb::model::time::parse_timestamp("t", s).unwrap()
}

/// An empty database for the test, and a `Database` opened on it by DSN (which creates
/// the schema, as a first-time user's call would).
async fn open(backend: Backend) -> (TestStore, Database) {
    let test = fresh_database(backend).await;
    assert_eq!(test.store.schema_status().await.unwrap().version, None, "the database starts empty");
    let db = Database::open(&test.dsn_text).await.unwrap();
    (test, db)
}

/// Two forecast runs for the same hours (Monday's, Tuesday's revision), plus a measured
/// series only Monday's run has.
async fn two_forecasts(db: &Database) -> (RunReceipt, RunReceipt) {
    let monday = RunBuilder::new()
        .workflow_id("forecast")
        .known_time(t("2025-01-06T18:00:00Z"))
        .series("wind", "MW")
        .value("wind", t("2025-01-08T12:00:00Z"), 10.0)
        .value("wind", t("2025-01-08T13:00:00Z"), 11.0)
        .row(ValueRow::new("temp", t("2025-01-08T12:00:00Z"), None).annotation(" sensor down ").tags(["Gap", "gap"]));
    let tuesday = RunBuilder::new()
        .workflow_id("forecast")
        .known_time(t("2025-01-07T18:00:00Z"))
        .value("wind", t("2025-01-08T12:00:00Z"), 12.0)
        .value("wind", t("2025-01-08T13:00:00Z"), 13.0);
    (db.upload(monday).await.unwrap(), db.upload(tuesday).await.unwrap())
}

fn rows(records: &[ValueRecord]) -> Vec<(String, String, Option<f64>)> {
    records.iter().map(|r| (r.series.key.to_string(), r.valid_time.format("%dT%H").to_string(), r.value)).collect()
}

fn row(k: &str, at: &str, v: Option<f64>) -> (String, String, Option<f64>) {
    (k.to_owned(), at.to_owned(), v)
}

async fn upload_read_update_history(backend: Backend) {
    let (_test, db) = open(backend).await;
    let (monday, tuesday) = two_forecasts(&db).await;
    assert_eq!(monday.values_written, 3);
    assert_eq!(monday.known_time, t("2025-01-06T18:00:00Z"));

    // Flat: the latest known value per (series, valid_time), ordered by time then key.
    let flat = db.read(ValueQuery::default()).await.unwrap();
    assert_eq!(
        rows(&flat),
        [row("temp", "08T12", None), row("wind", "08T12", Some(12.0)), row("wind", "08T13", Some(13.0))]
    );
    assert_eq!(flat[0].annotation.as_deref(), Some("sensor down"), "annotation is trimmed");
    assert_eq!(flat[0].tags.as_ref().map(Tags::as_slice), Some(&["gap".to_owned()][..]), "tags canonical");
    assert_eq!(flat[1].series.unit.as_str(), "MW");
    assert_eq!(flat[1].run_id, tuesday.run_id);

    // Overlapping: every revision, ordered by known_time.
    let wind = || vec![SeriesKey::parse("k", "wind").unwrap()];
    let overlapping =
        db.read(ValueQuery { mode: ReadMode::Overlapping, ..ValueQuery::default() }.with_keys(wind())).await.unwrap();
    let seen: Vec<_> = overlapping.iter().map(|r| (r.known_time, r.value)).collect();
    assert_eq!(
        seen,
        [
            (monday.known_time, Some(10.0)),
            (monday.known_time, Some(11.0)),
            (tuesday.known_time, Some(12.0)),
            (tuesday.known_time, Some(13.0)),
        ]
    );

    // As of Tuesday noon only Monday's forecast was known; before Monday, nothing.
    let as_of = |at: &str| ValueQuery { end_known: Some(t(at)), ..ValueQuery::default() }.with_keys(wind());
    let values: Vec<_> = db.read(as_of("2025-01-07T12:00:00Z")).await.unwrap().iter().map(|r| r.value).collect();
    assert_eq!(values, [Some(10.0), Some(11.0)]);
    assert!(db.read(as_of("2025-01-06T18:00:00Z")).await.unwrap().is_empty(), "end_known is exclusive");
    // A valid-time window is half-open.
    let window = ValueQuery {
        start_valid: Some(t("2025-01-08T13:00:00Z")),
        end_valid: Some(t("2025-01-08T14:00:00Z")),
        ..ValueQuery::default()
    };
    assert_eq!(rows(&db.read(window).await.unwrap()), [row("wind", "08T13", Some(13.0))]);
    // Windows are checked, as the HTTP API checks them.
    let backwards =
        ValueQuery { start_valid: Some(t("2025-01-09")), end_valid: Some(t("2025-01-08")), ..as_of("2025-01-09") };
    assert!(matches!(db.read(backwards).await, Err(StoreError::Invalid(e)) if e.field == "end_valid"));

    // Correct Tuesday's 12:00 wind value by its address, as an analyst.
    let analyst = db.acting_as("analyst@example.com");
    let wind_id = monday.series_ids.iter().find(|(k, _)| k.as_str() == "wind").unwrap().1;
    let address = ValueAddress::Key {
        run_id: tuesday.run_id,
        series_id: wind_id,
        valid_time: t("2025-01-08T12:00:00Z"),
        valid_time_end: None,
    };
    let fix = ValueUpdate::new("u", address.clone(), Patch::Set(12.5), Patch::Set("checked".into()), Patch::Unchanged)
        .unwrap();
    let report = analyst.update([fix.clone()]).await.unwrap();
    assert_eq!(report.updated.len(), 1);
    assert_eq!(report.updated[0].changed_by.as_deref(), Some("analyst@example.com"));
    // The same correction again changes nothing and writes nothing.
    let again = analyst.update([fix]).await.unwrap();
    assert_eq!((again.updated.len(), again.skipped_no_ops.len()), (0, 1));

    let flat = db.read(ValueQuery::default().with_keys(wind())).await.unwrap();
    assert_eq!(flat[0].value, Some(12.5));
    assert_eq!(flat[0].annotation.as_deref(), Some("checked"));

    // History: in flat mode every version of the value flat selects, oldest first.
    let history = db.read(ValueQuery { all_versions: true, ..ValueQuery::default() }.with_keys(wind())).await.unwrap();
    let versions: Vec<_> = history.iter().map(|r| (r.valid_time, r.value, r.is_current)).collect();
    assert_eq!(
        versions,
        [
            (t("2025-01-08T12:00:00Z"), Some(12.0), false),
            (t("2025-01-08T12:00:00Z"), Some(12.5), true),
            (t("2025-01-08T13:00:00Z"), Some(13.0), true),
        ]
    );
    assert!(history[1].value_id > history[0].value_id);
    assert_eq!(history[1].changed_by.as_deref(), Some("analyst@example.com"));
    // In overlapping mode, every version of every revision (Monday's two + Tuesday's three).
    let all = db
        .read(ValueQuery { mode: ReadMode::Overlapping, all_versions: true, ..ValueQuery::default() }.with_keys(wind()))
        .await
        .unwrap();
    assert_eq!(all.len(), 5);

    // A failing batch changes nothing: the second update addresses a value that is not there.
    let good = ValueUpdate::new("u0", address, Patch::Set(99.0), Patch::Unchanged, Patch::Unchanged).unwrap();
    let missing = ValueUpdate::new(
        "u1",
        ValueAddress::Id(ValueId(i64::MAX)),
        Patch::Set(1.0),
        Patch::Unchanged,
        Patch::Unchanged,
    )
    .unwrap();
    assert!(matches!(db.update([good, missing]).await, Err(StoreError::NotFound(_))));
    assert_eq!(db.read(ValueQuery::default().with_keys(wind())).await.unwrap()[0].value, Some(12.5));

    // Streaming gives the same rows as the in-memory read.
    let mut stream = db.read_stream(ValueQuery::default()).await.unwrap();
    let mut streamed = Vec::new();
    while let Some(batch) = stream.next_batch().await {
        streamed.extend(batch.unwrap());
    }
    assert_eq!(streamed, db.read(ValueQuery::default()).await.unwrap());
}

async fn series_runs_and_tenants(backend: Backend) {
    let (test, db) = open(backend).await;
    let (monday, tuesday) = two_forecasts(&db).await;

    // Runs: newest known_time first; a limit of 0 is no limit; details by id.
    let runs = db.list_runs(RunFilter::default()).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.run_id).collect::<Vec<_>>(), [tuesday.run_id, monday.run_id]);
    let first = db.list_runs(RunFilter { limit: 1, ..RunFilter::default() }).await.unwrap();
    assert_eq!(first.len(), 1);
    let run = db.get_run(monday.run_id).await.unwrap();
    assert_eq!((run.workflow_id.as_str(), run.value_count, run.created_by), ("forecast", 3, None));
    let authored = db.acting_as("loader").upload(RunBuilder::new().value("wind", t("2025-02-01"), 1.0)).await.unwrap();
    assert_eq!(db.get_run(authored.run_id).await.unwrap().created_by.as_deref(), Some("loader"));

    // Series: get-or-create by key; a different unit is a conflict.
    let listed = db.list_series(SeriesFilter::default()).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["temp", "wind"]);
    let wind = SeriesSpec::key_only(SeriesKey::parse("k", "wind").unwrap());
    let (series, created) = db.create_series(wind.clone()).await.unwrap();
    assert!(!created);
    assert_eq!(series.unit.as_str(), "MW");
    assert_eq!(db.get_series(series.series_id).await.unwrap(), series);
    let kw = SeriesSpec { unit: Some(Unit::parse("u", Some("kW")).unwrap()), ..wind };
    assert!(matches!(db.create_series(kw).await, Err(StoreError::Conflict(_))));
    let (solar, created) =
        db.create_series(SeriesSpec::key_only(SeriesKey::parse("k", "solar").unwrap())).await.unwrap();
    assert!(created);
    assert_eq!(solar.unit.as_str(), Unit::DEFAULT);

    // Another tenant sees none of it, and cannot address it by id.
    let other = db.for_tenant(TenantId::random());
    assert!(other.read(ValueQuery::default()).await.unwrap().is_empty());
    assert!(other.list_series(SeriesFilter::default()).await.unwrap().is_empty());
    assert!(other.list_runs(RunFilter::default()).await.unwrap().is_empty());
    assert!(matches!(other.get_series(series.series_id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(other.get_run(monday.run_id).await, Err(StoreError::NotFound(_))));
    other.upload(RunBuilder::new().value("wind", t("2025-01-08T12:00:00Z"), 7.0)).await.unwrap();
    assert_eq!(other.read(ValueQuery::default()).await.unwrap()[0].value, Some(7.0));
    assert_eq!(db.read(ValueQuery::default().with_ids(vec![series.series_id])).await.unwrap()[0].value, Some(12.0));

    // A rejected upload writes nothing at all (not even its new series).
    let bad =
        RunBuilder::new().value("fresh", t("2025-01-01"), 1.0).interval("fresh", t("2025-01-02"), t("2025-01-01"), 2.0);
    match db.upload(bad).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "value_rows[1].valid_time_end"),
        other => panic!("expected an invalid field, got {other:?}"),
    }
    assert_eq!(db.list_series(SeriesFilter::default()).await.unwrap().len(), 3);

    // Reopening finds the schema and the data; the model's NewRun is accepted as is.
    drop(db);
    let db = Database::open(&test.dsn_text).await.unwrap();
    let mut run = NewRun::new(WorkflowId::parse("w", None).unwrap(), t("2025-03-01"), None, None, None).unwrap();
    run.push(
        0,
        RowInput {
            key: SeriesKey::parse("k", "solar").unwrap(),
            series_id: Some(solar.series_id),
            valid_time: t("2025-03-01T12:00:00Z"),
            valid_time_end: None,
            value: Some(3.5),
            annotation: None,
            tags: None,
        },
    )
    .unwrap();
    let receipt = db.upload(run.finish()).await.unwrap();
    assert_eq!(receipt.series_ids, [(SeriesKey::parse("k", "solar").unwrap(), solar.series_id)]);
    assert_eq!(db.list_runs(RunFilter::default()).await.unwrap().len(), 4);
}

/// Opening checks the schema version instead of using a database it does not understand.
async fn open_creates_the_core_schema_and_checks_dsns(backend: Backend) {
    let (test, _db) = open(backend).await;
    let status = test.store.schema_status().await.unwrap();
    assert_eq!(status.version, Some(timedb::store::SCHEMA_VERSION));
    assert!(!status.has_users, "the embedded API creates the core schema only");
    assert!(matches!(Database::open("mysql://x").await, Err(StoreError::Invalid(e)) if e.field == "dsn"));
}

macro_rules! on_backend {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn upload_read_update_history() {
                super::upload_read_update_history($backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn series_runs_and_tenants() {
                super::series_runs_and_tenants($backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn open_creates_the_core_schema_and_checks_dsns() {
                super::open_creates_the_core_schema_and_checks_dsns($backend).await;
            }
        }
    };
}

on_backend!(sqlite, Backend::Sqlite);
on_backend!(postgres, Backend::Postgres);

#[tokio::test]
async fn open_default_uses_the_working_directory_file() {
    // The one test that depends on the working directory: it runs in its own process
    // under nextest, and the file lands in a temp dir, never in the source tree.
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let db = Database::open_default().await.unwrap();
    db.upload(RunBuilder::new().value("x", t("2025-01-01T00:00:00Z"), 1.0)).await.unwrap();
    assert!(dir.path().join("timedb.sqlite3").exists());
    assert_eq!(db.backend(), "sqlite");
}
