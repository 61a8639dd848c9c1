//! Request codec tests: validation, field mapping, encode choices, and the
//! canonical → Anthropic → canonical round trip.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{decode_request, encode_request};
use crate::DecodeError;
use crate::canonical::{
    CacheControl, ChatRequest, ImageSource, Message, OutputFormat, Part, Reasoning, Role,
    SchemaSource, Tool, ToolChoice,
};

const V1: &str = "2023-06-01";
const V2: &str = "2026-10-21";

fn decode(v: &Value) -> Result<ChatRequest, DecodeError> {
    decode_request(v.to_string().as_bytes(), V1)
}

fn base() -> Value {
    json!({"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})
}

fn with(field: &str, value: Value) -> Value {
    let mut b = base();
    b[field] = value;
    b
}

fn encoded(req: &ChatRequest) -> Value {
    serde_json::from_slice(&encode_request(req).unwrap()).unwrap()
}

fn assert_param(body: &Value, param: &str) {
    let e = decode(body).expect_err(&body.to_string());
    assert_eq!(e.param, Some(param), "{body}: {e}");
    assert!(!e.message.is_empty());
}

#[test]
fn top_level_errors_name_the_param() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"max_tokens":1,"messages":[]}), "model"),
        (with("model", json!(3)), "model"),
        (with("model", json!("")), "model"),
        (json!({"model":"m","messages":[]}), "max_tokens"),
        (with("max_tokens", json!(-5)), "max_tokens"),
        (with("max_tokens", json!("100")), "max_tokens"),
        (json!({"model":"m","max_tokens":1}), "messages"),
        (with("system", json!(5)), "system"),
        (
            with(
                "system",
                json!([{"type":"image","source":{"type":"url","url":"u"}}]),
            ),
            "system",
        ),
        (
            with(
                "tools",
                json!([{"type":"web_search_20250305","name":"web_search"}]),
            ),
            "tools",
        ),
        (with("tools", json!([{"name":"f"}])), "tools"),
        (
            with("tools", json!([{"name":"","input_schema":{}}])),
            "tools",
        ),
        (with("tools", json!({})), "tools"),
        (
            with("tool_choice", json!({"type":"required"})),
            "tool_choice",
        ),
        (with("tool_choice", json!({"type":"tool"})), "tool_choice"),
        (with("tool_choice", json!("auto")), "tool_choice"),
        (
            with("thinking", json!({"type":"enabled","budget_tokens":500})),
            "thinking",
        ),
        (
            with("thinking", json!({"type":"enabled","budget_tokens":2000})),
            "thinking",
        ),
        (with("thinking", json!({"type":"sometimes"})), "thinking"),
        (with("temperature", json!(1.5)), "temperature"),
        (with("top_p", json!("x")), "top_p"),
        (with("top_k", json!(-1)), "top_k"),
        (with("stop_sequences", json!("STOP")), "stop_sequences"),
        (with("stream", json!("yes")), "stream"),
    ];
    for (body, param) in &cases {
        assert_param(body, param);
    }
    let e = decode_request(b"[1]", V1).unwrap_err();
    assert_eq!(e.param, None);
    assert!(decode_request(b"{", V1).is_err());
}

#[test]
fn message_errors_name_messages() {
    let user = |content: Value| json!([{"role":"user","content":content}]);
    let assistant = |content: Value| json!([{"role":"assistant","content":content}]);
    let cases = [
        json!([]),
        json!("hi"),
        json!([{"role":"system","content":"x"}]),
        json!([{"role":"user"}]),
        user(json!(5)),
        user(json!([{"type":"document","source":{}}])),
        user(json!([{"type":"search_result"}])),
        user(json!([{"text":"no type"}])),
        user(json!([{"type":"tool_use","id":"t","name":"f","input":{}}])),
        assistant(json!([{"type":"tool_result","tool_use_id":"t"}])),
        assistant(json!([{"type":"tool_use","id":"t","name":"f","input":"{}"}])),
        user(json!([{"type":"image","source":{"type":"file","file_id":"f"}}])),
        user(
            json!([{"type":"image","source":{"type":"base64","media_type":"image/tiff","data":"x"}}]),
        ),
        user(json!([{"type":"text","text":"x","cache_control":{"type":"forever"}}])),
        user(json!([{"type":"tool_result","tool_use_id":"t","content":[{"type":"tool_use"}]}])),
    ];
    for messages in cases {
        assert_param(&with("messages", messages), "messages");
    }
}

