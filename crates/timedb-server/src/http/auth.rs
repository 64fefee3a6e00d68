//! The authentication middleware: finds the presented key (`X-API-Key`, `Authorization:
//! Bearer|Apikey`, `?api_key=`), asks the [`Verifier`] for a principal, checks the scope
//! the route needs and the key's rate limit, and answers the outcome table of SPEC §5
//! when any of that fails. On success the [`Principal`] rides in the request's
//! extensions for the [`super::caller::Caller`] extractor.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use timedb::model::Scopes;
use timedb::model::time::format_timestamp;

use super::error::ApiError;
use crate::auth::ratelimit::Decision;
use crate::auth::{AuthFailure, Principal, Verifier};

/// What a group of routes requires of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Data routes: `read` for GET/HEAD, `write` for everything else.
    ByMethod,
    /// Any valid key (whoami, the caller's own keys); handlers check more where needed.
    Authenticated,
    /// The `admin` scope.
    Admin,
}

#[derive(Clone)]
pub struct AuthLayer {
    pub verifier: Arc<Verifier>,
    pub need: Need,
}

/// The key a request presents, if any. A header of bytes that are not visible ASCII is
/// still a presented key (an invalid one), not a missing one.
fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>, allow_query: bool) -> Option<String> {
    let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    if let Some(v) = headers.get("x-api-key").map(text) {
        return Some(v.trim().to_owned());
    }
    if let Some(v) = headers.get(AUTHORIZATION).map(text) {
        let v = v.as_str();
        let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey") {
            return Some(rest.trim().to_owned());
        }
    }
    if allow_query {
        let query = query?;
        return form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "api_key").map(|(_, v)| v.into_owned());
    }
    None
}

fn rate_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert("ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(d.reset_secs));
}

/// The response for a refused request. Never echoes the presented key.
fn refusal(failure: AuthFailure) -> Response {
    crate::metrics::global().auth_outcome(code_of(&failure));
    let unauthorized = |code: &'static str, detail: String| {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, code, detail).into_response();
        let h = r.headers_mut();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey realm=\"timedb\", header=\"X-API-Key\""));
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"timedb\""));
        r
    };
    let limited = |d: Decision, detail: &str| {
        let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", detail).into_response();
        rate_headers(r.headers_mut(), &d);
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(d.retry_after_secs));
        r
    };
    match failure {
        AuthFailure::Missing => {
            unauthorized("MISSING_KEY", "API key required. Please provide X-API-Key header.".into())
        }
        AuthFailure::Invalid => unauthorized("INVALID_KEY", "Invalid or inactive API key.".into()),
        AuthFailure::Inactive => {
            unauthorized("INACTIVE_USER", "Invalid or inactive API key: the user is deactivated.".into())
        }
        AuthFailure::Expired(at) => {
            unauthorized("EXPIRED_KEY", format!("API key expired at {}; create a new one.", format_timestamp(at)))
        }
        AuthFailure::Revoked => unauthorized("REVOKED_KEY", "API key has been revoked.".into()),
        AuthFailure::InsufficientScope { needed, have } => ApiError::new(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_SCOPE",
            format!("this API key lacks the '{needed}' scope (it has: {have})"),
        )
        .into_response(),
        AuthFailure::RateLimited(d) => {
            limited(d, "rate limit exceeded for this API key; retry after the time in Retry-After")
        }
        AuthFailure::TooManyFailures(d) => {
            limited(d, "too many failed authentications from this address; retry after the time in Retry-After")
        }
        AuthFailure::Store(e) => {
            tracing::error!(error = %e, "key lookup failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                "the database is unavailable; try again shortly",
            )
            .into_response()
        }
    }
}

/// The address failed authentications are counted against: the peer, or — from a trusted
/// proxy on loopback — the address the proxy appended to `X-Forwarded-For`.
fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trust_forwarded_for: bool) -> Option<IpAddr> {
    let from_proxy = trust_forwarded_for && peer.is_some_and(|p| p.is_loopback());
    if from_proxy
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
        && let Ok(ip) = last.trim().parse::<IpAddr>()
    {
        return Some(ip);
    }
    peer
}

/// Middleware for one group of routes.
pub async fn authenticate(State(layer): State<AuthLayer>, mut req: Request, next: Next) -> Response {
    let verifier = &layer.verifier;
    if !verifier.enabled() {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let addr = client_address(peer, req.headers(), verifier.config.trust_forwarded_for);
    if let Err(f) = verifier.check_client(addr) {
        return refusal(f);
    }
    let Some(key) = presented_key(req.headers(), req.uri().query(), verifier.config.allow_query_key) else {
        return refusal(AuthFailure::Missing);
    };
    let principal = match verifier.verify(&key).await {
        Ok(p) => p,
        Err(f) => {
            if !matches!(f, AuthFailure::Store(_)) {
                verifier.record_failure(addr);
                tracing::info!(outcome = ?code_of(&f), "authentication refused");
            }
            return refusal(f);
        }
    };
    let needed = match layer.need {
        Need::ByMethod if matches!(*req.method(), Method::GET | Method::HEAD) => Scopes::READ,
        Need::ByMethod => Scopes::WRITE,
        Need::Authenticated => Scopes::NONE,
        Need::Admin => Scopes::ADMIN,
    };
    let decision = match verifier.admit(&principal, needed) {
        Ok(d) => d,
        Err(f) => return refusal(f),
    };
    tracing::debug!(key_id = %principal.key_id, tenant = %principal.tenant, "authenticated");
    crate::metrics::global().auth_outcome("OK");
    req.extensions_mut().insert(principal);
    let mut response = next.run(req).await;
    if let Some(d) = decision {
        rate_headers(response.headers_mut(), &d);
    }
    response
}

fn code_of(f: &AuthFailure) -> &'static str {
    match f {
        AuthFailure::Missing => "MISSING_KEY",
        AuthFailure::Invalid => "INVALID_KEY",
        AuthFailure::Inactive => "INACTIVE_USER",
        AuthFailure::Expired(_) => "EXPIRED_KEY",
        AuthFailure::Revoked => "REVOKED_KEY",
        AuthFailure::InsufficientScope { .. } => "INSUFFICIENT_SCOPE",
        AuthFailure::RateLimited(_) | AuthFailure::TooManyFailures(_) => "RATE_LIMITED",
        AuthFailure::Store(_) => "STORE_UNAVAILABLE",
    }
}

/// The principal of an authenticated request, for handlers that need more than the tenant.
pub fn principal_of(parts: &axum::http::request::Parts) -> Option<Principal> {
    parts.extensions.get::<Principal>().cloned()
}

/// The key hasher; auth routes only run with auth on, when it is always resolved.
pub(super) fn hasher(v: &Verifier) -> Result<&crate::auth::KeyHasher, ApiError> {
    v.hasher().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE", "authentication is not ready yet; try again")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_are_trusted_only_from_loopback_when_asked() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7"));
        let local: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let remote: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        assert_eq!(client_address(local, &h, true), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(client_address(local, &h, false), local);
        assert_eq!(client_address(remote, &h, true), remote, "a remote peer cannot pick its address");
        h.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_address(local, &h, true), local);
    }
}
