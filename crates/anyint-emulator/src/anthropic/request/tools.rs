//! Tool definitions (client tools and the web search server tool checked,
//! other server tools passed over) and `tool_choice`, which must name a
//! defined tool.

use serde_json::{Map, Value};

use super::blocks::cache_control;
use super::fields::{field, string, uint};
use crate::anthropic::error::AnthropicError;
use crate::content::{Tool, ToolChoice};

/// The web search server tool's settings the answer uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WebSearchTool {
    pub(crate) max_uses: Option<u64>,
    pub(crate) allowed_domains: Vec<String>,
}

/// The client tools, every tool as sent, and the web search tool if any.
pub(super) type Tools = (Vec<Tool>, Vec<Value>, Option<WebSearchTool>);

/// Fields a web search tool may carry (all versions).
const WEB_SEARCH_FIELDS: &[&str] = &[
    "type",
    "name",
    "max_uses",
    "allowed_domains",
    "blocked_domains",
    "user_location",
    "cache_control",
    "allowed_callers",
    "defer_loading",
    "strict",
    "response_inclusion",
];

fn domains(
    tool: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<String>, AnthropicError> {
    match field(tool, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(j, d)| {
                d.as_str().map(str::to_owned).ok_or_else(|| {
                    AnthropicError::expected(&format!("{path}.{key}.{j}"), "a valid string")
                })
            })
            .collect(),
        Some(_) => Err(AnthropicError::expected(
            &format!("{path}.{key}"),
            "a valid list",
        )),
    }
}

/// A `web_search_*` server tool, validated like the API.
fn web_search_tool(
    tool: &Map<String, Value>,
    kind: &str,
    path: &str,
) -> Result<WebSearchTool, AnthropicError> {
    if let Some(extra) = tool
        .keys()
        .find(|k| !WEB_SEARCH_FIELDS.contains(&k.as_str()))
    {
        return Err(AnthropicError::invalid(format!(
            "{path}.{kind}.{extra}: Extra inputs are not permitted"
        )));
    }
    if string(tool, "name", &format!("{path}.{kind}.name"))? != "web_search" {
        return Err(AnthropicError::expected(
            &format!("{path}.{kind}.name"),
            "'web_search'",
        ));
    }
    let max_uses = match field(tool, "max_uses") {
        None => None,
        Some(v) => match uint(v, &format!("{path}.{kind}.max_uses"))? {
            0 => {
                return Err(AnthropicError::expected(
                    &format!("{path}.{kind}.max_uses"),
                    "greater than 0",
                ));
            }
            n => Some(n),
        },
    };
    let allowed_domains = domains(tool, "allowed_domains", &format!("{path}.{kind}"))?;
    let blocked = domains(tool, "blocked_domains", &format!("{path}.{kind}"))?;
    if !allowed_domains.is_empty() && !blocked.is_empty() {
        return Err(AnthropicError::invalid(format!(
            "{path}.{kind}: only one of allowed_domains and blocked_domains may be given"
        )));
    }
    if let Some(loc) = field(tool, "user_location") {
        let at = format!("{path}.{kind}.user_location");
        let Some(loc) = loc.as_object() else {
            return Err(AnthropicError::expected(&at, "a valid dictionary"));
        };
        if string(loc, "type", &format!("{at}.type"))? != "approximate" {
            return Err(AnthropicError::expected(
                &format!("{at}.type"),
                "'approximate'",
            ));
        }
    }
    Ok(WebSearchTool {
        max_uses,
        allowed_domains,
    })
}

pub(super) fn tools(obj: &Map<String, Value>) -> Result<Tools, AnthropicError> {
    let list = match field(obj, "tools") {
        None => return Ok((Vec::new(), Vec::new(), None)),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(AnthropicError::expected("tools", "a valid list")),
    };
    let mut web_search: Option<WebSearchTool> = None;
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
            Some(kind) if kind.starts_with("web_search_20") => {
                if web_search.is_some() {
                    return Err(AnthropicError::invalid("tools: Tool names must be unique."));
                }
                web_search = Some(web_search_tool(tool, kind, &path)?);
                continue;
            }
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
    if web_search.is_some() && tools.iter().any(|t| t.name == "web_search") {
        return Err(AnthropicError::invalid("tools: Tool names must be unique."));
    }
    Ok((tools, list.clone(), web_search))
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
