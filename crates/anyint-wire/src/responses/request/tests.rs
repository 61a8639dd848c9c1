use serde_json::json;

use super::*;
use crate::canonical::signature::{self, Origin};
use crate::canonical::{ImageSource, Message, Role, ToolChoice};
use crate::responses::{BLOB_PREFIX, Echo, encode_response};

fn decode(v: &Value) -> Result<ChatRequest, DecodeError> {
    decode_request(v.to_string().as_bytes())
}

const PNG: &str = "data:image/png;base64,iVBORw0KGgo=";

#[test]
fn decodes_a_codex_style_request() {
    let body = json!({
        "model": "acme", "stream": true, "store": false,
        "include": ["reasoning.encrypted_content"],
        "instructions": "You are a coding agent.",
        "reasoning": {"effort": "medium", "summary": "auto"},
        "tools": [{"type": "function", "name": "get_weather", "strict": true,
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": "auto", "parallel_tool_calls": false, "prompt_cache_key": "thread-42",
        "client_metadata": {"x-codex-installation-id": "abc"}, "text": {"verbosity": "low"},
        "max_output_tokens": 300, "temperature": 0.2, "top_p": 0.9, "top_logprobs": 0,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"},
                                         {"type": "input_image", "image_url": PNG, "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need"},
                                                           {"type": "summary_text", "text": "weather."}],
             "encrypted_content": "gAAAAB"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "3°C, rain"},
            {"type": "message", "role": "assistant", "phase": "final_answer", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "It rains.", "annotations": []}]},
            {"role": "user", "content": "Thanks"}
        ]
    });
    let r = decode(&body).unwrap();
    assert_eq!(r.model, "acme");
    assert!(r.stream);
    assert_eq!(
        r.system,
        vec![
            Part::text("You are a coding agent."),
            Part::text("Be brief.")
        ]
    );
    assert_eq!(
        r.messages,
        vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::text("Weather in Oslo?"),
                    Part::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into()
                        },
                        detail: Some("low".into()),
                        cache: None
                    }
                ]
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Reasoning {
                        text: "Need\n\nweather.".into(),
                        signature: Some(signature::tag(Origin::OpenAi, "gAAAAB")),
                        redacted: None
                    },
                    Part::ToolCall {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into()
                    }
                ]
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "call_1".into(),
                    name: Some("get_weather".into()),
                    content: vec![Part::text("3°C, rain")],
                    is_error: false,
                    cache: None
                }]
            },
            Message {
                role: Role::Assistant,
                parts: vec![Part::text("It rains.")]
            },
            Message {
                role: Role::User,
                parts: vec![Part::text("Thanks")]
            },
        ]
    );
    assert_eq!(r.tools.len(), 1);
    assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert_eq!(r.max_tokens, Some(300));
    assert_eq!((r.temperature, r.top_p), (Some(0.2), Some(0.9)));
    assert_eq!(
        r.reasoning,
        Some(Reasoning {
            budget_tokens: None,
            effort: Some("medium".into())
        })
    );
    assert_eq!(r.format, None);
    assert!(r.extra.is_empty(), "{:?}", r.extra);
}

#[test]
fn a_string_input_is_one_user_message() {
    let r = decode(&json!({"model": "m", "input": "hi"})).unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].parts, vec![Part::text("hi")]);
    assert!(r.system.is_empty() && r.reasoning.is_none());
}

#[test]
fn a_late_developer_message_stays_in_place_as_user_text() {
    let r = decode(&json!({"model": "m", "input": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "developer", "content": [{"type": "input_text", "text": "Now be formal."}]},
        {"role": "user", "content": "c"}
    ]}))
    .unwrap();
    assert_eq!(r.system, vec![Part::text("S")]);
    let turns: Vec<(Role, Vec<Part>)> = r.messages.into_iter().map(|m| (m.role, m.parts)).collect();
    assert_eq!(
        turns,
        vec![
            (Role::User, vec![Part::text("a")]),
            (Role::Assistant, vec![Part::text("b")]),
            (Role::User, vec![Part::text("Now be formal.")]),
            (Role::User, vec![Part::text("c")]),
        ]
    );
}

