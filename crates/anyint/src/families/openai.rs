//! The OpenAI-compatible family at `/openai/v1/…`: Models and Chat Completions.
//!
//! Errors use the envelope `{"error":{"message","type","param","code"}}` with all four keys, so
//! the official SDK raises the class matching the status and reads `code`/`param`.

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::Family;
use crate::error::{Error, ErrorKind};
use crate::gateway;
use crate::server::SharedState;
use crate::telemetry::{RequestId, RequestLog};

const FAMILY: Family = Family::OpenAi;

/// The family's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/openai/v1/models", get(list_models))
        .route("/openai/v1/models/{*id}", get(get_model))
        .route("/openai/v1/chat/completions", post(chat_completions))
}

/// An error rendered in the OpenAI envelope.
pub struct OpenAiError(pub Error);

impl From<Error> for OpenAiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        render_error(self.0)
    }
}

/// The envelope `type` for a kind.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::PayloadTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Unauthenticated => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::RateLimited | ErrorKind::UpstreamRateLimited => "rate_limit_error",
        ErrorKind::QuotaExceeded => "insufficient_quota",
        ErrorKind::UpstreamUnavailable
        | ErrorKind::UpstreamTimeout
        | ErrorKind::UpstreamProtocol
        | ErrorKind::Overloaded => "service_unavailable_error",
        ErrorKind::Internal => "server_error",
    }
}

fn envelope(e: &Error) -> serde_json::Value {
    json!({"error": {
        "message": e.message,
        "type": error_type(e.kind),
        "param": e.param,
        "code": e.code,
    }})
}

/// Renders `e` as an OpenAI error response, with `Retry-After` when known and
/// `x-should-retry: false` on errors that retrying cannot fix. The error itself rides along in
/// the response extensions for the access log.
pub fn render_error(e: Error) -> Response {
    let body = envelope(&e).to_string();
    let mut resp = (
        e.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    super::retry_headers(resp.headers_mut(), &e);
    resp.extensions_mut().insert(e);
    resp
}

/// The in-stream error event: `data: {"error":…}` and no `[DONE]`, which the SDK raises as
/// `APIError`.
pub fn error_frame(e: &Error) -> Bytes {
    Bytes::from(format!("data: {}\n\n", envelope(e)))
}

fn model_json(m: &crate::config::ModelConfig) -> serde_json::Value {
    json!({"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by, "display_name": m.display_name})
}

fn with_log(mut resp: Response, log: RequestLog) -> Response {
    resp.extensions_mut().insert(log);
    resp
}

async fn list_models(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = state
        .keys
        .authenticate(super::presented_key(&headers, None), FAMILY.auth_header())
        .await?;
    let data: Vec<_> = crate::policy::entitlement::visible_models(&state.config, &key)
        .map(model_json)
        .collect();
    let log = RequestLog {
        model: None,
        key_id: Some(key.id.clone()),
    };
    Ok(with_log(
        json_response(StatusCode::OK, &json!({"object": "list", "data": data})),
        log,
    ))
}

async fn get_model(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = state
        .keys
        .authenticate(super::presented_key(&headers, None), FAMILY.auth_header())
        .await?;
    let model = crate::policy::entitlement::resolve(&state.config, &key, &id, FAMILY)?;
    let log = RequestLog {
        model: Some(model.id.clone()),
        key_id: Some(key.id.clone()),
    };
    Ok(with_log(
        json_response(StatusCode::OK, &model_json(model)),
        log,
    ))
}

async fn chat_completions(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let started = tokio::time::Instant::now();
    let key = state
        .keys
        .authenticate(super::presented_key(&headers, None), FAMILY.auth_header())
        .await?;
    let body = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let call = gateway::ChatCall {
        family: FAMILY,
        key,
        request_id,
        started,
        error_frame,
    };
    let inbound = anyint_wire::openai::ChatRequestHead::decode(&body)
        .map_err(Error::from)
        .map(|h| gateway::Inbound {
            body: &body,
            model: h.model.clone(),
            stream: h.stream,
            head: gateway::Head::OpenAi(h),
        });
    let (result, log) = gateway::chat(&state, call, inbound).await;
    match result {
        Ok(resp) => Ok(with_log(resp, log)),
        Err(e) => Ok(with_log(render_error(e), log)),
    }
}

/// A JSON response from a value.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
