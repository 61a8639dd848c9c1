//! Client request body → canonical [`ChatRequest`], validating like the Messages API. What is
//! ignored, refused or kept in `extra` is listed in the module docs of [`crate::anthropic`].
//!
//! This file reads the top level (model, limits, sampling, messages, tools, thinking);
//! `blocks` decodes content blocks and `shared` holds what both use.

mod blocks;
mod shared;

use serde_json::{Map, Value};

use self::blocks::{At, Place, cache_control, decode_blocks};
use self::shared::{Version, err, take, take_str};
use super::check;
use crate::DecodeError;
use crate::anthropic::MIN_THINKING_BUDGET;
use crate::canonical::{
    ChatRequest, Message, OutputFormat, Part, Reasoning, Role, SchemaSource, Tool, ToolChoice,
};

/// Top-level fields dropped on purpose (see the module docs for why).
const IGNORED: &[&str] = &[
    "metadata",
    "service_tier",
    "container",
    "inference_geo",
    "cache_control",
    // Server-side pruning of old tool results and thinking: without it the conversation goes
    // whole, which changes what the request costs, not what the answer means.
    "context_management",
];

/// Decodes a client's Messages request. `version` is its `anthropic-version` header.
pub fn decode_request(body: &[u8], version: &str) -> Result<ChatRequest, DecodeError> {
    let mut obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(DecodeError::body("the request body must be a JSON object")),
        Err(e) => {
            return Err(DecodeError::body(format!(
                "the request body is not valid JSON: {e}"
            )));
        }
    };
    let v = Version(version);
    let model = match obj.remove("model") {
        None | Some(Value::Null) => return Err(check::required("model")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(check::not_string("model")),
    };
    check::model(&model)?;
    let max_tokens = match obj.remove("max_tokens") {
        None | Some(Value::Null) => return Err(check::required("max_tokens")),
        Some(n) => n.as_u64().ok_or_else(check::max_tokens_type)?,
    };
    let messages = decode_messages(obj.remove("messages"), v)?;
    let system = take(&mut obj, "system").map_or(Ok(Vec::new()), decode_system)?;
    let temperature = sampling(&mut obj, "temperature", v)?
        .map(|x| unit_number(&x, "temperature"))
        .transpose()?;
    let top_p = sampling(&mut obj, "top_p", v)?
        .map(|x| unit_number(&x, "top_p"))
        .transpose()?;
    let top_k = sampling(&mut obj, "top_k", v)?
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| err("top_k", "top_k: Input should be a non-negative integer"))
        })
        .transpose()?;
    let stop = take(&mut obj, "stop_sequences").map_or(Ok(Vec::new()), decode_stop)?;
    let stream = match take(&mut obj, "stream") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(check::stream_type()),
    };
    let tools = take(&mut obj, "tools").map_or(Ok(Vec::new()), decode_tools)?;
    let (tool_choice, parallel_tool_calls) = match take(&mut obj, "tool_choice") {
        None => (None, None),
        Some(tc) => {
            let (c, p) = decode_tool_choice(tc)?;
            (Some(c), p)
        }
    };
    let mut reasoning = take(&mut obj, "thinking")
        .map(|t| decode_thinking(t, max_tokens))
        .transpose()?;
    let (effort, format) = take_output_config(&mut obj)?;
    if let Some(effort) = effort {
        reasoning.get_or_insert_with(Reasoning::default).effort = Some(effort);
    }
    let format = match (format, take(&mut obj, "output_format")) {
        (Some(_), Some(_)) => {
            return Err(err(
                "output_format",
                "output_format: cannot be combined with output_config.format; send only \
                 output_config.format (output_format is deprecated)",
            ));
        }
        (Some(f), None) => Some(f),
        (None, Some(old)) => Some(decode_format(
            old,
            "output_format",
            SchemaSource::AnthropicOutputFormat,
        )?),
        (None, None) => None,
    };
    for k in IGNORED {
        obj.remove(*k);
    }
    obj.retain(|_, v| !v.is_null());
    Ok(ChatRequest {
        model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        max_tokens: Some(max_tokens),
        temperature,
        top_p,
        top_k,
        stop,
        stream,
        reasoning,
        n: None,
        format,
        web_search: None,
        extra: obj,
    })
}

