//! `contents` and their parts: roles, non-empty parts, exactly one data
//! field per part and that field's shape, and what a part counts as
//! prompt tokens.

use serde_json::{Map, Value};

use super::fields::{bad_value, get, known};
use crate::gemini::error::GoogleError;
use crate::util::quarter_tokens;

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

pub(super) fn contents(obj: &Map<String, Value>, msg: &str) -> Result<Vec<Value>, GoogleError> {
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

pub(super) fn part(p: &Value, at: &str, msg: &str) -> Result<(), GoogleError> {
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
pub(super) fn part_tokens(p: &Value) -> usize {
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
