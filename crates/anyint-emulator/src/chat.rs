//! `POST /v1/chat/completions`: runs the gate, validates, plans the answer
//! and sends it as JSON or as an SSE stream (with injected chunk delays and
//! connection cuts).

mod plan;
mod render;
mod request;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::Value;

use crate::fault::{self, Fault};
use crate::gate::{self, Incoming};
use crate::state::State;
use crate::util::{fnv64, hex_id, json_response, now_secs};

const DONE: &[u8] = b"data: [DONE]\n\n";
/// Pause before a `cut_after` abort so sent chunks reach the socket first.
const CUT_FLUSH_PAUSE: Duration = Duration::from_millis(5);

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
        sse_response(events, &fault)
    } else {
        json_response(StatusCode::OK, &render::completion(&meta, &plan, req.n))
    };
    fault.decorate(resp)
}

/// Streams `events` then `[DONE]`, honouring `chunk_delay_ms` and
/// `cut_after` (which drops `[DONE]` and ends the body with an error so the
/// server aborts the connection).
fn sse_response(mut events: Vec<Bytes>, fault: &Fault) -> Response {
    let delay = fault
        .chunk_delay_ms
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    let abort = if let Some(n) = fault.cut_after {
        events.truncate(n);
        true
    } else {
        events.push(Bytes::from_static(DONE));
        false
    };
    let body = stream::iter(events.into_iter().enumerate())
        .then(move |(i, event)| async move {
            if let Some(d) = delay.filter(|_| i > 0) {
                tokio::time::sleep(d).await;
            }
            Ok::<_, io::Error>(event)
        })
        .chain(stream::iter(abort.then_some(())).then(|()| async {
            // Return Pending once so hyper flushes the head and the chunks
            // already sent; erroring straight away would drop them unsent.
            tokio::task::yield_now().await;
            tokio::time::sleep(CUT_FLUSH_PAUSE).await;
            Err::<Bytes, _>(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "emulator fault: cut_after",
            ))
        }));
    let mut resp = Body::from_stream(body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
