//! The Gemini API (Generative Language, `v1beta` and `v1`):
//! `models/{model}:generateContent`, `:streamGenerateContent` (SSE with
//! `alt=sse`, else one JSON array streamed gradually), `:countTokens`,
//! `:embedContent` and `:batchEmbedContents` (deterministic vectors, see
//! `embed`), and the models list. Runs the gate (with Google auth and errors), validates,
//! plans the answer and frames it. Streams never carry `event:` lines or
//! comments: google-genai's parser rejects them.

mod embed;
pub(crate) mod error;
mod models;
mod plan;
mod render;
mod request;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use self::error::GoogleError;
use self::request::Endpoint;
use crate::fault::{self, Fault};
use crate::gate::{self, Family, GeminiCall, Incoming};
use crate::state::State;
use crate::stream::StreamBody;
use crate::util::{fnv64, hex_id, json_response, query_pairs};

/// Request header carrying the API key.
const KEY_HEADER: &str = "x-goog-api-key";
/// Separator between stream chunks in the JSON-array framing.
const ARRAY_SEPARATOR: &str = "\n,\r\n";

/// True when a `/v1/models` request is a Gemini one: it carries
/// `x-goog-api-key` or a `key` query parameter.
pub(crate) fn wants(headers: &HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key(KEY_HEADER)
        || query_pairs(query.unwrap_or(""))
            .iter()
            .any(|(k, _)| k == "key")
}

/// What a POST under `models/` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Generate,
    Stream,
    CountTokens,
    Embed,
    BatchEmbed,
}

impl Method {
    /// The method a URL's `:name` asks for.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "generateContent" => Some(Self::Generate),
            "streamGenerateContent" => Some(Self::Stream),
            "countTokens" => Some(Self::CountTokens),
            "embedContent" => Some(Self::Embed),
            "batchEmbedContents" => Some(Self::BatchEmbed),
            _ => None,
        }
    }
}

/// `POST /v1beta/models/{model}:{method}`.
pub(crate) async fn action_v1beta(
    AxState(state): AxState<Arc<State>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    action(&state, "v1beta", &target, query.as_deref(), &headers, &body).await
}

/// `POST /v1/models/{model}:{method}`.
pub(crate) async fn action_v1(
    AxState(state): AxState<Arc<State>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    action(&state, "v1", &target, query.as_deref(), &headers, &body).await
}

/// `GET /v1beta/models`.
pub(crate) async fn list_v1beta(
    AxState(state): AxState<Arc<State>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    list_models(&state, &headers, query.as_deref(), "v1beta").await
}

/// `GET /v1beta/models/{model}`.
pub(crate) async fn get_v1beta(
    AxState(state): AxState<Arc<State>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    retrieve_model(&state, &headers, &target, query.as_deref(), "v1beta").await
}

/// The models list (also reached from `GET /v1/models`, see [`wants`]).
pub(crate) async fn list_models(
    state: &State,
    headers: &HeaderMap,
    query: Option<&str>,
    version: &str,
) -> Response {
    let params = query_pairs(query.unwrap_or(""));
    let path = format!("/{version}/models");
    models_call(state, headers, &params, version, "", "list", &path, |_| {
        models::list(&params, false)
    })
    .await
}

/// One model (also reached from `GET /v1/models/{id}`, see [`wants`]).
pub(crate) async fn retrieve_model(
    state: &State,
    headers: &HeaderMap,
    id: &str,
    query: Option<&str>,
    version: &str,
) -> Response {
    let params = query_pairs(query.unwrap_or(""));
    let (model, suffix) = fault::split_model(id);
    let path = format!("/{version}/models/{id}");
    models_call(
        state,
        headers,
        &params,
        version,
        suffix.unwrap_or(""),
        "get",
        &path,
        |_| models::retrieve(model, version),
    )
    .await
}

#[expect(
    clippy::too_many_arguments,
    reason = "two call sites passing request parts straight through"
)]
async fn models_call(
    state: &State,
    headers: &HeaderMap,
    params: &[(String, String)],
    version: &str,
    suffix: &str,
    method: &str,
    path: &str,
    build: impl FnOnce(&Fault) -> Response,
) -> Response {
    let query_key = params
        .iter()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.as_str());
    let incoming = Incoming {
        headers,
        body: &[],
        json: None,
        model_suffix: (!suffix.is_empty()).then_some(suffix),
        text: None,
        model: "",
        is_chat: false,
    };
    let call = GeminiCall {
        query_key,
        array: false,
        version,
        method,
        path,
    };
    match gate::admit_as(state, &incoming, Family::Gemini(call)).await {
        Ok(fault) => fault.decorate(build(&fault)),
        Err(resp) => resp,
    }
}