/// A sampling parameter, refused on versions that removed it.
fn sampling(
    obj: &mut Map<String, Value>,
    param: &'static str,
    v: Version<'_>,
) -> Result<Option<Value>, DecodeError> {
    let Some(value) = take(obj, param) else {
        return Ok(None);
    };
    if v.without_sampling() {
        return Err(err(
            param,
            format!(
                "{param}: not supported with anthropic-version {}; remove it or send anthropic-version 2023-06-01",
                v.0
            ),
        ));
    }
    Ok(Some(value))
}

fn unit_number(v: &Value, param: &'static str) -> Result<f64, DecodeError> {
    v.as_f64()
        .filter(|n| (0.0..=1.0).contains(n))
        .ok_or_else(|| {
            err(
                param,
                format!("{param}: Input should be a number between 0 and 1"),
            )
        })
}

fn decode_stop(v: Value) -> Result<Vec<String>, DecodeError> {
    let bad = || {
        err(
            "stop_sequences",
            "stop_sequences: Input should be a list of strings",
        )
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    items
        .into_iter()
        .map(|s| match s {
            Value::String(s) => Ok(s),
            _ => Err(bad()),
        })
        .collect()
}

fn decode_messages(v: Option<Value>, version: Version<'_>) -> Result<Vec<Message>, DecodeError> {
    let items = match v {
        None | Some(Value::Null) => return Err(check::required("messages")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(check::messages_type()),
    };
    if items.is_empty() {
        return Err(check::messages_empty());
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, m)| decode_message(i, m, version))
        .collect()
}

fn decode_message(i: usize, m: Value, version: Version<'_>) -> Result<Message, DecodeError> {
    let Value::Object(mut m) = m else {
        return Err(err(
            "messages",
            format!("messages.{i}: Input should be a valid dictionary"),
        ));
    };
    let role = match m.remove("role") {
        Some(Value::String(r)) if check::role_allowed(i, Some(&r)) => r,
        _ => return Err(check::role(i)),
    };
    let (role, place) = match role.as_str() {
        "user" => (Role::User, Place::User),
        "assistant" => (Role::Assistant, Place::Assistant),
        // A system message after the first (Claude Code's reminders): text blocks only.
        _ => (Role::System, Place::System),
    };
    let parts = match take(&mut m, "content") {
        None => return Err(check::content_required(i)),
        Some(Value::String(s)) => vec![Part::text(s)],
        Some(Value::Array(blocks)) => {
            let at = At {
                param: "messages",
                path: format!("messages.{i}.content"),
                place,
                version,
            };
            decode_blocks(blocks, &at)?
        }
        Some(_) => {
            return Err(err(
                "messages",
                format!(
                    "messages.{i}.content: Input should be a string or a list of content blocks"
                ),
            ));
        }
    };
    Ok(Message { role, parts })
}

fn decode_system(v: Value) -> Result<Vec<Part>, DecodeError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::text(s)]),
        Value::Array(blocks) => decode_blocks(
            blocks,
            &At {
                param: "system",
                path: "system".to_owned(),
                place: Place::System,
                version: Version(""),
            },
        ),
        _ => Err(err(
            "system",
            "system: Input should be a string or a list of text blocks",
        )),
    }
}

