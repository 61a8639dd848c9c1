//! `GET /{v1beta,v1}/models` and `GET /{v1beta,v1}/models/{model}` in the
//! Gemini shape: `Model` objects named `models/<id>`, paged with
//! `pageSize` / `pageToken` over a fixed list.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::error::GoogleError;
use crate::util::json_response;

/// `(id, display name, description, input limit, output limit, thinking)`.
const MODELS: &[(&str, &str, &str, u64, u64, bool)] = &[
    (
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        "Stable release of Gemini 2.5 Pro",
        1_048_576,
        65_536,
        true,
    ),
    (
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        "Stable version of Gemini 2.5 Flash, our mid-size multimodal model",
        1_048_576,
        65_536,
        true,
    ),
    (
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        "Stable version of Gemini 2.5 Flash-Lite",
        1_048_576,
        65_536,
        true,
    ),
    (
        "gemini-2.0-flash",
        "Gemini 2.0 Flash",
        "Gemini 2.0 Flash",
        1_048_576,
        8_192,
        false,
    ),
    (
        "gemini-embedding-001",
        "Gemini Embedding 001",
        "Obtain a distributed representation of a text.",
        2_048,
        1,
        false,
    ),
];
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

type Model = (&'static str, &'static str, &'static str, u64, u64, bool);

fn model_json(&(id, name, description, input, output, thinking): &Model) -> Value {
    let methods = if id.contains("embedding") {
        json!([
            "embedContent",
            "countTextTokens",
            "countTokens",
            "asyncBatchEmbedContent"
        ])
    } else {
        json!([
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent"
        ])
    };
    let mut m = json!({
        "name": format!("models/{id}"),
        "version": "001",
        "displayName": name,
        "description": description,
        "inputTokenLimit": input,
        "outputTokenLimit": output,
        "supportedGenerationMethods": methods,
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    });
    if thinking {
        m["thinking"] = json!(true);
    }
    m
}

/// `pageSize` → `page_size`, for query parameters given either way.
fn snake_param(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One page of the list. Page tokens are the offset of the next page.
pub(crate) fn list(query: &[(String, String)], array: bool) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name || *k == snake_param(name))
            .map(|(_, v)| v.as_str())
    };
    let size = match param("pageSize").map(str::parse::<usize>) {
        None | Some(Ok(0)) => DEFAULT_PAGE,
        Some(Ok(n)) => n.min(MAX_PAGE),
        Some(Err(_)) => {
            return GoogleError::invalid("Invalid value for pageSize.").into_response(array);
        }
    };
    let start = match param("pageToken")
        .filter(|t| !t.is_empty())
        .map(str::parse::<usize>)
    {
        None => 0,
        Some(Ok(n)) if n <= MODELS.len() => n,
        Some(_) => return GoogleError::invalid("Invalid page token.").into_response(array),
    };
    let page: Vec<Value> = MODELS
        .iter()
        .skip(start)
        .take(size)
        .map(model_json)
        .collect();
    let mut body = json!({"models": page});
    let next = start + size;
    if next < MODELS.len() {
        body["nextPageToken"] = json!(next.to_string());
    }
    json_response(StatusCode::OK, &body)
}

/// One model by id (with or without the `models/` prefix).
pub(crate) fn retrieve(id: &str, version: &str) -> Response {
    let id = id.strip_prefix("models/").unwrap_or(id);
    match MODELS.iter().find(|m| m.0 == id) {
        Some(m) => json_response(StatusCode::OK, &model_json(m)),
        None => GoogleError {
            code: StatusCode::NOT_FOUND,
            status: "NOT_FOUND",
            message: format!("Model is not found: models/{id} for api version {version}"),
            details: Vec::new(),
        }
        .into_response(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieve_known_and_unknown() {
        assert_eq!(
            retrieve("gemini-2.5-flash", "v1beta").status(),
            StatusCode::OK
        );
        assert_eq!(
            retrieve("models/gemini-2.5-pro", "v1").status(),
            StatusCode::OK
        );
        assert_eq!(retrieve("gpt-4o", "v1").status(), StatusCode::NOT_FOUND);
        let bad = vec![("pageToken".to_owned(), "x".to_owned())];
        assert_eq!(list(&bad, false).status(), StatusCode::BAD_REQUEST);
    }
}
