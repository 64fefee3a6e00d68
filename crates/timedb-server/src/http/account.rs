//! The caller's own account: `GET /whoami` and self-service keys (`POST /api-keys`,
//! `GET /api-keys`, `DELETE /api-keys/{key_id}`). Every call stays inside the caller's
//! tenant; an `admin` key may act on other users of that tenant.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use timedb::model::time::{format_timestamp, now};
use timedb::model::{Email, KeyRecord, RateLimit, Scopes, TenantScope};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{JsonBody, PathText, QueryPairs};
use crate::auth::{Principal, mint};

/// Who the presented key belongs to.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    tenant_id: String,
    user_id: String,
    email: String,
    role: String,
    key_id: String,
    scopes: Vec<String>,
    expires_at: Option<String>,
}

/// The caller's identity.
#[utoipa::path(get, path = "/whoami", tag = "keys",
    responses(
        (status = 200, description = "Success", body = WhoAmI),
        (status = 401, description = "No usable API key", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn whoami(caller: Caller) -> ApiResult<axum::Json<WhoAmI>> {
    let p = caller.require_principal()?;
    Ok(axum::Json(WhoAmI {
        tenant_id: p.tenant.to_string(),
        user_id: p.user_id.to_string(),
        email: p.email.to_string(),
        role: p.role.to_string(),
        key_id: p.key_id.to_string(),
        scopes: p.scopes.names().into_iter().map(str::to_owned).collect(),
        expires_at: p.expires_at.map(format_timestamp),
    }))
}

/// A key as listings show it (never the secret).
#[derive(Serialize, ToSchema)]
pub struct KeyBody {
    key_id: String,
    email: String,
    tenant_id: String,
    note: Option<String>,
    scopes: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    use_count: i64,
    rate_limit: Option<String>,
    /// `active`, `expired` or `revoked`.
    status: String,
}

impl From<KeyRecord> for KeyBody {
    fn from(k: KeyRecord) -> Self {
        Self {
            status: k.status(now()).as_str().to_owned(),
            key_id: k.key_id.to_string(),
            email: k.email.to_string(),
            tenant_id: k.tenant.to_string(),
            note: k.note,
            scopes: k.scopes.names().into_iter().map(str::to_owned).collect(),
            created_at: format_timestamp(k.created_at),
            expires_at: k.expires_at.map(format_timestamp),
            revoked_at: k.revoked_at.map(format_timestamp),
            last_used_at: k.last_used_at.map(format_timestamp),
            use_count: k.use_count,
            rate_limit: k.rate_limit.map(|r| r.to_text()),
        }
    }
}

/// A new key for the caller (or, with `admin`, for another user of the tenant).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    note: Option<String>,
    /// Within the caller's own scopes; default: the caller's scopes.
    scopes: Option<Vec<String>>,
    /// Lifetime in seconds.
    expires_in: Option<u64>,
    /// e.g. `100/minute`.
    rate_limit: Option<String>,
    /// Another user of the tenant (requires `admin`).
    email: Option<String>,
}

/// The new key: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    key: String,
    #[serde(flatten)]
    record: KeyBody,
}

/// Longest key lifetime accepted (ten years).
const MAX_EXPIRES_IN: u64 = 10 * 365 * 86_400;

/// The email an admin names, or the caller's own.
fn target_email(p: &Principal, email: Option<&str>) -> ApiResult<Email> {
    match email {
        None => Ok(p.email.clone()),
        Some(e) => {
            let e = Email::parse("email", e)?;
            if e != p.email && !p.scopes.contains(Scopes::ADMIN) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "INSUFFICIENT_SCOPE",
                    "managing another user's keys needs the 'admin' scope",
                ));
            }
            Ok(e)
        }
    }
}

