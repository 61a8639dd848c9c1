//! Reasoning signatures across families: a signature reaches only the provider that issued it,
//! and comes back to it on the part it was issued on, whichever client family carried the
//! conversation in between (see `anyint_wire::canonical::signature`).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a body that does not decode must fail the test"
)]

use anyint_wire::canonical::{ChatRequest, DecodeOptions, EncodeOptions, StreamEvent};
use anyint_wire::responses::{self, BLOB_PREFIX, Echo};
use anyint_wire::sse::SseSplitter;
use anyint_wire::translate::{ClientShape, Kind, Translator};
use anyint_wire::{anthropic, gemini};
use serde_json::{Value, json};

const GEMINI_SIG: &str = "CsoBAVKhc7xq0Kk3UkvbN5mJZ0l2m3Jm0aTzJEXAMPLE";
const ANTHROPIC_SIG: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl";

/// A Gemini answer with thought summaries: the thoughts unsigned, the call signed.
fn gemini_answer() -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Bergen needs a forecast.", "thought": true},
                {"functionCall": {"name": "get_forecast", "args": {"city": "Bergen"}},
                 "thoughtSignature": GEMINI_SIG}
            ]},
            "finishReason": "STOP"
        }],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5},
        "modelVersion": "gemini-3-flash-preview",
        "responseId": "r1"
    })
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The next Anthropic request of a client that got `content` as the assistant's answer.
fn anthropic_follow_up(content: &Value) -> ChatRequest {
    let call_id = content
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .map(|b| b["id"].clone())
        .unwrap();
    let body = json!({
        "model": "acme-chat",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "Weather in Bergen tomorrow?"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call_id, "content": "{\"high_c\":9}"}
            ]}
        ]
    });
    anthropic::decode_request(body.to_string().as_bytes(), "2023-06-01").unwrap()
}

fn upstream(mut req: ChatRequest, model: &str) -> ChatRequest {
    model.clone_into(&mut req.model);
    req
}

#[test]
fn gemini_signature_via_an_anthropic_client_goes_back_on_the_call() {
    let resp = gemini::decode_response(gemini_answer().to_string().as_bytes()).unwrap();
    let content = json_of(&anthropic::encode_response(&resp))["content"].clone();
    // One thinking block holding the thoughts and Gemini's signature, tagged as Gemini's.
    assert_eq!(
        content,
        json!([
            {"type": "thinking", "thinking": "Bergen needs a forecast.",
             "signature": format!("anyint:gemini:{GEMINI_SIG}")},
            {"type": "tool_use", "id": "call_r1_0", "name": "get_forecast", "input": {"city": "Bergen"}}
        ])
    );
    let req = anthropic_follow_up(&content);

    // Back to Gemini: the signature is on the functionCall, where Gemini put it.
    let body =
        json_of(&gemini::encode_request(&upstream(req.clone(), "gemini-3-flash-preview")).unwrap());
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "Bergen needs a forecast.", "thought": true},
            {"functionCall": {"name": "get_forecast", "args": {"city": "Bergen"}, "id": "call_r1_0"},
             "thoughtSignature": GEMINI_SIG}
        ]})
    );

    // To Anthropic: the Gemini-signed thinking block is dropped, the call stays.
    let body = json_of(&anthropic::encode_request(&upstream(req, "claude-sonnet-4-5")).unwrap());
    assert_eq!(
        body["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "call_r1_0", "name": "get_forecast", "input": {"city": "Bergen"}}])
    );
    assert!(!body.to_string().contains(GEMINI_SIG));
}

