//! Who is calling, as far as the store is concerned: the tenant every store call is
//! scoped to, and the name recorded as `changed_by`/`created_by`.
//!
//! With authentication on, the [`super::auth`] middleware has put the caller's
//! [`Principal`] in the request, and the tenant is the key's — a request may not name
//! another (403 `TENANT_MISMATCH`). With authentication off every caller is anonymous and
//! acts for the default tenant unless the request names another (`tenant_id` in the body
//! or query, the upstream behaviour).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use timedb::TenantId;

use super::AppState;
use super::error::ApiError;
use crate::auth::Principal;

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the caller acts for.
    pub tenant: TenantId,
    /// `None` when authentication is off.
    pub principal: Option<Principal>,
}

impl Caller {
    /// The tenant a request acts on: with a principal, its tenant (naming another is
    /// refused); anonymous callers may choose.
    pub fn tenant_for(&self, requested: Option<&str>) -> Result<TenantId, ApiError> {
        let Some(text) = requested else {
            return Ok(self.tenant);
        };
        let requested = TenantId::parse("tenant_id", text)?;
        if self.principal.is_some() && requested != self.tenant {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "TENANT_MISMATCH",
                "tenant_id does not match the tenant of your API key",
            ));
        }
        Ok(requested)
    }

    /// `changed_by`/`created_by` for a write: the authenticated user's email, never a
    /// client-supplied name; anonymous callers may say who they are.
    pub fn author(&self, claimed: Option<String>) -> Option<String> {
        match &self.principal {
            Some(p) => Some(p.email.to_string()),
            None => claimed.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()),
        }
    }

    /// The principal, or a refusal for routes that only make sense with keys.
    pub fn require_principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "AUTH_DISABLED",
                "authentication is off on this server (its database has no users tables); \
                 run `timedb create tables --with-users` to turn it on",
            )
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match super::auth::principal_of(parts) {
            Some(p) => Ok(Caller { tenant: p.tenant, principal: Some(p) }),
            // Defence in depth: a data route that somehow skipped the middleware must not
            // serve the default tenant while authentication is on.
            None if state.verifier.enabled() => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "MISSING_KEY",
                "API key required. Please provide X-API-Key header.",
            )),
            None => Ok(Caller { tenant: TenantId::DEFAULT, principal: None }),
        }
    }
}
