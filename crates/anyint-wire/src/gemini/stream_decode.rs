//! An upstream `streamGenerateContent?alt=sse` stream → canonical [`StreamEvent`]s.
//!
//! Every `data:` payload is a complete GenerateContentResponse holding the *new* parts, so
//! each chunk maps to events on its own; the state kept across chunks is whether `Start` was
//! sent, the tool call ordinal, the last usage and the last finish reason. Gemini has no end
//! marker: [`StreamDecoder::finish`] at EOF emits `Finish` and `End` only if a finish reason
//! (or a prompt block) was seen, and otherwise nothing, since the stream was cut. Grounding
//! metadata is merged over the chunks and read there too, before `Finish`: its citations, its
//! search and the usage with the search count.
//!
//! A chunk's `Usage` comes before the events of its parts, so the prompt count Gemini reports
//! with the first chunk directly follows `Start` (the Anthropic client encoder announces it in
//! `message_start`). Thought signatures are tagged as Gemini's (see
//! [`crate::canonical::signature`]).
//!
//! Built [`with_options`](StreamDecoder::with_options) for a request with
//! `parallel_tool_calls: false`, the decoder passes on the turn's first function call only
//! (structured-output.md §8): later ones, in that chunk or later chunks, are dropped with the
//! signature carrier before them; text, usage and the finish reason still pass.

use serde_json::{Map, Value};

use super::fields::{get, get_obj, get_str};
use super::parts::PartsDecoder;
use super::response::{
    blocked, candidate_parts, finish_from_wire, first_candidate, keep_first_call,
};
use super::search::SearchStream;
use super::usage::from_metadata;
use crate::Usage;
use crate::canonical::{DecodeOptions, FinishReason, Part, StreamEvent};
use crate::sse::Frame;

/// Per-stream state of an upstream Gemini stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Created with the first chunk, which names the response id used in call ids.
    parts: Option<PartsDecoder>,
    /// Function calls seen so far (the next call's ordinal).
    calls: u32,
    /// The last `finishReason` seen.
    finish: Option<String>,
    /// The prompt was blocked (`promptFeedback.blockReason`).
    blocked: bool,
    last_usage: Option<Usage>,
    /// An error chunk arrived, or `finish` ran: nothing more is emitted.
    done: bool,
    /// Function calls after the first are dropped ([`DecodeOptions::first_tool_call_only`]).
    first_call_only: bool,
    /// Grounding (Google Search) metadata and the answer text it points into.
    search: SearchStream,
}

