//! Validation of a Messages (or count_tokens) request body into
//! [`MessagesRequest`], rejecting what the real API rejects with its
//! `path: problem` wording: unknown top-level fields, missing `max_tokens`,
//! bad roles and blocks, `tool_use`/`tool_result` pairing, thinking limits
//! and the parameters removed in API version `2026-10-21`.

use serde_json::{Map, Value};

use super::error::AnthropicError;
use crate::content::{Tool, ToolChoice};

/// API versions the emulator accepts in `anthropic-version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V2023_06_01,
    V2026_10_21,
}

impl Version {
    /// Parses the header value; the error is the API's message.
    pub(crate) fn parse(header: Option<&str>) -> Result<Self, AnthropicError> {
        match header {
            None => Err(AnthropicError::invalid(
                "anthropic-version: header is required",
            )),
            Some("2023-06-01") => Ok(Self::V2023_06_01),
            Some("2026-10-21") => Ok(Self::V2026_10_21),
            Some(other) => Err(AnthropicError::invalid(format!(
                "anthropic-version: \"{other}\" is not a valid version"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::V2023_06_01 => "2023-06-01",
            Self::V2026_10_21 => "2026-10-21",
        }
    }
}

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
/// Most `cache_control` breakpoints one request may carry.
const MAX_BREAKPOINTS: usize = 4;
/// Smallest `thinking.budget_tokens`.
const MIN_BUDGET: u64 = 1024;

/// Extended thinking as requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Thinking {
    /// `display: "omitted"`: thinking blocks carry only the signature.
    pub(crate) omitted: bool,
}

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
    pub(crate) thinking: Option<Thinking>,
    /// Top-level `cache_control` (automatic caching of the whole prompt).
    pub(crate) top_cache: Option<Value>,
}

/// `obj[key]`, treating an explicit `null` as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, AnthropicError> {
    match field(obj, key) {
        None => Err(AnthropicError::missing(path)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AnthropicError::expected(path, "a valid string")),
    }
}

