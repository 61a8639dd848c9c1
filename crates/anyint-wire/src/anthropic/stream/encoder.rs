//! Canonical [`StreamEvent`]s → the SSE bytes an Anthropic client receives. Every message is
//! `event: NAME\ndata: JSON\n\n` with `data.type == NAME` (the SDKs dispatch on the name).
//!
//! Blocks are opened lazily: the first text delta opens a `text` block, reasoning or a
//! signature opens a `thinking` block (a new one when the open block is already signed), a
//! redacted reasoning event is a complete `redacted_thinking` block, and `ToolCallStart` opens
//! a `tool_use` block. Opening a block closes the previous one. A delta is only ever written
//! for the open block: argument JSON for a tool call whose block was already closed (an
//! upstream interleaving parallel calls) cannot be placed and is dropped. `End` closes the
//! open block, then writes `message_delta` and `message_stop`.
//!
//! `message_start` is written just before the first bytes that need it (the first block, or
//! `End`), not at `Start`: Anthropic and Gemini upstreams report the input tokens right after
//! their start (in the same frame), and waiting lets `message_start` announce the real counts
//! instead of [`EncodeOptions::input_tokens_estimate`]. `Start` and `Usage` write nothing, so
//! nothing is reordered. The estimate is used only when no usage with input tokens is known by
//! then (OpenAI-compatible upstreams report usage at the end).
//!
//! Reasoning signatures are written as Anthropic issued them; another provider's keep their
//! origin tag (see [`crate::canonical::signature`]), so they are never replayed to Anthropic.

use serde::Serialize;

use crate::Usage;
use crate::anthropic::usage::uncached_input;
use crate::anthropic::wire::{Empty, encode_stop, message_id};
use crate::canonical::signature::{self, Origin};
use crate::canonical::{EncodeOptions, FinishReason, StreamEvent};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Data<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody<'a>,
        usage: DeltaUsage,
    },
    MessageStop,
    Error {
        error: ErrorDetail<'a>,
    },
}

impl Data<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Error { .. } => "error",
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Serializing these plain structs into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: StartUsage,
}

#[expect(clippy::struct_field_names, reason = "field names are the wire's")]
#[derive(Serialize)]
struct StartUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Empty,
    },
}

#[expect(
    clippy::enum_variant_names,
    reason = "variant names are the wire's delta type tags"
)]
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDeltaBody<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
}

/// `message_delta` usage: cumulative output, and the real input counts once known.
#[expect(clippy::struct_field_names, reason = "field names are the wire's")]
#[derive(Serialize)]
struct DeltaUsage {
    output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// The in-stream error event an Anthropic client understands:
/// `event: error\ndata: {"type":"error","error":{"type":T,"message":M}}\n\n`.
pub fn error_event(error_type: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + error_type.len() + message.len());
    Data::Error {
        error: ErrorDetail {
            kind: error_type,
            message,
        },
    }
    .write(&mut out);
    out
}

/// Where the encoder is in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `message_start` not written yet (a `Start` may be held in `start`).
    Fresh,
    /// `message_start` written.
    Open,
    /// `message_stop` written, or the stream failed: nothing more is written.
    Done,
}

/// The block currently open on the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking { signed: bool },
    Tool(u32),
}

/// Per-stream state for writing an Anthropic SSE stream to a client.
#[derive(Debug)]
pub struct StreamEncoder {
    opts: EncodeOptions,
    phase: Phase,
    /// The id and model of a `Start` whose `message_start` is not written yet.
    start: Option<(String, String)>,
    /// The open block and its index.
    open: Option<(u32, Block)>,
    next_index: u32,
    usage: Option<Usage>,
    finish: Option<(FinishReason, Option<String>)>,
}

impl StreamEncoder {
    /// An encoder for one response; `opts.model` is the model the client sees and
    /// `opts.input_tokens_estimate` the input count announced in `message_start`.
    pub fn new(opts: EncodeOptions) -> Self {
        Self {
            opts,
            phase: Phase::Fresh,
            start: None,
            open: None,
            next_index: 0,
            usage: None,
            finish: None,
        }
    }

