//! One content block's shape: its `type` and the role it may appear in,
//! `tool_result` contents, image and document sources, and `cache_control`
//! (which tools use too).

use serde_json::{Map, Value};

use super::fields::{field, string};
use super::version::Version;
use crate::anthropic::error::AnthropicError;

/// Block types accepted without deep checks (server tools, results, ...).
const OTHER_BLOCKS: &[&str] = &[
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
];
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

pub(super) fn block(
    b: &Value,
    role: &str,
    path: &str,
    version: Version,
) -> Result<(), AnthropicError> {
    let Some(obj) = b.as_object() else {
        return Err(AnthropicError::expected(path, "a valid dictionary"));
    };
    let kind = match field(obj, "type") {
        Some(Value::String(k)) => k.as_str(),
        _ => {
            return Err(AnthropicError::invalid(format!(
                "{path}: Unable to extract tag using discriminator 'type'"
            )));
        }
    };
    if let Some(cc) = field(obj, "cache_control") {
        cache_control(cc, &format!("{path}.{kind}.cache_control"))?;
    }
    let only = |allowed_role: &str| {
        if role == allowed_role {
            Ok(())
        } else {
            Err(AnthropicError::invalid(format!(
                "{path}: `{kind}` blocks are only allowed in `{allowed_role}` messages"
            )))
        }
    };
    match kind {
        "text" => {
            text_block(obj, path)?;
            let cited = field(obj, "citations")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty());
            if cited && role == "user" && version == Version::V2026_10_21 {
                return Err(AnthropicError::invalid(format!(
                    "{path}: text blocks with citations are not allowed in user messages"
                )));
            }
        }
        "image" => source(obj, path, "image")?,
        "document" => {
            if role == "assistant" && version == Version::V2026_10_21 {
                return Err(AnthropicError::invalid(format!(
                    "{path}: `document` blocks are not allowed in assistant messages"
                )));
            }
            source(obj, path, "document")?;
        }
        "tool_use" => {
            only("assistant")?;
            string(obj, "id", &format!("{path}.tool_use.id"))?;
            string(obj, "name", &format!("{path}.tool_use.name"))?;
            match field(obj, "input") {
                Some(Value::Object(_)) => {}
                None => return Err(AnthropicError::missing(&format!("{path}.tool_use.input"))),
                Some(_) => {
                    return Err(AnthropicError::expected(
                        &format!("{path}.tool_use.input"),
                        "a valid dictionary",
                    ));
                }
            }
        }
        "tool_result" => {
            only("user")?;
            tool_result(obj, role, path, version)?;
        }
        "thinking" => {
            only("assistant")?;
            string(obj, "thinking", &format!("{path}.thinking.thinking"))?;
            string(obj, "signature", &format!("{path}.thinking.signature"))?;
        }
        "redacted_thinking" => {
            only("assistant")?;
            string(obj, "data", &format!("{path}.redacted_thinking.data"))?;
        }
        k if OTHER_BLOCKS.contains(&k) => {}
        other => {
            return Err(AnthropicError::invalid(format!(
                "{path}: Input tag '{other}' found using 'type' does not match any of the \
                 expected tags: 'text', 'image', 'document', 'tool_use', 'tool_result', \
                 'thinking', 'redacted_thinking', {}",
                OTHER_BLOCKS
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// A `tool_result` block: its id, its content (a string or text / image /
/// document / search_result blocks) and `is_error`.
pub(super) fn tool_result(
    obj: &Map<String, Value>,
    role: &str,
    path: &str,
    version: Version,
) -> Result<(), AnthropicError> {
    string(
        obj,
        "tool_use_id",
        &format!("{path}.tool_result.tool_use_id"),
    )?;
    match field(obj, "content") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(parts)) => {
            for (k, p) in parts.iter().enumerate() {
                let sub = format!("{path}.tool_result.content.{k}");
                match p.get("type").and_then(Value::as_str) {
                    Some("text" | "image" | "document" | "search_result") => {
                        block(p, role, &sub, version)?;
                    }
                    _ => {
                        return Err(AnthropicError::invalid(format!(
                            "{sub}: Input tag found using 'type' does not match any of \
                             the expected tags: 'text', 'image', 'document', \
                             'search_result'"
                        )));
                    }
                }
            }
        }
        Some(_) => {
            return Err(AnthropicError::expected(
                &format!("{path}.tool_result.content"),
                "a valid string or a valid list",
            ));
        }
    }
    if let Some(e) = field(obj, "is_error") {
        if !e.is_boolean() {
            return Err(AnthropicError::expected(
                &format!("{path}.tool_result.is_error"),
                "a valid boolean",
            ));
        }
    }
    Ok(())
}

pub(super) fn text_block(obj: &Map<String, Value>, path: &str) -> Result<(), AnthropicError> {
    let text = string(obj, "text", &format!("{path}.text.text"))?;
    if text.trim().is_empty() {
        return Err(AnthropicError::invalid(
            "messages: text content blocks must contain non-whitespace text",
        ));
    }
    if let Some(cc) = field(obj, "cache_control") {
        cache_control(cc, &format!("{path}.text.cache_control"))?;
    }
    Ok(())
}

/// `image` / `document` sources.
pub(super) fn source(
    obj: &Map<String, Value>,
    path: &str,
    kind: &str,
) -> Result<(), AnthropicError> {
    let sp = format!("{path}.{kind}.source");
    let Some(src) = field(obj, "source").and_then(Value::as_object) else {
        return Err(AnthropicError::missing(&sp));
    };
    let src_type = src.get("type").and_then(Value::as_str).unwrap_or("");
    match (kind, src_type) {
        (_, "base64") => {
            let media = string(src, "media_type", &format!("{sp}.base64.media_type"))?;
            if kind == "image" && !IMAGE_TYPES.contains(&media) {
                return Err(AnthropicError::expected(
                    &format!("{sp}.base64.media_type"),
                    "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                ));
            }
            if kind == "document" && media != "application/pdf" {
                return Err(AnthropicError::expected(
                    &format!("{sp}.base64.media_type"),
                    "'application/pdf'",
                ));
            }
            let data = string(src, "data", &format!("{sp}.base64.data"))?;
            let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
            if data.is_empty() || !data.chars().all(is_b64) {
                return Err(AnthropicError::invalid(format!(
                    "{sp}.base64.data: The {kind} data is not valid base64."
                )));
            }
        }
        (_, "url") => {
            string(src, "url", &format!("{sp}.url.url"))?;
        }
        (_, "file") => {
            string(src, "file_id", &format!("{sp}.file.file_id"))?;
        }
        ("document", "text") => {
            string(src, "data", &format!("{sp}.text.data"))?;
        }
        ("document", "content") => {}
        _ => {
            return Err(AnthropicError::invalid(format!(
                "{sp}: Input tag '{src_type}' found using 'type' does not match any of the \
                 expected tags"
            )));
        }
    }
    Ok(())
}

pub(super) fn cache_control(cc: &Value, path: &str) -> Result<(), AnthropicError> {
    let ok_type = cc.get("type").and_then(Value::as_str) == Some("ephemeral");
    let ok_ttl = match cc.get("ttl") {
        None | Some(Value::Null) => true,
        Some(Value::String(t)) => t == "5m" || t == "1h",
        Some(_) => false,
    };
    if !ok_type {
        return Err(AnthropicError::expected(
            &format!("{path}.type"),
            "'ephemeral'",
        ));
    }
    if !ok_ttl {
        return Err(AnthropicError::expected(
            &format!("{path}.ttl"),
            "'5m' or '1h'",
        ));
    }
    Ok(())
}
