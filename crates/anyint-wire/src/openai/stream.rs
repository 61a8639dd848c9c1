//! OpenAI chat streams ⇄ canonical stream events.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::chat::{decode_finish, encode_finish, encode_usage};
use crate::canonical::{EncodeOptions, StreamEvent, Usage};
use crate::sse::Frame;

/// Turns an OpenAI-compatible upstream's chunks into canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    /// Upstream tool-call index → canonical ordinal.
    calls: HashMap<u64, u32>,
    finished: bool,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one SSE frame.
    pub fn feed(&mut self, frame: &Frame) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        let data = frame.data.trim();
        if data.is_empty() {
            return out;
        }
        if data == "[DONE]" {
            out.push(StreamEvent::End);
            return out;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return out;
        };
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream stream error");
            out.push(StreamEvent::Error {
                message: message.to_owned(),
            });
            return out;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                model: chunk
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        if let Some(delta) = choice.and_then(|c| c.get("delta")) {
            if let Some(r) = delta
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                out.push(StreamEvent::ReasoningDelta(r.to_owned()));
            }
            if let Some(t) = delta
                .get("content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                out.push(StreamEvent::TextDelta(t.to_owned()));
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.tool_call(call, &mut out);
            }
        }
        if let Some(reason) = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str)
            && !self.finished
        {
            self.finished = true;
            out.push(StreamEvent::Finish {
                reason: decode_finish(reason),
                stop_sequence: None,
            });
        }
        if let super::StreamUsage::Inline(u) | super::StreamUsage::UsageOnly(u) =
            super::usage_from_chunk(data)
        {
            out.push(StreamEvent::Usage(u));
        }
        out
    }

    /// One `delta.tool_calls[]` entry: a new upstream index opens a call, arguments continue it.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<StreamEvent>) {
        let upstream_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let f = call.get("function");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        if !self.calls.contains_key(&upstream_index) {
            let ordinal = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
            self.calls.insert(upstream_index, ordinal);
            let name = text(f.and_then(|f| f.get("name")));
            out.push(StreamEvent::ToolCallStart {
                index: ordinal,
                id: text(call.get("id")),
                name,
            });
        }
        let args = text(f.and_then(|f| f.get("arguments")));
        if !args.is_empty()
            && let Some(&index) = self.calls.get(&upstream_index)
        {
            out.push(StreamEvent::ToolArgsDelta { index, json: args });
        }
    }

    /// The upstream stream ended (EOF). Nothing to add: a stream without `[DONE]` was cut.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        Vec::new()
    }
}

/// Writes canonical events as the chunks an OpenAI client expects, ending with `[DONE]`.
#[derive(Debug)]
pub struct StreamEncoder {
    opts: EncodeOptions,
    id: String,
    usage: Usage,
    started: bool,
    ended: bool,
}

impl StreamEncoder {
    /// An encoder for one response.
    pub fn new(opts: EncodeOptions) -> Self {
        Self {
            opts,
            id: String::new(),
            usage: Usage::default(),
            started: false,
            ended: false,
        }
    }

