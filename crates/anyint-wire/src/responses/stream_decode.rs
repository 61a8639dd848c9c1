//! A Responses event stream (an upstream's, or a client's copy) → canonical [`StreamEvent`]s.
//!
//! - `response.created` (or the first event) → `Start` with the response id and model.
//! - `output_text.delta` and `refusal.delta` → `TextDelta`; reasoning summary and
//!   `reasoning_text` deltas → `ReasoningDelta` (summary parts after the first are separated
//!   by a blank line, as [`super::decode_response`] joins them).
//! - `output_item.added` of a `function_call` → `ToolCallStart` (ordinal by call, id =
//!   `call_id`, a namespaced name flattened) and its `function_call_arguments.delta` →
//!   `ToolArgsDelta`. A `custom_tool_call`'s input is streamed as the arguments
//!   `{"input": "…"}`: the opening at `added`, each input delta JSON-escaped, the closing at
//!   its `output_item.done`.
//! - `output_item.done` fills in what the stream did not deliver as deltas (some
//!   implementations send whole items), and for a reasoning item turns `encrypted_content` into
//!   `ReasoningSignature` tagged `openai` (or, for the gateway's own blob, the signature and
//!   redacted data it carries).
//! - `response.completed` / `.incomplete` → `Usage`, `Finish` (`completed` with calls is
//!   tool calls), `End`. `response.failed` and `error` → `Error` with the upstream's message.
//! - Everything else (`in_progress`, `content_part.*`, `*.done` text, annotations, built-in
//!   tool progress, keep-alive comments) carries nothing canonical and is skipped.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::blob;
use super::input::reasoning_text;
use super::response::finish_of;
use super::tools::flat_name;
use crate::canonical::StreamEvent;
use crate::sse::Frame;

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// A call in progress: its canonical ordinal, whether it is a custom tool call, and whether
/// any of its arguments or input arrived as deltas.
#[derive(Debug)]
struct Call {
    ordinal: u32,
    custom: bool,
    streamed: bool,
}

/// Turns a Responses event stream into canonical events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    /// Calls by `output_index`.
    calls: HashMap<u64, Call>,
    next_call: u32,
    /// Output indices whose text or reasoning arrived as deltas.
    streamed: HashSet<u64>,
    /// Reasoning output indices whose summary has had a part.
    summary_parts: HashSet<u64>,
    done: bool,
}

