//! Canonical [`ChatRequest`] → the body for a native Responses upstream, for Chat, Anthropic
//! and Gemini clients (mapping in the module docs of [`crate::responses`]).

use serde_json::{Map, Value, json};

use super::head::INCLUDE_ENCRYPTED;
use super::request::encode_format;
use super::tools::encode_tool;
use crate::DecodeError;
use crate::canonical::signature::{self, Origin};
use crate::canonical::{
    ChatRequest, ImageSource, Message, OutputFormat, Part, Reasoning, Role, ToolChoice,
};

/// The only `extra` field a Responses upstream takes (left by a Responses client).
const EXTRA_OK: &[&str] = &["top_logprobs"];

const TARGET: &str = "openai responses";

/// Encodes a canonical request for a Responses upstream. Refuses with a 400 what it cannot
/// carry: `extra` fields (naming the first), `top_k`, `n > 1` and stop sequences.
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    if let Some(k) = req.extra.keys().find(|k| !EXTRA_OK.contains(&k.as_str())) {
        return Err(DecodeError::unsupported(k, TARGET));
    }
    if req.top_k.is_some() {
        return Err(DecodeError::field(
            "top_k",
            "`top_k` is not supported by this model's upstream (openai responses)",
        ));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(DecodeError::field(
            "n",
            "`n` greater than 1 is not supported by this model's upstream (openai responses); \
             send one request per choice",
        ));
    }
    if !req.stop.is_empty() {
        return Err(DecodeError::field(
            "stop",
            "stop sequences (`stop`, `stop_sequences`, `stopSequences`) are not supported by \
             this model's upstream (openai responses); remove them or choose a model served by \
             a compatible upstream",
        ));
    }
    let mut input = Vec::with_capacity(req.messages.len() + 1);
    if req.format == Some(OutputFormat::JsonObject) && !crate::schema::mentions_json(req, false) {
        // JSON mode needs "json" in an input message; `instructions` do not count.
        input.push(json!({"type": "message", "role": "developer",
            "content": [{"type": "input_text", "text": crate::schema::JSON_HINT}]}));
    }
    let mut replays_reasoning = false;
    for m in &req.messages {
        replays_reasoning |= encode_message(m, &mut input);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    let system: Vec<&str> = req
        .system
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !system.is_empty() {
        body.insert("instructions".into(), json!(system.join("\n\n")));
    }
    body.insert("input".into(), Value::Array(input));
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            req.tools.iter().map(encode_tool).collect::<Value>(),
        );
    }
    if let Some(tc) = &req.tool_choice {
        body.insert(
            "tool_choice".into(),
            match tc {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(n) => json!({"type": "function", "name": n}),
            },
        );
    }
    if let Some(p) = req.parallel_tool_calls.filter(|_| !req.tools.is_empty()) {
        body.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(m) = req.max_tokens {
        body.insert("max_output_tokens".into(), json!(m));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(n) = req.extra.get("top_logprobs") {
        body.insert("top_logprobs".into(), n.clone());
    }
    let effort = req.reasoning.as_ref().and_then(effort);
    if let Some(e) = &effort {
        body.insert("reasoning".into(), json!({"effort": e}));
    }
    if let Some(f) = req.format.as_ref() {
        if let Some(f) = encode_format(f)? {
            body.insert("text".into(), json!({"format": f}));
        }
    }
    // The gateway keeps no state upstream; reasoning state comes back in the response.
    body.insert("store".into(), json!(false));
    if replays_reasoning || effort.is_some_and(|e| e != "none") {
        body.insert("include".into(), json!([INCLUDE_ENCRYPTED]));
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
    }
    serde_json::to_vec(&body).map_err(|e| DecodeError::body(e.to_string()))
}

/// The `reasoning.effort` for canonical reasoning: an effort as is; a token budget by size
/// (0 `none`, ≤ 2048 `low`, ≤ 8192 `medium`, else `high`); neither is the model's default.
fn effort(r: &Reasoning) -> Option<String> {
    r.effort.clone().or_else(|| {
        r.budget_tokens.map(|b| {
            match b {
                0 => "none",
                1..=2048 => "low",
                2049..=8192 => "medium",
                _ => "high",
            }
            .to_owned()
        })
    })
}

fn image_url(source: &ImageSource) -> String {
    match source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    }
}

