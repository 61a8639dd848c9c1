//! Validation of a Responses request body (`POST /v1/responses` and
//! `POST /v1/responses/input_tokens`) into [`ResponsesRequest`]: only the
//! documented create params (plus Codex's `client_metadata`) are accepted,
//! each checked like the real API with the same `param`s; stateful features
//! (`previous_response_id`, `conversation`, `background`, `prompt`) are
//! refused because the emulator stores nothing. `input` lives in
//! [`input`](super::input), tools and `text` in [`tools`](super::tools).

use serde_json::{Map, Value, json};

use super::input::{self, Item};
use super::tools::{self, Format, Selection, TextConfig, Tools};
use crate::error::ApiError;

/// Top-level fields of a create request (the SDK's `ResponseCreateParams`,
/// plus `client_metadata`, which Codex sends).
const CREATE_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tool_calls",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "top_logprobs",
    "store",
    "previous_response_id",
    "conversation",
    "include",
    "metadata",
    "stream",
    "stream_options",
    "background",
    "truncation",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "safety_identifier",
    "user",
    "prompt",
    "context_management",
    "moderation",
    "client_metadata",
];
/// Top-level fields of an `input_tokens` request.
const INPUT_TOKENS_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "previous_response_id",
    "conversation",
    "reasoning",
    "text",
    "truncation",
];
const INCLUDES: &[&str] = &[
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
    "message.input_image.image_url",
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
];
const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];
const SUMMARIES: &[&str] = &["auto", "concise", "detailed"];
const SERVICE_TIERS: &[&str] = &[
    "auto",
    "default",
    "flex",
    "scale",
    "priority",
    "fast",
    "ultrafast",
];
/// Smallest `max_output_tokens` the API accepts.
const MIN_OUTPUT_TOKENS: u64 = 16;
const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;
const MAX_TOP_LOGPROBS: u64 = 20;

/// Which endpoint the body was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Create,
    InputTokens,
}

/// The parts of a Responses request the emulator acts on.
#[derive(Clone, Debug)]
pub(crate) struct ResponsesRequest {
    pub(crate) items: Vec<Item>,
    pub(crate) instructions: Option<String>,
    pub(crate) stream: bool,
    /// `stream_options.include_obfuscation` (default on).
    pub(crate) obfuscation: bool,
    pub(crate) max_output_tokens: Option<usize>,
    pub(crate) tools: Tools,
    pub(crate) choice: Selection,
    pub(crate) parallel_tool_calls: bool,
    pub(crate) text: TextConfig,
    /// Set when reasoning is on (`reasoning.effort` set and not `none`).
    pub(crate) reasoning: Option<Reasoning>,
    /// Request fields the response object echoes, defaults filled in.
    pub(crate) echo: Map<String, Value>,
}

/// What a reasoning item needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reasoning {
    pub(crate) effort: String,
    /// `include` asks for `reasoning.encrypted_content`.
    pub(crate) encrypted: bool,
}

/// `obj[key]`, treating an explicit `null` as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn supported(param: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    Err(ApiError::invalid_value(
        param,
        format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            list.join(", ")
        ),
    ))
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::invalid_type(key, "a boolean", v)),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(ApiError::invalid_type(key, "a string", v)),
    }
}

/// An optional string that must be one of `allowed`.
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ApiError> {
    let value = string(obj, key)?;
    if let Some(v) = value {
        supported(key, v, allowed)?;
    }
    Ok(value)
}

/// An optional integer within `min..=max`.
fn integer(
    obj: &Map<String, Value>,
    key: &str,
    min: u64,
    max: Option<u64>,
) -> Result<Option<u64>, ApiError> {
    let Some(v) = field(obj, key) else {
        return Ok(None);
    };
    let Some(n) = v.as_i64() else {
        return Err(ApiError::invalid_type(key, "an integer", v));
    };
    let below = u64::try_from(n).map_or(true, |n| n < min);
    if below {
        return Err(ApiError::invalid_request(format!(
            "Invalid '{key}': integer below minimum value. Expected a value >= {min}, but got \
             {n} instead."
        ))
        .with_param(key)
        .with_code("integer_below_min_value"));
    }
    let n = n.unsigned_abs();
    if let Some(max) = max.filter(|&max| n > max) {
        return Err(ApiError::invalid_request(format!(
            "Invalid '{key}': integer above maximum value. Expected a value <= {max}, but got \
             {n} instead."
        ))
        .with_param(key)
        .with_code("integer_above_max_value"));
    }
    Ok(Some(n))
}

