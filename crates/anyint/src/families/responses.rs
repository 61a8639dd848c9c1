//! The OpenAI Responses API at `/openai/v1/responses…`, part of the OpenAI family (same key
//! header, same error envelope) with its own wire format:
//!
//! - `POST /openai/v1/responses`, streaming or not, for any configured chat model: passed
//!   through to a native Responses upstream (`api = "responses"`), translated otherwise;
//! - `GET` / `DELETE /openai/v1/responses/{id}` and `GET …/{id}/input_items`: stored
//!   responses (`store: true`, the default), readable by any key of the owning account, for
//!   `[responses] retention_days`; another account's ID answers exactly like a missing one;
//! - `POST /openai/v1/responses/input_tokens`: counted through the gateway like count_tokens;
//! - `POST /openai/v1/responses/compact`: refused with a 400 that says what to do (see the
//!   README);
//! - a WebSocket upgrade on `/openai/v1/responses` (Codex tries one first) is answered at once
//!   with 426, so the client falls back to HTTP streaming.

use anyint_wire::responses::RequestHead;
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::openai::OpenAiError;
use super::{Family, json_response, with_log};
use crate::error::{Error, ErrorKind};
use crate::gateway;
use crate::state::{AppState, SharedState};
use crate::store::ApiKey;
use crate::telemetry::RequestId;

const FAMILY: Family = Family::OpenAi;

/// The Responses API routes (merged beside the rest of the OpenAI family).
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/openai/v1/responses", get(websocket).post(create))
        .route("/openai/v1/responses/input_tokens", post(input_tokens))
        .route("/openai/v1/responses/compact", post(compact))
        .route("/openai/v1/responses/{id}", get(retrieve).delete(delete))
        .route("/openai/v1/responses/{id}/input_items", get(input_items))
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<ApiKey>, Error> {
    super::authorize(state, super::presented_key(headers, None), FAMILY).await
}

/// The 404 for a response ID that does not exist, expired, or belongs to another account.
fn not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("Response with id '{id}' not found."),
    )
    .with_param("response_id")
}

/// A response ID within the store's ID rule; any other is refused before the store sees
/// it, with the same 404 as a missing one.
fn checked_id(id: &str) -> Result<&str, Error> {
    if crate::store::is_valid_id(id) {
        Ok(id)
    } else {
        Err(not_found(id.get(..64).unwrap_or("…")))
    }
}

/// `POST /openai/v1/responses`: one response, for any configured chat model.
pub(super) async fn create(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let started = tokio::time::Instant::now();
    let key = authenticate(&state, &headers).await?;
    let body = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let prepared = gateway::responses::prepare(&state, &key, &body).await;
    let call = gateway::ChatCall {
        family: Family::Responses,
        key,
        request_id,
        started,
        error_frame: super::openai::error_frame,
        hold: std::sync::Mutex::default(),
    };
    let (result, log) = match &prepared {
        Ok(p) => {
            let bytes: &bytes::Bytes = p.rebuilt.as_ref().unwrap_or(&body);
            let inbound =
                RequestHead::decode(bytes)
                    .map_err(Error::from)
                    .map(|head| gateway::Inbound {
                        body: bytes,
                        model: head.model.clone(),
                        stream: head.stream,
                        head: gateway::Head::Responses {
                            head,
                            echo: &p.echo,
                            keep: p.keep.as_ref(),
                        },
                    });
            gateway::chat(&state, call, inbound).await
        }
        Err(e) => {
            let e = e.clone();
            gateway::chat(&state, call, Err(e)).await
        }
    };
    Ok(super::finish(
        result.unwrap_or_else(super::openai::render_error),
        log,
        Family::Responses,
    ))
}

/// `POST /openai/v1/responses/input_tokens`: the input a create with this body would count,
/// from a native Responses upstream's counter or the gateway's estimate.
async fn input_tokens(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let key = authenticate(&state, &headers).await?;
    let body = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let prepared = gateway::responses::prepare(&state, &key, &body).await?;
    let bytes: &bytes::Bytes = prepared.rebuilt.as_ref().unwrap_or(&body);
    let head = RequestHead::decode(bytes).map_err(Error::from)?;
    let model_id = head.model.clone();
    let request = gateway::count::CountRequest::Responses { raw: bytes, head };
    let (counted, model) = gateway::count::count_tokens(&state, &key, &model_id, &request).await?;
    Ok(with_log(
        super::json_bytes(counted),
        &key.id,
        Some(&model.id),
    ))
}

