//! Pieces both the request and the response codecs read or write: an assistant message's
//! text, tool calls and reasoning appear in request history and in responses alike.

use serde_json::Value;

use crate::DecodeError;
use crate::canonical::Part;

pub(super) fn field_err(param: &'static str, msg: impl Into<String>) -> DecodeError {
    DecodeError::field(param, msg)
}

/// The `tool_calls` of an assistant message (request history or response), in order.
pub(super) fn tool_calls(message: &Value) -> impl Iterator<Item = Part> + '_ {
    let text =
        |v: Option<&Value>, default: &str| v.and_then(Value::as_str).unwrap_or(default).to_owned();
    message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(move |call| {
            let f = call.get("function");
            Part::ToolCall {
                id: text(call.get("id"), ""),
                name: text(f.and_then(|f| f.get("name")), ""),
                arguments: text(f.and_then(|f| f.get("arguments")), "{}"),
            }
        })
}

pub(super) fn text_of(p: &Part) -> Option<&str> {
    match p {
        Part::Text { text, .. } => Some(text),
        _ => None,
    }
}

/// The `reasoning_content` of an assistant message (request history or response), as a
/// reasoning part; OpenAI-compatible reasoning carries no signature.
pub(super) fn reasoning_part(message: &Value) -> Option<Part> {
    message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(|r| Part::Reasoning {
            text: r.to_owned(),
            signature: None,
            redacted: None,
        })
}
