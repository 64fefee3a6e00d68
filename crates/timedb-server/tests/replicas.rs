//! Several `timedb api` processes on one PostgreSQL database (SPEC §3, §9): what one
//! writes, the others read at once, and a key revoked through one is refused by all.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use timedb::testing::{Backend, fresh_database};

mod common;

use common::process::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_processes_share_one_postgresql_database() {
    let db = fresh_database(Backend::Postgres).await;
    // The first process initialises the empty database and prints the admin key; the
    // second finds it initialised.
    let one = Server::start(&db.dsn_text, &[]);
    let key = one.first_run_key().expect("the first run prints an admin key");
    let two = Server::start(&db.dsn_text, &[]);
    assert!(two.first_run_key().is_none(), "only the first run prints a key");

    let client = reqwest::Client::new();
    let body = json!({"run_start_time": "2025-01-01T00:00:00Z", "value_rows": [
        {"valid_time": "2025-01-01T00:00:00Z", "value_key": "load", "value": 1.5},
        {"valid_time": "2025-01-01T01:00:00Z", "value_key": "load", "value": 2.5}]});
    let up = client.post(format!("{}/upload", one.url)).header("x-api-key", &key).json(&body).send().await.unwrap();
    assert_eq!(up.status(), 200);
    let up: Value = up.json().await.unwrap();

    // Readable through the other process at once.
    let read: Value =
        client.get(format!("{}/values", two.url)).header("x-api-key", &key).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["count"], 2, "{read}");
    let run: Value = client
        .get(format!("{}/runs/{}", two.url, up["run_id"].as_str().unwrap()))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["created_by"], "admin@localhost", "{run}");

    // A key made and revoked through one process is refused by the other within a second.
    let made: Value = client
        .post(format!("{}/api-keys", one.url))
        .header("x-api-key", &key)
        .json(&json!({"scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = made["key"].as_str().unwrap();
    let whoami = |url: String| {
        let client = client.clone();
        let second = second.to_owned();
        async move { client.get(format!("{url}/whoami")).header("x-api-key", second).send().await.unwrap().status() }
    };
    assert_eq!(whoami(two.url.clone()).await, 200);
    let revoked = client
        .delete(format!("{}/api-keys/{}", one.url, made["key_id"].as_str().unwrap()))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let at = Instant::now();
    assert_eq!(whoami(one.url.clone()).await, 401, "the revoking process refuses at once");
    loop {
        if whoami(two.url.clone()).await == 401 {
            break;
        }
        assert!(at.elapsed() < Duration::from_secs(1), "the other process still accepts a revoked key after 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
