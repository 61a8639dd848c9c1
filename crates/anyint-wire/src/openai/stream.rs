//! OpenAI chat streams ⇄ canonical stream events.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::chat::{decode_finish, encode_finish, encode_usage};
use crate::canonical::{EncodeOptions, StreamEvent, Usage};
use crate::json::Text;
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
        let value;
        let chunk = match serde_json::from_str::<Chunk<'_>>(data) {
            Ok(chunk) => chunk,
            // A field of another type than the decoder reads: `Value` decides, and such a field
            // counts as absent.
            Err(_) => match serde_json::from_str::<Value>(data) {
                Ok(v) => {
                    value = v;
                    Chunk::lenient(&value)
                }
                Err(_) => return out,
            },
        };
        self.events(&chunk, data, &mut out);
        out
    }

    /// The events of one decoded chunk (`data`, its text, for the usage).
    fn events(&mut self, chunk: &Chunk<'_>, data: &str, out: &mut Vec<StreamEvent>) {
        if let Some(err) = &chunk.error {
            let message = err
                .message
                .as_ref()
                .map_or("upstream stream error", Text::as_str);
            out.push(StreamEvent::Error {
                message: message.to_owned(),
            });
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: owned(chunk.id.as_ref()),
                model: owned(chunk.model.as_ref()),
            });
        }
        let choice = chunk.choices.as_ref().and_then(|c| c.first());
        if let Some(delta) = choice.and_then(|c| c.delta.as_ref()) {
            let said = |t: &Option<Text<'_>>| {
                t.as_ref()
                    .map(Text::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            if let Some(r) = said(&delta.reasoning_content) {
                out.push(StreamEvent::ReasoningDelta(r));
            }
            if let Some(t) = said(&delta.content) {
                out.push(StreamEvent::TextDelta(t));
            }
            for call in delta.tool_calls.iter().flatten() {
                self.tool_call(call, out);
            }
        }
        if let Some(reason) = choice.and_then(|c| c.finish_reason.as_ref())
            && !self.finished
        {
            self.finished = true;
            out.push(StreamEvent::Finish {
                reason: decode_finish(reason.as_str()),
                stop_sequence: None,
            });
        }
        if let super::StreamUsage::Inline(u) | super::StreamUsage::UsageOnly(u) =
            super::usage_from_chunk(data)
        {
            out.push(StreamEvent::Usage(u));
        }
    }

    /// One `delta.tool_calls[]` entry: a new upstream index opens a call, arguments continue it.
    fn tool_call(&mut self, call: &ToolCall<'_>, out: &mut Vec<StreamEvent>) {
        let upstream_index = call.index.unwrap_or(0);
        let f = call.function.as_ref();
        if !self.calls.contains_key(&upstream_index) {
            let ordinal = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
            self.calls.insert(upstream_index, ordinal);
            out.push(StreamEvent::ToolCallStart {
                index: ordinal,
                id: owned(call.id.as_ref()),
                name: owned(f.and_then(|f| f.name.as_ref())),
            });
        }
        let args = f
            .and_then(|f| f.arguments.as_ref())
            .map_or("", Text::as_str);
        if !args.is_empty()
            && let Some(&index) = self.calls.get(&upstream_index)
        {
            out.push(StreamEvent::ToolArgsDelta {
                index,
                json: args.to_owned(),
            });
        }
    }

    /// The upstream stream ended (EOF). Nothing to add: a stream without `[DONE]` was cut.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        Vec::new()
    }
}

/// The text of a field, empty when absent.
fn owned(t: Option<&Text<'_>>) -> String {
    t.map_or_else(String::new, |t| t.as_str().to_owned())
}

/// One chunk as the decoder reads it: only the fields it uses, each string borrowed from the
/// frame unless it holds an escape; the chunk's other fields are skipped, not built into a
/// tree. A chunk with one of these fields of another type is read by [`Chunk::lenient`].
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    model: Option<Text<'a>>,
    #[serde(borrow, default)]
    error: Option<ChunkError<'a>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

#[derive(Deserialize)]
struct ChunkError<'a> {
    #[serde(borrow, default)]
    message: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    reasoning_content: Option<Text<'a>>,
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    arguments: Option<Text<'a>>,
}

