//! Validation of a Chat Completions request body into [`ChatRequest`],
//! rejecting what the real API rejects with the same `param`s.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::util::describe;

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

pub(crate) use crate::content::{Tool, ToolChoice};

/// The parts of a chat request the emulator acts on.
#[derive(Clone, Debug)]
pub(crate) struct ChatRequest {
    pub(crate) messages: Vec<Value>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) n: usize,
    pub(crate) max_tokens: Option<usize>,
    pub(crate) stop: Vec<String>,
    pub(crate) tools: Vec<Tool>,
    /// Characters of the `tools` JSON, for prompt token counting.
    pub(crate) tools_chars: usize,
    pub(crate) tool_choice: ToolChoice,
    pub(crate) parallel_tool_calls: bool,
    /// `response_format`, when it asks for JSON.
    pub(crate) json: Option<JsonFormat>,
}

/// A JSON `response_format`.
#[derive(Clone, Debug)]
pub(crate) enum JsonFormat {
    /// `json_object`: any JSON object.
    Mode,
    /// `json_schema`: an object that fits the schema.
    Schema(Value),
}

/// `obj[key]`, treating an explicit `null` as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Text of a message's content: the string, or its `text` parts concatenated.
pub(crate) fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Text of the last `user` message in a raw body (empty if none).
pub(crate) fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| text_of(m.get("content")))
        .unwrap_or_default()
}

pub(crate) fn parse(json: Option<&Value>) -> Result<ChatRequest, ApiError> {
    let obj = json
        .ok_or_else(ApiError::bad_json)?
        .as_object()
        .ok_or_else(ApiError::bad_json)?;

    match field(obj, "model") {
        None => return Err(ApiError::missing("model")),
        Some(Value::String(m)) if m.is_empty() => return Err(ApiError::missing("model")),
        Some(Value::String(_)) => {}
        Some(v) => return Err(ApiError::invalid_type("model", "a string", v)),
    }
    let messages = messages(obj)?;

    let stream = match field(obj, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(ApiError::invalid_type("stream", "a boolean", v)),
    };
    let include_usage = match field(obj, "stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(ApiError::invalid_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            )
            .with_param("stream_options"));
        }
        Some(Value::Object(so)) => field(so, "include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        Some(v) => return Err(ApiError::invalid_type("stream_options", "an object", v)),
    };

    let n = match field(obj, "n") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=128).contains(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::invalid_value(
                    "n",
                    format!("Invalid 'n': integer between 1 and 128 expected, got {v}."),
                )
            })?,
    };
    let max_tokens = max_tokens(obj)?;
    let stop = stop(obj)?;
    let (tools, tools_chars) = tools(obj)?;
    let tool_choice = tool_choice(obj, &tools)?;
    let parallel_tool_calls = match field(obj, "parallel_tool_calls") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(ApiError::invalid_type(
                "parallel_tool_calls",
                "a boolean",
                v,
            ));
        }
    };

    let json = response_format(obj, &messages)?;
    Ok(ChatRequest {
        messages,
        stream,
        include_usage,
        n,
        max_tokens,
        stop,
        tools,
        tools_chars,
        tool_choice,
        parallel_tool_calls,
        json,
    })
}