/// A text or image part as an input content part; `None` for other parts.
fn input_part(p: &Part) -> Option<Value> {
    match p {
        Part::Text { text, .. } if !text.is_empty() => {
            Some(json!({"type": "input_text", "text": text}))
        }
        Part::Image { source, detail, .. } => Some(json!({
            "type": "input_image",
            "image_url": image_url(source),
            "detail": detail.as_deref().unwrap_or("auto"),
        })),
        _ => None,
    }
}

/// A tool result as a `function_call_output` item: text alone as a string, with images as
/// parts; a failed result's text starts with "Error".
fn tool_output(call_id: &str, content: &[Part], is_error: bool) -> Value {
    let only_text = content.iter().all(|p| matches!(p, Part::Text { .. }));
    let output = if only_text {
        let mut text: String = content
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if is_error && !text.starts_with("Error") {
            text = format!("Error: {text}");
        }
        json!(text)
    } else {
        let mut parts: Vec<Value> = content.iter().filter_map(input_part).collect();
        if is_error {
            parts.insert(0, json!({"type": "input_text", "text": "Error:"}));
        }
        Value::Array(parts)
    };
    json!({"type": "function_call_output", "call_id": call_id, "output": output})
}

/// Appends a canonical message as input items. Returns whether it replays OpenAI reasoning.
fn encode_message(m: &Message, out: &mut Vec<Value>) -> bool {
    match m.role {
        Role::User | Role::Tool => {
            // Tool results answer the previous turn, so they come first.
            let mut rest = Vec::new();
            for p in &m.parts {
                match p {
                    Part::ToolResult {
                        call_id,
                        content,
                        is_error,
                        ..
                    } => out.push(tool_output(call_id, content, *is_error)),
                    other => rest.extend(input_part(other)),
                }
            }
            if !rest.is_empty() {
                out.push(json!({"type": "message", "role": "user", "content": rest}));
            }
            false
        }
        Role::Assistant => encode_assistant(&m.parts, out),
        // A system message stays where it was said (Responses takes them anywhere in `input`).
        Role::System => {
            let content: Vec<Value> = m.parts.iter().filter_map(input_part).collect();
            if !content.is_empty() {
                out.push(json!({"type": "message", "role": "developer", "content": content}));
            }
            false
        }
    }
}

