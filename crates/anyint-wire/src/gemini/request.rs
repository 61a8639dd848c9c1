//! A Gemini client's GenerateContentRequest → canonical [`ChatRequest`] (mapping rules in the
//! module docs of [`crate::gemini`]).

use serde_json::{Map, Value};

use super::fields::{as_i64, as_u64, camel, get, get_str, list};
use super::parts::PartsDecoder;
use super::schema::openapi_to_json_schema;
use crate::DecodeError;
use crate::canonical::{
    ChatRequest, Message, OutputFormat, Part, Reasoning, Role, SchemaSource, Tool, ToolChoice,
};

/// Top-level fields with a canonical home or a decision already made.
const HANDLED: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "labels",
    "model",
];

/// Decodes a Gemini client's request body. `model` and `stream` come from the URL
/// (`models/{model}:generateContent` or `:streamGenerateContent`). Errors name the top-level
/// field at fault.
pub fn decode_request(body: &[u8], model: &str, stream: bool) -> Result<ChatRequest, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(DecodeError::body("the request body must be a JSON object"));
    };
    let mut req = ChatRequest {
        model: model.to_owned(),
        stream,
        ..ChatRequest::default()
    };
    if let Some(sys) = get(&obj, "systemInstruction") {
        req.system = system(sys)?;
    }
    let mut decoder = PartsDecoder::request();
    req.messages = contents(get(&obj, "contents"), &mut decoder, &mut req.extra)?;
    if let Some(tools) = get(&obj, "tools") {
        req.tools = decode_tools(tools, &mut req.extra)?;
    }
    if let Some(cfg) = get(&obj, "toolConfig") {
        tool_config(cfg, &mut req)?;
    }
    if let Some(cfg) = get(&obj, "generationConfig") {
        generation_config(cfg, &mut req)?;
    }
    for (key, value) in &obj {
        let key = camel(key);
        if !HANDLED.contains(&key.as_str()) && !value.is_null() {
            // `cachedContent` and any field this codec does not know.
            req.extra.insert(key, value.clone());
        }
    }
    Ok(req)
}

fn system(sys: &Value) -> Result<Vec<Part>, DecodeError> {
    let err = |m: &str| DecodeError::field("systemInstruction", format!("systemInstruction{m}"));
    let parts = match sys {
        Value::Object(o) => get(o, "parts").map(list).unwrap_or_default(),
        // A bare string is not in the API, but is unambiguous.
        Value::String(s) => return Ok(vec![Part::text(s.as_str())]),
        _ => {
            return Err(err(
                " must be an object like {\"parts\":[{\"text\":\"…\"}]}",
            ));
        }
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.as_object()
                .and_then(|o| get_str(o, "text"))
                .map(Part::text)
                .ok_or_else(|| err(&format!(".parts[{i}] must be a text part")))
        })
        .collect()
}

fn contents(
    raw: Option<&Value>,
    decoder: &mut PartsDecoder,
    extra: &mut Map<String, Value>,
) -> Result<Vec<Message>, DecodeError> {
    let err = |m: String| DecodeError::field("contents", m);
    let Some(raw) = raw else {
        return Err(err("contents is not specified".into()));
    };
    let items = list(raw);
    if items.is_empty() {
        return Err(err("contents must not be empty".into()));
    }
    let mut messages = Vec::with_capacity(items.len());
    let mut unsupported: Map<String, Value> = Map::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(content) = item.as_object() else {
            return Err(err(format!("contents[{i}] must be an object")));
        };
        let role = match get(content, "role") {
            None => Role::User,
            Some(Value::String(r)) if r == "user" => Role::User,
            Some(Value::String(r)) if r == "model" => Role::Assistant,
            Some(Value::String(r)) if r.is_empty() => Role::User,
            Some(_) => {
                return Err(err(format!(
                    "contents[{i}].role: please use a valid role: user, model"
                )));
            }
        };
        let parts = get(content, "parts").map(list).unwrap_or_default();
        if parts.is_empty() {
            return Err(err(format!("contents[{i}].parts must not be empty")));
        }
        let mut out = Vec::with_capacity(parts.len());
        for (j, part) in parts.into_iter().enumerate() {
            let one = decoder
                .decode(part)
                .map_err(|m| err(format!("contents[{i}].parts[{j}] {m}")))?;
            out.extend(one.parts);
            if let Some((key, value)) = one.unsupported {
                let slot = unsupported
                    .entry(key)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = slot {
                    items.push(value);
                }
            }
        }
        if !out.is_empty() {
            messages.push(Message { role, parts: out });
        }
    }
    extra.extend(unsupported);
    Ok(messages)
}