/// An optional number within `0..=max`.
fn decimal(obj: &Map<String, Value>, key: &str, max: f64) -> Result<Option<f64>, ApiError> {
    let Some(v) = field(obj, key) else {
        return Ok(None);
    };
    let Some(x) = v.as_f64() else {
        return Err(ApiError::invalid_type(key, "a decimal", v));
    };
    if x < 0.0 {
        return Err(ApiError::invalid_request(format!(
            "Invalid '{key}': decimal below minimum value. Expected a value >= 0, but got {v} \
             instead."
        ))
        .with_param(key)
        .with_code("decimal_below_min_value"));
    }
    if x > max {
        return Err(ApiError::invalid_request(format!(
            "Invalid '{key}': decimal above maximum value. Expected a value <= {max}, but got \
             {v} instead."
        ))
        .with_param(key)
        .with_code("decimal_above_max_value"));
    }
    Ok(Some(x))
}

/// Validates a body sent to `endpoint`. `key` is the request's bearer key,
/// which replayed `encrypted_content` blobs must have been minted under.
pub(crate) fn parse(
    json: Option<&Value>,
    endpoint: Endpoint,
    key: &str,
) -> Result<ResponsesRequest, ApiError> {
    let obj = json
        .ok_or_else(ApiError::bad_json)?
        .as_object()
        .ok_or_else(ApiError::bad_json)?;
    let known = match endpoint {
        Endpoint::Create => CREATE_FIELDS,
        Endpoint::InputTokens => INPUT_TOKENS_FIELDS,
    };
    if let Some(unknown) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(
            ApiError::invalid_request(format!("Unknown parameter: '{unknown}'."))
                .with_param(unknown.as_str())
                .with_code("unknown_parameter"),
        );
    }
    match (field(obj, "model"), endpoint) {
        (None, Endpoint::Create) => return Err(ApiError::missing("model")),
        (Some(Value::String(m)), Endpoint::Create) if m.is_empty() => {
            return Err(ApiError::missing("model"));
        }
        (None, Endpoint::InputTokens) | (Some(Value::String(_)), _) => {}
        (Some(v), _) => return Err(ApiError::invalid_type("model", "a string", v)),
    }
    refuse_stateful(obj)?;

    let stream = boolean(obj, "stream")?.unwrap_or(false);
    let obfuscation = stream_options(obj, stream)?;
    let instructions = string(obj, "instructions")?.map(str::to_owned);
    let store = boolean(obj, "store")?.unwrap_or(true);
    let items = input::parse(field(obj, "input"), store, key)?;
    let max_output_tokens = integer(obj, "max_output_tokens", MIN_OUTPUT_TOKENS, None)?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let tools = tools::tools(field(obj, "tools"))?;
    let choice = tools::tool_choice(field(obj, "tool_choice"), &tools.callable)?;
    let parallel_tool_calls = boolean(obj, "parallel_tool_calls")?.unwrap_or(true);
    let text = tools::text(field(obj, "text"))?;
    if text.format == Format::JsonObject && !mentions_json(&items) {
        return Err(ApiError::invalid_request(
            "Response input messages must contain the word 'json' in some form to use \
             'text.format' of type 'json_object'.",
        )
        .with_param("text.format"));
    }
    let (effort, reasoning_echo) = reasoning(obj)?;
    let encrypted = include(obj)?;
    let mut echo = echo(obj, store)?;
    echo.insert("instructions".to_owned(), json!(instructions));
    echo.insert("max_output_tokens".to_owned(), json!(max_output_tokens));
    echo.insert("parallel_tool_calls".to_owned(), json!(parallel_tool_calls));
    echo.insert("reasoning".to_owned(), reasoning_echo);
    echo.insert("text".to_owned(), text.echo.clone());
    echo.insert("tool_choice".to_owned(), choice.echo.clone());
    echo.insert("tools".to_owned(), Value::Array(tools.echo.clone()));

    Ok(ResponsesRequest {
        items,
        instructions,
        stream,
        obfuscation,
        max_output_tokens,
        tools,
        choice,
        parallel_tool_calls,
        text,
        reasoning: effort.map(|effort| Reasoning { effort, encrypted }),
        echo,
    })
}

