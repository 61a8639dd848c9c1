//! What the content rules read from validated messages: a content's text,
//! the last user text `T`, and the last turn's tool results.

use serde_json::Value;

/// Text of a message's content: the string, or its `text` blocks.
pub(crate) fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// `T`: the text of the last user message that has any text.
pub(crate) fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| text_of(m.get("content")))
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// When the last message is a user turn with `tool_result` blocks: their
/// contents (text blocks concatenated), joined by newlines.
pub(crate) fn last_tool_result(messages: &[Value]) -> Option<String> {
    let last = messages.last()?;
    if last.get("role").and_then(Value::as_str) != Some("user") {
        return None;
    }
    let results: Vec<String> = last
        .get("content")?
        .as_array()?
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| text_of(b.get("content")))
        .collect();
    (!results.is_empty()).then(|| results.join("\n"))
}
