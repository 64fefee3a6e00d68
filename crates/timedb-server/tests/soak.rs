//! Concurrency soak (SPEC §8): 32 clients on loopback, each with its own key, hammer one
//! authenticated server for a bounded time with a mix of uploads, reads in every mode,
//! corrections of a shared set of values, and API keys created, used and revoked.
//!
//! What must hold, checked on every answer and again at the end:
//! - no answer is ever a 5xx (and no request fails in transport);
//! - no lost update: every acknowledged correction is in its value's `all_versions`
//!   history, the history of each value is one linear chain (each acknowledged correction
//!   superseded exactly the version before it, by value id), and each value has exactly
//!   one current version, the newest;
//! - no stale key: a 2xx for a request made with a revoked key, started one second or
//!   more after its revocation was acknowledged, is a failure;
//! - every acknowledged upload is stored with all its values, and a flat read never shows
//!   one valid time twice.
//!
//! Each store soaks for `TIMEDB_SOAK_SECS` seconds (default 20, which keeps the suite's
//! run short; SPEC §8's full minute is `TIMEDB_SOAK_SECS=60`, see docs/fuzzing.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use timedb::TenantId;
use timedb::model::{RateLimit, Role, Window};
use timedb::testing::Backend;
use timedb_server::auth::AuthConfig;

mod common;

use common::{TestApp, spawn_auth_app_with};

const CLIENTS: usize = 32;
/// Seconds per store when `TIMEDB_SOAK_SECS` is unset.
const DEFAULT_SECS: u64 = 20;
/// The shared values every client corrects: this many series × valid times, one run.
const SHARED_SERIES: usize = 4;
const SHARED_TIMES: usize = 8;
const UPLOAD_ROWS: usize = 48;
/// How long after an acknowledged revocation a key may still be accepted (SPEC §5).
const REVOCATION_GRACE: Duration = Duration::from_secs(1);

fn soak_duration() -> Duration {
    let secs = std::env::var("TIMEDB_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SECS);
    Duration::from_secs(secs)
}

fn tenant() -> TenantId {
    TenantId::parse("t", "50a50a50-0000-4000-8000-000000000001").unwrap()
}

/// One shared value: the base run's series and valid time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Address {
    series_id: String,
    valid_time: String,
}

/// An acknowledged correction.
#[derive(Debug)]
struct Ack {
    value_id: i64,
    previous_value_id: i64,
    value: f64,
}

/// What the clients saw, for the final checks and the summary.
#[derive(Default)]
struct Ledger {
    requests: BTreeMap<&'static str, u64>,
    statuses: BTreeMap<u16, u64>,
    failures: Vec<String>,
    corrections: HashMap<Address, Vec<Ack>>,
    /// Acknowledged uploads: run id → values written.
    uploads: Vec<(String, usize)>,
    /// Revoked keys and when their revocation was acknowledged.
    revoked: HashMap<String, Instant>,
    /// Requests made with a key at least [`REVOCATION_GRACE`] after its revocation.
    stale_key_requests: u64,
}

struct Soak {
    app: TestApp,
    ledger: Mutex<Ledger>,
    base_run: String,
    shared: Vec<(Address, String)>,
}

