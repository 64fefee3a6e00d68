//! Tenant administration over HTTP (`admin` scope): users of the caller's own tenant.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use timedb::model::time::format_timestamp;
use timedb::model::{Email, Role, TenantScope, User};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{ApiResult, ErrorBody};
use super::extract::{JsonBody, PathText, QueryPairs};
use crate::auth::mint;

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    user_id: String,
    tenant_id: String,
    email: String,
    role: String,
    is_active: bool,
    created_at: String,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        Self {
            user_id: u.user_id.to_string(),
            tenant_id: u.tenant.to_string(),
            email: u.email.to_string(),
            role: u.role.to_string(),
            is_active: u.is_active,
            created_at: format_timestamp(u.created_at),
        }
    }
}

/// A user with a freshly issued key (shown this once).
#[derive(Serialize, ToSchema)]
pub struct UserWithKey {
    #[serde(flatten)]
    user: UserBody,
    api_key: String,
    key_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    email: String,
    /// `reader`, `writer` (default) or `admin`.
    role: Option<String>,
}

/// List the tenant's users.
#[utoipa::path(get, path = "/users", tag = "users",
    params(("include_inactive" = Option<bool>, Query, description = "Include deactivated users")),
    responses(
        (status = 200, description = "Success", body = Vec<UserBody>),
        (status = 403, description = "The key lacks the scope this needs", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    q: QueryPairs,
) -> ApiResult<axum::Json<Vec<UserBody>>> {
    q.check_known(&["include_inactive", "api_key"])?;
    let p = caller.require_principal()?;
    let include_inactive = matches!(q.one("include_inactive")?.map(str::trim), Some("true" | "1"));
    let users = state.store.find_users(TenantScope::One(p.tenant), None, include_inactive).await?;
    Ok(axum::Json(users.into_iter().map(Into::into).collect()))
}

/// Create a user in the caller's tenant, with a first key.
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = UserWithKey),
        (status = 409, description = "Already exists", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateUserRequest>,
) -> ApiResult<(StatusCode, axum::Json<UserWithKey>)> {
    let p = caller.require_principal()?;
    let email = Email::parse("email", &req.email)?;
    let role = req.role.as_deref().map(|r| Role::parse("role", r)).transpose()?.unwrap_or(Role::Writer);
    let v = &state.verifier;
    let (key, new) = mint(&v.config.format, super::auth::hasher(v)?, role.scopes(), None, None, None);
    let (user, record) = state.store.create_user(p.tenant, email, role, new, Some(p.email.to_string())).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(UserWithKey {
            user: user.into(),
            api_key: key.reveal().to_owned(),
            key_id: record.key_id.to_string(),
        }),
    ))
}

/// Deactivate a user: all their keys stop working.
#[utoipa::path(post, path = "/users/{email}/deactivate", tag = "users",
    params(("email" = String, Path)), responses(
        (status = 200, description = "Success", body = UserBody),
        (status = 404, description = "Not found (or another tenant's)", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    PathText(email): PathText,
) -> ApiResult<axum::Json<UserBody>> {
    set_active(state, caller, email, false).await
}

/// Activate a user: their keys work again.
#[utoipa::path(post, path = "/users/{email}/activate", tag = "users",
    params(("email" = String, Path)), responses(
        (status = 200, description = "Success", body = UserBody),
        (status = 404, description = "Not found (or another tenant's)", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    PathText(email): PathText,
) -> ApiResult<axum::Json<UserBody>> {
    set_active(state, caller, email, true).await
}

async fn set_active(state: AppState, caller: Caller, email: String, active: bool) -> ApiResult<axum::Json<UserBody>> {
    let p = caller.require_principal()?;
    let email = Email::parse("email", &email)?;
    let user = state.store.set_user_active(p.tenant, email, active, Some(p.email.to_string())).await?;
    state.verifier.changed().await;
    Ok(axum::Json(user.into()))
}

/// Revoke all of a user's keys and issue a new one (shown this once).
#[utoipa::path(post, path = "/users/{email}/regenerate-key", tag = "users",
    params(("email" = String, Path)), responses(
        (status = 200, description = "Success", body = UserWithKey),
        (status = 404, description = "Not found (or another tenant's)", body = ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn regenerate_key(
    State(state): State<AppState>,
    caller: Caller,
    PathText(email): PathText,
) -> ApiResult<axum::Json<UserWithKey>> {
    let p = caller.require_principal()?;
    let email = Email::parse("email", &email)?;
    let users = state.store.find_users(TenantScope::One(p.tenant), Some(email.clone()), true).await?;
    let user =
        users.into_iter().next().ok_or_else(|| super::error::ApiError::not_found(format!("user {email} not found")))?;
    let v = &state.verifier;
    let (key, new) = mint(&v.config.format, super::auth::hasher(v)?, user.role.scopes(), None, None, None);
    let record = state.store.regenerate_key(p.tenant, email, new, Some(p.email.to_string())).await?;
    state.verifier.changed().await;
    Ok(axum::Json(UserWithKey {
        user: user.into(),
        api_key: key.reveal().to_owned(),
        key_id: record.key_id.to_string(),
    }))
}
