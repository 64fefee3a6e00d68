//! Request extractors that speak our error format: a JSON body that distinguishes bad
//! syntax (400) from well-formed but invalid fields (422, naming the field path), and a
//! query string parsed by hand so repeated keys (`series_key=a&series_key=b`) work and
//! unknown parameters are named rather than ignored.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

/// 413 for a body over the server's limit.
pub fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
        "the request body is larger than this server accepts (see --max-body-mb)",
    )
}

/// Read the body, mapping an over-limit body to 413 and a stalled one to 408.
pub async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large()
        } else if timed_out(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "BODY_TIMEOUT",
                "the request body stopped arriving before it was complete; send it without pausing",
            )
        } else {
            ApiError::bad_request("UNREADABLE_BODY", format!("the request body could not be read: {rejection}"))
        }
    })
}

/// True when the body read failed because `HttpConfig::body_read_timeout` passed
/// between two pieces of it.
fn timed_out(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The request's media type without parameters, lower-cased; `None` when absent.
pub fn media_type(parts_headers: &axum::http::HeaderMap) -> Option<String> {
    parts_headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Parse JSON bytes into `T`: syntax errors → 400, type/field errors → 422 with the path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        // Anything but whitespace after the value is a syntax error, not ignored.
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(ApiError::bad_request("MALFORMED_JSON", format!("the request body is not valid JSON: {e}"))),
        },
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { "body".to_owned() } else { path };
                    Err(ApiError::invalid(&field, strip_position(&inner.to_string())))
                }
                _ => {
                    Err(ApiError::bad_request("MALFORMED_JSON", format!("the request body is not valid JSON: {inner}")))
                }
            }
        }
    }
}

/// serde's messages end with " at line 1 column 40"; the field path already locates it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        // A missing content type is read as JSON (curl -d without -H); any other type is
        // refused rather than guessed at.
        if let Some(media) = media_type(req.headers())
            && !is_json(&media)
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("content type '{media}' is not accepted here; send application/json"),
            ));
        }
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("MALFORMED_JSON", "the request body is empty; send a JSON object"));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// One path parameter as text. axum's own `Path` answers a segment that is not UTF-8
/// after percent-decoding with a plain-text 400; this answers 422 in our format.
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(text)) => Ok(PathText(text)),
            Err(rejection) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD", rejection.body_text()))
            }
        }
    }
}

/// The query string as (name, value) pairs, in order, repeated names kept.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Fail with 422 on any parameter not in `known`.
    pub fn check_known(&self, known: &[&str]) -> Result<(), ApiError> {
        for (name, _) in &self.0 {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    name,
                    format!("unknown query parameter; expected one of: {}", known.join(", ")),
                )
                .with_code("UNKNOWN_PARAMETER"));
            }
        }
        Ok(())
    }

    /// The single value of `name`; given twice is an error.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = self.0.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(ApiError::invalid(name, "is given more than once"));
        }
        Ok(first)
    }

    /// Every value of a repeatable `name` (`series_key=a&series_key=b`). Values are not
    /// split on commas: a series key may contain one.
    pub fn many(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl ApiError {
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}
