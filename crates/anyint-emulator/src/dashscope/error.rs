//! DashScope error envelopes: `{"code","message","request_id"}` for a bad
//! key, invalid parameters, refused cancels, synchronous calls and
//! injected `status=N` faults. Builds responses only; deciding *when* to
//! fail lives in the callers (the DashScope handlers and the gate).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::util::json_response;

/// An error answer in DashScope's envelope.
pub(super) fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    json_response(
        status,
        &json!({"code": code, "message": message, "request_id": request_id}),
    )
}

/// 401 for a missing or wrong key.
pub(crate) fn bad_key(request_id: &str) -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "InvalidApiKey",
        "Invalid API-key provided.",
        request_id,
    )
}

/// 400 `InvalidParameter`.
pub(crate) fn invalid(message: &str, request_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidParameter",
        message,
        request_id,
    )
}

/// 400 `UnsupportedOperation` for a cancel that cannot happen.
pub(super) fn cannot_cancel(message: &str, request_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "UnsupportedOperation",
        message,
        request_id,
    )
}

/// The body DashScope sends for `status` (used by `status=N` faults).
pub(crate) fn for_status(status: StatusCode, request_id: &str) -> Response {
    let (code, message) = match status.as_u16() {
        401 => return bad_key(request_id),
        403 => ("AccessDenied", "Access denied."),
        404 => ("ModelNotFound", "Model not exist."),
        429 => (
            "Throttling.RateQuota",
            "Requests rate limit exceeded, please try again later.",
        ),
        503 => (
            "ServiceUnavailable",
            "The service is temporarily unavailable, please try again later.",
        ),
        504 => (
            "RequestTimeOut",
            "Request timed out, please try again later.",
        ),
        n if n >= 500 => (
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        ),
        _ => ("InvalidParameter", "Emulated bad request."),
    };
    error(status, code, message, request_id)
}
