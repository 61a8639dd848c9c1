//! The Responses API's state, around the ordinary chat pipeline. Upstreams see only stateless
//! requests:
//!
//! - a request that continues a stored conversation (`previous_response_id`) is rebuilt
//!   before routing: the stored input items, the stored response's output items, then this
//!   request's input; `previous_response_id` removed. That works for every upstream kind.
//!   An unknown, expired or other account's ID is OpenAI's 400 `previous_response_not_found`;
//! - a response the client asked to store (`store`, true by default) is written with the
//!   whole conversation it answered before the client sees it end (for streams, before the
//!   terminal event goes out), so a follow-up finds it on any instance;
//! - the gateway mints the response ID (`resp_…`) on translated routes; a native Responses
//!   upstream's own ID is kept on passthrough.

use std::sync::Arc;

use anyint_wire::responses::{Echo, RequestHead};
use futures_util::FutureExt;
use serde_json::Value;

use super::relay::Keeper;
use crate::error::Error;
use crate::state::AppState;
use crate::store::{ApiKey, Store, StoredResponse};

/// A Responses request made ready for routing.
pub struct Prepared {
    /// The stateless body rebuilt from a stored conversation, when the request continued one.
    pub rebuilt: Option<bytes::Bytes>,
    /// What the Response object echoes, with the response ID the gateway minted.
    pub echo: Echo,
    /// The conversation to store with the answer, when the client asked to store it.
    pub keep: Option<Conversation>,
}

/// The input items a response answers (history included), each with an `id`, kept with the
/// response for `previous_response_id` and `input_items`.
#[derive(Clone)]
pub struct Conversation {
    items: Vec<Value>,
    retention: std::time::Duration,
    store: Arc<dyn Store>,
    account: String,
    key_id: String,
}

/// Reads the request, rebuilds its history when it continues a stored response, and mints
/// its response ID.
pub async fn prepare(state: &AppState, key: &ApiKey, body: &[u8]) -> Result<Prepared, Error> {
    let head = RequestHead::decode(body)?;
    let mut echo = Echo::from_head(
        &head,
        format!("resp_{}", hex::encode(crate::auth::random_bytes::<16>())),
        crate::clock::unix_secs(),
    );
    // A stored response must carry its reasoning state (OpenAI's blob, or the gateway's for
    // Claude and Gemini signatures) so a continuation replays it; the client sees it too.
    echo.include_encrypted |= head.store;
    let mut items = head.input_items()?;
    let rebuilt = match &head.previous_response_id {
        None => None,
        Some(previous) => {
            let stored = state
                .store
                .response(previous, &key.account, crate::clock::unix_millis())
                .await?
                .ok_or_else(|| previous_not_found(previous))?;
            let mut history = stored.input.as_array().cloned().unwrap_or_default();
            history.extend(
                stored
                    .response
                    .get("output")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            history.append(&mut items);
            items = history;
            Some(bytes::Bytes::from(
                head.encode_with_input(&head.model, &items),
            ))
        }
    };
    let keep = head.store.then(|| Conversation {
        items: with_item_ids(items),
        retention: state.config.responses.retention,
        store: state.store.clone(),
        account: key.account.clone(),
        key_id: key.id.clone(),
    });
    Ok(Prepared {
        rebuilt,
        echo,
        keep,
    })
}

/// OpenAI's answer for a `previous_response_id` it does not have.
fn previous_not_found(id: &str) -> Error {
    let shown: String = id.chars().filter(|c| !c.is_control()).take(64).collect();
    Error::invalid(
        Some("previous_response_id"),
        format!(
            "Previous response with id '{shown}' not found. Stored responses are kept for the gateway's retention time and only for the account that created them; send the whole conversation in `input` (with `store: false`) instead."
        ),
    )
    .with_code("previous_response_not_found")
}

impl Conversation {
    /// Stores `response` (a Response object) for the public model `model`. A failure is
    /// logged, not returned: the client already has its answer; only a later
    /// `previous_response_id` will miss it.
    pub async fn keep(self, model: String, response: Value) {
        let Some(id) = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            tracing::warn!("a stored Responses answer had no id; it was not stored");
            return;
        };
        let now = crate::clock::unix_millis();
        let ttl = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let record = StoredResponse {
            id,
            account: self.account,
            key_id: self.key_id,
            model,
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl),
            input: Value::Array(self.items),
            response,
        };
        if let Err(e) = self.store.put_response(&record).await {
            tracing::warn!(error = %e, response_id = %record.id, "storing a Responses answer failed; previous_response_id will not find it");
        }
    }

    /// The relay's keeper: stores the stream's final Response object before its terminal event
    /// reaches the client.
    pub fn keeper(self, model: String) -> Keeper {
        Box::new(move |response| self.keep(model, response).boxed())
    }
}

/// Gives each input item an `id` (`msg_…`, `fc_…`, …) where the client sent none, so
/// `input_items` can page through them, and writes messages in the typed form the API lists
/// them in (`type: "message"`, content parts rather than a bare string).
fn with_item_ids(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .map(|mut item| {
            if let Some(obj) = item.as_object_mut()
                && obj.get("role").is_some()
                && obj.get("type").is_none_or(|t| t == "message")
            {
                obj.insert("type".into(), Value::String("message".into()));
                if let Some(Value::String(text)) = obj.get("content") {
                    let part = if obj.get("role").and_then(Value::as_str) == Some("assistant") {
                        "output_text"
                    } else {
                        "input_text"
                    };
                    let text = text.clone();
                    obj.insert(
                        "content".into(),
                        serde_json::json!([{"type": part, "text": text}]),
                    );
                }
                obj.entry("status")
                    .or_insert_with(|| Value::String("completed".into()));
            }
            if item.get("id").and_then(Value::as_str).is_none()
                && let Some(obj) = item.as_object_mut()
            {
                let prefix = match obj.get("type").and_then(Value::as_str) {
                    Some("function_call") => "fc_",
                    Some("function_call_output") => "fco_",
                    Some("reasoning") => "rs_",
                    Some("custom_tool_call") => "ctc_",
                    Some("custom_tool_call_output") => "ctco_",
                    Some("web_search_call") => "ws_",
                    _ => "msg_",
                };
                obj.insert("id".into(), Value::String(crate::auth::new_id(prefix)));
            }
            item
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn missing_previous_response_is_the_apis_400() {
        let e = previous_not_found("resp_x\u{0}y");
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(e.code, Some("previous_response_not_found"));
        assert_eq!(e.param, Some("previous_response_id"));
        assert!(e.message.contains("'resp_xy'"), "{}", e.message);
    }

    #[test]
    fn items_get_ids_by_type_and_keep_their_own() {
        let items = with_item_ids(vec![
            serde_json::json!({"role": "user", "content": "hi"}),
            serde_json::json!({"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}),
            serde_json::json!({"type": "message", "id": "msg_mine", "role": "user", "content": "x"}),
        ]);
        let ids: Vec<&str> = items
            .iter()
            .map(|i| i["id"].as_str().unwrap_or(""))
            .collect();
        assert!(ids[0].starts_with("msg_") && ids[1].starts_with("fc_"));
        assert_eq!(ids[2], "msg_mine");
        // The easy form is listed typed, as the API lists it.
        assert_eq!(items[0]["type"], "message");
        assert_eq!(
            items[0]["content"],
            serde_json::json!([{"type": "input_text", "text": "hi"}])
        );
        assert_eq!(items[1].get("content"), None);
    }
}
