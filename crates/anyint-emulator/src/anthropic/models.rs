//! `GET /v1/models` and `GET /v1/models/{id}` in Anthropic's shape (served
//! when the request carries `anthropic-version`): `ModelInfo` objects with
//! `first_id`/`last_id`/`has_more` paging over a fixed list.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::error::AnthropicError;
use crate::util::json_response;

/// `(id, display_name, created_at)`, newest first like the API lists them.
const MODELS: &[(&str, &str, &str)] = &[
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-15T00:00:00Z",
    ),
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "2025-08-05T00:00:00Z",
    ),
    (
        "claude-opus-4-20250514",
        "Claude Opus 4",
        "2025-05-22T00:00:00Z",
    ),
    (
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        "2025-05-22T00:00:00Z",
    ),
    (
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        "2024-10-22T00:00:00Z",
    ),
];
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

fn model_json(&(id, name, created): &(&str, &str, &str)) -> Value {
    json!({"type": "model", "id": id, "display_name": name, "created_at": created})
}

/// The list page selected by `limit`, `after_id` and `before_id`.
pub(crate) fn list(query: &[(String, String)], request_id: &str) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Ok(0) => {
                return AnthropicError::expected("limit", "greater than or equal to 1")
                    .into_response(request_id);
            }
            Ok(_) => {
                return AnthropicError::expected("limit", "less than or equal to 1000")
                    .into_response(request_id);
            }
            Err(_) => {
                return AnthropicError::expected("limit", "a valid integer")
                    .into_response(request_id);
            }
        },
    };
    let position = |id: &str| MODELS.iter().position(|m| m.0 == id);
    let page: Vec<&(&str, &str, &str)> = if let Some(before) = param("before_id") {
        let end = position(before).unwrap_or(0);
        let all = MODELS.get(..end).unwrap_or_default();
        all.iter().skip(all.len().saturating_sub(limit)).collect()
    } else {
        let start =
            param("after_id").map_or(0, |after| position(after).map_or(MODELS.len(), |p| p + 1));
        MODELS.iter().skip(start).take(limit).collect()
    };
    let has_more = match (page.first(), page.last()) {
        (Some(first), Some(last)) => {
            if param("before_id").is_some() {
                position(first.0).is_some_and(|p| p > 0)
            } else {
                position(last.0).is_some_and(|p| p + 1 < MODELS.len())
            }
        }
        _ => false,
    };
    let body = json!({
        "data": page.iter().map(|m| model_json(m)).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|m| m.0),
        "last_id": page.last().map(|m| m.0),
    });
    json_response(StatusCode::OK, &body)
}

/// One model by id or by its undated alias (`claude-sonnet-4-5`).
pub(crate) fn retrieve(id: &str, request_id: &str) -> Response {
    let found = MODELS.iter().find(|m| {
        m.0 == id
            || m.0
                .rsplit_once('-')
                .is_some_and(|(alias, date)| alias == id && date.len() == 8)
    });
    match found {
        Some(m) => json_response(StatusCode::OK, &model_json(m)),
        None => AnthropicError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found_error",
            message: format!("model: {id}"),
        }
        .into_response(request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve() {
        assert_eq!(retrieve("claude-sonnet-4-5", "r").status(), StatusCode::OK);
        assert_eq!(
            retrieve("claude-sonnet-4-5-20250929", "r").status(),
            StatusCode::OK
        );
        assert_eq!(retrieve("gpt-4o", "r").status(), StatusCode::NOT_FOUND);
        let q = vec![("limit".to_owned(), "0".to_owned())];
        assert_eq!(list(&q, "r").status(), StatusCode::BAD_REQUEST);
    }
}
