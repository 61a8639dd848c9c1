//! Canonical [`StreamEvent`]s → the stream a Gemini client receives.
//!
//! Each output chunk is a complete GenerateContentResponse with the new parts, `modelVersion`
//! (the public model) and `responseId` (from `Start`). Choices made here:
//! - a reasoning delta is held until the next event, so a signature that directly follows
//!   reasoning text lands on that thought part (the order Anthropic streams a signed thinking
//!   block in, and how a Gemini client must echo it back for the signature to be returned to
//!   the same upstream); a signature with no reasoning before it goes on the next part written
//!   (Gemini's placement on a function call), or on an empty text part in the final chunk;
//! - tool calls are buffered until their arguments are complete and written together, as one
//!   chunk of `functionCall` parts (with `args` parsed into an object), before the next text or
//!   reasoning, or in the final chunk;
//! - usage and the finish reason are remembered and written once, in the final chunk that `End`
//!   produces (clients that add up per-chunk usage would otherwise count it twice);
//! - `Error` writes nothing: the gateway writes the error object itself;
//! - Gemini's signatures are written as issued, other providers' with their origin tag (see
//!   [`crate::canonical::signature`]), so they are never replayed to Gemini.

use serde_json::{Map, Value, json};

use super::parts::function_call;
use super::response::finish_to_wire;
use super::usage::to_metadata;
use crate::Usage;
use crate::canonical::signature::{self as sigs, Origin};
use crate::canonical::{EncodeOptions, FinishReason, StreamEvent};

/// How the client asked to receive the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `?alt=sse`: each chunk as `data: <JSON>\r\n\r\n`.
    Sse,
    /// No `alt=sse`: one JSON array, `[` + chunks separated by `,\r\n` + `]`.
    JsonArray,
}

#[derive(Debug)]
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    args: String,
}

/// Per-stream state of a Gemini client stream.
#[derive(Debug)]
pub struct StreamEncoder {
    opts: EncodeOptions,
    format: StreamFormat,
    id: String,
    /// Chunks written so far (the array form needs `[` before the first).
    written: usize,
    calls: Vec<PendingCall>,
    thought: Option<String>,
    signature: Option<String>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    ended: bool,
    failed: bool,
    closed: bool,
}

impl StreamEncoder {
    /// An encoder for one client stream.
    pub fn new(opts: EncodeOptions, format: StreamFormat) -> Self {
        Self {
            opts,
            format,
            id: String::new(),
            written: 0,
            calls: Vec::new(),
            thought: None,
            signature: None,
            usage: None,
            finish: None,
            ended: false,
            failed: false,
            closed: false,
        }
    }

    /// The bytes to write for one event (often none: see the module docs).
    pub fn encode(&mut self, ev: &StreamEvent) -> Vec<u8> {
        if self.ended || self.failed {
            return Vec::new();
        }
        let mut parts = Vec::new();
        match ev {
            StreamEvent::Start { id, .. } => self.id.clone_from(id),
            StreamEvent::TextDelta(text) => {
                self.take_calls(&mut parts);
                self.take_thought(&mut parts);
                if !text.is_empty() {
                    self.push(&mut parts, json!({"text": text}));
                }
            }
            StreamEvent::ReasoningDelta(text) => {
                self.take_calls(&mut parts);
                self.take_thought(&mut parts);
                if !text.is_empty() {
                    self.thought = Some(text.clone());
                }
            }
            StreamEvent::ReasoningSignature(sig) => {
                self.take_calls(&mut parts);
                self.take_signature(&mut parts);
                let sig = sigs::for_client(Origin::Gemini, sig);
                if let Some(text) = self.thought.take() {
                    parts.push(json!({"text": text, "thought": true, "thoughtSignature": sig}));
                } else {
                    self.signature = Some(sig.to_owned());
                }
            }
            StreamEvent::RedactedReasoning(_)
            | StreamEvent::WebSearch(_)
            | StreamEvent::Citation(_) => {}
            StreamEvent::ToolCallStart { index, id, name } => {
                self.take_thought(&mut parts);
                self.calls.push(PendingCall {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    args: String::new(),
                });
            }
            StreamEvent::ToolArgsDelta { index, json } => {
                if let Some(call) = self.calls.iter_mut().rev().find(|c| c.index == *index) {
                    call.args.push_str(json);
                }
            }
            StreamEvent::Usage(u) => self.usage = Some(self.usage.unwrap_or_default().merge(*u)),
            StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
            StreamEvent::Error { .. } => self.failed = true,
            StreamEvent::End => return self.end(),
        }
        if parts.is_empty() {
            Vec::new()
        } else {
            self.chunk(parts, None)
        }
    }

