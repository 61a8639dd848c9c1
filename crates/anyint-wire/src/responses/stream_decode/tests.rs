use super::*;
use crate::Usage;
use crate::canonical::FinishReason;
use crate::canonical::signature::{self, Origin};
use crate::sse::SseSplitter;

/// A function-call stream with reasoning, shaped like a recorded 2026 gpt-5.1 stream (§4).
const CAPTURE: &str = concat!(
    "event: response.created\n",
    r#"data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_9","object":"response","created_at":1767225600,"status":"in_progress","model":"gpt-5.1-2025-11-13","output":[],"usage":null}}"#,
    "\n\n",
    "event: response.in_progress\n",
    r#"data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_9","object":"response","created_at":1767225600,"status":"in_progress","model":"gpt-5.1-2025-11-13","output":[],"usage":null}}"#,
    "\n\n",
    "event: response.output_item.added\n",
    r#"data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"rs_9","type":"reasoning","summary":[]}}"#,
    "\n\n",
    "event: response.reasoning_summary_part.added\n",
    r#"data: {"type":"response.reasoning_summary_part.added","sequence_number":3,"item_id":"rs_9","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}"#,
    "\n\n",
    "event: response.reasoning_summary_text.delta\n",
    r#"data: {"type":"response.reasoning_summary_text.delta","sequence_number":4,"item_id":"rs_9","output_index":0,"summary_index":0,"delta":"Need the","obfuscation":"x1"}"#,
    "\n\n",
    "event: response.reasoning_summary_text.delta\n",
    r#"data: {"type":"response.reasoning_summary_text.delta","sequence_number":5,"item_id":"rs_9","output_index":0,"summary_index":0,"delta":" weather."}"#,
    "\n\n",
    "event: response.reasoning_summary_part.added\n",
    r#"data: {"type":"response.reasoning_summary_part.added","sequence_number":6,"item_id":"rs_9","output_index":0,"summary_index":1,"part":{"type":"summary_text","text":""}}"#,
    "\n\n",
    "event: response.reasoning_summary_text.delta\n",
    r#"data: {"type":"response.reasoning_summary_text.delta","sequence_number":7,"item_id":"rs_9","output_index":0,"summary_index":1,"delta":"Oslo."}"#,
    "\n\n",
    ": keep-alive\n\n",
    "event: response.output_item.done\n",
    r#"data: {"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"rs_9","type":"reasoning","summary":[{"type":"summary_text","text":"Need the weather."},{"type":"summary_text","text":"Oslo."}],"encrypted_content":"gAAAAABo9"}}"#,
    "\n\n",
    "event: response.output_item.added\n",
    r#"data: {"type":"response.output_item.added","sequence_number":9,"output_index":1,"item":{"id":"fc_9","type":"function_call","status":"in_progress","arguments":"","call_id":"call_9","name":"get_weather"}}"#,
    "\n\n",
    "event: response.function_call_arguments.delta\n",
    r#"data: {"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_9","output_index":1,"delta":"{\"city\":\"Oslo\"}"}"#,
    "\n\n",
    "event: response.function_call_arguments.done\n",
    r#"data: {"type":"response.function_call_arguments.done","sequence_number":11,"item_id":"fc_9","output_index":1,"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}"#,
    "\n\n",
    "event: response.output_item.done\n",
    r#"data: {"type":"response.output_item.done","sequence_number":12,"output_index":1,"item":{"id":"fc_9","type":"function_call","status":"completed","arguments":"{\"city\":\"Oslo\"}","call_id":"call_9","name":"get_weather"}}"#,
    "\n\n",
    "event: response.completed\n",
    r#"data: {"type":"response.completed","sequence_number":13,"response":{"id":"resp_9","status":"completed","model":"gpt-5.1-2025-11-13","output":[],"usage":{"input_tokens":45,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":25,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":70}}}"#,
    "\n\n",
);

fn decode_chunks(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut split = SseSplitter::new();
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        for f in split.push(c) {
            out.extend(dec.feed(&f));
        }
    }
    out.extend(dec.finish());
    out
}

fn decode(s: &str) -> Vec<StreamEvent> {
    decode_chunks(&[s.as_bytes()])
}

#[test]
fn decodes_reasoning_a_call_usage_and_the_end() {
    assert_eq!(
        decode(CAPTURE),
        vec![
            StreamEvent::Start {
                id: "resp_9".into(),
                model: "gpt-5.1-2025-11-13".into()
            },
            StreamEvent::ReasoningDelta("Need the".into()),
            StreamEvent::ReasoningDelta(" weather.".into()),
            StreamEvent::ReasoningDelta("\n\n".into()),
            StreamEvent::ReasoningDelta("Oslo.".into()),
            StreamEvent::ReasoningSignature(signature::tag(Origin::OpenAi, "gAAAAABo9")),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_9".into(),
                name: "get_weather".into()
            },
            StreamEvent::ToolArgsDelta {
                index: 0,
                json: "{\"city\":\"Oslo\"}".into()
            },
            StreamEvent::Usage(Usage {
                input_tokens: 45,
                output_tokens: 25,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: 12,
                web_searches: 0,
            }),
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                stop_sequence: None
            },
            StreamEvent::End,
        ]
    );
}

