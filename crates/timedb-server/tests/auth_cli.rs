//! Authentication as operators and the upstream notebook (seed 001) use it: the real
//! `timedb` binary manages users and keys directly in the database while a separately
//! started `timedb api` serves HTTP. Every case runs on SQLite and on PostgreSQL
//! (`TIMEDB_TEST_PG_DSN`, see `scripts/pg-cluster.sh`).
//!
//! Every server a test starts is a [`Server`], whose `Drop` ends the process (SIGTERM, then
//! SIGKILL), so a failing assertion never leaves a server behind.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use timedb::testing::{Backend, TestStore, fresh_database};

mod common;

use common::process::{Server, command, strip_ansi};

/// How soon a change made by the CLI must reach a running server (SPEC §5 "Propagation").
const PROPAGATION: Duration = Duration::from_secs(1);

/// The detail upstream clients show for a request without a key (seed 001).
const MISSING_KEY_DETAIL: &str = "API key required. Please provide X-API-Key header.";

// ---------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------

/// Run `timedb args…` with no terminal (stdin is null), as `subprocess.run` does.
fn timedb(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// stdout and stderr, ANSI colours removed.
fn text(out: &Output) -> String {
    strip_ansi(&format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Run a command that must succeed; its output.
fn ok(args: &[&str]) -> String {
    let out = timedb(args);
    assert!(out.status.success(), "`timedb {}` failed: {}", args.join(" "), text(&out));
    text(&out)
}

/// Run a command that must fail; its output.
fn fails(args: &[&str]) -> String {
    let out = timedb(args);
    assert!(!out.status.success(), "`timedb {}` should have failed: {}", args.join(" "), text(&out));
    text(&out)
}

/// The notebook's `re.search(r'API Key:\s*([^\s]+)', clean)` on ANSI-stripped output.
fn api_key_in(output: &str) -> Option<String> {
    let clean = strip_ansi(output);
    let rest = clean.split_once("API Key:")?.1;
    rest.split_whitespace().next().map(str::to_owned)
}

/// The key printed by a key-minting command; it must be there.
fn key_from(output: &str) -> String {
    let key = api_key_in(output).unwrap_or_else(|| panic!("no `API Key:` in: {output}"));
    assert!(key.starts_with("tdb_"), "unexpected key shape {key:?} in: {output}");
    key
}

/// A key's public id and its secret: `tdb_<id8><secret32>_<crc6>`.
fn key_parts(key: &str) -> (String, String) {
    let (body, _crc) = key.rsplit_once('_').expect("a key has a checksum segment");
    let token = body.rsplit('_').next().unwrap();
    assert!(token.len() >= 8 + 32, "unexpected key shape {key:?}");
    (token[..8].to_owned(), token[8..].to_owned())
}

/// `users list --json` / `api-key list --json` output as JSON.
fn json_of(output: &str) -> Vec<Value> {
    let start = output.find('[').unwrap_or_else(|| panic!("no JSON array in: {output}"));
    let value: Value = serde_json::from_str(output[start..].trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    value.as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------------------
// A database, an HTTP client, a server
// ---------------------------------------------------------------------------------------

/// A fresh, empty database of one backend, plus a runtime for the HTTP client.
struct Db {
    /// Declared before `rt`, so it is dropped while the runtime still runs.
    store: TestStore,
    http: Http,
}

impl Db {
    fn new(backend: Backend) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let store = rt.block_on(fresh_database(backend));
        Db { store, http: Http { client: reqwest::Client::new(), rt } }
    }

    fn dsn(&self) -> &str {
        &self.store.dsn_text
    }
}

/// A blocking face on reqwest (the crate is built without its `blocking` feature).
struct Http {
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// How a request presents its key.
#[derive(Clone, Copy)]
enum Via {
    Header,
    Bearer,
    Apikey,
    Query,
}

impl Http {
    fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        self.rt.block_on(async {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
    }

    fn with_key(&self, req: reqwest::RequestBuilder, key: Option<&str>, via: Via) -> reqwest::RequestBuilder {
        match (key, via) {
            (None, _) => req,
            (Some(k), Via::Header) => req.header("X-API-Key", k),
            (Some(k), Via::Bearer) => req.header("Authorization", format!("Bearer {k}")),
            (Some(k), Via::Apikey) => req.header("Authorization", format!("Apikey {k}")),
            (Some(k), Via::Query) => req.query(&[("api_key", k)]),
        }
    }

    /// GET `url` with `query`, presenting `key` as `X-API-Key`.
    fn get(&self, url: &str, key: Option<&str>, query: &[(&str, &str)]) -> (u16, Value) {
        self.get_via(url, key, query, Via::Header)
    }

    fn get_via(&self, url: &str, key: Option<&str>, query: &[(&str, &str)], via: Via) -> (u16, Value) {
        self.send(self.with_key(self.client.get(url).query(query), key, via))
    }

    fn post(&self, url: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(self.with_key(self.client.post(url).json(body), key, Via::Header))
    }

    fn delete(&self, url: &str, key: Option<&str>) -> (u16, Value) {
        self.send(self.with_key(self.client.delete(url), key, Via::Header))
    }
}

/// Repeat `ask` until `done` holds or `limit` passes: `Ok(time it took, last answer)` or
/// `Err(last answer)`.
fn poll(
    limit: Duration,
    mut ask: impl FnMut() -> (u16, Value),
    done: impl Fn(u16, &Value) -> bool,
) -> Result<(Duration, Value), (u16, Value)> {
    let start = Instant::now();
    loop {
        let (status, body) = ask();
        if done(status, &body) {
            return Ok((start.elapsed(), body));
        }
        if start.elapsed() > limit {
            return Err((status, body));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Assert a 401 with the given code.
fn assert_refused(got: (u16, Value), code: &str) {
    let (status, body) = got;
    assert_eq!(status, 401, "expected 401 {code}: {body}");
    assert_eq!(body["code"], code, "{body}");
}

/// The seed's six hourly rows from 2025-01-01T00:00:00+00:00 for `key`, starting at `first`.
fn seed_rows(key: &str, first: f64) -> Vec<Value> {
    (0..6)
        .map(|i| json!({"valid_time": format!("2025-01-01T{i:02}:00:00+00:00"), "value_key": key, "value": first + i as f64}))
        .collect()
}

const SEED_WINDOW: &[(&str, &str)] =
    &[("start_valid", "2025-01-01T00:00:00+00:00"), ("end_valid", "2025-01-01T06:00:00+00:00"), ("mode", "flat")];

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

/// Seed 001 as the notebook runs it, through the binary.
fn seed_001_notebook_flow(backend: Backend) {
    let db = Db::new(backend);
    let d = db.dsn();
    let http = &db.http;

    // Part 1: a clean schema with the users table.
    let out = ok(&["delete", "tables", "--dsn", d, "-y"]);
    assert!(out.contains('✓'), "{out}");
    let out = ok(&["create", "tables", "--dsn", d, "--with-users", "-y"]);
    assert!(out.contains("Users table created") && out.contains("Schema created successfully"), "{out}");

    // Part 2: two tenants with one user each.
    let tenant_a = uuid::Uuid::new_v4().to_string();
    let tenant_b = uuid::Uuid::new_v4().to_string();
    let out_a = ok(&["users", "create", "--dsn", d, "--tenant-id", &tenant_a, "--email", "alice@tenant-a.com"]);
    assert!(out_a.contains("will not be shown again"), "{out_a}");
    let key_a = key_from(&out_a);
    let out_b = ok(&["users", "create", "--dsn", d, "--tenant-id", &tenant_b, "--email", "bob@tenant-b.com"]);
    let key_b = key_from(&out_b);
    assert_ne!(key_a, key_b);
    let listed = ok(&["users", "list", "--dsn", d]);
    for needle in ["alice@tenant-a.com", "bob@tenant-b.com", &tenant_a, &tenant_b] {
        assert!(listed.contains(needle), "`users list` should show {needle}: {listed}");
    }

    // Part 3: the server; auth is on because the users tables exist.
    let mut server = Server::start(d, &[]);
    assert!(server.stdout().contains("auth: on"), "{}", server.stdout());
    assert_eq!(api_key_in(&server.stdout()), None, "no first-run key for a database that has a schema");
    let (status, root) = http.get(&server.url("/"), None, &[]);
    assert_eq!(status, 200, "GET / is public: {root}");
    assert_eq!(root["name"], "TimeDB API");

    // Part 4: enforcement.
    let values = server.url("/values");
    let (status, body) = http.get(&values, None, &[]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["detail"], MISSING_KEY_DETAIL, "{body}");
    assert_eq!(body["code"], "MISSING_KEY", "{body}");
    assert_refused(http.get(&values, Some("invalid-key-12345"), &[]), "INVALID_KEY");
    let (status, body) = http.get(&values, Some(&key_a), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"count": 0, "data": []}));

    // Part 5: isolation.
    let upload = |key: &str, rows: Vec<Value>| {
        let body = json!({"run_start_time": chrono::Utc::now().to_rfc3339(), "value_rows": rows});
        let (status, resp) = http.post(&server.url("/upload"), Some(key), &body);
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp["message"], "Run created successfully", "{resp}");
        resp
    };
    let up_a = upload(&key_a, seed_rows("temperature_a", 20.0));
    let up_b = upload(&key_b, seed_rows("humidity_b", 50.0));
    let series_a = up_a["series_ids"]["temperature_a"].as_str().expect("series id of temperature_a").to_owned();
    let series_b = up_b["series_ids"]["humidity_b"].as_str().expect("series id of humidity_b").to_owned();
    for (key, series_key, series_id, first) in
        [(&key_a, "temperature_a", &series_a, 20.0), (&key_b, "humidity_b", &series_b, 50.0)]
    {
        let (status, body) = http.get(&values, Some(key), SEED_WINDOW);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], 6, "{series_key}: {body}");
        let rows = body["data"].as_array().unwrap();
        assert_eq!(rows.len(), 6, "{body}");
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["valid_time"], format!("2025-01-01T{i:02}:00:00+00:00"), "{row}");
            assert_eq!(row["series_key"], series_key, "only the caller's own series: {row}");
            assert_eq!(row["series_id"], series_id.as_str(), "{row}");
            assert_eq!(row["value"], json!(first + i as f64), "{row}");
        }
        let (status, listing) = http.get(&server.url("/list_timeseries"), Some(key), &[]);
        assert_eq!(status, 200, "{listing}");
        let listing = listing.as_object().unwrap();
        assert_eq!(listing.len(), 1, "{listing:?}");
        assert_eq!(listing[series_id.as_str()]["series_key"], series_key);
    }

    // Part 6: deactivation from the CLI reaches the running server.
    ok(&["users", "deactivate", "--dsn", d, "--email", "bob@tenant-b.com", "-y"]);
    let refused = poll(PROPAGATION, || http.get(&values, Some(&key_b), &[]), |s, _| s == 401);
    let (_, body) = refused.unwrap_or_else(|last| panic!("bob is still served 1 s after deactivation: {last:?}"));
    assert_eq!(body["code"], "INACTIVE_USER", "{body}");
    assert_eq!(http.get(&values, Some(&key_a), &[]).0, 200, "alice is not affected");

    // Reactivation (no -y, no terminal: activating needs no confirmation).
    ok(&["users", "activate", "--dsn", d, "--email", "bob@tenant-b.com"]);
    poll(PROPAGATION, || http.get(&values, Some(&key_b), &[]), |s, _| s == 200)
        .unwrap_or_else(|last| panic!("bob is still refused 1 s after activation: {last:?}"));

    // A new key for bob: the old one stops working, the new one reads bob's data.
    let out = ok(&["users", "regenerate-key", "--dsn", d, "--email", "bob@tenant-b.com", "-y"]);
    let new_b = key_from(&out);
    assert_ne!(new_b, key_b);
    let refused = poll(PROPAGATION, || http.get(&values, Some(&key_b), &[]), |s, _| s == 401);
    let (_, body) = refused.unwrap_or_else(|last| panic!("bob's old key still works 1 s after regeneration: {last:?}"));
    assert_eq!(body["code"], "REVOKED_KEY", "{body}");
    let (status, body) = http.get(&values, Some(&new_b), SEED_WINDOW);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 6, "the new key belongs to the same tenant: {body}");
    assert_eq!(body["data"][0]["series_key"], "humidity_b");

    server.terminate();
}

/// `api-key revoke` in another process reaches the running server within a second; the
/// listing documents the key's life.
fn revocation_reaches_a_running_server_within_a_second(backend: Backend) {
    let db = Db::new(backend);
    let d = db.dsn();
    let http = &db.http;
    ok(&["create", "tables", "--dsn", d, "--with-users", "-y"]);
    let tenant = uuid::Uuid::new_v4().to_string();
    let email = "erin@example.com";
    let user_key = key_from(&ok(&["users", "create", "--dsn", d, "--tenant-id", &tenant, "--email", email]));
    let out = ok(&[
        "api-key",
        "create",
        "--dsn",
        d,
        "--email",
        email,
        "--note",
        "n",
        "--scopes",
        "read",
        "--expires-in",
        "1h",
    ]);
    let key = key_from(&out);
    let (key_id, _) = key_parts(&key);
    assert!(out.contains(&key_id), "the key id is shown: {out}");

    let mut server = Server::start(d, &[]);
    let values = server.url("/values");
    let (status, body) = http.get(&values, Some(&key), &[]);
    assert_eq!(status, 200, "{body}");
    let (status, me) = http.get(&server.url("/whoami"), Some(&key), &[]);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["key_id"], key_id.as_str(), "{me}");
    assert_eq!(me["scopes"], json!(["read"]), "{me}");
    assert_eq!(me["tenant_id"], tenant.as_str(), "{me}");
    assert!(me["expires_at"].is_string(), "{me}");
    let (status, body) = http.post(
        &server.url("/upload"),
        Some(&key),
        &json!({"run_start_time": "2025-01-01T00:00:00Z", "value_rows": seed_rows("x", 0.0)}),
    );
    assert_eq!((status, &body["code"]), (403, &json!("INSUFFICIENT_SCOPE")), "a read key cannot write: {body}");

    // Revoke from another process and time how long the server keeps accepting the key.
    let started = Instant::now();
    let out = ok(&["api-key", "revoke", "--dsn", d, &key_id]);
    let cli_took = started.elapsed();
    assert!(out.contains(&key_id), "{out}");
    let refused = poll(PROPAGATION, || http.get(&values, Some(&key), &[]), |s, _| s == 401);
    let (took, body) =
        refused.unwrap_or_else(|last| panic!("the revoked key still works 1 s after `api-key revoke`: {last:?}"));
    assert_eq!(body["code"], "REVOKED_KEY", "{body}");
    eprintln!(
        "[{backend:?}] revocation propagation: refused {} ms after `api-key revoke` exited (the command took {} ms)",
        took.as_millis(),
        cli_took.as_millis()
    );
    assert!(took < PROPAGATION, "propagation took {took:?}");
    assert_eq!(http.get(&values, Some(&user_key), &[]).0, 200, "the user's other key still works");
    // Usage counters are flushed on shutdown.
    server.terminate();

    let listed = json_of(&ok(&["api-key", "list", "--dsn", d, "--json", "--include-revoked"]));
    let row = listed.iter().find(|r| r["key_id"] == key_id.as_str()).unwrap_or_else(|| panic!("{listed:?}"));
    for field in [
        "key_id",
        "email",
        "tenant_id",
        "note",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "use_count",
        "status",
    ] {
        assert!(row.get(field).is_some(), "`api-key list --json` lacks {field}: {row}");
    }
    assert_eq!(row["status"], "revoked", "{row}");
    assert_eq!(row["email"], email, "{row}");
    assert_eq!(row["tenant_id"], tenant.as_str(), "{row}");
    assert_eq!(row["note"], "n", "{row}");
    assert_eq!(row["scopes"], json!(["read"]), "{row}");
    let ts = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(row[field].as_str().unwrap_or_else(|| panic!("{field}: {row}")))
            .unwrap_or_else(|e| panic!("{field}: {e}: {row}"))
    };
    let lifetime = ts("expires_at") - ts("created_at");
    assert!((3540..=3660).contains(&lifetime.num_seconds()), "--expires-in 1h: {row}");
    assert!(row["use_count"].as_i64().unwrap_or_default() >= 1, "use is counted and flushed on shutdown: {row}");
    ts("last_used_at");
    let table = ok(&["api-key", "list", "--dsn", d, "--include-revoked"]);
    assert!(table.lines().any(|l| l.contains(&key_id) && l.contains("revoked")), "{table}");

    let live = json_of(&ok(&["api-key", "list", "--dsn", d, "--json"]));
    assert!(live.iter().all(|r| r["key_id"] != key_id.as_str()), "revoked keys are hidden by default: {live:?}");
    assert_eq!(live.len(), 1, "the user's first key is listed: {live:?}");

    // Deleting asks for confirmation, and without a terminal refuses unless -y.
    let refused = fails(&["api-key", "delete", "--dsn", d, &key_id]);
    assert!(refused.contains("-y"), "{refused}");
    let listed = json_of(&ok(&["api-key", "list", "--dsn", d, "--json", "--include-revoked"]));
    assert!(listed.iter().any(|r| r["key_id"] == key_id.as_str()), "nothing deleted without confirmation");
    ok(&["api-key", "delete", "--dsn", d, &key_id, "-y"]);
    let listed = json_of(&ok(&["api-key", "list", "--dsn", d, "--json", "--include-revoked"]));
    assert!(listed.iter().all(|r| r["key_id"] != key_id.as_str()), "deleted for good: {listed:?}");
    assert_eq!(listed.len(), 1, "{listed:?}");
}

