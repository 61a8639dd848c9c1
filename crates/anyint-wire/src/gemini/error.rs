//! The Google RPC error envelope `{"error":{"code","message","status","details"}}`: writing it
//! for Gemini clients and reading it from Gemini upstreams.

use serde_json::{Value, json};

/// The `google.rpc.Code` name Google pairs with an HTTP status.
pub fn status_for(code: u16) -> &'static str {
    match code {
        // Google answers an oversized request with INVALID_ARGUMENT as well.
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        // 402 is Google's "prepaid credit used up", reported as a quota error.
        402 | 429 => "RESOURCE_EXHAUSTED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        416 => "OUT_OF_RANGE",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        400..=499 => "FAILED_PRECONDITION",
        500..=599 => "INTERNAL",
        _ => "UNKNOWN",
    }
}

/// The error body a Gemini client expects: `{"error":{"code","message","status"}}`.
pub fn error_json(code: u16, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status_for(code)}})
}

/// What the gateway reads from an upstream Google error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// The `google.rpc.Code` name, e.g. `RESOURCE_EXHAUSTED`.
    pub status: Option<String>,
}

/// Decodes an upstream error body, also in the one-element array form the non-SSE stream path
/// uses (`[{"error":{…}}]`). `None` when it is not the Google envelope.
pub fn decode_error(body: &[u8]) -> Option<ErrorBody> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let value = match value {
        Value::Array(mut items) if items.len() == 1 => items.pop()?,
        other => other,
    };
    let error = value.get("error")?.as_object()?;
    Some(ErrorBody {
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        status: error
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_for_codes() {
        let cases = [
            (400, "INVALID_ARGUMENT"),
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (413, "INVALID_ARGUMENT"),
            (429, "RESOURCE_EXHAUSTED"),
            (500, "INTERNAL"),
            (503, "UNAVAILABLE"),
            (504, "DEADLINE_EXCEEDED"),
            (418, "FAILED_PRECONDITION"),
            (599, "INTERNAL"),
            (200, "UNKNOWN"),
        ];
        for (code, status) in cases {
            assert_eq!(status_for(code), status, "{code}");
        }
        assert_eq!(
            error_json(429, "slow down"),
            json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
        );
    }

    #[test]
    fn decodes_envelope_array_form_and_rejects_others() {
        let body = br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[]}}"#;
        let e = decode_error(body).unwrap();
        assert_eq!(e.message, "API key not valid.");
        assert_eq!(e.status.as_deref(), Some("INVALID_ARGUMENT"));
        let e = decode_error(br#"[{"error":{"code":429,"message":"quota"}}]"#).unwrap();
        assert_eq!((e.message.as_str(), e.status), ("quota", None));
        assert!(decode_error(b"<html>").is_none());
        assert!(decode_error(br#"{"error":"plain"}"#).is_none());
        assert!(decode_error(br#"[{"error":{}},{"error":{}}]"#).is_none());
    }
}
