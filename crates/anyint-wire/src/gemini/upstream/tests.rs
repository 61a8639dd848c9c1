//! Upstream request encoder tests: tool results and their names, what is refused, tools and
//! generation config, and which thought signatures reach Gemini and where.

use super::*;
use crate::canonical::{CacheControl, ImageSource, Message, Reasoning, Tool};

fn encode(req: &ChatRequest) -> Value {
    serde_json::from_slice(&encode_request(req).unwrap()).unwrap()
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        parts: vec![Part::text(text)],
    }
}

#[test]
fn tool_role_becomes_function_response_with_looked_up_name() {
    let req = ChatRequest {
        model: "gemini-2.5-flash".into(),
        system: vec![Part::Text {
            text: "Be brief.".into(),
            cache: Some(CacheControl { ttl: None }),
        }],
        messages: vec![
            user("Weather in Oslo and Rome?"),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::ToolCall {
                        id: "c1".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Oslo"}"#.into(),
                    },
                    Part::ToolCall {
                        id: "c2".into(),
                        name: "get_time".into(),
                        arguments: String::new(),
                    },
                ],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "c1".into(),
                    name: None,
                    content: vec![Part::text("3C rain")],
                    is_error: false,
                    cache: None,
                }],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "c2".into(),
                    name: None,
                    content: vec![
                        Part::text(r#"{"oops":1}"#),
                        Part::Image {
                            source: ImageSource::Url("https://x/a.png".into()),
                            detail: None,
                            cache: None,
                        },
                    ],
                    is_error: true,
                    cache: None,
                }],
            },
            user("thanks"),
        ],
        ..ChatRequest::default()
    };
    assert_eq!(
        encode(&req),
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Weather in Oslo and Rome?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}},
                    {"functionCall": {"name": "get_time", "args": {}, "id": "c2"}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"result": "3C rain"}, "id": "c1"}},
                    {"functionResponse": {"name": "get_time", "response": {"error": {"oops": 1}}, "id": "c2"}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://x/a.png"}},
                    {"text": "thanks"}
                ]}
            ]
        })
    );
}

#[test]
fn unknown_tool_result_name_extra_and_n_are_refused() {
    let orphan = ChatRequest {
        messages: vec![Message {
            role: Role::Tool,
            parts: vec![Part::ToolResult {
                call_id: "nope".into(),
                name: None,
                content: vec![],
                is_error: false,
                cache: None,
            }],
        }],
        ..ChatRequest::default()
    };
    assert_eq!(encode_request(&orphan).unwrap_err().param, Some("messages"));
    let mut req = ChatRequest {
        messages: vec![user("x")],
        ..ChatRequest::default()
    };
    req.extra.insert("logprobs".into(), true.into());
    let e = encode_request(&req).unwrap_err();
    assert_eq!(e.param, Some("logprobs"));
    assert_eq!(
        e.message,
        "`logprobs` is not supported by this model's upstream (gemini)"
    );
    req.extra.clear();
    req.extra.insert("x_custom".into(), true.into());
    assert_eq!(encode_request(&req).unwrap_err().param, None);
    req.extra.clear();
    req.n = Some(2);
    assert_eq!(encode_request(&req).unwrap_err().param, Some("n"));
    req.n = None;
    req.messages.clear();
    assert_eq!(encode_request(&req).unwrap_err().param, Some("messages"));
}

#[test]
fn tools_choice_and_generation_config() {
    let req = ChatRequest {
        model: "models/gemini-3-pro-preview".into(),
        messages: vec![user("x")],
        tools: vec![Tool {
            name: "f".into(),
            description: Some("does f".into()),
            parameters: json!({"type": "object"}),
            cache: None,
        }],
        tool_choice: Some(ToolChoice::Tool("f".into())),
        max_tokens: Some(10),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(3),
        stop: vec!["END".into()],
        reasoning: Some(Reasoning {
            budget_tokens: None,
            effort: Some("low".into()),
        }),
        ..ChatRequest::default()
    };
    let body = encode(&req);
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{"name": "f", "description": "does f", "parametersJsonSchema": {"type": "object"}}]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
    );
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 10, "temperature": 0.5, "topP": 0.9, "topK": 3,
            "stopSequences": ["END"], "thinkingConfig": {"thinkingLevel": "low", "includeThoughts": true}})
    );
    let old = ChatRequest {
        model: "gemini-2.5-flash".into(),
        ..req.clone()
    };
    assert_eq!(
        encode(&old)["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    for (choice, mode) in [
        (ToolChoice::Auto, "AUTO"),
        (ToolChoice::None, "NONE"),
        (ToolChoice::Required, "ANY"),
    ] {
        let r = ChatRequest {
            tool_choice: Some(choice),
            ..req.clone()
        };
        assert_eq!(
            encode(&r)["toolConfig"]["functionCallingConfig"]["mode"],
            mode
        );
    }
}