    /// Closes the JSON array once `End` was seen; nothing otherwise (and nothing for SSE).
    pub fn finish(&mut self) -> Vec<u8> {
        if self.format != StreamFormat::JsonArray || !self.ended || self.closed {
            return Vec::new();
        }
        self.closed = true;
        if self.written == 0 {
            b"[]".to_vec()
        } else {
            b"]".to_vec()
        }
    }

    fn end(&mut self) -> Vec<u8> {
        let mut parts = Vec::new();
        self.take_thought(&mut parts);
        self.take_calls(&mut parts);
        if let Some(sig) = self.signature.take() {
            parts.push(json!({"text": "", "thoughtSignature": sig}));
        }
        if parts.is_empty() {
            parts.push(json!({"text": ""}));
        }
        self.ended = true;
        let reason = self
            .finish
            .as_ref()
            .map_or("STOP", finish_to_wire)
            .to_owned();
        self.chunk(parts, Some(&reason))
    }

    /// Appends a part, giving it the pending signature.
    fn push(&mut self, parts: &mut Vec<Value>, mut part: Value) {
        if let (Some(sig), Some(obj)) = (self.signature.take(), part.as_object_mut()) {
            obj.insert("thoughtSignature".into(), sig.into());
        }
        parts.push(part);
    }

    /// Writes a pending signature no part has claimed as its own empty thought part.
    fn take_signature(&mut self, parts: &mut Vec<Value>) {
        if let Some(sig) = self.signature.take() {
            parts.push(json!({"text": "", "thought": true, "thoughtSignature": sig}));
        }
    }

    fn take_thought(&mut self, parts: &mut Vec<Value>) {
        if let Some(text) = self.thought.take() {
            self.push(parts, json!({"text": text, "thought": true}));
        }
    }

    fn take_calls(&mut self, parts: &mut Vec<Value>) {
        for call in std::mem::take(&mut self.calls) {
            let part = Value::Object(function_call(&call.id, &call.name, &call.args));
            self.push(parts, part);
        }
    }

