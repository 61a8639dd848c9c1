//! Validation of a `GenerateContentRequest` (or `countTokens` body) into
//! [`GenerateRequest`], rejecting what the real API rejects: unknown field
//! names (proto JSON accepts camelCase and snake_case), empty `contents`,
//! bad roles, parts without exactly one data field, non-object function
//! responses, invalid function names and out-of-range generation config.

use serde_json::{Map, Value};

use super::error::GoogleError;
use crate::content::{Tool, ToolChoice};
use crate::util::quarter_tokens;

const REQUEST: &str = "GenerateContentRequest";
const TOP_FIELDS: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
];
const CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "responseModalities",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];
/// Part fields that carry data; exactly one must be set.
const DATA_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];
/// Part fields allowed beside the data field.
const PART_EXTRAS: &[&str] = &[
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
    "mediaResolution",
];
const MAX_STOP_SEQUENCES: usize = 5;
const MAX_CANDIDATES: u64 = 8;
/// Tokens a `cachedContent` reference contributes (and reports as cached).
pub(crate) const CACHED_CONTENT_TOKENS: usize = 1024;

/// The parts of a generate request the emulator acts on.
#[derive(Clone, Debug)]
pub(crate) struct GenerateRequest {
    pub(crate) contents: Vec<Value>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) tool_choice: ToolChoice,
    pub(crate) stop: Vec<String>,
    pub(crate) max_tokens: Option<usize>,
    pub(crate) candidates: usize,
    /// Thinking is on; `Some(true)` also returns thought summaries.
    pub(crate) thinking: Option<bool>,
    /// Prompt tokens: contents, system instruction and tools, plus the
    /// cached content (at least 1).
    pub(crate) prompt_tokens: usize,
    /// Tokens served from `cachedContent` (0 without it).
    pub(crate) cached_tokens: usize,
}

/// `lowerCamel` → `lower_camel`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `obj[camel]` or `obj[snake]`, treating `null` as absent.
fn get<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(&snake(camel)))
        .filter(|v| !v.is_null())
}

/// Rejects names that are neither a listed camelCase name nor its snake form.
fn known(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), GoogleError> {
    let ok = |k: &str| allowed.iter().any(|a| *a == k || snake(a) == k);
    match obj.keys().find(|k| !ok(k)) {
        Some(k) => {
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" at '{at}'")
            };
            Err(GoogleError::payload(&format!(
                "Unknown name \"{k}\"{at}: Cannot find field."
            )))
        }
        None => Ok(()),
    }
}

fn bad_value(at: &str, kind: &str, v: &Value) -> GoogleError {
    GoogleError::payload(&format!("Invalid value at '{at}' ({kind}), {v}"))
}

/// Which body shape to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Generate,
    CountTokens,
}

pub(crate) fn parse(
    json: Option<&Value>,
    endpoint: Endpoint,
) -> Result<GenerateRequest, GoogleError> {
    let Some(obj) = json.and_then(Value::as_object) else {
        return Err(GoogleError::payload("Unexpected token."));
    };
    if endpoint == Endpoint::CountTokens {
        known(obj, &["contents", "generateContentRequest"], "")?;
        if let Some(inner) = get(obj, "generateContentRequest") {
            let Some(inner) = inner.as_object() else {
                return Err(bad_value(
                    "generate_content_request",
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentRequest",
                    inner,
                ));
            };
            return generate(inner, "CountTokensRequest.generate_content_request");
        }
        return generate(obj, "CountTokensRequest");
    }
    generate(obj, REQUEST)
}

