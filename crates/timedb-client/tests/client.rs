//! The client against the real server: every endpoint and every error mapping, on both
//! stores. The server runs in-process on 127.0.0.1 port 0 with authentication on, as
//! `timedb api` starts it (`timedb-server`'s `tests/common` does the same).

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{TimeZone, Utc};
use futures_util::StreamExt;
use timedb::TenantId;
use timedb::model::{Email, Role};
use timedb::testing::{Backend, TestStore, fresh_with};
use timedb_client::{
    BulkFormat, Client, Correction, Error, NewKey, NewSeries, NewUser, Patch, ReadFormat, ReadMode, ReadQuery,
    RetryPolicy, RunFilter, RunOptions, SeriesFilter, Timestamp, Upload, ValueAddress, ValueRow,
};
use timedb_server::auth::{AuthConfig, Verifier, mint};
use timedb_server::http::{self, HttpConfig};

/// A running server with an admin key for the default tenant.
struct App {
    url: String,
    db: TestStore,
    verifier: Arc<Verifier>,
    admin_key: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn spawn(backend: Backend) -> App {
    let db = fresh_with(backend, true).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store: Arc<dyn timedb::Store> = db.store.clone();
    let verifier = Verifier::new(store.clone(), AuthConfig::default(), None).await.unwrap();
    verifier.spawn_background();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let v = verifier.clone();
    tokio::spawn(async move {
        http::serve(listener, store, v, &HttpConfig::default(), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let mut app = App { url, db, verifier, admin_key: String::new(), _shutdown: tx };
    app.admin_key = app.add_user(TenantId::DEFAULT, "admin@a.test", Role::Admin).await;
    app
}

impl App {
    /// Create a user directly in the store (as the operator CLI does); their first key.
    async fn add_user(&self, tenant: TenantId, email: &str, role: Role) -> String {
        let hasher = self.verifier.hasher().expect("auth is on");
        let (key, new) = mint(&self.verifier.config.format, hasher, role.scopes(), None, None, None);
        let email = Email::parse("email", email).unwrap();
        self.db.store.create_user(tenant, email, role, new, Some("test".into())).await.unwrap();
        key.reveal().to_owned()
    }

    fn client(&self, key: &str) -> Client {
        Client::new(&self.url).unwrap().with_api_key(key)
    }

    fn admin(&self) -> Client {
        self.client(&self.admin_key)
    }
}

fn t(h: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(h)
}

/// Assert an [`Error::Api`] with this status and code.
#[track_caller]
fn assert_api<T: std::fmt::Debug>(got: Result<T, Error>, status: u16, code: &str) -> String {
    match got {
        Err(Error::Api { status: s, code: c, detail, .. }) => {
            assert_eq!((s, c.as_str()), (status, code), "detail: {detail}");
            detail
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

mod cases {
    use super::*;

    pub async fn uploads_reads_as_of_and_corrections(backend: Backend) {
        let app = spawn(backend).await;
        let c = app.admin();
        let rows = |base: f64| (0..3).map(|h| ValueRow::new("wind", t(h), Some(base + h as f64))).collect::<Vec<_>>();
        let first = c.upload(&Upload::new(rows(10.0)).known_at(t(-12))).await.unwrap();
        assert_eq!(first.message, "Run created successfully");
        let mut second = Upload::new(rows(20.0)).known_at(t(-6));
        second.workflow_id = Some("forecast".into());
        second.value_rows.push(ValueRow { annotation: Some("gusty".into()), ..ValueRow::new("gust", t(0), None) });
        let second = c.upload(&second).await.unwrap();
        assert_eq!(second.series_ids["wind"], first.series_ids["wind"], "one series per key");

        // Flat: the latest known run wins; ordered by (valid_time, series_key).
        let flat = c.read(&ReadQuery::default()).await.unwrap();
        let got: Vec<_> = flat.iter().map(|r| (r.series_key.as_str(), r.valid_time, r.value)).collect();
        assert_eq!(
            got,
            vec![
                ("gust", t(0), None),
                ("wind", t(0), Some(20.0)),
                ("wind", t(1), Some(21.0)),
                ("wind", t(2), Some(22.0))
            ]
        );
        assert!(flat.iter().all(|r| r.known_time.is_none()), "flat rows carry no known_time");

        // As of before the second run: only the first is visible.
        let as_of = ReadQuery { end_known: Some(t(-7)), series_keys: vec!["wind".into()], ..ReadQuery::default() };
        let values: Vec<_> = c.read(&as_of).await.unwrap().iter().map(|r| r.value).collect();
        assert_eq!(values, vec![Some(10.0), Some(11.0), Some(12.0)]);

        // Overlapping: both runs side by side with their known times; window filters apply.
        let overlapping = ReadQuery {
            mode: ReadMode::Overlapping,
            start_valid: Some(t(1)),
            end_valid: Some(t(2)),
            series_keys: vec!["wind".into()],
            ..ReadQuery::default()
        };
        let got: Vec<_> = c.read(&overlapping).await.unwrap().iter().map(|r| (r.known_time, r.value)).collect();
        assert_eq!(got, vec![(Some(t(-12)), Some(11.0)), (Some(t(-6)), Some(21.0))]);

        // Corrections: by key (value + annotation), then by value_id (clear annotation),
        // then a no-op.
        let wind = first.series_ids["wind"];
        let fix = Correction::of(ValueAddress::Key {
            run_id: second.run_id,
            series_id: wind,
            valid_time: t(0),
            valid_time_end: None,
        })
        .value(Some(25.0))
        .annotation(Some("  checked  "))
        .tags(Some(vec!["Manual".into()]));
        let report = c.update(&[fix]).await.unwrap();
        let updated = &report.updated[0];
        assert_eq!((updated.value, updated.annotation.as_deref()), (Some(25.0), Some("checked")));
        assert_eq!(updated.tags.as_deref(), Some(&["manual".to_owned()][..]));
        assert_eq!(updated.changed_by.as_deref(), Some("admin@a.test"));
        let clear = Correction { annotation: Patch::Clear, ..Correction::of(ValueAddress::Id(updated.value_id)) };
        let report = c.update(&[clear]).await.unwrap();
        assert_eq!(report.updated[0].annotation, None);
        let noop = Correction::of(ValueAddress::Id(report.updated[0].value_id)).value(Some(25.0));
        let report = c.update(&[noop]).await.unwrap();
        assert_eq!((report.updated.len(), report.skipped_no_ops.len()), (0, 1));

        // History: three versions of the corrected value, oldest first, one current.
        let history = ReadQuery {
            all_versions: true,
            series_keys: vec!["wind".into()],
            end_valid: Some(t(1)),
            ..ReadQuery::default()
        };
        let versions = c.read(&history).await.unwrap();
        let got: Vec<_> = versions.iter().map(|r| (r.value, r.is_current)).collect();
        assert_eq!(got, vec![(Some(20.0), Some(false)), (Some(25.0), Some(false)), (Some(25.0), Some(true))]);
        assert!(versions.iter().all(|r| r.value_id.is_some() && r.run_id == Some(second.run_id)));

        // Errors: 422 names the field; 404 for an unknown value; 400 for a bad filter.
        let bad = Upload::new(vec![ValueRow::new(" ", t(0), Some(1.0))]);
        let detail = assert_api(c.upload(&bad).await, 422, "INVALID_FIELD");
        assert!(detail.contains("value_rows[0].value_key"), "{detail}");
        let dup = Upload::new(vec![ValueRow::new("x", t(0), Some(1.0)), ValueRow::new("x", t(0), Some(2.0))]);
        assert_eq!(c.upload(&dup).await.unwrap_err().status(), Some(422));
        assert_api(c.update(&[Correction::of(ValueAddress::Id(999_999)).value(Some(1.0))]).await, 404, "NOT_FOUND");
        let backwards = ReadQuery { start_valid: Some(t(5)), end_valid: Some(t(1)), ..ReadQuery::default() };
        assert_eq!(c.read(&backwards).await.unwrap_err().status(), Some(422));
    }

    pub async fn bulk_uploads_and_streamed_reads(backend: Backend) {
        let app = spawn(backend).await;
        let c = app.admin();
        let csv =
            "value_key,valid_time,value,annotation\nload,2025-01-01T00:00:00Z,1.5,\nload,2025-01-01T01:00:00Z,,gap\n";
        let run = RunOptions { known_time: Some(t(-1)), workflow_id: Some("csv-job".into()), ..RunOptions::default() };
        let receipt = c.upload_bulk(BulkFormat::Csv, csv, &run).await.unwrap();
        assert_eq!(receipt.values_written, Some(2));
        let got = c.get_run(receipt.run_id).await.unwrap();
        assert_eq!((got.workflow_id.as_str(), got.known_time, got.value_count), ("csv-job", t(-1), 2));

        // Arrow: value_key, valid_time (µs, UTC), value.
        let schema = Arc::new(Schema::new(vec![
            Field::new("value_key", DataType::Utf8, false),
            Field::new("valid_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("value", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["price", "price"])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![t(0).timestamp_micros(), t(1).timestamp_micros()])
                        .with_timezone("UTC"),
                ),
                Arc::new(Float64Array::from(vec![Some(50.0), None])),
            ],
        )
        .unwrap();
        let mut body = Vec::new();
        {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut body, &schema).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
        }
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = sent.clone();
        let progress: timedb_client::Progress = Arc::new(move |n, total| {
            assert!(n <= total);
            seen.store(n, std::sync::atomic::Ordering::SeqCst);
        });
        let len = body.len() as u64;
        let receipt = c
            .upload_bulk_with_progress(BulkFormat::Arrow, body.into(), &RunOptions::default(), Some(progress))
            .await
            .unwrap();
        assert_eq!(receipt.values_written, Some(2));
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), len, "progress reached the whole body");

        // A bad CSV is the server's 422, naming the row.
        let detail = assert_api(
            c.upload_bulk(BulkFormat::Csv, "value_key,valid_time,value\nx,yesterday,1\n", &run).await,
            422,
            "INVALID_FIELD",
        );
        assert!(detail.contains("valid_time"), "{detail}");

        // Streamed CSV read.
        let query = ReadQuery { series_keys: vec!["load".into()], ..ReadQuery::default() };
        let text = collect(c.read_stream(&query, ReadFormat::Csv).await.unwrap()).await;
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "valid_time,valid_time_end,series_id,series_key,series_unit,value");
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].ends_with(",load,dimensionless,1.5") && lines[2].ends_with(",load,dimensionless,"), "{text}");

        // Streamed Arrow read decodes to the same rows.
        let query = ReadQuery { series_keys: vec!["price".into()], ..ReadQuery::default() };
        let bytes = collect(c.read_stream(&query, ReadFormat::Arrow).await.unwrap()).await;
        let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 2);
        let values = batches[0].column_by_name("value").unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((values.value(0), values.is_null(1)), (50.0, true));

        // Streamed JSON is the same document `read` decodes.
        let json = collect(c.read_stream(&query, ReadFormat::Json).await.unwrap()).await;
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["count"], 2);
    }