impl<'a> Chunk<'a> {
    /// The chunk read from a `Value`, a field of another type counting as absent (a null
    /// `error` is none; a non-object `delta` or `function` has no fields).
    fn lenient(v: &'a Value) -> Self {
        let text = |v: Option<&'a Value>| v.and_then(Value::as_str).map(Text::from);
        let call = |call: &'a Value| ToolCall {
            index: call.get("index").and_then(Value::as_u64),
            id: text(call.get("id")),
            function: call.get("function").map(|f| Function {
                name: text(f.get("name")),
                arguments: text(f.get("arguments")),
            }),
        };
        let choice = |c: &'a Value| Choice {
            delta: c.get("delta").map(|d| Delta {
                reasoning_content: text(d.get("reasoning_content")),
                content: text(d.get("content")),
                tool_calls: d
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map(|calls| calls.iter().map(call).collect()),
            }),
            finish_reason: text(c.get("finish_reason")),
        };
        Self {
            id: text(v.get("id")),
            model: text(v.get("model")),
            error: v.get("error").filter(|e| !e.is_null()).map(|e| ChunkError {
                message: text(e.get("message")),
            }),
            choices: v
                .get("choices")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .map(|c| vec![choice(c)]),
        }
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

    /// Writes one chunk with `delta` and `finish` as an SSE event.
    fn chunk(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish: Option<&str>) {
        frame_into(
            out,
            &ChunkOut {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.opts.created,
                model: &self.opts.model,
                choices: [ChoiceOut {
                    index: 0,
                    delta,
                    logprobs: (),
                    finish_reason: finish,
                }],
                usage: self.opts.include_usage.then_some(()),
            },
        );
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                "chatcmpl-anyint".clone_into(&mut self.id);
            }
            self.chunk(
                out,
                DeltaOut::Role {
                    role: "assistant",
                    content: "",
                },
                None,
            );
        }
    }

    /// Encodes one event into zero or more SSE frames.
    pub fn encode(&mut self, ev: &StreamEvent) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(ev, &mut out);
        out
    }

    /// [`encode`](Self::encode), appending to `out`.
    pub fn encode_into(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
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
                self.ensure_started(out);
            }
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                self.chunk(out, DeltaOut::Content { content: t }, None);
            }
            StreamEvent::ReasoningDelta(t) => {
                self.ensure_started(out);
                self.chunk(
                    out,
                    DeltaOut::Reasoning {
                        reasoning_content: t,
                    },
                    None,
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let call = ToolStartOut {
                    index: *index,
                    id,
                    kind: "function",
                    function: FunctionOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                self.chunk(out, DeltaOut::ToolStart { tool_calls: [call] }, None);
            }
            StreamEvent::ToolArgsDelta { index, json: args } => {
                self.ensure_started(out);
                let call = ToolArgsOut {
                    index: *index,
                    function: FunctionOut {
                        name: None,
                        arguments: args,
                    },
                };
                self.chunk(out, DeltaOut::ToolArgs { tool_calls: [call] }, None);
            }
            StreamEvent::Usage(u) => self.usage = self.usage.merge(*u),
            StreamEvent::Finish { reason, .. } => {
                self.ensure_started(out);
                self.chunk(out, DeltaOut::Empty {}, Some(encode_finish(reason)));
            }
            StreamEvent::End => {
                self.ensure_started(out);
                self.ended = true;
                if self.opts.include_usage {
                    let c = json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.opts.created,
                        "model": self.opts.model, "choices": [], "usage": encode_usage(&self.usage),
                    });
                    frame_into(out, &c);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            StreamEvent::ReasoningSignature(_)
            | StreamEvent::RedactedReasoning(_)
            | StreamEvent::WebSearch(_)
            | StreamEvent::Citation(_)
            | StreamEvent::Error { .. } => {}
        }
    }

    /// The upstream ended; nothing more to write (a cut stream gets the gateway's error event).
    pub fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Appends `v` as one `data:` event.
