//! Anthropic error envelopes: `{"type":"error","error":{"type","message"},
//! "request_id"}` and the canned bodies for injected status faults. Builds
//! responses only; deciding *when* to fail lives in the callers.

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::util::json_response;

/// One Anthropic-style error, ready to become a response.
#[derive(Clone, Debug)]
pub(crate) struct AnthropicError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl AnthropicError {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
        }
    }

    /// `field: Field required`, the wording of the API's schema errors.
    pub(crate) fn missing(path: &str) -> Self {
        Self::invalid(format!("{path}: Field required"))
    }

    /// `path: Input should be <expected>`.
    pub(crate) fn expected(path: &str, expected: &str) -> Self {
        Self::invalid(format!("{path}: Input should be {expected}"))
    }

    /// 401 for a request without an API key.
    pub(crate) fn no_key() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: "x-api-key header is required".to_owned(),
        }
    }

    /// 401 for a wrong API key.
    pub(crate) fn bad_key() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: "invalid x-api-key".to_owned(),
        }
    }

    /// The body the API sends for `status` (used by `status=N` faults).
    pub(crate) fn for_status(status: StatusCode, model: &str) -> Self {
        let (kind, message) = match status.as_u16() {
            400 => ("invalid_request_error", "Emulated bad request.".to_owned()),
            401 => return Self::bad_key(),
            402 => (
                "billing_error",
                "Your credit balance is too low to access the Anthropic API.".to_owned(),
            ),
            403 => (
                "permission_error",
                "Your API key does not have permission to use the specified resource.".to_owned(),
            ),
            404 => ("not_found_error", format!("model: {model}")),
            413 => (
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.".to_owned(),
            ),
            429 => (
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit".to_owned(),
            ),
            500 => ("api_error", "Internal server error".to_owned()),
            504 => ("timeout_error", "Request timed out".to_owned()),
            529 => ("overloaded_error", "Overloaded".to_owned()),
            n if n >= 500 => ("api_error", format!("Emulated server error (HTTP {n}).")),
            n => (
                "invalid_request_error",
                format!("Emulated client error (HTTP {n})."),
            ),
        };
        Self {
            status,
            kind,
            message,
        }
    }

    pub(crate) fn body(&self, request_id: &str) -> Value {
        json!({
            "type": "error",
            "error": {"type": self.kind, "message": self.message},
            "request_id": request_id,
        })
    }

    pub(crate) fn into_response(self, request_id: &str) -> Response {
        json_response(self.status, &self.body(request_id))
    }
}

/// The `event: error` an SSE stream carries when it fails after the 200
/// (used by `error_after`).
pub(crate) fn stream_error_event(request_id: &str) -> Bytes {
    let err = AnthropicError::for_status(StatusCode::from_u16(529).unwrap_or_default(), "");
    let data = err.body(request_id);
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_status() {
        let t = |s: u16| AnthropicError::for_status(StatusCode::from_u16(s).unwrap(), "m").kind;
        assert_eq!(t(400), "invalid_request_error");
        assert_eq!(t(401), "authentication_error");
        assert_eq!(t(403), "permission_error");
        assert_eq!(t(404), "not_found_error");
        assert_eq!(t(413), "request_too_large");
        assert_eq!(t(429), "rate_limit_error");
        assert_eq!(t(500), "api_error");
        assert_eq!(t(529), "overloaded_error");
        assert_eq!(t(503), "api_error");
        let body = AnthropicError::no_key().body("req_1");
        assert_eq!(body["type"], "error");
        assert_eq!(body["request_id"], "req_1");
    }
}
