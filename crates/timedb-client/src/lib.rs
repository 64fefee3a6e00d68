//! An async client for the timedb HTTP API.
//!
//! One [`Client`] per server: it holds a connection pool, the API key and a retry policy,
//! and has one method per endpoint. Bodies are the typed structs of [`model`]; failures
//! are an [`Error`] carrying the server's status and machine `code`.
//!
//! By default the URL comes from `TIMEDB_URL` (else `http://127.0.0.1:8000`) and the key
//! from `TIMEDB_API_KEY` (Tiled's `TILED_API_KEY` convention):
//!
//! ```no_run
//! use timedb_client::{Client, ReadQuery, Upload, ValueRow};
//! use chrono::{TimeZone, Utc};
//!
//! # async fn demo() -> Result<(), timedb_client::Error> {
//! let client = Client::from_env()?;
//! let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
//! let rows = (0..6)
//!     .map(|h| ValueRow::new("temperature", t0 + chrono::Duration::hours(h), Some(20.0 + h as f64)))
//!     .collect();
//! let receipt = client.upload(&Upload::new(rows)).await?;
//! println!("run {}", receipt.run_id);
//!
//! let rows = client.read(&ReadQuery { series_keys: vec!["temperature".into()], ..Default::default() }).await?;
//! assert_eq!(rows.len(), 6);
//! # Ok(())
//! # }
//! ```
//!
//! Errors carry what the server said:
//!
//! ```no_run
//! # async fn demo() {
//! let anonymous = timedb_client::Client::new("http://127.0.0.1:8000").unwrap();
//! match anonymous.whoami().await {
//!     Err(timedb_client::Error::Api { status: 401, code, .. }) => assert_eq!(code, "MISSING_KEY"),
//!     other => panic!("expected a 401, got {other:?}"),
//! }
//! # }
//! ```
//!
//! A `429 Too Many Requests` is retried after the server's `Retry-After` (bounded by
//! [`RetryPolicy`]); no other error is retried, since every other 4xx is the caller's to fix.

mod account;
mod data;
mod error;
pub mod model;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};

pub use data::{ByteStream, Progress};
pub use error::Error;
pub use model::*;

/// The server a client talks to when `TIMEDB_URL` is unset.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8000";

/// How `429 Too Many Requests` answers are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The first wait when the server sends no `Retry-After`; doubled per attempt.
    pub base_delay: Duration,
    /// No single wait is longer than this, whatever `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// No retries: a 429 comes back as [`Error::Api`] at once.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait before attempt `attempt + 1` (`attempt` ≥ 1).
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base_delay.saturating_mul(1 << (attempt - 1).min(16));
        // Retry-After is the server's word on when the window reopens; waiting less only
        // earns another 429. Without it, back off exponentially.
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// A timedb API client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: Option<String>,
    retry: RetryPolicy,
}

/// Shows the URL and whether a key is set, never the key.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("retry", &self.retry)
            .finish()
    }
}

impl Client {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:8000`), without a key.
    ///
    /// ```
    /// let client = timedb_client::Client::new("http://127.0.0.1:8000").unwrap().with_api_key("tdb_…");
    /// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8000/");
    /// ```
    pub fn new(url: &str) -> Result<Self, Error> {
        let mut base = Url::parse(url.trim()).map_err(|e| Error::Decode(format!("invalid server URL {url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Decode(format!("invalid server URL {url:?}: expected http://host:port")));
        }
        // Endpoints are joined onto the base, so a path prefix (a server behind a reverse
        // proxy at /timedb) must end in a slash to be kept.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("timedb-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Transport)?;
        Ok(Self { http, base, api_key: None, retry: RetryPolicy::default() })
    }

    /// A client for `TIMEDB_URL` (default [`DEFAULT_URL`]) presenting `TIMEDB_API_KEY`, if set.
    pub fn from_env() -> Result<Self, Error> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let client = Self::new(&env("TIMEDB_URL").unwrap_or_else(|| DEFAULT_URL.to_owned()))?;
        Ok(match env("TIMEDB_API_KEY") {
            Some(key) => client.with_api_key(key.trim()),
            None => client,
        })
    }

    /// Present `key` (as `X-API-Key`) on every request.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Retry 429 answers by `policy` instead of the default (4 attempts, ≤ 30 s per wait).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of an endpoint: `segments` are percent-encoded path segments.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("checked in Client::new");
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let req = self.http.request(method, url);
        match &self.api_key {
            Some(key) => req.header("x-api-key", key),
            None => req,
        }
    }

    /// Send the request `build` makes, retrying 429s; a non-success status becomes
    /// [`Error::Api`]. `build` runs once per attempt because a sent request is consumed.
    async fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Response, Error> {
        let mut attempt = 1;
        loop {
            let resp = build().send().await.map_err(Error::Transport)?;
            if resp.status().is_success() {
                return Ok(resp);
            }
            let err = error::from_response(resp).await;
            match &err {
                Error::Api { status: 429, retry_after, .. } if attempt < self.retry.max_attempts => {
                    tokio::time::sleep(self.retry.delay(attempt, *retry_after)).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// Send and decode a JSON answer.
    async fn send_json<T: serde::de::DeserializeOwned>(&self, build: impl Fn() -> RequestBuilder) -> Result<T, Error> {
        let resp = self.send(build).await?;
        decode(resp).await
    }

    /// `GET` an endpoint and decode its JSON.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let url = self.url(segments, query);
        self.send_json(|| self.request(Method::GET, url.clone())).await
    }

    /// `POST` (or another method) a JSON body to an endpoint and decode the JSON answer.
    async fn call<B: serde::Serialize + ?Sized, T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, Error> {
        let url = self.url(segments, &[]);
        // Serialise once; each retry sends the same bytes.
        let body = body
            .map(|b| serde_json::to_vec(b).map(bytes::Bytes::from))
            .transpose()
            .map_err(|e| Error::Decode(format!("cannot encode the request: {e}")))?;
        self.send_json(|| {
            let req = self.request(method.clone(), url.clone());
            match &body {
                Some(b) => req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone()),
                None => req,
            }
        })
        .await
    }
}

async fn decode<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T, Error> {
    let bytes = resp.bytes().await.map_err(Error::Transport)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_path_prefix_and_encode_segments() {
        let c = Client::new("http://example.test:8000/timedb").unwrap();
        let url = c.url(&["users", "a+b@x.org", "activate"], &[("q", "a b".into())]);
        assert_eq!(url.as_str(), "http://example.test:8000/timedb/users/a+b@x.org/activate?q=a+b");
        let c = Client::new("http://example.test:8000").unwrap();
        assert_eq!(c.url(&["values"], &[]).as_str(), "http://example.test:8000/values");
    }

    #[test]
    fn a_non_http_url_is_refused() {
        assert!(Client::new("postgresql://localhost/db").is_err());
        assert!(Client::new("not a url").is_err());
    }

    #[test]
    fn retry_waits_follow_retry_after_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(1, Some(Duration::from_secs(999))), p.max_delay);
        assert_eq!(p.delay(1, None), p.base_delay);
        assert_eq!(p.delay(3, None), p.base_delay * 4);
    }
}

#[cfg(test)]
mod debug_tests {
    #[test]
    fn debug_never_shows_the_key() {
        let c = super::Client::new("http://127.0.0.1:8000").unwrap().with_api_key("tdb_SECRETSECRETSECRET_abcdef");
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET") && shown.contains("***"), "{shown}");
    }
}
