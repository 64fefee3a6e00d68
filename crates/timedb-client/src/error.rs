//! The client's one error type: what the server refused (with its machine `code`), what
//! never reached it, and what came back in a shape the client did not expect.

use std::time::Duration;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status and (usually) its `{"detail","code"}` body.
    ///
    /// `code` is the server's machine code (`MISSING_KEY`, `NOT_FOUND`, `INVALID_FIELD`,
    /// …); for a body that was not the server's JSON (a proxy's page, say) it is
    /// `HTTP_<status>` and `detail` holds the start of the body.
    #[error("{status} {code}: {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
        /// The server's `Retry-After`, on 429 (and 503 when it sends one).
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connection refused, reset, timed out, bad URL.
    #[error("cannot reach the timedb server: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success status with a body the client could not read.
    #[error("unexpected response from the timedb server: {0}")]
    Decode(String),
}

impl Error {
    /// The HTTP status, for [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's machine code (`"NOT_FOUND"`, …), for [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The JSON error body every timedb error response carries.
#[derive(serde::Deserialize)]
struct ErrorBody {
    detail: String,
    code: String,
}

/// Turn an error response into [`Error::Api`], reading its body.
pub(crate) async fn from_response(resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = match resp.text().await {
        Ok(text) => text,
        Err(e) => return Error::Transport(e),
    };
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Error::Api { status, code: body.code, detail: body.detail, retry_after },
        Err(_) => {
            let mut detail: String = text.trim().chars().take(200).collect();
            if detail.is_empty() {
                detail = "the server gave no details".into();
            }
            Error::Api { status, code: format!("HTTP_{status}"), detail, retry_after }
        }
    }
}
