//! Gemini `models/{model}:embedContent` (one content, one vector) and `:batchEmbedContents`
//! (`requests[]`, at most [`GEMINI_MAX_BATCH`]), both ways. Field names are accepted in
//! lowerCamel and snake_case, as Google's parser does. Gemini answers carry no token usage.

use serde_json::{Map, Value, json};

use super::{EmbedRequest, EmbedResponse, Encoding, GEMINI_MAX_BATCH, Input, Item};
use crate::DecodeError;

/// Which of the two methods a request or answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `:embedContent`: one content, `{"embedding":{"values"}}`.
    Single,
    /// `:batchEmbedContents`: `requests[]`, `{"embeddings":[{"values"}]}`.
    Batch,
}

impl Method {
    /// The URL action name.
    pub fn action(self) -> &'static str {
        match self {
            Self::Single => "embedContent",
            Self::Batch => "batchEmbedContents",
        }
    }
}

/// Google's wording for an oversized batch.
pub const BATCH_TOO_LARGE: &str =
    "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch";

/// A field given in lowerCamel or snake_case.
fn field<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn string(obj: &Map<String, Value>, camel: &str, snake: &str) -> Option<String> {
    field(obj, camel, snake)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One `EmbedContentRequest`; `at` names it in errors (`requests[3].`).
fn request_item(v: &Value, at: &str) -> Result<Item, DecodeError> {
    let obj = v.as_object().ok_or_else(|| {
        DecodeError::field(
            "requests",
            format!("* {at}must be an EmbedContentRequest object"),
        )
    })?;
    let content = obj
        .get("content")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            DecodeError::field(
                "content",
                format!("* {at}content: contents is not specified"),
            )
        })?;
    let parts = content
        .get("parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            DecodeError::field(
                "content",
                format!("* {at}content.parts: contents.parts must not be empty"),
            )
        })?;
    let mut texts = Vec::with_capacity(parts.len());
    let mut non_text = false;
    for p in parts {
        match p.get("text").and_then(Value::as_str) {
            Some(t) => texts.push(t),
            None => non_text = true,
        }
    }
    let dimensions = match field(obj, "outputDimensionality", "output_dimensionality") {
        None => None,
        Some(d) => Some(super::positive_u32(d).ok_or_else(|| {
            DecodeError::field(
                "outputDimensionality",
                format!("* {at}output_dimensionality: must be a positive integer"),
            )
        })?),
    };
    Ok(Item {
        input: Input::Text(texts.join("\n")),
        task_type: string(obj, "taskType", "task_type"),
        title: string(obj, "title", "title"),
        dimensions,
        non_text,
    })
}

/// Decodes a client's `:embedContent` or `:batchEmbedContents` body for `model` (the URL's).
/// A batch over [`GEMINI_MAX_BATCH`] requests is refused with Google's text. Entries' own
/// `model` fields are not checked: the URL's model serves the call.
pub fn decode_request(
    body: &[u8],
    method: Method,
    model: &str,
) -> Result<EmbedRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("Invalid JSON payload received. {e}")))?;
    if !v.is_object() {
        return Err(DecodeError::body(
            "Invalid JSON payload received. The request must be a JSON object.",
        ));
    }
    let items = match method {
        Method::Single => vec![request_item(&v, "EmbedContentRequest.")?],
        Method::Batch => {
            let requests = v
                .get("requests")
                .and_then(Value::as_array)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    DecodeError::field(
                        "requests",
                        "* BatchEmbedContentsRequest.requests: requests is not specified",
                    )
                })?;
            if requests.len() > GEMINI_MAX_BATCH {
                return Err(DecodeError::field("requests", BATCH_TOO_LARGE));
            }
            requests
                .iter()
                .enumerate()
                .map(|(i, r)| request_item(r, &format!("BatchEmbedContentsRequest.requests[{i}].")))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(EmbedRequest {
        model: model.to_owned(),
        items,
        encoding: Encoding::Float,
    })
}