#[test]
fn custom_and_namespaced_tool_history_round_trips_to_the_client() {
    let body = json!({
        "model": "m",
        "tools": [
            {"type": "custom", "name": "apply_patch", "description": "Patch files."},
            {"type": "namespace", "name": "calendar", "description": "Calendar.", "tools": [
                {"type": "function", "name": "list_events", "parameters": {"type": "object"}}]}
        ],
        "input": [
            {"role": "user", "content": "fix it"},
            {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done"},
            {"type": "function_call", "call_id": "call_c", "namespace": "calendar", "name": "list_events", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_c", "output": [{"type": "input_text", "text": "[]"}]}
        ]
    });
    let r = decode(&body).unwrap();
    let names: Vec<&str> = r.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["apply_patch", "calendar__list_events"]);
    assert_eq!(
        r.messages[1].parts,
        vec![Part::ToolCall {
            id: "call_p".into(),
            name: "apply_patch".into(),
            arguments: json!({"input": "*** Begin Patch\n*** End Patch"}).to_string()
        }]
    );
    assert!(
        matches!(&r.messages[2].parts[0], Part::ToolResult { name: Some(n), content, .. } if n == "apply_patch" && *content == vec![Part::text("Done")])
    );
    assert!(
        matches!(&r.messages[3].parts[0], Part::ToolCall { name, .. } if name == "calendar__list_events")
    );
    assert!(
        matches!(&r.messages[4].parts[0], Part::ToolResult { name: Some(n), .. } if n == "calendar__list_events")
    );

    // The model calls them again: the client gets its own tool shapes back.
    let echo = Echo::new(body.to_string().as_bytes(), "resp_x", 1).unwrap();
    let resp = crate::canonical::ChatResponse {
        model: "m".into(),
        parts: vec![
            Part::ToolCall {
                id: "call_q".into(),
                name: "apply_patch".into(),
                arguments: "{\"input\":\"*** Begin Patch\"}".into(),
            },
            Part::ToolCall {
                id: "call_d".into(),
                name: "calendar__list_events".into(),
                arguments: "{\"day\":1}".into(),
            },
        ],
        finish: Some(crate::canonical::FinishReason::ToolCalls),
        ..Default::default()
    };
    let out = encode_response(&resp, &echo);
    assert_eq!(
        out["output"],
        json!([
            {"id": "ctc_x_0", "type": "custom_tool_call", "status": "completed", "call_id": "call_q",
             "name": "apply_patch", "input": "*** Begin Patch"},
            {"id": "fc_x_1", "type": "function_call", "status": "completed", "call_id": "call_d",
             "name": "list_events", "namespace": "calendar", "arguments": "{\"day\":1}"}
        ])
    );
    // And replaying that output decodes to the same canonical calls.
    let mut next = body.clone();
    let input = next["input"].as_array_mut().unwrap();
    input.extend(out["output"].as_array().unwrap().iter().cloned());
    let again = decode(&next).unwrap();
    assert_eq!(again.messages.last().unwrap().parts, resp.parts);
}

#[test]
fn reasoning_blobs_carry_anthropic_and_gemini_signatures_back() {
    let anthropic_sig = signature::tag(Origin::Anthropic, "EqQBCgIYAhIM");
    let gemini_sig = signature::tag(Origin::Gemini, "CiQBVKhc7z");
    let resp = crate::canonical::ChatResponse {
        model: "m".into(),
        parts: vec![
            Part::Reasoning {
                text: "Claude thinks.".into(),
                signature: Some(anthropic_sig.clone()),
                redacted: None,
            },
            Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("REDACTED_DATA".into()),
            },
            Part::Reasoning {
                text: String::new(),
                signature: Some(gemini_sig.clone()),
                redacted: None,
            },
            Part::ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            },
        ],
        ..Default::default()
    };
    let request = json!({"model": "m", "include": ["reasoning.encrypted_content"], "input": "x",
                         "tools": [{"type": "function", "name": "f"}]});
    let echo = Echo::new(request.to_string().as_bytes(), "resp_1", 1).unwrap();
    let out = encode_response(&resp, &echo);
    let items = out["output"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for item in &items[..3] {
        let enc = item["encrypted_content"].as_str().unwrap();
        assert!(enc.starts_with(BLOB_PREFIX), "{enc}");
        assert!(!enc.contains("EqQB") && !enc.contains("anyint:"), "{enc}");
    }
    assert_eq!(
        items[0]["summary"],
        json!([{"type": "summary_text", "text": "Claude thinks."}])
    );
    // The client replays the items; the parts come back with their tagged signatures.
    let mut next = request.clone();
    next["input"] = json!([{"role": "user", "content": "x"}]);
    next["input"]
        .as_array_mut()
        .unwrap()
        .extend(items.iter().cloned());
    next["input"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "function_call_output", "call_id": "call_1", "output": "ok"}));
    let r = decode(&next).unwrap();
    assert_eq!(r.messages[1].parts, resp.parts);
    // Each goes back only to its issuer.
    let mut to_anthropic = r.clone();
    to_anthropic.reasoning = None;
    let a: Value =
        serde_json::from_slice(&crate::anthropic::encode_request(&to_anthropic).unwrap()).unwrap();
    assert_eq!(
        a["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Claude thinks.", "signature": "EqQBCgIYAhIM"})
    );
    assert_eq!(
        a["messages"][1]["content"][1],
        json!({"type": "redacted_thinking", "data": "REDACTED_DATA"})
    );
    let mut to_gemini = r.clone();
    to_gemini.model = "gemini-3-flash-preview".into();
    let g: Value =
        serde_json::from_slice(&crate::gemini::encode_request(&to_gemini).unwrap()).unwrap();
    assert_eq!(
        g["contents"][1]["parts"][0]["thoughtSignature"],
        "CiQBVKhc7z"
    );
    assert!(!g.to_string().contains("EqQB"));
    let o: Value = serde_json::from_slice(&crate::responses::encode_request(&r).unwrap()).unwrap();
    assert!(!o.to_string().contains("EqQB") && !o.to_string().contains("CiQB"));
    assert!(!o.to_string().contains("anyint"));
}

