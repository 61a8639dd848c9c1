//! Non-streamed Messages responses: upstream body → canonical ([`decode_response`]) and
//! canonical → the body an Anthropic client receives ([`encode_response`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::usage::{UsageOut, WireUsage};
use super::wire::{Block, Input, decode_stop, encode_stop, message_id, tool_input};
use super::{JSON_TOOL, JSON_VALUE_TOOL};
use crate::DecodeError;
use crate::canonical::signature::{self, Origin};
use crate::canonical::{ChatResponse, FinishReason, Part};

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    content: Vec<OutBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// An output block as received. Blocks with no canonical home (server tool use and results,
/// container uploads) are skipped.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

impl OutBlock {
    /// The canonical part, if this block has one. A call of the gateway's structured-output
    /// tool is the answer's text: its input ([`JSON_TOOL`]) or the input's `value`
    /// ([`JSON_VALUE_TOOL`]), as the upstream wrote it (`raw`: the block's `input` text, so key
    /// order and spacing stay as generated).
    fn into_part(self, raw: Option<&str>) -> Option<Part> {
        Some(match self {
            Self::ToolUse { name, input, .. } if name == JSON_TOOL => {
                Part::text(raw.map_or_else(|| input.to_string(), minify))
            }
            Self::ToolUse { name, input, .. } if name == JSON_VALUE_TOOL => {
                let value = raw.and_then(|r| {
                    serde_json::from_str::<Wrapped<'_>>(r)
                        .ok()
                        .map(|w| minify(w.value.get()))
                });
                Part::text(
                    value.unwrap_or_else(|| input.get("value").unwrap_or(&input).to_string()),
                )
            }
            Self::Text { text } => Part::text(text),
            Self::Thinking {
                thinking,
                signature,
            } => Part::Reasoning {
                text: thinking,
                signature: signature
                    .filter(|s| !s.is_empty())
                    .map(|s| signature::from_wire(Origin::Anthropic, &s)),
                redacted: None,
            },
            Self::RedactedThinking { data } => Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some(data),
            },
            Self::ToolUse { id, name, input } => Part::ToolCall {
                id,
                name,
                arguments: tool_arguments(&input),
            },
            Self::Other => return None,
        })
    }
}

/// JSON text without the whitespace between tokens (keys keep their order, strings their
/// content).
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// The value-wrapped tool's input, its `value` unparsed.
#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
}

