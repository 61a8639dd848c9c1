//! Client request → canonical: reads every field that changes the answer, drops the ones
//! listed in the parent module's docs, and keeps the rest in `extra` for other encoders to refuse.

use serde_json::{Map, Value, json};

use super::shared::{field_err, reasoning_part, tool_calls};
use crate::DecodeError;
use crate::canonical::{
    CacheControl, ChatRequest, ImageSource, Message, Part, Reasoning, Role, Tool, ToolChoice,
};
use crate::openai::request::ChatRequestHead;

/// Fields read into canonical fields or deliberately ignored; anything else goes to `extra`.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "n",
    "stream",
    "stream_options",
    "reasoning_effort",
    "user",
    "store",
    "metadata",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "seed",
];

fn as_u64(v: &Value, param: &'static str) -> Result<u64, DecodeError> {
    v.as_u64()
        .ok_or_else(|| field_err(param, format!("`{param}` must be a non-negative integer")))
}

fn as_f64(v: &Value, param: &'static str) -> Result<f64, DecodeError> {
    v.as_f64()
        .ok_or_else(|| field_err(param, format!("`{param}` must be a number")))
}

/// Decodes a client's chat request into canonical form.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let head = ChatRequestHead::decode(body)?;
    let obj: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("the request body is not valid JSON: {e}")))?;
    let mut req = ChatRequest {
        model: head.model,
        stream: head.stream,
        ..ChatRequest::default()
    };
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        decode_message(&mut req, i, m)?;
    }
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        req.tools = decode_tools(tools)?;
    }
    if let Some(tc) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        req.tool_choice = Some(decode_tool_choice(tc, &mut req.extra)?);
    }
    req.parallel_tool_calls = obj.get("parallel_tool_calls").and_then(Value::as_bool);
    let max = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .map(|v| (v, "max_completion_tokens"));
    let max = max.or_else(|| {
        obj.get("max_tokens")
            .filter(|v| !v.is_null())
            .map(|v| (v, "max_tokens"))
    });
    if let Some((v, name)) = max {
        req.max_tokens = Some(as_u64(
            v,
            if name == "max_tokens" {
                "max_tokens"
            } else {
                "max_completion_tokens"
            },
        )?);
    }
    if let Some(v) = obj.get("temperature").filter(|v| !v.is_null()) {
        req.temperature = Some(as_f64(v, "temperature")?);
    }
    if let Some(v) = obj.get("top_p").filter(|v| !v.is_null()) {
        req.top_p = Some(as_f64(v, "top_p")?);
    }
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => req.stop = vec![s.clone()],
        Some(Value::Array(a)) => {
            req.stop = a
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    field_err("stop", "`stop` must be a string or an array of strings")
                })?;
        }
        Some(_) => {
            return Err(field_err(
                "stop",
                "`stop` must be a string or an array of strings",
            ));
        }
    }
    if let Some(v) = obj.get("n").filter(|v| !v.is_null()) {
        req.n = Some(as_u64(v, "n")?);
    }
    if let Some(e) = obj.get("reasoning_effort").and_then(Value::as_str) {
        req.reasoning = Some(Reasoning {
            budget_tokens: None,
            effort: Some(e.to_owned()),
        });
    }
    if let Some(v) = obj.get("response_format") {
        req.format = crate::openai::format::decode(v)?;
    }
    for (k, v) in &obj {
        if KNOWN.contains(&k.as_str())
            || ignorable(k, v)
            || (k == "response_format" && req.format.is_some())
        {
            continue;
        }
        req.extra.insert(k.clone(), v.clone());
    }
    Ok(req)
}

fn ignorable(key: &str, v: &Value) -> bool {
    match key {
        "logprobs" => v.as_bool() == Some(false) || v.is_null(),
        "frequency_penalty" | "presence_penalty" => v.as_f64() == Some(0.0) || v.is_null(),
        "response_format" => v.get("type").and_then(Value::as_str) == Some("text"),
        "modalities" => v.as_array().is_some_and(|a| a.iter().all(|m| m == "text")),
        _ => false,
    }
}

fn cache_of(v: &Value) -> Option<CacheControl> {
    let cc = v.get("cache_control")?;
    (cc.get("type").and_then(Value::as_str) == Some("ephemeral")).then(|| CacheControl {
        ttl: cc.get("ttl").and_then(Value::as_str).map(str::to_owned),
    })
}