fn frame_into(out: &mut Vec<u8>, v: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    // These plain structs and values serialise into a Vec without failing.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// A chunk as the encoder writes it, in the order OpenAI writes its fields.
#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    /// `null` on every chunk but the last when the client asked for the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<()>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DeltaOut<'a> {
    Role {
        role: &'static str,
        content: &'static str,
    },
    Content {
        content: &'a str,
    },
    Reasoning {
        reasoning_content: &'a str,
    },
    ToolStart {
        tool_calls: [ToolStartOut<'a>; 1],
    },
    ToolArgs {
        tool_calls: [ToolArgsOut<'a>; 1],
    },
    Empty {},
}

#[derive(Serialize)]
struct ToolStartOut<'a> {
    index: u32,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct ToolArgsOut<'a> {
    index: u32,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use proptest::prelude::*;

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

    /// The events of one chunk through the typed read (when it reads) and through `Value`.
    fn both_ways(data: &str) -> (Option<Vec<StreamEvent>>, Vec<StreamEvent>) {
        let typed = serde_json::from_str::<Chunk<'_>>(data).ok().map(|c| {
            let mut out = Vec::new();
            StreamDecoder::new().events(&c, data, &mut out);
            out
        });
        let value: Value = serde_json::from_str(data).unwrap();
        let mut lenient = Vec::new();
        StreamDecoder::new().events(&Chunk::lenient(&value), data, &mut lenient);
        (typed, lenient)
    }

    /// Chunks as upstreams send them read through the typed chunk, with the events the `Value`
    /// reading gives, strings borrowed unless escaped; odd ones fall back to `Value`, a field of
    /// another type counting as absent.
    #[test]
    fn chunks_read_typed_as_value_reads_them() {
        let usual = [
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"line\n\"quoted\" \u00e9"},"finish_reason":null}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"think","content":""}}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}},{"index":1,"id":"call_2","function":{"name":"g","arguments":"{\"a\":1}"}}]}}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
            r#"{"error":null,"choices":[{"delta":null,"finish_reason":null}]}"#,
            r#"{"choices":null,"nested":{"deep":[1,{"x":[true,null]}]}}"#,
        ];
        for data in usual {
            let (typed, lenient) = both_ways(data);
            assert_eq!(typed.as_ref(), Some(&lenient), "{data}");
        }
        let chunk = serde_json::from_str::<Chunk<'_>>(usual[0]).unwrap();
        let delta = chunk.choices.as_ref().unwrap()[0].delta.as_ref().unwrap();
        assert!(matches!(delta.content, Some(Text(Cow::Borrowed("Hi")))));
        let (escaped, _) = both_ways(usual[1]);
        assert!(
            escaped
                .unwrap()
                .contains(&StreamEvent::TextDelta("line\n\"quoted\" é".into()))
        );

        // Fields of other types: the typed read refuses them, and `Value` reads the rest.
        let odd: [(&str, Vec<StreamEvent>); 6] = [
            (
                r#"{"id":5,"model":"m","choices":[{"delta":{"content":7},"finish_reason":"stop"}]}"#,
                vec![
                    StreamEvent::Start {
                        id: String::new(),
                        model: "m".into(),
                    },
                    StreamEvent::Finish {
                        reason: FinishReason::Stop,
                        stop_sequence: None,
                    },
                ],
            ),
            (
                r#"{"error":"rate limited"}"#,
                vec![StreamEvent::Error {
                    message: "upstream stream error".into(),
                }],
            ),
            (
                r#"{"choices":[{"delta":"text"}]}"#,
                vec![StreamEvent::Start {
                    id: String::new(),
                    model: String::new(),
                }],
            ),
            (
                r#"{"choices":{"0":{}}}"#,
                vec![StreamEvent::Start {
                    id: String::new(),
                    model: String::new(),
                }],
            ),
            (
                r#"{"choices":[{"delta":{"tool_calls":[{"index":1.5,"id":"x","function":"f"}]}}]}"#,
                vec![
                    StreamEvent::Start {
                        id: String::new(),
                        model: String::new(),
                    },
                    StreamEvent::ToolCallStart {
                        index: 0,
                        id: "x".into(),
                        name: String::new(),
                    },
                ],
            ),
            (
                r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
                vec![
                    StreamEvent::Start {
                        id: String::new(),
                        model: String::new(),
                    },
                    StreamEvent::TextDelta("b".into()),
                ],
            ),
        ];
        for (data, want) in odd {
            let (typed, lenient) = both_ways(data);
            assert_eq!(typed, None, "{data}");
            assert_eq!(lenient, want, "{data}");
            assert_eq!(decode_all(&format!("data: {data}\n\n")), want, "{data}");
        }
    }

    /// A chunk's JSON with each field absent, null, a string (escapes included), or a value
    /// of another type.
    fn chunk_json() -> impl Strategy<Value = String> {
        /// A value of another type than a string (or than the structure expected there).
        fn odd() -> BoxedStrategy<Option<Value>> {
            prop_oneof![
                any::<i64>().prop_map(|n| Some(json!(n))),
                Just(Some(json!(2.5))),
                Just(Some(json!({}))),
                Just(Some(json!([]))),
                any::<bool>().prop_map(|b| Some(json!(b))),
            ]
            .boxed()
        }
        /// Mostly absent, null or a string (escapes included), now and then something else.
        fn field(strings: bool) -> BoxedStrategy<Option<Value>> {
            if !strings {
                return odd();
            }
            prop_oneof![
                3 => Just(None),
                1 => Just(Some(Value::Null)),
                6 => "[a-z\"\\\\\n\u{e9} ]{0,8}".prop_map(|s| Some(Value::String(s))),
                1 => odd(),
            ]
            .boxed()
        }
        fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
            Value::Object(
                fields
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                    .collect(),
            )
        }
        let function = (field(true), field(true))
            .prop_map(|(n, a)| Some(object(vec![("name", n), ("arguments", a)])));
        let call = (
            prop_oneof![1 => field(false), 8 => (0u64..4).prop_map(|n| Some(json!(n)))],
            field(true),
            prop_oneof![8 => function, 1 => field(false)],
        )
            .prop_map(|(i, id, f)| object(vec![("index", i), ("id", id), ("function", f)]));
        let calls = prop_oneof![
            8 => proptest::collection::vec(call, 0..3).prop_map(|c| Some(Value::Array(c))),
            1 => field(false),
        ];
        let delta = (field(true), field(true), calls).prop_map(|(r, c, t)| {
            Some(object(vec![
                ("reasoning_content", r),
                ("content", c),
                ("tool_calls", t),
            ]))
        });
        let choice = (prop_oneof![8 => delta, 1 => field(false)], field(true))
            .prop_map(|(d, f)| object(vec![("delta", d), ("finish_reason", f)]));
        let choices = prop_oneof![
            8 => proptest::collection::vec(choice, 0..3).prop_map(|c| Some(Value::Array(c))),
            1 => field(false),
        ];
        let error = prop_oneof![
            4 => Just(None),
            1 => field(true).prop_map(|m| Some(object(vec![("message", m)]))),
            1 => field(false),
        ];
        (field(true), field(true), error, choices).prop_map(|(id, model, error, choices)| {
            object(vec![
                ("id", id),
                ("model", model),
                ("error", error),
                ("choices", choices),
            ])
            .to_string()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Whatever the fields hold, a chunk the typed read accepts gives the events `Value`
        /// gives.
        #[test]
        fn the_typed_read_agrees_with_value(data in chunk_json()) {
            let (typed, lenient) = both_ways(&data);
            if let Some(typed) = typed {
                prop_assert_eq!(typed, lenient, "{}", data);
            }
        }
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

    /// Each event's chunk, field by field, as an OpenAI client reads it.
    #[test]
    fn each_event_is_written_as_openai_writes_its_chunk() {
        let mut enc = StreamEncoder::new(EncodeOptions {
            model: "pub".into(),
            include_usage: true,
            created: 7,
            ..EncodeOptions::default()
        });
        let events = [
            StreamEvent::Start {
                id: "msg_1".into(),
                model: "up".into(),
            },
            StreamEvent::ReasoningDelta("hmm".into()),
            StreamEvent::TextDelta("a \"quoted\"\nline".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into(),
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "{\"a\":1}".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                stop_sequence: None,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
                ..Usage::default()
            }),
            StreamEvent::End,
        ];
        let mut out = Vec::new();
        for ev in &events {
            enc.encode_into(ev, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let chunks: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-msg_1", "object": "chat.completion.chunk", "created": 7,
                   "model": "pub", "usage": null,
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        };
        let want = vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"reasoning_content": "hmm"}), Value::Null),
            chunk(json!({"content": "a \"quoted\"\nline"}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            json!({"id": "chatcmpl-msg_1", "object": "chat.completion.chunk", "created": 7,
                   "model": "pub", "choices": [], "usage": encode_usage(&Usage {
                       input_tokens: 3, output_tokens: 4, ..Usage::default() })}),
        ];
        assert_eq!(chunks, want);
        assert!(text.ends_with("data: [DONE]\n\n"));

        // Without the usage chunk asked for, no chunk carries `usage`.
        let mut enc = StreamEncoder::new(EncodeOptions::default());
        let text = String::from_utf8(enc.encode(&StreamEvent::TextDelta("x".into()))).unwrap();
        assert!(!text.contains("usage"), "{text}");
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