#[test]
fn block_errors_point_at_the_block() {
    let body = with(
        "messages",
        json!([{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"b"},{"type":"text","text":7}]}]),
    );
    let e = decode(&body).unwrap_err();
    assert!(e.message.starts_with("messages.1.content.1.text"), "{e}");
}

#[test]
fn version_2026_10_21_rejects_sampling_params() {
    for (field, value) in [
        ("temperature", json!(0.5)),
        ("top_p", json!(1.0)),
        ("top_k", json!(5)),
    ] {
        let body = with(field, value).to_string();
        let e = decode_request(body.as_bytes(), V2).unwrap_err();
        assert_eq!(e.param, Some(field));
        assert!(e.message.contains("2026-10-21"), "{e}");
        assert!(decode_request(body.as_bytes(), V1).is_ok());
    }
    // Even the default value, as the API does; null counts as absent.
    let body = with("temperature", json!(1.0)).to_string();
    assert!(decode_request(body.as_bytes(), V2).is_err());
    let body = with("temperature", Value::Null).to_string();
    assert!(decode_request(body.as_bytes(), V2).is_ok());
    let r = decode_request(with("temperature", json!(0.25)).to_string().as_bytes(), V1).unwrap();
    assert_eq!(r.temperature, Some(0.25));
}

#[test]
fn version_2026_10_21_rejects_citations_in_user_text() {
    let body = with(
        "messages",
        json!([{"role":"user","content":[{"type":"text","text":"x","citations":[{"type":"char_location"}]}]}]),
    )
    .to_string();
    assert_eq!(
        decode_request(body.as_bytes(), V2).unwrap_err().param,
        Some("messages")
    );
    assert!(decode_request(body.as_bytes(), V1).is_ok());
}

#[test]
fn decodes_every_supported_field() {
    let body = json!({
        "model": "claude-x", "max_tokens": 4000, "stream": true,
        "system": [{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral","ttl":"1h"}}],
        "messages": [
            {"role":"user","content":[
                {"type":"text","text":"Look"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},
                {"type":"image","source":{"type":"url","url":"https://x/y.png"},"cache_control":{"type":"ephemeral"}}]},
            {"role":"assistant","content":[
                {"type":"thinking","thinking":"hmm","signature":"sig"},
                {"type":"redacted_thinking","data":"opaque"},
                {"type":"tool_use","id":"toolu_1","name":"get","input":{"q":1}}]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"42"}],"is_error":true}]}
        ],
        "tools": [{"type":"custom","name":"get","description":"d","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"},"strict":true}],
        "tool_choice": {"type":"any","disable_parallel_tool_use":true},
        "stop_sequences": ["END"], "top_k": 3,
        "thinking": {"type":"enabled","budget_tokens":2048},
        "metadata": {"user_id":"u"}, "service_tier": "auto", "container": "c", "inference_geo": "us",
        "cache_control": {"type":"ephemeral"}, "mystery": {"a":1}, "nothing": null
    });
    let r = decode(&body).unwrap();
    assert_eq!(r.model, "claude-x");
    assert_eq!(r.max_tokens, Some(4000));
    assert!(r.stream);
    assert_eq!(
        r.system,
        vec![Part::Text {
            text: "Be brief.".into(),
            cache: Some(CacheControl {
                ttl: Some("1h".into())
            })
        }]
    );
    assert_eq!(r.messages.len(), 3);
    assert_eq!(
        r.messages[0].parts[1],
        Part::Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            },
            detail: None,
            cache: None
        }
    );
    assert_eq!(
        r.messages[1].parts,
        vec![
            Part::Reasoning {
                text: "hmm".into(),
                signature: Some("anyint:anthropic:sig".into()),
                redacted: None
            },
            Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("opaque".into())
            },
            Part::ToolCall {
                id: "toolu_1".into(),
                name: "get".into(),
                arguments: r#"{"q":1}"#.into()
            },
        ]
    );
    assert_eq!(
        r.messages[2].parts,
        vec![Part::ToolResult {
            call_id: "toolu_1".into(),
            name: None,
            content: vec![Part::text("42")],
            is_error: true,
            cache: None
        }]
    );
    assert_eq!(r.messages[2].role, Role::User);
    assert_eq!(r.tools[0].cache, Some(CacheControl { ttl: None }));
    assert_eq!(r.tool_choice, Some(ToolChoice::Required));
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert_eq!(r.stop, vec!["END".to_owned()]);
    assert_eq!(r.top_k, Some(3));
    assert_eq!(
        r.reasoning,
        Some(Reasoning {
            budget_tokens: Some(2048),
            effort: None
        })
    );
    // Ignored fields vanish; unknown ones are kept; nulls count as absent.
    assert_eq!(r.extra.keys().collect::<Vec<_>>(), vec!["mystery"]);
}