/// The `EmbedContentRequest` of one text item for `model`.
fn entry(item: &Item, text: &str, model: &str) -> Value {
    let mut e = Map::new();
    e.insert("model".into(), json!(format!("models/{model}")));
    e.insert(
        "content".into(),
        json!({"role": "user", "parts": [{"text": text}]}),
    );
    if let Some(t) = &item.task_type {
        e.insert("taskType".into(), json!(t));
    }
    if let Some(t) = &item.title {
        e.insert("title".into(), json!(t));
    }
    if let Some(d) = item.dimensions {
        e.insert("outputDimensionality".into(), json!(d));
    }
    Value::Object(e)
}

/// Encodes `req` for a Gemini upstream serving `model`: `batchEmbedContents` bodies of at most
/// [`GEMINI_MAX_BATCH`] entries, one entry per input (never several texts in one content, which
/// would merge them into one vector), in order. Token arrays cannot be sent.
pub fn encode_batches(req: &EmbedRequest, model: &str) -> Result<Vec<Vec<u8>>, DecodeError> {
    let entries = req
        .items
        .iter()
        .map(|item| match &item.input {
            Input::Text(t) => Ok(entry(item, t, model)),
            Input::Tokens(_) => Err(DecodeError::field(
                "input",
                format!(
                    "token input (arrays of token ids) is not supported for the model `{}`: its upstream takes text and the gateway has no tokenizer to turn ids back into text; send the input as strings (LangChain OpenAIEmbeddings: check_embedding_ctx_length=False)",
                    req.model
                ),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries
        .chunks(GEMINI_MAX_BATCH)
        .map(|chunk| json!({"requests": chunk}).to_string().into_bytes())
        .collect())
}

fn values(v: &Value) -> Option<Vec<f64>> {
    v.get("values")?
        .as_array()?
        .iter()
        .map(Value::as_f64)
        .collect()
}

/// Decodes an upstream's answer to either method into vectors in order (Gemini reports no
/// usage).
pub fn decode_response(body: &[u8]) -> Result<EmbedResponse, DecodeError> {
    let bad = |what: &str| DecodeError::body(format!("the embedding answer {what}"));
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    let vectors = if let Some(list) = v.get("embeddings").and_then(Value::as_array) {
        list.iter()
            .map(|e| values(e).ok_or_else(|| bad("has an embedding without values")))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let one = v
            .get("embedding")
            .and_then(values)
            .ok_or_else(|| bad("has no embeddings"))?;
        vec![one]
    };
    Ok(EmbedResponse {
        vectors,
        prompt_tokens: None,
    })
}

/// Encodes an answer for a Gemini client: `{"embedding":{"values"}}` for one content,
/// `{"embeddings":[…]}` for a batch.
pub fn encode_response(resp: &EmbedResponse, method: Method) -> Vec<u8> {
    let out = match method {
        Method::Single => {
            json!({"embedding": {"values": resp.vectors.first().cloned().unwrap_or_default()}})
        }
        Method::Batch => json!({
            "embeddings": resp.vectors.iter().map(|v| json!({"values": v})).collect::<Vec<_>>(),
        }),
    };
    out.to_string().into_bytes()
}

/// A Gemini client's body for a Gemini upstream serving `model`: unchanged but for each
/// `model` field (top level and per batch entry), which names the upstream's model.
pub fn rewrite_models(body: &[u8], model: &str) -> Result<Vec<u8>, DecodeError> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("Invalid JSON payload received. {e}")))?;
    let name = json!(format!("models/{model}"));
    if let Some(obj) = v.as_object_mut()
        && obj.contains_key("model")
    {
        obj.insert("model".into(), name.clone());
    }
    if let Some(requests) = v.get_mut("requests").and_then(Value::as_array_mut) {
        for r in requests {
            if let Some(obj) = r.as_object_mut() {
                obj.insert("model".into(), name.clone());
            }
        }
    }
    Ok(v.to_string().into_bytes())
}
