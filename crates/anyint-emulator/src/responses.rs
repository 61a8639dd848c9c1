//! The OpenAI Responses API: `POST /v1/responses` (JSON or named SSE
//! events), `POST /v1/responses/input_tokens`, a WebSocket upgrade on
//! `GET /v1/responses` (answered 426 so clients fall back to HTTP) and
//! 404s for the stored-response routes (the emulator stores nothing).
//! Runs the gate (OpenAI auth and errors, counted under
//! `_responses_total`), validates, plans the answer and sends it; pacing,
//! cuts and mid-stream failures go through `stream`.

mod blob;
mod events;
mod input;
mod plan;
mod render;
mod request;
mod schema;
mod tools;

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::header::UPGRADE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use self::request::Endpoint;
use crate::error::{self, ApiError};
use crate::fault::{self, Fault};
use crate::gate::{self, Family, Incoming};
use crate::state::State;
use crate::stream::StreamBody;
use crate::util::{fnv64, json_response, now_secs};

/// `POST /v1/responses`.
pub(crate) async fn create(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &headers, &body, Endpoint::Create).await
}

/// `POST /v1/responses/input_tokens`.
pub(crate) async fn input_tokens(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &headers, &body, Endpoint::InputTokens).await
}

async fn handle(state: &State, headers: &HeaderMap, body: &Bytes, endpoint: Endpoint) -> Response {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let raw_model = json
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (model, suffix) = fault::split_model(raw_model);
    let text = json
        .as_ref()
        .map(|v| input::raw_last_user_text(v.get("input")));
    let incoming = Incoming {
        headers,
        body,
        json: json.as_ref(),
        model_suffix: suffix,
        text: text.as_deref(),
        model,
        is_chat: endpoint == Endpoint::Create,
    };
    let fault = match gate::admit_as(state, &incoming, Family::Responses).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    // The gate let the request through, so it carries a bearer key.
    let key = gate::bearer(headers).unwrap_or("");
    let req = match request::parse(json.as_ref(), endpoint, key) {
        Ok(r) => r,
        Err(e) => return fault.decorate(e.into_response()),
    };
    if endpoint == Endpoint::InputTokens {
        let body =
            json!({"object": "response.input_tokens", "input_tokens": plan::input_tokens(&req)});
        return fault.decorate(json_response(StatusCode::OK, &body));
    }

    let seed = fnv64(&[body]).to_le_bytes();
    let plan = plan::plan(&req, &seed, key);
    let id = plan::item_id("resp", &seed, 0);
    let meta = render::Meta {
        id: &id,
        created_at: now_secs(),
        model,
    };
    let resp = if req.stream {
        let list = events::events(&meta, &req, &plan, &seed);
        let stream_fault = ends_with_one_terminal(fault.clone(), list.len());
        StreamBody {
            events: list.iter().map(events::frame).collect(),
            end: None,
            content_type: "text/event-stream",
        }
        .with_error_after(
            &stream_fault,
            |kept| {
                let kept = list.get(..kept).unwrap_or(&list);
                events::failure(&meta, &req, kept)
                    .iter()
                    .map(events::frame)
                    .collect()
            },
            None,
        )
        .into_response(&stream_fault, state)
    } else {
        json_response(StatusCode::OK, &render::finished(&meta, &req, &plan))
    };
    fault.decorate(resp)
}

/// `error_after=N` with N at or past the terminal event would put a
/// second terminal after `response.completed`; it replaces the terminal
/// event instead, so a stream always ends with exactly one.
fn ends_with_one_terminal(mut fault: Fault, events: usize) -> Fault {
    if let Some(n) = fault.error_after {
        fault.error_after = Some(n.min(events.saturating_sub(1)));
    }
    fault
}

/// `GET /v1/responses`: a WebSocket upgrade (Codex tries one first) is
/// answered 426 so the client falls back to HTTP at once; a plain GET is
/// an unknown URL.
pub(crate) async fn socket(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let upgrade = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("websocket"));
    if !upgrade {
        return error::not_found(method, uri).await;
    }
    let fault = match admit_bodyless(&state, &headers).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let mut err = ApiError::invalid_request(
        "WebSocket mode is not supported by this server; send the request over HTTP \
         (POST /v1/responses).",
    )
    .with_code("websocket_not_supported");
    err.status = StatusCode::UPGRADE_REQUIRED;
    fault.decorate(err.into_response())
}

/// `GET`/`DELETE /v1/responses/{id}`, `POST …/{id}/cancel`, `GET
/// …/{id}/input_items`: nothing is stored, so every id is unknown (404).
pub(crate) async fn stored(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let fault = match admit_bodyless(&state, &headers).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let mut err = ApiError::invalid_request(format!("Response with id '{id}' not found."));
    err.status = StatusCode::NOT_FOUND;
    fault.decorate(err.into_response())
}

/// The gate for a request without a body (auth and header faults only).
async fn admit_bodyless(state: &State, headers: &HeaderMap) -> Result<Fault, Response> {
    let incoming = Incoming {
        headers,
        body: &[],
        json: None,
        model_suffix: None,
        text: None,
        model: "",
        is_chat: false,
    };
    gate::admit_as(state, &incoming, Family::Responses).await
}