    /// One chunk in the client's framing; the final chunk also carries the finish reason and
    /// usage.
    fn chunk(&mut self, parts: Vec<Value>, finish: Option<&str>) -> Vec<u8> {
        let mut cand = Map::new();
        cand.insert(
            "content".into(),
            json!({"role": "model", "parts": Value::Array(parts)}),
        );
        if let Some(reason) = finish {
            cand.insert("finishReason".into(), reason.into());
        }
        cand.insert("index".into(), 0.into());
        let mut body = Map::new();
        body.insert("candidates".into(), Value::Array(vec![Value::Object(cand)]));
        if finish.is_some() {
            body.insert(
                "usageMetadata".into(),
                to_metadata(&self.usage.unwrap_or_default()),
            );
        }
        body.insert("modelVersion".into(), self.opts.model.as_str().into());
        body.insert("responseId".into(), self.id.as_str().into());
        let json = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 10);
        match self.format {
            StreamFormat::Sse => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&json);
                out.extend_from_slice(b"\r\n\r\n");
            }
            StreamFormat::JsonArray => {
                out.extend_from_slice(if self.written == 0 { b"[" } else { b",\r\n" });
                out.extend_from_slice(&json);
            }
        }
        self.written += 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(format: StreamFormat) -> StreamEncoder {
        StreamEncoder::new(
            EncodeOptions {
                model: "pub-model".into(),
                ..EncodeOptions::default()
            },
            format,
        )
    }

    fn run(format: StreamFormat, events: &[StreamEvent]) -> String {
        let mut e = encoder(format);
        let mut out: Vec<u8> = events.iter().flat_map(|ev| e.encode(ev)).collect();
        out.extend(e.finish());
        String::from_utf8(out).unwrap()
    }

    fn text_events() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "r1".into(),
                model: "up".into(),
            },
            StreamEvent::TextDelta("Hel".into()),
            StreamEvent::Usage(Usage {
                input_tokens: 5,
                ..Usage::default()
            }),
            StreamEvent::TextDelta("lo".into()),
            StreamEvent::Usage(Usage {
                input_tokens: 5,
                output_tokens: 2,
                ..Usage::default()
            }),
            StreamEvent::Finish {
                reason: FinishReason::Stop,
                stop_sequence: None,
            },
            StreamEvent::End,
        ]
    }

    #[test]
    fn sse_text_stream() {
        let out = run(StreamFormat::Sse, &text_events());
        let expected = concat!(
            r#"data: {"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],"modelVersion":"pub-model","responseId":"r1"}"#,
            "\r\n\r\n",
            r#"data: {"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"index":0}],"modelVersion":"pub-model","responseId":"r1"}"#,
            "\r\n\r\n",
            r#"data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"modelVersion":"pub-model","responseId":"r1","usageMetadata":{"candidatesTokenCount":2,"promptTokenCount":5,"totalTokenCount":7}}"#,
            "\r\n\r\n",
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn json_array_is_valid_json() {
        let out = run(StreamFormat::JsonArray, &text_events());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
        assert!(out.contains("},\r\n{"));
        // Not ended: the array stays open.
        let mut e = encoder(StreamFormat::JsonArray);
        assert!(
            e.encode(&StreamEvent::TextDelta("x".into()))
                .starts_with(b"[")
        );
        assert!(e.finish().is_empty());
        // Ended with nothing but End.
        let out = run(StreamFormat::JsonArray, &[StreamEvent::End]);
        assert_eq!(
            serde_json::from_str::<Value>(&out)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn tool_calls_are_buffered_and_written_whole() {
        let mut e = encoder(StreamFormat::Sse);
        assert!(
            e.encode(&StreamEvent::ReasoningSignature("S".into()))
                .is_empty()
        );
        for ev in [
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c0".into(),
                name: "f".into(),
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "{\"a\":".into(),
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "1}".into(),
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "c1".into(),
                name: "g".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                stop_sequence: None,
            },
        ] {
            assert!(e.encode(&ev).is_empty(), "{ev:?}");
        }
        let out = String::from_utf8(e.encode(&StreamEvent::End)).unwrap();
        let json: Value =
            serde_json::from_str(out.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        assert_eq!(
            json["candidates"][0]["content"]["parts"],
            json!([
                {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c0"}, "thoughtSignature": "S"},
                {"functionCall": {"name": "g", "args": {}, "id": "c1"}}
            ])
        );
        assert_eq!(json["candidates"][0]["finishReason"], "STOP");
        assert!(e.encode(&StreamEvent::TextDelta("late".into())).is_empty());
    }

    #[test]
    fn signatures_are_untagged_only_when_gemini_issued_them() {
        let out = run(
            StreamFormat::Sse,
            &[
                StreamEvent::ReasoningDelta("a".into()),
                StreamEvent::ReasoningSignature("anyint:gemini:CiQB".into()),
                StreamEvent::ReasoningDelta("b".into()),
                StreamEvent::ReasoningSignature("anyint:anthropic:EqQB".into()),
                StreamEvent::End,
            ],
        );
        assert!(
            out.contains(r#"{"text":"a","thought":true,"thoughtSignature":"CiQB"}"#),
            "{out}"
        );
        assert!(
            out.contains(
                r#"{"text":"b","thought":true,"thoughtSignature":"anyint:anthropic:EqQB"}"#
            ),
            "{out}"
        );
    }

    #[test]
    fn reasoning_keeps_its_signature_and_errors_write_nothing() {
        let mut e = encoder(StreamFormat::Sse);
        assert!(
            e.encode(&StreamEvent::ReasoningDelta("hmm".into()))
                .is_empty()
        );
        let out =
            String::from_utf8(e.encode(&StreamEvent::ReasoningSignature("S".into()))).unwrap();
        assert!(
            out.contains(r#"{"text":"hmm","thought":true,"thoughtSignature":"S"}"#),
            "{out}"
        );
        assert!(
            e.encode(&StreamEvent::ReasoningDelta("more".into()))
                .is_empty()
        );
        let out = String::from_utf8(e.encode(&StreamEvent::TextDelta("A".into()))).unwrap();
        assert!(
            out.contains(r#"[{"text":"more","thought":true},{"text":"A"}]"#),
            "{out}"
        );
        assert!(
            e.encode(&StreamEvent::Error {
                message: "x".into()
            })
            .is_empty()
        );
        assert!(e.encode(&StreamEvent::End).is_empty());
        assert!(e.finish().is_empty());
    }
}
