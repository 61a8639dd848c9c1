//! Music error envelopes: `{"code","msg","data":null}` with a business
//! `code`, for a bad key (401), a failed validation (422), an unknown task
//! (404), all on HTTP 200, and for injected `status=N` faults (HTTP N,
//! code N). Builds responses only; deciding *when* to fail lives in the
//! callers (the music handlers and the gate).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::util::json_response;

/// `{"code","msg","data":null}` with an HTTP status.
pub(super) fn envelope(http: StatusCode, code: u16, msg: &str) -> Response {
    json_response(http, &json!({"code": code, "msg": msg, "data": null}))
}

/// Business 401 (HTTP 200) for a missing or wrong key.
pub(crate) fn unauthorized() -> Response {
    envelope(StatusCode::OK, 401, "unauthorized")
}

/// Business 422 (HTTP 200) for a request that fails validation.
pub(crate) fn invalid(msg: &str) -> Response {
    envelope(StatusCode::OK, 422, msg)
}

/// The envelope for an injected `status=N` fault: HTTP N and code N.
pub(crate) fn for_status(status: StatusCode) -> Response {
    let msg = match status.as_u16() {
        400 => "invalid parameters",
        401 => "unauthorized",
        402 => "insufficient credits",
        404 => "not found",
        429 => "rate limited",
        455 => "system maintenance",
        503 => "service unavailable",
        n if n >= 500 => "server error",
        _ => "emulated error",
    };
    envelope(status, status.as_u16(), msg)
}