    pub async fn series_and_runs(backend: Backend) {
        let app = spawn(backend).await;
        let c = app.admin();
        let spec = NewSeries {
            name: "temp".into(),
            unit: Some("degC".into()),
            labels: Some([("site".to_owned(), "north".to_owned())].into()),
            description: Some("air temperature".into()),
        };
        let created = c.create_series(&spec).await.unwrap();
        assert!(created.created);
        let again = c.create_series(&spec).await.unwrap();
        assert_eq!((again.created, again.series_id), (false, created.series_id));
        assert_api(c.create_series(&NewSeries { unit: Some("K".into()), ..spec.clone() }).await, 409, "CONFLICT");
        assert_eq!(
            c.create_series(&NewSeries { name: "  ".into(), ..NewSeries::default() }).await.unwrap_err().status(),
            Some(422)
        );
        c.create_series(&NewSeries { name: "other".into(), ..NewSeries::default() }).await.unwrap();

        let all = c.list_series(&SeriesFilter::default()).await.unwrap();
        assert_eq!(all.len(), 2);
        let by_label =
            SeriesFilter { labels: [("site".to_owned(), "north".to_owned())].into(), ..SeriesFilter::default() };
        let north = c.list_series(&by_label).await.unwrap();
        assert_eq!(north.iter().map(|s| s.series_key.as_str()).collect::<Vec<_>>(), vec!["temp"]);
        let one = c.get_series(created.series_id).await.unwrap();
        assert_eq!((one.unit.as_str(), one.description.as_deref()), ("degC", Some("air temperature")));
        assert_api(c.get_series(uuid::Uuid::new_v4()).await, 404, "NOT_FOUND");
        let listing = c.list_timeseries().await.unwrap();
        assert_eq!(listing[&created.series_id].series_key, "temp");

        let run = c.upload(&Upload::new(vec![ValueRow::new("temp", t(0), Some(1.0))]).known_at(t(-1))).await.unwrap();
        c.upload(&Upload::new(vec![ValueRow::new("temp", t(0), Some(2.0))]).known_at(t(-2))).await.unwrap();
        let runs = c.list_runs(&RunFilter::default()).await.unwrap();
        assert_eq!(runs.len(), 2);
        let early = c.list_runs(&RunFilter { end_known: Some(t(-1)), ..RunFilter::default() }).await.unwrap();
        assert_eq!(early.len(), 1);
        assert_eq!(c.list_runs(&RunFilter { limit: Some(1), ..RunFilter::default() }).await.unwrap().len(), 1);
        let got = c.get_run(run.run_id).await.unwrap();
        assert_eq!((got.known_time, got.value_count, got.created_by.as_deref()), (t(-1), 1, Some("admin@a.test")));
        assert_api(c.get_run(uuid::Uuid::new_v4()).await, 404, "NOT_FOUND");
        assert_eq!(
            c.list_runs(&RunFilter { limit: Some(0), ..RunFilter::default() }).await.unwrap_err().status(),
            Some(422)
        );
    }