fn uint(v: &Value, path: &str) -> Result<u64, AnthropicError> {
    match v {
        Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Value::Number(n) if n.as_i64().is_some() => {
            Err(AnthropicError::expected(path, "greater than or equal to 0"))
        }
        _ => Err(AnthropicError::expected(path, "a valid integer")),
    }
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
    let (tools, raw_tools) = tools(obj)?;
    let (tool_choice, parallel) = tool_choice(obj, &tools)?;
    let thinking = thinking(obj, max_tokens)?;
    if thinking.is_some() && matches!(tool_choice, ToolChoice::Required | ToolChoice::Named(_)) {
        return Err(AnthropicError::invalid(
            "Thinking may not be enabled when tool_choice forces tool use.",
        ));
    }
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
        thinking,
        top_cache,
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

fn system(obj: &Map<String, Value>) -> Result<Vec<Value>, AnthropicError> {
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

fn messages(obj: &Map<String, Value>, version: Version) -> Result<Vec<Value>, AnthropicError> {
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

/// The API merges consecutive same-role messages into one turn; checks
/// that every `tool_use` is answered in the next turn and every
/// `tool_result` answers a `tool_use` of the previous turn.
fn pairing(list: &[Value]) -> Result<(), AnthropicError> {
    // (role, index of the turn's first message, blocks)
    let mut turns: Vec<(&str, usize, Vec<&Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
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

fn block(b: &Value, role: &str, path: &str, version: Version) -> Result<(), AnthropicError> {
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
fn tool_result(
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

fn text_block(obj: &Map<String, Value>, path: &str) -> Result<(), AnthropicError> {
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
fn source(obj: &Map<String, Value>, path: &str, kind: &str) -> Result<(), AnthropicError> {
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

fn cache_control(cc: &Value, path: &str) -> Result<(), AnthropicError> {
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

fn count_breakpoints(messages: &[Value], system: &[Value], tools: &[Value]) -> usize {
    let has = |b: &Value| b.get("cache_control").is_some_and(|c| !c.is_null());
    let in_messages: usize = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .map(|blocks| blocks.iter().filter(|b| has(b)).count())
        .sum();
    in_messages + system.iter().filter(|b| has(b)).count() + tools.iter().filter(|b| has(b)).count()
}

fn tools(obj: &Map<String, Value>) -> Result<(Vec<Tool>, Vec<Value>), AnthropicError> {
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

fn tool_choice(
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

fn thinking(
    obj: &Map<String, Value>,
    max_tokens: Option<usize>,
) -> Result<Option<Thinking>, AnthropicError> {
    let Some(v) = field(obj, "thinking") else {
        return Ok(None);
    };
    let Some(t) = v.as_object() else {
        return Err(AnthropicError::expected("thinking", "a valid dictionary"));
    };
    let omitted = field(t, "display").and_then(Value::as_str) == Some("omitted");
    match field(t, "type").and_then(Value::as_str) {
        Some("disabled") => return Ok(None),
        Some("adaptive") => {}
        Some("enabled") => {
            let Some(budget) = field(t, "budget_tokens") else {
                return Err(AnthropicError::missing("thinking.enabled.budget_tokens"));
            };
            let budget = uint(budget, "thinking.enabled.budget_tokens")?;
            if budget < MIN_BUDGET {
                return Err(AnthropicError::expected(
                    "thinking.enabled.budget_tokens",
                    "greater than or equal to 1024",
                ));
            }
            if let Some(max) = max_tokens {
                if u64::try_from(max).unwrap_or(u64::MAX) <= budget {
                    return Err(AnthropicError::invalid(
                        "`max_tokens` must be greater than `thinking.budget_tokens`. Please \
                         consult our documentation at \
                         https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
                    ));
                }
            }
        }
        _ => {
            return Err(AnthropicError::invalid(
                "thinking: Input tag found using 'type' does not match any of the expected \
                 tags: 'enabled', 'disabled', 'adaptive'",
            ));
        }
    }
    if let Some(temp) = field(obj, "temperature").and_then(Value::as_f64) {
        if (temp - 1.0).abs() > f64::EPSILON {
            return Err(AnthropicError::invalid(
                "`temperature` may only be set to 1 when thinking is enabled. Please consult \
                 our documentation at \
                 https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
            ));
        }
    }
    if field(obj, "top_k").is_some() {
        return Err(AnthropicError::invalid(
            "`top_k` must be unset when thinking is enabled. Please consult our documentation \
             at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ));
    }
    Ok(Some(Thinking { omitted }))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(body: &Value) -> Result<MessagesRequest, AnthropicError> {
        parse(Some(body), Version::V2023_06_01, Endpoint::Messages)
    }

    fn msg(body: &Value) -> String {
        run(body).unwrap_err().message
    }

    fn base() -> Value {
        json!({"model": "claude-x", "max_tokens": 10,
               "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn versions() {
        assert!(
            Version::parse(None)
                .unwrap_err()
                .message
                .contains("required")
        );
        assert_eq!(
            Version::parse(Some("2026-10-21")).unwrap(),
            Version::V2026_10_21
        );
        let dup = Version::parse(Some("2023-06-01, 2023-06-01")).unwrap_err();
        assert!(dup.message.contains("not a valid version"));
    }

    #[test]
    fn required_and_extra_fields() {
        let mut b = base();
        b.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(msg(&b), "max_tokens: Field required");
        let mut b = base();
        b["n"] = json!(1);
        assert_eq!(msg(&b), "n: Extra inputs are not permitted");
        let mut b = base();
        b["messages"][0]["role"] = json!("system");
        assert!(msg(&b).starts_with("messages.0.role"));
        assert!(parse(Some(&base()), Version::V2023_06_01, Endpoint::CountTokens).is_err());
        let mut count = base();
        count.as_object_mut().unwrap().remove("max_tokens");
        assert!(parse(Some(&count), Version::V2023_06_01, Endpoint::CountTokens).is_ok());
    }

    #[test]
    fn removed_sampling_params_on_new_version() {
        let mut b = base();
        b["temperature"] = json!(0.5);
        assert!(run(&b).is_ok());
        assert!(parse(Some(&b), Version::V2026_10_21, Endpoint::Messages).is_err());
        b["temperature"] = json!(1.5);
        assert!(run(&b).is_err());
    }

    #[test]
    fn tool_pairing() {
        let mut b = base();
        b["messages"] = json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": "no result"}
        ]);
        assert!(msg(&b).contains("t1"));
        b["messages"][2]["content"] =
            json!([{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]);
        let r = run(&b).unwrap();
        assert_eq!(last_tool_result(&r.messages).as_deref(), Some("ok"));
        assert_eq!(last_user_text(&r.messages), "go");
        b["messages"][1]["content"] = json!("plain text");
        assert!(msg(&b).contains("unexpected `tool_use_id` found in `tool_result` blocks: t1"));
    }

    #[test]
    fn thinking_rules() {
        let mut b = base();
        b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        assert!(msg(&b).contains("max_tokens"));
        b["max_tokens"] = json!(2048);
        assert!(run(&b).unwrap().thinking.is_some());
        b["thinking"]["budget_tokens"] = json!(10);
        assert!(msg(&b).contains("1024"));
    }

    #[test]
    fn blocks_are_checked() {
        let mut b = base();
        b["messages"][0]["content"] = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}]);
        assert!(msg(&b).contains("media_type"));
        b["messages"][0]["content"] =
            json!([{"type": "text", "text": "x", "cache_control": {"type": "persistent"}}]);
        assert!(msg(&b).contains("ephemeral"));
        b["messages"][0]["content"] = json!([{"type": "video"}]);
        assert!(msg(&b).contains("'video'"));
        b["messages"][0]["content"] = json!([
            {"type": "text", "text": "a"},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AA=="}}
        ]);
        assert!(run(&b).is_ok());
    }
}