fn generate(obj: &Map<String, Value>, msg: &str) -> Result<GenerateRequest, GoogleError> {
    if msg != "CountTokensRequest" {
        known(obj, TOP_FIELDS, "")?;
    }
    let contents = contents(obj, msg)?;
    let system_tokens = match get(obj, "systemInstruction") {
        None => 0,
        Some(Value::Object(sys)) => {
            let parts = get(sys, "parts").and_then(Value::as_array);
            for (j, p) in parts.into_iter().flatten().enumerate() {
                part(p, &format!("system_instruction.parts[{j}]"), msg)?;
            }
            parts.into_iter().flatten().map(part_tokens).sum()
        }
        Some(v) => {
            return Err(bad_value(
                "system_instruction",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
                v,
            ));
        }
    };
    let (tools, tools_chars) = tools(obj, msg)?;
    let (tools, tool_choice) = tool_config(obj, tools, msg)?;
    let Config {
        stop,
        max_tokens,
        candidates,
        thinking,
    } = config(obj, msg)?;
    let cached_tokens = if get(obj, "cachedContent").is_some() {
        CACHED_CONTENT_TOKENS
    } else {
        0
    };
    let content_tokens: usize = contents
        .iter()
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten()
        .map(part_tokens)
        .sum();
    let prompt_tokens =
        (content_tokens + system_tokens + tools_chars.div_ceil(4)).max(1) + cached_tokens;
    Ok(GenerateRequest {
        contents,
        tools,
        tool_choice,
        stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
        max_tokens,
        candidates,
        thinking,
        prompt_tokens,
        cached_tokens,
    })
}

/// What the emulator reads from `generationConfig`.
struct Config {
    stop: Vec<String>,
    max_tokens: Option<usize>,
    candidates: usize,
    thinking: Option<bool>,
}

fn config(obj: &Map<String, Value>, msg: &str) -> Result<Config, GoogleError> {
    let config = match get(obj, "generationConfig") {
        None => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(v) => {
            return Err(bad_value(
                "generation_config",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig",
                v,
            ));
        }
    };
    known(&config, CONFIG_FIELDS, "generation_config")?;
    let cfg = |field: &str| format!("{msg}.generation_config.{field}");
    let stop: Vec<String> = match get(&config, "stopSequences") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(v) => {
            return Err(bad_value(
                "generation_config.stop_sequences",
                "TYPE_STRING",
                v,
            ));
        }
    };
    if stop.len() > MAX_STOP_SEQUENCES {
        return Err(GoogleError::field(
            &cfg("stop_sequences"),
            "stop_sequences must have at most 5 elements",
        ));
    }
    let max_tokens = match get(&config, "maxOutputTokens") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(0) => None,
            Some(n) if n > 0 => usize::try_from(n).ok(),
            _ => {
                return Err(GoogleError::field(
                    &cfg("max_output_tokens"),
                    "max_output_tokens must be positive.",
                ));
            }
        },
    };
    let candidates = match get(&config, "candidateCount") {
        None => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=MAX_CANDIDATES) => usize::try_from(n).unwrap_or(1),
            _ => {
                return Err(GoogleError::field(
                    &cfg("candidate_count"),
                    "candidate_count must be between 1 and 8.",
                ));
            }
        },
    };
    for (key, field, max) in [("temperature", "temperature", 2.0), ("topP", "top_p", 1.0)] {
        if let Some(v) = get(&config, key) {
            let ok = v.as_f64().is_some_and(|x| (0.0..=max).contains(&x));
            if !ok {
                return Err(GoogleError::field(
                    &cfg(field),
                    &format!("{field} must be in the range [0, {max}]."),
                ));
            }
        }
    }
    let thinking = thinking(&config, msg)?;
    Ok(Config {
        stop,
        max_tokens,
        candidates,
        thinking,
    })
}

fn contents(obj: &Map<String, Value>, msg: &str) -> Result<Vec<Value>, GoogleError> {
    let list = match get(obj, "contents") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(v) => {
            return Err(bad_value(
                "contents",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
                v,
            ));
        }
    };
    if list.is_empty() {
        return Err(GoogleError::field(
            &format!("{msg}.contents"),
            "contents is not specified",
        ));
    }
    for (i, c) in list.iter().enumerate() {
        let Some(content) = c.as_object() else {
            return Err(bad_value(
                &format!("contents[{i}]"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
                c,
            ));
        };
        known(content, &["role", "parts"], &format!("contents[{i}]"))?;
        match get(content, "role") {
            None => {}
            Some(Value::String(r)) if r.is_empty() || r == "user" || r == "model" => {}
            Some(_) => {
                return Err(GoogleError::invalid(
                    "Please use a valid role: user, model.",
                ));
            }
        }
        let parts = get(content, "parts").and_then(Value::as_array);
        if parts.is_none_or(Vec::is_empty) {
            return Err(GoogleError::field(
                &format!("{msg}.contents[{i}].parts"),
                "contents.parts must not be empty.",
            ));
        }
        for (j, p) in parts.into_iter().flatten().enumerate() {
            part(p, &format!("contents[{i}].parts[{j}]"), msg)?;
        }
    }
    Ok(list)
}