/// `response_format`, checked like the API: `text`, `json_object` (the messages must mention
/// JSON) or `json_schema` with a `name` and, when given, an object `schema`.
fn response_format(
    obj: &Map<String, Value>,
    messages: &[Value],
) -> Result<Option<JsonFormat>, ApiError> {
    let Some(format) = field(obj, "response_format") else {
        return Ok(None);
    };
    let kind = format.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => Ok(None),
        Some("json_object") => {
            let mentions_json = messages.iter().any(|m| {
                text_of(m.get("content"))
                    .to_ascii_lowercase()
                    .contains("json")
            });
            if !mentions_json {
                return Err(ApiError::invalid_value(
                    "response_format",
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                ));
            }
            Ok(Some(JsonFormat::Mode))
        }
        Some("json_schema") => {
            let spec = format.get("json_schema").and_then(Value::as_object);
            let Some(spec) = spec else {
                return Err(ApiError::missing("response_format.json_schema"));
            };
            if spec
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::missing("response_format.json_schema.name"));
            }
            match spec.get("schema") {
                None | Some(Value::Null) => Ok(Some(JsonFormat::Schema(Value::Object(Map::new())))),
                Some(s @ Value::Object(_)) => Ok(Some(JsonFormat::Schema(s.clone()))),
                Some(v) => Err(ApiError::invalid_type(
                    "response_format.json_schema.schema",
                    "an object",
                    v,
                )),
            }
        }
        _ => Err(ApiError::invalid_value(
            "response_format.type",
            "Invalid value: expected one of 'text', 'json_object' or 'json_schema'.",
        )),
    }
}

fn messages(obj: &Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let list = match field(obj, "messages") {
        None => return Err(ApiError::missing("messages")),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(ApiError::invalid_type("messages", "an array", v)),
    };
    if list.is_empty() {
        return Err(ApiError::invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got \
             an empty array instead.",
        )
        .with_param("messages")
        .with_code("empty_array"));
    }
    for (i, m) in list.iter().enumerate() {
        let at = |suffix: &str| format!("messages[{i}]{suffix}");
        let Some(msg) = m.as_object() else {
            return Err(ApiError::invalid_type(&at(""), "an object", m));
        };
        let role = match field(msg, "role") {
            None => return Err(ApiError::missing(&at(".role"))),
            Some(Value::String(r)) => r.as_str(),
            Some(v) => return Err(ApiError::invalid_type(&at(".role"), "a string", v)),
        };
        if !ROLES.contains(&role) {
            return Err(ApiError::invalid_value(
                &at(".role"),
                format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', \
                     'user', 'function', 'tool', and 'developer'."
                ),
            ));
        }
        match field(msg, "content") {
            None if role != "assistant" => return Err(ApiError::missing(&at(".content"))),
            None | Some(Value::String(_) | Value::Array(_)) => {}
            Some(v) => {
                return Err(ApiError::invalid_type(
                    &at(".content"),
                    "a string or array",
                    v,
                ));
            }
        }
        if role == "tool" && !matches!(field(msg, "tool_call_id"), Some(Value::String(_))) {
            return Err(ApiError::missing(&at(".tool_call_id")));
        }
    }
    Ok(list.clone())
}

fn max_tokens(obj: &Map<String, Value>) -> Result<Option<usize>, ApiError> {
    for key in ["max_completion_tokens", "max_tokens"] {
        if let Some(v) = field(obj, key) {
            let n = v
                .as_u64()
                .filter(|&n| n >= 1)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    ApiError::invalid_value(
                        key,
                        format!(
                            "Invalid '{key}': integer below minimum value. Expected a value \
                             >= 1, but got {v} instead."
                        ),
                    )
                })?;
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn stop(obj: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let list = match field(obj, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid_type("stop", "a string", s))
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid_value(
                "stop",
                "Invalid 'stop': array too long. Expected an array with maximum length 4.",
            ));
        }
        Some(v) => return Err(ApiError::invalid_type("stop", "a string or array", v)),
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

