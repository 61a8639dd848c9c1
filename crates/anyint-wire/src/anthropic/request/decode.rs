//! Client request body → canonical [`ChatRequest`], validating like the Messages API. What is
//! ignored, refused or kept in `extra` is listed in the module docs of [`crate::anthropic`].

use serde_json::{Map, Value};

use super::check;
use crate::DecodeError;
use crate::anthropic::MIN_THINKING_BUDGET;
use crate::canonical::signature::{self, Origin};
use crate::canonical::{
    CacheControl, ChatRequest, ImageSource, Message, Part, Reasoning, Role, Tool, ToolChoice,
};

/// Top-level fields dropped on purpose (see the module docs for why).
const IGNORED: &[&str] = &[
    "metadata",
    "service_tier",
    "container",
    "inference_geo",
    "cache_control",
];

/// The first `anthropic-version` without sampling parameters. Versions are dates, so a plain
/// string comparison orders them.
const SAMPLING_REMOVED_IN: &str = "2026-10-21";

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
    if let Some(effort) = take_effort(&mut obj) {
        reasoning.get_or_insert_with(Reasoning::default).effort = Some(effort);
    }
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
        extra: obj,
    })
}

#[derive(Clone, Copy)]
struct Version<'a>(&'a str);

impl Version<'_> {
    fn without_sampling(self) -> bool {
        self.0.trim() >= SAMPLING_REMOVED_IN
    }
}

fn err(param: &'static str, msg: impl Into<String>) -> DecodeError {
    DecodeError::field(param, msg)
}

/// Removes `key`; a `null` value counts as absent.
fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    obj.remove(key).filter(|v| !v.is_null())
}

fn take_str(obj: &mut Map<String, Value>, key: &str) -> Option<Result<String, Value>> {
    take(obj, key).map(|v| match v {
        Value::String(s) => Ok(s),
        other => Err(other),
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
    let (role, place) = match m.remove("role") {
        Some(Value::String(r)) if r == "user" => (Role::User, Place::User),
        Some(Value::String(r)) if r == "assistant" => (Role::Assistant, Place::Assistant),
        _ => return Err(check::role(i)),
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

/// Where a block sits, which decides the block types it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    System,
    User,
    Assistant,
    ToolResult,
}

/// A block list's location, for error messages.
struct At<'a> {
    param: &'static str,
    path: String,
    place: Place,
    version: Version<'a>,
}

impl At<'_> {
    fn err(&self, j: usize, msg: impl std::fmt::Display) -> DecodeError {
        err(self.param, format!("{}.{j}{msg}", self.path))
    }
}

fn decode_blocks(blocks: Vec<Value>, at: &At<'_>) -> Result<Vec<Part>, DecodeError> {
    blocks
        .into_iter()
        .enumerate()
        .map(|(j, b)| decode_block(b, j, at))
        .collect()
}

fn decode_block(b: Value, j: usize, at: &At<'_>) -> Result<Part, DecodeError> {
    let Value::Object(mut b) = b else {
        return Err(at.err(j, ": Input should be a valid dictionary"));
    };
    let Some(Value::String(kind)) = b.remove("type") else {
        return Err(at.err(j, ".type: Field required"));
    };
    let cache = decode_cache(take(&mut b, "cache_control"), j, at)?;
    let string = |b: &mut Map<String, Value>, key: &str| match take_str(b, key) {
        Some(Ok(s)) => Ok(s),
        _ => Err(at.err(j, format_args!(".{key}: Input should be a valid string"))),
    };
    let allowed = match kind.as_str() {
        "text" => true,
        "image" => at.place != Place::System,
        "tool_use" => at.place == Place::Assistant,
        "tool_result" => at.place == Place::User,
        "thinking" | "redacted_thinking" => matches!(at.place, Place::User | Place::Assistant),
        "document" => {
            return Err(at.err(
                j,
                ": `document` blocks are not supported by this gateway; send the text or page images instead",
            ));
        }
        other => {
            return Err(at.err(
                j,
                format_args!(
                    ".type: content block type `{other}` is not supported by this gateway"
                ),
            ));
        }
    };
    if !allowed {
        return Err(at.err(
            j,
            format_args!(
                ": `{kind}` blocks are not allowed in {}",
                place_name(at.place)
            ),
        ));
    }
    Ok(match kind.as_str() {
        "text" => {
            let has_citations = take(&mut b, "citations")
                .is_some_and(|c| c.as_array().is_none_or(|a| !a.is_empty()));
            if has_citations && at.place == Place::User && at.version.without_sampling() {
                return Err(at.err(
                    j,
                    format_args!(
                        ".citations: not allowed in user messages with anthropic-version {}",
                        at.version.0
                    ),
                ));
            }
            Part::Text {
                text: string(&mut b, "text")?,
                cache,
            }
        }
        "image" => Part::Image {
            source: decode_image(take(&mut b, "source"), j, at)?,
            detail: None,
            cache,
        },
        "tool_use" => {
            let id = string(&mut b, "id")?;
            let name = string(&mut b, "name")?;
            let arguments = match take(&mut b, "input") {
                Some(input @ Value::Object(_)) => input.to_string(),
                _ => return Err(at.err(j, ".input: Input should be a valid dictionary")),
            };
            Part::ToolCall {
                id,
                name,
                arguments,
            }
        }
        "tool_result" => decode_tool_result(b, cache, j, at)?,
        "thinking" => Part::Reasoning {
            text: string(&mut b, "thinking")?,
            signature: match take_str(&mut b, "signature") {
                None => None,
                Some(Ok(s)) if s.is_empty() => None,
                // Untagged: one Anthropic issued; tagged: another family's, given to this
                // client earlier in the conversation.
                Some(Ok(s)) => Some(signature::from_wire(Origin::Anthropic, &s)),
                Some(Err(_)) => {
                    return Err(at.err(j, ".signature: Input should be a valid string"));
                }
            },
            redacted: None,
        },
        // Only "redacted_thinking" is left: every other kind returned above.
        _ => Part::Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some(string(&mut b, "data")?),
        },
    })
}