    fn chunk(&self, delta: &Value, finish: Option<&str>) -> Vec<u8> {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.opts.created,
            "model": self.opts.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": Value::Null, "finish_reason": finish}],
        });
        if self.opts.include_usage
            && let Some(o) = c.as_object_mut()
        {
            o.insert("usage".into(), Value::Null);
        }
        frame(&c)
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                "chatcmpl-anyint".clone_into(&mut self.id);
            }
            out.extend(self.chunk(&json!({"role": "assistant", "content": ""}), None));
        }
    }

    /// Encodes one event into zero or more SSE frames.
    pub fn encode(&mut self, ev: &StreamEvent) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match ev {
            StreamEvent::Start { id, .. } => {
                if !self.started {
                    self.id = if id.starts_with("chatcmpl") {
                        id.clone()
                    } else {
                        format!("chatcmpl-{id}")
                    };
                }
                self.ensure_started(&mut out);
            }
            StreamEvent::TextDelta(t) => {
                self.ensure_started(&mut out);
                out.extend(self.chunk(&json!({"content": t}), None));
            }
            StreamEvent::ReasoningDelta(t) => {
                self.ensure_started(&mut out);
                out.extend(self.chunk(&json!({"reasoning_content": t}), None));
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(&mut out);
                let delta = json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
                out.extend(self.chunk(&delta, None));
            }
            StreamEvent::ToolArgsDelta { index, json: args } => {
                self.ensure_started(&mut out);
                out.extend(self.chunk(
                    &json!({"tool_calls": [{"index": index, "function": {"arguments": args}}]}),
                    None,
                ));
            }
            StreamEvent::Usage(u) => self.usage = self.usage.merge(*u),
            StreamEvent::Finish { reason, .. } => {
                self.ensure_started(&mut out);
                out.extend(self.chunk(&json!({}), Some(encode_finish(reason))));
            }
            StreamEvent::End => {
                self.ensure_started(&mut out);
                self.ended = true;
                if self.opts.include_usage {
                    let c = json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.opts.created,
                        "model": self.opts.model, "choices": [], "usage": encode_usage(&self.usage),
                    });
                    out.extend(frame(&c));
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            StreamEvent::ReasoningSignature(_)
            | StreamEvent::RedactedReasoning(_)
            | StreamEvent::WebSearch(_)
            | StreamEvent::Citation(_)
            | StreamEvent::Error { .. } => {}
        }
        out
    }

    /// The upstream ended; nothing more to write (a cut stream gets the gateway's error event).
    pub fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

fn frame(v: &Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    if serde_json::to_writer(&mut out, v).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::FinishReason;
    use crate::sse::SseSplitter;

    const UPSTREAM: &str = "data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n\
data: [DONE]\n\n";

    fn decode_all(s: &str) -> Vec<StreamEvent> {
        let mut sp = SseSplitter::new();
        let mut d = StreamDecoder::new();
        sp.push(s.as_bytes())
            .iter()
            .flat_map(|f| d.feed(f))
            .collect()
    }

    #[test]
    fn decodes_text_tool_calls_finish_usage_and_end() {
        let ev = decode_all(UPSTREAM);
        assert!(matches!(&ev[0], StreamEvent::Start { id, .. } if id == "chatcmpl-1"));
        assert_eq!(ev[1], StreamEvent::TextDelta("Hi".into()));
        assert!(matches!(&ev[2], StreamEvent::ToolCallStart { index: 0, name, .. } if name == "f"));
        assert_eq!(
            ev[3],
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "{\"a\":1}".into()
            }
        );
        assert!(matches!(
            ev[4],
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                ..
            }
        ));
        assert!(matches!(ev[5], StreamEvent::Usage(u) if u.output_tokens == 4));
        assert_eq!(ev[6], StreamEvent::End);
    }

    #[test]
    fn re_encoding_gives_a_valid_openai_stream() {
        let ev = decode_all(UPSTREAM);
        let opts = EncodeOptions {
            model: "pub".into(),
            include_usage: true,
            ..EncodeOptions::default()
        };
        let mut enc = StreamEncoder::new(opts);
        let bytes: Vec<u8> = ev.iter().flat_map(|e| enc.encode(e)).collect();
        let text = String::from_utf8(bytes).unwrap();
        let back = decode_all(&text);
        // Same events, except the encoder's leading role chunk carries no content.
        assert_eq!(
            back.iter()
                .filter(|e| !matches!(e, StreamEvent::Start { .. }))
                .count(),
            ev.len() - 1
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(text.contains("\"model\":\"pub\""));
    }

    #[test]
    fn usage_chunk_only_when_asked() {
        let mut enc = StreamEncoder::new(EncodeOptions::default());
        let mut out = enc.encode(&StreamEvent::Usage(Usage {
            input_tokens: 1,
            output_tokens: 2,
            ..Usage::default()
        }));
        out.extend(enc.encode(&StreamEvent::End));
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("usage"), "{text}");
    }
}
