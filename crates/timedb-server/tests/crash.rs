//! Crash consistency (SPEC §8): a `timedb api` process SIGKILLed in the middle of large
//! uploads and corrections, again and again, loses nothing it acknowledged and leaves
//! nothing half-written: after each restart every run is complete or absent, every value
//! has exactly one current version, and the store's own integrity check passes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use timedb::testing::{Backend, fresh_database};

mod common;

use common::process::Server;

/// Kill/restart cycles per store.
const ITERATIONS: usize = 8;
/// Values per upload: large enough that a kill often lands inside the transaction.
const ROWS: usize = 25_000;

/// A run of `ROWS` values over 4 series, one per minute from 2025-02-01, each run
/// known an hour after the previous one.
fn upload_body(iteration: usize) -> Value {
    let known = format!("2025-01-{:02}T{:02}:00:00Z", 1 + iteration / 24, iteration % 24);
    let start = chrono::DateTime::parse_from_rfc3339("2025-02-01T00:00:00Z").unwrap();
    let rows: Vec<Value> = (0..ROWS)
        .map(|i| {
            let valid = start + chrono::Duration::minutes((i / 4) as i64);
            json!({"value_key": format!("s{}", i % 4), "valid_time": valid.to_rfc3339(),
                   "value": (iteration * ROWS + i) as f64})
        })
        .collect();
    json!({"workflow_id": format!("crash-{iteration}"), "run_start_time": known, "known_time": known, "value_rows": rows})
}

