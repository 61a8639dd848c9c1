//! Admission of one upstream request: fault-spec selection, tag counting,
//! API key check, injected latency and injected error statuses, each in the
//! wire family's own dialect ([`Family`]). Handlers call [`admit`] or
//! [`admit_as`] first and only build a real answer when it lets them through.
//! The families' error bodies come from their leaf `error` modules, never
//! from the handlers, so no handler is imported here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::Options;
use crate::anthropic::error::AnthropicError;
use crate::error::ApiError;
use crate::fault::{self, Fault};
use crate::gemini::error::GoogleError;
use crate::state::{CHAT_TOTAL, State};

/// Header carrying an Anthropic API key.
const X_API_KEY: &str = "x-api-key";
/// Header carrying a Gemini API key.
const X_GOOG_API_KEY: &str = "x-goog-api-key";

/// The wire family a request speaks: decides where the key is read from,
/// how gate errors look and which extra counter generation requests bump.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Family<'a> {
    OpenAi,
    /// The OpenAI Responses API: OpenAI auth and errors, its own total.
    Responses,
    /// Anthropic errors carry the response's request id in the body.
    Anthropic {
        request_id: &'a str,
    },
    Gemini(GeminiCall<'a>),
    /// DashScope errors carry a request id in the body.
    DashScope {
        request_id: &'a str,
    },
    /// Music (reseller) errors are business codes in a `{code,msg,data}`
    /// body; auth failures answer HTTP 200.
    Music,
}

/// What the gate needs to know about a Gemini call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GeminiCall<'a> {
    /// The `?key=` query parameter, if any.
    pub(crate) query_key: Option<&'a str>,
    /// Errors are wrapped in a one-element array (JSON-array streams).
    pub(crate) array: bool,
    /// `v1beta` or `v1`, for error wording.
    pub(crate) version: &'a str,
    /// `generateContent`, `countTokens`, ..., for error wording.
    pub(crate) method: &'a str,
    /// Path and query, recorded for `/_emulator/last/{tag}`.
    pub(crate) path: &'a str,
}

impl Family<'_> {
    /// Counter bumped, besides `_chat_total`, by generation requests.
    fn total_key(&self) -> Option<&'static str> {
        match self {
            Self::OpenAi | Self::DashScope { .. } | Self::Music => None,
            Self::Responses => Some(crate::state::RESPONSES_TOTAL),
            Self::Anthropic { .. } => Some(crate::state::ANTHROPIC_TOTAL),
            Self::Gemini(_) => Some(crate::state::GEMINI_TOTAL),
        }
    }

    /// The rejection of a request whose key is missing or wrong, if any.
    fn auth_error(&self, opts: &Options, headers: &HeaderMap) -> Option<Response> {
        match self {
            Self::OpenAi | Self::Responses => check_auth(opts, headers)
                .err()
                .map(IntoResponse::into_response),
            Self::Anthropic { request_id } => {
                let key = header_key(headers, X_API_KEY).or_else(|| bearer(headers));
                match (key, &opts.api_key) {
                    (None, _) => Some(AnthropicError::no_key().into_response(request_id)),
                    (Some(k), Some(expected)) if k != expected => {
                        Some(AnthropicError::bad_key().into_response(request_id))
                    }
                    _ => None,
                }
            }
            Self::Gemini(call) => {
                let api_key = header_key(headers, X_GOOG_API_KEY)
                    .or_else(|| call.query_key.filter(|k| !k.is_empty()));
                let (key, is_token) = match (api_key, bearer(headers)) {
                    (Some(k), _) => (k, false),
                    (None, Some(k)) => (k, true),
                    (None, None) => return Some(GoogleError::no_key().into_response(call.array)),
                };
                match &opts.api_key {
                    Some(expected) if expected != key => {
                        let err = if is_token {
                            GoogleError::bad_token()
                        } else {
                            GoogleError::bad_key()
                        };
                        Some(err.into_response(call.array))
                    }
                    _ => None,
                }
            }
            Self::DashScope { request_id } => check_auth(opts, headers)
                .err()
                .map(|_| crate::dashscope::error::bad_key(request_id)),
            Self::Music => check_auth(opts, headers)
                .err()
                .map(|_| crate::music::error::unauthorized()),
        }
    }

    fn bad_fault(&self, msg: String) -> Response {
        match self {
            Self::OpenAi | Self::Responses => ApiError::invalid_request(msg)
                .with_code("invalid_emulator_fault")
                .into_response(),
            Self::Anthropic { request_id } => {
                AnthropicError::invalid(msg).into_response(request_id)
            }
            Self::Gemini(call) => GoogleError::invalid(msg).into_response(call.array),
            Self::DashScope { request_id } => crate::dashscope::error::invalid(&msg, request_id),
            Self::Music => crate::music::error::invalid(&msg),
        }
    }

    fn status_error(&self, status: StatusCode, fault: &Fault, model: &str) -> Response {
        match self {
            Self::OpenAi | Self::Responses => {
                ApiError::for_status(status, fault.quota, model).into_response()
            }
            Self::Anthropic { request_id } => {
                AnthropicError::for_status(status, model).into_response(request_id)
            }
            Self::Gemini(call) => GoogleError::for_status(
                status,
                model,
                call.version,
                call.method,
                fault.retry_after.as_deref(),
            )
            .into_response(call.array),
            Self::DashScope { request_id } => {
                crate::dashscope::error::for_status(status, request_id)
            }
            Self::Music => crate::music::error::for_status(status),
        }
    }
}

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