/// One email in two tenants: commands that name a user by email must be told which.
fn an_email_in_two_tenants_needs_a_tenant_id(backend: Backend) {
    let db = Db::new(backend);
    let d = db.dsn();
    let http = &db.http;
    ok(&["create", "tables", "--dsn", d, "--with-users", "-y"]);
    let email = "x@y.example.com";
    let (t1, t2) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let k1 = key_from(&ok(&["users", "create", "--dsn", d, "--tenant-id", &t1, "--email", email]));
    let k2 = key_from(&ok(&["users", "create", "--dsn", d, "--tenant-id", &t2, "--email", email]));
    let server = Server::start(d, &[]);
    let values = server.url("/values");
    assert_eq!(http.get(&values, Some(&k1), &[]).0, 200);
    assert_eq!(http.get(&values, Some(&k2), &[]).0, 200);

    let active = |include_inactive: bool| -> Vec<(String, bool)> {
        let mut args = vec!["users", "list", "--dsn", d, "--json"];
        if include_inactive {
            args.push("--include-inactive");
        }
        let mut rows: Vec<_> = json_of(&ok(&args))
            .iter()
            .filter(|u| u["email"] == email)
            .map(|u| (u["tenant_id"].as_str().unwrap().to_owned(), u["is_active"].as_bool().unwrap()))
            .collect();
        rows.sort();
        rows
    };
    let mut both_active = vec![(t1.clone(), true), (t2.clone(), true)];
    both_active.sort();
    assert_eq!(active(true), both_active);

    for args in [
        vec!["users", "deactivate", "--dsn", d, "--email", email, "-y"],
        vec!["users", "activate", "--dsn", d, "--email", email],
        vec!["users", "regenerate-key", "--dsn", d, "--email", email, "-y"],
        vec!["api-key", "create", "--dsn", d, "--email", email],
    ] {
        let out = fails(&args);
        assert!(out.contains("--tenant-id"), "`timedb {}` should name --tenant-id: {out}", args.join(" "));
        assert!(api_key_in(&out).is_none(), "no key minted: {out}");
    }
    assert_eq!(active(true), both_active, "nothing changed");
    assert_eq!(json_of(&ok(&["api-key", "list", "--dsn", d, "--json"])).len(), 2, "no key created or revoked");

    ok(&["users", "deactivate", "--dsn", d, "--email", email, "--tenant-id", &t1, "-y"]);
    let mut after = vec![(t1.clone(), false), (t2.clone(), true)];
    after.sort();
    assert_eq!(active(true), after, "only the named tenant's user is deactivated");
    assert_eq!(active(false), vec![(t2.clone(), true)], "`users list` shows active users only");
    let refused = poll(PROPAGATION, || http.get(&values, Some(&k1), &[]), |s, _| s == 401);
    let (_, body) = refused.unwrap_or_else(|last| panic!("the deactivated user is still served after 1 s: {last:?}"));
    assert_eq!(body["code"], "INACTIVE_USER", "{body}");
    assert_eq!(http.get(&values, Some(&k2), &[]).0, 200, "the other tenant's user is not affected");
    // Still not affected a poll interval later.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(http.get(&values, Some(&k2), &[]).0, 200, "the other tenant's user is not affected");
}