/// The plain fields the response object echoes (defaults filled in), each
/// validated, and the free-form objects Codex and newer SDKs send.
fn echo(obj: &Map<String, Value>, store: bool) -> Result<Map<String, Value>, ApiError> {
    let mut echo = Map::new();
    let mut put = |k: &str, v: Value| {
        echo.insert(k.to_owned(), v);
    };
    put(
        "max_tool_calls",
        json!(integer(obj, "max_tool_calls", 1, None)?),
    );
    put("metadata", metadata(obj)?);
    put("prompt_cache_key", json!(string(obj, "prompt_cache_key")?));
    put(
        "prompt_cache_retention",
        json!(one_of(
            obj,
            "prompt_cache_retention",
            &["in_memory", "24h"]
        )?),
    );
    put(
        "safety_identifier",
        json!(string(obj, "safety_identifier")?),
    );
    let tier = one_of(obj, "service_tier", SERVICE_TIERS)?.unwrap_or("auto");
    put(
        "service_tier",
        json!(if tier == "auto" { "default" } else { tier }),
    );
    put("store", json!(store));
    put(
        "temperature",
        json!(decimal(obj, "temperature", 2.0)?.unwrap_or(1.0)),
    );
    put(
        "top_logprobs",
        json!(integer(obj, "top_logprobs", 0, Some(MAX_TOP_LOGPROBS))?.unwrap_or(0)),
    );
    put("top_p", json!(decimal(obj, "top_p", 1.0)?.unwrap_or(1.0)));
    put(
        "truncation",
        json!(one_of(obj, "truncation", &["auto", "disabled"])?.unwrap_or("disabled")),
    );
    put("user", json!(string(obj, "user")?));
    for (key, expected, ok) in [
        (
            "client_metadata",
            "an object",
            Value::is_object as fn(&Value) -> bool,
        ),
        ("prompt_cache_options", "an object", Value::is_object),
        ("moderation", "an object", Value::is_object),
        ("context_management", "an array", Value::is_array),
    ] {
        if let Some(v) = field(obj, key).filter(|v| !ok(v)) {
            return Err(ApiError::invalid_type(key, expected, v));
        }
    }
    Ok(echo)
}

/// `previous_response_id`, `conversation`, `background` and `prompt` need
/// stored state, which the emulator does not keep.
fn refuse_stateful(obj: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(id) = string(obj, "previous_response_id")? {
        return Err(ApiError::invalid_request(format!(
            "Previous response with id '{id}' not found."
        ))
        .with_param("previous_response_id")
        .with_code("previous_response_not_found"));
    }
    let stateless = |param: &'static str, what: &str| {
        ApiError::invalid_request(format!(
            "{what} not supported by this server: the anyint emulator stores nothing, so send \
             the whole conversation in 'input'."
        ))
        .with_param(param)
        .with_code("unsupported_parameter")
    };
    if field(obj, "conversation").is_some() {
        return Err(stateless("conversation", "Conversations are"));
    }
    if field(obj, "prompt").is_some() {
        return Err(stateless("prompt", "Stored prompts are"));
    }
    if boolean(obj, "background")? == Some(true) {
        return Err(stateless("background", "Background responses are"));
    }
    Ok(())
}

/// `stream_options` (only with `stream: true`): `include_obfuscation`.
fn stream_options(obj: &Map<String, Value>, stream: bool) -> Result<bool, ApiError> {
    match field(obj, "stream_options") {
        None => Ok(true),
        Some(_) if !stream => Err(ApiError::invalid_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        )
        .with_param("stream_options")),
        Some(Value::Object(so)) => match field(so, "include_obfuscation") {
            None => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(ApiError::invalid_type(
                "stream_options.include_obfuscation",
                "a boolean",
                v,
            )),
        },
        Some(v) => Err(ApiError::invalid_type("stream_options", "an object", v)),
    }
}

