//! Stream codec tests: decoder mapping and sequencing, encoder output, and property tests
//! (no panics on any input; encoder output is always a well-formed Anthropic stream).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{StreamDecoder, StreamEncoder, error_event};
use crate::Usage;
use crate::canonical::{EncodeOptions, FinishReason, SearchProgress, StreamEvent};
use crate::sse::{Frame, SseSplitter};

fn frame(event: &str, data: &str) -> Frame {
    Frame {
        raw: bytes::Bytes::new(),
        event: Some(event.to_owned()),
        data: data.to_owned(),
    }
}

fn decode_all(frames: &[Frame]) -> Vec<StreamEvent> {
    let mut d = StreamDecoder::new();
    let mut out: Vec<StreamEvent> = frames.iter().flat_map(|f| d.feed(f)).collect();
    out.extend(d.finish());
    out
}

fn opts() -> EncodeOptions {
    EncodeOptions {
        model: "public-model".into(),
        input_tokens_estimate: 42,
        ..EncodeOptions::default()
    }
}

fn encode_all(events: &[StreamEvent]) -> Vec<u8> {
    let mut e = StreamEncoder::new(opts());
    let mut out: Vec<u8> = events.iter().flat_map(|ev| e.encode(ev)).collect();
    out.extend(e.finish());
    out
}

const UPSTREAM: &[(&str, &str)] = &[
    (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":100,"cache_creation_input_tokens":0}}}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig=="}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ),
    ("ping", r#"{"type":"ping"}"#),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get","input":{}}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"ci"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ty\":1}"}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":2}"#,
    ),
    ("some_future_event", r#"{"type":"some_future_event"}"#),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
    ),
    ("message_stop", r#"{"type":"message_stop"}"#),
];

fn upstream() -> Vec<Frame> {
    UPSTREAM.iter().map(|(e, d)| frame(e, d)).collect()
}

#[test]
fn decoder_maps_a_full_stream() {
    let start_usage = Usage {
        input_tokens: 125,
        output_tokens: 1,
        cache_read_tokens: 100,
        ..Usage::default()
    };
    assert_eq!(
        decode_all(&upstream()),
        vec![
            StreamEvent::Start {
                id: "msg_1".into(),
                model: "claude-x".into()
            },
            StreamEvent::Usage(start_usage),
            StreamEvent::ReasoningDelta("Let me think".into()),
            StreamEvent::ReasoningSignature("anyint:anthropic:sig==".into()),
            StreamEvent::TextDelta("Hi".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_1".into(),
                name: "get".into()
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "{\"ci".into()
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "ty\":1}".into()
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                stop_sequence: None
            },
            StreamEvent::Usage(Usage {
                output_tokens: 30,
                ..start_usage
            }),
            StreamEvent::End,
        ]
    );
}

#[test]
fn decoder_keeps_sequencing_rules_on_odd_input() {
    let frames = [
        // Content before message_start: Start is synthesized.
        frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#,
        ),
        // Argument JSON for a block never started as a tool call is dropped.
        frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        ),
        frame(
            "message_start",
            r#"{"type":"message_start","message":{"id":"late"}}"#,
        ),
        frame("content_block_start", "not json"),
        frame(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":3,"input_tokens":4,"cache_creation_input_tokens":6}}"#,
        ),
        // Content after Finish, a second Finish: dropped.
        frame(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}"#,
        ),
        frame(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
        ),
        frame("message_stop", r#"{"type":"message_stop"}"#),
        frame("message_stop", r#"{"type":"message_stop"}"#),
    ];
    assert_eq!(
        decode_all(&frames),
        vec![
            StreamEvent::Start {
                id: String::new(),
                model: String::new()
            },
            StreamEvent::TextDelta("a".into()),
            StreamEvent::Finish {
                reason: FinishReason::Length,
                stop_sequence: None
            },
            StreamEvent::Usage(Usage {
                input_tokens: 10,
                output_tokens: 3,
                cache_write_tokens: 6,
                ..Usage::default()
            }),
            StreamEvent::Usage(Usage {
                input_tokens: 10,
                output_tokens: 5,
                cache_write_tokens: 6,
                ..Usage::default()
            }),
            StreamEvent::End,
        ]
    );
}

