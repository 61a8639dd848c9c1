//! Upstream Anthropic SSE frames → canonical [`StreamEvent`]s, one frame at a time.
//!
//! Mapping: `message_start` → `Start` + `Usage`; text, thinking, signature and
//! `input_json` deltas → the matching canonical deltas; a `tool_use` block start →
//! `ToolCallStart` with the call's ordinal among this response's tool calls; a
//! `redacted_thinking` block → `RedactedReasoning`; `message_delta` → `Finish` (once) +
//! cumulative `Usage`; `message_stop` → `End`; `error` → `Error`. Web search blocks and
//! citation deltas → `WebSearch` and `Citation` events (see `anthropic/search.rs`). `ping`,
//! unknown events, other server-tool blocks and frames whose JSON does not parse are ignored.
//! Signatures are tagged as Anthropic's (see [`crate::canonical::signature`]).
//!
//! A call of the gateway's structured-output tool ([`JSON_TOOL`], [`JSON_VALUE_TOOL`]) is not
//! a tool call: its `input_json_delta` pieces become `TextDelta`s (for the value tool, the
//! text of `value`, see [`ValueUnwrap`]), it takes no tool call ordinal, and a `tool_use`
//! stop reason with no other call becomes `Stop`.
//!
//! The canonical sequencing rules hold whatever the upstream sends: `Start` is synthesized if
//! content arrives first, content after `Finish` is dropped, and nothing follows `End` or
//! `Error`. An `error` before `message_start` yields `Error` alone (no `Start`), so nothing
//! has reached the client and the gateway can still answer with an error status or retry.

use serde::Deserialize;
use serde_json::Value;

use super::unwrap::ValueUnwrap;
use crate::anthropic::response::tool_arguments;
use crate::anthropic::search::SearchStream;
use crate::anthropic::usage::WireUsage;
use crate::anthropic::wire::decode_stop;
use crate::anthropic::{JSON_TOOL, JSON_VALUE_TOOL};
use crate::canonical::signature::{self, Origin};
use crate::canonical::{FinishReason, StreamEvent};
use crate::sse::Frame;

/// Event names the decoder acts on; frames named otherwise are skipped unparsed.
const EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Error {
        #[serde(default)]
        error: ErrorDetail,
    },
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: String,
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

#[expect(
    clippy::enum_variant_names,
    reason = "variant names are the wire's delta type tags"
)]
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    TextDelta {
        #[serde(default)]
        text: String,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: String,
    },
    SignatureDelta {
        #[serde(default)]
        signature: String,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Default, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}

#[derive(Default, Deserialize)]
struct ErrorDetail {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Where the decoder is in the message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing emitted yet.
    #[default]
    Fresh,
    /// `Start` emitted; content may follow.
    Open,
    /// `Finish` emitted; only usage and the end may follow.
    Finished,
    /// `End` or `Error` emitted; everything else is ignored.
    Closed,
}

/// What an upstream block index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ToolUse(u32),
    /// The structured-output tool: its input is the answer's text.
    Json,
    /// The value-wrapped structured-output tool: `values[i]` unwraps it.
    JsonValue(usize),
    Other,
}