#[test]
fn gemini_3_calls_get_a_placeholder_signature() {
    let call = |id: &str| Part::ToolCall {
        id: id.into(),
        name: "f".into(),
        arguments: "{}".into(),
    };
    let mut req = ChatRequest {
        model: "gemini-3-flash".into(),
        messages: vec![
            user("x"),
            Message {
                role: Role::Assistant,
                parts: vec![Part::text("let me see"), call("a"), call("b")],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "a".into(),
                    name: None,
                    content: vec![Part::text("{}")],
                    is_error: false,
                    cache: None,
                }],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Reasoning {
                        text: String::new(),
                        signature: Some("REAL".into()),
                        redacted: None,
                    },
                    call("c"),
                ],
            },
        ],
        ..ChatRequest::default()
    };
    let body = encode(&req);
    assert_eq!(
        body["contents"][1]["parts"][0].get("thoughtSignature"),
        None
    );
    assert_eq!(
        body["contents"][1]["parts"][1]["thoughtSignature"],
        SKIP_SIGNATURE
    );
    assert_eq!(
        body["contents"][1]["parts"][2].get("thoughtSignature"),
        None
    );
    assert_eq!(body["contents"][3]["parts"][0]["thoughtSignature"], "REAL");
    req.model = "gemini-2.5-pro".into();
    let body = encode(&req);
    assert_eq!(
        body["contents"][1]["parts"][1].get("thoughtSignature"),
        None
    );
}

fn reasoning(text: &str, signature: &str) -> Part {
    Part::Reasoning {
        text: text.into(),
        signature: Some(signature.into()),
        redacted: None,
    }
}

fn call(id: &str) -> Part {
    Part::ToolCall {
        id: id.into(),
        name: "f".into(),
        arguments: "{}".into(),
    }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        parts,
    }
}

#[test]
fn only_gemini_signatures_are_sent() {
    let req = ChatRequest {
        model: "gemini-3-flash-preview".into(),
        messages: vec![
            user("x"),
            assistant(vec![
                reasoning("claude thinking", "anyint:anthropic:EqQB"),
                reasoning("", "anyint:anthropic:EqQC"),
                call("a"),
                Part::text("and"),
            ]),
            user("y"),
            assistant(vec![reasoning("", "anyint:gemini:CiQB"), Part::text("ok")]),
        ],
        ..ChatRequest::default()
    };
    let body = encode(&req);
    assert_eq!(
        body["contents"][1]["parts"],
        json!([
            // The Anthropic signatures are gone; the placeholder signs the call.
            {"functionCall": {"name": "f", "args": {}, "id": "a"}, "thoughtSignature": SKIP_SIGNATURE},
            {"text": "and"}
        ])
    );
    assert_eq!(
        body["contents"][3]["parts"],
        json!([{"text": "ok", "thoughtSignature": "CiQB"}])
    );
}

#[test]
fn a_signed_thought_before_a_call_signs_the_call() {
    let req = ChatRequest {
        model: "gemini-2.5-flash".into(),
        messages: vec![
            user("x"),
            assistant(vec![
                reasoning("plan", "anyint:gemini:S1"),
                call("a"),
                call("b"),
            ]),
            user("y"),
            assistant(vec![
                reasoning("musing", "anyint:gemini:S2"),
                Part::text("hi"),
            ]),
            user("z"),
            assistant(vec![reasoning("last", "anyint:gemini:S3")]),
        ],
        ..ChatRequest::default()
    };
    let body = encode(&req);
    assert_eq!(
        body["contents"][1]["parts"],
        json!([
            {"text": "plan", "thought": true},
            {"functionCall": {"name": "f", "args": {}, "id": "a"}, "thoughtSignature": "S1"},
            {"functionCall": {"name": "f", "args": {}, "id": "b"}}
        ])
    );
    assert_eq!(
        body["contents"][3]["parts"],
        json!([{"text": "musing", "thought": true, "thoughtSignature": "S2"}, {"text": "hi"}])
    );
    assert_eq!(
        body["contents"][5]["parts"],
        json!([{"text": "last", "thought": true, "thoughtSignature": "S3"}])
    );
}

fn tool(name: &str) -> crate::canonical::Tool {
    crate::canonical::Tool {
        name: name.into(),
        description: None,
        parameters: json!({"type": "object"}),
        cache: None,
    }
}