/// Runs the gate for an OpenAI request. `Ok` carries the (possibly empty)
/// fault the handler must still apply (headers, stream delays, cuts); `Err`
/// is the finished answer.
pub(crate) async fn admit(state: &State, req: &Incoming<'_>) -> Result<Fault, Response> {
    admit_as(state, req, Family::OpenAi).await
}

/// [`admit`] for any wire family.
pub(crate) async fn admit_as(
    state: &State,
    req: &Incoming<'_>,
    family: Family<'_>,
) -> Result<Fault, Response> {
    let header = req.headers.get(fault::HEADER).and_then(|v| v.to_str().ok());
    let parsed = fault::select(header, req.model_suffix, req.text)
        .map(fault::parse)
        .transpose();

    let mut count = None;
    if let Ok(Some(Fault { tag: Some(tag), .. })) = &parsed {
        count = Some(state.bump(tag));
        state.record_last(tag, record(req, family));
    }
    if req.is_chat {
        state.bump(CHAT_TOTAL);
        if let Some(key) = family.total_key() {
            state.bump(key);
        }
    }

    if let Some(resp) = family.auth_error(&state.opts, req.headers) {
        return Err(resp);
    }
    let fault = parsed
        .map_err(|msg| family.bad_fault(msg))?
        .unwrap_or_default();
    if fault.skips(count) {
        return Ok(fault.skipped());
    }

    if let Some(ms) = fault.latency_ms.filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = fault.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let resp = family.status_error(status, &fault, req.model);
        return Err(fault.decorate(resp));
    }
    Ok(fault)
}

/// The non-empty key of an `Authorization: Bearer <key>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty())
}

/// The trimmed, non-empty value of a key header.
fn header_key<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

fn check_auth(opts: &Options, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = bearer(headers).ok_or_else(ApiError::no_key)?;
    match &opts.api_key {
        Some(expected) if expected != key => Err(ApiError::bad_key(key)),
        _ => Ok(()),
    }
}

/// `{"headers": {name: value}, "body": json}` for `/_emulator/last/{tag}`,
/// plus `"path"` (with the query) for Gemini calls, whose model and
/// options live in the URL. A body that is not JSON is stored as a string;
/// an empty one as null.
fn record(req: &Incoming<'_>, family: Family<'_>) -> Value {
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
    let mut out = serde_json::json!({"headers": headers, "body": body});
    if let Family::Gemini(call) = family {
        out["path"] = Value::String(call.path.to_owned());
    }
    out
}

/// Middleware: stamps every response with an `x-request-id`: the
/// `request-id` an Anthropic handler already set, else a fresh one.
pub(crate) async fn add_request_id(
    AxState(state): AxState<Arc<State>>,
    mut resp: Response,
) -> Response {
    let id = match resp.headers().get(REQUEST_ID) {
        Some(v) => v.clone(),
        None => match HeaderValue::from_str(&state.next_request_id()) {
            Ok(v) => v,
            Err(_) => return resp,
        },
    };
    resp.headers_mut()
        .insert(HeaderName::from_static("x-request-id"), id);
    resp
}

/// Anthropic's response header naming the request (echoed in error bodies).
pub(crate) const REQUEST_ID: &str = "request-id";

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

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn status(resp: Option<Response>) -> Option<u16> {
        resp.map(|r| r.status().as_u16())
    }

    #[test]
    fn anthropic_auth_reads_x_api_key_or_bearer() {
        let locked = Options {
            api_key: Some("sk-right".to_owned()),
        };
        let family = Family::Anthropic {
            request_id: "req_1",
        };
        assert_eq!(
            status(family.auth_error(&locked, &HeaderMap::new())),
            Some(401)
        );
        assert_eq!(
            status(family.auth_error(&locked, &with(X_API_KEY, "sk-right"))),
            None
        );
        assert_eq!(
            status(family.auth_error(&locked, &with(X_API_KEY, "nope"))),
            Some(401)
        );
        assert_eq!(
            status(family.auth_error(&locked, &headers(Some("Bearer sk-right")))),
            None
        );
    }

    #[test]
    fn gemini_auth_statuses() {
        let locked = Options {
            api_key: Some("k".to_owned()),
        };
        let call = |query_key| {
            Family::Gemini(GeminiCall {
                query_key,
                array: false,
                version: "v1beta",
                method: "generateContent",
                path: "/",
            })
        };
        let none = HeaderMap::new();
        assert_eq!(status(call(None).auth_error(&locked, &none)), Some(403));
        assert_eq!(status(call(Some("k")).auth_error(&locked, &none)), None);
        assert_eq!(
            status(call(Some("x")).auth_error(&locked, &none)),
            Some(400)
        );
        let header = with(X_GOOG_API_KEY, "k");
        assert_eq!(status(call(None).auth_error(&locked, &header)), None);
        let token = headers(Some("Bearer x"));
        assert_eq!(status(call(None).auth_error(&locked, &token)), Some(401));
    }
}
