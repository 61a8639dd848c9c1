//! OpenAI Chat Completions ⇄ canonical, for translation to and from other families.
//!
//! Decoding a client request keeps every field that changes the answer. Fields that do not
//! change it are dropped on purpose and listed here: `user`, `store`, `metadata`,
//! `service_tier`, `safety_identifier`, `prompt_cache_key`, `seed`, `stream_options` (the
//! gateway handles usage itself), `logprobs: false`, `response_format: {"type":"text"}`,
//! `modalities: ["text"]`, and zero-valued `frequency_penalty` / `presence_penalty`.
//! Everything else without a canonical home goes to `extra`, which other families' encoders
//! refuse with a 400 naming the field.
//!
//! Encoding for an OpenAI-compatible upstream: system blocks become one `system` message
//! (cache markers are dropped: OpenAI caches prompts automatically); reasoning parts in past
//! assistant turns are dropped (Chat Completions has no input for them); tool results become
//! `tool` messages; `max_tokens` is sent as `max_completion_tokens`; a thinking budget maps to
//! `reasoning_effort` (≤ 2048 low, ≤ 8192 medium, else high); `top_k` has no equivalent and is
//! refused, and so is `n > 1` (the translated path carries one choice back). A `tool` message
//! holds only text: a tool result's images go in a `user` message right after the tool
//! messages. Reasoning signatures are dropped (OpenAI has none). Usage sent to OpenAI clients
//! adds `prompt_tokens_details.cache_write_tokens` when the upstream wrote to its cache.

use serde_json::{Map, Value, json};

use crate::DecodeError;
use crate::canonical::{
    CacheControl, ChatRequest, ChatResponse, FinishReason, ImageSource, Message, Part, Reasoning,
    Role, Tool, ToolChoice, Usage,
};

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