#[test]
fn gemini_stream_to_an_anthropic_client_signs_the_thinking_block() {
    let sse = format!(
        "data: {}\r\n\r\n",
        serde_json::to_string(&gemini_answer()).unwrap()
    );
    let mut split = SseSplitter::new();
    let mut dec = gemini::StreamDecoder::new();
    let mut enc = anthropic::StreamEncoder::new(EncodeOptions {
        model: "acme-chat".into(),
        ..EncodeOptions::default()
    });
    let mut out = Vec::new();
    let mut events: Vec<StreamEvent> = Vec::new();
    for f in split.push(sse.as_bytes()) {
        events.extend(dec.feed(&f));
    }
    events.extend(dec.finish());
    for ev in &events {
        out.extend(enc.encode(ev));
    }
    // Each block's start and deltas, in order.
    let mut split = SseSplitter::new();
    let blocks: Vec<Value> = split
        .push(&out)
        .into_iter()
        .map(|f| serde_json::from_str::<Value>(&f.data).unwrap())
        .filter(|d| d["type"] == "content_block_start" || d["type"] == "content_block_delta")
        .map(|d| json!([d["index"], d["content_block"]["type"], d["delta"]]))
        .collect();
    assert_eq!(
        blocks,
        [
            json!([0, "thinking", null]),
            json!([0, null, {"type": "thinking_delta", "thinking": "Bergen needs a forecast."}]),
            json!([0, null, {"type": "signature_delta", "signature": format!("anyint:gemini:{GEMINI_SIG}")}]),
            json!([1, "tool_use", null]),
            json!([1, null, {"type": "input_json_delta", "partial_json": "{\"city\":\"Bergen\"}"}]),
        ]
    );
}

#[test]
fn anthropic_signature_via_a_gemini_client_goes_back_only_to_anthropic() {
    let answer = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Need the forecast.", "signature": ANTHROPIC_SIG},
            {"type": "tool_use", "id": "toolu_1", "name": "get_forecast", "input": {"city": "Bergen"}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 5}
    });
    let resp = anthropic::decode_response(answer.to_string().as_bytes()).unwrap();
    let parts =
        json_of(&gemini::encode_response(&resp))["candidates"][0]["content"]["parts"].clone();
    let tagged = format!("anyint:anthropic:{ANTHROPIC_SIG}");
    assert_eq!(parts[0]["thoughtSignature"], tagged.as_str());

    // The Gemini client echoes the turn back.
    let body = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Bergen tomorrow?"}]},
            {"role": "model", "parts": parts},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_forecast", "id": "toolu_1", "response": {"high_c": 9}}}
            ]}
        ]
    });
    let req = gemini::decode_request(body.to_string().as_bytes(), "acme-chat", false).unwrap();

    let to_anthropic =
        json_of(&anthropic::encode_request(&upstream(req.clone(), "claude-sonnet-4-5")).unwrap());
    assert_eq!(
        to_anthropic["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Need the forecast.", "signature": ANTHROPIC_SIG})
    );
    let to_gemini =
        json_of(&gemini::encode_request(&upstream(req, "gemini-3-flash-preview")).unwrap());
    assert_eq!(
        to_gemini["contents"][1]["parts"],
        json!([{"functionCall": {"name": "get_forecast", "args": {"city": "Bergen"}, "id": "toolu_1"},
                "thoughtSignature": "skip_thought_signature_validator"}])
    );
}

/// A Codex-style (stateless) Responses request: `include` asks for reasoning state, `input`
/// is the question, then `output` (the previous answer's items, replayed as they came) and a
/// result for the call among them.
fn responses_follow_up(output: &Value) -> Value {
    let call_id = output
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .map(|i| i["call_id"].clone())
        .unwrap();
    let mut input = vec![json!({"role": "user", "content": "Weather in Bergen tomorrow?"})];
    input.extend(output.as_array().unwrap().iter().cloned());
    input.push(
        json!({"type": "function_call_output", "call_id": call_id, "output": "{\"high_c\":9}"}),
    );
    json!({
        "model": "acme-chat", "store": false, "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "function", "name": "get_forecast"}],
        "input": input
    })
}

fn responses_echo(body: &Value) -> Echo {
    Echo::new(body.to_string().as_bytes(), "resp_1", 1_767_225_600).unwrap()
}