fn decode_tools(raw: &Value, extra: &mut Map<String, Value>) -> Result<Vec<Tool>, DecodeError> {
    let err = |m: String| DecodeError::field("tools", m);
    let mut tools = Vec::new();
    let mut other = Vec::new();
    for (i, tool) in list(raw).into_iter().enumerate() {
        let Some(tool) = tool.as_object() else {
            return Err(err(format!("tools[{i}] must be an object")));
        };
        let mut rest = Map::new();
        for (key, value) in tool {
            if camel(key) != "functionDeclarations" {
                rest.insert(key.clone(), value.clone());
            }
        }
        if !rest.is_empty() {
            other.push(Value::Object(rest));
        }
        let Some(decls) = get(tool, "functionDeclarations") else {
            continue;
        };
        for (j, decl) in list(decls).into_iter().enumerate() {
            let at = format!("tools[{i}].functionDeclarations[{j}]");
            let Some(decl) = decl.as_object() else {
                return Err(err(format!("{at} must be an object")));
            };
            let name = get_str(decl, "name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| err(format!("{at}.name is required")))?;
            let parameters = match (get(decl, "parametersJsonSchema"), get(decl, "parameters")) {
                (Some(schema), _) => schema.clone(),
                (None, Some(schema)) => openapi_to_json_schema(schema, false),
                (None, None) => serde_json::json!({"type": "object", "properties": {}}),
            };
            tools.push(Tool {
                name: name.to_owned(),
                description: get_str(decl, "description").map(str::to_owned),
                parameters,
                cache: None,
            });
        }
    }
    if !other.is_empty() {
        // Google's own tools (search, code execution, …) have no canonical form.
        extra.insert("tools".into(), Value::Array(other));
    }
    Ok(tools)
}

fn tool_config(raw: &Value, req: &mut ChatRequest) -> Result<(), DecodeError> {
    let err = |m: &str| DecodeError::field("toolConfig", m.to_owned());
    let Some(cfg) = raw.as_object() else {
        return Err(err("toolConfig must be an object"));
    };
    let Some(fcc) = get(cfg, "functionCallingConfig") else {
        return Ok(());
    };
    let Some(fcc) = fcc.as_object() else {
        return Err(err("toolConfig.functionCallingConfig must be an object"));
    };
    let allowed: Vec<&str> = match get(fcc, "allowedFunctionNames") {
        None => Vec::new(),
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            return Err(err(
                "toolConfig.functionCallingConfig.allowedFunctionNames must be an array of names",
            ));
        }
    };
    let mode = get_str(fcc, "mode").unwrap_or("MODE_UNSPECIFIED");
    req.tool_choice = match mode.to_ascii_uppercase().as_str() {
        "AUTO" | "VALIDATED" => Some(ToolChoice::Auto),
        "NONE" => Some(ToolChoice::None),
        "ANY" => match allowed.as_slice() {
            [] => Some(ToolChoice::Required),
            [one] => Some(ToolChoice::Tool((*one).to_owned())),
            many => {
                req.tools.retain(|t| many.contains(&t.name.as_str()));
                Some(ToolChoice::Required)
            }
        },
        "MODE_UNSPECIFIED" => None,
        _ => {
            return Err(err(
                "toolConfig.functionCallingConfig.mode must be one of AUTO, ANY, NONE, VALIDATED",
            ));
        }
    };
    Ok(())
}

