//! Chat codec tests: request decoding and encoding (and their round trip), tool results
//! and their images, usage, and the response round trip.

use serde_json::{Value, json};

use super::{decode_request, decode_response, encode_request, encode_response, encode_usage};
use crate::canonical::{
    ChatRequest, FinishReason, ImageSource, Message, Part, Role, ToolChoice, Usage,
};

#[test]
fn decodes_system_tools_images_and_tool_results() {
    let body = br#"{"model":"m","max_tokens":9,"stop":"X","temperature":0.5,"user":"u1",
          "messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}}]},
          {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"R"}],
          "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}"#;
    let r = decode_request(body).unwrap();
    assert_eq!(r.system, vec![Part::text("S")]);
    assert_eq!(r.max_tokens, Some(9));
    assert_eq!(r.stop, vec!["X".to_owned()]);
    assert!(r.extra.is_empty(), "{:?}", r.extra);
    assert!(matches!(
        &r.messages[0].parts[0],
        Part::Text { cache: Some(_), .. }
    ));
    assert!(matches!(
        &r.messages[0].parts[1],
        Part::Image {
            source: ImageSource::Base64 { .. },
            ..
        }
    ));
    assert!(matches!(&r.messages[1].parts[0], Part::ToolCall { name, .. } if name == "f"));
    assert!(matches!(&r.messages[2].parts[0], Part::ToolResult { call_id, .. } if call_id == "c1"));
    assert_eq!(r.tool_choice, Some(ToolChoice::Required));
}

#[test]
fn unsupported_fields_land_in_extra_and_are_refused_by_other_encoders() {
    let r = decode_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,"response_format":{"type":"json_object"}}"#).unwrap();
    // Structured output has a canonical home; the other families' encoders map it.
    assert!(r.extra.contains_key("logprobs") && !r.extra.contains_key("response_format"));
    assert_eq!(r.format, Some(crate::canonical::OutputFormat::JsonObject));
    assert_eq!(
        crate::anthropic::encode_request(&r).unwrap_err().param,
        Some("logprobs")
    );
    let mut json_only = r.clone();
    json_only.extra.clear();
    assert!(crate::anthropic::encode_request(&json_only).is_ok());
    assert!(crate::gemini::encode_request(&json_only).is_ok());
    let v: Value = serde_json::from_slice(&encode_request(&json_only).unwrap()).unwrap();
    assert_eq!(v["response_format"], json!({"type": "json_object"}));
    let r = decode_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":false,"response_format":{"type":"text"}}"#).unwrap();
    assert!(r.extra.is_empty());
    let e = decode_request(br#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#).unwrap_err();
    assert_eq!(e.param, Some("messages"));
}

#[test]
fn encode_then_decode_round_trips_the_conversation() {
    let body = br#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"R"}],"max_tokens":5,"stream":true}"#;
    let r = decode_request(body).unwrap();
    let out = encode_request(&r).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["max_completion_tokens"], 5);
    let back = decode_request(&out).unwrap();
    assert_eq!(back.messages, r.messages);
    assert_eq!(back.system, r.system);
}

#[test]
fn anthropic_style_tool_results_become_tool_messages() {
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![
                Part::ToolResult {
                    call_id: "t1".into(),
                    name: None,
                    content: vec![Part::text("ok")],
                    is_error: false,
                    cache: None,
                },
                Part::text("next?"),
            ],
        }],
        ..ChatRequest::default()
    };
    let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
    assert_eq!(
        v["messages"][0],
        json!({"role":"tool","tool_call_id":"t1","content":"ok"})
    );
    assert_eq!(v["messages"][1], json!({"role":"user","content":"next?"}));
    let mut with_top_k = req;
    with_top_k.top_k = Some(3);
    assert_eq!(
        encode_request(&with_top_k).unwrap_err().param,
        Some("top_k")
    );
}

#[test]
fn tool_result_images_follow_in_a_user_message() {
    let png = |data: &str| Part::Image {
        source: ImageSource::Base64 {
            media_type: "image/png".into(),
            data: data.into(),
        },
        detail: None,
        cache: None,
    };
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![
                Part::ToolResult {
                    call_id: "t1".into(),
                    name: None,
                    content: vec![Part::text("a chart"), png("AAA")],
                    is_error: false,
                    cache: None,
                },
                Part::ToolResult {
                    call_id: "t2".into(),
                    name: None,
                    content: vec![png("BBB")],
                    is_error: false,
                    cache: None,
                },
                Part::text("what do they show?"),
            ],
        }],
        ..ChatRequest::default()
    };
    let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
    assert_eq!(
        v["messages"],
        json!([
            {"role":"tool","tool_call_id":"t1","content":"a chart"},
            {"role":"tool","tool_call_id":"t2","content":"(the result is the images in the next message)"},
            {"role":"user","content":[
                {"type":"text","text":"Images returned by tool call t1:"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}},
                {"type":"text","text":"Images returned by tool call t2:"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,BBB"}},
                {"type":"text","text":"what do they show?"}
            ]}
        ])
    );
}

#[test]
fn usage_reports_cache_writes_when_there_are_some() {
    let mut u = Usage {
        input_tokens: 100,
        output_tokens: 5,
        cache_read_tokens: 40,
        cache_write_tokens: 30,
        reasoning_tokens: 0,
        web_searches: 0,
    };
    assert_eq!(
        encode_usage(&u)["prompt_tokens_details"],
        json!({"cached_tokens": 40, "cache_write_tokens": 30})
    );
    let body = json!({"choices": [{"message": {"content": "x"}}], "usage": encode_usage(&u)});
    assert_eq!(
        super::super::usage_from_response(body.to_string().as_bytes()),
        Some(u)
    );
    u.cache_write_tokens = 0;
    assert_eq!(
        encode_usage(&u)["prompt_tokens_details"],
        json!({"cached_tokens": 40})
    );
}

#[test]
fn more_than_one_choice_is_refused() {
    let mut req = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::text("x")],
        }],
        n: Some(2),
        ..ChatRequest::default()
    };
    let e = encode_request(&req).unwrap_err();
    assert_eq!(e.param, Some("n"));
    assert!(e.message.contains("`n`"), "{e}");
    req.n = Some(1);
    let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
    assert_eq!(v["n"], 1);
}

#[test]
fn response_round_trip() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":5,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
    let r = decode_response(body).unwrap();
    assert_eq!(r.finish, Some(FinishReason::Length));
    assert_eq!(r.usage.output_tokens, 4);
    let again = decode_response(&encode_response(&r)).unwrap();
    assert_eq!(again, r);
}
