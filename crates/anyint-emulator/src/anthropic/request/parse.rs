//! The top level of a request: which fields each endpoint allows, the
//! scalar parameters, and the checks that span parts (thinking versus a
//! forced tool choice, the number of `cache_control` breakpoints). Builds
//! the [`MessagesRequest`] the plan acts on.

use serde_json::{Map, Value};

use super::blocks::cache_control;
use super::fields::{field, string, uint};
use super::format::output_format;
use super::messages::{messages, system};
use super::thinking::{Thinking, thinking};
use super::tools::{WebSearchTool, tool_choice, tools};
use super::version::Version;
use crate::anthropic::error::AnthropicError;
use crate::content::{Tool, ToolChoice};

/// Which endpoint the body was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Messages,
    CountTokens,
}

const MESSAGES_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "cache_control",
    "output_config",
    "output_format",
    "container",
    "inference_geo",
    "mcp_servers",
    "context_management",
];
const COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "cache_control",
    "output_config",
    "output_format",
    "mcp_servers",
    "context_management",
];

/// Most `cache_control` breakpoints one request may carry.
const MAX_BREAKPOINTS: usize = 4;

/// The parts of a Messages request the emulator acts on.
#[derive(Clone, Debug)]
pub(crate) struct MessagesRequest {
    /// Validated messages, as sent.
    pub(crate) messages: Vec<Value>,
    /// `system` as text blocks (a string becomes one block).
    pub(crate) system: Vec<Value>,
    pub(crate) max_tokens: Option<usize>,
    pub(crate) stream: bool,
    pub(crate) stop: Vec<String>,
    pub(crate) tools: Vec<Tool>,
    /// Every tool definition as sent (client and server tools).
    pub(crate) raw_tools: Vec<Value>,
    pub(crate) tool_choice: ToolChoice,
    pub(crate) parallel: bool,
    /// The web search server tool, when the request offers it.
    pub(crate) web_search: Option<WebSearchTool>,
    pub(crate) thinking: Option<Thinking>,
    /// Top-level `cache_control` (automatic caching of the whole prompt).
    pub(crate) top_cache: Option<Value>,
    /// The JSON Schema of `output_config.format` (or `output_format`): the
    /// answer's text is JSON filling it.
    pub(crate) json_schema: Option<Value>,
}

pub(crate) fn parse(
    json: Option<&Value>,
    version: Version,
    endpoint: Endpoint,
) -> Result<MessagesRequest, AnthropicError> {
    let obj = json.and_then(Value::as_object).ok_or_else(|| {
        AnthropicError::invalid("There was an error parsing the body of your request as JSON.")
    })?;
    let allowed = match endpoint {
        Endpoint::Messages => MESSAGES_FIELDS,
        Endpoint::CountTokens => COUNT_FIELDS,
    };
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(AnthropicError::invalid(format!(
            "{extra}: Extra inputs are not permitted"
        )));
    }
    let model = string(obj, "model", "model")?;
    if model.is_empty() {
        return Err(AnthropicError::invalid(
            "model: String should have at least 1 character",
        ));
    }
    let max_tokens = match (endpoint, field(obj, "max_tokens")) {
        (Endpoint::CountTokens, _) => None,
        (Endpoint::Messages, None) => return Err(AnthropicError::missing("max_tokens")),
        (Endpoint::Messages, Some(v)) => {
            Some(usize::try_from(uint(v, "max_tokens")?).unwrap_or(usize::MAX))
        }
    };
    let messages = messages(obj, version)?;
    let system = system(obj)?;
    sampling(obj, version)?;
    let stream = match field(obj, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AnthropicError::expected("stream", "a valid boolean")),
    };
    let stop = match field(obj, "stop_sequences") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str().map(str::to_owned).ok_or_else(|| {
                    AnthropicError::expected(&format!("stop_sequences.{i}"), "a valid string")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(AnthropicError::expected("stop_sequences", "a valid list")),
    };
    if let Some(m) = field(obj, "metadata") {
        if !m.is_object() {
            return Err(AnthropicError::expected("metadata", "a valid dictionary"));
        }
    }
    let (tools, raw_tools, web_search) = tools(obj)?;
    let (tool_choice, parallel) = tool_choice(obj, &tools)?;
    let thinking = thinking(obj, max_tokens)?;
    if thinking.is_some() && matches!(tool_choice, ToolChoice::Required | ToolChoice::Named(_)) {
        return Err(AnthropicError::invalid(
            "Thinking may not be enabled when tool_choice forces tool use.",
        ));
    }
    let json_schema = output_format(obj)?;
    let top_cache = field(obj, "cache_control").cloned();
    if let Some(cc) = &top_cache {
        cache_control(cc, "cache_control")?;
    }
    let breakpoints = count_breakpoints(&messages, &system, &raw_tools);
    if breakpoints > MAX_BREAKPOINTS {
        return Err(AnthropicError::invalid(format!(
            "A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found \
             {breakpoints}."
        )));
    }
    Ok(MessagesRequest {
        messages,
        system,
        max_tokens,
        stream,
        stop: stop
            .into_iter()
            .filter(|s: &String| !s.is_empty())
            .collect(),
        tools,
        raw_tools,
        tool_choice,
        parallel,
        web_search,
        thinking,
        top_cache,
        json_schema,
    })
}

/// `temperature`/`top_p`/`top_k`: ranges on 2023-06-01, removed on 2026-10-21.
fn sampling(obj: &Map<String, Value>, version: Version) -> Result<(), AnthropicError> {
    for key in ["temperature", "top_p", "top_k"] {
        let Some(v) = field(obj, key) else { continue };
        if version == Version::V2026_10_21 {
            return Err(AnthropicError::invalid(format!(
                "{key}: Extra inputs are not permitted (removed in anthropic-version {})",
                version.name()
            )));
        }
        if key == "top_k" {
            uint(v, key)?;
            continue;
        }
        let Some(x) = v.as_f64() else {
            return Err(AnthropicError::expected(key, "a valid number"));
        };
        if !(0.0..=1.0).contains(&x) {
            let bound = if x < 0.0 {
                "greater than or equal to 0"
            } else {
                "less than or equal to 1"
            };
            return Err(AnthropicError::expected(key, bound));
        }
    }
    Ok(())
}

pub(super) fn count_breakpoints(messages: &[Value], system: &[Value], tools: &[Value]) -> usize {
    let has = |b: &Value| b.get("cache_control").is_some_and(|c| !c.is_null());
    let in_messages: usize = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .map(|blocks| blocks.iter().filter(|b| has(b)).count())
        .sum();
    in_messages + system.iter().filter(|b| has(b)).count() + tools.iter().filter(|b| has(b)).count()
}
