//! What a Response object repeats from its request, and the ids the gateway gives it.

use serde_json::{Map, Value, json};

use super::head::RequestHead;
use super::tools::{ClientTool, ToolNames, names_of};
use super::usage::encode_usage;
use crate::{DecodeError, Usage};

/// A field's value when the request leaves it out.
type Default = fn() -> Value;

/// The request fields a Response object echoes, in the API's names. Missing ones get the
/// defaults real responses show (§3).
const ECHOED: &[(&str, Default)] = &[
    ("instructions", || Value::Null),
    ("max_output_tokens", || Value::Null),
    ("max_tool_calls", || Value::Null),
    ("metadata", || json!({})),
    ("parallel_tool_calls", || json!(true)),
    ("previous_response_id", || Value::Null),
    ("prompt_cache_key", || Value::Null),
    ("reasoning", || json!({"effort": null, "summary": null})),
    ("safety_identifier", || Value::Null),
    ("service_tier", || json!("default")),
    ("store", || json!(true)),
    ("temperature", || json!(1)),
    (
        "text",
        || json!({"format": {"type": "text"}, "verbosity": "medium"}),
    ),
    ("tool_choice", || json!("auto")),
    ("tools", || json!([])),
    ("top_logprobs", || json!(0)),
    ("top_p", || json!(1)),
    ("truncation", || json!("disabled")),
    ("user", || Value::Null),
];

/// Everything a Responses client encoder needs from the client's request: the response id the
/// gateway minted, its creation time, the request fields the Response object echoes, the names
/// that restore custom and namespaced tools' calls, and whether reasoning items carry
/// `encrypted_content`.
#[derive(Clone, Debug)]
pub struct Echo {
    /// The response id (`resp_…`), minted by the gateway. Item ids derive from it.
    pub id: String,
    /// Unix seconds of the response's creation.
    pub created_at: i64,
    /// Whether reasoning items carry `encrypted_content` (OpenAI's blob, or the gateway's for
    /// another provider's reasoning). From `include: ["reasoning.encrypted_content"]`; a
    /// gateway that stores responses to replay them for `previous_response_id` may turn it on
    /// for its stored copy.
    pub include_encrypted: bool,
    /// Whether `web_search_call` items list their `action.sources` (`include:
    /// ["web_search_call.action.sources"]`).
    pub include_sources: bool,
    fields: Map<String, Value>,
    names: ToolNames,
}

impl Echo {
    /// The echo of the request `body` for the response `id` created at `created_at`.
    pub fn new(body: &[u8], id: impl Into<String>, created_at: i64) -> Result<Self, DecodeError> {
        let head = RequestHead::decode(body)?;
        Ok(Self::from_head(&head, id, created_at))
    }

    /// [`new`](Self::new) from an already decoded head.
    pub fn from_head(head: &RequestHead<'_>, id: impl Into<String>, created_at: i64) -> Self {
        let raw = |k: &str| {
            head.raw()
                .get(k)
                .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                .filter(|v| !v.is_null())
        };
        let mut fields = Map::new();
        for (key, default) in ECHOED {
            let mut value = raw(key).unwrap_or_else(default);
            match *key {
                // Objects the API fills in: the client's keys over the defaults.
                "reasoning" | "text" => {
                    if let (Value::Object(mut base), Value::Object(given)) = (default(), value) {
                        base.extend(given);
                        value = Value::Object(base);
                    } else {
                        value = default();
                    }
                }
                // The tier actually used; `auto` resolves to the default tier.
                "service_tier" if value == "auto" => value = default(),
                _ => {}
            }
            fields.insert((*key).to_owned(), value);
        }
        Self {
            id: id.into(),
            created_at,
            include_encrypted: head.include_encrypted,
            include_sources: head.include_sources,
            names: names_of(raw("tools").as_ref()),
            fields,
        }
    }

    /// The client's tool behind canonical function `name`, when it is custom or namespaced.
    pub(super) fn client_tool(&self, name: &str) -> Option<&ClientTool> {
        self.names.get(name)
    }