/// A small deterministic generator per client (xorshift64*), so a failing mix can be
/// replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Soak {
    fn fail(&self, what: String) {
        let mut l = self.ledger.lock().unwrap();
        if l.failures.len() < 50 {
            l.failures.push(what);
        }
    }

    /// Send one request with `key`, checking the rules every answer obeys.
    async fn send(
        &self,
        kind: &'static str,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.app.client.request(method, self.app.url(path)).header("x-api-key", key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let started = Instant::now();
        let (status, body) = match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(e) => {
                self.fail(format!("{kind} {path}: transport error {e}"));
                return (0, Value::Null);
            }
        };
        let mut l = self.ledger.lock().unwrap();
        *l.requests.entry(kind).or_default() += 1;
        *l.statuses.entry(status).or_default() += 1;
        if status >= 500 {
            l.failures.push(format!("{kind} {path}: {status} {body}"));
        }
        if let Some(&revoked_at) = l.revoked.get(key)
            && started >= revoked_at + REVOCATION_GRACE
        {
            l.stale_key_requests += 1;
            if (200..300).contains(&status) {
                let late = started - revoked_at;
                l.failures.push(format!("{kind} {path}: a key revoked {late:?} earlier was accepted ({status})"));
            }
        }
        (status, body)
    }

    fn expect(&self, what: &str, want: u16, got: &(u16, Value)) -> bool {
        if got.0 != want && got.0 != 0 {
            self.fail(format!("{what}: expected {want}, got {} {}", got.0, got.1));
        }
        got.0 == want
    }

    async fn upload(&self, client: usize, seq: usize, key: &str, rng: &mut Rng) {
        // Half the uploads add runs to the shared series (contending with the corrections
        // and reads there), half to the client's own.
        let shared = rng.below(2) == 0;
        let known = chrono::DateTime::parse_from_rfc3339("2025-03-01T00:00:00Z").unwrap()
            + chrono::Duration::seconds((client * 100_000 + seq) as i64);
        let rows: Vec<Value> = (0..UPLOAD_ROWS)
            .map(|i| {
                let series =
                    if shared { format!("shared-{}", i % SHARED_SERIES) } else { format!("c{client}-{}", i % 4) };
                let valid = format!("2025-04-01T{:02}:{:02}:00Z", (i / 4) / 60, (i / 4) % 60);
                json!({"value_key": series, "valid_time": valid, "value": (seq * 1000 + i) as f64})
            })
            .collect();
        let body = json!({"workflow_id": format!("soak-{client}"), "run_start_time": known.to_rfc3339(),
                          "known_time": known.to_rfc3339(), "value_rows": rows});
        let got = self.send("upload", key, Method::POST, "/upload", Some(body)).await;
        if self.expect("upload", 200, &got) {
            let run = got.1["run_id"].as_str().unwrap_or_default().to_owned();
            let written = got.1["values_written"].as_u64().unwrap_or(0) as usize;
            if written != UPLOAD_ROWS {
                self.fail(format!("upload {run}: {written} values written of {UPLOAD_ROWS}"));
            }
            self.ledger.lock().unwrap().uploads.push((run, written));
        }
    }

    async fn read(&self, key: &str, rng: &mut Rng) {
        let series = if rng.below(3) == 0 {
            format!("c{}-{}", rng.below(CLIENTS), rng.below(4))
        } else {
            format!("shared-{}", rng.below(SHARED_SERIES))
        };
        let (kind, query) = match rng.below(3) {
            0 => ("read flat", "mode=flat"),
            1 => ("read overlapping", "mode=overlapping"),
            _ => ("read all_versions", "mode=overlapping&all_versions=true"),
        };
        let got = self.send(kind, key, Method::GET, &format!("/values?{query}&series_key={series}"), None).await;
        if !self.expect(kind, 200, &got) {
            return;
        }
        let data = got.1["data"].as_array().cloned().unwrap_or_default();
        if got.1["count"].as_u64() != Some(data.len() as u64) {
            self.fail(format!("{kind} {series}: count {} for {} rows", got.1["count"], data.len()));
        }
        if kind == "read flat" {
            let mut times: Vec<&str> = data.iter().filter_map(|r| r["valid_time"].as_str()).collect();
            let n = times.len();
            times.sort_unstable();
            times.dedup();
            if times.len() != n {
                self.fail(format!("flat read of {series} shows a valid time twice"));
            }
        }
    }

    async fn correct(&self, client: usize, seq: usize, key: &str, rng: &mut Rng) {
        // One or two distinct shared values per request, each set to a value no other
        // correction uses, so no correction is ever a no-op.
        let first = rng.below(self.shared.len());
        let second = (first + 1 + rng.below(self.shared.len() - 1)) % self.shared.len();
        let picks: Vec<usize> = if rng.below(2) == 0 { vec![first] } else { vec![first, second] };
        let updates: Vec<(Address, f64)> = picks
            .iter()
            .enumerate()
            .map(|(j, &p)| (self.shared[p].0.clone(), (client * 10_000_000 + seq * 10 + j) as f64 + 0.25))
            .collect();
        let body = json!({"updates": updates.iter().map(|(a, v)| json!({
            "run_id": self.base_run, "series_id": a.series_id, "valid_time": a.valid_time, "value": v,
        })).collect::<Vec<_>>()});
        let got = self.send("correct", key, Method::PUT, "/values", Some(body)).await;
        if !self.expect("correction", 200, &got) {
            return;
        }
        let updated = got.1["updated"].as_array().cloned().unwrap_or_default();
        if updated.len() != updates.len() {
            self.fail(format!("a correction of {} values updated {}: {}", updates.len(), updated.len(), got.1));
            return;
        }
        let mut l = self.ledger.lock().unwrap();
        for ((address, value), u) in updates.into_iter().zip(&updated) {
            let ack = Ack {
                value_id: u["value_id"].as_i64().unwrap_or(-1),
                previous_value_id: u["previous_value_id"].as_i64().unwrap_or(-1),
                value: u["value"].as_f64().unwrap_or(f64::NAN),
            };
            if ack.value != value || u["series_id"] != address.series_id.as_str() {
                l.failures.push(format!("correction acknowledged as {u} for {address:?} = {value}"));
            }
            l.corrections.entry(address).or_default().push(ack);
        }
    }

    /// Create a key, use it, revoke it, and keep presenting it.
    async fn key_lifecycle(&self, key: &str, rng: &mut Rng) {
        let got = self.send("create key", key, Method::POST, "/api-keys", Some(json!({"note": "soak"}))).await;
        if !self.expect("key creation", 201, &got) {
            return;
        }
        let (Some(new_key), Some(key_id)) = (got.1["key"].as_str(), got.1["key_id"].as_str()) else {
            self.fail(format!("key creation answered {}", got.1));
            return;
        };
        for _ in 0..=rng.below(3) {
            let got = self.send("use new key", new_key, Method::GET, "/whoami", None).await;
            self.expect("a new key", 200, &got);
        }
        let got = self.send("revoke key", key, Method::DELETE, &format!("/api-keys/{key_id}"), None).await;
        if self.expect("revocation", 200, &got) {
            self.ledger.lock().unwrap().revoked.insert(new_key.to_owned(), Instant::now());
            // Within the grace second either answer is allowed; after it, `send` checks.
            self.send("use revoked key", new_key, Method::GET, "/whoami", None).await;
        }
    }

    /// Present a key revoked earlier, by any client.
    async fn probe_revoked(&self, rng: &mut Rng) {
        let key = {
            let l = self.ledger.lock().unwrap();
            if l.revoked.is_empty() {
                return;
            }
            let keys: Vec<&String> = l.revoked.keys().collect();
            keys[rng.below(keys.len())].clone()
        };
        let upload = json!({"workflow_id": "probe", "run_start_time": "2025-01-01T00:00:00Z",
                            "value_rows": [{"value_key": "probe", "valid_time": "2025-01-01T00:00:00Z", "value": 1.0}]});
        let (method, path, body) = match rng.below(3) {
            0 => (Method::GET, "/values?series_key=shared-0", None),
            1 => (Method::GET, "/whoami", None),
            _ => (Method::POST, "/upload", Some(upload)),
        };
        // `send` fails any 2xx that comes a second or more after the revocation.
        self.send("probe revoked key", &key, method, path, body).await;
    }

    async fn client(self: Arc<Self>, client: usize, key: String, deadline: Instant) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((client as u64 + 1) * 0x1000_0001));
        let mut seq = 0;
        while Instant::now() < deadline {
            seq += 1;
            match rng.below(100) {
                0..20 => self.upload(client, seq, &key, &mut rng).await,
                20..55 => self.read(&key, &mut rng).await,
                55..85 => self.correct(client, seq, &key, &mut rng).await,
                85..93 => self.key_lifecycle(&key, &mut rng).await,
                _ => self.probe_revoked(&mut rng).await,
            }
        }
    }

    /// After the clients: no lost update, one current version per value, uploads whole.
    async fn verify(&self, key: &str) {
        let series: String = (0..SHARED_SERIES).map(|s| format!("&series_key=shared-{s}")).collect();
        let got = self
            .send("verify", key, Method::GET, &format!("/values?mode=overlapping&all_versions=true{series}"), None)
            .await;
        assert_eq!(got.0, 200, "{}", got.1);
        let mut history: HashMap<Address, Vec<&Value>> = HashMap::new();
        for row in got.1["data"].as_array().unwrap() {
            if row["run_id"] == self.base_run.as_str() {
                let address = Address {
                    series_id: row["series_id"].as_str().unwrap().to_owned(),
                    valid_time: row["valid_time"].as_str().unwrap().to_owned(),
                };
                history.entry(address).or_default().push(row);
            }
        }
        assert_eq!(history.len(), self.shared.len(), "shared values missing from the base run");
        let mut failures = Vec::new();
        // The ledger's lock is a std one: held only in this block, never across an await.
        let uploads = {
            let ledger = self.ledger.lock().unwrap();
            for (address, _) in &self.shared {
                let mut versions = history.remove(address).unwrap_or_default();
                versions.sort_by_key(|v| v["value_id"].as_i64());
                let acks = ledger.corrections.get(address).map(Vec::as_slice).unwrap_or_default();
                let current: Vec<&&Value> = versions.iter().filter(|v| v["is_current"] == true).collect();
                if current.len() != 1 || current[0]["value_id"] != versions.last().unwrap()["value_id"] {
                    failures.push(format!("{address:?}: current versions {current:?} of {}", versions.len()));
                }
                if versions.len() != acks.len() + 1 {
                    failures.push(format!(
                        "{address:?}: {} versions for {} acknowledged corrections",
                        versions.len(),
                        acks.len()
                    ));
                    continue;
                }
                // One linear chain: the k-th correction (by value id) replaced version k-1.
                let mut acks: Vec<&Ack> = acks.iter().collect();
                acks.sort_by_key(|a| a.value_id);
                for (k, ack) in acks.iter().enumerate() {
                    let stored = versions[k + 1];
                    let previous = versions[k]["value_id"].as_i64();
                    if stored["value_id"].as_i64() != Some(ack.value_id)
                        || stored["value"].as_f64() != Some(ack.value)
                        || previous != Some(ack.previous_value_id)
                    {
                        failures.push(format!(
                            "{address:?}: acknowledged {ack:?} but history has {stored} after {previous:?}"
                        ));
                    }
                }
            }
            ledger.uploads.clone()
        };
        for (run, written) in uploads {
            let got = self.send("verify", key, Method::GET, &format!("/runs/{run}"), None).await;
            if got.0 != 200 || got.1["value_count"].as_u64() != Some(written as u64) {
                failures.push(format!("acknowledged run {run} ({written} values) reads back as {} {}", got.0, got.1));
            }
        }
        self.ledger.lock().unwrap().failures.extend(failures);
    }
}

