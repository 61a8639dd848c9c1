//! Canonical [`ChatRequest`] → the body for a Gemini upstream (mapping rules in the module docs
//! of [`crate::gemini`]). The model goes into the URL, not the body.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::parts::{PartsWriter, image_part};
use super::schema::json_schema_to_openapi;
use crate::DecodeError;
use crate::canonical::{
    ChatRequest, DecodeOptions, OutputFormat, Part, Role, SchemaSource, ToolChoice,
};
use crate::schema::{self, Target};

/// The placeholder Google documents for function calls whose real signature is unknown.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// The system line sent with `parallel_tool_calls: false`, which Gemini has no switch for.
pub(super) const ONE_CALL_HINT: &str = "Call at most one function per turn.";

/// Field names other families may leave in `extra`, so the error can name the parameter.
const KNOWN_PARAMS: &[&str] = &[
    "audio",
    "cachedContent",
    "contents",
    "frequency_penalty",
    "generationConfig",
    "logit_bias",
    "logprobs",
    "metadata",
    "modalities",
    "output_config",
    "prediction",
    "presence_penalty",
    "response_format",
    "seed",
    "service_tier",
    "store",
    "tools",
    "top_logprobs",
    "user",
    "web_search_options",
];

/// Encodes a canonical request for a Gemini upstream. Refuses what Gemini cannot carry: any
/// `extra` field (naming the first), `n > 1`, tool results whose function name is unknown,
/// schema keywords Gemini would ignore when a guarantee was asked, and JSON output with a
/// forced tool call (or with tools on Gemini 2.x and older).
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    if let Some(key) = req.extra.keys().next() {
        let message = format!("`{key}` is not supported by this model's upstream (gemini)");
        let top = key.split('.').next().unwrap_or(key);
        return Err(match KNOWN_PARAMS.iter().find(|p| **p == top) {
            Some(param) => DecodeError::field(param, message),
            None => DecodeError::body(message),
        });
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(DecodeError::field(
            "n",
            "only one choice (n = 1) is supported by this model's upstream (gemini)",
        ));
    }
    let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
    let mut body = Map::new();
    let contents = contents(req, needs_signatures(model))?;
    if contents.is_empty() {
        return Err(DecodeError::field(
            "messages",
            "at least one user or assistant message is required",
        ));
    }
    body.insert("contents".into(), Value::Array(contents));
    // Gemini has one system instruction: mid-conversation system messages join it, in order.
    let mut system: Vec<Value> = req
        .folded_system()
        .filter_map(|p| match p {
            Part::Text { text, .. } if !text.is_empty() => Some(json!({"text": text})),
            _ => None,
        })
        .collect();
    if DecodeOptions::for_request(req).first_tool_call_only {
        // Gemini has no switch: the decoders keep the first call; this saves the rest.
        system.push(json!({"text": ONE_CALL_HINT}));
    }
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name, "parametersJsonSchema": t.parameters});
                if let (Some(desc), Some(d)) = (&t.description, d.as_object_mut()) {
                    d.insert("description".into(), desc.as_str().into());
                }
                d
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    // Gemini refuses a calling config without function declarations (a request whose only
    // tool is web search).
    if let Some(choice) = req.tool_choice.as_ref().filter(|_| !req.tools.is_empty()) {
        let fcc = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert("toolConfig".into(), json!({"functionCallingConfig": fcc}));
    }
    super::search::add_tool(&mut body, req)?;
    let mut gen_config = generation_config(req, model);
    gen_config.extend(output_format(req, model)?);
    if !gen_config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen_config));
    }
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// `responseMimeType` with `responseJsonSchema` (or, for a Gemini client's own
/// `responseSchema`, `responseSchema`) for the request's structured output, refusing what
/// Gemini refuses with it.
fn output_format(req: &ChatRequest, model: &str) -> Result<Map<String, Value>, DecodeError> {
    let mut cfg = Map::new();
    let (param, schema) = match &req.format {
        None | Some(OutputFormat::Text) => return Ok(cfg),
        Some(OutputFormat::JsonObject) => ("response_format", None),
        Some(OutputFormat::JsonSchema {
            schema,
            source,
            strict,
            description,
            ..
        }) => {
            let schema = match (schema, source) {
                (None, _) => None,
                (Some(s), SchemaSource::GeminiSchema) => {
                    Some(("responseSchema", json_schema_to_openapi(s)))
                }
                (Some(s), SchemaSource::GeminiJsonSchema) => {
                    Some(("responseJsonSchema", s.clone()))
                }
                (Some(s), source) => {
                    let guarantee = *strict == Some(true) || !source.is_openai();
                    let mut s = schema::translate(s, *source, guarantee, Target::GeminiJson)?;
                    schema::describe_root(&mut s, description.as_deref());
                    Some(("responseJsonSchema", s))
                }
            };
            (source.param(), schema)
        }
    };
    let callable = !req.tools.is_empty() && req.tool_choice != Some(ToolChoice::None);
    if callable
        && matches!(
            req.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Tool(_))
        )
    {
        return Err(DecodeError::field(
            param,
            "structured (JSON) output cannot be combined with a forced tool call (`tool_choice` \
             required or a named tool) on this model's upstream (gemini), which refuses forced \
             function calling with a JSON response type; drop one of them",
        ));
    }
    if callable && !needs_signatures(model) {
        return Err(DecodeError::field(
            param,
            "structured (JSON) output cannot be combined with tools on this model's upstream \
             (gemini 2.x and older); drop the tools (or set the tool choice to none), or the \
             structured output",
        ));
    }
    cfg.insert("responseMimeType".into(), "application/json".into());
    if let Some((key, schema)) = schema {
        cfg.insert(key.into(), schema);
    }
    Ok(cfg)
}

