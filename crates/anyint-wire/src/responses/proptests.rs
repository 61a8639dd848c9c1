//! Property tests: no input panics the Responses decoders, every canonical event sequence
//! encodes to a stream that obeys the §4 grammar, and canonical → Responses → canonical is the
//! identity for what the Responses request can carry.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{
    Echo, StreamDecoder, StreamEncoder, check_stream, decode_request, decode_response,
    encode_request,
};
use crate::Usage;
use crate::canonical::{
    ChatRequest, Citation, EncodeOptions, FinishReason, Message, Part, Role, SearchProgress,
    Source, StreamEvent, Tool, ToolChoice, WebSearchCall,
};
use crate::sse::Frame;

const CASES: u32 = 128;

fn frame(event: Option<String>, data: String) -> Frame {
    Frame {
        raw: bytes::Bytes::new(),
        event,
        data,
    }
}

/// JSON built from the Responses vocabulary, so the decoders get past their first checks.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,6}|response\\.[a-z_.]{1,30}|message|reasoning|function_call|custom_tool_call|output_text|user|assistant|developer|input_text|input_image|completed|incomplete|anyint1\\.[A-Za-z0-9_-]{0,12}"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let keys = "type|response|item|output|output_index|item_id|delta|arguments|input|call_id|name|namespace|summary|text|content|encrypted_content|usage|status|incomplete_details|reason|error|message|model|id|role|tools|tool_choice|instructions|reasoning|effort|format|parameters|[a-z]{1,3}";
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn usage() -> impl Strategy<Value = Usage> {
    (0u64..1000, 0u64..1000, 0u64..1000, 0u64..1000).prop_map(|(i, o, c, r)| Usage {
        input_tokens: i + c,
        output_tokens: o + r,
        cache_read_tokens: c,
        cache_write_tokens: 0,
        reasoning_tokens: r,
        web_searches: 0,
    })
}

fn event() -> impl Strategy<Value = StreamEvent> {
    let s = || "\\PC{0,8}|[\\n\\r\"\\\\]{0,3}|anyint:anthropic:EqQB|anyint:gemini:CiQB";
    prop_oneof![
        (s(), s()).prop_map(|(id, model)| StreamEvent::Start { id, model }),
        s().prop_map(StreamEvent::TextDelta),
        s().prop_map(StreamEvent::ReasoningDelta),
        s().prop_map(StreamEvent::ReasoningSignature),
        s().prop_map(StreamEvent::RedactedReasoning),
        (0u32..3, s(), "f|c|ns__g|x").prop_map(|(index, id, name)| StreamEvent::ToolCallStart {
            index,
            id,
            name
        }),
        (0u32..3, s()).prop_map(|(index, json)| StreamEvent::ToolArgsDelta { index, json }),
        search(),
        (0usize..12, 0usize..12, s()).prop_map(|(start, len, url)| {
            StreamEvent::Citation(Citation {
                url,
                title: None,
                start,
                end: start + len,
            })
        }),
        usage().prop_map(StreamEvent::Usage),
        prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::Length),
            Just(FinishReason::ContentFilter),
        ]
        .prop_map(|reason| StreamEvent::Finish {
            reason,
            stop_sequence: None
        }),
        s().prop_map(|message| StreamEvent::Error { message }),
    ]
}

/// Search progress for one of two searches, in any order (the encoder must cope).
fn search() -> impl Strategy<Value = StreamEvent> {
    let id = || "s1|s2|";
    prop_oneof![
        id().prop_map(|id| StreamEvent::WebSearch(SearchProgress::Started { id })),
        (id(), proptest::option::of("\\PC{0,6}")).prop_map(|(id, query)| {
            StreamEvent::WebSearch(SearchProgress::Searching { id, query })
        }),
        (id(), any::<bool>()).prop_map(|(id, failed)| {
            StreamEvent::WebSearch(SearchProgress::Done(WebSearchCall {
                id,
                query: Some("q".into()),
                queries: Vec::new(),
                sources: vec![Source {
                    url: "https://e.com".into(),
                    title: None,
                }],
                failed,
            }))
        }),
    ]
}

