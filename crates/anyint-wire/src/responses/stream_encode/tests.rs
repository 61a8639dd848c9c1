use serde_json::json;

use super::*;
use crate::canonical::signature::{self, Origin};
use crate::responses::{BLOB_PREFIX, StreamDecoder, check_stream};
use crate::sse::{Frame, SseSplitter};

fn echo(tools: &Value) -> Echo {
    let body = json!({"model": "acme", "input": "x", "tools": tools, "store": false,
                      "include": ["reasoning.encrypted_content"], "parallel_tool_calls": false});
    Echo::new(body.to_string().as_bytes(), "resp_9", 1_767_225_600).unwrap()
}

fn encoder(tools: &Value) -> StreamEncoder {
    StreamEncoder::new(
        EncodeOptions {
            model: "acme".into(),
            ..EncodeOptions::default()
        },
        echo(tools),
    )
}

fn run(enc: &mut StreamEncoder, events: &[StreamEvent]) -> Vec<u8> {
    let mut out: Vec<u8> = events.iter().flat_map(|e| enc.encode(e)).collect();
    out.extend(enc.finish());
    out
}

fn frames(bytes: &[u8]) -> Vec<Frame> {
    SseSplitter::new().push(bytes)
}

/// `(type, output_index, item_id)` of every event.
fn shape(bytes: &[u8]) -> Vec<(String, Option<u64>, Option<String>)> {
    frames(bytes)
        .iter()
        .map(|f| {
            let d: Value = serde_json::from_str(&f.data).unwrap();
            let id = d["item_id"]
                .as_str()
                .or(d["item"]["id"].as_str())
                .map(str::to_owned);
            (
                d["type"].as_str().unwrap().to_owned(),
                d["output_index"].as_u64(),
                id,
            )
        })
        .collect()
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "msg_up".into(),
        model: "claude-sonnet-4-5".into(),
    }
}

fn usage() -> StreamEvent {
    StreamEvent::Usage(Usage {
        input_tokens: 45,
        output_tokens: 25,
        cache_read_tokens: 5,
        cache_write_tokens: 0,
        reasoning_tokens: 3,
        web_searches: 0,
    })
}

/// Claude-style reasoning, text, then a call, as canonical events.
fn reasoning_text_call() -> Vec<StreamEvent> {
    vec![
        start(),
        StreamEvent::ReasoningDelta("Need ".into()),
        StreamEvent::ReasoningDelta("weather.".into()),
        StreamEvent::ReasoningSignature(signature::tag(Origin::Anthropic, "EqQB")),
        StreamEvent::TextDelta("Checking".into()),
        StreamEvent::TextDelta(" now.".into()),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_1".into(),
            name: "get_weather".into(),
        },
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "{\"city\":".into(),
        },
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "\"Oslo\"}".into(),
        },
        usage(),
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
            stop_sequence: None,
        },
        StreamEvent::End,
    ]
}

fn weather_encoder() -> StreamEncoder {
    encoder(&json!([{"type": "function", "name": "get_weather"}]))
}

#[test]
fn the_grammar_for_reasoning_text_and_a_call() {
    let mut enc = weather_encoder();
    let out = run(&mut enc, &reasoning_text_call());
    check_stream(&out).unwrap();
    let s = |t: &str, i: Option<u64>, id: Option<&str>| (t.to_owned(), i, id.map(str::to_owned));
    assert_eq!(
        shape(&out),
        vec![
            s("response.created", None, None),
            s("response.in_progress", None, None),
            s("response.output_item.added", Some(0), Some("rs_9_0")),
            s(
                "response.reasoning_summary_part.added",
                Some(0),
                Some("rs_9_0")
            ),
            s(
                "response.reasoning_summary_text.delta",
                Some(0),
                Some("rs_9_0")
            ),
            s(
                "response.reasoning_summary_text.delta",
                Some(0),
                Some("rs_9_0")
            ),
            s(
                "response.reasoning_summary_text.done",
                Some(0),
                Some("rs_9_0")
            ),
            s(
                "response.reasoning_summary_part.done",
                Some(0),
                Some("rs_9_0")
            ),
            s("response.output_item.done", Some(0), Some("rs_9_0")),
            s("response.output_item.added", Some(1), Some("msg_9_1")),
            s("response.content_part.added", Some(1), Some("msg_9_1")),
            s("response.output_text.delta", Some(1), Some("msg_9_1")),
            s("response.output_text.delta", Some(1), Some("msg_9_1")),
            s("response.output_text.done", Some(1), Some("msg_9_1")),
            s("response.content_part.done", Some(1), Some("msg_9_1")),
            s("response.output_item.done", Some(1), Some("msg_9_1")),
            s("response.output_item.added", Some(2), Some("fc_9_2")),
            s(
                "response.function_call_arguments.delta",
                Some(2),
                Some("fc_9_2")
            ),
            s(
                "response.function_call_arguments.delta",
                Some(2),
                Some("fc_9_2")
            ),
            s(
                "response.function_call_arguments.done",
                Some(2),
                Some("fc_9_2")
            ),
            s("response.output_item.done", Some(2), Some("fc_9_2")),
            s("response.completed", None, None),
        ]
    );
}