async fn get(client: &reqwest::Client, url: String, key: &str) -> Value {
    let r = client.get(url).header("x-api-key", key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Every run complete or absent; one current version per value; acknowledged runs
/// present. Returns the address of one stored value, for corrections to race with.
async fn check_consistent(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    acknowledged: &BTreeSet<String>,
) -> Option<Value> {
    let runs = get(client, server.url("/runs?limit=1000"), key).await;
    let listed: BTreeMap<String, i64> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_id"].as_str().unwrap().to_owned(), r["value_count"].as_i64().unwrap()))
        .collect();
    for run in acknowledged {
        assert!(listed.contains_key(run), "acknowledged run {run} is gone after a crash");
    }
    let all = get(client, server.url("/values?mode=overlapping&all_versions=true"), key).await;
    let mut per_run: BTreeMap<String, usize> = BTreeMap::new();
    let mut current: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut sample = None;
    for row in all["data"].as_array().unwrap() {
        if sample.is_none() {
            sample =
                Some(json!({"run_id": row["run_id"], "series_id": row["series_id"], "valid_time": row["valid_time"]}));
        }
        let run = row["run_id"].as_str().unwrap().to_owned();
        let value_key = (run.clone(), row["series_id"].to_string(), row["valid_time"].to_string());
        let slot = current.entry(value_key).or_default();
        if row["is_current"] == true {
            *slot += 1;
            *per_run.entry(run).or_default() += 1;
        }
    }
    for (value, n) in &current {
        assert_eq!(*n, 1, "value {value:?} has {n} current versions");
    }
    for (run, count) in &listed {
        assert_eq!(per_run.get(run).copied().unwrap_or(0), *count as usize, "run {run} is incomplete");
        assert_eq!(*count as usize, ROWS, "run {run} records {count} values");
    }
    assert_eq!(per_run.len(), listed.len(), "values belong to runs that are not listed");
    sample
}

async fn killed_mid_upload_loses_nothing(backend: Backend) {
    let db = fresh_database(backend).await;
    let mut server = Server::start(&db.dsn_text, &[("TIMEDB_FAILED_AUTH_LIMIT", "100000/minute")]);
    let key = server.first_run_key().expect("first run prints a key");
    let client = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    let mut interrupted = 0;
    let mut target: Option<Value> = None;
    for iteration in 0..ITERATIONS {
        let body = upload_body(iteration);
        let url = server.url("/upload");
        let (c, k) = (client.clone(), key.clone());
        let upload = tokio::spawn(async move { c.post(url).header("x-api-key", k).json(&body).send().await });
        // Corrections of already acknowledged values race the upload too.
        if let Some(mut fix) = target.clone() {
            fix["value"] = json!(-(iteration as f64));
            let url = server.url("/values");
            let (c, k) = (client.clone(), key.clone());
            tokio::spawn(async move {
                let _ = c.put(url).header("x-api-key", k).json(&json!({"updates": [fix]})).send().await;
            });
        }
        // Kill at a different moment each time: before, during and after the write.
        let i = iteration as u64;
        tokio::time::sleep(Duration::from_millis(30 + 40 * i * i)).await;
        server.kill();
        match upload.await.unwrap() {
            Ok(r) if r.status() == 200 => {
                if let Ok(v) = r.json::<Value>().await {
                    acknowledged.insert(v["run_id"].as_str().unwrap().to_owned());
                }
            }
            _ => interrupted += 1,
        }
        server = Server::start(&db.dsn_text, &[("TIMEDB_FAILED_AUTH_LIMIT", "100000/minute")]);
        target = check_consistent(&client, &server, &key, &acknowledged).await;
    }
    assert!(interrupted > 0, "no kill landed during an upload; the test proved nothing");
    // An acknowledged run survives a kill right after its answer.
    let done = client.post(server.url("/upload")).header("x-api-key", &key).json(&upload_body(ITERATIONS)).send().await;
    let done: Value = done.unwrap().json().await.unwrap();
    acknowledged.insert(done["run_id"].as_str().unwrap().to_owned());
    server.kill();
    server = Server::start(&db.dsn_text, &[]);
    check_consistent(&client, &server, &key, &acknowledged).await;
    server.kill();
    match backend {
        Backend::Sqlite => {
            let path = db.dsn_text.strip_prefix("sqlite://").unwrap();
            let conn = rusqlite::Connection::open(path).unwrap();
            let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            assert_eq!(check, "ok");
        }
        Backend::Postgres => {
            // PostgreSQL's constraints (primary keys, the unique partial index on current
            // versions) were enforced throughout; confirm no index was left invalid.
            let (client, conn) = tokio_postgres::connect(&db.dsn_text, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let invalid: i64 =
                client.query_one("SELECT count(*) FROM pg_index WHERE NOT indisvalid", &[]).await.unwrap().get(0);
            assert_eq!(invalid, 0);
        }
    }
    eprintln!(
        "{backend:?}: {ITERATIONS} kills, {interrupted} during an upload, {} runs acknowledged",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_killed_mid_upload_loses_nothing() {
    killed_mid_upload_loses_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_mid_upload_loses_nothing() {
    killed_mid_upload_loses_nothing(Backend::Postgres).await;
}

/// SIGTERM while an upload is in flight (its body half sent): the upload is answered and
/// kept, and the server exits 0.
async fn sigterm_finishes_in_flight_requests(backend: Backend) {
    let db = fresh_database(backend).await;
    let mut server = Server::start(&db.dsn_text, &[]);
    let key = server.first_run_key().expect("first run prints a key");
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&upload_body(0)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let (c, k, url) = (client.clone(), key.clone(), server.url("/upload"));
    let upload = tokio::spawn(async move {
        c.post(url)
            .header("x-api-key", k)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
    });
    let (first, rest) = body.split_at(body.len() / 2);
    tx.send(Ok(first.to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.child.try_wait().unwrap().is_none(), "the server quit with a request in flight");
    tx.send(Ok(rest.to_vec())).await.unwrap();
    drop(tx);
    let status = tokio::task::block_in_place(|| server.stop_within(Duration::from_secs(30))).expect("server stops");
    assert!(status.success(), "{status}");
    let answer = upload.await.unwrap().expect("the in-flight upload is answered");
    assert_eq!(answer.status(), 200);
    let run: Value = answer.json().await.unwrap();
    let server = Server::start(&db.dsn_text, &[]);
    let stored = get(&client, server.url(&format!("/runs/{}", run["run_id"].as_str().unwrap())), &key).await;
    assert_eq!(stored["value_count"], ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_sigterm_finishes_in_flight_requests() {
    sigterm_finishes_in_flight_requests(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_sigterm_finishes_in_flight_requests() {
    sigterm_finishes_in_flight_requests(Backend::Postgres).await;
}
