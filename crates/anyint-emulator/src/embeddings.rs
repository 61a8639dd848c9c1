//! `POST /v1/embeddings`: deterministic unit vectors derived from a hash of
//! each input, as float arrays or base64 little-endian f32.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::fault;
use crate::gate::{self, Incoming};
use crate::state::State;
use crate::util::{base64, embedding_vector, json_response, quarter_tokens, short_float};

const DEFAULT_DIMENSIONS: usize = 8;
const MAX_DIMENSIONS: u64 = 4096;

/// One input: the bytes its vector is derived from and its token count.
#[derive(Debug, PartialEq)]
struct Input {
    seed: Vec<u8>,
    tokens: usize,
}

#[derive(Debug)]
struct EmbedRequest {
    inputs: Vec<Input>,
    dimensions: usize,
    base64: bool,
}

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
    let incoming = Incoming {
        headers: &headers,
        body: &body,
        json: json.as_ref(),
        model_suffix: suffix,
        text: None,
        model,
        is_chat: false,
    };
    let fault = match gate::admit(&state, &incoming).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let resp = match parse(json.as_ref()) {
        Ok(req) => json_response(StatusCode::OK, &render(&req, model)),
        Err(e) => e.into_response(),
    };
    fault.decorate(resp)
}

fn parse(json: Option<&Value>) -> Result<EmbedRequest, ApiError> {
    let obj = json
        .ok_or_else(ApiError::bad_json)?
        .as_object()
        .ok_or_else(ApiError::bad_json)?;
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        None | Some(Value::Null | Value::String(_)) => return Err(ApiError::missing("model")),
        Some(v) => return Err(ApiError::invalid_type("model", "a string", v)),
    }
    let inputs = match obj.get("input") {
        None | Some(Value::Null) => return Err(ApiError::missing("input")),
        Some(v) => inputs(v)?,
    };
    let dimensions = match obj.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => match v.as_u64().filter(|d| (1..=MAX_DIMENSIONS).contains(d)) {
            Some(d) => usize::try_from(d).unwrap_or(DEFAULT_DIMENSIONS),
            None => {
                return Err(ApiError::invalid_value(
                    "dimensions",
                    format!(
                        "Invalid 'dimensions': must be an integer between 1 and {MAX_DIMENSIONS}."
                    ),
                ));
            }
        },
    };
    let base64 = match obj.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(ApiError::invalid_value(
                "encoding_format",
                "Invalid value for 'encoding_format': supported values are 'float' and 'base64'.",
            ));
        }
    };
    Ok(EmbedRequest {
        inputs,
        dimensions,
        base64,
    })
}

fn invalid_input(message: &str) -> ApiError {
    ApiError::invalid_value("input", format!("Invalid 'input': {message}"))
}

/// Accepts a string, an array of strings, an array of token ids or an array
/// of token-id arrays; rejects empty strings and empty arrays.
fn inputs(v: &Value) -> Result<Vec<Input>, ApiError> {
    let text = |s: &str| -> Result<Input, ApiError> {
        if s.is_empty() {
            return Err(invalid_input("empty string."));
        }
        Ok(Input {
            seed: s.as_bytes().to_vec(),
            tokens: quarter_tokens(s).max(1),
        })
    };
    let token_ids = |items: &[Value]| -> Result<Input, ApiError> {
        if items.is_empty() {
            return Err(invalid_input("empty array."));
        }
        if !items.iter().all(Value::is_u64) {
            return Err(invalid_input("expected token ids (integers)."));
        }
        Ok(Input {
            seed: Value::from(items).to_string().into_bytes(),
            tokens: items.len(),
        })
    };
    match v {
        Value::String(s) => Ok(vec![text(s)?]),
        Value::Array(items) if items.is_empty() => Err(invalid_input("empty array.")),
        Value::Array(items) if items.iter().all(Value::is_number) => Ok(vec![token_ids(items)?]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => text(s),
                Value::Array(ids) => token_ids(ids),
                _ => Err(invalid_input(
                    "expected a string, an array of strings or token ids.",
                )),
            })
            .collect(),
        other => Err(ApiError::invalid_type("input", "a string or array", other)),
    }
}

fn render(req: &EmbedRequest, model: &str) -> Value {
    let data: Vec<Value> = req
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = embedding_vector(&input.seed, req.dimensions, req.dimensions);
            let embedding = if req.base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64(&bytes))
            } else {
                Value::Array(v.into_iter().map(short_float).collect())
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = req.inputs.iter().map(|i| i.tokens).sum();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_inputs() {
        for bad in [json!(""), json!([]), json!(["a", ""]), json!({"x": 1})] {
            let body = json!({"model": "m", "input": bad});
            assert!(parse(Some(&body)).is_err(), "{bad}");
        }
        let missing = parse(Some(&json!({"input": "x"}))).unwrap_err();
        assert_eq!(missing.param.as_deref(), Some("model"));
    }

    #[test]
    fn renders_floats_and_base64() {
        let body = json!({"model": "m", "input": ["a", "b"], "dimensions": 4});
        let out = render(&parse(Some(&body)).unwrap(), "m");
        assert_eq!(out["data"].as_array().unwrap().len(), 2);
        assert_eq!(out["data"][1]["index"], 1);
        assert_eq!(out["data"][0]["embedding"].as_array().unwrap().len(), 4);
        assert_eq!(out["usage"]["prompt_tokens"], 2);

        let body = json!({"model": "m", "input": "a", "encoding_format": "base64"});
        let out = render(&parse(Some(&body)).unwrap(), "m");
        // 8 floats * 4 bytes = 32 bytes → 44 base64 chars.
        assert_eq!(out["data"][0]["embedding"].as_str().unwrap().len(), 44);
    }

    #[test]
    fn token_arrays_are_accepted() {
        let one = inputs(&json!([1, 2, 3])).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].tokens, 3);
        assert_eq!(inputs(&json!([[1], [2, 3]])).unwrap().len(), 2);
    }
}
