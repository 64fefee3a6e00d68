//! The one helper every HTTP test uses: [`spawn_app`] starts the real router on
//! 127.0.0.1 port 0 against a fresh store of the chosen backend and returns a client
//! pointed at it (zero-to-production's `spawn_app`).

#![allow(dead_code)]

pub mod process;

use std::sync::Arc;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use timedb::TenantId;
use timedb::model::{Email, Role, Scopes};
use timedb::testing::{Backend, TestStore, fresh_with};
use timedb_server::auth::{AuthConfig, Verifier, mint};
use timedb_server::http::{self, HttpConfig};

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: TestStore,
    pub verifier: Arc<Verifier>,
    /// The key every request of the helpers below presents (`X-API-Key`), if any.
    key: std::sync::Mutex<Option<String>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A server with authentication off (a database without users tables).
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, HttpConfig::default()).await
}

pub async fn spawn_app_with(backend: Backend, config: HttpConfig) -> TestApp {
    serve(fresh_with(backend, false).await, config, AuthConfig::default()).await
}

/// A server with authentication on; use [`TestApp::add_user`] for keys.
pub async fn spawn_auth_app(backend: Backend) -> TestApp {
    spawn_auth_app_with(backend, AuthConfig::default()).await
}

pub async fn spawn_auth_app_with(backend: Backend, auth: AuthConfig) -> TestApp {
    serve(fresh_with(backend, true).await, HttpConfig::default(), auth).await
}

/// Serve `db` on 127.0.0.1, port 0, as `timedb api` does (verifier polling included).
pub async fn serve(db: TestStore, config: HttpConfig, auth: AuthConfig) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let store: Arc<dyn timedb::Store> = db.store.clone();
    let verifier = Verifier::new(store.clone(), auth, None).await.unwrap();
    verifier.spawn_background();
    let v = verifier.clone();
    tokio::spawn(async move {
        http::serve(listener, store, v, &config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp { base, client: Client::new(), db, verifier, key: std::sync::Mutex::new(None), shutdown: Some(tx) }
}

impl TestApp {
    /// Present `key` on every following request (`None`: no key).
    pub fn use_key(&self, key: Option<&str>) {
        *self.key.lock().unwrap() = key.map(str::to_owned);
    }

    /// Create a user directly in the store (as the CLI does) and return their first key.
    pub async fn add_user(&self, tenant: TenantId, email: &str, role: Role) -> String {
        self.add_user_scoped(tenant, email, role, role.scopes()).await
    }

    pub async fn add_user_scoped(&self, tenant: TenantId, email: &str, role: Role, scopes: Scopes) -> String {
        let hasher = self.verifier.hasher().expect("auth is on");
        let (key, new) = mint(&self.verifier.config.format, hasher, scopes, None, None, None);
        let email = Email::parse("email", email).unwrap();
        self.db.store.create_user(tenant, email, role, new, Some("test".into())).await.unwrap();
        key.reveal().to_owned()
    }

    /// A request builder carrying the current key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match self.key.lock().unwrap().as_deref() {
            Some(k) => req.header("x-api-key", k),
            None => req,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.get(path).await;
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.request(reqwest::Method::POST, path).json(body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.request(reqwest::Method::PUT, path).json(body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    /// Send raw bytes with a content type; returns status and body as JSON.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method, path).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Upload a run known at `known` with (key, valid_time, value) rows; asserts 200.
    pub async fn upload(&self, known: &str, rows: &[(&str, &str, f64)]) -> Value {
        let body = json!({
            "run_start_time": known,
            "known_time": known,
            "value_rows": rows.iter().map(|(k, t, v)| json!({"value_key": k, "valid_time": t, "value": v})).collect::<Vec<_>>(),
        });
        let (status, resp) = self.post_json("/upload", &body).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        resp
    }

    /// The `data` rows of a JSON read.
    pub async fn values(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get_json(&format!("/values?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let data = body["data"].as_array().unwrap().clone();
        assert_eq!(body["count"].as_u64().unwrap() as usize, data.len());
        data
    }
}

/// Assert an error response: status, machine code, and that `detail` mentions `needle`.
pub fn assert_error(got: (StatusCode, Value), status: u16, code: &str, needle: &str) {
    let (s, body) = got;
    assert_eq!(s.as_u16(), status, "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "detail {detail:?} should mention {needle:?}");
}

/// Instantiate async test cases once per backend: `per_backend!(cases; a, b, c)`.
#[macro_export]
macro_rules! per_backend {
    ($cases:ident; $($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$cases::$case(timedb::testing::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$cases::$case(timedb::testing::Backend::Postgres).await;
                }
            )*
        }
    };
}