#[test]
fn thinking_modes_and_output_config() {
    let r = decode(&with("thinking", json!({"type":"disabled"}))).unwrap();
    assert_eq!(r.reasoning.unwrap().budget_tokens, Some(0));
    let r = decode(&with("thinking", json!({"type":"adaptive"}))).unwrap();
    assert_eq!(r.reasoning, Some(Reasoning::default()));
    let mut b = with("thinking", json!({"type":"adaptive"}));
    b["output_config"] = json!({"effort":"high"});
    let r = decode(&b).unwrap();
    assert_eq!(r.reasoning.unwrap().effort.as_deref(), Some("high"));
    assert!(r.extra.is_empty());
    let r = decode(&with(
        "output_config",
        json!({"effort":"low","format":{"type":"json_schema","schema":{}}}),
    ))
    .unwrap();
    assert_eq!(r.reasoning.unwrap().effort.as_deref(), Some("low"));
    assert_eq!(
        r.format,
        Some(OutputFormat::constrained(
            json!({}),
            SchemaSource::AnthropicOutputConfig
        ))
    );
    assert!(r.extra.is_empty());
    // What has no canonical home stays in `output_config`.
    let r = decode(&with(
        "output_config",
        json!({"effort":"low","task_budget":{"total":10}}),
    ))
    .unwrap();
    assert_eq!(
        r.extra["output_config"],
        json!({"task_budget":{"total":10}})
    );
}

#[test]
fn output_format_is_read_in_both_forms() {
    let schema = json!({"type":"object","properties":{"a":{"type":"string"}},"required":["a"],
        "additionalProperties":false});
    let r = decode(&with(
        "output_format",
        json!({"type":"json_schema","schema":schema}),
    ))
    .unwrap();
    assert_eq!(
        r.format,
        Some(OutputFormat::constrained(
            schema.clone(),
            SchemaSource::AnthropicOutputFormat
        ))
    );
    // The deprecated form goes upstream as `output_config.format`, schema as sent.
    let up: Value = serde_json::from_slice(&encode_request(&r).unwrap()).unwrap();
    assert_eq!(
        up["output_config"],
        json!({"format":{"type":"json_schema","schema":schema}})
    );
    assert!(up.get("output_format").is_none());
    let mut both = with(
        "output_format",
        json!({"type":"json_schema","schema":schema}),
    );
    both["output_config"] = json!({"format":{"type":"json_schema","schema":schema}});
    assert_eq!(decode(&both).unwrap_err().param, Some("output_format"));
    for (bad, path) in [
        (
            json!({"format":{"type":"json_object"}}),
            "output_config.format.type",
        ),
        (
            json!({"format":{"type":"json_schema"}}),
            "output_config.format.schema",
        ),
        (
            json!({"format":{"type":"json_schema","schema":[1]}}),
            "output_config.format.schema",
        ),
        (json!({"effort":3}), "output_config.effort"),
    ] {
        let e = decode(&with("output_config", bad)).unwrap_err();
        assert_eq!(e.param, Some("output_config"));
        assert!(e.message.starts_with(path), "{e}");
    }
}