/// The `input` text of each content block, in order: read again, unparsed, when a
/// structured-output tool answered.
fn raw_inputs(body: &[u8]) -> Vec<Option<&RawValue>> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow, default)]
        content: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct RawBlock<'a> {
        #[serde(borrow, default)]
        input: Option<&'a RawValue>,
    }
    serde_json::from_slice::<Raw<'_>>(body)
        .map(|r| {
            r.content
                .into_iter()
                .map(|b| {
                    serde_json::from_str::<RawBlock<'_>>(b.get())
                        .ok()
                        .and_then(|b| b.input)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A `tool_use` input as canonical arguments text; a missing input means no arguments.
pub(super) fn tool_arguments(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// Decodes an Anthropic upstream's (successful) response body.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let r: WireResponse = serde_json::from_slice(body).map_err(|e| {
        DecodeError::body(format!(
            "the upstream response is not an Anthropic message: {e}"
        ))
    })?;
    if let Some(k) = r.kind.as_deref().filter(|k| *k != "message") {
        return Err(DecodeError::body(format!(
            "the upstream response has type `{k}`, not `message`"
        )));
    }
    let unwrapped = r.content.iter().any(|b| {
        matches!(b, OutBlock::ToolUse { name, .. } if name == JSON_TOOL || name == JSON_VALUE_TOOL)
    });
    let raw = if unwrapped {
        raw_inputs(body)
    } else {
        Vec::new()
    };
    let parts: Vec<Part> = r
        .content
        .into_iter()
        .enumerate()
        .filter_map(|(i, b)| b.into_part(raw.get(i).copied().flatten().map(RawValue::get)))
        .collect();
    let calls = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let finish = r.stop_reason.as_deref().map(|s| match decode_stop(s) {
        // The structured-output tool's call is the answer, not a call for the client.
        FinishReason::ToolCalls if unwrapped && !calls => FinishReason::Stop,
        other => other,
    });
    let mut resp = ChatResponse {
        id: r.id,
        model: r.model,
        created: None,
        parts,
        finish,
        stop_sequence: r.stop_sequence,
        usage: r.usage.map(|u| u.canonical()).unwrap_or_default(),
        ..ChatResponse::default()
    };
    super::search::annotate(&mut resp, body);
    Ok(resp)
}

#[derive(Serialize)]
struct Out<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    usage: UsageOut,
}

/// Encodes a canonical response as an Anthropic client receives it. The id gets a `msg_`
/// prefix when it lacks one; tool call ids pass through unchanged. Tool arguments that are not
/// a JSON object (only a non-Anthropic upstream could produce them) are sent as `{}`; unsigned
/// reasoning is sent with an empty `signature`. Anthropic signatures are written as issued,
/// other providers' with their origin tag (see [`crate::canonical::signature`]). A signature
/// alone (empty reasoning text, as Gemini signs the part after its thoughts) that directly
/// follows unsigned reasoning completes that thinking block instead of opening another, as
/// the stream encoder does.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let mut content: Vec<Block<'_>> = Vec::with_capacity(resp.parts.len());
    for p in &resp.parts {
        let block = match p {
            Part::Text { text, .. } => Block::Text {
                text,
                cache_control: None,
            },
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Block::ToolUse {
                id,
                name,
                input: tool_input(arguments).unwrap_or(Input::Empty(super::wire::Empty {})),
            },
            Part::Reasoning {
                redacted: Some(data),
                ..
            } => Block::RedactedThinking { data },
            Part::Reasoning {
                text, signature, ..
            } => {
                let signature = signature
                    .as_deref()
                    .map_or("", |s| signature::for_client(Origin::Anthropic, s));
                if text.is_empty()
                    && !signature.is_empty()
                    && let Some(Block::Thinking {
                        signature: unsigned,
                        ..
                    }) = content.last_mut()
                    && unsigned.is_empty()
                {
                    *unsigned = signature;
                    continue;
                }
                Block::Thinking {
                    thinking: text,
                    signature,
                }
            }
            // Responses carry no images or tool results.
            Part::Image { .. } | Part::ToolResult { .. } => continue,
        };
        content.push(block);
    }
    let out = Out {
        id: message_id(&resp.id),
        kind: "message",
        role: "assistant",
        model: &resp.model,
        content,
        stop_reason: resp.finish.as_ref().map(encode_stop),
        stop_sequence: resp.stop_sequence.as_deref(),
        usage: UsageOut::from(&resp.usage),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Usage;
    use serde_json::json;

    const BODY: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-x",
        "content":[{"type":"thinking","thinking":"hmm","signature":"sig"},
                   {"type":"text","text":"Let me check.","citations":null},
                   {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}},
                   {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oslo"}}],
        "stop_reason":"tool_use","stop_sequence":null,
        "usage":{"input_tokens":120,"output_tokens":40,"cache_creation_input_tokens":30,"cache_read_input_tokens":50}}"#;

    #[test]
    fn decodes_blocks_stop_reason_and_usage() {
        let r = decode_response(BODY.as_bytes()).unwrap();
        assert_eq!(r.parts.len(), 3);
        assert_eq!(
            r.parts[2],
            Part::ToolCall {
                id: "toolu_01".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Oslo"}"#.into()
            }
        );
        assert_eq!(r.finish, Some(FinishReason::ToolCalls));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 200,
                output_tokens: 40,
                cache_read_tokens: 50,
                cache_write_tokens: 30,
                reasoning_tokens: 0,
                web_searches: 0,
            }
        );
    }

    #[test]
    fn encode_restores_anthropic_usage_and_ids() {
        let r = decode_response(BODY.as_bytes()).unwrap();
        let v: Value = serde_json::from_slice(&encode_response(&r)).unwrap();
        assert_eq!(
            v["usage"],
            json!({"input_tokens":120,"output_tokens":40,"cache_creation_input_tokens":30,"cache_read_input_tokens":50})
        );
        assert_eq!(v["id"], "msg_01");
        assert_eq!(v["content"][2]["input"], json!({"city":"Oslo"}));
        assert_eq!(v["stop_reason"], "tool_use");

        let other = ChatResponse {
            id: "chatcmpl-9".into(),
            parts: vec![Part::ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "not json".into(),
            }],
            finish: Some(FinishReason::Other("function_call".into())),
            ..ChatResponse::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(&other)).unwrap();
        assert_eq!(v["id"], "msg_chatcmpl-9");
        assert_eq!(v["content"][0]["id"], "call_1");
        assert_eq!(v["content"][0]["input"], json!({}));
        assert_eq!(v["stop_reason"], "end_turn");
    }

    fn reasoning(text: &str, signature: Option<&str>) -> Part {
        Part::Reasoning {
            text: text.into(),
            signature: signature.map(str::to_owned),
            redacted: None,
        }
    }

    #[test]
    fn signatures_are_tagged_on_decode_and_untagged_only_for_their_owner() {
        let r = decode_response(BODY.as_bytes()).unwrap();
        assert_eq!(r.parts[0], reasoning("hmm", Some("anyint:anthropic:sig")));
        let v: Value = serde_json::from_slice(&encode_response(&r)).unwrap();
        assert_eq!(v["content"][0]["signature"], "sig");
        let foreign = ChatResponse {
            parts: vec![reasoning("t", Some("anyint:gemini:CiQB"))],
            ..ChatResponse::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(&foreign)).unwrap();
        assert_eq!(v["content"][0]["signature"], "anyint:gemini:CiQB");
    }

    #[test]
    fn a_lone_signature_completes_the_unsigned_thinking_before_it() {
        // As a Gemini upstream answers: thoughts, then a call signed on the call.
        let resp = ChatResponse {
            parts: vec![
                reasoning("plan", None),
                reasoning("", Some("anyint:gemini:CiQB")),
                Part::ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                },
                // Not after unsigned reasoning: stays a block of its own.
                reasoning("", Some("anyint:gemini:S2")),
                Part::text("done"),
            ],
            ..ChatResponse::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
        assert_eq!(
            v["content"],
            json!([
                {"type":"thinking","thinking":"plan","signature":"anyint:gemini:CiQB"},
                {"type":"tool_use","id":"c","name":"f","input":{}},
                {"type":"thinking","thinking":"","signature":"anyint:gemini:S2"},
                {"type":"text","text":"done"}
            ])
        );
    }

    #[test]
    fn refuses_non_messages() {
        assert!(decode_response(b"[]").is_err());
        assert!(decode_response(br#"{"type":"error","content":[]}"#).is_err());
        assert!(decode_response(br#"{"id":"x"}"#).is_err());
    }

    #[test]
    fn the_json_tools_answer_as_text_in_the_order_generated() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[{"type":"tool_use","id":"toolu_1","name":"anyint_json_response",
                        "input":{ "b": "x y",
                                  "a": [1, {"q\"": "\\"}] }}],
            "stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7}}"#;
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(
            r.parts,
            vec![Part::text(r#"{"b":"x y","a":[1,{"q\"":"\\"}]}"#)]
        );
        assert_eq!(r.finish, Some(FinishReason::Stop));
        let body = r#"{"type":"message","content":[
            {"type":"text","text":"Sure."},
            {"type":"tool_use","id":"t","name":"anyint_json_value","input":{"value":[3, 1]}}],
            "stop_reason":"tool_use"}"#;
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(r.parts, vec![Part::text("Sure."), Part::text("[3,1]")]);
        assert_eq!(r.finish, Some(FinishReason::Stop));
        // Another tool's call in the same answer stays a call.
        let body = r#"{"type":"message","content":[
            {"type":"tool_use","id":"t","name":"anyint_json_response","input":{}},
            {"type":"tool_use","id":"u","name":"f","input":{}}], "stop_reason":"tool_use"}"#;
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(r.finish, Some(FinishReason::ToolCalls));
    }
}