fn decode_tools(v: Value) -> Result<Vec<Tool>, DecodeError> {
    let Value::Array(items) = v else {
        return Err(err("tools", "tools: Input should be a valid list"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(k, t)| decode_tool(k, t))
        .collect()
}

fn decode_tool(k: usize, t: Value) -> Result<Tool, DecodeError> {
    let bad = |m: &dyn std::fmt::Display| err("tools", format!("tools.{k}{m}"));
    let Value::Object(mut t) = t else {
        return Err(bad(&": Input should be a valid dictionary"));
    };
    match take_str(&mut t, "type") {
        None => {}
        Some(Ok(kind)) if kind == "custom" => {}
        Some(Ok(kind)) => {
            return Err(bad(&format_args!(
                ": tool type `{kind}` (a server or Anthropic-defined tool) is not supported by this gateway; define a client tool with `name` and `input_schema`"
            )));
        }
        Some(Err(_)) => return Err(bad(&".type: Input should be a valid string")),
    }
    let name = match take_str(&mut t, "name") {
        Some(Ok(n)) if !n.is_empty() => n,
        _ => return Err(bad(&".name: Input should be a non-empty string")),
    };
    let description = match take_str(&mut t, "description") {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => return Err(bad(&".description: Input should be a valid string")),
    };
    let parameters = match take(&mut t, "input_schema") {
        Some(s @ Value::Object(_)) => s,
        None => return Err(bad(&".input_schema: Field required")),
        Some(_) => return Err(bad(&".input_schema: Input should be a valid dictionary")),
    };
    let cache = match take(&mut t, "cache_control") {
        None => None,
        Some(c) => Some(cache_control(c).map_err(|m| bad(&m))?),
    };
    Ok(Tool {
        name,
        description,
        parameters,
        cache,
    })
}

fn decode_tool_choice(v: Value) -> Result<(ToolChoice, Option<bool>), DecodeError> {
    let bad = |m: &str| err("tool_choice", format!("tool_choice{m}"));
    let Value::Object(mut c) = v else {
        return Err(bad(": Input should be a valid dictionary"));
    };
    let choice = match take_str(&mut c, "type").and_then(Result::ok).as_deref() {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => match take_str(&mut c, "name") {
            Some(Ok(n)) => ToolChoice::Tool(n),
            _ => return Err(bad(".name: Field required")),
        },
        _ => {
            return Err(bad(
                ".type: Input should be 'auto', 'any', 'tool' or 'none'",
            ));
        }
    };
    let parallel = match take(&mut c, "disable_parallel_tool_use") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(false),
        Some(_) => {
            return Err(bad(
                ".disable_parallel_tool_use: Input should be a valid boolean",
            ));
        }
    };
    Ok((choice, parallel))
}

fn decode_thinking(v: Value, max_tokens: u64) -> Result<Reasoning, DecodeError> {
    let bad = |m: &str| err("thinking", format!("thinking{m}"));
    let Value::Object(mut t) = v else {
        return Err(bad(": Input should be a valid dictionary"));
    };
    match take_str(&mut t, "type").and_then(Result::ok).as_deref() {
        Some("enabled") => {
            let budget = take(&mut t, "budget_tokens")
                .as_ref()
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(".budget_tokens: Input should be a valid integer"))?;
            if budget < MIN_THINKING_BUDGET {
                return Err(bad(&format!(
                    ".budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
                )));
            }
            if budget >= max_tokens {
                return Err(err(
                    "thinking",
                    "`max_tokens` must be greater than `thinking.budget_tokens`",
                ));
            }
            Ok(Reasoning {
                budget_tokens: Some(budget),
                effort: None,
            })
        }
        Some("disabled") => Ok(Reasoning {
            budget_tokens: Some(0),
            effort: None,
        }),
        Some("adaptive") => Ok(Reasoning::default()),
        _ => Err(bad(
            ".type: Input should be 'enabled', 'disabled' or 'adaptive'",
        )),
    }
}

/// `output_config.effort` and `output_config.format`; whatever else `output_config` holds
/// stays in `obj` under `output_config` (and so in `extra`).
fn take_output_config(
    obj: &mut Map<String, Value>,
) -> Result<(Option<String>, Option<OutputFormat>), DecodeError> {
    let mut oc = match take(obj, "output_config") {
        None => return Ok((None, None)),
        Some(Value::Object(oc)) => oc,
        Some(_) => {
            return Err(err(
                "output_config",
                "output_config: Input should be a valid dictionary",
            ));
        }
    };
    let effort = match take_str(&mut oc, "effort") {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(_)) => {
            return Err(err(
                "output_config",
                "output_config.effort: Input should be a valid string",
            ));
        }
    };
    let format = take(&mut oc, "format")
        .map(|f| {
            decode_format(
                f,
                "output_config.format",
                SchemaSource::AnthropicOutputConfig,
            )
        })
        .transpose()?;
    oc.retain(|_, v| !v.is_null());
    if !oc.is_empty() {
        obj.insert("output_config".into(), Value::Object(oc));
    }
    Ok((effort, format))
}

/// `{"type": "json_schema", "schema": {…}}` (at `at`) as a canonical format.
fn decode_format(
    v: Value,
    at: &'static str,
    source: SchemaSource,
) -> Result<OutputFormat, DecodeError> {
    let param = source.param();
    let Value::Object(mut f) = v else {
        return Err(err(
            param,
            format!("{at}: Input should be a valid dictionary"),
        ));
    };
    match take_str(&mut f, "type").and_then(Result::ok).as_deref() {
        Some("json_schema") => {}
        _ => {
            return Err(err(
                param,
                format!("{at}.type: Input should be 'json_schema'"),
            ));
        }
    }
    match take(&mut f, "schema") {
        Some(schema @ Value::Object(_)) => Ok(OutputFormat::constrained(schema, source)),
        None => Err(err(param, format!("{at}.schema: Field required"))),
        Some(_) => Err(err(
            param,
            format!("{at}.schema: Input should be a valid dictionary"),
        )),
    }
}
