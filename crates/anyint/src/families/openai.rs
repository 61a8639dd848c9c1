//! The OpenAI-compatible family at `/openai/v1/…`: Models, Chat Completions and Embeddings.
//!
//! Errors use the envelope `{"error":{"message","type","param","code"}}` with all four keys, so
//! the official SDK raises the class matching the status and reads `code`/`param`. Handlers
//! return [`OpenAiError`], which renders in that envelope.

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{Envelope, Family, FamilyError, json_response, with_log};
use crate::error::{Error, ErrorKind};
use crate::gateway;
use crate::state::SharedState;
use crate::telemetry::RequestId;

const FAMILY: Family = Family::OpenAi;

/// The family's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/openai/v1/models", get(list_models))
        .route("/openai/v1/models/{*id}", get(get_model))
        .route("/openai/v1/chat/completions", post(chat_completions))
        .route("/openai/v1/embeddings", post(embeddings))
}

/// An error rendered in the OpenAI envelope.
pub type OpenAiError = FamilyError<OpenAi>;

/// The envelope `type` for a kind.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::NotFound
        | ErrorKind::PayloadTooLarge
        | ErrorKind::RequestTimeout
        | ErrorKind::Conflict => "invalid_request_error",
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

/// Marker for the OpenAI envelope.
pub struct OpenAi;

impl Envelope for OpenAi {
    fn envelope(e: &Error) -> serde_json::Value {
        json!({"error": {
            "message": e.message,
            "type": error_type(e.kind),
            "param": e.param,
            "code": e.code,
        }})
    }
}

/// Renders `e` as an OpenAI error response, with `Retry-After` when known and
/// `x-should-retry: false` on errors that retrying cannot fix. The error itself rides along in
/// the response extensions for the access log.
pub fn render_error(e: Error) -> Response {
    OpenAi::render(e)
}

/// The in-stream error event: `data: {"error":…}` and no `[DONE]`, which the SDK raises as
/// `APIError`.
pub fn error_frame(e: &Error) -> Bytes {
    Bytes::from(format!("data: {}\n\n", OpenAi::envelope(e)))
}

/// A model object. `api` (an anyint extension the SDK keeps as an extra field) says where the
/// model is used: `chat`, `embedding`, `dashscope` (video/image tasks) or `music`.
fn model_json(m: &crate::config::ModelConfig) -> serde_json::Value {
    json!({"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by, "display_name": m.display_name, "api": m.api.as_str()})
}

async fn list_models(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = super::authorize(&state, super::presented_key(&headers, None), FAMILY).await?;
    let data: Vec<_> = crate::policy::entitlement::visible_models(state.catalog(), &key)
        .into_iter()
        .map(model_json)
        .collect();
    Ok(with_log(
        json_response(StatusCode::OK, &json!({"object": "list", "data": data})),
        &key.id,
        None,
    ))
}

async fn get_model(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = super::authorize(&state, super::presented_key(&headers, None), FAMILY).await?;
    let model = crate::policy::entitlement::resolve_any(state.catalog(), &key, &id, FAMILY)?;
    Ok(with_log(
        json_response(StatusCode::OK, &model_json(model)),
        &key.id,
        Some(&model.id),
    ))
}

/// The start of a generation request (chat or embeddings): the key checked and the body read,
/// as a call of this family.
async fn begin(
    state: &SharedState,
    request_id: String,
    headers: &HeaderMap,
    body: Body,
) -> Result<(gateway::ChatCall, Bytes), Error> {
    let started = tokio::time::Instant::now();
    let key = super::authorize(state, super::presented_key(headers, None), FAMILY).await?;
    let body = super::read_body(headers, body, state.config.server.max_body_bytes).await?;
    let call = gateway::ChatCall {
        family: FAMILY,
        key,
        request_id,
        started,
        error_frame,
        hold: std::sync::Mutex::default(),
    };
    Ok((call, body))
}

pub(super) async fn chat_completions(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let (call, body) = begin(&state, request_id, &headers, body).await?;
    let inbound = anyint_wire::openai::ChatRequestHead::decode(&body)
        .map_err(Error::from)
        .map(|h| gateway::Inbound {
            body: &body,
            model: h.model.clone(),
            stream: h.stream,
            head: gateway::Head::OpenAi(h),
        });
    let (result, log) = gateway::chat(&state, call, inbound).await;
    Ok(super::finish(
        result.unwrap_or_else(render_error),
        log,
        FAMILY,
    ))
}

/// `POST /openai/v1/embeddings`: `input` as a string, strings, or token arrays; answered with
/// floats or base64 (`encoding_format`), `usage` always present.
pub(super) async fn embeddings(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let (call, body) = begin(&state, request_id, &headers, body).await?;
    let inbound = anyint_wire::embeddings::openai::decode_request(&body)
        .map_err(Error::from)
        .map(|request| gateway::embed::EmbedInbound {
            body: &body,
            client: gateway::embed::EmbedClient::OpenAi,
            request,
        });
    let (result, log) = gateway::embed::embed(&state, call, inbound).await;
    Ok(super::finish(
        result.unwrap_or_else(render_error),
        log,
        FAMILY,
    ))
}