impl StreamDecoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder for the answer to a request that asked for what `opts` says: with
    /// `first_tool_call_only`, function calls after the first one are dropped while usage and
    /// the finish reason still pass.
    pub fn with_options(opts: DecodeOptions) -> Self {
        Self {
            first_call_only: opts.first_tool_call_only,
            ..Self::default()
        }
    }

    /// The events one SSE frame carries. Frames without data are skipped; a payload that is
    /// not JSON, or an `{"error":…}` chunk, yields one `Error` and ends decoding.
    pub fn feed(&mut self, frame: &Frame) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        let data = frame.data.trim();
        if self.done || data.is_empty() {
            return out;
        }
        match serde_json::from_str::<Value>(data) {
            // Tolerate the non-SSE array form arriving in one frame.
            Ok(Value::Array(items)) => {
                for item in &items {
                    self.chunk(item, &mut out);
                }
            }
            Ok(value) => self.chunk(&value, &mut out),
            Err(_) => {
                self.done = true;
                out.push(StreamEvent::Error {
                    message: "the upstream sent a stream chunk that is not JSON".into(),
                });
            }
        }
        out
    }

    fn chunk(&mut self, value: &Value, out: &mut Vec<StreamEvent>) {
        let Some(obj) = value.as_object() else {
            return;
        };
        if self.done {
            return;
        }
        if let Some(err) = get(obj, "error") {
            self.done = true;
            let message = err
                .as_object()
                .and_then(|e| get_str(e, "message"))
                .map_or_else(|| err.to_string(), str::to_owned);
            out.push(StreamEvent::Error { message });
            return;
        }
        let decoder = if let Some(d) = &mut self.parts {
            d
        } else {
            let id = get_str(obj, "responseId").unwrap_or_default();
            out.push(StreamEvent::Start {
                id: id.to_owned(),
                model: get_str(obj, "modelVersion").unwrap_or_default().to_owned(),
            });
            self.parts.insert(PartsDecoder::response(id))
        };
        let cand = first_candidate(obj);
        let mut parts = cand
            .map(|c| candidate_parts(c, decoder))
            .unwrap_or_default();
        if self.first_call_only {
            let mut seen = self.calls > 0;
            parts = keep_first_call(parts, &mut seen);
        }
        // Usage before the chunk's parts: the first chunk's prompt count then directly
        // follows `Start`, in time for encoders that announce input tokens up front.
        if let Some(meta) = get_obj(obj, "usageMetadata") {
            self.usage(meta, out);
        }
        for part in parts {
            if let Part::Text { text, .. } = &part {
                self.search.text(text);
            }
            part_events(part, &mut self.calls, out);
        }
        match cand {
            Some(cand) => {
                self.search.observe(cand);
                if let Some(reason) = get_str(cand, "finishReason") {
                    self.finish = Some(reason.to_owned());
                }
            }
            None => self.blocked |= blocked(obj).is_some(),
        }
    }

    fn usage(&mut self, meta: &Map<String, Value>, out: &mut Vec<StreamEvent>) {
        let usage = from_metadata(meta);
        if self.last_usage != Some(usage) {
            self.last_usage = Some(usage);
            out.push(StreamEvent::Usage(usage));
        }
    }

    /// Call at EOF: `Finish` and `End` when the stream finished, nothing when it was cut (or
    /// already ended in an error).
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if std::mem::replace(&mut self.done, true) || self.parts.is_none() {
            return Vec::new();
        }
        let reason = match (&self.finish, self.blocked) {
            (Some(r), _) => finish_from_wire(r, self.calls > 0),
            (None, true) => FinishReason::ContentFilter,
            (None, false) => return Vec::new(),
        };
        let mut out = self.search.finish();
        let searches = self.search.searches();
        if searches > 0 {
            let usage = Usage {
                web_searches: searches,
                ..self.last_usage.unwrap_or_default()
            };
            out.push(StreamEvent::Usage(usage));
        }
        out.extend([
            StreamEvent::Finish {
                reason,
                stop_sequence: None,
            },
            StreamEvent::End,
        ]);
        out
    }
}

