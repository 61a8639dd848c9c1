//! OpenAI `POST /v1/embeddings`: the client's request (four `input` shapes, `encoding_format`,
//! `dimensions`) and the answer (`data` in input order, `usage` always present), both ways.

use serde_json::{Value, json};

use super::{EmbedRequest, EmbedResponse, Encoding, Input, Item, OPENAI_MAX_INPUTS};
use crate::DecodeError;

/// OpenAI's wording for an empty input (observed).
const INPUT_INVALID: &str = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";

fn input_error(message: impl Into<String>) -> DecodeError {
    DecodeError::field("input", message)
}

/// One element of an `input` array: a string or a token array.
fn item(v: &Value) -> Result<Input, DecodeError> {
    match v {
        Value::String(s) if s.is_empty() => Err(input_error(INPUT_INVALID)),
        Value::String(s) => Ok(Input::Text(s.clone())),
        Value::Array(ids) => tokens(ids),
        _ => Err(input_error(
            "Invalid 'input': each element must be a string or an array of token ids.",
        )),
    }
}

/// A token array: non-empty, non-negative integers.
fn tokens(ids: &[Value]) -> Result<Input, DecodeError> {
    if ids.is_empty() {
        return Err(input_error(INPUT_INVALID));
    }
    ids.iter()
        .map(|v| {
            v.as_u64().ok_or_else(|| {
                input_error("Invalid 'input': token ids must be non-negative integers.")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Input::Tokens)
}

/// The inputs of `input`: a string, a string array, one token array, or token arrays.
fn inputs(v: &Value) -> Result<Vec<Input>, DecodeError> {
    match v {
        Value::Null => Err(input_error("Missing required parameter: 'input'.")),
        Value::String(_) => Ok(vec![item(v)?]),
        Value::Array(items) if items.is_empty() => Err(input_error(INPUT_INVALID)),
        Value::Array(items) if items.len() > OPENAI_MAX_INPUTS => Err(input_error(format!(
            "Invalid 'input': array too long. Expected an array with maximum length {OPENAI_MAX_INPUTS}, but got an array with length {} instead.",
            items.len()
        ))),
        Value::Array(items) if items.iter().all(Value::is_number) => Ok(vec![tokens(items)?]),
        Value::Array(items) => items.iter().map(item).collect(),
        _ => Err(input_error(
            "Invalid 'input': expected a string, an array of strings, an array of token ids or an array of token-id arrays.",
        )),
    }
}

/// Decodes a client's `/v1/embeddings` body, with OpenAI's 400s for what the API refuses.
pub fn decode_request(body: &[u8]) -> Result<EmbedRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("the request body is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| DecodeError::body("the request body must be a JSON object"))?;
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(DecodeError::field(
                "model",
                "you must provide a model parameter",
            ));
        }
    };
    let inputs = inputs(obj.get("input").unwrap_or(&Value::Null))?;
    let encoding = match obj.get("encoding_format") {
        None | Some(Value::Null) => Encoding::Float,
        Some(Value::String(f)) if f == "float" => Encoding::Float,
        Some(Value::String(f)) if f == "base64" => Encoding::Base64,
        Some(_) => {
            return Err(DecodeError::field(
                "encoding_format",
                "Invalid value for 'encoding_format': supported values are 'float' and 'base64'.",
            ));
        }
    };
    let dimensions = match obj.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(d) => Some(super::positive_u32(d).ok_or_else(|| {
            DecodeError::field(
                "dimensions",
                "Invalid 'dimensions': expected an integer of at least 1.",
            )
        })?),
    };
    Ok(EmbedRequest {
        model,
        items: inputs
            .into_iter()
            .map(|input| Item {
                input,
                task_type: None,
                title: None,
                dimensions,
                non_text: false,
            })
            .collect(),
        encoding,
    })
}

/// Encodes `req` for an OpenAI upstream serving `model`: texts (token arrays as they are),
/// `encoding_format: float`, and `dimensions` when asked. Gemini's task hints have no
/// counterpart and are left out; inputs that are not text are refused.
pub fn encode_request(req: &EmbedRequest, model: &str) -> Result<Vec<u8>, DecodeError> {
    if req.items.iter().any(|i| i.non_text) {
        return Err(DecodeError::field(
            "content",
            "only text parts can be embedded by this model",
        ));
    }
    let input: Vec<Value> = req
        .items
        .iter()
        .map(|i| match &i.input {
            Input::Text(t) => json!(t),
            Input::Tokens(ids) => json!(ids),
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("model".into(), json!(model));
    body.insert("input".into(), Value::Array(input));
    body.insert("encoding_format".into(), json!("float"));
    if let Some(d) = req.dimensions()? {
        body.insert("dimensions".into(), json!(d));
    }
    Ok(Value::Object(body).to_string().into_bytes())
}

/// A vector as the API writes it: an array of numbers or a base64 string.
fn vector(v: &Value) -> Option<Vec<f64>> {
    match v {
        Value::Array(xs) => xs.iter().map(Value::as_f64).collect(),
        Value::String(s) => super::decode_base64(s),
        _ => None,
    }
}

/// Decodes an upstream's answer: vectors in `index` order (the array order when `index` is
/// missing) and `usage.prompt_tokens` when present.
pub fn decode_response(body: &[u8]) -> Result<EmbedResponse, DecodeError> {
    let bad = |what: &str| DecodeError::body(format!("the embeddings answer {what}"));
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no data array"))?;
    let mut indexed = data
        .iter()
        .enumerate()
        .map(|(pos, d)| {
            let index = d
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(pos);
            let values = d
                .get("embedding")
                .and_then(vector)
                .ok_or_else(|| bad("has an embedding that is not a vector"))?;
            Ok((index, values))
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    indexed.sort_by_key(|(i, _)| *i);
    Ok(EmbedResponse {
        vectors: indexed.into_iter().map(|(_, v)| v).collect(),
        prompt_tokens: prompt_tokens(&v),
    })
}

fn prompt_tokens(v: &Value) -> Option<u64> {
    v.get("usage")
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64)
}

/// `usage.prompt_tokens` of an answer passed through unchanged.
pub fn usage_from_response(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Usage {
        prompt_tokens: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<Head>(body)
        .ok()
        .and_then(|h| h.usage)
        .and_then(|u| u.prompt_tokens)
}

/// Encodes an answer for an OpenAI client: `data` in input order with `index`, each vector as
/// floats or base64 per `encoding`, `model`, and `usage` with `prompt_tokens` = `total_tokens`.
pub fn encode_response(
    resp: &EmbedResponse,
    model: &str,
    encoding: Encoding,
    tokens: u64,
) -> Vec<u8> {
    let data: Vec<Value> = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = match encoding {
                Encoding::Float => json!(v),
                Encoding::Base64 => json!(super::encode_base64(v)),
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
    .to_string()
    .into_bytes()
}