#[test]
fn framing_final_response_and_read_back() {
    let events = reasoning_text_call();
    let mut enc = weather_encoder();
    let out = run(&mut enc, &events);
    let all = frames(&out);
    // Framing: `event:` is the type, the data starts with type and sequence number.
    for (n, f) in all.iter().enumerate() {
        let prefix = format!(
            "{{\"type\":\"{}\",\"sequence_number\":{n},",
            f.event.as_deref().unwrap()
        );
        assert!(f.data.starts_with(&prefix), "{}", f.data);
        assert!(f.raw.starts_with(b"event: "));
    }
    let created: Value = serde_json::from_str(&all[0].data).unwrap();
    assert_eq!(created["response"]["id"], "resp_9");
    assert_eq!(created["response"]["status"], "in_progress");
    assert_eq!(created["response"]["usage"], Value::Null);
    let args_done: Value = serde_json::from_str(&all[19].data).unwrap();
    assert_eq!(args_done["name"], "get_weather");
    assert_eq!(args_done["arguments"], "{\"city\":\"Oslo\"}");
    let reasoning_done: Value = serde_json::from_str(&all[8].data).unwrap();
    assert!(
        reasoning_done["item"]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with(BLOB_PREFIX)
    );
    let done: Value = serde_json::from_str(&all[21].data).unwrap();
    let r = enc.response().unwrap();
    assert_eq!(&done["response"], r);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["usage"]["input_tokens"], 45);
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 5);
    assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 3);
    assert_eq!(r["parallel_tool_calls"], false);
    assert_eq!(r["output"][2]["call_id"], "toolu_1");
    // Nothing after the terminal event.
    assert!(
        enc.encode(&StreamEvent::TextDelta("late".into()))
            .is_empty()
    );
    assert!(enc.fail("server_error", "late").is_empty());
    // The client reads back what the canonical events said.
    let mut dec = StreamDecoder::new();
    let back: Vec<StreamEvent> = all.iter().flat_map(|f| dec.feed(f)).collect();
    let keep = |e: &&StreamEvent| !matches!(e, StreamEvent::Start { .. });
    let want: Vec<&StreamEvent> = events.iter().filter(keep).collect();
    let got: Vec<&StreamEvent> = back.iter().filter(keep).collect();
    assert_eq!(got, want);
}

#[test]
fn parallel_calls_interleave_and_close_in_order() {
    let mut enc =
        encoder(&json!([{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]));
    let call = |index: u32, name: &str| StreamEvent::ToolCallStart {
        index,
        id: format!("call_{name}"),
        name: name.into(),
    };
    let args = |index: u32, json: &str| StreamEvent::ToolArgsDelta {
        index,
        json: json.into(),
    };
    let out = run(
        &mut enc,
        &[
            start(),
            call(0, "a"),
            call(1, "b"),
            args(1, "{\"y\":"),
            args(0, "{\"x\":1}"),
            args(1, "2}"),
            StreamEvent::End,
        ],
    );
    check_stream(&out).unwrap();
    let r = enc.response().unwrap();
    assert_eq!(r["output"][0]["arguments"], "{\"x\":1}");
    assert_eq!(r["output"][1]["arguments"], "{\"y\":2}");
    // A text after the calls closes them first, in order.
    let mut enc = encoder(&json!([]));
    let out = run(
        &mut enc,
        &[
            call(0, "a"),
            call(1, "b"),
            StreamEvent::TextDelta("t".into()),
            StreamEvent::End,
        ],
    );
    check_stream(&out).unwrap();
    let kinds: Vec<String> = shape(&out)
        .into_iter()
        .filter(|(t, ..)| t.starts_with("response.output_item"))
        .map(|(t, i, _)| format!("{t}#{}", i.unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            "response.output_item.added#0",
            "response.output_item.added#1",
            "response.output_item.done#0",
            "response.output_item.done#1",
            "response.output_item.added#2",
            "response.output_item.done#2"
        ]
    );
}

#[test]
fn custom_and_namespaced_calls_are_restored() {
    let tools = json!([
        {"type": "custom", "name": "apply_patch"},
        {"type": "namespace", "name": "cal", "tools": [{"type": "function", "name": "list"}]}
    ]);
    let mut enc = encoder(&tools);
    let out = run(
        &mut enc,
        &[
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_p".into(),
                name: "apply_patch".into(),
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "{\"input\":\"*** Begin".into(),
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: " Patch\\n\"}".into(),
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_l".into(),
                name: "cal__list".into(),
            },
            StreamEvent::ToolArgsDelta {
                index: 1,
                json: "{}".into(),
            },
            StreamEvent::End,
        ],
    );
    check_stream(&out).unwrap();
    let r = enc.response().unwrap();
    assert_eq!(
        r["output"],
        json!([
            {"id": "ctc_9_0", "type": "custom_tool_call", "status": "completed", "call_id": "call_p",
             "name": "apply_patch", "input": "*** Begin Patch\n"},
            {"id": "fc_9_1", "type": "function_call", "status": "completed", "call_id": "call_l",
             "name": "list", "namespace": "cal", "arguments": "{}"}
        ])
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("event: response.custom_tool_call_input.delta\n"));
    assert!(text.contains("event: response.custom_tool_call_input.done\n"));
    // Read back, the custom call is the canonical `{"input": …}` call again.
    let mut dec = StreamDecoder::new();
    let mut args = String::new();
    for f in frames(text.as_bytes()) {
        for e in dec.feed(&f) {
            if let StreamEvent::ToolArgsDelta { index: 0, json } = e {
                args.push_str(&json);
            }
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"input": "*** Begin Patch\n"})
    );
}