/// An assistant turn as items, in order: text runs as assistant messages, calls as
/// `function_call`, OpenAI's reasoning as `reasoning` with its `encrypted_content`. Reasoning
/// another provider signed, or unsigned, is dropped: OpenAI reads reasoning only from its own
/// blobs and refuses anyone else's.
fn encode_assistant(parts: &[Part], out: &mut Vec<Value>) -> bool {
    let mut text: Vec<Value> = Vec::new();
    let mut replays = false;
    let flush = |text: &mut Vec<Value>, out: &mut Vec<Value>| {
        if !text.is_empty() {
            out.push(json!({
                "type": "message", "role": "assistant", "content": std::mem::take(text),
            }));
        }
    };
    for p in parts {
        match p {
            Part::Text { text: t, .. } if !t.is_empty() => {
                text.push(json!({"type": "output_text", "text": t, "annotations": []}));
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                flush(&mut text, out);
                out.push(json!({
                    "type": "function_call", "call_id": id, "name": name, "arguments": arguments,
                }));
            }
            Part::Reasoning {
                text: summary,
                signature: Some(sig),
                redacted: None,
            } => {
                if let Some(blob) = signature::for_upstream(Origin::OpenAi, sig) {
                    flush(&mut text, out);
                    let summary: Vec<Value> = if summary.is_empty() {
                        Vec::new()
                    } else {
                        vec![json!({"type": "summary_text", "text": summary})]
                    };
                    out.push(json!({
                        "type": "reasoning", "summary": summary, "encrypted_content": blob,
                    }));
                    replays = true;
                }
            }
            _ => {}
        }
    }
    flush(&mut text, out);
    replays
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{OutputFormat, Tool};

    fn encode(req: &ChatRequest) -> Value {
        serde_json::from_slice(&encode_request(req).unwrap()).unwrap()
    }

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            parts: vec![Part::text(text)],
        }
    }

    #[test]
    fn encodes_a_conversation_as_items() {
        let req = ChatRequest {
            model: "gpt-5.1".into(),
            system: vec![Part::text("S1"), Part::text("S2")],
            messages: vec![
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::text("look"),
                        Part::Image {
                            source: ImageSource::Base64 {
                                media_type: "image/png".into(),
                                data: "AAA".into(),
                            },
                            detail: None,
                            cache: None,
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![
                        Part::Reasoning {
                            text: "think".into(),
                            signature: Some(signature::tag(Origin::OpenAi, "gAAAA")),
                            redacted: None,
                        },
                        Part::Reasoning {
                            text: "claude".into(),
                            signature: Some(signature::tag(Origin::Anthropic, "EqQB")),
                            redacted: None,
                        },
                        Part::text("Checking."),
                        Part::ToolCall {
                            id: "toolu_1".into(),
                            name: "f".into(),
                            arguments: "{\"a\":1}".into(),
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::ToolResult {
                            call_id: "toolu_1".into(),
                            name: Some("f".into()),
                            content: vec![Part::text("boom")],
                            is_error: true,
                            cache: None,
                        },
                        Part::text("and?"),
                    ],
                },
            ],
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: json!({"type": "object"}),
                cache: None,
            }],
            tool_choice: Some(ToolChoice::Tool("f".into())),
            parallel_tool_calls: Some(false),
            max_tokens: Some(100),
            reasoning: Some(Reasoning {
                budget_tokens: Some(4000),
                effort: None,
            }),
            format: Some(OutputFormat::JsonObject),
            stream: true,
            ..ChatRequest::default()
        };
        assert_eq!(
            encode(&req),
            json!({
                "model": "gpt-5.1",
                "instructions": "S1\n\nS2",
                "input": [
                    // JSON mode: OpenAI wants the word in an input message.
                    {"type": "message", "role": "developer", "content": [
                        {"type": "input_text", "text": "Respond in JSON."}]},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "auto"}]},
                    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}], "encrypted_content": "gAAAA"},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                    {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{\"a\":1}"},
                    {"type": "function_call_output", "call_id": "toolu_1", "output": "Error: boom"},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and?"}]}
                ],
                "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": false}],
                "tool_choice": {"type": "function", "name": "f"},
                "parallel_tool_calls": false,
                "max_output_tokens": 100,
                "reasoning": {"effort": "medium"},
                "text": {"format": {"type": "json_object"}},
                "store": false,
                "include": ["reasoning.encrypted_content"],
                "stream": true
            })
        );
    }

    #[test]
    fn refuses_what_responses_cannot_carry() {
        let base = ChatRequest {
            model: "m".into(),
            messages: vec![user("x")],
            ..ChatRequest::default()
        };
        let mut r = base.clone();
        r.stop = vec!["END".into()];
        assert_eq!(encode_request(&r).unwrap_err().param, Some("stop"));
        let mut r = base.clone();
        r.top_k = Some(3);
        assert_eq!(encode_request(&r).unwrap_err().param, Some("top_k"));
        let mut r = base.clone();
        r.n = Some(2);
        assert_eq!(encode_request(&r).unwrap_err().param, Some("n"));
        let mut r = base.clone();
        r.extra.insert("logprobs".into(), true.into());
        assert_eq!(encode_request(&r).unwrap_err().param, Some("logprobs"));
        let mut r = base.clone();
        r.extra.insert("top_logprobs".into(), 3.into());
        r.n = Some(1);
        let v = encode(&r);
        assert_eq!(v["top_logprobs"], 3);
        assert!(v.get("include").is_none() && v.get("reasoning").is_none());
        assert_eq!(v["store"], false);
    }

    #[test]
    fn effort_none_asks_for_no_reasoning_state() {
        let mut r = ChatRequest {
            model: "m".into(),
            messages: vec![user("x")],
            reasoning: Some(Reasoning {
                budget_tokens: Some(0),
                effort: None,
            }),
            ..ChatRequest::default()
        };
        let v = encode(&r);
        assert_eq!(v["reasoning"], json!({"effort": "none"}));
        assert!(v.get("include").is_none());
        r.reasoning = Some(Reasoning::default());
        assert!(encode(&r).get("reasoning").is_none());
    }
}