/// `GET /openai/v1/responses` without an upgrade is not a route; with `Upgrade: websocket`
/// (Codex's first try) it is answered at once with 426, so the client uses HTTP streaming.
async fn websocket(headers: HeaderMap) -> Response {
    let upgrade = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return super::wrong_method("/openai/v1/responses", &http::Method::GET);
    }
    let mut resp = super::openai::render_error(
        Error::invalid(
            None,
            "the gateway serves the Responses API over HTTP only; send POST /openai/v1/responses (with stream: true for events)",
        )
        .with_code("websocket_not_supported"),
    );
    *resp.status_mut() = StatusCode::UPGRADE_REQUIRED;
    resp
}

/// `GET /openai/v1/responses/{id}`: the stored response as the client first received it.
async fn retrieve(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Query(query): Query<RetrieveQuery>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = authenticate(&state, &headers).await?;
    if query.stream.as_deref() == Some("true") {
        return Err(Error::invalid(
            Some("stream"),
            "replaying a stored response as a stream is not supported; retrieve it without stream=true",
        )
        .into());
    }
    let stored = state
        .store
        .response(checked_id(&id)?, &key.account, crate::clock::unix_millis())
        .await
        .map_err(Error::from)?
        .ok_or_else(|| not_found(&id))?;
    Ok(with_log(
        json_response(StatusCode::OK, &stored.response),
        &key.id,
        Some(&stored.model),
    ))
}

/// The query of a retrieve: `stream=true` (replay) is refused; `include` is accepted.
#[derive(Debug, Default, Deserialize)]
struct RetrieveQuery {
    stream: Option<String>,
}

/// `DELETE /openai/v1/responses/{id}`.
async fn delete(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = authenticate(&state, &headers).await?;
    if !state
        .store
        .delete_response(checked_id(&id)?, &key.account)
        .await
        .map_err(Error::from)?
    {
        return Err(not_found(&id).into());
    }
    Ok(with_log(
        json_response(
            StatusCode::OK,
            &json!({"id": id, "object": "response", "deleted": true}),
        ),
        &key.id,
        None,
    ))
}

/// The paging query of `input_items`.
#[derive(Debug, Default, Deserialize)]
struct ItemsQuery {
    after: Option<String>,
    limit: Option<String>,
    order: Option<String>,
}

/// `GET /openai/v1/responses/{id}/input_items`: the items the response answered (history
/// included), newest first unless `order=asc`, `limit` 1–100 (default 20), after `after`.
async fn input_items(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    query: Result<Query<ItemsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, OpenAiError> {
    let key = authenticate(&state, &headers).await?;
    let Query(q) = query.map_err(|_| Error::invalid(None, "the query string could not be read"))?;
    let limit = match q.limit.as_deref() {
        None => 20,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                Error::invalid(Some("limit"), "limit must be an integer from 1 to 100")
            })?,
    };
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Err(Error::invalid(Some("order"), "order must be `asc` or `desc`").into());
        }
    };
    let stored = state
        .store
        .response(checked_id(&id)?, &key.account, crate::clock::unix_millis())
        .await
        .map_err(Error::from)?
        .ok_or_else(|| not_found(&id))?;
    let mut items: Vec<Value> = stored.input.as_array().cloned().unwrap_or_default();
    if !ascending {
        items.reverse();
    }
    if let Some(after) = &q.after {
        let at = items
            .iter()
            .position(|i| i.get("id").and_then(Value::as_str) == Some(after))
            .ok_or_else(|| {
                Error::invalid(
                    Some("after"),
                    format!("no input item with id '{after}' in this response"),
                )
            })?;
        items.drain(..=at);
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    let id_of = |i: Option<&Value>| i.and_then(|v| v.get("id")).cloned().unwrap_or(Value::Null);
    let body = json!({
        "object": "list",
        "first_id": id_of(items.first()),
        "last_id": id_of(items.last()),
        "has_more": has_more,
        "data": items,
    });
    Ok(with_log(
        json_response(StatusCode::OK, &body),
        &key.id,
        Some(&stored.model),
    ))
}

/// `POST /openai/v1/responses/compact`: the gateway does not compact conversations. Codex
/// calls it only for a provider named `openai`; under any other provider name it compacts
/// through an ordinary turn, which the gateway serves for every model.
async fn compact(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    authenticate(&state, &headers).await?;
    // Read (and bound) the body like any route, so a client sees the same 413 and 400s.
    super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    Err(Error::invalid(
        None,
        "this gateway does not serve /responses/compact; let the client compact the conversation itself (in Codex, name the model provider anything but `openai`, e.g. [model_providers.anyint], and it compacts with an ordinary request)",
    )
    .with_code("unsupported_endpoint")
    .into())
}