#[test]
fn tool_use_and_tool_result_round_trip() {
    let body = json!({"model":"claude-x","max_tokens":1024,"system":"Be brief.",
     "messages":[
      {"role":"user","content":"Weather in Oslo?"},
      {"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oslo","days":[1,2]}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"3°C, rain"},{"type":"text","text":"Thanks"}]}],
     "tools":[{"name":"get_weather","description":"Current weather",
       "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
     "tool_choice":{"type":"auto"}});
    let req = decode(&body).unwrap();
    let out = encoded(&req);
    assert_eq!(
        out["messages"][1]["content"][1],
        json!({"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oslo","days":[1,2]}})
    );
    assert_eq!(
        out["messages"][2]["content"][0],
        json!({"type":"tool_result","tool_use_id":"toolu_01","content":"3°C, rain"})
    );
    assert_eq!(out["tool_choice"], json!({"type":"auto"}));
    assert_eq!(out["tools"], body["tools"]);
    assert_eq!(
        decode_request(&encode_request(&req).unwrap(), V1).unwrap(),
        req
    );
}

#[test]
fn cache_control_survives_decode_then_encode() {
    let body = json!({"model":"claude-x","max_tokens":1024,
      "system":[{"type":"text","text":"Long prompt","cache_control":{"type":"ephemeral","ttl":"1h"}},{"type":"text","text":"More"}],
      "messages":[
        {"role":"user","content":[{"type":"text","text":"Doc","cache_control":{"type":"ephemeral"}},
                                  {"type":"image","source":{"type":"url","url":"https://x/y.png"},"cache_control":{"type":"ephemeral","ttl":"5m"}}]},
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"r","cache_control":{"type":"ephemeral"}}],"cache_control":{"type":"ephemeral"}}]}],
      "tools":[{"name":"f","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral","ttl":"1h"}}]});
    let out = encoded(&decode(&body).unwrap());
    assert_eq!(out["system"], body["system"]);
    assert_eq!(out["messages"], body["messages"]);
    assert_eq!(out["tools"], body["tools"]);
}

#[test]
fn tool_messages_merge_into_one_user_turn() {
    let call = |id: &str| Part::ToolCall {
        id: id.into(),
        name: "f".into(),
        arguments: r#"{"x":1}"#.into(),
    };
    let result = |id: &str, text: &str| Message {
        role: Role::Tool,
        parts: vec![Part::ToolResult {
            call_id: id.into(),
            name: Some("f".into()),
            content: vec![Part::text(text)],
            is_error: false,
            cache: None,
        }],
    };
    let req = ChatRequest {
        model: "claude-x".into(),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::text("go")],
            },
            Message {
                role: Role::Assistant,
                parts: vec![Part::text(""), call("call_1"), call("call_2")],
            },
            result("call_1", "one"),
            result("call_2", "two"),
            Message {
                role: Role::User,
                parts: vec![Part::text("and?")],
            },
        ],
        ..ChatRequest::default()
    };
    let out = encoded(&req);
    assert_eq!(
        out["messages"],
        json!([
            {"role":"user","content":[{"type":"text","text":"go"}]},
            {"role":"assistant","content":[
                {"type":"tool_use","id":"call_1","name":"f","input":{"x":1}},
                {"type":"tool_use","id":"call_2","name":"f","input":{"x":1}}]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"call_1","content":"one"},
                {"type":"tool_result","tool_use_id":"call_2","content":"two"},
                {"type":"text","text":"and?"}]}
        ])
    );
    assert_eq!(out["max_tokens"], 4096);
}

