//! Property tests: the canonical → Gemini → canonical round trip, and no input panicking or
//! corrupting the stream codecs.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{StreamDecoder, StreamEncoder, StreamFormat, decode_request, encode_request};
use crate::Usage;
use crate::canonical::{
    ChatRequest, EncodeOptions, FinishReason, Message, Part, Role, StreamEvent, Tool, ToolChoice,
};
use crate::sse::{Frame, SseSplitter};

const MODEL: &str = "gemini-2.5-flash";

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,7}"
}

fn text() -> impl Strategy<Value = String> {
    // Any non-empty text (empty text parts are dropped on purpose).
    "\\PC{1,12}"
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        Just(Value::Null),
    ];
    proptest::collection::btree_map("[a-z]{1,5}", leaf, 0..4)
        .prop_map(|m| m.into_iter().collect::<Map<String, Value>>())
        // `{"error": …}` alone reads back as a failed tool result.
        .prop_filter("not an error shape", |m| {
            !(m.len() == 1 && m.contains_key("error"))
        })
}

/// A tool call: function name, arguments, result.
type Call = (String, Map<String, Value>, Map<String, Value>);
/// `max_tokens`, `temperature`, `top_p`, `top_k`, `stop`.
type Sampling = (
    Option<u64>,
    Option<f64>,
    Option<f64>,
    Option<u64>,
    Vec<String>,
);

/// One exchange: a user turn (tool results for the previous calls, then text) and an assistant
/// turn (text, then calls).
#[derive(Debug, Clone)]
struct Exchange {
    user_text: Vec<String>,
    assistant_text: Vec<String>,
    calls: Vec<Call>,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        proptest::collection::vec(text(), 1..3),
        // At least one assistant part, so turns alternate (same-role turns merge on purpose).
        proptest::collection::vec(text(), 1..3),
        proptest::collection::vec((name(), json_object(), json_object()), 0..3),
    )
        .prop_map(|(user_text, assistant_text, calls)| Exchange {
            user_text,
            assistant_text,
            calls,
        })
}

fn build(
    system: Vec<String>,
    exchanges: Vec<Exchange>,
    tools: Vec<(String, Option<String>)>,
    tool_choice: Option<ToolChoice>,
    sampling: Sampling,
) -> ChatRequest {
    let mut messages = Vec::new();
    let mut previous_results: Vec<Part> = Vec::new();
    for (k, ex) in exchanges.into_iter().enumerate() {
        let mut user: Vec<Part> = std::mem::take(&mut previous_results);
        user.extend(ex.user_text.into_iter().map(Part::text));
        messages.push(Message {
            role: Role::User,
            parts: user,
        });
        let mut assistant: Vec<Part> = ex.assistant_text.into_iter().map(Part::text).collect();
        for (j, (fname, args, result)) in ex.calls.into_iter().enumerate() {
            let id = format!("id{k}_{j}");
            assistant.push(Part::ToolCall {
                id: id.clone(),
                name: fname.clone(),
                arguments: Value::Object(args).to_string(),
            });
            previous_results.push(Part::ToolResult {
                call_id: id,
                name: Some(fname),
                content: vec![Part::text(Value::Object(result).to_string())],
                is_error: false,
                cache: None,
            });
        }
        if !assistant.is_empty() {
            messages.push(Message {
                role: Role::Assistant,
                parts: assistant,
            });
        }
    }
    if !previous_results.is_empty() {
        messages.push(Message {
            role: Role::User,
            parts: previous_results,
        });
    }
    let (max_tokens, temperature, top_p, top_k, stop) = sampling;
    // Gemini refuses a calling config without declarations, so none is sent without tools.
    let tool_choice = tool_choice.filter(|_| !tools.is_empty());
    ChatRequest {
        model: MODEL.into(),
        system: system.into_iter().map(Part::text).collect(),
        messages,
        tools: tools
            .into_iter()
            .map(|(name, description)| Tool {
                parameters: json!({"type": "object", "properties": {name.clone(): {"type": "string"}}}),
                name,
                description,
                cache: None,
            })
            .collect(),
        tool_choice,
        max_tokens,
        temperature,
        top_p,
        top_k,
        stop,
        ..ChatRequest::default()
    }
}

fn hundredths() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of((0u32..=200).prop_map(|k| f64::from(k) / 100.0))
}

fn request() -> impl Strategy<Value = ChatRequest> {
    let tool_choice = proptest::option::of(prop_oneof![
        Just(ToolChoice::Auto),
        Just(ToolChoice::None),
        Just(ToolChoice::Required),
        name().prop_map(ToolChoice::Tool),
    ]);
    let sampling = (
        proptest::option::of(1u64..100_000),
        hundredths(),
        hundredths(),
        proptest::option::of(1u64..100),
        proptest::collection::vec(text(), 0..3),
    );
    (
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(exchange(), 1..4),
        proptest::collection::vec((name(), proptest::option::of(text())), 0..3),
        tool_choice,
        sampling,
    )
        .prop_map(|(s, e, t, c, p)| build(s, e, t, c, p))
}

fn usage() -> impl Strategy<Value = Usage> {
    (0u64..1000, 0u64..1000, 0u64..1000, 0u64..1000).prop_map(|(i, o, c, r)| Usage {
        input_tokens: i,
        output_tokens: o + r,
        cache_read_tokens: c,
        cache_write_tokens: 0,
        reasoning_tokens: r,
        web_searches: 0,
    })
}