fn part(p: &Value, at: &str, msg: &str) -> Result<(), GoogleError> {
    let Some(obj) = p.as_object() else {
        return Err(bad_value(
            at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Part",
            p,
        ));
    };
    let all: Vec<&str> = DATA_FIELDS.iter().chain(PART_EXTRAS).copied().collect();
    known(obj, &all, at)?;
    let set: Vec<&str> = DATA_FIELDS
        .iter()
        .copied()
        .filter(|f| get(obj, f).is_some())
        .collect();
    match set.as_slice() {
        [] => {
            return Err(GoogleError::field(
                &format!("{msg}.{at}.data"),
                "required oneof field 'data' must have one initialized field",
            ));
        }
        [_] => {}
        [_, second, ..] => {
            return Err(GoogleError::payload(&format!(
                "Invalid value at '{at}' (oneof field 'data' is already set. Cannot set \
                 '{second}')"
            )));
        }
    }
    if let Some(v) = get(obj, "text") {
        if !v.is_string() {
            return Err(bad_value(&format!("{at}.text"), "TYPE_STRING", v));
        }
    }
    if let Some(d) = get(obj, "inlineData") {
        let data = d.get("data").and_then(Value::as_str).unwrap_or("");
        let is_b64 =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_');
        if !data.chars().all(is_b64) {
            return Err(GoogleError::payload(&format!(
                "Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            )));
        }
        if d.get("mimeType").or_else(|| d.get("mime_type")).is_none() {
            return Err(GoogleError::field(
                &format!("{msg}.{at}.inline_data.mime_type"),
                "mime_type is not specified",
            ));
        }
    }
    if let Some(fc) = get(obj, "functionCall") {
        if fc
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(GoogleError::field(
                &format!("{msg}.{at}.function_call.name"),
                "Name cannot be empty.",
            ));
        }
        if let Some(args) = fc.get("args").filter(|a| !a.is_null() && !a.is_object()) {
            return Err(bad_value(
                &format!("{at}.function_call.args"),
                "type.googleapis.com/google.protobuf.Struct",
                args,
            ));
        }
    }
    if let Some(fr) = get(obj, "functionResponse") {
        if fr
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(GoogleError::field(
                &format!("{msg}.{at}.function_response.name"),
                "Name cannot be empty.",
            ));
        }
        match fr.get("response") {
            Some(Value::Object(_)) => {}
            None | Some(Value::Null) => {
                return Err(GoogleError::field(
                    &format!("{msg}.{at}.function_response.response"),
                    "response is not specified",
                ));
            }
            Some(v) => {
                return Err(bad_value(
                    &format!("{at}.function_response.response"),
                    "type.googleapis.com/google.protobuf.Struct",
                    v,
                ));
            }
        }
    }
    Ok(())
}

/// Tokens of one part: text, or the JSON of a function call / response
/// (inline and file data count 0).
fn part_tokens(p: &Value) -> usize {
    let Some(obj) = p.as_object() else { return 0 };
    if let Some(t) = get(obj, "text").and_then(Value::as_str) {
        return quarter_tokens(t);
    }
    ["functionCall", "functionResponse"]
        .iter()
        .filter_map(|f| get(obj, f))
        .map(|v| quarter_tokens(&v.to_string()))
        .sum()
}

fn valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

fn tools(obj: &Map<String, Value>, msg: &str) -> Result<(Vec<Tool>, usize), GoogleError> {
    let list = match get(obj, "tools") {
        None => return Ok((Vec::new(), 0)),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(bad_value(
                "tools",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool",
                v,
            ));
        }
    };
    let mut tools = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let decls = t
            .as_object()
            .and_then(|o| get(o, "functionDeclarations"))
            .and_then(Value::as_array);
        for (j, d) in decls.into_iter().flatten().enumerate() {
            let name = d.get("name").and_then(Value::as_str).unwrap_or("");
            if !valid_function_name(name) {
                return Err(GoogleError::field(
                    &format!("{msg}.tools[{i}].function_declarations[{j}].name"),
                    "Invalid function name. Must start with a letter or an underscore. Must be \
                     alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes \
                     (-), with a maximum length of 64.",
                ));
            }
            let params = d
                .get("parameters")
                .or_else(|| d.get("parametersJsonSchema"))
                .or_else(|| d.get("parameters_json_schema"))
                .filter(|p| !p.is_null())
                .cloned();
            tools.push(Tool {
                name: name.to_owned(),
                parameters: params,
            });
        }
    }
    let chars = Value::Array(list.clone()).to_string().chars().count();
    Ok((tools, chars))
}