#[test]
fn tool_results_are_moved_before_text_in_a_merged_user_turn() {
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::text("note")],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "c".into(),
                    name: None,
                    content: vec![],
                    is_error: false,
                    cache: None,
                }],
            },
        ],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&req)["messages"],
        json!([{"role":"user","content":[{"type":"tool_result","tool_use_id":"c"},{"type":"text","text":"note"}]}])
    );
}

#[test]
fn encode_maps_choices_sampling_and_images() {
    let mut req = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::Image {
                source: ImageSource::Url("data:image/jpeg;base64,QUJD".into()),
                detail: Some("high".into()),
                cache: None,
            }],
        }],
        tools: vec![Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"properties":{}}),
            cache: None,
        }],
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(4),
        stop: vec!["X".into()],
        stream: true,
        n: Some(1),
        ..ChatRequest::default()
    };
    let out = encoded(&req);
    assert_eq!(
        out["messages"][0]["content"][0]["source"],
        json!({"type":"base64","media_type":"image/jpeg","data":"QUJD"})
    );
    assert_eq!(
        out["tools"][0]["input_schema"],
        json!({"type":"object","properties":{}})
    );
    assert_eq!(
        (
            &out["temperature"],
            &out["top_p"],
            &out["top_k"],
            &out["stream"]
        ),
        // `top_p` is left out: Claude 4.5+ refuse it together with `temperature`.
        (&json!(0.5), &Value::Null, &json!(4), &json!(true))
    );
    assert_eq!(out["stop_sequences"], json!(["X"]));
    assert!(out.get("tool_choice").is_none());
    for (choice, parallel, expected) in [
        (
            None,
            Some(false),
            json!({"type":"auto","disable_parallel_tool_use":true}),
        ),
        (Some(ToolChoice::Auto), Some(true), json!({"type":"auto"})),
        (Some(ToolChoice::Required), None, json!({"type":"any"})),
        (Some(ToolChoice::None), Some(false), json!({"type":"none"})),
        (
            Some(ToolChoice::Tool("f".into())),
            Some(false),
            json!({"type":"tool","name":"f","disable_parallel_tool_use":true}),
        ),
    ] {
        req.tool_choice = choice;
        req.parallel_tool_calls = parallel;
        assert_eq!(encoded(&req)["tool_choice"], expected);
    }
    req.tools.clear();
    assert!(encoded(&req).get("tool_choice").is_none());
}

#[test]
fn encode_maps_reasoning_to_thinking_and_raises_max_tokens() {
    let req = |budget: Option<u64>, effort: Option<&str>, max: Option<u64>| ChatRequest {
        model: "m".into(),
        max_tokens: max,
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::text("x")],
        }],
        reasoning: Some(Reasoning {
            budget_tokens: budget,
            effort: effort.map(str::to_owned),
        }),
        ..ChatRequest::default()
    };
    let cases = [
        (
            req(Some(2000), None, Some(8000)),
            json!({"type":"enabled","budget_tokens":2000}),
            8000,
        ),
        (
            req(Some(10), None, Some(8000)),
            json!({"type":"enabled","budget_tokens":1024}),
            8000,
        ),
        (
            req(Some(5000), None, Some(100)),
            json!({"type":"enabled","budget_tokens":5000}),
            5100,
        ),
        (
            req(None, Some("high"), None),
            json!({"type":"enabled","budget_tokens":16384}),
            16384 + 4096,
        ),
        (
            req(None, Some("low"), Some(10_000)),
            json!({"type":"enabled","budget_tokens":2048}),
            10_000,
        ),
        (
            req(None, Some("medium"), None),
            json!({"type":"enabled","budget_tokens":8192}),
            8192 + 4096,
        ),
        (
            req(None, None, None),
            json!({"type":"enabled","budget_tokens":8192}),
            8192 + 4096,
        ),
        (
            req(Some(0), Some("high"), None),
            json!({"type":"disabled"}),
            4096,
        ),
        (
            req(None, Some("none"), Some(50)),
            json!({"type":"disabled"}),
            50,
        ),
    ];
    for (r, thinking, max) in cases {
        let out = encoded(&r);
        assert_eq!(out["thinking"], thinking, "{r:?}");
        assert_eq!(out["max_tokens"], max, "{r:?}");
    }
}