/// Decodes `content` (string or parts) into canonical parts.
fn decode_content(content: &Value, i: usize, allow_images: bool) -> Result<Vec<Part>, DecodeError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::text(s.clone())]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(Part::Text {
                    text: p.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    cache: cache_of(p),
                }),
                Some("refusal") => Ok(Part::text(p.get("refusal").and_then(Value::as_str).unwrap_or_default())),
                Some("image_url") if allow_images => {
                    let img = p.get("image_url");
                    let url = img.and_then(|i| i.get("url")).and_then(Value::as_str).ok_or_else(|| {
                        field_err("messages", format!("messages[{i}]: image_url parts need image_url.url"))
                    })?;
                    Ok(Part::Image {
                        source: image_source(url),
                        detail: img.and_then(|i| i.get("detail")).and_then(Value::as_str).map(str::to_owned),
                        cache: cache_of(p),
                    })
                }
                Some(other) => Err(field_err(
                    "messages",
                    format!("messages[{i}]: content parts of type `{other}` are not supported for this model"),
                )),
                None => Err(field_err("messages", format!("messages[{i}]: every content part needs a `type`"))),
            })
            .collect(),
        _ => Err(field_err("messages", format!("messages[{i}].content must be a string or an array of parts"))),
    }
}

/// A `data:` URL becomes inline base64; anything else stays a URL.
fn image_source(url: &str) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    ImageSource::Url(url.to_owned())
}

fn decode_message(req: &mut ChatRequest, i: usize, m: &Value) -> Result<(), DecodeError> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
    let content = m.get("content").unwrap_or(&Value::Null);
    match role {
        // Anthropic and Gemini take one system prompt; every system or developer message is
        // hoisted into it, in order.
        "system" | "developer" => req.system.extend(decode_content(content, i, false)?),
        "user" => req.messages.push(Message {
            role: Role::User,
            parts: decode_content(content, i, true)?,
        }),
        "assistant" => {
            let mut parts: Vec<Part> = reasoning_part(m).into_iter().collect();
            parts.extend(decode_content(content, i, false)?);
            parts.extend(tool_calls(m));
            req.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
        "tool" => {
            let call_id = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    field_err(
                        "messages",
                        format!("messages[{i}]: tool messages need `tool_call_id`"),
                    )
                })?;
            let result = Part::ToolResult {
                call_id: call_id.to_owned(),
                name: None,
                content: decode_content(content, i, false)?,
                is_error: false,
                cache: None,
            };
            req.messages.push(Message {
                role: Role::Tool,
                parts: vec![result],
            });
        }
        _ => {
            return Err(field_err(
                "messages",
                format!(
                    "messages[{i}]: role `{role}` cannot be translated; use system, developer, user, assistant or tool"
                ),
            ));
        }
    }
    Ok(())
}

fn decode_tools(tools: &Value) -> Result<Vec<Tool>, DecodeError> {
    let arr = tools
        .as_array()
        .ok_or_else(|| field_err("tools", "`tools` must be an array"))?;
    arr.iter()
        .map(|t| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(field_err(
                    "tools",
                    "only `function` tools can be used with this model",
                ));
            }
            let f = t
                .get("function")
                .ok_or_else(|| field_err("tools", "function tools need a `function` object"))?;
            Ok(Tool {
                name: f
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| field_err("tools", "every function needs a `name`"))?
                    .to_owned(),
                description: f
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                parameters: f
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                cache: cache_of(t),
            })
        })
        .collect()
}

fn decode_tool_choice(
    tc: &Value,
    extra: &mut Map<String, Value>,
) -> Result<ToolChoice, DecodeError> {
    Ok(match tc {
        Value::String(s) if s == "auto" => ToolChoice::Auto,
        Value::String(s) if s == "none" => ToolChoice::None,
        Value::String(s) if s == "required" => ToolChoice::Required,
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            ToolChoice::Tool(
                o.get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        field_err("tool_choice", "`tool_choice.function.name` is required")
                    })?
                    .to_owned(),
            )
        }
        other => {
            extra.insert("tool_choice".into(), other.clone());
            ToolChoice::Auto
        }
    })
}