mod cases {
    use super::*;

    pub async fn thirty_two_clients_lose_nothing_and_honour_revocation(backend: Backend) {
        // Every client shares 127.0.0.1, and probing revoked keys is a stream of failed
        // authentications: lift the per-address failure limit so it never refuses the
        // honest clients (a 429 is not the subject here).
        let auth = AuthConfig {
            failed_auth_limit: RateLimit { requests: 1_000_000, per: Window::Minute },
            ..AuthConfig::default()
        };
        let app = spawn_auth_app_with(backend, auth).await;
        let mut keys = Vec::new();
        for c in 0..CLIENTS {
            keys.push(app.add_user(tenant(), &format!("client{c}@soak.example"), Role::Writer).await);
        }
        // The shared values: one run, SHARED_SERIES × SHARED_TIMES values.
        let rows: Vec<Value> = (0..SHARED_SERIES * SHARED_TIMES)
            .map(|i| {
                json!({"value_key": format!("shared-{}", i % SHARED_SERIES),
                       "valid_time": format!("2025-04-01T00:{:02}:00Z", i / SHARED_SERIES), "value": i as f64})
            })
            .collect();
        let body = json!({"workflow_id": "soak-base", "run_start_time": "2025-01-01T00:00:00Z",
                          "known_time": "2025-01-01T00:00:00Z", "value_rows": rows});
        let r = app.client.post(app.url("/upload")).header("x-api-key", &keys[0]).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let base: Value = r.json().await.unwrap();
        let base_run = base["run_id"].as_str().unwrap().to_owned();
        let ids = &base["series_ids"];
        let shared = (0..SHARED_SERIES * SHARED_TIMES)
            .map(|i| {
                let key = format!("shared-{}", i % SHARED_SERIES);
                let address = Address {
                    series_id: ids[&key].as_str().unwrap().to_owned(),
                    valid_time: format!("2025-04-01T00:{:02}:00+00:00", i / SHARED_SERIES),
                };
                (address, key)
            })
            .collect();

        let soak = Arc::new(Soak { app, ledger: Mutex::default(), base_run, shared });
        let duration = soak_duration();
        let started = Instant::now();
        let deadline = started + duration;
        let clients: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(c, key)| tokio::spawn(soak.clone().client(c, key.clone(), deadline)))
            .collect();
        for c in clients {
            c.await.expect("a client task panicked");
        }
        let elapsed = started.elapsed();
        soak.verify(&keys[0]).await;

