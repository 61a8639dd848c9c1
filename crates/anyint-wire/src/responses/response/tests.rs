use serde_json::json;

use super::*;
use crate::Usage;
use crate::canonical::signature::{self, Origin};
use crate::responses::BLOB_PREFIX;

const UPSTREAM: &str = r#"{
  "id": "resp_68af4030592c81938ec0a5fbab4a3e9f", "object": "response", "created_at": 1756315696,
  "status": "completed", "background": false, "error": null, "incomplete_details": null,
  "model": "gpt-5.1-2025-11-13",
  "output": [
    {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Bergen needs a forecast."}],
     "encrypted_content": "gAAAAABosEAzX"},
    {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
     "content": [{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}]},
    {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_9",
     "name": "get_forecast", "arguments": "{\"city\":\"Bergen\",\"days\":1}"},
    {"id": "ws_1", "type": "web_search_call", "status": "completed"}
  ],
  "usage": {"input_tokens": 1234, "input_tokens_details": {"cached_tokens": 1024},
            "output_tokens": 58, "output_tokens_details": {"reasoning_tokens": 16}, "total_tokens": 1292}
}"#;

fn echo(include_encrypted: bool) -> Echo {
    let body = json!({"model": "acme", "input": "x", "store": false, "max_output_tokens": 64,
        "include": if include_encrypted { json!(["reasoning.encrypted_content"]) } else { json!([]) }});
    Echo::new(body.to_string().as_bytes(), "resp_01", 1_767_225_600).unwrap()
}

#[test]
fn decodes_an_upstream_response() {
    let r = decode_response(UPSTREAM.as_bytes()).unwrap();
    assert_eq!(r.id, "resp_68af4030592c81938ec0a5fbab4a3e9f");
    assert_eq!(r.model, "gpt-5.1-2025-11-13");
    assert_eq!(r.created, Some(1_756_315_696));
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning {
                text: "Bergen needs a forecast.".into(),
                signature: Some(signature::tag(Origin::OpenAi, "gAAAAABosEAzX")),
                redacted: None
            },
            Part::text("Let me check."),
            Part::ToolCall {
                id: "call_9".into(),
                name: "get_forecast".into(),
                arguments: "{\"city\":\"Bergen\",\"days\":1}".into()
            }
        ]
    );
    assert_eq!(r.finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 1234,
            output_tokens: 58,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 16,
            web_searches: 0,
        }
    );
}