fn field_err(param: &'static str, msg: impl Into<String>) -> DecodeError {
    DecodeError::field(param, msg)
}

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
    let head = super::ChatRequestHead::decode(body)?;
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
    for (k, v) in &obj {
        if KNOWN.contains(&k.as_str()) || ignorable(k, v) {
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

/// The `tool_calls` of an assistant message (request history or response), in order.
fn tool_calls(message: &Value) -> impl Iterator<Item = Part> + '_ {
    let text =
        |v: Option<&Value>, default: &str| v.and_then(Value::as_str).unwrap_or(default).to_owned();
    message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(move |call| {
            let f = call.get("function");
            Part::ToolCall {
                id: text(call.get("id"), ""),
                name: text(f.and_then(|f| f.get("name")), ""),
                arguments: text(f.and_then(|f| f.get("arguments")), "{}"),
            }
        })
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

/// Encodes a canonical request as an OpenAI-compatible upstream body. Streams always ask for
/// the usage chunk so the gateway can meter.
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    if let Some(k) = req.extra.keys().next() {
        return Err(DecodeError::unsupported(k, "openai"));
    }
    if req.top_k.is_some() {
        return Err(field_err(
            "top_k",
            "`top_k` is not supported by this model's upstream (openai)",
        ));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(field_err(
            "n",
            "`n` greater than 1 is not supported when this model is served through translation \
             (only one choice is carried back); send one request per choice",
        ));
    }
    if req.stop.len() > 4 {
        return Err(field_err(
            "stop_sequences",
            "this model's upstream (openai) accepts at most 4 stop sequences",
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    let system: Vec<&str> = req.system.iter().filter_map(text_of).collect();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system.join("\n\n")}));
    }
    for m in &req.messages {
        encode_message(m, &mut messages);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let (Some(d), Some(o)) = (&t.description, f.as_object_mut()) {
                    o.insert("description".into(), json!(d));
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = &req.tool_choice {
        body.insert(
            "tool_choice".into(),
            match tc {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(n) => json!({"type": "function", "function": {"name": n}}),
            },
        );
    }
    if let Some(p) = req.parallel_tool_calls.filter(|_| !req.tools.is_empty()) {
        body.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(m) = req.max_tokens {
        body.insert("max_completion_tokens".into(), json!(m));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        body.insert("stop".into(), json!(req.stop));
    }
    if let Some(n) = req.n {
        body.insert("n".into(), json!(n));
    }
    if let Some(r) = &req.reasoning {
        let effort = r.effort.clone().or_else(|| {
            r.budget_tokens.map(|b| match b {
                0..=2048 => "low".to_owned(),
                2049..=8192 => "medium".to_owned(),
                _ => "high".to_owned(),
            })
        });
        if let Some(e) = effort {
            body.insert("reasoning_effort".into(), json!(e));
        }
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    serde_json::to_vec(&body).map_err(|e| DecodeError::body(e.to_string()))
}

fn text_of(p: &Part) -> Option<&str> {
    match p {
        Part::Text { text, .. } => Some(text),
        _ => None,
    }
}

fn encode_parts(parts: &[&Part]) -> Value {
    let only_text = parts.iter().all(|p| matches!(p, Part::Text { .. }));
    if only_text {
        let text: Vec<&str> = parts.iter().filter_map(|p| text_of(p)).collect();
        return json!(text.join(""));
    }
    Value::Array(parts.iter().filter_map(|p| content_part(p)).collect())
}

/// A text or image part as a content array item; `None` for other parts.
fn content_part(p: &Part) -> Option<Value> {
    match p {
        Part::Text { text, .. } => Some(json!({"type": "text", "text": text})),
        Part::Image { source, detail, .. } => {
            let url = match source {
                ImageSource::Url(u) => u.clone(),
                ImageSource::Base64 { media_type, data } => {
                    format!("data:{media_type};base64,{data}")
                }
            };
            let mut img = json!({"url": url});
            if let (Some(d), Some(o)) = (detail, img.as_object_mut()) {
                o.insert("detail".into(), json!(d));
            }
            Some(json!({"type": "image_url", "image_url": img}))
        }
        _ => None,
    }
}

/// Appends a canonical message as Chat Completions messages. A user turn's tool results
/// become `tool` messages first (they answer the previous assistant turn). A `tool` message
/// holds text only, so a result's text is its content and its images follow in a `user`
/// message, each result's introduced by "Images returned by tool call <id>:", before the rest
/// of the user turn.
fn encode_message(m: &Message, out: &mut Vec<Value>) {
    match m.role {
        Role::User | Role::Tool => {
            let mut rest: Vec<&Part> = Vec::new();
            let mut images: Vec<Value> = Vec::new();
            for p in &m.parts {
                if let Part::ToolResult {
                    call_id,
                    content,
                    is_error,
                    ..
                } = p
                {
                    let mut text: String = content.iter().filter_map(text_of).collect();
                    let pictures: Vec<Value> = content
                        .iter()
                        .filter(|c| matches!(c, Part::Image { .. }))
                        .filter_map(content_part)
                        .collect();
                    if !pictures.is_empty() {
                        images.push(json!({
                            "type": "text",
                            "text": format!("Images returned by tool call {call_id}:"),
                        }));
                        images.extend(pictures);
                        if text.is_empty() {
                            "(the result is the images in the next message)".clone_into(&mut text);
                        }
                    }
                    if *is_error && !text.starts_with("Error") {
                        text = format!("Error: {text}");
                    }
                    out.push(json!({"role": "tool", "tool_call_id": call_id, "content": text}));
                } else {
                    rest.push(p);
                }
            }
            if !images.is_empty() {
                images.extend(rest.drain(..).filter_map(content_part));
                out.push(json!({"role": "user", "content": images}));
            } else if !rest.is_empty() {
                out.push(json!({"role": "user", "content": encode_parts(&rest)}));
            }
        }
        Role::Assistant => {
            let text: String = m.parts.iter().filter_map(text_of).collect();
            let calls: Vec<Value> = m
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall { id, name, arguments } => Some(json!({
                        "id": id, "type": "function", "function": {"name": name, "arguments": arguments}
                    })),
                    _ => None,
                })
                .collect();
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
            if let (false, Some(o)) = (calls.is_empty(), msg.as_object_mut()) {
                o.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(msg);
        }
    }
}

/// Maps an OpenAI `finish_reason`.
pub(super) fn decode_finish(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The OpenAI name of a finish reason.
pub(super) fn encode_finish(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::Stop | FinishReason::StopSequence | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Decodes an OpenAI-compatible upstream's response (first choice).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("upstream response is not valid JSON: {e}")))?;
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| DecodeError::body("upstream response has no choices"))?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut parts: Vec<Part> = reasoning_part(msg).into_iter().collect();
    if let Some(t) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        parts.push(Part::text(t));
    }
    parts.extend(tool_calls(msg));
    Ok(ChatResponse {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        created: v.get("created").and_then(Value::as_i64),
        parts,
        finish: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(decode_finish),
        stop_sequence: None,
        usage: super::usage_from_response(body).unwrap_or_default(),
    })
}

/// The OpenAI `usage` object for canonical usage.
pub(super) fn encode_usage(u: &Usage) -> Value {
    let mut prompt_details = json!({"cached_tokens": u.cache_read_tokens});
    // Not an OpenAI field, but the one OpenAI-compatible providers (and our decoder) use for
    // cache writes, which bill differently.
    if u.cache_write_tokens > 0
        && let Some(d) = prompt_details.as_object_mut()
    {
        d.insert("cache_write_tokens".into(), json!(u.cache_write_tokens));
    }
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

/// Encodes a canonical response as the body an OpenAI client receives.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let text: String = resp.parts.iter().filter_map(text_of).collect();
    let reasoning: String = resp
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let calls: Vec<Value> = resp
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({
                "id": id, "type": "function", "function": {"name": name, "arguments": arguments}
            })),
            _ => None,
        })
        .collect();
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": Value::Null,
    });
    if let Some(o) = message.as_object_mut() {
        if !calls.is_empty() {
            o.insert("tool_calls".into(), Value::Array(calls));
        }
        if !reasoning.is_empty() {
            o.insert("reasoning_content".into(), json!(reasoning));
        }
    }
    let finish = resp.finish.as_ref().map_or("stop", encode_finish);
    let id = if resp.id.starts_with("chatcmpl") {
        resp.id.clone()
    } else {
        format!("chatcmpl-{}", resp.id)
    };
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": resp.created.unwrap_or(0),
        "model": resp.model,
        "choices": [{"index": 0, "message": message, "logprobs": Value::Null, "finish_reason": finish}],
        "usage": encode_usage(&resp.usage),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `reasoning_content` of an assistant message (request history or response), as a