/// The events for one canonical part of a chunk. Images have no stream event and are dropped.
fn part_events(part: Part, calls: &mut u32, out: &mut Vec<StreamEvent>) {
    match part {
        Part::Text { text, .. } => out.push(StreamEvent::TextDelta(text)),
        Part::Reasoning {
            text, signature, ..
        } => {
            if !text.is_empty() {
                out.push(StreamEvent::ReasoningDelta(text));
            }
            if let Some(sig) = signature {
                out.push(StreamEvent::ReasoningSignature(sig));
            }
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            let index = *calls;
            *calls = calls.saturating_add(1);
            out.push(StreamEvent::ToolCallStart { index, id, name });
            out.push(StreamEvent::ToolArgsDelta {
                index,
                json: arguments,
            });
        }
        Part::Image { .. } | Part::ToolResult { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &str) -> Frame {
        Frame {
            raw: bytes::Bytes::new(),
            event: None,
            data: data.into(),
        }
    }

    fn run(chunks: &[&str]) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new();
        let mut out: Vec<StreamEvent> = chunks.iter().flat_map(|c| d.feed(&frame(c))).collect();
        out.extend(d.finish());
        out
    }

    #[test]
    fn text_usage_and_finish() {
        let events = run(&[
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"It is 3°C"}]},"index":0}],"usageMetadata":{"promptTokenCount":41,"totalTokenCount":41},"modelVersion":"gemini-2.5-flash","responseId":"r1"}"#,
            "",
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":" and raining."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":41,"candidatesTokenCount":9,"totalTokenCount":50},"modelVersion":"gemini-2.5-flash","responseId":"r1"}"#,
        ]);
        assert_eq!(
            events,
            vec![
                StreamEvent::Start {
                    id: "r1".into(),
                    model: "gemini-2.5-flash".into()
                },
                // A chunk's usage comes before its parts.
                StreamEvent::Usage(Usage {
                    input_tokens: 41,
                    ..Usage::default()
                }),
                StreamEvent::TextDelta("It is 3°C".into()),
                StreamEvent::Usage(Usage {
                    input_tokens: 41,
                    output_tokens: 9,
                    ..Usage::default()
                }),
                StreamEvent::TextDelta(" and raining.".into()),
                StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    stop_sequence: None
                },
                StreamEvent::End,
            ]
        );
    }

    #[test]
    fn function_calls_thoughts_and_signatures() {
        let events = run(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"plan","thought":true}]}}],"responseId":"r2","modelVersion":"m"}"#,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"a","args":{"x":1}},"thoughtSignature":"SIG"},{"functionCall":{"name":"b","args":{},"id":"own"}}]},"finishReason":"STOP"}]}"#,
        ]);
        assert_eq!(
            events[1..],
            [
                StreamEvent::ReasoningDelta("plan".into()),
                StreamEvent::ReasoningSignature("anyint:gemini:SIG".into()),
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "call_r2_0".into(),
                    name: "a".into()
                },
                StreamEvent::ToolArgsDelta {
                    index: 0,
                    json: r#"{"x":1}"#.into()
                },
                StreamEvent::ToolCallStart {
                    index: 1,
                    id: "own".into(),
                    name: "b".into()
                },
                StreamEvent::ToolArgsDelta {
                    index: 1,
                    json: "{}".into()
                },
                StreamEvent::Finish {
                    reason: FinishReason::ToolCalls,
                    stop_sequence: None
                },
                StreamEvent::End,
            ]
        );
    }

    #[test]
    fn cut_streams_errors_and_blocks() {
        // No finishReason: the stream was cut, so no Finish/End.
        let events = run(&[r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#]);
        assert_eq!(events.len(), 2);
        assert!(run(&[]).is_empty());
        let events = run(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#,
            r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"b"}]}}]}"#,
        ]);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Error {
                message: "overloaded".into()
            })
        );
        let events = run(&["not json"]);
        assert!(matches!(events.as_slice(), [StreamEvent::Error { .. }]));
        let events =
            run(&[r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"responseId":"x"}"#]);
        assert_eq!(
            events[1],
            StreamEvent::Finish {
                reason: FinishReason::ContentFilter,
                stop_sequence: None
            }
        );
        let events = run(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"MAX_TOKENS"}]}"#,
        ]);
        assert_eq!(
            events[2],
            StreamEvent::Finish {
                reason: FinishReason::Length,
                stop_sequence: None
            }
        );
    }

    #[test]
    fn one_call_per_turn_drops_later_calls_across_chunks() {
        let chunks = [
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"a","args":{}}},{"functionCall":{"name":"b","args":{}}}]}}],"responseId":"r"}"#,
            r#"{"candidates":[{"content":{"parts":[{"thoughtSignature":"S","functionCall":{"name":"c","args":{}}},{"text":"done"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":20}}"#,
        ];
        let mut d = StreamDecoder::with_options(DecodeOptions {
            first_tool_call_only: true,
            ..DecodeOptions::default()
        });
        let mut events: Vec<StreamEvent> = chunks.iter().flat_map(|c| d.feed(&frame(c))).collect();
        events.extend(d.finish());
        let names: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallStart { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["a"]);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, StreamEvent::ReasoningSignature(_)))
        );
        assert!(events.contains(&StreamEvent::TextDelta("done".into())));
        assert!(events.contains(&StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 20,
            ..Usage::default()
        })));
        assert_eq!(
            events.get(events.len() - 2),
            Some(&StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                stop_sequence: None
            })
        );
        // Without the option every call passes.
        let all: Vec<StreamEvent> = {
            let mut d = StreamDecoder::new();
            chunks.iter().flat_map(|c| d.feed(&frame(c))).collect()
        };
        let count = all
            .iter()
            .filter(|e| matches!(e, StreamEvent::ToolCallStart { .. }))
            .count();
        assert_eq!(count, 3);
    }
}