    pub async fn identity_keys_users_and_isolation(backend: Backend) {
        let app = spawn(backend).await;
        let admin = app.admin();
        assert_eq!(admin.healthz().await.unwrap().status, "ok");
        let me = admin.whoami().await.unwrap();
        assert_eq!((me.email.as_str(), me.role.as_str(), me.tenant_id), ("admin@a.test", "admin", TenantId::DEFAULT.0));

        // Missing and invalid keys.
        let anonymous = Client::new(&app.url).unwrap();
        assert_eq!(anonymous.healthz().await.unwrap().status, "ok", "healthz is public");
        let detail = assert_api(anonymous.whoami().await, 401, "MISSING_KEY");
        assert!(detail.contains("API key required"), "{detail}");
        assert_api(app.client("tdb_nonsense").read(&ReadQuery::default()).await, 401, "INVALID_KEY");

        // A read-only key: reads work, writes are 403.
        let created = admin
            .create_api_key(&NewKey {
                note: Some("dashboard".into()),
                scopes: Some(vec!["read".into()]),
                ..NewKey::default()
            })
            .await
            .unwrap();
        assert_eq!((created.info.scopes.clone(), created.info.status.as_str()), (vec!["read".to_owned()], "active"));
        let reader = app.client(&created.key);
        reader.read(&ReadQuery::default()).await.unwrap();
        assert_api(
            reader.upload(&Upload::new(vec![ValueRow::new("x", t(0), Some(1.0))])).await,
            403,
            "INSUFFICIENT_SCOPE",
        );
        assert_api(reader.list_users(false).await, 403, "INSUFFICIENT_SCOPE");
        assert_api(
            admin.create_api_key(&NewKey { scopes: Some(vec!["root".into()]), ..NewKey::default() }).await,
            422,
            "INVALID_FIELD",
        );
        let keys = admin.list_api_keys(None, false).await.unwrap();
        assert!(keys.iter().any(|k| k.key_id == created.info.key_id && k.note.as_deref() == Some("dashboard")));
        let revoked = admin.revoke_api_key(&created.info.key_id).await.unwrap();
        assert_eq!(revoked.status, "revoked");
        assert_api(reader.whoami().await, 401, "REVOKED_KEY");
        assert!(admin.list_api_keys(None, true).await.unwrap().iter().any(|k| k.key_id == created.info.key_id));
        assert_api(admin.revoke_api_key("ZZZZZZZZ").await, 404, "NOT_FOUND");

        // Users: create, deactivate, activate, regenerate.
        let bob =
            admin.create_user(&NewUser { email: "bob@a.test".into(), role: Some("writer".into()) }).await.unwrap();
        assert_eq!((bob.user.role.as_str(), bob.user.is_active), ("writer", true));
        assert_api(admin.create_user(&NewUser { email: "bob@a.test".into(), role: None }).await, 409, "CONFLICT");
        let as_bob = app.client(&bob.api_key);
        assert_eq!(as_bob.whoami().await.unwrap().email, "bob@a.test");
        assert_eq!(admin.list_api_keys(Some("bob@a.test"), false).await.unwrap().len(), 1);
        assert!(!admin.deactivate_user("bob@a.test").await.unwrap().is_active);
        assert_api(as_bob.whoami().await, 401, "INACTIVE_USER");
        assert_eq!(admin.list_users(false).await.unwrap().len(), 1);
        assert_eq!(admin.list_users(true).await.unwrap().len(), 2);
        assert!(admin.activate_user("bob@a.test").await.unwrap().is_active);
        as_bob.whoami().await.unwrap();
        let fresh = admin.regenerate_key("bob@a.test").await.unwrap();
        assert_api(as_bob.whoami().await, 401, "REVOKED_KEY");
        assert_eq!(app.client(&fresh.api_key).whoami().await.unwrap().key_id, fresh.key_id);
        assert_api(admin.deactivate_user("nobody@a.test").await, 404, "NOT_FOUND");

        // Another tenant sees nothing of this one, and its ids are 404 here.
        let mine = admin.upload(&Upload::new(vec![ValueRow::new("secret", t(0), Some(1.0))])).await.unwrap();
        let other = app.client(&app.add_user(TenantId(uuid::Uuid::new_v4()), "eve@b.test", Role::Admin).await);
        assert!(other.read(&ReadQuery::default()).await.unwrap().is_empty());
        assert!(other.list_series(&SeriesFilter::default()).await.unwrap().is_empty());
        assert!(other.list_timeseries().await.unwrap().is_empty());
        assert_api(other.get_series(mine.series_ids["secret"]).await, 404, "NOT_FOUND");
        assert_api(other.get_run(mine.run_id).await, 404, "NOT_FOUND");
        assert_api(other.deactivate_user("bob@a.test").await, 404, "NOT_FOUND");
        assert_eq!(other.list_users(true).await.unwrap().len(), 1);
    }

