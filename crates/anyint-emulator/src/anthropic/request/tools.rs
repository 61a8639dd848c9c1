//! Tool definitions (client tools checked, server tools passed over) and
//! `tool_choice`, which must name a defined tool.

use serde_json::{Map, Value};

use super::blocks::cache_control;
use super::fields::{field, string};
use crate::anthropic::error::AnthropicError;
use crate::content::{Tool, ToolChoice};

pub(super) fn tools(obj: &Map<String, Value>) -> Result<(Vec<Tool>, Vec<Value>), AnthropicError> {
    let list = match field(obj, "tools") {
        None => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(AnthropicError::expected("tools", "a valid list")),
    };
    let mut tools: Vec<Tool> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools.{i}");
        let Some(tool) = t.as_object() else {
            return Err(AnthropicError::expected(&path, "a valid dictionary"));
        };
        if let Some(cc) = field(tool, "cache_control") {
            cache_control(cc, &format!("{path}.cache_control"))?;
        }
        match field(tool, "type").and_then(Value::as_str) {
            None | Some("custom") => {}
            // Server tools (web_search_20250305, bash_20250124, ...) run on
            // the provider's side; the emulator never calls them.
            Some(t) if t.contains("_20") => continue,
            Some(other) => {
                return Err(AnthropicError::invalid(format!(
                    "{path}: Input tag '{other}' found using 'type' does not match any of the \
                     expected tags"
                )));
            }
        }
        let name = string(tool, "name", &format!("{path}.custom.name"))?;
        let valid_name = (1..=128).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(AnthropicError::invalid(format!(
                "{path}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )));
        }
        let schema = match field(tool, "input_schema") {
            None => {
                return Err(AnthropicError::missing(&format!(
                    "{path}.custom.input_schema"
                )));
            }
            Some(s @ Value::Object(_)) => s.clone(),
            Some(_) => {
                return Err(AnthropicError::expected(
                    &format!("{path}.custom.input_schema"),
                    "a valid dictionary",
                ));
            }
        };
        if tools.iter().any(|t| t.name == name) {
            return Err(AnthropicError::invalid("tools: Tool names must be unique."));
        }
        tools.push(Tool {
            name: name.to_owned(),
            parameters: Some(schema),
        });
    }
    Ok((tools, list.clone()))
}

pub(super) fn tool_choice(
    obj: &Map<String, Value>,
    tools: &[Tool],
) -> Result<(ToolChoice, bool), AnthropicError> {
    let default = if tools.is_empty() {
        ToolChoice::None
    } else {
        ToolChoice::Auto
    };
    let Some(v) = field(obj, "tool_choice") else {
        return Ok((default, true));
    };
    let Some(choice) = v.as_object() else {
        return Err(AnthropicError::expected(
            "tool_choice",
            "a valid dictionary",
        ));
    };
    let parallel = match field(choice, "disable_parallel_tool_use") {
        None => true,
        Some(Value::Bool(b)) => !b,
        Some(_) => {
            return Err(AnthropicError::expected(
                "tool_choice.disable_parallel_tool_use",
                "a valid boolean",
            ));
        }
    };
    let choice = match field(choice, "type").and_then(Value::as_str) {
        Some("auto") => default,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => {
            let name = string(choice, "name", "tool_choice.tool.name")?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(AnthropicError::invalid(format!(
                    "tool_choice.tool.name: Tool '{name}' not found in tools"
                )));
            }
            ToolChoice::Named(name.to_owned())
        }
        _ => {
            return Err(AnthropicError::invalid(
                "tool_choice: Input tag found using 'type' does not match any of the expected \
                 tags: 'auto', 'any', 'tool', 'none'",
            ));
        }
    };
    Ok((choice, parallel))
}
