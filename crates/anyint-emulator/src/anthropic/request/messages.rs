//! The conversation's turns: `messages` (roles, non-empty content, each
//! block checked by `blocks`) and the `tool_use` → `tool_result` pairing
//! across merged turns, plus the `system` prompt's text blocks.

use serde_json::{Map, Value};

use super::blocks::{block, text_block};
use super::fields::field;
use super::version::Version;
use crate::anthropic::error::AnthropicError;

pub(super) fn system(obj: &Map<String, Value>) -> Result<Vec<Value>, AnthropicError> {
    match field(obj, "system") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![serde_json::json!({"type": "text", "text": s})]),
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                let path = format!("system.{i}");
                let Some(block) = b.as_object() else {
                    return Err(AnthropicError::expected(&path, "a valid dictionary"));
                };
                match field(block, "type").and_then(Value::as_str) {
                    Some("text") => text_block(block, &path)?,
                    _ => return Err(AnthropicError::expected(&format!("{path}.type"), "'text'")),
                }
            }
            Ok(blocks.clone())
        }
        Some(_) => Err(AnthropicError::expected("system", "a valid string")),
    }
}

pub(super) fn messages(
    obj: &Map<String, Value>,
    version: Version,
) -> Result<Vec<Value>, AnthropicError> {
    let list = match field(obj, "messages") {
        None => return Err(AnthropicError::missing("messages")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(AnthropicError::expected("messages", "a valid list")),
    };
    if list.is_empty() {
        return Err(AnthropicError::invalid(
            "messages: at least one message is required",
        ));
    }
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages.{i}");
        let Some(msg) = m.as_object() else {
            return Err(AnthropicError::expected(&path, "a valid dictionary"));
        };
        let role = match field(msg, "role") {
            None => return Err(AnthropicError::missing(&format!("{path}.role"))),
            Some(Value::String(r)) if r == "user" || r == "assistant" => r.as_str(),
            // A system message may follow the first message: text only.
            Some(Value::String(r)) if r == "system" && i > 0 => {
                system_message(msg, &path)?;
                continue;
            }
            Some(_) => {
                return Err(AnthropicError::expected(
                    &format!("{path}.role"),
                    "'user' or 'assistant'",
                ));
            }
        };
        let final_assistant = role == "assistant" && i + 1 == list.len();
        let empty = match field(msg, "content") {
            None => return Err(AnthropicError::missing(&format!("{path}.content"))),
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(blocks)) => {
                for (j, b) in blocks.iter().enumerate() {
                    block(b, role, &format!("{path}.content.{j}"), version)?;
                }
                blocks.is_empty()
            }
            Some(_) => {
                return Err(AnthropicError::expected(
                    &format!("{path}.content"),
                    "a valid string or a valid list",
                ));
            }
        };
        if empty && !final_assistant {
            return Err(AnthropicError::invalid(format!(
                "{path}: all messages must have non-empty content except for the optional \
                 final assistant message"
            )));
        }
    }
    pairing(list)?;
    Ok(list.clone())
}

/// A `role: "system"` entry after the first message: non-empty text, as a string or text
/// blocks.
fn system_message(msg: &Map<String, Value>, path: &str) -> Result<(), AnthropicError> {
    match field(msg, "content") {
        None => Err(AnthropicError::missing(&format!("{path}.content"))),
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(Value::Array(blocks)) if !blocks.is_empty() => {
            for (j, b) in blocks.iter().enumerate() {
                let at = format!("{path}.content.{j}");
                let Some(block) = b.as_object() else {
                    return Err(AnthropicError::expected(&at, "a valid dictionary"));
                };
                match field(block, "type").and_then(Value::as_str) {
                    Some("text") => text_block(block, &at)?,
                    _ => return Err(AnthropicError::expected(&format!("{at}.type"), "'text'")),
                }
            }
            Ok(())
        }
        Some(_) => Err(AnthropicError::invalid(format!(
            "{path}.content: a system message needs non-empty text"
        ))),
    }
}

/// The API merges consecutive same-role messages into one turn (system messages stand
/// apart and are skipped here); checks
/// that every `tool_use` is answered in the next turn and every
/// `tool_result` answers a `tool_use` of the previous turn.
pub(super) fn pairing(list: &[Value]) -> Result<(), AnthropicError> {
    // (role, index of the turn's first message, blocks)
    let mut turns: Vec<(&str, usize, Vec<&Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role == "system" {
            continue;
        }
        let blocks: Vec<&Value> = m
            .get("content")
            .and_then(Value::as_array)
            .map(|b| b.iter().collect())
            .unwrap_or_default();
        match turns.last_mut() {
            Some((r, _, acc)) if *r == role => acc.extend(blocks),
            _ => turns.push((role, i, blocks)),
        }
    }
    let ids = |blocks: &[&Value], kind: &str, key: &str| -> Vec<String> {
        blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some(kind))
            .filter_map(|b| b.get(key).and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    for (t, (role, first, blocks)) in turns.iter().enumerate() {
        if *role != "assistant" {
            continue;
        }
        let uses = ids(blocks, "tool_use", "id");
        if uses.is_empty() {
            continue;
        }
        let answered = turns
            .get(t + 1)
            .map(|(_, _, next)| ids(next, "tool_result", "tool_use_id"))
            .unwrap_or_default();
        let missing: Vec<&str> = uses
            .iter()
            .filter(|id| !answered.contains(id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(AnthropicError::invalid(format!(
                "messages.{first}: `tool_use` ids were found without `tool_result` blocks \
                 immediately after: {}. Each `tool_use` block must have a corresponding \
                 `tool_result` block in the next message.",
                missing.join(", ")
            )));
        }
    }
    for (t, (role, first, blocks)) in turns.iter().enumerate() {
        if *role != "user" {
            continue;
        }
        let results = ids(blocks, "tool_result", "tool_use_id");
        let offered = t
            .checked_sub(1)
            .and_then(|p| turns.get(p))
            .map(|(_, _, prev)| ids(prev, "tool_use", "id"))
            .unwrap_or_default();
        if let Some(stray) = results.iter().find(|id| !offered.contains(id)) {
            return Err(AnthropicError::invalid(format!(
                "messages.{first}: unexpected `tool_use_id` found in `tool_result` blocks: \
                 {stray}. Each `tool_result` block must have a corresponding `tool_use` block \
                 in the previous message."
            )));
        }
    }
    Ok(())
}