    pub async fn rate_limited_calls_wait_for_retry_after(backend: Backend) {
        let app = spawn(backend).await;
        let limited = app
            .admin()
            .create_api_key(&NewKey { rate_limit: Some("2/second".into()), ..NewKey::default() })
            .await
            .unwrap();

        // Without retries the 429 comes back with its Retry-After.
        let impatient = app.client(&limited.key).with_retry(RetryPolicy::none());
        let mut refused = None;
        for _ in 0..5 {
            if let Err(e) = impatient.whoami().await {
                refused = Some(e);
                break;
            }
        }
        match refused {
            Some(Error::Api { status: 429, code, retry_after, .. }) => {
                assert_eq!(code, "RATE_LIMITED");
                assert!(retry_after.is_some_and(|d| d >= Duration::from_secs(1)), "{retry_after:?}");
            }
            other => panic!("expected a 429 within 5 calls at 2/second, got {other:?}"),
        }

        // With the default policy every call succeeds, waiting as the server says.
        let patient = app.client(&limited.key);
        let start = Instant::now();
        for _ in 0..5 {
            patient.whoami().await.unwrap();
        }
        assert!(start.elapsed() >= Duration::from_secs(1), "5 calls at 2/second cannot finish at once");
    }
}

async fn collect(mut stream: timedb_client::ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(timedb::testing::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(timedb::testing::Backend::Postgres).await;
                }
            )*
        }
    };
}

per_backend!(
    uploads_reads_as_of_and_corrections,
    bulk_uploads_and_streamed_reads,
    series_and_runs,
    identity_keys_users_and_isolation,
    rate_limited_calls_wait_for_retry_after,
);

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    assert!(matches!(c.healthz().await, Err(Error::Transport(_))));
}

#[tokio::test]
async fn a_success_with_a_foreign_body_is_a_decode_error() {
    // A server that answers 200 with something that is not timedb's JSON.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await;
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello").await;
    });
    assert!(matches!(Client::new(&url).unwrap().healthz().await, Err(Error::Decode(_))));
}