/// The `reasoning` object: the effort when reasoning is on, and the echo.
fn reasoning(obj: &Map<String, Value>) -> Result<(Option<String>, Value), ApiError> {
    let Some(v) = field(obj, "reasoning") else {
        return Ok((None, json!({"effort": null, "summary": null})));
    };
    let Value::Object(r) = v else {
        return Err(ApiError::invalid_type("reasoning", "an object", v));
    };
    let get = |key: &str, allowed: Option<&[&str]>| -> Result<Option<String>, ApiError> {
        let param = format!("reasoning.{key}");
        match field(r, key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if let Some(allowed) = allowed {
                    supported(&param, s, allowed)?;
                }
                Ok(Some(s.clone()))
            }
            Some(v) => Err(ApiError::invalid_type(&param, "a string", v)),
        }
    };
    let effort = get("effort", Some(EFFORTS))?;
    let summary = get("summary", Some(SUMMARIES))?;
    let generate = get("generate_summary", Some(SUMMARIES))?;
    get("context", Some(&["auto", "current_turn", "all_turns"]))?;
    get("mode", Some(&["standard", "pro"]))?;
    let echo = json!({"effort": effort, "summary": summary.or(generate)});
    Ok((effort.filter(|e| e != "none"), echo))
}

/// `include`; true when it asks for `reasoning.encrypted_content`.
fn include(obj: &Map<String, Value>) -> Result<bool, ApiError> {
    let list = match field(obj, "include") {
        None => return Ok(false),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(ApiError::invalid_type("include", "an array", v)),
    };
    let mut encrypted = false;
    for (i, v) in list.iter().enumerate() {
        let param = format!("include[{i}]");
        let Some(s) = v.as_str() else {
            return Err(ApiError::invalid_type(&param, "a string", v));
        };
        supported(&param, s, INCLUDES)?;
        encrypted |= s == "reasoning.encrypted_content";
    }
    Ok(encrypted)
}

/// `metadata`: at most 16 string pairs (keys ≤ 64, values ≤ 512 chars).
fn metadata(obj: &Map<String, Value>) -> Result<Value, ApiError> {
    let map = match field(obj, "metadata") {
        None => return Ok(json!({})),
        Some(Value::Object(m)) => m,
        Some(v) => return Err(ApiError::invalid_type("metadata", "an object", v)),
    };
    if map.len() > MAX_METADATA_PAIRS {
        return Err(ApiError::invalid_value(
            "metadata",
            format!(
                "Invalid 'metadata': too many properties. Expected an object with at most \
                 {MAX_METADATA_PAIRS} properties, but got an object with {} properties instead.",
                map.len()
            ),
        ));
    }
    for (k, v) in map {
        let param = format!("metadata.{k}");
        if k.chars().count() > MAX_METADATA_KEY {
            return Err(ApiError::invalid_value(
                "metadata",
                format!(
                    "Invalid 'metadata': key too long. Expected a key with maximum length \
                     {MAX_METADATA_KEY}, but got '{k}'."
                ),
            ));
        }
        let Some(s) = v.as_str() else {
            return Err(ApiError::invalid_type(&param, "a string", v));
        };
        if s.chars().count() > MAX_METADATA_VALUE {
            return Err(ApiError::invalid_value(
                &param,
                format!(
                    "Invalid '{param}': string too long. Expected a string with maximum length \
                     {MAX_METADATA_VALUE}, but got a string with length {} instead.",
                    s.chars().count()
                ),
            ));
        }
    }
    Ok(Value::Object(map.clone()))
}