/// `s` as the inside of a JSON string literal.
fn escape(s: &str) -> String {
    let quoted = json!(s).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, response: Option<&Value>, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let field = |k: &str| {
            response
                .and_then(|r| string(r, k))
                .unwrap_or_default()
                .to_owned()
        };
        out.push(StreamEvent::Start {
            id: field("id"),
            model: field("model"),
        });
    }

    /// Decodes one SSE frame.
    pub fn feed(&mut self, frame: &Frame) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done || frame.data.trim().is_empty() {
            return out;
        }
        let Ok(data) = serde_json::from_str::<Value>(&frame.data) else {
            return out;
        };
        let kind = string(&data, "type")
            .or(frame.event.as_deref())
            .unwrap_or_default()
            .to_owned();
        let index = data.get("output_index").and_then(Value::as_u64);
        let delta = || string(&data, "delta").unwrap_or_default().to_owned();
        match kind.as_str() {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.start(data.get("response"), &mut out);
            }
            "response.output_item.added" => {
                self.start(None, &mut out);
                if let (Some(i), Some(item)) = (index, data.get("item")) {
                    self.added(i, item, &mut out);
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.start(None, &mut out);
                let d = delta();
                if !d.is_empty() {
                    self.streamed.extend(index);
                    out.push(StreamEvent::TextDelta(d));
                }
            }
            "response.reasoning_summary_part.added" => {
                self.start(None, &mut out);
                if let Some(i) = index
                    && !self.summary_parts.insert(i)
                {
                    out.push(StreamEvent::ReasoningDelta("\n\n".to_owned()));
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.start(None, &mut out);
                let d = delta();
                if !d.is_empty() {
                    self.streamed.extend(index);
                    out.push(StreamEvent::ReasoningDelta(d));
                }
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                let d = delta();
                if let Some(call) = index.and_then(|i| self.calls.get_mut(&i))
                    && !d.is_empty()
                {
                    call.streamed = true;
                    let json = if call.custom { escape(&d) } else { d };
                    out.push(StreamEvent::ToolArgsDelta {
                        index: call.ordinal,
                        json,
                    });
                }
            }
            "response.output_item.done" => {
                self.start(None, &mut out);
                if let (Some(i), Some(item)) = (index, data.get("item")) {
                    self.item_done(i, item, &mut out);
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = data.get("response");
                self.start(response, &mut out);
                if let Some(u) = super::usage_from_frame(frame) {
                    out.push(StreamEvent::Usage(u));
                }
                let reason = response
                    .and_then(|r| r.get("incomplete_details"))
                    .and_then(|d| string(d, "reason"));
                let status = kind.trim_start_matches("response.");
                out.push(StreamEvent::Finish {
                    reason: finish_of(status, reason, self.next_call > 0),
                    stop_sequence: None,
                });
                out.push(StreamEvent::End);
                self.done = true;
            }
            "response.failed" | "error" => {
                let error = data
                    .get("response")
                    .and_then(|r| r.get("error"))
                    .or_else(|| data.get("error"))
                    .unwrap_or(&data);
                let message = string(error, "message").unwrap_or("upstream stream error");
                out.push(StreamEvent::Error {
                    message: message.to_owned(),
                });
                self.done = true;
            }
            _ => {}
        }
        out
    }

    /// Opens a call: `ToolCallStart`, and for a custom tool call the arguments' opening.
    fn open_call(&mut self, index: u64, item: &Value, out: &mut Vec<StreamEvent>) -> u32 {
        let custom = string(item, "type") == Some("custom_tool_call");
        let ordinal = self.next_call;
        self.next_call = self.next_call.saturating_add(1);
        out.push(StreamEvent::ToolCallStart {
            index: ordinal,
            id: string(item, "call_id").unwrap_or_default().to_owned(),
            name: flat_name(
                string(item, "namespace"),
                string(item, "name").unwrap_or_default(),
            ),
        });
        if custom {
            out.push(StreamEvent::ToolArgsDelta {
                index: ordinal,
                json: "{\"input\":\"".to_owned(),
            });
        }
        self.calls.insert(
            index,
            Call {
                ordinal,
                custom,
                streamed: false,
            },
        );
        ordinal
    }

    fn added(&mut self, index: u64, item: &Value, out: &mut Vec<StreamEvent>) {
        if matches!(
            string(item, "type"),
            Some("function_call" | "custom_tool_call")
        ) && !self.calls.contains_key(&index)
        {
            self.open_call(index, item, out);
        }
    }

    fn item_done(&mut self, index: u64, item: &Value, out: &mut Vec<StreamEvent>) {
        match string(item, "type") {
            Some(kind @ ("function_call" | "custom_tool_call")) => {
                if !self.calls.contains_key(&index) {
                    self.open_call(index, item, out);
                }
                let Some(call) = self.calls.get(&index) else {
                    return;
                };
                let ordinal = call.ordinal;
                if kind == "custom_tool_call" {
                    let mut json = if call.streamed {
                        String::new()
                    } else {
                        escape(string(item, "input").unwrap_or_default())
                    };
                    json.push_str("\"}");
                    out.push(StreamEvent::ToolArgsDelta {
                        index: ordinal,
                        json,
                    });
                } else if !call.streamed
                    && let Some(args) = string(item, "arguments").filter(|a| !a.is_empty())
                {
                    out.push(StreamEvent::ToolArgsDelta {
                        index: ordinal,
                        json: args.to_owned(),
                    });
                }
            }
            Some("reasoning") => {
                let text = reasoning_text(item);
                if !self.streamed.contains(&index) && !text.is_empty() {
                    out.push(StreamEvent::ReasoningDelta(text));
                }
                let carried = string(item, "encrypted_content").and_then(|e| blob::read(e).ok());
                if let Some((signature, redacted)) = carried {
                    out.extend(signature.map(StreamEvent::ReasoningSignature));
                    out.extend(redacted.map(StreamEvent::RedactedReasoning));
                }
            }
            Some("message") if !self.streamed.contains(&index) => {
                for part in super::response::item_parts(item) {
                    if let crate::canonical::Part::Text { text, .. } = part {
                        out.push(StreamEvent::TextDelta(text));
                    }
                }
            }
            _ => {}
        }
    }

    /// The stream ended (EOF). Nothing to add: a stream without a terminal event was cut.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
