//! Authentication over HTTP (SPEC §5): every row of the outcome table, every way of
//! presenting a key, expiry, scope narrowing, rate-limit and usage exactness under
//! concurrency, and a cross-tenant suite that aims every endpoint at another tenant's
//! ids. Every case runs on every backend.

mod common;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use timedb::TenantId;
use timedb::model::time::now;
use timedb::model::{Email, RateLimit, Role, Scopes, TenantScope};
use timedb::testing::Backend;
use timedb_server::auth::{AuthConfig, KeyFormat, mint};

use common::{TestApp, assert_error, spawn_auth_app, spawn_auth_app_with};

fn tenant_a() -> TenantId {
    TenantId::parse("t", "aaaaaaaa-0000-4000-8000-000000000001").unwrap()
}

fn tenant_b() -> TenantId {
    TenantId::parse("t", "bbbbbbbb-0000-4000-8000-000000000002").unwrap()
}

const ROWS: &str = r#"{"run_start_time": "2025-01-01T00:00:00Z", "value_rows": [
    {"valid_time": "2025-01-01T00:00:00Z", "value_key": "temperature", "value": 20.0},
    {"valid_time": "2025-01-01T01:00:00Z", "value_key": "temperature", "value": 21.0}]}"#;

/// Send `method path` with `key` (as X-API-Key); status and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.use_key(key);
    let mut req = app.request(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Add a key to an existing user directly in the store.
async fn add_key(
    app: &TestApp,
    tenant: TenantId,
    email: &str,
    scopes: Scopes,
    expires_at: Option<timedb::model::Timestamp>,
    rate_limit: Option<RateLimit>,
) -> String {
    let hasher = app.verifier.hasher().unwrap();
    let (key, new) = mint(&app.verifier.config.format, hasher, scopes, None, expires_at, rate_limit);
    let email = Email::parse("e", email).unwrap();
    app.db.store.create_key(tenant, email, new, None).await.unwrap();
    key.reveal().to_owned()
}

mod cases {
    use super::*;

    pub async fn metrics_count_requests_without_naming_anyone(b: Backend) {
        let app = spawn_auth_app(b).await;
        let alice = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        let upload: Value = serde_json::from_str(ROWS).unwrap();
        let (status, up) = call(&app, Method::POST, "/upload", Some(&alice), Some(upload)).await;
        assert_eq!(status, 200);
        call(&app, Method::GET, &format!("/runs/{}", up["run_id"].as_str().unwrap()), Some(&alice), None).await;
        call(&app, Method::GET, "/values", Some(&alice), None).await;
        call(&app, Method::GET, "/values", Some("invalid-key-12345"), None).await;
        let r = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200, "metrics are public, like /healthz");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = r.text().await.unwrap();
        for needle in [
            "timedb_http_requests_total{route=\"/upload\",method=\"POST\",status=\"200\"}",
            "timedb_http_requests_total{route=\"/runs/{run_id}\",method=\"GET\",status=\"200\"}",
            "timedb_http_request_duration_seconds_bucket{route=\"/values\",le=\"+Inf\"}",
            "timedb_auth_outcomes_total{code=\"INVALID_KEY\"}",
            "timedb_auth_outcomes_total{code=\"OK\"}",
            "timedb_values_ingested_total",
            "timedb_values_read_total",
            "timedb_key_cache_hit_ratio",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        // Routes, not paths: no run id, tenant, email or key in any label.
        for secret in [up["run_id"].as_str().unwrap(), &tenant_a().to_string(), "alice@a.example", &alice[4..12]] {
            assert!(!text.contains(secret), "{secret} leaked into /metrics");
        }
    }

    pub async fn every_outcome_of_the_table(b: Backend) {
        let app = spawn_auth_app(b).await;
        let alice = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;

        // No key: 401 with the upstream detail and WWW-Authenticate.
        app.use_key(None);
        let r = app.request(Method::GET, "/values").send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("www-authenticate").is_some(), "401 carries WWW-Authenticate");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "MISSING_KEY");
        assert_eq!(body["detail"], "API key required. Please provide X-API-Key header.");

        // Malformed, bad checksum, unknown (well-formed, valid checksum, never stored).
        let mut flipped = alice.clone().into_bytes();
        let i = flipped.len() - 10;
        flipped[i] = if flipped[i] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(flipped).unwrap();
        let unknown = KeyFormat::default().generate().reveal().to_owned();
        for bad in ["invalid-key-12345", flipped.as_str(), unknown.as_str(), &"x".repeat(5000)] {
            let got = call(&app, Method::GET, "/values", Some(bad), None).await;
            assert_error(got, 401, "INVALID_KEY", "Invalid or inactive API key");
        }

        // Valid.
        assert_eq!(call(&app, Method::GET, "/values", Some(&alice), None).await.0, 200);

        // Expired: the detail says when.
        let past = now() - chrono::Duration::seconds(5);
        let expired = add_key(&app, tenant_a(), "alice@a.example", Scopes::READ, Some(past), None).await;
        let got = call(&app, Method::GET, "/values", Some(&expired), None).await;
        let when = timedb::model::time::format_timestamp(past);
        assert_error(got, 401, "EXPIRED_KEY", &when[..19]);

        // Revoked.
        let revoked = add_key(&app, tenant_a(), "alice@a.example", Scopes::READ, None, None).await;
        assert_eq!(call(&app, Method::GET, "/values", Some(&revoked), None).await.0, 200);
        let id = timedb::model::KeyId::parse("k", &revoked[4..12]).unwrap();
        app.db.store.revoke_key(tenant_a(), id, None).await.unwrap();
        app.verifier.refresh().await.unwrap();
        assert_error(call(&app, Method::GET, "/values", Some(&revoked), None).await, 401, "REVOKED_KEY", "revoked");

        // Scope missing: a read-only key may not write.
        let reader = add_key(&app, tenant_a(), "alice@a.example", Scopes::READ, None, None).await;
        let upload: Value = serde_json::from_str(ROWS).unwrap();
        let got = call(&app, Method::POST, "/upload", Some(&reader), Some(upload)).await;
        assert_error(got, 403, "INSUFFICIENT_SCOPE", "write");

        // Inactive user: every key of theirs stops.
        let email = Email::parse("e", "alice@a.example").unwrap();
        app.db.store.set_user_active(tenant_a(), email.clone(), false, None).await.unwrap();
        app.verifier.refresh().await.unwrap();
        assert_error(call(&app, Method::GET, "/values", Some(&alice), None).await, 401, "INACTIVE_USER", "");
        app.db.store.set_user_active(tenant_a(), email, true, None).await.unwrap();
        app.verifier.refresh().await.unwrap();
        assert_eq!(call(&app, Method::GET, "/values", Some(&alice), None).await.0, 200);

        // Rate limited: 429 with Retry-After and RateLimit-* headers.
        let limit = RateLimit::parse("r", "2/minute").unwrap();
        let limited = add_key(&app, tenant_a(), "alice@a.example", Scopes::READ, None, Some(limit)).await;
        for remaining in ["1", "0"] {
            app.use_key(Some(&limited));
            let r = app.request(Method::GET, "/values").send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["ratelimit-limit"], "2");
            assert_eq!(r.headers()["ratelimit-remaining"], remaining);
        }
        let r = app.request(Method::GET, "/values").send().await.unwrap();
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(r.headers()["ratelimit-remaining"], "0");
        assert!(r.headers().get("ratelimit-reset").is_some());
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "RATE_LIMITED");
    }

    pub async fn keys_are_accepted_in_every_documented_form(b: Backend) {
        let app = spawn_auth_app(b).await;
        let key = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        let url = app.url("/whoami");
        let c = &app.client;
        let forms = [
            c.get(&url).header("X-API-Key", &key),
            c.get(&url).header("Authorization", format!("Bearer {key}")),
            c.get(&url).header("Authorization", format!("Apikey {key}")),
            c.get(format!("{url}?api_key={key}")),
        ];
        for req in forms {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let who: Value = r.json().await.unwrap();
            assert_eq!(who["email"], "alice@a.example");
            assert_eq!(who["tenant_id"], tenant_a().to_string());
            assert_eq!(who["scopes"], json!(["read", "write"]));
            assert_eq!(who["role"], "writer");
            assert_eq!(who["key_id"], &key[4..12]);
        }
        // Another scheme is no key at all.
        let r = c.get(&url).header("Authorization", format!("Basic {key}")).send().await.unwrap();
        assert_eq!(r.status(), 401);

        // Public endpoints need no key.
        for path in ["/", "/healthz", "/readyz", "/openapi.json", "/docs/", "/redoc"] {
            assert_eq!(c.get(app.url(path)).send().await.unwrap().status(), 200, "{path}");
        }
        let (_, root) = call(&app, Method::GET, "/", None, None).await;
        assert_eq!(root["authentication"]["enabled"], true, "{root}");
    }

    pub async fn query_keys_can_be_switched_off(b: Backend) {
        let app = spawn_auth_app_with(b, AuthConfig { allow_query_key: false, ..AuthConfig::default() }).await;
        let key = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        let r = app.client.get(app.url(&format!("/whoami?api_key={key}"))).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "MISSING_KEY");
        let r = app.client.get(app.url("/whoami")).header("X-API-Key", &key).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    pub async fn a_key_for_another_environment_is_refused(b: Backend) {
        let live = KeyFormat::new("tdb", Some("live")).unwrap();
        let app = spawn_auth_app_with(b, AuthConfig { format: live.clone(), ..AuthConfig::default() }).await;
        let key = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        assert!(key.starts_with("tdb_live_"), "{key}");
        assert_eq!(call(&app, Method::GET, "/whoami", Some(&key), None).await.0, 200);
        // The same user's key, minted for `test`, stored with a valid hash: still refused.
        let test = KeyFormat::new("tdb", Some("test")).unwrap();
        let (k, new) = mint(&test, app.verifier.hasher().unwrap(), Scopes::READ, None, None, None);
        let email = Email::parse("e", "alice@a.example").unwrap();
        app.db.store.create_key(tenant_a(), email, new, None).await.unwrap();
        assert_error(call(&app, Method::GET, "/whoami", Some(k.reveal()), None).await, 401, "INVALID_KEY", "");
    }

    pub async fn self_service_keys_only_narrow(b: Backend) {
        let app = spawn_auth_app(b).await;
        let writer = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;

        // Asking for more than the caller holds is refused.
        let got = call(&app, Method::POST, "/api-keys", Some(&writer), Some(json!({"scopes": ["admin"]}))).await;
        assert_error(got, 422, "INVALID_FIELD", "scopes");

        let (status, created) = call(
            &app,
            Method::POST,
            "/api-keys",
            Some(&writer),
            Some(json!({"note": "dashboard", "scopes": ["read"], "expires_in": 3600, "rate_limit": "100/minute"})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let read_only = created["key"].as_str().unwrap().to_owned();
        assert_eq!(created["scopes"], json!(["read"]));
        assert_eq!(created["note"], "dashboard");
        assert_eq!(created["status"], "active");
        assert!(created["expires_at"].is_string());

        assert_eq!(call(&app, Method::GET, "/values", Some(&read_only), None).await.0, 200);
        let upload: Value = serde_json::from_str(ROWS).unwrap();
        let got = call(&app, Method::POST, "/upload", Some(&read_only), Some(upload.clone())).await;
        assert_error(got, 403, "INSUFFICIENT_SCOPE", "write");
        assert_eq!(call(&app, Method::POST, "/upload", Some(&writer), Some(upload)).await.0, 200);
        let (_, who) = call(&app, Method::GET, "/whoami", Some(&read_only), None).await;
        assert_eq!(who["scopes"], json!(["read"]));
        assert!(who["expires_at"].is_string());

        // A narrowed key cannot mint a wider one.
        let got = call(&app, Method::POST, "/api-keys", Some(&read_only), Some(json!({"scopes": ["write"]}))).await;
        assert_error(got, 422, "INVALID_FIELD", "scopes");

        // The listing never shows a secret; revoking by key id takes effect at once.
        let (status, list) = call(&app, Method::GET, "/api-keys", Some(&writer), None).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert!(!list.to_string().contains(&read_only[12..]), "a listing must not contain a secret");
        let id = created["key_id"].as_str().unwrap();
        let (status, revoked) = call(&app, Method::DELETE, &format!("/api-keys/{id}"), Some(&writer), None).await;
        assert_eq!(status, 200, "{revoked}");
        assert_eq!(revoked["status"], "revoked");
        assert_error(call(&app, Method::GET, "/values", Some(&read_only), None).await, 401, "REVOKED_KEY", "");
        // A role caps a key even when the role is lowered later: reader users can't write.
        let reader = app.add_user(tenant_a(), "rita@a.example", Role::Reader).await;
        let got = call(&app, Method::POST, "/series", Some(&reader), Some(json!({"name": "x"}))).await;
        assert_error(got, 403, "INSUFFICIENT_SCOPE", "write");
        let got = call(&app, Method::GET, "/users", Some(&writer), None).await;
        assert_error(got, 403, "INSUFFICIENT_SCOPE", "admin");
    }

    pub async fn the_rate_limit_is_exact_under_concurrency(b: Backend) {
        let app = Arc::new(spawn_auth_app(b).await);
        app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        let limit = RateLimit::parse("r", "100/minute").unwrap();
        let key = add_key(&app, tenant_a(), "alice@a.example", Scopes::READ, None, Some(limit)).await;
        // 16 clients, 20 requests each: 320 attempts against a limit of 100.
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (app, key) = (app.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..20 {
                    let r = app.client.get(app.url("/list_timeseries")).header("x-api-key", &key).send().await.unwrap();
                    statuses.push(r.status().as_u16());
                }
                statuses
            }));
        }
        let mut ok = 0;
        let mut limited = 0;
        for t in tasks {
            for s in t.await.unwrap() {
                match s {
                    200 => ok += 1,
                    429 => limited += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
        }
        assert_eq!((ok, limited), (100, 220));
        // Denied requests are not uses.
        app.verifier.flush_usage().await;
        let keys = app.db.store.list_keys(TenantScope::One(tenant_a()), None, false).await.unwrap();
        let used = keys.iter().find(|k| k.key_id.as_str() == &key[4..12]).unwrap();
        assert_eq!(used.use_count, 100);
    }

    pub async fn usage_counts_are_exact(b: Backend) {
        let app = Arc::new(spawn_auth_app(b).await);
        let key = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let (app, key, sem) = (app.clone(), key.clone(), sem.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                app.client.get(app.url("/whoami")).header("x-api-key", &key).send().await.unwrap().status()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        app.verifier.flush_usage().await;
        let keys = app.db.store.list_keys(TenantScope::One(tenant_a()), None, false).await.unwrap();
        assert_eq!(keys[0].use_count, 1000);
        assert!(keys[0].last_used_at.is_some());
        // Visible over HTTP too (that listing is itself a use, counted at the next flush).
        let (_, list) = call(&app, Method::GET, "/api-keys", Some(&key), None).await;
        assert_eq!(list[0]["use_count"], 1000);
    }

    pub async fn no_endpoint_reaches_another_tenant(b: Backend) {
        let app = spawn_auth_app(b).await;
        let alice = app.add_user(tenant_a(), "alice@a.example", Role::Admin).await;
        let bob = app.add_user(tenant_b(), "bob@b.example", Role::Admin).await;
        let carol = app.add_user(tenant_a(), "carol@a.example", Role::Writer).await;

        // Tenant A's things.
        let upload: Value = serde_json::from_str(ROWS).unwrap();
        let (status, up) = call(&app, Method::POST, "/upload", Some(&alice), Some(upload)).await;
        assert_eq!(status, 200, "{up}");
        let run_id = up["run_id"].as_str().unwrap().to_owned();
        let series_id = up["series_ids"]["temperature"].as_str().unwrap().to_owned();
        let (_, rows) = call(&app, Method::GET, "/values?all_versions=true", Some(&alice), None).await;
        let value_id = rows["data"][0]["value_id"].clone();
        assert!(value_id.is_number(), "{rows}");
        let carol_key_id = &carol[4..12];

        // Bob (admin of tenant B) aims at each of them.
        let not_found = [
            (Method::GET, format!("/series/{series_id}"), None),
            (Method::GET, format!("/runs/{run_id}"), None),
            (Method::PUT, "/values".to_owned(), Some(json!({"updates": [{"value_id": value_id, "value": 0.0}]}))),
            (
                Method::PUT,
                "/values".to_owned(),
                Some(json!({"updates": [{"run_id": run_id, "series_id": series_id,
                    "valid_time": "2025-01-01T00:00:00Z", "value": 0.0}]})),
            ),
            (
                Method::POST,
                "/upload".to_owned(),
                Some(json!({"run_start_time": "2025-01-02T00:00:00Z", "value_rows": [
                    {"valid_time": "2025-01-01T00:00:00Z", "value_key": "temperature", "series_id": series_id, "value": 0.0}]})),
            ),
            (Method::DELETE, format!("/api-keys/{carol_key_id}"), None),
            (Method::DELETE, format!("/api-keys/{carol}"), None),
            (Method::POST, "/users/carol@a.example/deactivate".to_owned(), None),
            (Method::POST, "/users/carol@a.example/regenerate-key".to_owned(), None),
        ];
        for (method, path, body) in not_found {
            let (status, resp) = call(&app, method.clone(), &path, Some(&bob), body).await;
            assert_eq!(status, 404, "{method} {path}: {resp}");
            // The answer may echo what was asked, nothing more of tenant A.
            let echoed = path.contains("a.example");
            assert!(echoed || !resp.to_string().contains("a.example"), "{method} {path} leaks: {resp}");
            assert!(resp["detail"].as_str().unwrap().contains("not found"), "{method} {path}: {resp}");
        }
        // A read filtered by A's series id is a filter matching nothing, exactly as for an
        // id that never existed.
        let (status, resp) = call(&app, Method::GET, &format!("/values?series_id={series_id}"), Some(&bob), None).await;
        assert_eq!((status.as_u16(), &resp["count"]), (200, &json!(0)), "{resp}");
        // Naming tenant A in a body is a mismatch, not a way in.
        let mut upload: Value = serde_json::from_str(ROWS).unwrap();
        upload["tenant_id"] = json!(tenant_a().to_string());
        assert_error(call(&app, Method::POST, "/upload", Some(&bob), Some(upload)).await, 403, "TENANT_MISMATCH", "");
        let put = json!({"tenant_id": tenant_a().to_string(), "updates": [{"value_id": value_id, "value": 0.0}]});
        assert_error(call(&app, Method::PUT, "/values", Some(&bob), Some(put)).await, 403, "TENANT_MISMATCH", "");
        // Listings show nothing of A.
        for path in ["/values", "/series", "/runs", "/list_timeseries", "/users", "/api-keys"] {
            let (status, resp) = call(&app, Method::GET, path, Some(&bob), None).await;
            assert_eq!(status, 200, "{path}");
            let text = resp.to_string();
            assert!(!text.contains("temperature") && !text.contains("a.example"), "{path} leaks: {text}");
        }
        let (_, keys) = call(&app, Method::GET, "/api-keys?email=carol@a.example", Some(&bob), None).await;
        assert_eq!(keys, json!([]), "{keys}");

        // Nothing of A changed: carol still works, values unchanged, one version each.
        assert_eq!(call(&app, Method::GET, "/whoami", Some(&carol), None).await.0, 200);
        let (_, after) = call(&app, Method::GET, "/values?all_versions=true", Some(&alice), None).await;
        assert_eq!(after, rows);
    }

    pub async fn authors_come_from_the_key_never_the_body(b: Backend) {
        let app = spawn_auth_app(b).await;
        let alice = app.add_user(tenant_a(), "alice@a.example", Role::Writer).await;
        let upload: Value = serde_json::from_str(ROWS).unwrap();
        let (status, up) = call(&app, Method::POST, "/upload", Some(&alice), Some(upload)).await;
        assert_eq!(status, 200, "{up}");
        let (_, rows) = call(&app, Method::GET, "/values", Some(&alice), None).await;
        let put = json!({"changed_by": "mallory", "updates": [{"run_id": up["run_id"],
            "series_id": up["series_ids"]["temperature"], "valid_time": "2025-01-01T00:00:00Z", "value": 25.0}]});
        let (status, resp) = call(&app, Method::PUT, "/values", Some(&alice), Some(put)).await;
        assert_eq!(status, 200, "{resp} {rows}");
        let (_, all) = call(&app, Method::GET, "/values?all_versions=true", Some(&alice), None).await;
        let changed: Vec<&Value> = all["data"].as_array().unwrap().iter().map(|r| &r["changed_by"]).collect();
        assert!(changed.contains(&&json!("alice@a.example")), "{all}");
        assert!(!all.to_string().contains("mallory"), "{all}");
        let (_, run) =
            call(&app, Method::GET, &format!("/runs/{}", up["run_id"].as_str().unwrap()), Some(&alice), None).await;
        assert_eq!(run["created_by"], "alice@a.example", "{run}");
    }

    pub async fn tenant_admins_manage_their_own_users(b: Backend) {
        let app = spawn_auth_app(b).await;
        let admin = app.add_user(tenant_a(), "root@a.example", Role::Admin).await;
        let (status, created) = call(
            &app,
            Method::POST,
            "/users",
            Some(&admin),
            Some(json!({"email": "dave@a.example", "role": "reader"})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let dave = created["api_key"].as_str().unwrap().to_owned();
        let (_, who) = call(&app, Method::GET, "/whoami", Some(&dave), None).await;
        assert_eq!(who["tenant_id"], tenant_a().to_string());
        assert_eq!(who["scopes"], json!(["read"]));
        let again = call(&app, Method::POST, "/users", Some(&admin), Some(json!({"email": "DAVE@a.example"}))).await;
        assert_eq!(again.0, 409, "{}", again.1);

        let (status, _) = call(&app, Method::POST, "/users/dave@a.example/deactivate", Some(&admin), None).await;
        assert_eq!(status, 200);
        assert_error(call(&app, Method::GET, "/values", Some(&dave), None).await, 401, "INACTIVE_USER", "");
        let (_, users) = call(&app, Method::GET, "/users", Some(&admin), None).await;
        assert_eq!(users.as_array().unwrap().len(), 1, "inactive users are hidden by default: {users}");
        let (_, users) = call(&app, Method::GET, "/users?include_inactive=true", Some(&admin), None).await;
        assert_eq!(users.as_array().unwrap().len(), 2);
        call(&app, Method::POST, "/users/dave@a.example/activate", Some(&admin), None).await;
        assert_eq!(call(&app, Method::GET, "/values", Some(&dave), None).await.0, 200);

        let (status, fresh) =
            call(&app, Method::POST, "/users/dave@a.example/regenerate-key", Some(&admin), None).await;
        assert_eq!(status, 200, "{fresh}");
        let new_key = fresh["api_key"].as_str().unwrap();
        assert_error(call(&app, Method::GET, "/values", Some(&dave), None).await, 401, "REVOKED_KEY", "");
        assert_eq!(call(&app, Method::GET, "/values", Some(new_key), None).await.0, 200);
    }
}

per_backend!(
    cases;
    metrics_count_requests_without_naming_anyone,
    every_outcome_of_the_table,
    keys_are_accepted_in_every_documented_form,
    query_keys_can_be_switched_off,
    a_key_for_another_environment_is_refused,
    self_service_keys_only_narrow,
    the_rate_limit_is_exact_under_concurrency,
    usage_counts_are_exact,
    no_endpoint_reaches_another_tenant,
    authors_come_from_the_key_never_the_body,
    tenant_admins_manage_their_own_users,
);