/// One place a key must never appear: a database file, a table dump or a log.
struct Haystack {
    name: String,
    bytes: Vec<u8>,
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    !n.is_empty() && hay.windows(n.len()).any(|w| w == n)
}

/// Every file in the SQLite database's directory (the database, `-wal`, `-shm`, anything else).
fn sqlite_files(dsn: &str) -> Vec<Haystack> {
    let path = PathBuf::from(dsn.strip_prefix("sqlite://").expect("a sqlite DSN"));
    let dir = path.parent().unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.push(Haystack { name: path.display().to_string(), bytes: std::fs::read(&path).unwrap() });
        }
    }
    assert!(out.iter().any(|h| h.name.ends_with(".sqlite3") && !h.bytes.is_empty()), "the database file was read");
    out
}

/// Every row of every table of the test's PostgreSQL database, as text.
fn postgres_rows(http: &Http, dsn: &str) -> Vec<Haystack> {
    http.rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await.unwrap();
        let connection = tokio::spawn(connection);
        let tables = client
            .query(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        for row in tables {
            let table: String = row.get(0);
            let rows = client.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap();
            let text: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
            out.push(Haystack { name: format!("table {table}"), bytes: text.join("\n").into_bytes() });
        }
        assert!(out.iter().any(|h| h.name.ends_with(".api_keys")), "the api_keys table was read: {:?}", names(&out));
        drop(client);
        let _ = connection.await;
        out
    })
}