async fn action(
    state: &State,
    version: &str,
    target: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let params = query_pairs(query.unwrap_or(""));
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (raw_model, method_name) = target.rsplit_once(':').unwrap_or((target, ""));
    let (model, suffix) = fault::split_model(raw_model);
    let model = model.strip_prefix("models/").unwrap_or(model);
    let method = Method::parse(method_name);
    let sse = param("alt") == Some("sse");
    let array = method == Some(Method::Stream) && !sse;
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let contents = json.as_ref().and_then(|v| {
        v.get("contents")
            .or_else(|| {
                v.get("generateContentRequest")
                    .and_then(|g| g.get("contents"))
            })
            .and_then(Value::as_array)
    });
    let text = contents.map(|c| request::last_user_text(c));
    let path = match query {
        Some(q) => format!("/{version}/models/{target}?{q}"),
        None => format!("/{version}/models/{target}"),
    };
    let incoming = Incoming {
        headers,
        body,
        json: json.as_ref(),
        model_suffix: suffix,
        text: text.as_deref(),
        model,
        is_chat: matches!(method, Some(Method::Generate | Method::Stream)),
    };
    let call = GeminiCall {
        query_key: param("key"),
        array,
        version,
        method: method_name,
        path: &path,
    };
    let fault = match gate::admit_as(state, &incoming, Family::Gemini(call)).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let Some(method) = method else {
        let err = GoogleError {
            code: StatusCode::NOT_FOUND,
            status: "NOT_FOUND",
            message: format!("Method not found: {method_name}"),
            details: Vec::new(),
        };
        return fault.decorate(err.into_response(false));
    };
    if matches!(method, Method::Embed | Method::BatchEmbed) {
        let batch = method == Method::BatchEmbed;
        return fault.decorate(embed::answer(json.as_ref(), batch, model));
    }
    let endpoint = if method == Method::CountTokens {
        Endpoint::CountTokens
    } else {
        Endpoint::Generate
    };
    let req = match request::parse(json.as_ref(), endpoint)
        .and_then(|r| request::check_search(&r, model).map(|()| r))
    {
        Ok(r) => r,
        Err(e) => return fault.decorate(e.into_response(array)),
    };
    if method == Method::CountTokens {
        let mut out = json!({
            "totalTokens": req.prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": req.prompt_tokens - req.cached_tokens}],
        });
        if req.cached_tokens > 0 {
            out["cachedContentTokenCount"] = json!(req.cached_tokens);
        }
        return fault.decorate(json_response(StatusCode::OK, &out));
    }

    let seed = fnv64(&[body]).to_le_bytes();
    let plan = plan::plan(&req, &seed);
    let response_id = hex_id(&seed, 22);
    let meta = render::Meta {
        model,
        response_id: &response_id,
    };
    let resp = match method {
        Method::Stream => stream(state, &meta, &plan, sse, &fault, version),
        _ => json_response(StatusCode::OK, &render::complete(&meta, &plan)),
    };
    fault.decorate(resp)
}

/// Renders the plan's chunks and frames them: `data: {json}\r\n\r\n`
/// events for SSE, else one JSON array (`[`, pretty-printed chunks
/// separated by `,\r\n`, `]`).
fn stream(
    state: &State,
    meta: &render::Meta<'_>,
    plan: &plan::Plan,
    sse: bool,
    fault: &Fault,
    version: &str,
) -> Response {
    let chunks = render::chunks(meta, plan);
    let model = meta.model;
    let overloaded = GoogleError::for_status(
        StatusCode::SERVICE_UNAVAILABLE,
        model,
        version,
        "streamGenerateContent",
        None,
    )
    .body();
    if sse {
        let frame = |v: &Value| Bytes::from(format!("data: {v}\r\n\r\n"));
        return StreamBody {
            events: chunks.iter().map(frame).collect(),
            end: None,
            content_type: "text/event-stream",
        }
        .with_error_after(fault, |_| vec![frame(&overloaded)], None)
        .into_response(fault, state);
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let element = |i: usize, v: &Value| {
        let sep = if i == 0 { "[" } else { ARRAY_SEPARATOR };
        Bytes::from(format!("{sep}{}", pretty(v)))
    };
    let events: Vec<Bytes> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| element(i, c))
        .collect();
    let end = if events.is_empty() { "[]" } else { "\n]" };
    StreamBody {
        events,
        end: Some(Bytes::from_static(end.as_bytes())),
        content_type: "application/json",
    }
    .with_error_after(
        fault,
        |kept| vec![element(kept, &overloaded)],
        Some(Bytes::from_static(b"\n]")),
    )
    .into_response(fault, state)
}
