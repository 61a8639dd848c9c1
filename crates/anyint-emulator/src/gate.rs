//! Admission of one `/v1` request: fault-spec selection, tag counting, API
//! key check, injected latency and injected error statuses. Handlers call
//! [`admit`] first and only build a real answer when it lets them through.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::Options;
use crate::error::ApiError;
use crate::fault::{self, Fault};
use crate::state::{CHAT_TOTAL, State};

/// What a handler tells the gate about its request.
pub(crate) struct Incoming<'a> {
    pub(crate) headers: &'a HeaderMap,
    /// Raw body bytes (empty for GETs).
    pub(crate) body: &'a [u8],
    /// Parsed body, when it was JSON.
    pub(crate) json: Option<&'a Value>,
    /// Fault spec after a `+` in the model name.
    pub(crate) model_suffix: Option<&'a str>,
    /// Text of the last user message (chat only).
    pub(crate) text: Option<&'a str>,
    /// Model name for error messages.
    pub(crate) model: &'a str,
    pub(crate) is_chat: bool,
}

/// Runs the gate. `Ok` carries the (possibly empty) fault the handler must
/// still apply (headers, stream delays, cuts); `Err` is the finished answer.
pub(crate) async fn admit(state: &State, req: &Incoming<'_>) -> Result<Fault, Response> {
    let header = req.headers.get(fault::HEADER).and_then(|v| v.to_str().ok());
    let parsed = fault::select(header, req.model_suffix, req.text)
        .map(fault::parse)
        .transpose();

    let mut count = None;
    if let Ok(Some(Fault { tag: Some(tag), .. })) = &parsed {
        count = Some(state.bump(tag));
        state.record_last(tag, record(req));
    }
    if req.is_chat {
        state.bump(CHAT_TOTAL);
    }

    check_auth(&state.opts, req.headers).map_err(IntoResponse::into_response)?;
    let fault = parsed
        .map_err(|msg| {
            ApiError::invalid_request(msg)
                .with_code("invalid_emulator_fault")
                .into_response()
        })?
        .unwrap_or_default();
    if fault.exhausted(count) {
        return Ok(Fault::default());
    }

    if let Some(ms) = fault.latency_ms.filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = fault.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let resp = ApiError::for_status(status, fault.quota, req.model).into_response();
        return Err(fault.decorate(resp));
    }
    Ok(fault)
}

fn check_auth(opts: &Options, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty())
        .ok_or_else(ApiError::no_key)?;
    match &opts.api_key {
        Some(expected) if expected != key => Err(ApiError::bad_key(key)),
        _ => Ok(()),
    }
}

/// `{"headers": {name: value}, "body": json}` for `/_emulator/last/{tag}`.
/// A body that is not JSON is stored as a string; an empty one as null.
fn record(req: &Incoming<'_>) -> Value {
    let mut headers = Map::new();
    for name in req.headers.keys() {
        let joined = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let body = match req.json {
        Some(v) => v.clone(),
        None if req.body.is_empty() => Value::Null,
        None => Value::String(String::from_utf8_lossy(req.body).into_owned()),
    };
    serde_json::json!({"headers": headers, "body": body})
}

/// Middleware: stamps every response with a fresh `x-request-id`.
pub(crate) async fn add_request_id(
    AxState(state): AxState<Arc<State>>,
    mut resp: Response,
) -> Response {
    if let Ok(v) = HeaderValue::from_str(&state.next_request_id()) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn auth_rules() {
        let open = Options::default();
        let locked = Options {
            api_key: Some("sk-right".to_owned()),
        };
        assert!(check_auth(&open, &headers(None)).is_err());
        assert!(check_auth(&open, &headers(Some("Bearer "))).is_err());
        assert!(check_auth(&open, &headers(Some("Bearer anything"))).is_ok());
        assert!(check_auth(&locked, &headers(Some("Bearer sk-right"))).is_ok());
        let wrong = check_auth(&locked, &headers(Some("Bearer sk-wrong"))).unwrap_err();
        assert_eq!(wrong.code, Some("invalid_api_key"));
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
}