fn place_name(p: Place) -> &'static str {
    match p {
        Place::System => "the system prompt",
        Place::User => "user messages",
        Place::Assistant => "assistant messages",
        Place::ToolResult => "tool results",
    }
}

fn decode_cache(
    v: Option<Value>,
    j: usize,
    at: &At<'_>,
) -> Result<Option<CacheControl>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    cache_control(v).map(Some).map_err(|m| at.err(j, m))
}

/// `{type: "ephemeral", ttl?}`; the error is a message suffix starting at `.cache_control`.
fn cache_control(v: Value) -> Result<CacheControl, &'static str> {
    let Value::Object(mut c) = v else {
        return Err(".cache_control: Input should be a valid dictionary");
    };
    if c.get("type").and_then(Value::as_str) != Some("ephemeral") {
        return Err(".cache_control.type: Input should be 'ephemeral'");
    }
    let ttl = match take_str(&mut c, "ttl") {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Err(".cache_control.ttl: Input should be '5m' or '1h'"),
    };
    Ok(CacheControl { ttl })
}

fn decode_image(source: Option<Value>, j: usize, at: &At<'_>) -> Result<ImageSource, DecodeError> {
    let Some(Value::Object(mut s)) = source else {
        return Err(at.err(j, ".source: Field required"));
    };
    let mut string = |key: &str| match take_str(&mut s, key) {
        Some(Ok(v)) => Ok(v),
        _ => Err(at.err(
            j,
            format_args!(".source.{key}: Input should be a valid string"),
        )),
    };
    match string("type")?.as_str() {
        "base64" => {
            let media_type = string("media_type")?;
            if !matches!(
                media_type.as_str(),
                "image/jpeg" | "image/png" | "image/gif" | "image/webp"
            ) {
                return Err(at.err(
                    j,
                    ".source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                ));
            }
            Ok(ImageSource::Base64 {
                media_type,
                data: string("data")?,
            })
        }
        "url" => Ok(ImageSource::Url(string("url")?)),
        other => Err(at.err(
            j,
            format_args!(".source.type: image source `{other}` is not supported by this gateway; use base64 or url"),
        )),
    }
}

fn decode_tool_result(
    mut b: Map<String, Value>,
    cache: Option<CacheControl>,
    j: usize,
    at: &At<'_>,
) -> Result<Part, DecodeError> {
    let Some(Ok(call_id)) = take_str(&mut b, "tool_use_id") else {
        return Err(at.err(j, ".tool_use_id: Input should be a valid string"));
    };
    let content = match take(&mut b, "content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Part::text(s)],
        Some(Value::Array(blocks)) => decode_blocks(
            blocks,
            &At {
                param: at.param,
                path: format!("{}.{j}.content", at.path),
                place: Place::ToolResult,
                version: at.version,
            },
        )?,
        Some(_) => {
            return Err(at.err(
                j,
                ".content: Input should be a string or a list of content blocks",
            ));
        }
    };
    let is_error = match take(&mut b, "is_error") {
        None => false,
        Some(Value::Bool(e)) => e,
        Some(_) => return Err(at.err(j, ".is_error: Input should be a valid boolean")),
    };
    Ok(Part::ToolResult {
        call_id,
        name: None,
        content,
        is_error,
        cache,
    })
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

/// `output_config.effort` when it is all `output_config` holds; otherwise `output_config`
/// stays in `obj` (and so in `extra`).
fn take_effort(obj: &mut Map<String, Value>) -> Option<String> {
    let Some(Value::Object(oc)) = obj.get("output_config") else {
        return None;
    };
    let mut set = oc.iter().filter(|(_, v)| !v.is_null());
    let only_effort = matches!(
        (set.next(), set.next()),
        (Some((k, Value::String(_))), None) if k == "effort"
    );
    if !only_effort {
        return None;
    }
    match obj.remove("output_config") {
        Some(Value::Object(mut oc)) => take_str(&mut oc, "effort").and_then(Result::ok),
        _ => None,
    }
}