#[test]
fn a_tampered_gateway_blob_is_refused() {
    let e = decode(&json!({"model": "m", "input": [
        {"role": "user", "content": "x"},
        {"type": "reasoning", "summary": [], "encrypted_content": "anyint1.%%%"}
    ]}))
    .unwrap_err();
    assert_eq!(e.param, Some("input"));
    assert_eq!(e.param_path(), Some("input[1].encrypted_content"));
}

#[test]
fn structured_output_effort_and_top_logprobs() {
    let r = decode(&json!({"model": "m", "input": "x", "top_logprobs": 3,
        "reasoning": {"effort": "none"},
        "text": {"format": {"type": "json_schema", "name": "answer", "strict": true,
                            "schema": {"type": "object"}}, "verbosity": "high"}}))
    .unwrap();
    assert_eq!(
        r.format,
        Some(OutputFormat::JsonSchema {
            name: "answer".into(),
            schema: Some(json!({"type": "object"})),
            description: None,
            strict: Some(true),
            source: crate::canonical::SchemaSource::ResponsesText,
        })
    );
    assert_eq!(r.reasoning.unwrap().effort.as_deref(), Some("none"));
    assert_eq!(r.extra.get("top_logprobs"), Some(&json!(3)));
    // Only OpenAI upstreams take top_logprobs.
    let up = decode(&json!({"model": "m", "input": "x", "top_logprobs": 3})).unwrap();
    assert!(crate::anthropic::encode_request(&up).is_err());
    assert_eq!(
        crate::gemini::encode_request(&up).unwrap_err().param,
        Some("top_logprobs")
    );
    let chat: Value = serde_json::from_slice(&crate::openai::encode_request(&up).unwrap()).unwrap();
    assert_eq!(
        (chat["logprobs"].clone(), chat["top_logprobs"].clone()),
        (json!(true), json!(3))
    );
    let r = decode(
        &json!({"model": "m", "input": "x", "reasoning": {"summary": "auto"},
                           "text": {"format": {"type": "json_object"}}}),
    )
    .unwrap();
    assert_eq!(r.reasoning, Some(Reasoning::default()));
    assert_eq!(r.format, Some(OutputFormat::JsonObject));
    // Chat writes it back as response_format (adding the word "json" OpenAI requires),
    // Anthropic as its forced JSON tool, Gemini as the JSON MIME type.
    let chat: Value = serde_json::from_slice(&crate::openai::encode_request(&r).unwrap()).unwrap();
    assert_eq!(chat["response_format"], json!({"type": "json_object"}));
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": "Respond in JSON."})
    );
    // Anthropic's forced tool and extended thinking do not mix.
    let e = crate::anthropic::encode_request(&r).unwrap_err();
    assert!(e.message.contains("extended thinking"), "{e}");
    let mut r = r;
    r.reasoning = None;
    let claude: Value =
        serde_json::from_slice(&crate::anthropic::encode_request(&r).unwrap()).unwrap();
    assert_eq!(
        claude["tool_choice"],
        json!({"type": "tool", "name": crate::anthropic::JSON_TOOL, "disable_parallel_tool_use": true})
    );
    let gemini: Value =
        serde_json::from_slice(&crate::gemini::encode_request(&r).unwrap()).unwrap();
    assert_eq!(
        gemini["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
}

#[test]
fn malformed_requests_name_the_param() {
    let cases = [
        (json!({"model": "m"}), "input", "input"),
        (json!({"model": "m", "input": []}), "input", "input"),
        (
            json!({"model": "m", "input": [{"role": "system", "content": "only system"}]}),
            "input",
            "input",
        ),
        (
            json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}),
            "input",
            "input[0].role",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "output_audio"}]}]}),
            "input",
            "input[0].content[0].type",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}),
            "input",
            "input[0].content[0].text",
        ),
        (
            json!({"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": PNG}]}]}),
            "input",
            "input[0].content[0].type",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
            "input",
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}),
            "input",
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}),
            "tools",
            "tools[0].name",
        ),
        (
            json!({"model": "m", "input": "x", "tool_choice": "sometimes"}),
            "tool_choice",
            "tool_choice",
        ),
        (
            json!({"model": "m", "input": "x", "max_output_tokens": -1}),
            "max_output_tokens",
            "max_output_tokens",
        ),
        (
            json!({"model": "m", "input": "x", "temperature": "hot"}),
            "temperature",
            "temperature",
        ),
        (
            json!({"model": "m", "input": "x", "top_logprobs": 21}),
            "top_logprobs",
            "top_logprobs",
        ),
        (
            json!({"model": "m", "input": "x", "reasoning": "high"}),
            "reasoning",
            "reasoning",
        ),
        (
            json!({"model": "m", "input": "x", "reasoning": {"effort": 3}}),
            "reasoning",
            "reasoning.effort",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}),
            "text",
            "text.format.schema",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}),
            "text",
            "text.format.type",
        ),
        (
            json!({"model": "m", "input": "x", "parallel_tool_calls": "no"}),
            "parallel_tool_calls",
            "parallel_tool_calls",
        ),
    ];
    for (body, param, path) in cases {
        let e = decode(&body).unwrap_err();
        assert_eq!(e.param, Some(param), "{body}: {e}");
        assert_eq!(e.param_path(), Some(path), "{body}: {e}");
    }
}