#[test]
fn decoder_reports_errors_and_stops() {
    let frames = [
        frame(
            "message_start",
            r#"{"type":"message_start","message":{"id":"m","model":"x"}}"#,
        ),
        frame(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        frame("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let events = decode_all(&frames);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error {
            message: "overloaded_error: Overloaded".into()
        })
    );
    assert_eq!(events.len(), 2);
    let mut d = StreamDecoder::new();
    assert!(matches!(
        d.feed(&frame("error", "garbage")).as_slice(),
        [StreamEvent::Error { .. }]
    ));
    // A cut stream: no End, and finish() adds nothing.
    let cut = decode_all(&upstream()[..8]);
    assert!(!cut.contains(&StreamEvent::End));
}

#[test]
fn decoder_handles_redacted_thinking_and_prefilled_tool_input() {
    let frames = [
        frame(
            "message_start",
            r#"{"type":"message_start","message":{"id":"m","model":"x"}}"#,
        ),
        frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"opaque"}}"#,
        ),
        frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}"#,
        ),
        frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"a","name":"f","input":{"k":1}}}"#,
        ),
        frame(
            "content_block_start",
            r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"b","name":"g","input":{}}}"#,
        ),
    ];
    assert_eq!(
        decode_all(&frames)[1..],
        [
            StreamEvent::RedactedReasoning("opaque".into()),
            StreamEvent::WebSearch(SearchProgress::Started { id: "s".into() }),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "a".into(),
                name: "f".into()
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: r#"{"k":1}"#.into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "b".into(),
                name: "g".into()
            },
        ]
    );
}

fn events_of(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut s = SseSplitter::new();
    let frames = s.push(bytes);
    assert!(s.pending().is_empty());
    frames
        .into_iter()
        .map(|f| (f.event.unwrap(), serde_json::from_str(&f.data).unwrap()))
        .collect()
}

#[test]
fn encoder_writes_the_exact_anthropic_stream() {
    let events = [
        StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "upstream-model".into(),
        },
        StreamEvent::Usage(Usage {
            input_tokens: 120,
            output_tokens: 0,
            cache_read_tokens: 100,
            ..Usage::default()
        }),
        StreamEvent::TextDelta("Hi".into()),
        StreamEvent::TextDelta(" there".into()),
        StreamEvent::Finish {
            reason: FinishReason::Stop,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 120,
            output_tokens: 7,
            cache_read_tokens: 100,
            ..Usage::default()
        }),
        StreamEvent::End,
    ];
    let out = String::from_utf8(encode_all(&events)).unwrap();
    let expected = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"public-model","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":100}}}"#,
        "\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
        "\n\n",
        "event: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\n",
        "event: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7,"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":100}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn encoder_switches_blocks_and_drops_orphan_deltas() {
    let events = [
        StreamEvent::Start {
            id: "msg_a".into(),
            model: "m".into(),
        },
        StreamEvent::ReasoningDelta("r1".into()),
        StreamEvent::ReasoningSignature("s1".into()),
        StreamEvent::ReasoningDelta("r2".into()),
        StreamEvent::RedactedReasoning("opaque".into()),
        StreamEvent::TextDelta("t".into()),
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "{}".into(),
        },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_0".into(),
            name: "f".into(),
        },
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "{\"a\":".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "call_1".into(),
            name: "g".into(),
        },
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "1}".into(),
        },
        StreamEvent::Finish {
            reason: FinishReason::StopSequence,
            stop_sequence: Some("END".into()),
        },
        StreamEvent::End,
        StreamEvent::TextDelta("after end".into()),
    ];
    let got: Vec<String> = events_of(&encode_all(&events))
        .into_iter()
        .map(|(name, data)| match name.as_str() {
            "content_block_start" => {
                format!("start {} {}", data["index"], data["content_block"]["type"])
            }
            "content_block_delta" => {
                format!("delta {} {}", data["index"], data["delta"]["type"])
            }
            "content_block_stop" => format!("stop {}", data["index"]),
            "message_delta" => format!(
                "message_delta {} {}",
                data["delta"]["stop_reason"], data["delta"]["stop_sequence"]
            ),
            _ => name,
        })
        .collect();
    assert_eq!(
        got,
        [
            "message_start",
            "start 0 \"thinking\"",
            "delta 0 \"thinking_delta\"",
            "delta 0 \"signature_delta\"",
            "stop 0",
            "start 1 \"thinking\"",
            "delta 1 \"thinking_delta\"",
            "stop 1",
            "start 2 \"redacted_thinking\"",
            "stop 2",
            "start 3 \"text\"",
            "delta 3 \"text_delta\"",
            "stop 3",
            "start 4 \"tool_use\"",
            "delta 4 \"input_json_delta\"",
            "stop 4",
            "start 5 \"tool_use\"",
            "stop 5",
            "message_delta \"stop_sequence\" \"END\"",
            "message_stop",
        ]
    );
}