/// `toolConfig.functionCallingConfig`: `AUTO`/`VALIDATED` → auto, `ANY` →
/// required (named when exactly one function is allowed), `NONE` → none.
/// `allowedFunctionNames` narrows the callable tools.
fn tool_config(
    obj: &Map<String, Value>,
    tools: Vec<Tool>,
    msg: &str,
) -> Result<(Vec<Tool>, ToolChoice), GoogleError> {
    let fcc = get(obj, "toolConfig")
        .and_then(Value::as_object)
        .and_then(|c| get(c, "functionCallingConfig"))
        .and_then(Value::as_object);
    let mode = fcc
        .and_then(|c| get(c, "mode"))
        .map(|m| m.as_str().unwrap_or("").to_owned());
    let allowed: Vec<String> = fcc
        .and_then(|c| get(c, "allowedFunctionNames"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mode = mode.as_deref().unwrap_or("AUTO");
    if !matches!(
        mode,
        "AUTO" | "ANY" | "NONE" | "VALIDATED" | "MODE_UNSPECIFIED"
    ) {
        return Err(GoogleError::payload(&format!(
            "Invalid value at 'tool_config.function_calling_config.mode' \
             (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \
             \"{mode}\""
        )));
    }
    if !allowed.is_empty() && !matches!(mode, "ANY" | "VALIDATED") {
        return Err(GoogleError::field(
            &format!("{msg}.tool_config.function_calling_config.allowed_function_names"),
            "allowed_function_names may only be set when mode is ANY or VALIDATED.",
        ));
    }
    let tools: Vec<Tool> = if allowed.is_empty() {
        tools
    } else {
        tools
            .into_iter()
            .filter(|t| allowed.contains(&t.name))
            .collect()
    };
    let choice = match mode {
        _ if tools.is_empty() => ToolChoice::None,
        "NONE" => ToolChoice::None,
        "ANY" if allowed.len() == 1 => ToolChoice::Named(allowed.concat()),
        "ANY" => ToolChoice::Required,
        _ => ToolChoice::Auto,
    };
    Ok((tools, choice))
}

/// `Some(include_thoughts)` when thinking is on: a `thinkingConfig` with a
/// non-zero budget (or a level).
fn thinking(config: &Map<String, Value>, msg: &str) -> Result<Option<bool>, GoogleError> {
    let Some(tc) = get(config, "thinkingConfig") else {
        return Ok(None);
    };
    let Some(tc) = tc.as_object() else {
        return Err(bad_value(
            "generation_config.thinking_config",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig",
            tc,
        ));
    };
    known(
        tc,
        &["thinkingBudget", "includeThoughts", "thinkingLevel"],
        "generation_config.thinking_config",
    )?;
    let budget = get(tc, "thinkingBudget");
    if let Some(b) = budget {
        if b.as_i64().is_none_or(|n| n < -1) {
            return Err(GoogleError::field(
                &format!("{msg}.generation_config.thinking_config.thinking_budget"),
                "thinking_budget must be -1 (dynamic), 0 (off) or positive.",
            ));
        }
    }
    if get(tc, "thinkingLevel").is_some() && budget.is_some() {
        return Err(GoogleError::invalid(
            "You can only set only one of thinking budget and thinking level.",
        ));
    }
    if budget.and_then(Value::as_i64) == Some(0) {
        return Ok(None);
    }
    Ok(Some(
        get(tc, "includeThoughts").and_then(Value::as_bool) == Some(true),
    ))
}

/// Text of a content's non-thought `text` parts.
pub(crate) fn text_of(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

/// `T`: the text of the last user content that has any text.
pub(crate) fn last_user_text(contents: &[Value]) -> String {
    contents
        .iter()
        .rev()
        .filter(|c| {
            c.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user" || r.is_empty())
        })
        .map(text_of)
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// When the last content carries `functionResponse` parts: each response
/// as text (a lone string field is unwrapped, anything else is compact
/// JSON), joined by newlines.
pub(crate) fn last_function_result(contents: &[Value]) -> Option<String> {
    let parts = contents.last()?.get("parts")?.as_array()?;
    let results: Vec<String> = parts
        .iter()
        .filter_map(|p| {
            p.get("functionResponse")
                .or_else(|| p.get("function_response"))
        })
        .map(|fr| match fr.get("response") {
            Some(Value::Object(o)) if o.len() == 1 => match o.values().next() {
                Some(Value::String(s)) => s.clone(),
                _ => Value::Object(o.clone()).to_string(),
            },
            Some(v) => v.to_string(),
            None => String::new(),
        })
        .collect();
    (!results.is_empty()).then(|| results.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(body: &Value) -> Result<GenerateRequest, GoogleError> {
        parse(Some(body), Endpoint::Generate)
    }

    fn msg(body: &Value) -> String {
        run(body).unwrap_err().message
    }

    #[test]
    fn contents_required_and_parts_checked() {
        assert!(msg(&json!({})).contains("contents is not specified"));
        assert!(msg(&json!({"contents": []})).contains("contents is not specified"));
        assert!(
            msg(&json!({"contents": [{"role": "user", "parts": []}]}))
                .contains("must not be empty")
        );
        assert!(
            msg(&json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}))
                .contains("valid role")
        );
        assert!(msg(&json!({"contents": [{"parts": [{}]}]})).contains("oneof field 'data'"));
        assert!(
            msg(&json!({"contents": [{"parts": [{"text": "a", "functionCall": {"name": "f"}}]}]}))
                .contains("already set")
        );
        let fr = json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "3C"}}]}]});
        assert!(msg(&fr).contains("google.protobuf.Struct"));
    }

    #[test]
    fn unknown_names_and_snake_case() {
        assert!(
            msg(&json!({"contents": [{"parts": [{"text": "a"}]}], "max_tokens": 3}))
                .contains("Unknown name \"max_tokens\"")
        );
        let body = json!({"contents": [{"parts": [{"text": "a"}]}],
            "generation_config": {"max_output_tokens": 3, "stop_sequences": ["x"]}});
        let r = run(&body).unwrap();
        assert_eq!(r.max_tokens, Some(3));
        assert_eq!(r.stop, vec!["x".to_owned()]);
        let bad =
            json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"maxTokens": 3}});
        assert!(msg(&bad).contains("at 'generation_config'"));
    }

    #[test]
    fn tool_config_modes() {
        let body = json!({"contents": [{"parts": [{"text": "a"}]}],
            "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}});
        let r = run(&body).unwrap();
        assert_eq!(r.tool_choice, ToolChoice::Named("g".to_owned()));
        assert_eq!(r.tools.len(), 1);
        let mut bad = body.clone();
        bad["tools"][0]["functionDeclarations"][0]["name"] = json!("9bad name");
        assert!(msg(&bad).contains("Invalid function name"));
    }

    #[test]
    fn results_and_text() {
        let contents = vec![
            json!({"role": "user", "parts": [{"text": "weather?"}]}),
            json!({"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}),
            json!({"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"result": "3C"}}}]}),
        ];
        assert_eq!(last_user_text(&contents), "weather?");
        assert_eq!(last_function_result(&contents).as_deref(), Some("3C"));
        let count = parse(
            Some(&json!({"generateContentRequest": {"contents": contents}})),
            Endpoint::CountTokens,
        );
        assert!(count.is_ok());
    }
}