#[test]
fn encode_refuses_what_it_cannot_send() {
    let ok = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::text("x")],
        }],
        ..ChatRequest::default()
    };
    let mut r = ok.clone();
    r.n = Some(2);
    assert_eq!(encode_request(&r).unwrap_err().param, Some("n"));
    let mut r = ok.clone();
    r.extra.insert("logprobs".into(), json!(true));
    let e = encode_request(&r).unwrap_err();
    assert_eq!(e.param, Some("logprobs"));
    assert!(
        e.message.contains("`logprobs`") && e.message.contains("anthropic"),
        "{e}"
    );
    let mut r = ok.clone();
    r.extra.insert("x_custom".into(), json!(1));
    let e = encode_request(&r).unwrap_err();
    assert!(e.message.contains("`x_custom`"), "{e}");
    let mut r = ok.clone();
    r.messages.push(Message {
        role: Role::Assistant,
        parts: vec![Part::ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "{not json".into(),
        }],
    });
    assert_eq!(encode_request(&r).unwrap_err().param, Some("messages"));
    let mut r = ok.clone();
    r.system = vec![Part::Image {
        source: ImageSource::Url("u".into()),
        detail: None,
        cache: None,
    }];
    assert_eq!(encode_request(&r).unwrap_err().param, Some("system"));
    let mut r = ok;
    r.messages[0].parts.push(Part::ToolResult {
        call_id: "c".into(),
        name: None,
        content: vec![Part::ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "{}".into(),
        }],
        is_error: false,
        cache: None,
    });
    assert_eq!(encode_request(&r).unwrap_err().param, Some("messages"));
}

#[test]
fn encode_drops_what_the_api_refuses_and_blank_arguments_mean_none() {
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::text("q")],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Reasoning {
                        text: "unsigned, from another family".into(),
                        signature: None,
                        redacted: None,
                    },
                    Part::ToolCall {
                        id: "c".into(),
                        name: "f".into(),
                        arguments: String::new(),
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![Part::text("")],
            },
        ],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&req)["messages"],
        json!([
            {"role":"user","content":[{"type":"text","text":"q"}]},
            {"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":{}}]}
        ])
    );
}

fn reasoning(text: &str, signature: Option<&str>) -> Part {
    Part::Reasoning {
        text: text.into(),
        signature: signature.map(str::to_owned),
        redacted: None,
    }
}

#[test]
fn encode_sends_only_anthropic_signatures() {
    let call = Part::ToolCall {
        id: "c".into(),
        name: "f".into(),
        arguments: "{}".into(),
    };
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::text("q")],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    reasoning("mine", Some("anyint:anthropic:EqQB")),
                    reasoning("", Some("anyint:gemini:CiQB")),
                    reasoning("gemini thoughts", Some("anyint:gemini:CsoB")),
                    call,
                ],
            },
        ],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&req)["messages"][1]["content"],
        json!([
            {"type":"thinking","thinking":"mine","signature":"EqQB"},
            {"type":"tool_use","id":"c","name":"f","input":{}}
        ])
    );
}

#[test]
fn decode_tags_signatures_by_origin() {
    let body = with(
        "messages",
        json!([
            {"role":"user","content":"q"},
            {"role":"assistant","content":[
                {"type":"thinking","thinking":"a","signature":"EqQB"},
                {"type":"thinking","thinking":"","signature":"anyint:gemini:CiQB"},
                {"type":"text","text":"x"}
            ]}
        ]),
    );
    let r = decode(&body).unwrap();
    assert_eq!(
        r.messages[1].parts[..2],
        [
            reasoning("a", Some("anyint:anthropic:EqQB")),
            reasoning("", Some("anyint:gemini:CiQB")),
        ]
    );
}

