//! The HTTP layer: routes, extractors, and the mapping of errors to statuses.
//!
//! One file per endpoint group. Handlers parse the request into model types (errors
//! become 400/422 here), call the store with the caller's tenant, and shape the answer
//! in the upstream-compatible JSON. Nothing below this layer knows about HTTP.

mod account;
mod arrow_encode;
mod auth;
mod bulk;
mod caller;
mod encode;
mod error;
mod extract;
mod meta;
mod openapi;
mod runs;
mod series;
mod upload;
mod users;
mod values;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use timedb::Store;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::auth::Verifier;

pub use error::{ApiError, ErrorBody};

/// Default request body limit (SPEC §4).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Default for [`HttpConfig::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest wait for the next piece of a request body (nginx's `client_body_timeout`):
    /// a client that sends headers and then stalls (slow loris) gets 408 and the
    /// connection is closed, instead of holding a task and a socket forever.
    pub body_read_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { body_limit: DEFAULT_BODY_LIMIT, body_read_timeout: DEFAULT_BODY_READ_TIMEOUT }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub verifier: Arc<Verifier>,
}

/// Fresh UUID request ids for requests that arrive without `x-request-id`.
#[derive(Clone, Default)]
struct UuidRequestId;

impl MakeRequestId for UuidRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        uuid::Uuid::new_v4().to_string().parse().ok().map(RequestId::new)
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see GET / or /docs for the list")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "this endpoint does not accept that method")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error; it has been logged").into_response()
}

/// Bodies declared over the limit but at most this large are read and dropped before the
/// 413 goes out; larger ones are answered at once.
const DRAIN_MAX: u64 = 8 * 1024 * 1024;

/// Answer 413 for a body whose declared length is over the limit, without parsing it
/// (bodies without a length are cut off by `DefaultBodyLimit` as they stream).
///
/// A body of moderate size is read and dropped first: closing a socket with unread data
/// makes the kernel send a reset, which can destroy the 413 before the client reads it.
/// A huge body is answered at once with `Connection: close` (clients sending such bodies
/// should use `Expect: 100-continue`, which hyper honours).
async fn refuse_declared_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|n| *n > limit as u64) else {
        let mut response = next.run(req).await;
        // A body cut off part-way (over the limit while streaming, or too slow) is left
        // unread, so this connection cannot carry another request: say so, or a client
        // reusing it races the close.
        if matches!(response.status(), StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT) {
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        return response;
    };
    let mut response = extract::body_too_large().into_response();
    if declared <= DRAIN_MAX {
        use futures_util::StreamExt;
        let mut body = req.into_body().into_data_stream();
        let drain = async { while let Some(Ok(_)) = body.next().await {} };
        // The body-read timeout also bounds this; a second bound keeps a trickle short.
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    }
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// Count the request by matched route (never the raw path: ids are not labels) and time
/// it to its response head.
async fn record_metrics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    // MatchedPath is a shared string: cloning it allocates nothing.
    let route = req.extensions().get::<axum::extract::MatchedPath>().cloned();
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("(unmatched)", |m| m.as_str());
    crate::metrics::global().request(route, method.as_str(), response.status().as_u16(), started.elapsed());
    response
}

/// The whole application. Routes are grouped by what they require of a caller, and each
/// group gets the authentication middleware for that requirement; the public group has
/// none.
pub fn router(store: Arc<dyn Store>, verifier: Arc<Verifier>, config: &HttpConfig) -> Router {
    let state = AppState { store, verifier: verifier.clone() };
    let guard = |need| {
        axum::middleware::from_fn_with_state(auth::AuthLayer { verifier: verifier.clone(), need }, auth::authenticate)
    };
    let data = Router::new()
        .route("/values", get(values::get_values).put(values::put_values))
        .route("/upload", post(upload::upload))
        .route("/runs", post(upload::create_run).get(runs::list_runs))
        .route("/runs/{run_id}", get(runs::get_run))
        .route("/series", post(series::create_series).get(series::list_series))
        .route("/series/{series_id}", get(series::get_series))
        .route("/list_timeseries", get(series::list_timeseries))
        .route_layer(guard(auth::Need::ByMethod));
    let account = Router::new()
        .route("/whoami", get(account::whoami))
        .route("/api-keys", post(account::create_key).get(account::list_keys))
        .route("/api-keys/{key}", delete(account::revoke_key))
        .route_layer(guard(auth::Need::Authenticated));
    let admin = Router::new()
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{email}/deactivate", post(users::deactivate))
        .route("/users/{email}/activate", post(users::activate))
        .route("/users/{email}/regenerate-key", post(users::regenerate_key))
        .route_layer(guard(auth::Need::Admin));
    let swagger = SwaggerUi::new("/docs").config(Config::new(["/openapi.json"]).validator_url("none"));
    Router::new()
        .route("/", get(meta::root))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi_json))
        .route("/redoc", get(meta::redoc_page))
        .route("/redoc/redoc.standalone.js", get(meta::redoc_js))
        .merge(swagger)
        .merge(data)
        .merge(account)
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::from_fn_with_state(config.body_limit, refuse_declared_oversize))
        .layer(RequestBodyTimeoutLayer::new(config.body_read_timeout))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            let path = loggable_path(req.uri().path());
            tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(UuidRequestId))
}

/// A request path fit for a log line: `DELETE /api-keys/{key}` accepts a whole key in
/// the path, which must never reach a log, so that segment is cut to its key id.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/api-keys/") {
        Some(rest) if rest.len() > timedb::model::KeyId::LEN => "/api-keys/(a whole key, not logged)".into(),
        _ => path.into(),
    }
}

/// Serve until `shutdown` resolves, then finish in-flight requests (for at most
/// [`DRAIN_TIMEOUT`]) and write pending key usage.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    verifier: Arc<Verifier>,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(store, verifier.clone(), config);
    // Small answers go out in more than one write; without TCP_NODELAY the second waits
    // for the client's delayed ACK (~40 ms per request).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = draining_tx.send(());
    };
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .into_future();
    let drain_deadline = async move {
        if draining_rx.await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = drain_deadline => {
            tracing::warn!("in-flight requests still running after {} s; stopping anyway", DRAIN_TIMEOUT.as_secs());
            Ok(())
        }
    };
    verifier.flush_usage().await;
    result
}

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
