//! The Gemini family at `/gemini/v1beta/…` and `/gemini/v1/…` (google-genai 3.x calls `/v1`):
//! `models`, `models/{model}:generateContent`, `:streamGenerateContent` (SSE with `?alt=sse`,
//! a JSON array stream without it), `:countTokens`, and for embedding models `:embedContent`
//! and `:batchEmbedContents`.
//!
//! Auth is `x-goog-api-key`, `?key=` or `Authorization: Bearer`. Errors use the Google RPC
//! envelope `{"error":{"code","message","status"}}` (handlers return [`GeminiError`]); inside a
//! stream they are an error object.
//! Streams carry only `data:` lines: google-genai's parser breaks on comments and `event:`.

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{Envelope, Family, FamilyError, json_bytes, json_response, with_log};
use anyint_wire::embeddings::gemini::Method;

use crate::config::ModelApi;
use crate::error::{Error, ErrorKind};
use crate::gateway::{self, Head, Inbound};
use crate::state::SharedState;
use crate::telemetry::RequestId;

const FAMILY: Family = Family::Gemini;

/// The family's routes, under both API versions.
pub fn routes() -> Router<SharedState> {
    let mut router = Router::new();
    for prefix in ["/gemini/v1beta", "/gemini/v1"] {
        router = router
            .route(&format!("{prefix}/models"), get(list_models))
            .route(
                &format!("{prefix}/models/{{*rest}}"),
                get(get_model).post(model_action),
            );
    }
    router
}

/// Marker for the Google envelope.
pub struct Gemini;

impl Envelope for Gemini {
    fn envelope(e: &Error) -> serde_json::Value {
        anyint_wire::gemini::error_json(e.status().as_u16(), &e.message)
    }
}

/// An error rendered in the Google envelope.
pub type GeminiError = FamilyError<Gemini>;

/// Renders `e` in the Google envelope.
pub fn render_error(e: Error) -> Response {
    Gemini::render(e)
}

/// The in-stream error for SSE clients.
pub fn error_frame(e: &Error) -> Bytes {
    Bytes::from(format!("data: {}\n\n", Gemini::envelope(e)))
}

/// The in-stream error for JSON-array clients: the bare element.
pub fn error_element(e: &Error) -> Bytes {
    Bytes::from(Gemini::envelope(e).to_string())
}

fn model_json(m: &crate::config::ModelConfig) -> serde_json::Value {
    let methods = if m.api == ModelApi::Embedding {
        json!(["embedContent", "batchEmbedContents"])
    } else {
        json!(["generateContent", "streamGenerateContent", "countTokens"])
    };
    json!({
        "name": format!("models/{}", m.id),
        "baseModelId": m.id,
        "version": "001",
        "displayName": m.display_name,
        "description": format!("{} via anyint", m.display_name),
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": methods,
    })
}