/// reasoning part; OpenAI-compatible reasoning carries no signature.
fn reasoning_part(message: &Value) -> Option<Part> {
    message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(|r| Part::Reasoning {
            text: r.to_owned(),
            signature: None,
            redacted: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_system_tools_images_and_tool_results() {
        let body = br#"{"model":"m","max_tokens":9,"stop":"X","temperature":0.5,"user":"u1",
          "messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}}]},
          {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"R"}],
          "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}"#;
        let r = decode_request(body).unwrap();
        assert_eq!(r.system, vec![Part::text("S")]);
        assert_eq!(r.max_tokens, Some(9));
        assert_eq!(r.stop, vec!["X".to_owned()]);
        assert!(r.extra.is_empty(), "{:?}", r.extra);
        assert!(matches!(
            &r.messages[0].parts[0],
            Part::Text { cache: Some(_), .. }
        ));
        assert!(matches!(
            &r.messages[0].parts[1],
            Part::Image {
                source: ImageSource::Base64 { .. },
                ..
            }
        ));
        assert!(matches!(&r.messages[1].parts[0], Part::ToolCall { name, .. } if name == "f"));
        assert!(
            matches!(&r.messages[2].parts[0], Part::ToolResult { call_id, .. } if call_id == "c1")
        );
        assert_eq!(r.tool_choice, Some(ToolChoice::Required));
    }

    #[test]
    fn unsupported_fields_land_in_extra_and_are_refused_by_other_encoders() {
        let r = decode_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,"response_format":{"type":"json_object"}}"#).unwrap();
        assert!(r.extra.contains_key("logprobs") && r.extra.contains_key("response_format"));
        let r = decode_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":false,"response_format":{"type":"text"}}"#).unwrap();
        assert!(r.extra.is_empty());
        let e = decode_request(br#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#).unwrap_err();
        assert_eq!(e.param, Some("messages"));
    }

    #[test]
    fn encode_then_decode_round_trips_the_conversation() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"R"}],"max_tokens":5,"stream":true}"#;
        let r = decode_request(body).unwrap();
        let out = encode_request(&r).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["max_completion_tokens"], 5);
        let back = decode_request(&out).unwrap();
        assert_eq!(back.messages, r.messages);
        assert_eq!(back.system, r.system);
    }

    #[test]
    fn anthropic_style_tool_results_become_tool_messages() {
        let req = ChatRequest {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult {
                        call_id: "t1".into(),
                        name: None,
                        content: vec![Part::text("ok")],
                        is_error: false,
                        cache: None,
                    },
                    Part::text("next?"),
                ],
            }],
            ..ChatRequest::default()
        };
        let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
        assert_eq!(
            v["messages"][0],
            json!({"role":"tool","tool_call_id":"t1","content":"ok"})
        );
        assert_eq!(v["messages"][1], json!({"role":"user","content":"next?"}));
        let mut with_top_k = req;
        with_top_k.top_k = Some(3);
        assert_eq!(
            encode_request(&with_top_k).unwrap_err().param,
            Some("top_k")
        );
    }

    #[test]
    fn tool_result_images_follow_in_a_user_message() {
        let png = |data: &str| Part::Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: data.into(),
            },
            detail: None,
            cache: None,
        };
        let req = ChatRequest {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult {
                        call_id: "t1".into(),
                        name: None,
                        content: vec![Part::text("a chart"), png("AAA")],
                        is_error: false,
                        cache: None,
                    },
                    Part::ToolResult {
                        call_id: "t2".into(),
                        name: None,
                        content: vec![png("BBB")],
                        is_error: false,
                        cache: None,
                    },
                    Part::text("what do they show?"),
                ],
            }],
            ..ChatRequest::default()
        };
        let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
        assert_eq!(
            v["messages"],
            json!([
                {"role":"tool","tool_call_id":"t1","content":"a chart"},
                {"role":"tool","tool_call_id":"t2","content":"(the result is the images in the next message)"},
                {"role":"user","content":[
                    {"type":"text","text":"Images returned by tool call t1:"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}},
                    {"type":"text","text":"Images returned by tool call t2:"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,BBB"}},
                    {"type":"text","text":"what do they show?"}
                ]}
            ])
        );
    }

    #[test]
    fn usage_reports_cache_writes_when_there_are_some() {
        let mut u = Usage {
            input_tokens: 100,
            output_tokens: 5,
            cache_read_tokens: 40,
            cache_write_tokens: 30,
            reasoning_tokens: 0,
        };
        assert_eq!(
            encode_usage(&u)["prompt_tokens_details"],
            json!({"cached_tokens": 40, "cache_write_tokens": 30})
        );
        let body = json!({"choices": [{"message": {"content": "x"}}], "usage": encode_usage(&u)});
        assert_eq!(
            super::super::usage_from_response(body.to_string().as_bytes()),
            Some(u)
        );
        u.cache_write_tokens = 0;
        assert_eq!(
            encode_usage(&u)["prompt_tokens_details"],
            json!({"cached_tokens": 40})
        );
    }

    #[test]
    fn more_than_one_choice_is_refused() {
        let mut req = ChatRequest {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::text("x")],
            }],
            n: Some(2),
            ..ChatRequest::default()
        };
        let e = encode_request(&req).unwrap_err();
        assert_eq!(e.param, Some("n"));
        assert!(e.message.contains("`n`"), "{e}");
        req.n = Some(1);
        let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn response_round_trip() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":5,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let r = decode_response(body).unwrap();
        assert_eq!(r.finish, Some(FinishReason::Length));
        assert_eq!(r.usage.output_tokens, 4);
        let again = decode_response(&encode_response(&r)).unwrap();
        assert_eq!(again, r);
    }
}