#[test]
fn encoder_is_silent_on_error_and_on_cut_streams() {
    let mut e = StreamEncoder::new(opts());
    // `message_start` waits for the first content (see the module docs).
    assert!(
        e.encode(&StreamEvent::Start {
            id: "m".into(),
            model: "x".into()
        })
        .is_empty()
    );
    assert!(!e.encode(&StreamEvent::TextDelta("a".into())).is_empty());
    assert!(
        e.encode(&StreamEvent::Error {
            message: "boom".into()
        })
        .is_empty()
    );
    assert!(e.encode(&StreamEvent::End).is_empty());
    assert!(e.finish().is_empty());
    // Cut: no End seen, finish writes nothing (the gateway reports it).
    let mut e = StreamEncoder::new(opts());
    e.encode(&StreamEvent::TextDelta("a".into()));
    assert!(e.finish().is_empty());
    // End without any usage or finish still closes properly.
    let out = encode_all(&[StreamEvent::End]);
    let names: Vec<String> = events_of(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
}

#[test]
fn message_start_announces_usage_reported_right_after_start() {
    let start = StreamEvent::Start {
        id: "msg_1".into(),
        model: "up".into(),
    };
    let usage = StreamEvent::Usage(Usage {
        input_tokens: 1234,
        output_tokens: 0,
        cache_read_tokens: 1024,
        cache_write_tokens: 10,
        reasoning_tokens: 0,
        web_searches: 0,
    });
    let text = StreamEvent::TextDelta("Hi".into());
    let mut e = StreamEncoder::new(opts());
    // Nothing is written until content arrives, so the usage can still make it in.
    assert!(e.encode(&start).is_empty());
    assert!(e.encode(&usage).is_empty());
    let first = e.encode(&text);
    let (name, data) = events_of(&first).into_iter().next().unwrap();
    assert_eq!(name, "message_start");
    assert_eq!(
        data["message"]["usage"],
        json!({"input_tokens":200,"output_tokens":1,"cache_creation_input_tokens":10,"cache_read_input_tokens":1024})
    );
    assert_eq!(data["message"]["id"], "msg_1");
    // Without usage before the first content (OpenAI-compatible upstreams), the estimate.
    let out = encode_all(&[start, text, usage, StreamEvent::End]);
    let (_, data) = events_of(&out).into_iter().next().unwrap();
    assert_eq!(
        data["message"]["usage"],
        json!({"input_tokens":42,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0})
    );
}

#[test]
fn encoder_writes_anthropic_signatures_as_issued_and_others_tagged() {
    let out = encode_all(&[
        StreamEvent::ReasoningDelta("a".into()),
        StreamEvent::ReasoningSignature("anyint:anthropic:EqQB".into()),
        StreamEvent::ReasoningDelta("b".into()),
        StreamEvent::ReasoningSignature("anyint:gemini:CiQB".into()),
        StreamEvent::End,
    ]);
    let sigs: Vec<Value> = events_of(&out)
        .into_iter()
        .filter(|(_, d)| d["delta"]["type"] == "signature_delta")
        .map(|(_, d)| d["delta"]["signature"].clone())
        .collect();
    assert_eq!(sigs, [json!("EqQB"), json!("anyint:gemini:CiQB")]);
}

#[test]
fn error_event_bytes() {
    assert_eq!(
        error_event("overloaded_error", "Over \"loaded\""),
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Over \\\"loaded\\\"\"}}\n\n"
    );
}

// === Property tests ===

/// Checks that `bytes` is a well-formed Anthropic stream as a client parses it; returns the
/// event names. Panics (failing the property) on any violation.
fn check_stream(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut open: Option<(u64, String)> = None;
    let mut next = 0u64;
    let (mut started, mut delta_seen, mut stopped) = (false, false, false);
    for (name, data) in events_of(bytes) {
        assert_eq!(
            data["type"],
            name.as_str(),
            "data.type must equal the event name"
        );
        assert!(!stopped, "{name} after message_stop");
        assert!(
            started || name == "message_start",
            "{name} before message_start"
        );
        let index = data["index"].as_u64();
        match name.as_str() {
            "message_start" => {
                assert!(!started, "second message_start");
                started = true;
            }
            "content_block_start" => {
                assert!(!delta_seen, "block after message_delta");
                assert!(
                    open.is_none(),
                    "block {index:?} opened while another is open"
                );
                assert_eq!(index, Some(next), "block indices must count up from 0");
                next += 1;
                let kind = data["content_block"]["type"].as_str().unwrap().to_owned();
                open = Some((index.unwrap(), kind));
            }
            "content_block_delta" => {
                let (i, kind) = open.as_ref().expect("delta for an unopened block");
                assert_eq!(index, Some(*i), "delta for a block that is not open");
                let allowed: &[&str] = match kind.as_str() {
                    "text" => &["text_delta"],
                    "thinking" => &["thinking_delta", "signature_delta"],
                    "tool_use" => &["input_json_delta"],
                    _ => &[],
                };
                assert!(allowed.contains(&data["delta"]["type"].as_str().unwrap()));
            }
            "content_block_stop" => {
                let (i, _) = open.take().expect("stop for an unopened block");
                assert_eq!(index, Some(i));
            }
            "message_delta" => {
                assert!(open.is_none(), "block left open before message_delta");
                assert!(!delta_seen, "second message_delta");
                assert!(data["usage"]["output_tokens"].is_u64());
                delta_seen = true;
            }
            "message_stop" => {
                assert!(delta_seen, "message_stop without message_delta");
                stopped = true;
            }
            other => panic!("unexpected event {other}"),
        }
        names.push(name);
    }
    names
}

fn small_text() -> impl Strategy<Value = String> {
    "[a-z\"{}\\\\]{0,4}"
}

fn usage() -> impl Strategy<Value = Usage> {
    (0u64..1000, 0u64..1000, 0u64..500, 0u64..500).prop_map(|(i, o, r, w)| Usage {
        input_tokens: i,
        output_tokens: o,
        cache_read_tokens: r,
        cache_write_tokens: w,
        reasoning_tokens: 0,
        web_searches: 0,
    })
}

fn event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        1 => ("[a-z_0-9]{0,6}", "[a-z]{0,4}").prop_map(|(id, model)| StreamEvent::Start { id, model }),
        4 => small_text().prop_map(StreamEvent::TextDelta),
        3 => small_text().prop_map(StreamEvent::ReasoningDelta),
        2 => small_text().prop_map(StreamEvent::ReasoningSignature),
        1 => small_text().prop_map(StreamEvent::RedactedReasoning),
        2 => (0u32..3, "[a-z0-9]{0,4}", "[a-z]{0,4}").prop_map(|(index, id, name)| StreamEvent::ToolCallStart { index, id, name }),
        4 => (0u32..3, small_text()).prop_map(|(index, json)| StreamEvent::ToolArgsDelta { index, json }),
        1 => usage().prop_map(StreamEvent::Usage),
        1 => (prop_oneof![Just(FinishReason::Stop), Just(FinishReason::ToolCalls), Just(FinishReason::Other("x".into()))], proptest::option::of("[a-z]{1,3}"))
            .prop_map(|(reason, stop_sequence)| StreamEvent::Finish { reason, stop_sequence }),
        1 => "[a-z]{0,4}".prop_map(|message| StreamEvent::Error { message }),
        1 => Just(StreamEvent::End),
    ]
}