fn generation_config(raw: &Value, req: &mut ChatRequest) -> Result<(), DecodeError> {
    let err = |name: &str, what: &str| {
        DecodeError::field(
            "generationConfig",
            format!("generationConfig.{name} must be {what}"),
        )
    };
    let Some(cfg) = raw.as_object() else {
        return Err(DecodeError::field(
            "generationConfig",
            "generationConfig must be an object",
        ));
    };
    let mut output: [Option<&Value>; 3] = [None; 3];
    for (key, value) in cfg {
        if value.is_null() {
            continue;
        }
        let name = camel(key);
        match name.as_str() {
            "responseMimeType" => output[0] = Some(value),
            "responseSchema" => output[1] = Some(value),
            "responseJsonSchema" => output[2] = Some(value),
            "maxOutputTokens" => {
                req.max_tokens =
                    Some(as_u64(value).ok_or_else(|| err(&name, "a positive integer"))?);
            }
            "temperature" => {
                req.temperature = Some(value.as_f64().ok_or_else(|| err(&name, "a number"))?);
            }
            "topP" => req.top_p = Some(value.as_f64().ok_or_else(|| err(&name, "a number"))?),
            "topK" => {
                req.top_k = Some(as_u64(value).ok_or_else(|| err(&name, "a positive integer"))?);
            }
            "candidateCount" => {
                req.n = Some(as_u64(value).ok_or_else(|| err(&name, "a positive integer"))?);
            }
            "stopSequences" => {
                req.stop = list(value)
                    .into_iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(&name, "an array of strings"))?;
            }
            "thinkingConfig" => {
                let Some(t) = value.as_object() else {
                    return Err(err(&name, "an object"));
                };
                req.reasoning = thinking(t).map_err(|what| err(&name, what))?;
            }
            "responseModalities" if is_text_only(value) => {}
            _ => {
                req.extra
                    .insert(format!("generationConfig.{name}"), value.clone());
            }
        }
    }
    let [mime, schema, json_schema] = output;
    output_format(mime, schema, json_schema, req)
}

/// `responseMimeType` with `responseSchema` / `responseJsonSchema` → the canonical format.
/// `text/x.enum` and other MIME types stay in `extra`.
fn output_format(
    mime: Option<&Value>,
    schema: Option<&Value>,
    json_schema: Option<&Value>,
    req: &mut ChatRequest,
) -> Result<(), DecodeError> {
    let err = |m: &str| DecodeError::field("generationConfig", format!("generationConfig.{m}"));
    let mime = match mime {
        None => None,
        Some(Value::String(m)) => Some(m.as_str()),
        Some(_) => return Err(err("responseMimeType must be a string")),
    };
    if schema.is_some() && json_schema.is_some() {
        return Err(err(
            "responseSchema and responseJsonSchema cannot both be set; send one of them",
        ));
    }
    for (name, s) in [
        ("responseSchema", schema),
        ("responseJsonSchema", json_schema),
    ] {
        if s.is_some_and(|s| !s.is_object()) {
            return Err(err(&format!("{name} must be an object")));
        }
    }
    match mime {
        None | Some("text/plain") if schema.is_some() || json_schema.is_some() => Err(err(
            "responseMimeType must be \"application/json\" (or \"text/x.enum\") when a \
             response schema is set",
        )),
        None | Some("text/plain") => Ok(()),
        Some("application/json") => {
            req.format = Some(match (schema, json_schema) {
                (_, Some(js)) => {
                    OutputFormat::constrained(js.clone(), SchemaSource::GeminiJsonSchema)
                }
                (Some(s), None) => OutputFormat::constrained(
                    openapi_to_json_schema(s, true),
                    SchemaSource::GeminiSchema,
                ),
                (None, None) => OutputFormat::JsonObject,
            });
            Ok(())
        }
        Some(other) => {
            // `text/x.enum` and the rest have no canonical form.
            req.extra.insert(
                "generationConfig.responseMimeType".into(),
                Value::String(other.to_owned()),
            );
            for (name, s) in [
                ("responseSchema", schema),
                ("responseJsonSchema", json_schema),
            ] {
                if let Some(s) = s {
                    req.extra
                        .insert(format!("generationConfig.{name}"), s.clone());
                }
            }
            Ok(())
        }
    }
}

/// `thinkingConfig` → reasoning settings; `None` when it sets neither a budget nor a level.
fn thinking(t: &Map<String, Value>) -> Result<Option<Reasoning>, &'static str> {
    let budget = match get(t, "thinkingBudget") {
        None => None,
        Some(v) => match as_i64(v) {
            // -1 asks for dynamic thinking, the default.
            Some(-1) => None,
            Some(b) => Some(u64::try_from(b).map_err(|_| "an object with thinkingBudget ≥ -1")?),
            None => return Err("an object whose thinkingBudget is an integer"),
        },
    };
    let effort = match get(t, "thinkingLevel") {
        None => None,
        Some(Value::String(l)) if l.eq_ignore_ascii_case("THINKING_LEVEL_UNSPECIFIED") => None,
        Some(Value::String(l)) => Some(l.to_ascii_lowercase()),
        Some(_) => return Err("an object whose thinkingLevel is a string"),
    };
    Ok((budget.is_some() || effort.is_some()).then_some(Reasoning {
        budget_tokens: budget,
        effort,
    }))
}