#[test]
fn encode_never_sends_temperature_with_top_p() {
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::text("q")],
        }],
        temperature: Some(0.3),
        top_p: Some(0.9),
        ..ChatRequest::default()
    };
    let out = encoded(&req);
    assert_eq!(out["temperature"], json!(0.3));
    assert_eq!(out.get("top_p"), None);
    let only_top_p = ChatRequest {
        temperature: None,
        ..req
    };
    let out = encoded(&only_top_p);
    assert_eq!(out["top_p"], json!(0.9));
    assert_eq!(out.get("temperature"), None);
}

// === Round trip on the supported subset ===

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?\"\\\\é\n]{1,12}"
}

fn cache() -> impl Strategy<Value = Option<CacheControl>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(CacheControl { ttl: None })),
        1 => Just(Some(CacheControl { ttl: Some("1h".into()) })),
    ]
}

fn text_part() -> impl Strategy<Value = Part> {
    (text(), cache()).prop_map(|(text, cache)| Part::Text { text, cache })
}

fn args() -> impl Strategy<Value = String> {
    proptest::collection::btree_map(
        "[a-z]{1,5}",
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ],
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()).to_string())
}

fn tool_call() -> impl Strategy<Value = Part> {
    ("toolu_[a-z0-9]{1,6}", "[a-z_]{1,8}", args()).prop_map(|(id, name, arguments)| {
        Part::ToolCall {
            id,
            name,
            arguments,
        }
    })
}

fn tool_result() -> impl Strategy<Value = Part> {
    (
        "toolu_[a-z0-9]{1,6}",
        proptest::collection::vec(text_part(), 0..3),
        any::<bool>(),
        cache(),
    )
        .prop_map(|(call_id, content, is_error, cache)| Part::ToolResult {
            call_id,
            name: None,
            content,
            is_error,
            cache,
        })
}

fn user() -> impl Strategy<Value = Message> {
    // Tool results first, as the encoder puts them.
    (
        proptest::collection::vec(tool_result(), 0..3),
        proptest::collection::vec(text_part(), 0..3),
    )
        .prop_filter("non-empty", |(r, t)| !r.is_empty() || !t.is_empty())
        .prop_map(|(mut parts, texts)| {
            parts.extend(texts);
            Message {
                role: Role::User,
                parts,
            }
        })
}

fn assistant() -> impl Strategy<Value = Message> {
    proptest::collection::vec(prop_oneof![text_part(), tool_call()], 1..4).prop_map(|parts| {
        Message {
            role: Role::Assistant,
            parts,
        }
    })
}

fn tool() -> impl Strategy<Value = Tool> {
    ("[a-z_]{1,8}", proptest::option::of(text()), cache()).prop_map(|(name, description, cache)| {
        Tool {
            name,
            description,
            parameters: json!({"type":"object","properties":{"x":{"type":"string"}}}),
            cache,
        }
    })
}

fn tools() -> impl Strategy<Value = (Vec<Tool>, Option<ToolChoice>, Option<bool>)> {
    (
        proptest::collection::vec(tool(), 0..3),
        prop_oneof![
            Just(None),
            Just(Some(ToolChoice::Auto)),
            Just(Some(ToolChoice::Required)),
            Just(Some(ToolChoice::None)),
            "[a-z]{1,5}".prop_map(|n| Some(ToolChoice::Tool(n))),
        ],
        any::<bool>(),
    )
        .prop_map(|(tools, choice, serial)| {
            if tools.is_empty() {
                return (tools, None, None);
            }
            // `none` takes no disable_parallel_tool_use; without a choice, the flag implies auto.
            let parallel = (serial && matches!(choice, Some(ref c) if *c != ToolChoice::None))
                .then_some(false);
            (tools, choice, parallel)
        })
}

