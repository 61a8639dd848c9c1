//! `POST /v1/chat/completions`: runs the gate, validates, plans the answer
//! and sends it as JSON or as an SSE stream (pacing and cuts live in
//! `stream`).

mod plan;
mod render;
mod request;

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::fault;
use crate::gate::{self, Incoming};
use crate::state::State;
use crate::stream::StreamBody;
use crate::util::{fnv64, hex_id, json_response, now_secs};

const DONE: &[u8] = b"data: [DONE]\n\n";

pub(crate) async fn handle(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json: Option<Value> = serde_json::from_slice(&body).ok();
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
        headers: &headers,
        body: &body,
        json: json.as_ref(),
        model_suffix: suffix,
        text: text.as_deref(),
        model,
        is_chat: true,
    };
    let fault = match gate::admit(&state, &incoming).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let req = match request::parse(json.as_ref()) {
        Ok(r) => r,
        Err(e) => return fault.decorate(e.into_response()),
    };

    let seed = fnv64(&[&body]).to_le_bytes();
    let plan = plan::plan(&req, &seed);
    let id = format!("chatcmpl-{}", hex_id(&seed, 29));
    let meta = render::Meta {
        id: &id,
        created: now_secs(),
        model,
    };
    let resp = if req.stream {
        let events = render::chunks(&meta, &plan, req.n, req.include_usage);
        StreamBody {
            events,
            end: Some(Bytes::from_static(DONE)),
            content_type: "text/event-stream",
        }
        .with_error_after(&fault, |_| vec![mid_stream_error()], None)
        .into_response(&fault, &state)
    } else {
        json_response(StatusCode::OK, &render::completion(&meta, &plan, req.n))
    };
    fault.decorate(resp)
}

/// The `data: {"error":...}` event OpenAI sends when a stream fails after
/// the 200 (used by `error_after`); no `[DONE]` follows it.
fn mid_stream_error() -> Bytes {
    let body = json!({"error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": null,
        "code": null,
    }});
    Bytes::from(format!("data: {body}\n\n"))
}