const NAMES: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "other",
];

/// JSON shaped like Anthropic events, with random holes and wrong types.
fn wire_json() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..4).prop_map(Value::from),
        "[a-z_\"{]{0,6}".prop_map(Value::from),
        Just(json!("text_delta")),
        Just(json!("input_json_delta")),
        Just(json!("tool_use")),
        Just(json!("thinking")),
        Just(json!("end_turn")),
    ];
    let leaf = scalar.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("index".to_owned()),
                    Just("delta".to_owned()),
                    Just("content_block".to_owned()),
                    Just("message".to_owned()),
                    Just("usage".to_owned()),
                    Just("text".to_owned()),
                    Just("partial_json".to_owned()),
                    Just("input".to_owned()),
                    Just("stop_reason".to_owned()),
                    Just("input_tokens".to_owned()),
                    "[a-z]{1,3}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    (proptest::sample::select(NAMES), leaf).prop_map(|(name, v)| {
        let mut v = v;
        if let Value::Object(o) = &mut v {
            o.insert("type".into(), Value::from(name));
        }
        v.to_string()
    })
}

/// Well-formed events with random indices, kinds and counts: reaches the real paths.
fn shaped_frame() -> impl Strategy<Value = Frame> {
    let block = prop_oneof![
        Just(json!({"type":"text","text":""})),
        small_text().prop_map(|t| json!({"type":"text","text":t})),
        Just(json!({"type":"thinking","thinking":"","signature":""})),
        small_text().prop_map(|d| json!({"type":"redacted_thinking","data":d})),
        Just(json!({"type":"tool_use","id":"t","name":"f","input":{}})),
        Just(json!({"type":"tool_use","id":"t","name":"f","input":{"a":1}})),
        Just(json!({"type":"server_tool_use","id":"s","name":"web_search","input":{}})),
    ];
    let delta = prop_oneof![
        small_text().prop_map(|t| json!({"type":"text_delta","text":t})),
        small_text().prop_map(|t| json!({"type":"thinking_delta","thinking":t})),
        small_text().prop_map(|t| json!({"type":"signature_delta","signature":t})),
        small_text().prop_map(|t| json!({"type":"input_json_delta","partial_json":t})),
        Just(json!({"type":"citations_delta","citation":{}})),
    ];
    let counts = proptest::collection::vec(proptest::option::of(0u64..100), 4);
    prop_oneof![
        counts.clone().prop_map(|c| ("message_start", json!({"type":"message_start","message":{"id":"m","model":"x","content":[],
            "usage":{"input_tokens":c[0],"output_tokens":c[1],"cache_read_input_tokens":c[2],"cache_creation_input_tokens":c[3]}}}))),
        (0u64..4, block).prop_map(|(i, b)| ("content_block_start", json!({"type":"content_block_start","index":i,"content_block":b}))),
        (0u64..4, delta).prop_map(|(i, d)| ("content_block_delta", json!({"type":"content_block_delta","index":i,"delta":d}))),
        (0u64..4).prop_map(|i| ("content_block_stop", json!({"type":"content_block_stop","index":i}))),
        (proptest::sample::select(&["end_turn", "tool_use", "max_tokens", "pause_turn"][..]), counts)
            .prop_map(|(r, c)| ("message_delta", json!({"type":"message_delta","delta":{"stop_reason":r,"stop_sequence":null},
                "usage":{"output_tokens":c[0],"input_tokens":c[1],"cache_read_input_tokens":c[2]}}))),
        Just(("message_stop", json!({"type":"message_stop"}))),
        Just(("ping", json!({"type":"ping"}))),
        Just(("error", json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}))),
    ]
    .prop_map(|(event, data)| Frame {
        raw: bytes::Bytes::new(),
        event: Some(event.to_owned()),
        data: data.to_string(),
    })
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let random = (
        proptest::option::of(prop_oneof![
            proptest::sample::select(NAMES).prop_map(str::to_owned),
            "[a-z_]{0,8}",
        ]),
        prop_oneof![wire_json(), ".{0,40}"],
    )
        .prop_map(|(event, data)| Frame {
            raw: bytes::Bytes::new(),
            event,
            data,
        });
    prop_oneof![2 => shaped_frame(), 1 => random]
}