async fn authenticate(
    state: &SharedState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<std::sync::Arc<crate::store::ApiKey>, Error> {
    super::authorize(state, super::presented_key(headers, query), FAMILY).await
}

async fn list_models(
    State(state): State<SharedState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, GeminiError> {
    let key = authenticate(&state, &headers, query.as_deref()).await?;
    let models: Vec<_> = crate::policy::entitlement::visible_models_serving(
        state.catalog(),
        &key,
        &[ModelApi::Chat, ModelApi::Embedding],
    )
    .into_iter()
    .map(model_json)
    .collect();
    Ok(with_log(
        json_response(StatusCode::OK, &json!({"models": models})),
        &key.id,
        None,
    ))
}

/// Strips an optional `models/` prefix the caller may repeat.
fn model_name(rest: &str) -> &str {
    rest.strip_prefix("models/").unwrap_or(rest)
}

async fn get_model(
    State(state): State<SharedState>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, GeminiError> {
    // `GET models/{model}:generateContent` names an action route with the wrong method.
    if rest.contains(':') {
        return Ok(super::wrong_method("/gemini", &http::Method::GET));
    }
    let key = authenticate(&state, &headers, query.as_deref()).await?;
    let id = model_name(&rest);
    // Chat and embedding models; a task model is the 400 naming its routes.
    let api = match state.config.model(id).map(|m| m.api) {
        Some(ModelApi::Embedding) => ModelApi::Embedding,
        _ => ModelApi::Chat,
    };
    let model =
        crate::policy::entitlement::resolve_serving(state.catalog(), &key, id, api, FAMILY)?;
    Ok(with_log(
        json_response(StatusCode::OK, &model_json(model)),
        &key.id,
        Some(&model.id),
    ))
}

async fn model_action(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GeminiError> {
    let started = tokio::time::Instant::now();
    let key = authenticate(&state, &headers, query.as_deref()).await?;
    let Some((model, action)) = rest.rsplit_once(':') else {
        return Err(Error::new(ErrorKind::NotFound, format!("unknown method on models/{rest}; use :generateContent, :streamGenerateContent, :countTokens, :embedContent or :batchEmbedContents")).into());
    };
    let model = model_name(model).to_owned();
    let body = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let sse = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    let (stream, embedding) = match action {
        "generateContent" => (false, None),
        "streamGenerateContent" => (true, None),
        "embedContent" => (false, Some(Method::Single)),
        "batchEmbedContents" => (false, Some(Method::Batch)),
        "countTokens" => {
            return count_tokens(&state, &key, &model, &body)
                .await
                .map_err(GeminiError::new);
        }
        other => {
            return Err(Error::new(ErrorKind::NotFound, format!("unknown method `{other}`; use :generateContent, :streamGenerateContent, :countTokens, :embedContent or :batchEmbedContents")).into());
        }
    };
    let error_frame = if stream && !sse {
        error_element
    } else {
        error_frame
    };
    let call = gateway::ChatCall {
        family: FAMILY,
        key,
        request_id,
        started,
        error_frame,
        hold: std::sync::Mutex::default(),
    };
    if let Some(method) = embedding {
        return Ok(embed(&state, call, (&model, method), &body).await);
    }
    let inbound = validate(&body).map(|()| Inbound {
        body: &body,
        model,
        stream,
        head: Head::Gemini { sse },
    });
    let (result, log) = gateway::chat(&state, call, inbound).await;
    Ok(super::finish(
        result.unwrap_or_else(render_error),
        log,
        FAMILY,
    ))
}

/// The checks the API makes before anything else: a JSON object with non-empty `contents`.
fn validate(body: &[u8]) -> Result<(), Error> {
    let obj = anyint_wire::json::RawObject::decode(body)?;
    match obj.get("contents") {
        Some(raw)
            if raw.get().trim_start().starts_with('[')
                && raw.get().trim_start().trim_start_matches('[').trim_start() != "]" =>
        {
            Ok(())
        }
        Some(_) => Err(Error::invalid(
            Some("contents"),
            "contents must be a non-empty array of Content",
        )),
        None => Err(Error::invalid(
            Some("contents"),
            "contents is not specified",
        )),
    }
}

async fn count_tokens(
    state: &SharedState,
    key: &crate::store::ApiKey,
    model_id: &str,
    body: &Bytes,
) -> Result<Response, Error> {
    let request = gateway::count::CountRequest::Gemini { raw: body };
    let (bytes, model) = gateway::count::count_tokens(state, key, model_id, &request).await?;
    Ok(with_log(json_bytes(bytes), &key.id, Some(&model.id)))
}

/// `:embedContent` / `:batchEmbedContents` for `model` (at most 100 requests per batch, with
/// Google's error text).
async fn embed(
    state: &SharedState,
    call: gateway::ChatCall,
    (model, method): (&str, Method),
    body: &Bytes,
) -> Response {
    let inbound = anyint_wire::embeddings::gemini::decode_request(body, method, model)
        .map_err(Error::from)
        .map(|request| gateway::embed::EmbedInbound {
            body,
            client: gateway::embed::EmbedClient::Gemini(method),
            request,
        });
    let (result, log) = gateway::embed::embed(state, call, inbound).await;
    super::finish(result.unwrap_or_else(render_error), log, FAMILY)
}
