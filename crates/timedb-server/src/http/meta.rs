//! Public service endpoints: `GET /` (what this is), health checks, and the API's own
//! documentation (OpenAPI document, Swagger UI, ReDoc), all served from the binary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;

/// ReDoc's standalone bundle from the npm package `redoc@2.5.4` (MIT), vendored so the
/// page needs no CDN.
const REDOC_JS: &str = include_str!("../../assets/redoc.standalone.js");

#[derive(Serialize, ToSchema)]
pub struct AuthInfo {
    /// Whether requests must carry an API key.
    enabled: bool,
    /// How a key is presented when auth is on.
    methods: Vec<String>,
    note: String,
}

/// What this service is.
#[derive(Serialize, ToSchema)]
pub struct RootInfo {
    name: String,
    version: String,
    store: String,
    /// `METHOD path` → purpose.
    endpoints: std::collections::BTreeMap<String, String>,
    authentication: AuthInfo,
    docs: String,
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET /values", "Read values (flat, overlapping, all_versions, as-of) as JSON, CSV or Arrow IPC"),
    ("POST /upload", "Create a run with values (JSON, CSV or Arrow IPC body)"),
    ("POST /runs", "Create a run with values (alias of /upload)"),
    ("PUT /values", "Correct values (new versions, history kept)"),
    ("POST /series", "Create a series"),
    ("GET /series", "List series"),
    ("GET /series/{series_id}", "One series"),
    ("GET /list_timeseries", "Series by id (upstream shape)"),
    ("GET /runs", "List runs"),
    ("GET /runs/{run_id}", "One run"),
    ("GET /whoami", "The caller's identity"),
    ("POST /api-keys", "Create an API key"),
    ("GET /api-keys", "List your API keys"),
    ("DELETE /api-keys/{key}", "Revoke an API key"),
    ("GET /users", "List users (admin)"),
    ("POST /users", "Create a user (admin)"),
    ("POST /users/{email}/deactivate", "Deactivate a user (admin)"),
    ("POST /users/{email}/activate", "Activate a user (admin)"),
    ("POST /users/{email}/regenerate-key", "Replace a user's keys (admin)"),
    ("GET /healthz", "Liveness"),
    ("GET /readyz", "Readiness (store reachable)"),
    ("GET /metrics", "Process metrics (Prometheus text format)"),
    ("GET /openapi.json", "OpenAPI document"),
    ("GET /docs", "Swagger UI"),
    ("GET /redoc", "ReDoc"),
];

/// Service information (public).
#[utoipa::path(get, path = "/", tag = "service",
    responses((status = 200, description = "What this service is and where its docs are", body = RootInfo)))]
pub async fn root(State(state): State<AppState>) -> axum::Json<RootInfo> {
    axum::Json(RootInfo {
        name: "TimeDB API".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        store: state.store.backend().into(),
        endpoints: ENDPOINTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        authentication: if state.verifier.enabled() {
            let mut methods = vec![
                "X-API-Key: <key>".to_owned(),
                "Authorization: Bearer <key>".to_owned(),
                "Authorization: Apikey <key>".to_owned(),
            ];
            if state.verifier.config.allow_query_key {
                methods.push("?api_key=<key>".to_owned());
            }
            AuthInfo {
                enabled: true,
                methods,
                note: "Every endpoint except /, /docs, /redoc, /openapi.json, /healthz, /readyz and /metrics needs an API key."
                    .into(),
            }
        } else {
            AuthInfo {
                enabled: false,
                methods: vec![],
                note: "Authentication is off: all data belongs to the default tenant.".into(),
            }
        },
        docs: "/docs".into(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// Readiness: the store answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store does not answer", body = super::error::ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    state.store.ping().await?;
    Ok(axum::Json(Health { status: "ready".into() }))
}

/// Process metrics in the Prometheus text format (no tenant, user or key in any label).
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> Response {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::global().render()).into_response()
}

/// The OpenAPI document, generated from the code.
pub async fn openapi_json() -> Response {
    let doc = super::openapi::document();
    ([(CONTENT_TYPE, "application/json")], doc).into_response()
}

pub async fn redoc_page() -> Html<&'static str> {
    Html(
        r#"<!DOCTYPE html>
<html>
  <head>
    <title>TimeDB API — ReDoc</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>"#,
    )
}

pub async fn redoc_js() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=86400")],
        REDOC_JS,
    )
        .into_response()
}