fn event() -> impl Strategy<Value = StreamEvent> {
    let s = || "\\PC{0,10}|[\\n\\r:]{0,4}|event: x|: comment|data: y";
    prop_oneof![
        (s(), s()).prop_map(|(id, model)| StreamEvent::Start { id, model }),
        s().prop_map(StreamEvent::TextDelta),
        s().prop_map(StreamEvent::ReasoningDelta),
        s().prop_map(StreamEvent::ReasoningSignature),
        s().prop_map(StreamEvent::RedactedReasoning),
        (0u32..3, s(), s()).prop_map(|(index, id, name)| StreamEvent::ToolCallStart {
            index,
            id,
            name
        }),
        (0u32..3, s()).prop_map(|(index, json)| StreamEvent::ToolArgsDelta { index, json }),
        usage().prop_map(StreamEvent::Usage),
        prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::Length),
            s().prop_map(FinishReason::Other),
        ]
        .prop_map(|reason| StreamEvent::Finish {
            reason,
            stop_sequence: None
        }),
        s().prop_map(|message| StreamEvent::Error { message }),
        Just(StreamEvent::End),
    ]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,6}|STOP|MAX_TOKENS|model|user".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = "candidates|content|parts|text|thought|thoughtSignature|functionCall|name|args|id|finishReason|usageMetadata|promptTokenCount|error|message|responseId|promptFeedback|blockReason|inlineData|mimeType|data|[a-z]{1,3}";
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn frame(data: String) -> Frame {
    Frame {
        raw: bytes::Bytes::new(),
        event: None,
        data,
    }
}

fn encoder(format: StreamFormat) -> StreamEncoder {
    StreamEncoder::new(
        EncodeOptions {
            model: "m".into(),
            ..EncodeOptions::default()
        },
        format,
    )
}

const CAPTURE: &[u8] = b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"It is\"}]},\"index\":0}],\"responseId\":\"r\"}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4}}\r\n\r\n";

fn decode_chunks(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut split = SseSplitter::new();
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        for f in split.push(c) {
            out.extend(dec.feed(&f));
        }
    }
    if let Some(f) = split.finish() {
        out.extend(dec.feed(&f));
    }
    out.extend(dec.finish());
    out
}

proptest! {
    #[test]
    fn canonical_gemini_canonical_is_identity(req in request()) {
        let body = encode_request(&req).unwrap();
        let back = decode_request(&body, MODEL, false).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn stream_decoder_never_panics_on_any_text(chunks in proptest::collection::vec("\\PC{0,40}|\\{.{0,40}", 0..6)) {
        let mut d = StreamDecoder::new();
        for c in chunks {
            let _ = d.feed(&frame(c));
        }
        let _ = d.finish();
    }

    #[test]
    fn stream_decoder_never_panics_on_any_json(values in proptest::collection::vec(arbitrary_json(), 0..6)) {
        let mut d = StreamDecoder::new();
        let mut events = Vec::new();
        for v in values {
            events.extend(d.feed(&frame(v.to_string())));
        }
        events.extend(d.finish());
        if let Some(first) = events.first() {
            let starts = matches!(first, StreamEvent::Start { .. } | StreamEvent::Error { .. });
            prop_assert!(starts, "first event: {:?}", first);
        }
    }

    #[test]
    fn any_chunking_of_a_capture_gives_the_same_events(cuts in proptest::collection::vec(0usize..CAPTURE.len(), 0..10)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut last = 0;
        for c in cuts {
            chunks.push(&CAPTURE[last..c]);
            last = c;
        }
        chunks.push(&CAPTURE[last..]);
        prop_assert_eq!(decode_chunks(&chunks), decode_chunks(&[CAPTURE]));
    }

    #[test]
    fn sse_output_is_only_data_lines_of_json(events in proptest::collection::vec(event(), 0..20)) {
        let mut e = encoder(StreamFormat::Sse);
        let mut out: Vec<u8> = events.iter().flat_map(|ev| e.encode(ev)).collect();
        out.extend(e.finish());
        let text = String::from_utf8(out).unwrap();
        prop_assert!(text.is_empty() || text.ends_with("\r\n\r\n"));
        for frame in text.split_terminator("\r\n\r\n") {
            prop_assert!(!frame.contains('\n') && !frame.contains('\r'), "one line per event: {:?}", frame);
            let payload = frame.strip_prefix("data: ");
            prop_assert!(payload.is_some(), "not a data line: {:?}", frame);
            let parsed: Result<Value, _> = serde_json::from_str(payload.unwrap_or_default());
            prop_assert!(parsed.is_ok_and(|v| v.is_object()), "payload is not a JSON object: {:?}", frame);
        }
    }

    #[test]
    fn json_array_output_is_an_array_after_end(events in proptest::collection::vec(event(), 0..20)) {
        let mut e = encoder(StreamFormat::JsonArray);
        let mut out: Vec<u8> = events.iter().flat_map(|ev| e.encode(ev)).collect();
        out.extend(e.encode(&StreamEvent::End));
        out.extend(e.finish());
        let first_stop = events
            .iter()
            .find(|ev| matches!(ev, StreamEvent::Error { .. } | StreamEvent::End));
        if matches!(first_stop, Some(StreamEvent::Error { .. })) {
            // After an error the gateway writes the error itself; the encoder adds nothing.
            prop_assert!(e.finish().is_empty());
        } else {
            let parsed: Result<Value, _> = serde_json::from_slice(&out);
            prop_assert!(parsed.is_ok_and(|v| v.is_array()), "{}", String::from_utf8_lossy(&out));
        }
    }
}