fn echo() -> Echo {
    let body = json!({"model": "m", "input": "x", "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "function", "name": "f"}, {"type": "custom", "name": "c"},
                  {"type": "namespace", "name": "ns", "tools": [{"type": "custom", "name": "g"}]}]});
    Echo::new(body.to_string().as_bytes(), "resp_p", 1).unwrap_or_else(|e| panic!("{e}"))
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{1,12}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,7}"
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map("[a-z]{1,5}", any::<i32>().prop_map(Value::from), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

/// A conversation in the shape the Responses decoder produces: user turns, assistant turns of
/// text then calls, each result in its own tool message named after its call.
fn request() -> impl Strategy<Value = ChatRequest> {
    let exchange = (
        text(),
        proptest::option::of(text()),
        proptest::collection::vec((name(), json_object(), text()), 0..3),
    );
    (
        proptest::option::of(text()),
        proptest::collection::vec(exchange, 1..4),
        proptest::collection::vec((name(), proptest::option::of(text())), 0..3),
        proptest::option::of(prop_oneof![
            Just(ToolChoice::Auto),
            Just(ToolChoice::None),
            Just(ToolChoice::Required),
            name().prop_map(ToolChoice::Tool),
        ]),
        proptest::option::of(1u64..100_000),
    )
        .prop_map(|(system, exchanges, tools, tool_choice, max_tokens)| {
            let mut messages = Vec::new();
            let mut n = 0;
            for (user, answer, calls) in exchanges {
                messages.push(Message {
                    role: Role::User,
                    parts: vec![Part::text(user)],
                });
                let mut parts: Vec<Part> = answer.into_iter().map(Part::text).collect();
                let mut results = Vec::new();
                for (fname, args, result) in calls {
                    n += 1;
                    let id = format!("call_{n}");
                    parts.push(Part::ToolCall {
                        id: id.clone(),
                        name: fname.clone(),
                        arguments: Value::Object(args).to_string(),
                    });
                    results.push(Message {
                        role: Role::Tool,
                        parts: vec![Part::ToolResult {
                            call_id: id,
                            name: Some(fname),
                            content: vec![Part::text(result)],
                            is_error: false,
                            cache: None,
                        }],
                    });
                }
                if !parts.is_empty() {
                    messages.push(Message {
                        role: Role::Assistant,
                        parts,
                    });
                }
                messages.extend(results);
            }
            let mut seen = std::collections::HashSet::new();
            ChatRequest {
                model: "gpt-5.1".into(),
                system: system.into_iter().map(Part::text).collect(),
                messages,
                tools: tools
                    .into_iter()
                    .filter(|(n, _)| seen.insert(n.clone()))
                    .map(|(name, description)| Tool {
                        name,
                        description,
                        parameters: json!({"type": "object", "properties": {}}),
                        cache: None,
                    })
                    .collect(),
                tool_choice,
                max_tokens,
                ..ChatRequest::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn stream_decoder_never_panics_on_any_text(
        frames in proptest::collection::vec((proptest::option::of("error|response\\.[a-z_.]{0,30}"), "\\PC{0,40}|\\{.{0,40}"), 0..8)
    ) {
        let mut d = StreamDecoder::new();
        for (event, data) in frames {
            let _ = d.feed(&frame(event, data));
        }
        let _ = d.finish();
    }

    #[test]
    fn stream_decoder_never_panics_on_any_json(values in proptest::collection::vec(arbitrary_json(), 0..8)) {
        let mut d = StreamDecoder::new();
        let mut events = Vec::new();
        for v in values {
            events.extend(d.feed(&frame(None, v.to_string())));
        }
        events.extend(d.finish());
        if let Some(first) = events.first() {
            let starts = matches!(first, StreamEvent::Start { .. } | StreamEvent::Error { .. });
            prop_assert!(starts, "first event: {:?}", first);
        }
        let ends = events.iter().filter(|e| matches!(e, StreamEvent::End | StreamEvent::Error { .. })).count();
        prop_assert!(ends <= 1, "{:?}", events);
    }

    #[test]
    fn request_and_response_decoders_never_panic(v in arbitrary_json(), input in arbitrary_json()) {
        let mut body = v.clone();
        if let Value::Object(o) = &mut body {
            o.insert("model".into(), "m".into());
            o.insert("input".into(), input);
        }
        let _ = decode_request(body.to_string().as_bytes());
        let _ = decode_response(v.to_string().as_bytes());
        let _ = Echo::new(body.to_string().as_bytes(), "resp_x", 0);
    }

    #[test]
    fn any_event_sequence_encodes_a_grammatical_stream(events in proptest::collection::vec(event(), 0..24)) {
        let mut enc = StreamEncoder::new(EncodeOptions { model: "m".into(), ..EncodeOptions::default() }, echo());
        let mut out: Vec<u8> = events.iter().flat_map(|e| enc.encode(e)).collect();
        out.extend(enc.encode(&StreamEvent::End));
        out.extend(enc.finish());
        let checked = check_stream(&out);
        prop_assert!(checked.is_ok(), "{:?}\n{}", checked, String::from_utf8_lossy(&out));
        prop_assert!(enc.response().is_some());
    }

    #[test]
    fn canonical_responses_canonical_is_identity(req in request()) {
        let body = encode_request(&req).unwrap_or_else(|e| panic!("{e}"));
        let back = decode_request(&body).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(back, req);
    }
}