fn is_text_only(v: &Value) -> bool {
    let items = list(v);
    items.len() == 1
        && items
            .first()
            .and_then(|m| m.as_str())
            .is_some_and(|m| m.eq_ignore_ascii_case("TEXT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[expect(
        clippy::needless_pass_by_value,
        reason = "call sites read better with json! literals"
    )]
    fn decode(body: Value) -> Result<ChatRequest, DecodeError> {
        decode_request(body.to_string().as_bytes(), "gemini-2.5-flash", false)
    }

    fn param(body: Value) -> Option<&'static str> {
        decode(body).unwrap_err().param
    }

    #[test]
    fn validation_names_the_field() {
        let e = decode_request(b"nope", "m", false).unwrap_err();
        assert_eq!(e.param, None);
        assert_eq!(decode_request(b"[]", "m", false).unwrap_err().param, None);
        assert_eq!(param(json!({})), Some("contents"));
        assert_eq!(param(json!({"contents": []})), Some("contents"));
        assert_eq!(
            param(json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]})),
            Some("contents")
        );
        assert_eq!(
            param(json!({"contents": [{"role": "user", "parts": []}]})),
            Some("contents")
        );
        assert_eq!(
            param(json!({"contents": [{"parts": [{}]}]})),
            Some("contents")
        );
        let e = decode(
            json!({"contents": [{"parts": [{"text": "a", "functionCall": {"name": "f"}}]}]}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("contents[0].parts[0]") && e.message.contains("exactly one"),
            "{e}"
        );
        let e = decode(json!({"contents": [{"parts": [{"fileData": {"mimeType": "application/pdf", "fileUri": "gs://a"}}]}]})).unwrap_err();
        assert_eq!(e.param, Some("contents"));
        assert!(e.message.contains("application/pdf"), "{e}");
        let ok = json!([{"parts": [{"text": "hi"}]}]);
        assert_eq!(
            param(json!({"contents": ok, "systemInstruction": {"parts": [{"inlineData": {}}]}})),
            Some("systemInstruction")
        );
        assert_eq!(
            param(
                json!({"contents": ok, "tools": [{"functionDeclarations": [{"description": "x"}]}]})
            ),
            Some("tools")
        );
        assert_eq!(
            param(
                json!({"contents": ok, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}})
            ),
            Some("toolConfig")
        );
        assert_eq!(
            param(json!({"contents": ok, "generationConfig": {"maxOutputTokens": "lots"}})),
            Some("generationConfig")
        );
        assert_eq!(
            param(json!({"contents": ok, "generationConfig": {"stopSequences": [1]}})),
            Some("generationConfig")
        );
        assert_eq!(
            param(
                json!({"contents": ok, "generationConfig": {"thinkingConfig": {"thinkingBudget": -5}}})
            ),
            Some("generationConfig")
        );
    }

    #[test]
    fn full_request_maps_to_canonical() {
        let req = decode(json!({
            "system_instruction": {"parts": {"text": "Be brief."}},
            "contents": [
                {"role": "user", "parts": [{"text": "Weather in Oslo?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "3C rain"}}}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {"maxOutputTokens": 512, "temperature": 0.7, "topP": 0.95, "topK": 40,
                "stopSequences": ["END"], "candidateCount": 1, "responseMimeType": "text/plain",
                "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
        }))
        .unwrap();
        assert_eq!(req.model, "gemini-2.5-flash");
        assert_eq!(req.system, vec![Part::text("Be brief.")]);
        assert_eq!(req.messages.len(), 3);
        assert_eq!(req.messages[1].role, Role::Assistant);
        assert_eq!(
            req.messages[2].parts,
            vec![Part::ToolResult {
                call_id: "call_0".into(),
                name: Some("get_weather".into()),
                content: vec![Part::text(r#"{"result":"3C rain"}"#)],
                is_error: false,
                cache: None
            }]
        );
        assert_eq!(
            req.tools[0].parameters,
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
        );
        assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
        assert_eq!(
            (req.max_tokens, req.top_k, req.n),
            (Some(512), Some(40), Some(1))
        );
        assert_eq!((req.temperature, req.top_p), (Some(0.7), Some(0.95)));
        assert_eq!(req.stop, vec!["END".to_owned()]);
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                budget_tokens: Some(1024),
                effort: None
            })
        );
        assert!(req.extra.is_empty(), "{:?}", req.extra);
    }

    #[test]
    fn untranslatable_fields_land_in_extra() {
        let req = decode(json!({
            "contents": [{"parts": [{"text": "hi"}, {"executableCode": {"language": "PYTHON", "code": "1"}}]}],
            "tools": [{"googleSearch": {}}, {"functionDeclarations": [{"name": "f"}], "codeExecution": {}}],
            "generationConfig": {"responseMimeType": "text/x.enum", "seed": 3, "response_schema": {"type": "STRING", "enum": ["a"]},
                "responseModalities": ["TEXT"], "thinkingConfig": {"thinkingLevel": "HIGH"}},
            "cachedContent": "cachedContents/abc",
            "labels": {"team": "a"},
            "somethingNew": 1
        }))
        .unwrap();
        let keys: Vec<&str> = req.extra.keys().map(String::as_str).collect();
        let mut expected = vec![
            "cachedContent",
            "contents.executableCode",
            "generationConfig.responseMimeType",
            "generationConfig.responseSchema",
            "generationConfig.seed",
            "somethingNew",
            "tools",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(
            req.extra["tools"],
            json!([{"googleSearch": {}}, {"codeExecution": {}}])
        );
        assert_eq!(req.tools.len(), 1);
        assert_eq!(
            req.tools[0].parameters,
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                budget_tokens: None,
                effort: Some("high".into())
            })
        );
    }

    #[test]
    fn structured_output_maps_to_format() {
        let with = |cfg: Value| {
            decode(json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": cfg}))
        };
        let r = with(json!({"responseMimeType": "application/json"})).unwrap();
        assert_eq!(r.format, Some(OutputFormat::JsonObject));
        let js = json!({"type": "array", "items": {"type": "integer"}});
        let r = with(json!({"responseMimeType": "application/json", "responseJsonSchema": js}))
            .unwrap();
        assert_eq!(
            r.format,
            Some(OutputFormat::constrained(
                js.clone(),
                SchemaSource::GeminiJsonSchema
            ))
        );
        let r = with(
            json!({"response_mime_type": "application/json", "response_schema": {
            "type": "OBJECT", "properties": {"n": {"type": "INTEGER", "nullable": true}},
            "propertyOrdering": ["n"]}}),
        )
        .unwrap();
        assert_eq!(
            r.format,
            Some(OutputFormat::constrained(
                json!({"type": "object", "properties": {"n": {"type": ["integer", "null"]}},
                    "propertyOrdering": ["n"]}),
                SchemaSource::GeminiSchema
            ))
        );
        assert!(r.extra.is_empty());
        for bad in [
            json!({"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"},
                "responseJsonSchema": {"type": "object"}}),
            json!({"responseJsonSchema": {"type": "object"}}),
            json!({"responseMimeType": "text/plain", "responseSchema": {"type": "OBJECT"}}),
            json!({"responseMimeType": "application/json", "responseJsonSchema": true}),
            json!({"responseMimeType": 1}),
        ] {
            let e = with(bad.clone()).unwrap_err();
            assert_eq!(e.param, Some("generationConfig"), "{bad}");
        }
        let r = with(json!({"responseMimeType": "text/plain"})).unwrap();
        assert_eq!((r.format, r.extra.is_empty()), (None, true));
    }

    #[test]
    fn tool_config_modes() {
        let base = |cfg: Value| {
            decode(json!({"contents": [{"parts": [{"text": "x"}]}],
                "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}],
                "toolConfig": {"functionCallingConfig": cfg}}))
            .unwrap()
        };
        assert_eq!(
            base(json!({"mode": "NONE"})).tool_choice,
            Some(ToolChoice::None)
        );
        assert_eq!(
            base(json!({"mode": "ANY"})).tool_choice,
            Some(ToolChoice::Required)
        );
        assert_eq!(
            base(json!({"mode": "ANY", "allowedFunctionNames": ["b"]})).tool_choice,
            Some(ToolChoice::Tool("b".into()))
        );
        let many = base(json!({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}));
        assert_eq!(many.tool_choice, Some(ToolChoice::Required));
        assert_eq!(
            many.tools
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(base(json!({})).tool_choice, None);
    }

    #[test]
    fn dynamic_thinking_budget_is_no_budget() {
        let req = decode(json!({"contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": true}}}))
        .unwrap();
        assert_eq!(req.reasoning, None);
        let req = decode(json!({"contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}))
        .unwrap();
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                budget_tokens: Some(0),
                effort: None
            })
        );
    }
}