#[test]
fn length_makes_the_response_incomplete() {
    let mut enc = encoder(&json!([]));
    let out = run(
        &mut enc,
        &[
            start(),
            StreamEvent::TextDelta("Oslo is cold and".into()),
            StreamEvent::Finish {
                reason: FinishReason::Length,
                stop_sequence: None,
            },
            usage(),
            StreamEvent::End,
        ],
    );
    check_stream(&out).unwrap();
    let last = frames(&out).pop().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.incomplete"));
    let r = enc.response().unwrap();
    assert_eq!(
        r["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(r["output"][0]["status"], "incomplete");
}

#[test]
fn errors_end_with_error_then_response_failed() {
    // An upstream error mid-stream.
    let mut enc = encoder(&json!([]));
    let out = run(
        &mut enc,
        &[
            start(),
            StreamEvent::TextDelta("Partial".into()),
            StreamEvent::Error {
                message: "overloaded".into(),
            },
            StreamEvent::End,
        ],
    );
    check_stream(&out).unwrap();
    let all = frames(&out);
    let names: Vec<&str> = all.iter().map(|f| f.event.as_deref().unwrap()).collect();
    assert_eq!(&names[names.len() - 2..], ["error", "response.failed"]);
    let err: Value = serde_json::from_str(&all[all.len() - 2].data).unwrap();
    assert_eq!(err["error"]["code"], "server_error");
    assert_eq!(err["error"]["message"], "overloaded");
    let r = enc.response().unwrap();
    assert_eq!(r["status"], "failed");
    assert_eq!(
        r["error"],
        json!({"code": "server_error", "message": "overloaded"})
    );

    // A failure the gateway detects, numbered after what was written.
    let mut enc = encoder(&json!([]));
    let mut out = run(&mut enc, &[start(), StreamEvent::TextDelta("Hi".into())]);
    let next = enc.sequence_number();
    let tail = enc.fail("upstream_unavailable", "the upstream stream was cut");
    let first: Value = serde_json::from_str(&frames(&tail)[0].data).unwrap();
    assert_eq!(first["sequence_number"], next);
    out.extend(tail);
    check_stream(&out).unwrap();
    assert!(enc.fail("x", "y").is_empty());

    // Before anything was written, the stream still starts properly.
    let mut enc = encoder(&json!([]));
    let out = enc.fail("server_error", "no upstream");
    check_stream(&out).unwrap();
    assert_eq!(frames(&out).len(), 4);
}

#[test]
fn a_cut_stream_writes_no_terminal_event() {
    let mut enc = encoder(&json!([]));
    let out = run(&mut enc, &[start(), StreamEvent::TextDelta("Hi".into())]);
    assert!(check_stream(&out).unwrap_err().contains("no terminal"));
    assert!(enc.response().is_none());
}

#[test]
fn redacted_and_gemini_style_signatures() {
    let gemini = signature::tag(Origin::Gemini, "CiQB");
    let mut enc = encoder(&json!([]));
    let events = [
        StreamEvent::RedactedReasoning("DATA".into()),
        StreamEvent::ReasoningDelta("Thoughts".into()),
        // Gemini signs the call after its thoughts.
        StreamEvent::ReasoningSignature(gemini.clone()),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_g".into(),
            name: "f".into(),
        },
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "{}".into(),
        },
        StreamEvent::End,
    ];
    let out = run(&mut enc, &events);
    check_stream(&out).unwrap();
    let r = enc.response().unwrap();
    assert_eq!(r["output"][0]["summary"], json!([]));
    assert_eq!(
        r["output"][1]["summary"],
        json!([{"type": "summary_text", "text": "Thoughts"}])
    );
    let mut dec = StreamDecoder::new();
    let back: Vec<StreamEvent> = frames(&out).iter().flat_map(|f| dec.feed(f)).collect();
    assert!(back.contains(&StreamEvent::RedactedReasoning("DATA".into())));
    assert!(back.contains(&StreamEvent::ReasoningSignature(gemini)));
    assert!(back.contains(&StreamEvent::ReasoningDelta("Thoughts".into())));
}