#[test]
fn parallel_tool_calls_false_adds_the_one_call_hint() {
    let mut req = ChatRequest {
        messages: vec![user("x")],
        system: vec![Part::text("Be brief.")],
        tools: vec![tool("f")],
        parallel_tool_calls: Some(false),
        ..ChatRequest::default()
    };
    let system = |req: &ChatRequest| encode(req)["systemInstruction"]["parts"].clone();
    assert_eq!(
        system(&req),
        json!([{"text": "Be brief."}, {"text": super::ONE_CALL_HINT}])
    );
    // Nothing to call, or calls allowed in parallel: no hint.
    req.tool_choice = Some(ToolChoice::None);
    assert_eq!(system(&req), json!([{"text": "Be brief."}]));
    req.tool_choice = None;
    req.parallel_tool_calls = Some(true);
    assert_eq!(system(&req), json!([{"text": "Be brief."}]));
    req.parallel_tool_calls = Some(false);
    req.tools.clear();
    assert_eq!(system(&req), json!([{"text": "Be brief."}]));
}

fn with_format(format: OutputFormat) -> ChatRequest {
    ChatRequest {
        model: "gemini-3-flash-preview".into(),
        messages: vec![user("x")],
        format: Some(format),
        ..ChatRequest::default()
    }
}

fn strict_schema(schema: Value) -> OutputFormat {
    OutputFormat::JsonSchema {
        name: "out".into(),
        schema: Some(schema),
        description: None,
        strict: Some(true),
        source: SchemaSource::ChatResponseFormat,
    }
}

#[test]
fn structured_output_is_json_mime_type_and_schema() {
    let body = encode(&with_format(OutputFormat::JsonObject));
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["a", "b"],
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"a": {"type": ["string", "null"], "format": "date"},
                       "b": {"const": "x", "description": "always x"}}});
    let body = encode(&with_format(strict_schema(schema)));
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": {
            "type": "object", "additionalProperties": false, "required": ["a", "b"],
            "properties": {
                "a": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
                "b": {"enum": ["x"], "description": "always x"}}}})
    );
    // Gemini's own schemas go back as sent.
    let own = json!({"type": "array", "items": {"type": "string", "minLength": 2}});
    let body = encode(&with_format(OutputFormat::constrained(
        own.clone(),
        SchemaSource::GeminiJsonSchema,
    )));
    assert_eq!(body["generationConfig"]["responseJsonSchema"], own);
    let body = encode(&with_format(OutputFormat::constrained(
        json!({"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}),
        SchemaSource::GeminiSchema,
    )));
    assert_eq!(
        body["generationConfig"]["responseSchema"],
        json!({"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "nullable": true}}})
    );
}

#[test]
fn keywords_gemini_ignores_are_refused_only_under_a_guarantee() {
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 10}}});
    let e = encode_request(&with_format(strict_schema(schema.clone()))).unwrap_err();
    assert_eq!(e.param, Some("response_format"));
    assert_eq!(
        e.path.as_deref(),
        Some("response_format.json_schema.schema.properties.name.maxLength")
    );
    let OutputFormat::JsonSchema {
        name,
        schema,
        description,
        source,
        ..
    } = strict_schema(schema)
    else {
        unreachable!()
    };
    let hint = OutputFormat::JsonSchema {
        name,
        schema,
        description,
        strict: None,
        source,
    };
    let body = encode(&with_format(hint));
    assert_eq!(
        body["generationConfig"]["responseJsonSchema"]["properties"]["name"],
        json!({"type": "string"})
    );
}

#[test]
fn json_output_and_forced_calls_do_not_mix() {
    let mut req = with_format(OutputFormat::JsonObject);
    req.tools.push(tool("f"));
    req.tool_choice = Some(ToolChoice::Required);
    let e = encode_request(&req).unwrap_err();
    assert_eq!(e.param, Some("response_format"));
    assert!(e.message.contains("forced tool call"), "{e}");
    req.tool_choice = Some(ToolChoice::Tool("f".into()));
    assert!(encode_request(&req).is_err());
    // AUTO with JSON: Gemini 3 takes both, 2.x is not sent both.
    req.tool_choice = Some(ToolChoice::Auto);
    assert!(encode_request(&req).is_ok());
    req.model = "gemini-2.5-flash".into();
    let e = encode_request(&req).unwrap_err();
    assert!(e.message.contains("2.x"), "{e}");
    req.tool_choice = Some(ToolChoice::None);
    assert!(encode_request(&req).is_ok());
}