#[test]
fn status_maps_to_finish_and_failures_are_errors() {
    let with = |status: &str, details: Value| {
        let mut v: Value = serde_json::from_str(UPSTREAM).unwrap();
        v["status"] = json!(status);
        v["incomplete_details"] = details;
        v["output"] = json!([{"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}]);
        decode_response(v.to_string().as_bytes())
    };
    let r = with("completed", Value::Null).unwrap();
    assert_eq!(r.finish, Some(FinishReason::Stop));
    assert_eq!(r.parts, vec![Part::text("No.")]);
    assert_eq!(
        with("incomplete", json!({"reason": "max_output_tokens"}))
            .unwrap()
            .finish,
        Some(FinishReason::Length)
    );
    assert_eq!(
        with("incomplete", json!({"reason": "content_filter"}))
            .unwrap()
            .finish,
        Some(FinishReason::ContentFilter)
    );
    let mut failed: Value = serde_json::from_str(UPSTREAM).unwrap();
    failed["status"] = json!("failed");
    failed["error"] = json!({"code": "server_error", "message": "boom"});
    let e = decode_response(failed.to_string().as_bytes()).unwrap_err();
    assert!(e.message.contains("boom"), "{e}");
    assert!(decode_response(br#"{"error":{"message":"m","type":"t"}}"#).is_err());
    assert!(decode_response(b"[]").is_err());
}

#[test]
fn encodes_the_full_response_object() {
    let resp = ChatResponse {
        id: "msg_upstream".into(),
        model: "acme".into(),
        created: Some(5),
        parts: vec![Part::text("Oslo is cold and")],
        finish: Some(FinishReason::Length),
        stop_sequence: None,
        // As the Anthropic decoder reports it: input includes the cache.
        usage: Usage {
            input_tokens: 30,
            output_tokens: 64,
            cache_read_tokens: 10,
            cache_write_tokens: 5,
            reasoning_tokens: 0,
            web_searches: 0,
        },
        ..ChatResponse::default()
    };
    let v = encode_response(&resp, &echo(false));
    assert_eq!(
        v,
        json!({
            "id": "resp_01", "object": "response", "created_at": 1_767_225_600, "status": "incomplete",
            "background": false, "completed_at": null, "error": null,
            "incomplete_details": {"reason": "max_output_tokens"}, "instructions": null,
            "max_output_tokens": 64, "max_tool_calls": null, "model": "acme",
            "output": [{"id": "msg_01_0", "type": "message", "status": "incomplete", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Oslo is cold and", "annotations": [], "logprobs": []}]}],
            "parallel_tool_calls": true, "previous_response_id": null, "prompt_cache_key": null,
            "reasoning": {"effort": null, "summary": null}, "safety_identifier": null,
            "service_tier": "default", "store": false, "temperature": 1,
            "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
            "tools": [], "top_logprobs": 0, "top_p": 1, "truncation": "disabled", "user": null,
            "metadata": {},
            "usage": {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 5},
                      "output_tokens": 64, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 94}
        })
    );
    // The client reads back what it was told.
    let back = decode_response(v.to_string().as_bytes()).unwrap();
    assert_eq!(back.parts, resp.parts);
    assert_eq!(back.finish, Some(FinishReason::Length));
    assert_eq!(back.usage, resp.usage);
}

#[test]
fn reasoning_items_and_encrypted_content() {
    let gemini = signature::tag(Origin::Gemini, "CiQB");
    let resp = ChatResponse {
        model: "acme".into(),
        parts: vec![
            // Gemini: unsigned thoughts, then the signature on the call that follows.
            Part::Reasoning {
                text: "Thinking.".into(),
                signature: None,
                redacted: None,
            },
            Part::Reasoning {
                text: String::new(),
                signature: Some(gemini.clone()),
                redacted: None,
            },
            Part::ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            },
            Part::Reasoning {
                text: "More.".into(),
                signature: Some(signature::tag(Origin::OpenAi, "gAAAA")),
                redacted: None,
            },
            Part::text("Done"),
        ],
        finish: Some(FinishReason::ToolCalls),
        ..ChatResponse::default()
    };
    let v = encode_response(&resp, &echo(true));
    let out = v["output"].as_array().unwrap();
    let kinds: Vec<&str> = out.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["reasoning", "function_call", "reasoning", "message"]
    );
    assert_eq!(out[0]["id"], "rs_01_0");
    assert_eq!(
        out[0]["summary"],
        json!([{"type": "summary_text", "text": "Thinking."}])
    );
    let blob = out[0]["encrypted_content"].as_str().unwrap();
    assert!(blob.starts_with(BLOB_PREFIX));
    assert_eq!(out[2]["encrypted_content"], "gAAAA");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["completed_at"], 1_767_225_600);
    // Without `include`, no encrypted content at all.
    let v = encode_response(&resp, &echo(false));
    assert!(!v.to_string().contains("encrypted_content"));
}

#[test]
fn custom_input_unwraps_only_the_input_object() {
    assert_eq!(custom_input("{\"input\":\"a\\nb\"}"), "a\nb");
    assert_eq!(custom_input("{\"input\":1}"), "{\"input\":1}");
    assert_eq!(
        custom_input("{\"input\":\"a\",\"x\":1}"),
        "{\"input\":\"a\",\"x\":1}"
    );
    assert_eq!(custom_input("raw text"), "raw text");
}