/// Checks the canonical sequencing rules a decoder guarantees.
fn check_sequencing(events: &[StreamEvent]) {
    let mut tools_started = 0u32;
    let (mut finished, mut ended) = (false, false);
    for (i, ev) in events.iter().enumerate() {
        assert!(!ended, "event after End/Error: {ev:?}");
        match ev {
            StreamEvent::Start { .. } => assert_eq!(i, 0, "Start must come first, once"),
            // An error before anything else is reported alone, so nothing reaches the client
            // and the gateway can still answer with an error status (or retry).
            StreamEvent::Error { .. } if i == 0 => ended = true,
            _ if i == 0 => panic!("first event must be Start, got {ev:?}"),
            StreamEvent::ToolCallStart { index, .. } => {
                assert!(!finished);
                assert_eq!(*index, tools_started);
                tools_started += 1;
            }
            StreamEvent::ToolArgsDelta { index, .. } => {
                assert!(!finished);
                assert!(*index < tools_started, "args for a call never started");
            }
            StreamEvent::TextDelta(_)
            | StreamEvent::ReasoningDelta(_)
            | StreamEvent::ReasoningSignature(_)
            | StreamEvent::RedactedReasoning(_)
            | StreamEvent::WebSearch(_)
            | StreamEvent::Citation(_) => assert!(!finished, "content after Finish"),
            StreamEvent::Finish { .. } => {
                assert!(!finished, "second Finish");
                finished = true;
            }
            StreamEvent::End | StreamEvent::Error { .. } => ended = true,
            StreamEvent::Usage(_) => {}
        }
    }
}