/// Per-stream state for decoding an Anthropic upstream's SSE stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    phase: Phase,
    /// Upstream block index → kind, for blocks whose deltas need it (tool calls).
    blocks: Vec<(u64, Kind)>,
    tool_calls: u32,
    /// A structured-output tool call was turned into text.
    unwrapped: bool,
    values: Vec<ValueUnwrap>,
    usage: WireUsage,
    /// Server-side web search blocks and citations.
    search: SearchStream,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The canonical events one upstream frame yields (often none).
    pub fn feed(&mut self, frame: &Frame) -> Vec<StreamEvent> {
        if self.phase == Phase::Closed {
            return Vec::new();
        }
        if frame.event.as_deref().is_some_and(|e| !EVENTS.contains(&e)) {
            return Vec::new();
        }
        let mut out = Vec::new();
        match serde_json::from_str::<WireEvent>(&frame.data) {
            Ok(ev) => {
                self.step(ev, &mut out);
                let content = self.phase == Phase::Open;
                self.search.observe(frame, content, &mut out);
            }
            Err(_) if frame.event.as_deref() == Some("error") => {
                self.phase = Phase::Closed;
                out.push(StreamEvent::Error {
                    message: "the upstream sent an unreadable error event".to_owned(),
                });
            }
            Err(_) => {}
        }
        out
    }

    /// Called when the upstream stream ends. Emits nothing: a stream that ends without
    /// `message_stop` was cut short, which the gateway sees as the missing `End`.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        self.phase = Phase::Closed;
        Vec::new()
    }

    fn step(&mut self, ev: WireEvent, out: &mut Vec<StreamEvent>) {
        match ev {
            WireEvent::MessageStart { message } => {
                if self.phase != Phase::Fresh {
                    return;
                }
                self.phase = Phase::Open;
                out.push(StreamEvent::Start {
                    id: message.id,
                    model: message.model,
                });
                if let Some(u) = message.usage {
                    self.usage = self.usage.merge(u);
                    out.push(StreamEvent::Usage(self.usage.canonical()));
                }
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if self.content_allowed(out) {
                    self.block_start(index, content_block, out);
                }
            }
            WireEvent::ContentBlockDelta { index, delta } => {
                if self.content_allowed(out) {
                    self.block_delta(index, delta, out);
                }
            }
            WireEvent::ContentBlockStop { index } => {
                if self.phase == Phase::Open {
                    self.block_stop(index, out);
                }
            }
            WireEvent::MessageDelta { delta, usage } => {
                self.ensure_started(out);
                if self.phase == Phase::Open
                    && let Some(reason) = delta.stop_reason
                {
                    // Blocks the upstream never stopped.
                    let open: Vec<u64> = self.blocks.iter().map(|(i, _)| *i).collect();
                    for index in open {
                        self.block_stop(index, out);
                    }
                    self.phase = Phase::Finished;
                    let reason = match decode_stop(&reason) {
                        FinishReason::ToolCalls if self.unwrapped && self.tool_calls == 0 => {
                            FinishReason::Stop
                        }
                        other => other,
                    };
                    out.push(StreamEvent::Finish {
                        reason,
                        stop_sequence: delta.stop_sequence,
                    });
                }
                if let Some(u) = usage {
                    self.usage = self.usage.merge(u);
                    out.push(StreamEvent::Usage(self.usage.canonical()));
                }
            }
            WireEvent::MessageStop {} => {
                self.ensure_started(out);
                self.phase = Phase::Closed;
                out.push(StreamEvent::End);
            }
            WireEvent::Error { error } => {
                self.phase = Phase::Closed;
                let message = match (error.kind, error.message) {
                    (Some(k), Some(m)) => format!("{k}: {m}"),
                    (Some(s), None) | (None, Some(s)) => s,
                    (None, None) => "the upstream reported an error".to_owned(),
                };
                out.push(StreamEvent::Error { message });
            }
            WireEvent::Ignored => {}
        }
    }

    /// Emits `Start` if the upstream skipped `message_start`.
    fn ensure_started(&mut self, out: &mut Vec<StreamEvent>) {
        if self.phase == Phase::Fresh {
            self.phase = Phase::Open;
            out.push(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
            });
        }
    }

    /// Whether content may be emitted now (starting the message if needed).
    fn content_allowed(&mut self, out: &mut Vec<StreamEvent>) -> bool {
        self.ensure_started(out);
        self.phase == Phase::Open
    }

    fn block_start(&mut self, index: u64, block: StartBlock, out: &mut Vec<StreamEvent>) {
        let kind = match block {
            StartBlock::Text { text } => {
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta(text));
                }
                Kind::Other
            }
            StartBlock::Thinking {
                thinking,
                signature,
            } => {
                if !thinking.is_empty() {
                    out.push(StreamEvent::ReasoningDelta(thinking));
                }
                if !signature.is_empty() {
                    out.push(StreamEvent::ReasoningSignature(signature::from_wire(
                        Origin::Anthropic,
                        &signature,
                    )));
                }
                Kind::Other
            }
            StartBlock::RedactedThinking { data } => {
                out.push(StreamEvent::RedactedReasoning(data));
                Kind::Other
            }
            StartBlock::ToolUse { name, input, .. } if name == JSON_TOOL => {
                self.unwrapped = true;
                if input.as_object().is_some_and(|o| !o.is_empty()) {
                    out.push(StreamEvent::TextDelta(input.to_string()));
                }
                Kind::Json
            }
            StartBlock::ToolUse { name, input, .. } if name == JSON_VALUE_TOOL => {
                self.unwrapped = true;
                let mut value = ValueUnwrap::default();
                if input.as_object().is_some_and(|o| !o.is_empty()) {
                    let text = value.push(&input.to_string());
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta(text));
                    }
                }
                self.values.push(value);
                Kind::JsonValue(self.values.len() - 1)
            }
            StartBlock::ToolUse { id, name, input } => {
                let ordinal = self.tool_calls;
                self.tool_calls = self.tool_calls.saturating_add(1);
                out.push(StreamEvent::ToolCallStart {
                    index: ordinal,
                    id,
                    name,
                });
                // The API starts with `input: {}` and streams the JSON; a proxy that sends the
                // whole input up front is passed on as one fragment.
                if input.as_object().is_some_and(|o| !o.is_empty()) {
                    out.push(StreamEvent::ToolArgsDelta {
                        index: ordinal,
                        json: tool_arguments(&input),
                    });
                }
                Kind::ToolUse(ordinal)
            }
            StartBlock::Other => Kind::Other,
        };
        match self.blocks.iter_mut().rev().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = kind,
            None => self.blocks.push((index, kind)),
        }
    }

    fn kind(&self, index: u64) -> Option<Kind> {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| *k)
    }

    fn block_delta(&mut self, index: u64, delta: Delta, out: &mut Vec<StreamEvent>) {
        match delta {
            Delta::TextDelta { text } if !text.is_empty() => {
                out.push(StreamEvent::TextDelta(text));
            }
            Delta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                out.push(StreamEvent::ReasoningDelta(thinking));
            }
            Delta::SignatureDelta { signature } if !signature.is_empty() => {
                out.push(StreamEvent::ReasoningSignature(signature::from_wire(
                    Origin::Anthropic,
                    &signature,
                )));
            }
            Delta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                // Argument JSON for a block that was not started as a tool call has no call
                // to belong to.
                match self.kind(index) {
                    Some(Kind::ToolUse(ordinal)) => out.push(StreamEvent::ToolArgsDelta {
                        index: ordinal,
                        json: partial_json,
                    }),
                    Some(Kind::Json) => out.push(StreamEvent::TextDelta(partial_json)),
                    Some(Kind::JsonValue(i)) => {
                        let text = self
                            .values
                            .get_mut(i)
                            .map(|v| v.push(&partial_json))
                            .unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta(text));
                        }
                    }
                    Some(Kind::Other) | None => {}
                }
            }
            _ => {}
        }
    }

    /// A block ended: a value-wrapped answer releases what it held.
    fn block_stop(&mut self, index: u64, out: &mut Vec<StreamEvent>) {
        if let Some(Kind::JsonValue(i)) = self.kind(index) {
            let text = self
                .values
                .get_mut(i)
                .map(ValueUnwrap::finish)
                .unwrap_or_default();
            if !text.is_empty() {
                out.push(StreamEvent::TextDelta(text));
            }
        }
        if let Some(slot) = self.blocks.iter_mut().rev().find(|(i, _)| *i == index) {
            slot.1 = Kind::Other;
        }
    }
}