#[test]
fn anthropic_thinking_via_a_responses_client_goes_back_only_to_anthropic() {
    let answer = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Need the forecast.", "signature": ANTHROPIC_SIG},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_forecast", "input": {"city": "Bergen"}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 5}
    });
    let resp = anthropic::decode_response(answer.to_string().as_bytes()).unwrap();
    let first = responses_follow_up(&json!([{"type": "function_call", "call_id": "x"}]));
    let output = responses::encode_response(&resp, &responses_echo(&first))["output"].clone();
    // The client sees gateway blobs, not Anthropic's state or the gateway's tags.
    for item in output.as_array().unwrap().iter().take(2) {
        assert_eq!(item["type"], "reasoning");
        assert!(
            item["encrypted_content"]
                .as_str()
                .unwrap()
                .starts_with(BLOB_PREFIX)
        );
    }
    assert!(!output.to_string().contains(ANTHROPIC_SIG));
    assert!(!output.to_string().contains("anyint:"));

    let req =
        responses::decode_request(responses_follow_up(&output).to_string().as_bytes()).unwrap();
    let to_anthropic =
        json_of(&anthropic::encode_request(&upstream(req.clone(), "claude-sonnet-4-5")).unwrap());
    assert_eq!(
        to_anthropic["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "Need the forecast.", "signature": ANTHROPIC_SIG},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_forecast", "input": {"city": "Bergen"}}
        ])
    );
    for body in [
        gemini::encode_request(&upstream(req.clone(), "gemini-3-flash-preview")).unwrap(),
        responses::encode_request(&upstream(req.clone(), "gpt-5.1")).unwrap(),
    ] {
        let text = String::from_utf8(body).unwrap();
        assert!(
            !text.contains(ANTHROPIC_SIG) && !text.contains("EmwKAh"),
            "{text}"
        );
        assert!(!text.contains("anyint"), "{text}");
    }
}

#[test]
fn gemini_stream_via_a_responses_client_signs_the_call_on_replay() {
    let sse = format!(
        "data: {}\r\n\r\n",
        serde_json::to_string(&gemini_answer()).unwrap()
    );
    let first = responses_follow_up(&json!([{"type": "function_call", "call_id": "x"}]));
    let echo = responses_echo(&first);
    let mut stage = Translator::new(
        Kind::Gemini,
        DecodeOptions::default(),
        ClientShape::Responses { echo: &echo },
        EncodeOptions {
            model: "acme-chat".into(),
            ..EncodeOptions::default()
        },
    );
    let mut out = Vec::new();
    for f in SseSplitter::new().push(sse.as_bytes()) {
        stage.feed(&f, &mut out).unwrap();
    }
    stage.finish(&mut out);
    responses::check_stream(&out).unwrap();
    // The stored Response: Gemini's thoughts and signature in one reasoning item, then the call.
    let output = stage.response().unwrap()["output"].clone();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(
        output[0]["summary"],
        json!([{"type": "summary_text", "text": "Bergen needs a forecast."}])
    );
    assert!(
        output[0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with(BLOB_PREFIX)
    );
    assert_eq!(output[1]["type"], "function_call");

    let req =
        responses::decode_request(responses_follow_up(&output).to_string().as_bytes()).unwrap();
    let to_gemini =
        json_of(&gemini::encode_request(&upstream(req.clone(), "gemini-3-flash-preview")).unwrap());
    assert_eq!(
        to_gemini["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "Bergen needs a forecast.", "thought": true},
            {"functionCall": {"name": "get_forecast", "args": {"city": "Bergen"}, "id": "call_r1_0"},
             "thoughtSignature": GEMINI_SIG}
        ]})
    );
    let to_anthropic =
        json_of(&anthropic::encode_request(&upstream(req, "claude-sonnet-4-5")).unwrap());
    assert!(!to_anthropic.to_string().contains(GEMINI_SIG));
}
