//! Inbound API families: each parses its requests, finds the caller's key, and renders
//! responses and errors in its own wire shape. Families never touch the network; they call
//! `gateway` for the work.
//!
//! Adding a family:
//! 1. add a variant to [`Family`] and a module `families/<name>.rs` with `routes()`,
//!    `render_error` and `error_frame`;
//! 2. merge its routes in `server::router`;
//! 3. add its wire codecs to `anyint-wire` and golden tests for them;
//! 4. add SDK tests under `tests/sdk/`.

pub mod anthropic;
pub mod gemini;
pub mod openai;

use axum::body::{Body, Bytes};
use http::HeaderMap;

use crate::error::{Error, ErrorKind};

/// The API shape a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// OpenAI Chat Completions and Models.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
}

impl Family {
    /// Label for logs, metrics and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    /// The header this family's clients put their key in, for 401 messages.
    pub fn auth_header(self) -> &'static str {
        match self {
            Self::OpenAi => "Authorization: Bearer <key>",
            Self::Anthropic => "x-api-key: <key>",
            Self::Gemini => "x-goog-api-key: <key>",
        }
    }
}

/// The key presented in any family's header: `Authorization: Bearer`, `x-api-key` or
/// `x-goog-api-key`. A route accepts any of them when it carries a valid key.
pub fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(auth) = get("authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or(auth)
            .trim();
        return Some(token);
    }
    get("x-api-key")
        .or_else(|| get("x-goog-api-key"))
        .or_else(|| query.and_then(key_from_query))
}

/// The `key=` parameter of a query string (Gemini's `?key=`).
fn key_from_query(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("key="))
}

/// Sets `Retry-After` (and `retry-after-ms`) when the error carries a delay, and
/// `x-should-retry: false` on errors retrying cannot fix, for every family's SDK.
pub fn retry_headers(headers: &mut http::HeaderMap, e: &Error) {
    if let Some(after) = e.retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
            headers.insert(http::header::RETRY_AFTER, v);
        }
        if let Ok(v) = http::HeaderValue::from_str(&after.as_millis().to_string()) {
            headers.insert("retry-after-ms", v);
        }
    }
    if !e.kind.is_retryable() {
        headers.insert("x-should-retry", http::HeaderValue::from_static("false"));
    }
}

/// Reads a request body up to `limit` bytes; larger bodies get 413.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Error> {
    let too_large = || {
        Error::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the request body exceeds the gateway's limit of {limit} bytes; send a smaller request"
            ),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let limited = std::error::Error::source(&e)
            .is_some_and(<dyn std::error::Error>::is::<http_body_util::LengthLimitError>)
            || e.to_string().contains("length limit");
        if limited {
            too_large()
        } else {
            Error::invalid(
                None,
                "the request body could not be read; resend the request",
            )
            .with_cause(e)
        }
    })
}
