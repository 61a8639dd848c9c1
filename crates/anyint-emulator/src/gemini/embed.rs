//! `models/{model}:embedContent` and `:batchEmbedContents`: deterministic vectors (the same
//! text gives the same vector), [`FULL_DIMENSIONS`] long like `gemini-embedding-001`, and only
//! that full length is a unit vector: `outputDimensionality` returns a prefix that is not
//! normalised, as the real API does. No usage, as the Gemini API reports none. A batch holds at
//! most 100 requests, each naming the URL's model when it names one.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::error::GoogleError;
use crate::util::{embedding_vector, json_response, short_float};

/// The vector length without `outputDimensionality`.
pub(crate) const FULL_DIMENSIONS: usize = 3072;
/// Most requests in one `batchEmbedContents`.
const MAX_BATCH: usize = 100;
/// Fields an `EmbedContentRequest` may carry (either spelling).
const FIELDS: &[&str] = &[
    "model",
    "content",
    "taskType",
    "task_type",
    "title",
    "outputDimensionality",
    "output_dimensionality",
];

/// One request's vector, or the 400 explaining what is wrong with it. `at` is its path
/// prefix in messages; `model` the URL's model (fault suffix removed).
fn one(v: &Value, at: &str, model: &str) -> Result<Vec<f32>, GoogleError> {
    let obj: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| GoogleError::payload("Expected an object."))?;
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(GoogleError::payload(&format!(
            "Unknown name \"{unknown}\" at '{}': Cannot find field.",
            at.trim_end_matches('.')
        )));
    }
    if let Some(m) = obj.get("model").and_then(Value::as_str) {
        let named = m.strip_prefix("models/").unwrap_or(m);
        let (named, _) = crate::fault::split_model(named);
        if named != model {
            return Err(GoogleError::field(
                &format!("{at}model"),
                &format!(
                    "the request's model `{m}` must be the model named in the URL (`models/{model}`)"
                ),
            ));
        }
    }
    let parts = obj
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| GoogleError::field(&format!("{at}content"), "contents is not specified"))?;
    let text: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    if text.is_empty() {
        return Err(GoogleError::field(
            &format!("{at}content.parts"),
            "this model embeds text parts only",
        ));
    }
    let dims = match obj
        .get("outputDimensionality")
        .or_else(|| obj.get("output_dimensionality"))
    {
        None | Some(Value::Null) => FULL_DIMENSIONS,
        Some(d) => d
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| (1..=FULL_DIMENSIONS).contains(d))
            .ok_or_else(|| {
                GoogleError::field(
                    &format!("{at}output_dimensionality"),
                    &format!("must be between 1 and {FULL_DIMENSIONS}"),
                )
            })?,
    };
    Ok(embedding_vector(
        text.join("\n").as_bytes(),
        FULL_DIMENSIONS,
        dims,
    ))
}

fn values(v: Vec<f32>) -> Value {
    json!({"values": v.into_iter().map(short_float).collect::<Vec<_>>()})
}

/// Answers `:embedContent` (`batch` false) or `:batchEmbedContents` for `model`.
pub(crate) fn answer(json: Option<&Value>, batch: bool, model: &str) -> Response {
    let result = (|| {
        let body = json.ok_or_else(|| GoogleError::payload("Expected a JSON object."))?;
        if !batch {
            let v = one(body, "EmbedContentRequest.", model)?;
            return Ok(json!({"embedding": values(v)}));
        }
        if let Some(unknown) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| k.as_str() != "requests"))
        {
            return Err(GoogleError::payload(&format!(
                "Unknown name \"{unknown}\": Cannot find field."
            )));
        }
        let requests = body
            .get("requests")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                GoogleError::field(
                    "BatchEmbedContentsRequest.requests",
                    "requests is not specified",
                )
            })?;
        if requests.len() > MAX_BATCH {
            return Err(GoogleError::invalid(
                "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
            ));
        }
        let embeddings = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                one(
                    r,
                    &format!("BatchEmbedContentsRequest.requests[{i}]."),
                    model,
                )
                .map(values)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"embeddings": embeddings}))
    })();
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(false),
    }
}