fn request() -> impl Strategy<Value = ChatRequest> {
    (
        proptest::collection::vec(text_part(), 0..3),
        proptest::collection::vec((user(), assistant()), 1..4),
        proptest::collection::vec(text(), 0..3),
        1025u64..100_000,
        any::<bool>(),
        proptest::option::of(0u64..50),
        tools(),
        proptest::option::of(prop_oneof![Just(0u64), 1024u64..1025]),
    )
        .prop_map(
            |(
                system,
                turns,
                stop,
                max_tokens,
                stream,
                top_k,
                (tools, tool_choice, parallel),
                budget,
            )| {
                let mut messages: Vec<Message> =
                    turns.into_iter().flat_map(|(u, a)| [u, a]).collect();
                messages.pop();
                ChatRequest {
                    model: "claude-test".into(),
                    system,
                    messages,
                    tools,
                    tool_choice,
                    parallel_tool_calls: parallel,
                    max_tokens: Some(max_tokens),
                    stop,
                    stream,
                    top_k,
                    reasoning: budget.map(|b| Reasoning {
                        budget_tokens: Some(b),
                        effort: None,
                    }),
                    ..ChatRequest::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn canonical_anthropic_canonical_is_identity(req in request()) {
        let body = encode_request(&req).unwrap();
        let back = decode_request(&body, V1).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&body, V2);
    }
}

/// Claude Code's reminders: a `role: "system"` message after the first, in order, to every
/// upstream kind (in place for OpenAI Chat and Responses, folded into the system prompt for
/// Gemini and Anthropic).
#[test]
fn system_messages_after_the_first_keep_their_place() {
    use crate::translate::{Kind, encode_request as encode_for};
    let mut b = with("system", json!("top"));
    b["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "reminder", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "later"},
        {"role": "user", "content": "again"}
    ]);
    b["context_management"] =
        json!({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]});
    let r = decode(&b).unwrap();
    let roles: Vec<Role> = r.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::System,
            Role::Assistant,
            Role::System,
            Role::User
        ]
    );
    // context_management changes cost, not meaning: dropped, not refused.
    assert!(r.extra.is_empty(), "{:?}", r.extra);
    let up = |kind| -> Value { serde_json::from_slice(&encode_for(kind, &r).unwrap()).unwrap() };
    let chat = up(Kind::OpenAi);
    let chat_roles: Vec<&str> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        chat_roles,
        ["system", "user", "system", "assistant", "system", "user"]
    );
    assert_eq!(chat["messages"][2]["content"], "reminder");
    let responses = up(Kind::Responses);
    assert_eq!(responses["instructions"], "top");
    assert_eq!(
        responses["input"][1],
        json!({"type": "message", "role": "developer",
               "content": [{"type": "input_text", "text": "reminder"}]})
    );
    let gemini = up(Kind::Gemini);
    assert_eq!(
        gemini["systemInstruction"]["parts"],
        json!([{"text": "top"}, {"text": "reminder"}, {"text": "later"}])
    );
    assert_eq!(gemini["contents"].as_array().unwrap().len(), 3);
    let anthropic = up(Kind::Anthropic);
    assert_eq!(
        anthropic["system"],
        json!([{"type": "text", "text": "top"},
               {"type": "text", "text": "reminder", "cache_control": {"type": "ephemeral"}},
               {"type": "text", "text": "later"}])
    );
    assert_eq!(anthropic["messages"].as_array().unwrap().len(), 3);
    // Not as the first message: there the system prompt goes in `system`.
    let mut first = base();
    first["messages"] =
        json!([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]);
    let e = decode(&first).unwrap_err();
    assert!(e.message.starts_with("messages.0.role"), "{e}");
    // Text only.
    b["messages"][1]["content"] =
        json!([{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]);
    assert_param(&b, "messages");
}
