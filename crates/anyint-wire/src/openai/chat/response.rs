//! Responses in both directions (upstream body → canonical, canonical → client body), plus
//! the finish reason and usage mappings the stream codecs share.

use serde_json::{Value, json};

use super::shared::{reasoning_part, text_of, tool_calls};
use crate::DecodeError;
use crate::canonical::{ChatResponse, FinishReason, Part, Usage};
use crate::openai::usage::usage_from_response;

/// Maps an OpenAI `finish_reason`.
pub(in crate::openai) fn decode_finish(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The OpenAI name of a finish reason.
pub(in crate::openai) fn encode_finish(f: &FinishReason) -> &'static str {
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
        usage: usage_from_response(body).unwrap_or_default(),
        ..ChatResponse::default()
    })
}

/// The OpenAI `usage` object for canonical usage.
pub(in crate::openai) fn encode_usage(u: &Usage) -> Value {
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