/// Gemini 3 and later reject unsigned function calls in history; 1.x and 2.x do not check.
fn needs_signatures(model: &str) -> bool {
    !(model.starts_with("gemini-1") || model.starts_with("gemini-2"))
}

fn contents(req: &ChatRequest, sign_calls: bool) -> Result<Vec<Value>, DecodeError> {
    // Function name of each tool call seen so far, by call id.
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(req.messages.len());
    for (i, msg) in req.messages.iter().enumerate() {
        let role = match msg.role {
            Role::Assistant => "model",
            Role::User | Role::Tool => "user",
            // In the system instruction (see `encode_request`).
            Role::System => continue,
        };
        let mut w = PartsWriter::request();
        for part in &msg.parts {
            match part {
                Part::ToolCall { id, name, .. } => {
                    names.insert(id, name);
                    w.part(part);
                }
                Part::ToolResult {
                    call_id,
                    name,
                    content,
                    is_error,
                    ..
                } => {
                    let name = name
                        .as_deref()
                        .or_else(|| names.get(call_id.as_str()).copied())
                        .ok_or_else(|| {
                            DecodeError::field(
                                "messages",
                                format!(
                                    "messages[{i}] holds a tool result that answers no earlier \
                                     tool call; Gemini needs the function's name"
                                ),
                            )
                        })?;
                    w.push(function_response(call_id, name, content, *is_error));
                    for p in content {
                        if let Part::Image { source, .. } = p {
                            w.push(image_part(source));
                        }
                    }
                }
                _ => w.part(part),
            }
        }
        if w.is_empty() {
            continue;
        }
        let parts = w.finish();
        match turns.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, mut parts)| {
            if sign_calls && role == "model" {
                sign_first_call(&mut parts);
            }
            json!({"role": role, "parts": parts})
        })
        .collect())
}

/// Gives the turn's first function call the placeholder signature when it has none.
fn sign_first_call(parts: &mut [Value]) {
    let first_call = parts
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .find(|p| p.contains_key("functionCall"));
    if let Some(part) = first_call
        && !part.contains_key("thoughtSignature")
    {
        part.insert("thoughtSignature".into(), SKIP_SIGNATURE.into());
    }
}

/// `{"functionResponse":{name, response, id}}` for a canonical tool result.
fn function_response(
    call_id: &str,
    name: &str,
    content: &[Part],
    is_error: bool,
) -> Map<String, Value> {
    let text: String = content
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    let response = match value {
        Value::Object(o) if !is_error || (o.len() == 1 && o.contains_key("error")) => {
            Value::Object(o)
        }
        other if is_error => json!({"error": other}),
        other => json!({"result": other}),
    };
    let mut fr = Map::new();
    fr.insert("name".into(), name.into());
    fr.insert("response".into(), response);
    if !call_id.is_empty() {
        fr.insert("id".into(), call_id.into());
    }
    let mut part = Map::new();
    part.insert("functionResponse".into(), Value::Object(fr));
    part
}

fn generation_config(req: &ChatRequest, model: &str) -> Map<String, Value> {
    let mut cfg = Map::new();
    if let Some(v) = req.max_tokens {
        cfg.insert("maxOutputTokens".into(), v.into());
    }
    if let Some(v) = req.temperature {
        cfg.insert("temperature".into(), v.into());
    }
    if let Some(v) = req.top_p {
        cfg.insert("topP".into(), v.into());
    }
    if let Some(v) = req.top_k {
        cfg.insert("topK".into(), v.into());
    }
    if !req.stop.is_empty() {
        cfg.insert("stopSequences".into(), req.stop.clone().into());
    }
    if req.n == Some(1) {
        cfg.insert("candidateCount".into(), 1.into());
    }
    if let Some(r) = &req.reasoning {
        let mut t = Map::new();
        let budget = r.budget_tokens.or_else(|| {
            if needs_signatures(model) {
                None
            } else {
                r.effort.as_deref().and_then(effort_budget)
            }
        });
        if let Some(b) = budget {
            t.insert("thinkingBudget".into(), b.into());
            t.insert("includeThoughts".into(), (b > 0).into());
        } else if let Some(effort) = &r.effort {
            let level = match effort.as_str() {
                "none" => "minimal",
                "xhigh" | "max" => "high",
                other => other,
            };
            t.insert("thinkingLevel".into(), level.into());
            t.insert("includeThoughts".into(), true.into());
        } else {
            t.insert("includeThoughts".into(), true.into());
        }
        cfg.insert("thinkingConfig".into(), Value::Object(t));
    }
    cfg
}

/// A thinking budget for Gemini 1/2 models, which take no levels.
fn effort_budget(effort: &str) -> Option<u64> {
    match effort {
        "none" | "minimal" => Some(0),
        "low" => Some(1024),
        "medium" => Some(8192),
        "high" | "xhigh" | "max" => Some(24576),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