fn names(hay: &[Haystack]) -> Vec<&str> {
    hay.iter().map(|h| h.name.as_str()).collect()
}

/// Keys minted every way there is, used every way there is against a server logging at
/// debug level; then no key's plaintext, nor its secret part, is in the database or the logs.
fn no_plaintext_key_in_the_database_or_the_logs(backend: Backend) {
    let db = Db::new(backend);
    let d = db.dsn();
    let http = &db.http;
    let debug: &[(&str, &str)] = &[("TIMEDB_LOG", "debug"), ("RUST_LOG", "debug")];
    // (label, key); every key ever shown.
    let mut keys: Vec<(&str, String)> = Vec::new();

    // First run on the empty database: the admin's key is printed (that is its one showing).
    let mut first = Server::start(d, debug);
    let admin = first.stdout();
    let admin_key = key_from(&admin);
    keys.push(("first-run admin", admin_key.clone()));
    let (status, body) = http.post(&first.url("/api-keys"), Some(&admin_key), &json!({"note": "over http"}));
    assert_eq!(status, 201, "{body}");
    let http_key = body["key"].as_str().unwrap().to_owned();
    keys.push(("POST /api-keys", http_key.clone()));
    let (status, body) = http.get(&first.url("/whoami"), Some(&http_key), &[]);
    assert_eq!(status, 200, "{body}");
    first.terminate();

    // The CLI's ways.
    let tenant = uuid::Uuid::new_v4().to_string();
    let alice =
        key_from(&ok(&["users", "create", "--dsn", d, "--tenant-id", &tenant, "--email", "alice@tenant-a.com"]));
    keys.push(("users create", alice.clone()));
    let out =
        ok(&["api-key", "create", "--dsn", d, "--email", "alice@tenant-a.com", "--note", "scan", "--scopes", "read"]);
    keys.push(("api-key create", key_from(&out)));
    let out = ok(&["users", "regenerate-key", "--dsn", d, "--email", "alice@tenant-a.com", "-y"]);
    let regenerated = key_from(&out);
    keys.push(("users regenerate-key", regenerated.clone()));
    let out = ok(&["api-key", "create", "--dsn", d, "--email", "admin@localhost", "--expires-in", "1d"]);
    let admin_cli_key = key_from(&out);
    keys.push(("api-key create (admin)", admin_cli_key.clone()));
    let mut unique: Vec<_> = keys.iter().map(|(_, k)| k.as_str()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "every key is new");

    // Every key, live or revoked, presented every way, to a server logging at debug level
    // (failed attempts are many here, so their per-address limit is lifted).
    let mut envs = debug.to_vec();
    envs.push(("TIMEDB_FAILED_AUTH_LIMIT", "100000/minute"));
    let mut server = Server::start(d, &envs);
    let revoked = [alice.as_str(), keys[3].1.as_str()];
    let no_echo = |presented: &str, (status, body): (u16, Value)| -> u16 {
        let text = body.to_string();
        assert!(!text.contains(&presented[12..]), "a response echoes the presented key: {status} {text}");
        status
    };
    for (label, key) in &keys {
        let live = !revoked.contains(&key.as_str());
        for via in [Via::Header, Via::Bearer, Via::Apikey, Via::Query] {
            for path in ["/values", "/whoami", "/list_timeseries", "/api-keys"] {
                let status = no_echo(key, http.get_via(&server.url(path), Some(key), &[], via));
                if path == "/whoami" {
                    assert_eq!(status, if live { 200 } else { 401 }, "the {label} key on {path}");
                }
            }
        }
        let up = json!({"run_start_time": "2025-01-01T00:00:00Z", "value_rows": seed_rows("scan", 1.0)});
        no_echo(key, http.post(&server.url("/upload"), Some(key), &up));
        // A mistyped key (bad checksum) is refused without echoing it.
        let mut typo = key.clone().into_bytes();
        let at = typo.len() - 10;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        let refused = http.get(&server.url("/values"), Some(&typo), &[]);
        assert_eq!(refused.1["code"], "INVALID_KEY", "{refused:?}");
        assert_eq!(no_echo(&typo, refused), 401);
    }
    assert_refused(http.get(&server.url("/values"), Some(&alice), &[]), "REVOKED_KEY");
    // Revoking by the whole key in the path (DELETE /api-keys/{key}) must not log it either.
    let revoke = http.delete(&server.url(&format!("/api-keys/{admin_cli_key}")), Some(&admin_key));
    assert_eq!(no_echo(&admin_cli_key, revoke), 200);
    server.terminate();

    let mut hay = match backend {
        Backend::Sqlite => sqlite_files(d),
        Backend::Postgres => postgres_rows(http, d),
    };
    let database = names(&hay).join(", ");
    // The logs of both servers; the first-run server's stdout without its one key panel.
    let first_stdout: String = first
        .stdout()
        .lines()
        .filter(|l| !(l.contains(&admin_key) && (l.contains("API Key:") || l.contains("curl"))))
        .map(|l| format!("{l}\n"))
        .collect();
    hay.push(Haystack { name: "first-run server stdout (key panel removed)".into(), bytes: first_stdout.into() });
    hay.push(Haystack { name: "first-run server log (stderr)".into(), bytes: first.stderr().into() });
    let log = format!("{}{}", server.stdout(), server.stderr());
    // The test would see a key if one were there: the public key ids are.
    for (label, key) in &keys {
        let (key_id, _) = key_parts(key);
        let db_has = hay.iter().filter(|h| !h.name.contains("server")).any(|h| contains(&h.bytes, &key_id));
        assert!(db_has, "the scan should find the key id of the {label} key ({key_id}) in: {database}");
    }
    let (regenerated_id, _) = key_parts(&regenerated);
    assert!(log.contains(&regenerated_id), "the debug log names keys by id, so the scan can see it:\n{log}");
    hay.push(Haystack { name: "server log (stdout + stderr, debug level)".into(), bytes: log.into() });

    let mut leaks = Vec::new();
    for (label, key) in &keys {
        let (_, secret) = key_parts(key);
        let tail = &key[12..];
        for h in &hay {
            for (what, needle) in [("plaintext", key.as_str()), ("secret part", tail), ("secret", secret.as_str())] {
                if contains(&h.bytes, needle) {
                    leaks.push(format!("the {what} of the {label} key is in {}", h.name));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "keys leaked:\n{}", leaks.join("\n"));
}

/// Each case once per backend, as `sqlite::case` and `postgres::case`.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    super::$case(timedb::testing::Backend::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $case() {
                    super::$case(timedb::testing::Backend::Postgres);
                }
            )*
        }
    };
}

on_both_stores!(
    seed_001_notebook_flow,
    revocation_reaches_a_running_server_within_a_second,
    an_email_in_two_tenants_needs_a_tenant_id,
    no_plaintext_key_in_the_database_or_the_logs,
);