        let l = soak.ledger.lock().unwrap();
        let total: u64 = l.requests.values().sum();
        let corrections: usize = l.corrections.values().map(Vec::len).sum();
        println!(
            "soak {backend:?}: {CLIENTS} clients, {elapsed:.1?}, {total} requests ({:.0}/s); mix {:?}; statuses {:?}; \
             {} uploads, {corrections} corrections acknowledged, {} keys revoked, {} requests with a key \
             revoked ≥ 1 s earlier; {} failures",
            total as f64 / elapsed.as_secs_f64(),
            l.requests,
            l.statuses,
            l.uploads.len(),
            l.revoked.len(),
            l.stale_key_requests,
            l.failures.len(),
        );
        assert!(l.failures.is_empty(), "{} failures, first ones:\n{}", l.failures.len(), l.failures.join("\n"));
        // The mix really happened: each kind of work, and stale keys really were tried.
        for kind in ["upload", "read flat", "read overlapping", "read all_versions", "correct", "revoke key"] {
            assert!(l.requests.get(kind).copied().unwrap_or(0) > 0, "no {kind} requests in {:?}", l.requests);
        }
        assert!(l.stale_key_requests > 0, "no request presented a key revoked over a second earlier");
        assert!(corrections > 0);
    }
}

per_backend!(cases; thirty_two_clients_lose_nothing_and_honour_revocation);
