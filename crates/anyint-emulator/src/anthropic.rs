//! The Anthropic Messages API: `POST /v1/messages`, `POST
//! /v1/messages/count_tokens` and the Anthropic flavour of `GET /v1/models`.
//! Runs the gate (with Anthropic auth and errors), checks
//! `anthropic-version`, validates, plans the answer, does the prompt-cache
//! accounting and sends JSON or named SSE events. Every response carries a
//! `request-id` header that error bodies repeat.

pub(crate) mod error;
mod models;
mod plan;
mod render;
mod request;

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use self::error::AnthropicError;
use self::plan::Usage;
use self::request::{Endpoint, Version};
use crate::fault::{self, Fault};
use crate::gate::{self, Family, Incoming, REQUEST_ID};
use crate::state::State;
use crate::stream::StreamBody;
use crate::util::{fnv64, hex_id, json_response, query_pairs};

/// Request header naming the API version.
pub(crate) const VERSION_HEADER: &str = "anthropic-version";

/// `POST /v1/messages`.
pub(crate) async fn messages(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &headers, &body, Endpoint::Messages).await
}

/// `POST /v1/messages/count_tokens`.
pub(crate) async fn count_tokens(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &headers, &body, Endpoint::CountTokens).await
}

async fn handle(state: &State, headers: &HeaderMap, body: &Bytes, endpoint: Endpoint) -> Response {
    let rid = state.next_request_id();
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let raw_model = json
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (model, suffix) = fault::split_model(raw_model);
    let text = json
        .as_ref()
        .and_then(|v| v.get("messages"))
        .and_then(Value::as_array)
        .map(|m| request::last_user_text(m));
    let incoming = Incoming {
        headers,
        body,
        json: json.as_ref(),
        model_suffix: suffix,
        text: text.as_deref(),
        model,
        is_chat: endpoint == Endpoint::Messages,
    };
    let family = Family::Anthropic { request_id: &rid };
    let resp = match gate::admit_as(state, &incoming, family).await {
        Ok(fault) => {
            let resp = answer(
                state,
                headers,
                json.as_ref(),
                body,
                model,
                endpoint,
                &fault,
                &rid,
            );
            fault.decorate(resp)
        }
        Err(resp) => resp,
    };
    with_request_id(resp, &rid)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the same eight values"
)]
fn answer(
    state: &State,
    headers: &HeaderMap,
    json: Option<&Value>,
    body: &[u8],
    model: &str,
    endpoint: Endpoint,
    fault: &Fault,
    rid: &str,
) -> Response {
    let parsed = version(headers).and_then(|v| request::parse(json, v, endpoint));
    let req = match parsed {
        Ok(r) => r,
        Err(e) => return e.into_response(rid),
    };
    let prompt = plan::prompt(&req, model);
    if endpoint == Endpoint::CountTokens {
        return json_response(StatusCode::OK, &json!({"input_tokens": prompt.total}));
    }
    let seed = fnv64(&[body]).to_le_bytes();
    let plan = plan::plan(&req, &seed);
    let hit = prompt.cache.is_some_and(|c| state.cache_prefix(c.hash));
    let usage = Usage {
        web_searches: plan.web_searches,
        ..Usage::new(&prompt, hit, plan.output_tokens)
    };
    let id = format!("msg_01{}", hex_id(&seed, 22));
    let meta = render::Meta { id: &id, model };
    if req.stream {
        StreamBody {
            events: render::events(&meta, &plan, &usage),
            end: None,
            content_type: "text/event-stream",
        }
        .with_error_after(fault, |_| vec![error::stream_error_event(rid)], None)
        .into_response(fault, state)
    } else {
        json_response(StatusCode::OK, &render::complete(&meta, &plan, &usage))
    }
}

/// The `anthropic-version` header; several values are joined like the API
/// sees them (and so rejected).
fn version(headers: &HeaderMap) -> Result<Version, AnthropicError> {
    let values: Vec<&str> = headers
        .get_all(VERSION_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = values.join(", ");
    Version::parse((!values.is_empty()).then_some(joined.trim()))
}

fn with_request_id(mut resp: Response, rid: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// `GET /v1/models` for a request carrying `anthropic-version`.
pub(crate) async fn list_models(
    state: &State,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response {
    models_call(state, headers, "", |rid| {
        models::list(&query_pairs(query.unwrap_or("")), rid)
    })
    .await
}

/// `GET /v1/models/{id}` for a request carrying `anthropic-version`.
pub(crate) async fn retrieve_model(state: &State, headers: &HeaderMap, id: &str) -> Response {
    let (model, suffix) = fault::split_model(id);
    models_call(state, headers, suffix.unwrap_or(""), |rid| {
        models::retrieve(model, rid)
    })
    .await
}

async fn models_call(
    state: &State,
    headers: &HeaderMap,
    suffix: &str,
    build: impl FnOnce(&str) -> Response,
) -> Response {
    let rid = state.next_request_id();
    let incoming = Incoming {
        headers,
        body: &[],
        json: None,
        model_suffix: (!suffix.is_empty()).then_some(suffix),
        text: None,
        model: "",
        is_chat: false,
    };
    let resp = match gate::admit_as(state, &incoming, Family::Anthropic { request_id: &rid }).await
    {
        Ok(fault) => match version(headers) {
            Ok(_) => fault.decorate(build(&rid)),
            Err(e) => fault.decorate(e.into_response(&rid)),
        },
        Err(resp) => resp,
    };
    with_request_id(resp, &rid)
}