/// True when some input message contains "json" (any case); text in
/// `instructions` alone does not count, as with the real API.
fn mentions_json(items: &[Item]) -> bool {
    items.iter().any(|i| match i {
        Item::Message { text, .. } => text.to_ascii_lowercase().contains("json"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &Value) -> Result<ResponsesRequest, ApiError> {
        parse(Some(body), Endpoint::Create, "k")
    }

    fn err(body: &Value) -> ApiError {
        create(body).unwrap_err()
    }

    #[test]
    fn unknown_and_required_fields() {
        let e = err(&json!({"model": "m", "input": "hi", "messages": []}));
        assert_eq!(e.message, "Unknown parameter: 'messages'.");
        assert_eq!(
            (e.param.as_deref(), e.code),
            (Some("messages"), Some("unknown_parameter"))
        );
        assert!(create(&json!({"model": "m", "input": "hi", "client_metadata": {"x-codex-installation-id": "i"}})).is_ok());
        assert_eq!(err(&json!({"input": "hi"})).param.as_deref(), Some("model"));
        // input_tokens knows fewer fields and needs no model.
        let tokens = |b: &Value| parse(Some(b), Endpoint::InputTokens, "k");
        assert!(tokens(&json!({"input": "hi"})).is_ok());
        assert!(tokens(&json!({"input": "hi", "stream": true})).is_err());
    }

    #[test]
    fn stateful_features_are_refused() {
        let e = err(&json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}));
        assert_eq!(e.code, Some("previous_response_not_found"));
        assert_eq!(e.message, "Previous response with id 'resp_1' not found.");
        assert_eq!(
            err(&json!({"model": "m", "conversation": "conv_1"}))
                .param
                .as_deref(),
            Some("conversation")
        );
        assert_eq!(
            err(&json!({"model": "m", "background": true}))
                .param
                .as_deref(),
            Some("background")
        );
        assert!(create(&json!({"model": "m", "background": false})).is_ok());
    }

    #[test]
    fn ranges() {
        let e = err(&json!({"model": "m", "max_output_tokens": 5}));
        assert_eq!(
            e.message,
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, \
             but got 5 instead."
        );
        assert_eq!(e.code, Some("integer_below_min_value"));
        assert_eq!(
            err(&json!({"model": "m", "temperature": 3})).code,
            Some("decimal_above_max_value")
        );
        assert_eq!(
            err(&json!({"model": "m", "top_logprobs": 21})).code,
            Some("integer_above_max_value")
        );
        assert_eq!(
            err(&json!({"model": "m", "include": ["nope"]}))
                .param
                .as_deref(),
            Some("include[0]")
        );
        assert_eq!(
            err(&json!({"model": "m", "reasoning": {"effort": "huge"}}))
                .param
                .as_deref(),
            Some("reasoning.effort")
        );
        assert_eq!(
            err(&json!({"model": "m", "stream_options": {}}))
                .param
                .as_deref(),
            Some("stream_options")
        );
    }

    #[test]
    fn json_object_needs_the_word_json() {
        let mut body = json!({"model": "m", "input": "hi", "instructions": "answer in JSON",
            "text": {"format": {"type": "json_object"}}});
        assert_eq!(err(&body).param.as_deref(), Some("text.format"));
        body["input"] = json!("give me Json");
        assert!(create(&body).is_ok());
    }

    #[test]
    fn echo_defaults_and_options() {
        let r = create(&json!({"model": "m", "input": "hi", "stream": true,
            "stream_options": {"include_obfuscation": false},
            "reasoning": {"effort": "low", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
            "service_tier": "auto", "store": false, "metadata": {"a": "b"}}))
        .unwrap();
        assert!(r.stream && !r.obfuscation);
        let reasoning = Reasoning {
            effort: "low".to_owned(),
            encrypted: true,
        };
        assert_eq!(r.reasoning, Some(reasoning));
        assert_eq!(r.echo["service_tier"], "default");
        assert_eq!(r.echo["store"], false);
        assert_eq!(
            r.echo["reasoning"],
            json!({"effort": "low", "summary": "auto"})
        );
        assert_eq!(r.echo["tool_choice"], "auto");
        assert_eq!(r.echo["temperature"], 1.0);
        let off = create(&json!({"model": "m", "reasoning": {"effort": "none"}})).unwrap();
        assert_eq!(off.reasoning, None);
        assert_eq!(off.echo["reasoning"]["effort"], "none");
    }
}