    /// The bytes for one canonical event (often none). After `Error` it writes nothing, not
    /// even for `Error` itself: the gateway writes the error event.
    pub fn encode(&mut self, ev: &StreamEvent) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(ev, &mut out);
        out
    }

    /// [`encode`](Self::encode), appending to `out`: a translated stream writes a chunk's
    /// events into one buffer instead of a new one per event, copied over.
    pub fn encode_into(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.phase == Phase::Done {
            return;
        }
        match ev {
            StreamEvent::Start { id, model } => {
                if self.phase == Phase::Fresh && self.start.is_none() {
                    self.start = Some((id.clone(), model.clone()));
                }
            }
            StreamEvent::TextDelta(text) if !text.is_empty() => {
                if self.open_kind() != Some(Block::Text) {
                    self.open(out, Block::Text, StartBlock::Text { text: "" });
                }
                self.delta(out, Delta::TextDelta { text });
            }
            StreamEvent::ReasoningDelta(thinking) if !thinking.is_empty() => {
                self.open_thinking(out);
                self.delta(out, Delta::ThinkingDelta { thinking });
            }
            StreamEvent::ReasoningSignature(signature) if !signature.is_empty() => {
                self.open_thinking(out);
                let signature = signature::for_client(Origin::Anthropic, signature);
                self.delta(out, Delta::SignatureDelta { signature });
                if let Some((_, Block::Thinking { signed })) = &mut self.open {
                    *signed = true;
                }
            }
            StreamEvent::RedactedReasoning(data) => {
                self.open(
                    out,
                    Block::Thinking { signed: true },
                    StartBlock::RedactedThinking { data },
                );
                self.close(out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.open(
                    out,
                    Block::Tool(*index),
                    StartBlock::ToolUse {
                        id,
                        name,
                        input: Empty {},
                    },
                );
            }
            StreamEvent::ToolArgsDelta { index, json } if !json.is_empty() => {
                if self.open_kind() == Some(Block::Tool(*index)) {
                    self.delta(out, Delta::InputJsonDelta { partial_json: json });
                }
            }
            StreamEvent::Usage(u) => {
                self.usage = Some(self.usage.map_or(*u, |prev| prev.merge(*u)));
            }
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => {
                self.finish = Some((reason.clone(), stop_sequence.clone()));
            }
            StreamEvent::Error { .. } => self.phase = Phase::Done,
            StreamEvent::End => self.end(out),
            // Empty deltas.
            // The answer text carries the facts; an Anthropic client gets no search blocks.
            StreamEvent::WebSearch(_)
            | StreamEvent::Citation(_)
            | StreamEvent::TextDelta(_)
            | StreamEvent::ReasoningDelta(_)
            | StreamEvent::ReasoningSignature(_)
            | StreamEvent::ToolArgsDelta { .. } => {}
        }
    }

    /// Called when the upstream stream ends. Writes nothing: a completed stream was closed at
    /// `End`, and a cut one is reported by the gateway.
    pub fn finish(&mut self) -> Vec<u8> {
        self.phase = Phase::Done;
        Vec::new()
    }

    fn open_kind(&self) -> Option<Block> {
        self.open.map(|(_, b)| b)
    }

    /// Writes `message_start` if it is not written yet, with the held `Start`'s id and model
    /// and the best input count known now.
    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::Fresh {
            return;
        }
        self.phase = Phase::Open;
        let (id, model) = self.start.take().unwrap_or_default();
        let id = message_id(&id);
        let model = if self.opts.model.is_empty() {
            &model
        } else {
            &self.opts.model
        };
        let usage = match self.usage.filter(|u| u.input_tokens > 0) {
            Some(u) => StartUsage {
                input_tokens: uncached_input(&u),
                output_tokens: u.output_tokens.max(1),
                cache_creation_input_tokens: u.cache_write_tokens,
                cache_read_input_tokens: u.cache_read_tokens,
            },
            None => StartUsage {
                input_tokens: self.opts.input_tokens_estimate,
                output_tokens: 1,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
            },
        };
        Data::MessageStart {
            message: StartMessage {
                id: &id,
                kind: "message",
                role: "assistant",
                model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage,
            },
        }
        .write(out);
    }

    /// Opens a thinking block unless an unsigned one is open (a signature ends a block).
    fn open_thinking(&mut self, out: &mut Vec<u8>) {
        if self.open_kind() != Some(Block::Thinking { signed: false }) {
            self.open(
                out,
                Block::Thinking { signed: false },
                StartBlock::Thinking {
                    thinking: "",
                    signature: "",
                },
            );
        }
    }

    fn open(&mut self, out: &mut Vec<u8>, block: Block, start: StartBlock<'_>) {
        self.ensure_started(out);
        self.close(out);
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        Data::ContentBlockStart {
            index,
            content_block: start,
        }
        .write(out);
        self.open = Some((index, block));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            Data::ContentBlockStop { index }.write(out);
        }
    }

    fn delta(&self, out: &mut Vec<u8>, delta: Delta<'_>) {
        if let Some((index, _)) = self.open {
            Data::ContentBlockDelta { index, delta }.write(out);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close(out);
        let (stop_reason, stop_sequence) = match &self.finish {
            Some((reason, seq)) => (encode_stop(reason), seq.as_deref()),
            None => ("end_turn", None),
        };
        let usage = match &self.usage {
            Some(u) => DeltaUsage {
                output_tokens: u.output_tokens,
                input_tokens: Some(uncached_input(u)),
                cache_creation_input_tokens: Some(u.cache_write_tokens),
                cache_read_input_tokens: Some(u.cache_read_tokens),
            },
            None => DeltaUsage {
                output_tokens: 0,
                input_tokens: None,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: None,
            },
        };
        Data::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason,
                stop_sequence,
            },
            usage,
        }
        .write(out);
        Data::MessageStop.write(out);
        self.phase = Phase::Done;
    }
}
