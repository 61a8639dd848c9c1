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
use crate::json::Text;
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

/// A `content_block_delta` as [`block_delta`] reads it: both `type`s as plain fields, each
/// delta field a string or absent (a null or another type refuses the read).
#[derive(Deserialize)]
struct FlatBlockDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    index: u64,
    #[serde(borrow)]
    delta: FlatDelta<'a>,
}

#[derive(Deserialize)]
struct FlatDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default, borrow)]
    text: Text<'a>,
    #[serde(default, borrow)]
    thinking: Text<'a>,
    #[serde(default, borrow)]
    signature: Text<'a>,
    #[serde(default, borrow)]
    partial_json: Text<'a>,
}

/// A `content_block_delta` frame, most of a stream, read without serde's internally tagged
/// enums, which first copy every key and value of the event into a buffer of their own (a
/// third of a translated stream's decoding). `None` leaves the frame to [`WireEvent`]: any
/// other event, or one whose fields the flat read refuses.
fn block_delta(frame: &Frame) -> Option<WireEvent> {
    if frame.event.as_deref() != Some("content_block_delta") {
        return None;
    }
    let read = serde_json::from_str::<FlatBlockDelta<'_>>(&frame.data).ok()?;
    if read.kind.as_str() != "content_block_delta" {
        return None;
    }
    let FlatDelta {
        kind,
        text,
        thinking,
        signature,
        partial_json,
    } = read.delta;
    let delta = match kind.as_str() {
        "text_delta" => Delta::TextDelta {
            text: text.0.into_owned(),
        },
        "thinking_delta" => Delta::ThinkingDelta {
            thinking: thinking.0.into_owned(),
        },
        "signature_delta" => Delta::SignatureDelta {
            signature: signature.0.into_owned(),
        },
        "input_json_delta" => Delta::InputJsonDelta {
            partial_json: partial_json.0.into_owned(),
        },
        _ => Delta::Other,
    };
    Some(WireEvent::ContentBlockDelta {
        index: read.index,
        delta,
    })
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
        let parsed = match block_delta(frame) {
            Some(ev) => Ok(ev),
            None => serde_json::from_str::<WireEvent>(&frame.data),
        };
        match parsed {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A content block delta event as the two readings give it, for comparison.
    fn describe(ev: &WireEvent) -> String {
        match ev {
            WireEvent::ContentBlockDelta { index, delta } => {
                let delta = match delta {
                    Delta::TextDelta { text } => format!("text {text:?}"),
                    Delta::ThinkingDelta { thinking } => format!("thinking {thinking:?}"),
                    Delta::SignatureDelta { signature } => format!("signature {signature:?}"),
                    Delta::InputJsonDelta { partial_json } => format!("json {partial_json:?}"),
                    Delta::Other => "other".to_owned(),
                };
                format!("delta {index} {delta}")
            }
            _ => "another event".to_owned(),
        }
    }

    fn frame(event: &str, data: &str) -> Frame {
        let mut splitter = crate::sse::SseSplitter::new();
        let mut frames = splitter.push(format!("event: {event}\ndata: {data}\n\n").as_bytes());
        frames.remove(0)
    }

    /// A field: absent, null, a string (escapes included) or a number.
    fn field() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(Value::Null)),
            6 => "[a-z\"\\\\\n\u{e9}{} ]{0,8}".prop_map(|s| Some(Value::String(s))),
            1 => any::<i32>().prop_map(|n| Some(json!(n))),
        ]
    }

    fn delta_event() -> impl Strategy<Value = String> {
        let kind = proptest::sample::select(vec![
            "text_delta",
            "thinking_delta",
            "signature_delta",
            "input_json_delta",
            "citations_delta",
            "TEXT_DELTA",
        ]);
        let delta = (kind, field(), field(), field(), field()).prop_map(|(k, t, th, s, p)| {
            let mut d = serde_json::Map::new();
            d.insert("type".into(), json!(k));
            for (name, v) in [
                ("text", t),
                ("thinking", th),
                ("signature", s),
                ("partial_json", p),
            ] {
                if let Some(v) = v {
                    d.insert(name.into(), v);
                }
            }
            Value::Object(d)
        });
        let top = proptest::sample::select(vec![
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_start",
        ]);
        let index = prop_oneof![8 => (0u64..5).prop_map(|i| json!(i)), 1 => Just(json!(-1)), 1 => Just(Value::Null)];
        (top, index, delta)
            .prop_map(|(t, i, d)| json!({"type": t, "index": i, "delta": d}).to_string())
    }

    /// Deltas as Anthropic writes them are read flat, with what the tagged read gives.
    #[test]
    fn deltas_are_read_flat_as_the_tagged_read_reads_them() {
        for data in [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"there\"\n"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQ="}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"url":"u"}}}"#,
        ] {
            let f = frame("content_block_delta", data);
            let flat = block_delta(&f).expect(data);
            let tagged = serde_json::from_str::<WireEvent>(data).unwrap();
            assert_eq!(describe(&flat), describe(&tagged), "{data}");
        }
        // Another event name, or a null where a string goes: the tagged read decides.
        let data =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":null}}"#;
        assert!(block_delta(&frame("content_block_delta", data)).is_none());
        assert!(serde_json::from_str::<WireEvent>(data).is_err());
        let data =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#;
        assert!(block_delta(&frame("ping", data)).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Whatever the fields hold, a delta the flat read accepts is the one the tagged read
        /// gives.
        #[test]
        fn the_flat_read_agrees_with_the_tagged_read(data in delta_event()) {
            if let Some(flat) = block_delta(&frame("content_block_delta", &data)) {
                let tagged = serde_json::from_str::<WireEvent>(&data);
                prop_assert!(tagged.is_ok(), "{}", data);
                prop_assert_eq!(describe(&flat), describe(&tagged.unwrap()), "{}", data);
            }
        }
    }
}