    /// The id of output item `index` of kind `prefix` (`msg`, `fc`, `ctc`, `rs`, `ws`): stable for
    /// a response, so stream events and the final object agree.
    pub(super) fn item_id(&self, prefix: &str, index: usize) -> String {
        let base = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{base}_{index}")
    }

    /// The Response object with `status`, `output` and `usage` (the rest echoed).
    pub(super) fn response(
        &self,
        model: &str,
        status: Status<'_>,
        output: Vec<Value>,
        usage: Option<&Usage>,
    ) -> Value {
        let mut o = self.fields.clone();
        o.insert("id".into(), json!(self.id));
        o.insert("object".into(), json!("response"));
        o.insert("created_at".into(), json!(self.created_at));
        o.insert("model".into(), json!(model));
        o.insert("background".into(), json!(false));
        o.insert("output".into(), Value::Array(output));
        o.insert("usage".into(), usage.map_or(Value::Null, encode_usage));
        let (name, incomplete, error, completed_at) = match status {
            Status::InProgress => ("in_progress", Value::Null, Value::Null, Value::Null),
            Status::Completed => (
                "completed",
                Value::Null,
                Value::Null,
                json!(self.created_at),
            ),
            Status::Incomplete(reason) => (
                "incomplete",
                json!({"reason": reason}),
                Value::Null,
                Value::Null,
            ),
            Status::Failed { code, message } => (
                "failed",
                Value::Null,
                json!({"code": code, "message": message}),
                Value::Null,
            ),
        };
        o.insert("status".into(), json!(name));
        o.insert("incomplete_details".into(), incomplete);
        o.insert("error".into(), error);
        o.insert("completed_at".into(), completed_at);
        Value::Object(o)
    }
}

/// A Response object's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status<'a> {
    /// Still streaming (`response.created`, `.in_progress`).
    InProgress,
    /// Finished normally.
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'a str),
    /// Failed with an error.
    Failed {
        /// The error code.
        code: &'a str,
        /// The error message.
        message: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_request_fields_over_defaults() {
        let body = br#"{"model":"m","input":"x","instructions":"I","tools":[{"type":"custom","name":"c"}],
            "reasoning":{"effort":"low"},"text":{"verbosity":"low"},"service_tier":"auto","store":false,
            "metadata":{"k":"v"},"include":["reasoning.encrypted_content"],"temperature":null}"#;
        let e = Echo::new(body, "resp_abc", 5).unwrap();
        assert!(e.include_encrypted);
        assert_eq!(e.item_id("fc", 2), "fc_abc_2");
        assert!(e.client_tool("c").is_some_and(|t| t.custom));
        let r = e.response("pub", Status::Incomplete("max_output_tokens"), vec![], None);
        assert_eq!(r["instructions"], "I");
        assert_eq!(r["tools"], json!([{"type": "custom", "name": "c"}]));
        assert_eq!(r["reasoning"], json!({"effort": "low", "summary": null}));
        assert_eq!(
            r["text"],
            json!({"format": {"type": "text"}, "verbosity": "low"})
        );
        assert_eq!(r["service_tier"], "default");
        assert_eq!(r["store"], false);
        assert_eq!(r["temperature"], 1);
        assert_eq!(r["metadata"], json!({"k": "v"}));
        assert_eq!(
            r["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["usage"], Value::Null);
        // Every key the spec requires and real responses carry.
        for key in [
            "id",
            "object",
            "created_at",
            "status",
            "background",
            "completed_at",
            "error",
            "incomplete_details",
            "instructions",
            "max_output_tokens",
            "max_tool_calls",
            "model",
            "output",
            "parallel_tool_calls",
            "previous_response_id",
            "prompt_cache_key",
            "reasoning",
            "safety_identifier",
            "service_tier",
            "store",
            "temperature",
            "text",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "truncation",
            "usage",
            "user",
            "metadata",
        ] {
            assert!(r.get(key).is_some(), "{key}");
        }
    }
}