#[test]
fn requests_round_trip_through_the_upstream_encoder() {
    let body = json!({
        "model": "m", "instructions": "S", "max_output_tokens": 50, "temperature": 0.5,
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": true,
        "reasoning": {"effort": "high"}, "text": {"format": {"type": "json_object"}},
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                         {"type": "input_image", "image_url": "https://x/y.png", "detail": "high"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}], "encrypted_content": "gAAAAB"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
            {"role": "user", "content": "c, in JSON"}
        ]
    });
    let r = decode(&body).unwrap();
    let up = crate::responses::encode_request(&r).unwrap();
    let back = decode_request(&up).unwrap();
    assert_eq!(back, r);
}

#[test]
fn web_search_is_decoded_only_where_the_route_serves_it() {
    let body = json!({
        "model": "acme", "max_tool_calls": 2,
        "tools": [{"type": "function", "name": "shell"},
                  {"type": "web_search", "external_web_access": false,
                   "filters": {"allowed_domains": ["docs.rs"]}}],
        "input": [
            {"role": "user", "content": "search the docs"},
            // Codex replays searches without id or sources.
            {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "docs"}},
            {"role": "assistant", "content": "Found them."},
            {"role": "user", "content": "more"}
        ]
    });
    let bytes = body.to_string().into_bytes();
    let r = decode_request_with(&bytes, true).unwrap();
    let ws = r.web_search.unwrap();
    assert_eq!(
        (ws.path.as_str(), ws.allowed_domains.as_slice(), ws.max_uses),
        ("tools[1]", ["docs.rs".to_owned()].as_slice(), Some(2))
    );
    assert_eq!(
        r.tools.len(),
        1,
        "the function stays, the search is not a function"
    );
    // The replayed search is dropped; the turns around it stay.
    assert_eq!(r.messages.len(), 3);
    assert_eq!(r.messages[1].parts, [Part::text("Found them.")]);

    // Without the setting: today's refusal, naming the tool and Codex's switch.
    let e = decode_request(&bytes).unwrap_err();
    assert_eq!(e.param_path(), Some("tools[1]"));
    assert!(
        e.message
            .starts_with("the built-in tool `web_search` is not supported")
            && e.message.contains("web_search = \"disabled\""),
        "{e}"
    );
    // A replayed search alone is fine either way.
    let replay = json!({"model": "acme", "input": [
        {"role": "user", "content": "hi"},
        {"type": "web_search_call", "status": "completed", "action": {"type": "search"}}]});
    assert!(decode(&replay).unwrap().web_search.is_none());

    // Every other built-in tool, and forcing the search, stay refused.
    for (extra, path) in [
        (
            json!({"tools": [{"type": "web_search"}, {"type": "file_search"}]}),
            "tools[1]",
        ),
        (
            json!({"tools": [{"type": "web_search_preview"}], "tool_choice": {"type": "web_search_preview"}}),
            "tool_choice",
        ),
    ] {
        let mut b = json!({"model": "acme", "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        let e = decode_request_with(b.to_string().as_bytes(), true).unwrap_err();
        assert_eq!(e.param_path(), Some(path), "{b}");
    }
}