fn tools(obj: &Map<String, Value>) -> Result<(Vec<Tool>, usize), ApiError> {
    let list = match field(obj, "tools") {
        None => return Ok((Vec::new(), 0)),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(ApiError::invalid_type("tools", "an array", v)),
    };
    if list.is_empty() {
        return Err(ApiError::invalid_request(
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an \
             empty array instead.",
        )
        .with_param("tools")
        .with_code("empty_array"));
    }
    let mut tools = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str);
        match kind {
            Some("function") => {
                let function = t.get("function");
                let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str)
                else {
                    return Err(ApiError::missing(&format!("tools[{i}].function.name")));
                };
                tools.push(Tool {
                    name: name.to_owned(),
                    parameters: function.and_then(|f| f.get("parameters")).cloned(),
                });
            }
            // Custom tools take free text, which the emulator never produces.
            Some("custom") => {}
            Some(other) => {
                return Err(ApiError::invalid_value(
                    &format!("tools[{i}].type"),
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'function' and 'custom'."
                    ),
                ));
            }
            None => return Err(ApiError::missing(&format!("tools[{i}].type"))),
        }
    }
    let chars = Value::Array(list.clone()).to_string().chars().count();
    Ok((tools, chars))
}

fn tool_choice(obj: &Map<String, Value>, tools: &[Tool]) -> Result<ToolChoice, ApiError> {
    let Some(v) = field(obj, "tool_choice") else {
        return Ok(if tools.is_empty() {
            ToolChoice::None
        } else {
            ToolChoice::Auto
        });
    };
    if field(obj, "tools").is_none() {
        return Err(ApiError::invalid_value(
            "tool_choice",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are \
             specified.",
        ));
    }
    let bad = || {
        ApiError::invalid_value(
            "tool_choice",
            format!("Invalid value for 'tool_choice': {v}."),
        )
    };
    match v {
        Value::String(s) => match s.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            _ => Err(bad()),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::missing("tool_choice.function.name"))?;
                if !tools.iter().any(|t| t.name == name) {
                    return Err(ApiError::invalid_value(
                        "tool_choice",
                        format!(
                            "Invalid value for 'tool_choice': function '{name}' not found in \
                             'tools'."
                        ),
                    ));
                }
                Ok(ToolChoice::Named(name.to_owned()))
            }
            Some("allowed_tools") => {
                let mode = o
                    .get("allowed_tools")
                    .and_then(|a| a.get("mode"))
                    .and_then(Value::as_str);
                Ok(if mode == Some("required") {
                    ToolChoice::Required
                } else {
                    ToolChoice::Auto
                })
            }
            _ => Err(bad()),
        },
        other => Err(ApiError::invalid_type(
            "tool_choice",
            &format!("a string or object, not {}", describe(other)),
            other,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err_param(body: &Value) -> Option<String> {
        parse(Some(body)).unwrap_err().param
    }

    #[test]
    fn required_fields_and_params() {
        assert!(parse(None).unwrap_err().param.is_none());
        assert!(parse(Some(&json!([1]))).is_err());
        let msgs = json!([{"role": "user", "content": "hi"}]);
        assert_eq!(
            err_param(&json!({"messages": msgs})).as_deref(),
            Some("model")
        );
        assert_eq!(
            err_param(&json!({"model": "m"})).as_deref(),
            Some("messages")
        );
        assert_eq!(
            err_param(&json!({"model": "m", "messages": []})).as_deref(),
            Some("messages")
        );
        assert_eq!(
            err_param(&json!({"model": "m", "messages": [{"role": "bot", "content": "x"}]}))
                .as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            err_param(&json!({"model": "m", "messages": msgs, "stream_options": {}})).as_deref(),
            Some("stream_options")
        );
        assert_eq!(
            err_param(&json!({"model": "m", "messages": msgs, "tool_choice": "auto"})).as_deref(),
            Some("tool_choice")
        );
    }

    #[test]
    fn parses_options() {
        let body = json!({
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "stream": true, "stream_options": {"include_usage": true},
            "n": 2, "max_tokens": 3, "stop": ["x", ""],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false
        });
        let r = parse(Some(&body)).unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.n, 2);
        assert_eq!(r.max_tokens, Some(3));
        assert_eq!(r.stop, vec!["x".to_owned()]);
        assert_eq!(r.tool_choice, ToolChoice::Named("f".to_owned()));
        assert!(!r.parallel_tool_calls);
        assert_eq!(last_user_text(&r.messages), "ab");
    }
}