proptest! {
    #[test]
    fn decoder_never_panics_and_keeps_sequencing(frames in proptest::collection::vec(any_frame(), 0..24)) {
        let events = decode_all(&frames);
        check_sequencing(&events);
        // Whatever it decoded, the encoder turns it into a well-formed client stream.
        let names = check_stream(&encode_all(&events));
        if events.last() == Some(&StreamEvent::End) {
            prop_assert_eq!(names.last().map(String::as_str), Some("message_stop"));
        }
    }

    #[test]
    fn encoder_output_is_always_well_formed(events in proptest::collection::vec(event(), 0..30)) {
        let names = check_stream(&encode_all(&events));
        let end = events.iter().position(|e| *e == StreamEvent::End);
        let error = events.iter().position(|e| matches!(e, StreamEvent::Error { .. }));
        let completes = match (end, error) {
            (Some(end), Some(err)) => end < err,
            (Some(_), None) => true,
            _ => false,
        };
        prop_assert_eq!(names.last().map(String::as_str) == Some("message_stop"), completes);
    }
}

fn events(frames: &[(&str, Value)]) -> Vec<Frame> {
    frames
        .iter()
        .map(|(e, d)| frame(e, &d.to_string()))
        .collect()
}

fn tool_stream(name: &str, pieces: &[&str], stop: &str) -> Vec<Frame> {
    let mut frames = vec![
        (
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","model":"claude-x",
                "usage":{"input_tokens":5,"output_tokens":1}}}),
        ),
        (
            "content_block_start",
            json!({"type":"content_block_start","index":0,
                "content_block":{"type":"tool_use","id":"toolu_1","name":name,"input":{}}}),
        ),
    ];
    for p in pieces {
        frames.push((
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,
                "delta":{"type":"input_json_delta","partial_json":p}}),
        ));
    }
    frames.push((
        "content_block_stop",
        json!({"type":"content_block_stop","index":0}),
    ));
    frames.push((
        "message_delta",
        json!({"type":"message_delta","delta":{"stop_reason":stop},"usage":{"output_tokens":9}}),
    ));
    frames.push(("message_stop", json!({"type":"message_stop"})));
    events(&frames)
}

fn text_and_finish(events: &[StreamEvent]) -> (Vec<&str>, Option<&FinishReason>) {
    let text = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let finish = events.iter().find_map(|e| match e {
        StreamEvent::Finish { reason, .. } => Some(reason),
        _ => None,
    });
    (text, finish)
}

#[test]
fn the_json_tool_streams_as_text_deltas() {
    let out = decode_all(&tool_stream(
        crate::anthropic::JSON_TOOL,
        &["", "{\"city\": \"Ber", "gen\"}"],
        "tool_use",
    ));
    assert!(
        !out.iter().any(|e| matches!(
            e,
            StreamEvent::ToolCallStart { .. } | StreamEvent::ToolArgsDelta { .. }
        )),
        "{out:?}"
    );
    assert_eq!(
        text_and_finish(&out),
        (
            vec!["{\"city\": \"Ber", "gen\"}"],
            Some(&FinishReason::Stop)
        )
    );
    assert_eq!(out.last(), Some(&StreamEvent::End));
}

#[test]
fn the_value_tool_streams_the_value_only() {
    let out = decode_all(&tool_stream(
        crate::anthropic::JSON_VALUE_TOOL,
        &["{\"val", "ue\": [\"a\", ", "\"b\"] ", "}"],
        "tool_use",
    ));
    let (text, finish) = text_and_finish(&out);
    assert_eq!(text.concat(), "[\"a\", \"b\"]");
    assert!(text.len() > 1, "the value arrives in pieces: {text:?}");
    assert_eq!(finish, Some(&FinishReason::Stop));
    // Cut off by the token cap: what came is passed on, the reason stays `length`.
    let out = decode_all(&tool_stream(
        crate::anthropic::JSON_VALUE_TOOL,
        &["{\"value\": [\"a\", \"b"],
        "max_tokens",
    ));
    let (text, finish) = text_and_finish(&out);
    assert_eq!(text.concat(), "[\"a\", \"b");
    assert_eq!(finish, Some(&FinishReason::Length));
}

#[test]
fn other_tools_stay_tool_calls() {
    let out = decode_all(&tool_stream("get_weather", &["{}"], "tool_use"));
    assert!(
        out.iter()
            .any(|e| matches!(e, StreamEvent::ToolCallStart { index: 0, .. }))
    );
    assert_eq!(
        text_and_finish(&out),
        (vec![], Some(&FinishReason::ToolCalls))
    );
}
