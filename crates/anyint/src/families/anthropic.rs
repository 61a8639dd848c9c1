//! The Anthropic Messages family at `/anthropic/v1/…`: messages (streaming and not),
//! count_tokens, and models.
//!
//! Auth is `x-api-key` or `Authorization: Bearer` (SDK 2.x). `anthropic-version` is required
//! and must be one of [`anyint_wire::anthropic::VERSIONS`]. Errors use the envelope
//! `{"type":"error","error":{"type","message"}}` (handlers return [`AnthropicError`]); after a
//! stream has started they go out as `event: error`.

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{Envelope, Family, FamilyError, json_bytes, json_response, with_log};
use crate::error::{Error, ErrorKind};
use crate::gateway::{self, Head, Inbound};
use crate::providers::ForwardHeaders;
use crate::state::SharedState;
use crate::telemetry::RequestId;

const FAMILY: Family = Family::Anthropic;
const VERSION_HEADER: &str = "anthropic-version";

/// The family's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/anthropic/v1/messages", post(messages))
        .route("/anthropic/v1/messages/count_tokens", post(count_tokens))
        .route("/anthropic/v1/models", get(list_models))
        .route("/anthropic/v1/models/{*id}", get(get_model))
        // Claude Code probes the base URL at start-up; answer like the API host does.
        .route("/anthropic/api/hello", get(hello).head(hello))
}

/// The start-up probe: 200, no key needed (it carries none).
async fn hello() -> Response {
    json_response(StatusCode::OK, &json!({"message": "hello"}))
}

/// An error rendered in the Anthropic envelope.
pub type AnthropicError = FamilyError<Anthropic>;

/// Anthropic's `error.type` for a kind.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::Conflict => "invalid_request_error",
        ErrorKind::Unauthenticated => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited | ErrorKind::UpstreamRateLimited => "rate_limit_error",
        ErrorKind::QuotaExceeded => "billing_error",
        ErrorKind::UpstreamTimeout | ErrorKind::RequestTimeout => "timeout_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::UpstreamUnavailable | ErrorKind::UpstreamProtocol | ErrorKind::Internal => {
            "api_error"
        }
    }
}

/// Marker for the Anthropic envelope.
pub struct Anthropic;

impl Envelope for Anthropic {
    fn envelope(e: &Error) -> serde_json::Value {
        json!({"type": "error", "error": {"type": error_type(e.kind), "message": e.message}})
    }
}

/// Renders `e` in the Anthropic envelope, with `retry-after` when known and
/// `x-should-retry: false` on final errors.
pub fn render_error(e: Error) -> Response {
    Anthropic::render(e)
}

/// The in-stream error event.
pub fn error_frame(e: &Error) -> Bytes {
    Bytes::from(format!(
        "event: error\ndata: {}\n\n",
        Anthropic::envelope(e)
    ))
}

fn model_json(m: &crate::config::ModelConfig) -> serde_json::Value {
    json!({"type": "model", "id": m.id, "display_name": m.display_name, "created_at": crate::clock::rfc3339(m.created)})
}

/// Checks `anthropic-version`: required, one value, a known version.
fn version(headers: &HeaderMap) -> Result<String, Error> {
    let Some(v) = headers.get(VERSION_HEADER) else {
        return Err(Error::invalid(
            None,
            "anthropic-version: header is required; send `anthropic-version: 2023-06-01`",
        ));
    };
    let v = v.to_str().unwrap_or("").trim();
    if anyint_wire::anthropic::VERSIONS.contains(&v) {
        Ok(v.to_owned())
    } else {
        Err(Error::invalid(
            None,
            format!(
                "anthropic-version: \"{v}\" is not a valid version; use one of {}",
                anyint_wire::anthropic::VERSIONS.join(", ")
            ),
        ))
    }
}

