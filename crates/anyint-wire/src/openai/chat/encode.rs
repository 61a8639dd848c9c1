//! Canonical → OpenAI-compatible upstream request body: refuses what Chat Completions cannot
//! carry, and reshapes tool results and system blocks into Chat Completions messages.

use serde_json::{Map, Value, json};

use super::shared::{field_err, text_of};
use crate::DecodeError;
use crate::canonical::{ChatRequest, ImageSource, Message, OutputFormat, Part, Role, ToolChoice};

/// Encodes a canonical request as an OpenAI-compatible upstream body. Streams always ask for
/// the usage chunk so the gateway can meter.
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    // `top_logprobs` (from a Responses client) is the one `extra` field Chat Completions takes.
    if let Some(k) = req.extra.keys().find(|k| *k != "top_logprobs") {
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
    messages.extend(system_message(req));
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
    if let Some(f) = &req.format {
        body.insert("response_format".into(), crate::openai::format::encode(f)?);
    }
    if let Some(n) = req.extra.get("top_logprobs") {
        body.insert("logprobs".into(), json!(true));
        body.insert("top_logprobs".into(), n.clone());
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    serde_json::to_vec(&body).map_err(|e| DecodeError::body(e.to_string()))
}

/// The system prompt as one system message; JSON mode adds "Respond in JSON." when no message
/// says "json" (OpenAI refuses JSON mode without the word).
fn system_message(req: &ChatRequest) -> Option<Value> {
    let mut system: Vec<&str> = req.system.iter().filter_map(text_of).collect();
    if req.format == Some(OutputFormat::JsonObject) && !crate::schema::mentions_json(req, true) {
        system.push(crate::schema::JSON_HINT);
    }
    (!system.is_empty()).then(|| json!({"role": "system", "content": system.join("\n\n")}))
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

/// Appends a canonical message as Chat Completions messages. A system message stays where it
/// was said, as a `system` message. A user turn's tool results
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
        Role::System => {
            let text: Vec<&str> = m.parts.iter().filter_map(text_of).collect();
            if !text.is_empty() {
                out.push(json!({"role": "system", "content": text.join("\n\n")}));
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