#[test]
fn any_chunking_gives_the_same_events() {
    let bytes = CAPTURE.as_bytes();
    let whole = decode(CAPTURE);
    for size in [1, 3, 17, 200] {
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        assert_eq!(decode_chunks(&chunks), whole, "{size}");
    }
}

#[test]
fn whole_items_without_deltas_are_filled_in() {
    let s = concat!(
        "event: response.output_item.done\n",
        r#"data: {"type":"response.output_item.done","sequence_number":0,"output_index":0,"item":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi"}]}}"#,
        "\n\n",
        "event: response.output_item.done\n",
        r#"data: {"type":"response.output_item.done","sequence_number":1,"output_index":1,"item":{"type":"function_call","call_id":"c","name":"list","namespace":"cal","arguments":"{}"}}"#,
        "\n\n",
        "event: response.output_item.added\n",
        r#"data: {"type":"response.output_item.added","sequence_number":2,"output_index":2,"item":{"type":"custom_tool_call","call_id":"p","name":"apply_patch","input":""}}"#,
        "\n\n",
        "event: response.custom_tool_call_input.delta\n",
        r#"data: {"type":"response.custom_tool_call_input.delta","sequence_number":3,"output_index":2,"item_id":"ctc","delta":"a \"b\"\n"}"#,
        "\n\n",
        "event: response.output_item.done\n",
        r#"data: {"type":"response.output_item.done","sequence_number":4,"output_index":2,"item":{"type":"custom_tool_call","call_id":"p","name":"apply_patch","input":"a \"b\"\n"}}"#,
        "\n\n",
        "event: response.incomplete\n",
        r#"data: {"type":"response.incomplete","sequence_number":5,"response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":null}}"#,
        "\n\n",
    );
    let ev = decode(s);
    assert_eq!(
        ev[0],
        StreamEvent::Start {
            id: String::new(),
            model: String::new()
        }
    );
    assert_eq!(ev[1], StreamEvent::TextDelta("Hi".into()));
    assert_eq!(
        ev[2],
        StreamEvent::ToolCallStart {
            index: 0,
            id: "c".into(),
            name: "cal__list".into()
        }
    );
    assert_eq!(
        ev[3],
        StreamEvent::ToolArgsDelta {
            index: 0,
            json: "{}".into()
        }
    );
    assert!(
        matches!(&ev[4], StreamEvent::ToolCallStart { index: 1, name, .. } if name == "apply_patch")
    );
    let args: String = ev
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolArgsDelta { index: 1, json } => Some(json.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"input": "a \"b\"\n"})
    );
    let n = ev.len();
    assert_eq!(
        ev[n - 2..],
        [
            StreamEvent::Finish {
                reason: FinishReason::Length,
                stop_sequence: None
            },
            StreamEvent::End
        ]
    );
}

#[test]
fn failures_become_errors_and_stop_the_stream() {
    let nested = concat!(
        "event: response.created\n",
        r#"data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","model":"m"}}"#,
        "\n\n",
        "event: error\n",
        r#"data: {"type":"error","sequence_number":1,"error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"Your input exceeds the context window.","param":"input"}}"#,
        "\n\n",
        "event: response.failed\n",
        r#"data: {"type":"response.failed","sequence_number":2,"response":{"id":"resp_1","status":"failed","error":{"code":"context_length_exceeded","message":"Your input exceeds the context window."}}}"#,
        "\n\n",
    );
    let ev = decode(nested);
    assert_eq!(
        ev[1..],
        [StreamEvent::Error {
            message: "Your input exceeds the context window.".into()
        }]
    );
    let failed_only = concat!(
        "event: response.failed\n",
        r#"data: {"type":"response.failed","sequence_number":0,"response":{"status":"failed","error":{"code":"server_error","message":"boom"}}}"#,
        "\n\n",
    );
    assert_eq!(
        decode(failed_only),
        [StreamEvent::Error {
            message: "boom".into()
        }]
    );
    let flat = "data: {\"type\":\"error\",\"code\":\"x\",\"message\":\"flat\"}\n\n";
    assert_eq!(
        decode(flat),
        [StreamEvent::Error {
            message: "flat".into()
        }]
    );
    // A cut stream ends without `End`.
    let cut = CAPTURE.split("event: response.completed").next().unwrap();
    assert!(!decode(cut).contains(&StreamEvent::End));
}

#[test]
fn gateway_blobs_in_a_stream_carry_their_signatures() {
    let blob =
        super::blob::for_client(Some(&signature::tag(Origin::Anthropic, "EqQB")), None).unwrap();
    let s = format!(
        "event: response.output_item.done\ndata: {}\n\n",
        json!({"type": "response.output_item.done", "sequence_number": 0, "output_index": 0,
               "item": {"type": "reasoning", "summary": [], "encrypted_content": blob}})
    );
    let ev = decode(&s);
    assert_eq!(
        ev.last(),
        Some(&StreamEvent::ReasoningSignature(signature::tag(
            Origin::Anthropic,
            "EqQB"
        )))
    );
}
