//! The one place errors become HTTP responses: `{"detail": "<sentence>", "code": "<CODE>"}`
//! with the status SPEC §4 assigns. Store and model errors convert here, once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use timedb::StoreError;
use timedb::model::ModelError;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A human sentence saying what went wrong and, where possible, how to fix it.
    pub detail: String,
    /// A stable machine-readable code, e.g. `INVALID_FIELD`, `NOT_FOUND`.
    pub code: String,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into() }
    }

    /// Malformed JSON or query syntax.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// A well-formed request with an invalid field; `field` is named in the detail.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        ModelError::new(field, message.to_string()).into()
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let detail = if e.field.is_empty() { e.message } else { format!("{}: {}", e.field, e.message) };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self::not_found(e.to_string()),
            StoreError::Conflict(detail) => Self::new(StatusCode::CONFLICT, "CONFLICT", detail),
            StoreError::Invalid(m) => m.into(),
            StoreError::SchemaMissing | StoreError::SchemaTooNew { .. } | StoreError::SchemaTooOld { .. } => {
                tracing::error!(error = %e, "store schema problem");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "SCHEMA_UNAVAILABLE", e.to_string())
            }
            StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "STORE_UNAVAILABLE",
                    "the database is unavailable; try again shortly",
                )
            }
            StoreError::Backend(_) => {
                tracing::error!(error = %e, "store error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error; it has been logged")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { detail: self.detail, code: self.code.to_owned() };
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