/// Create an API key.
#[utoipa::path(post, path = "/api-keys", tag = "keys", request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 403, description = "The key lacks the scope this needs", body = ErrorBody),
        (status = 422, description = "An invalid field, named in `detail`", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateKeyRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let p = caller.require_principal()?;
    let email = target_email(p, req.email.as_deref())?;
    let scopes = match &req.scopes {
        Some(s) => Scopes::parse("scopes", s)?,
        None => p.scopes,
    };
    // A key can only narrow: never more than the caller holds.
    if !p.scopes.contains(scopes) {
        return Err(ApiError::invalid("scopes", format!("'{scopes}' exceeds your key's scopes ({})", p.scopes)));
    }
    let expires_at = match req.expires_in {
        Some(0) => return Err(ApiError::invalid("expires_in", "must be at least 1 second")),
        Some(s) if s > MAX_EXPIRES_IN => return Err(ApiError::invalid("expires_in", "must be at most ten years")),
        Some(s) => Some(now() + chrono::Duration::seconds(s as i64)),
        None => None,
    };
    let rate_limit = req.rate_limit.as_deref().map(|r| RateLimit::parse("rate_limit", r)).transpose()?;
    let note = timedb::model::canonical_annotation("note", req.note.as_deref())?;
    // The target user's role bounds the key too.
    let users = state.store.find_users(TenantScope::One(p.tenant), Some(email.clone()), true).await?;
    let user = users.first().ok_or_else(|| ApiError::not_found(format!("user {email} not found")))?;
    if !user.role.scopes().contains(scopes) {
        return Err(ApiError::invalid("scopes", format!("'{scopes}' exceeds {email}'s role ({})", user.role)));
    }
    let v = &state.verifier;
    let (key, new) = mint(&v.config.format, super::auth::hasher(v)?, scopes, note, expires_at, rate_limit);
    let record = state.store.create_key(p.tenant, email, new, Some(p.email.to_string())).await?;
    tracing::info!(key_id = %record.key_id, by = %p.key_id, "API key created");
    Ok((StatusCode::CREATED, axum::Json(CreatedKey { key: key.reveal().to_owned(), record: record.into() })))
}

/// List the caller's keys (an `admin` key may pass `email`).
#[utoipa::path(get, path = "/api-keys", tag = "keys",
    params(
        ("email" = Option<String>, Query, description = "Another user's keys (admin)"),
        ("include_revoked" = Option<bool>, Query, description = "Include revoked keys"),
    ),
    responses(
        (status = 200, description = "Success", body = Vec<KeyBody>),
    ),
    security(("api_key" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    q: QueryPairs,
) -> ApiResult<axum::Json<Vec<KeyBody>>> {
    q.check_known(&["email", "include_revoked", "api_key"])?;
    let p = caller.require_principal()?;
    let email = target_email(p, q.one("email")?)?;
    let include_revoked = matches!(q.one("include_revoked")?.map(str::trim), Some("true" | "1"));
    let keys = state.store.list_keys(TenantScope::One(p.tenant), Some(email), include_revoked).await?;
    Ok(axum::Json(keys.into_iter().map(Into::into).collect()))
}

/// Revoke a key by key id or full key (soft: kept for audit, refused from now on).
#[utoipa::path(delete, path = "/api-keys/{key}", tag = "keys",
    params(("key" = String, Path, description = "The key id, or the whole key")),
    responses(
        (status = 200, description = "Success", body = KeyBody),
        (status = 404, description = "Not found (or another tenant's)", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    PathText(key): PathText,
) -> ApiResult<axum::Json<KeyBody>> {
    let p = caller.require_principal()?;
    let key_id = state
        .verifier
        .config
        .format
        .key_id_of(&key)
        .map_err(|_| ApiError::invalid("key", "is neither a key id (8 characters) nor a valid API key"))?;
    let keys = state.store.list_keys(TenantScope::One(p.tenant), None, true).await?;
    let target = keys
        .iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| ApiError::not_found(format!("key {key_id} not found")))?;
    target_email(p, Some(target.email.as_str()))?;
    let record = state.store.revoke_key(p.tenant, key_id.clone(), Some(p.email.to_string())).await?;
    state.verifier.changed().await;
    tracing::info!(key_id = %key_id, by = %p.key_id, "API key revoked");
    Ok(axum::Json(record.into()))
}
