//! `GET /v1/models` and `GET /v1/models/{id}` over a fixed model list. The
//! same paths answer in Anthropic's shape when the request carries
//! `anthropic-version`, and in Gemini's when it carries `x-goog-api-key` or
//! `?key=`; everything else gets OpenAI's.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::fault;
use crate::gate::{self, Incoming};
use crate::state::State;
use crate::util::json_response;

/// `(id, created, owned_by)` of every model the emulator lists.
const MODELS: &[(&str, u64, &str)] = &[
    ("gpt-4o-mini", 1_721_172_741, "system"),
    ("gpt-4o", 1_715_367_049, "system"),
    ("gpt-4.1", 1_744_316_542, "system"),
    ("o4-mini", 1_744_225_308, "system"),
    ("text-embedding-3-small", 1_705_948_997, "system"),
    ("text-embedding-3-large", 1_705_953_180, "system"),
];

fn model_json(&(id, created, owned_by): &(&str, u64, &str)) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
}

pub(crate) async fn list(
    AxState(state): AxState<Arc<State>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(crate::anthropic::VERSION_HEADER) {
        return crate::anthropic::list_models(&state, &headers, query.as_deref()).await;
    }
    if crate::gemini::wants(&headers, query.as_deref()) {
        return crate::gemini::list_models(&state, &headers, query.as_deref(), "v1").await;
    }
    let incoming = Incoming {
        headers: &headers,
        body: &[],
        json: None,
        model_suffix: None,
        text: None,
        model: "gpt-4o-mini",
        is_chat: false,
    };
    let fault = match gate::admit(&state, &incoming).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let data: Vec<Value> = MODELS.iter().map(model_json).collect();
    fault.decorate(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data}),
    ))
}

pub(crate) async fn retrieve(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(crate::anthropic::VERSION_HEADER) {
        return crate::anthropic::retrieve_model(&state, &headers, &id).await;
    }
    if crate::gemini::wants(&headers, query.as_deref()) {
        return crate::gemini::retrieve_model(&state, &headers, &id, query.as_deref(), "v1").await;
    }
    let (model, suffix) = fault::split_model(&id);
    let incoming = Incoming {
        headers: &headers,
        body: &[],
        json: None,
        model_suffix: suffix,
        text: None,
        model,
        is_chat: false,
    };
    let fault = match gate::admit(&state, &incoming).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let resp = match MODELS.iter().find(|m| m.0 == model) {
        Some(m) => json_response(StatusCode::OK, &model_json(m)),
        None => ApiError::model_not_found(model).into_response(),
    };
    fault.decorate(resp)
}