async fn authenticate(
    state: &SharedState,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<crate::store::ApiKey>, Error> {
    super::authorize(state, super::presented_key(headers, None), FAMILY).await
}

async fn list_models(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, AnthropicError> {
    let key = authenticate(&state, &headers).await?;
    let data: Vec<_> = crate::policy::entitlement::visible_models_serving(
        state.catalog(),
        &key,
        &[crate::config::ModelApi::Chat],
    )
    .into_iter()
    .map(model_json)
    .collect();
    let first = data.first().and_then(|m| m.get("id")).cloned();
    let last = data.last().and_then(|m| m.get("id")).cloned();
    let body = json!({"data": data, "has_more": false, "first_id": first, "last_id": last});
    Ok(with_log(
        json_response(StatusCode::OK, &body),
        &key.id,
        None,
    ))
}

async fn get_model(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AnthropicError> {
    let key = authenticate(&state, &headers).await?;
    let model = crate::policy::entitlement::resolve(state.catalog(), &key, &id, FAMILY)?;
    Ok(with_log(
        json_response(StatusCode::OK, &model_json(model)),
        &key.id,
        Some(&model.id),
    ))
}

/// The client's version and beta headers, forwarded on passthrough.
fn forward_headers(version: &str, headers: &HeaderMap) -> ForwardHeaders {
    ForwardHeaders {
        anthropic_version: Some(version.to_owned()),
        anthropic_beta: headers
            .get(anyint_wire::anthropic::BETA_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// Reads what routing needs from a Messages body, validating the required fields.
fn head<'a>(body: &'a Bytes, version: &str, headers: &HeaderMap) -> Result<Inbound<'a>, Error> {
    let obj = anyint_wire::json::RawObject::decode(body)?;
    let model = match obj.get("model") {
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|_| Error::invalid(Some("model"), "model: must be a string"))?,
        None => return Err(Error::invalid(Some("model"), "model: Field required")),
    };
    match obj.get("max_tokens") {
        Some(raw) if serde_json::from_str::<u64>(raw.get()).is_ok() => {}
        Some(_) => {
            return Err(Error::invalid(
                Some("max_tokens"),
                "max_tokens: must be a non-negative integer",
            ));
        }
        None => {
            return Err(Error::invalid(
                Some("max_tokens"),
                "max_tokens: Field required",
            ));
        }
    }
    match obj.get("messages") {
        Some(raw) if raw.get().trim_start().starts_with('[') => {}
        Some(_) => {
            return Err(Error::invalid(
                Some("messages"),
                "messages: must be an array",
            ));
        }
        None => return Err(Error::invalid(Some("messages"), "messages: Field required")),
    }
    if version == "2026-10-21"
        && let Some(p) = ["temperature", "top_p", "top_k"]
            .into_iter()
            .find(|p| obj.has(p))
    {
        return Err(Error::invalid(
            None,
            format!("{p}: is not supported with anthropic-version 2026-10-21; remove it"),
        ));
    }
    let stream = obj.get("stream").is_some_and(|v| v.get() == "true");
    let forward = forward_headers(version, headers);
    Ok(Inbound {
        body,
        model,
        stream,
        head: Head::Anthropic { body: obj, forward },
    })
}

pub(super) async fn messages(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AnthropicError> {
    let started = tokio::time::Instant::now();
    let key = authenticate(&state, &headers).await?;
    let version = version(&headers)?;
    let body = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let call = gateway::ChatCall {
        family: FAMILY,
        key,
        request_id,
        started,
        error_frame,
        hold: std::sync::Mutex::default(),
    };
    let inbound = head(&body, &version, &headers);
    let (result, log) = gateway::chat(&state, call, inbound).await;
    Ok(super::finish(
        result.unwrap_or_else(render_error),
        log,
        FAMILY,
    ))
}

async fn count_tokens(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AnthropicError> {
    let key = authenticate(&state, &headers).await?;
    let version = version(&headers)?;
    let body = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let obj = anyint_wire::json::RawObject::decode(&body)?;
    let model_id = obj
        .get("model")
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
        .ok_or_else(|| Error::invalid(Some("model"), "model: Field required"))?;
    let request = gateway::count::CountRequest::Anthropic {
        raw: &body,
        body: obj,
        forward: forward_headers(&version, &headers),
    };
    let (bytes, model) = gateway::count::count_tokens(&state, &key, &model_id, &request).await?;
    Ok(with_log(json_bytes(bytes), &key.id, Some(&model.id)))
}
