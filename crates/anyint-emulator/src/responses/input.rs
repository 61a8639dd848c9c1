//! Validation of a Responses request's `input` (a string or a list of
//! items) into [`Item`]s, rejecting what the real API rejects: bad roles
//! and parts, tool outputs without their call (and calls without their
//! output), foreign `encrypted_content` blobs, `item_reference`s (the
//! emulator stores nothing) and hosted-tool items.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::blob;
use crate::error::ApiError;

const ROLES: &[&str] = &["user", "assistant", "system", "developer"];
const ITEM_TYPES: &str = "'message', 'function_call', 'function_call_output', \
                          'custom_tool_call', 'custom_tool_call_output', 'reasoning', and \
                          'item_reference'";
/// Item types of the hosted tools (and compaction), which the emulator
/// does not serve.
const HOSTED_ITEMS: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "image_generation_call",
    "code_interpreter_call",
    "tool_search_call",
    "tool_search_output",
    "compaction",
];

/// Whether a call or output belongs to a function or a custom tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    Function,
    Custom,
}

impl CallKind {
    /// "function call" / "custom tool call", as the API's errors word it.
    fn wording(self) -> &'static str {
        match self {
            Self::Function => "function call",
            Self::Custom => "custom tool call",
        }
    }
}

/// One validated input item, reduced to what the content rules and the
/// token count read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A message; `text` joins its text parts.
    Message { role: String, text: String },
    /// A replayed `function_call` (`payload` = arguments) or
    /// `custom_tool_call` (`payload` = input).
    Call {
        kind: CallKind,
        call_id: String,
        name: String,
        payload: String,
    },
    /// A tool result; `text` is the output string or its text parts.
    Output {
        kind: CallKind,
        call_id: String,
        text: String,
    },
    /// A replayed reasoning item; `text` joins its summary.
    Reasoning { text: String },
}

/// `obj[key]`, treating an explicit `null` as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A required string field.
fn string<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, ApiError> {
    match field(obj, key) {
        None => Err(ApiError::missing(&format!("{at}.{key}"))),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(ApiError::invalid_type(
            &format!("{at}.{key}"),
            "a string",
            v,
        )),
    }
}

/// An optional string field.
fn opt_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a str>, ApiError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(ApiError::invalid_type(
            &format!("{at}.{key}"),
            "a string",
            v,
        )),
    }
}

fn one_of(param: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
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

/// Text of the last `user` message of a raw, unvalidated `input` (for the
/// fault directive, read before validation). Empty if none.
pub(crate) fn raw_last_user_text(input: Option<&Value>) -> String {
    match input {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .rev()
            .find(|i| {
                i.get("role").and_then(Value::as_str) == Some("user")
                    && i.get("type").and_then(Value::as_str).unwrap_or("message") == "message"
            })
            .map(|m| match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect(),
                _ => String::new(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Text of the last `user` message (empty if none).
pub(crate) fn last_user_text(items: &[Item]) -> &str {
    items
        .iter()
        .rev()
        .find_map(|i| match i {
            Item::Message { role, text } if role == "user" => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// Tool calls seen so far and whether each got its output: the API binds
/// outputs to earlier calls one-to-one and wants every call answered.
#[derive(Default)]
struct Pairing {
    /// call_id → (kind, answered).
    calls: HashMap<String, (CallKind, bool)>,
    /// call_ids in input order.
    order: Vec<String>,
}

impl Pairing {
    fn call(&mut self, kind: CallKind, call_id: &str) {
        if self
            .calls
            .insert(call_id.to_owned(), (kind, false))
            .is_none()
        {
            self.order.push(call_id.to_owned());
        }
    }

    fn answer(&mut self, kind: CallKind, call_id: &str) -> Result<(), ApiError> {
        match self.calls.get_mut(call_id) {
            Some((k, answered)) if *k == kind => {
                *answered = true;
                Ok(())
            }
            _ => Err(ApiError::invalid_request(format!(
                "No tool call found for {} output with call_id {call_id}.",
                kind.wording()
            ))
            .with_param("input")),
        }
    }

    /// The first call left without an output, as the API reports it.
    fn check(&self) -> Result<(), ApiError> {
        for id in &self.order {
            if let Some((kind, false)) = self.calls.get(id) {
                return Err(ApiError::invalid_request(format!(
                    "No tool output found for {} {id}.",
                    kind.wording()
                ))
                .with_param("input"));
            }
        }
        Ok(())
    }
}

/// Validates `input`. `store` is the request's `store`; `key` the bearer
/// key, which `encrypted_content` blobs must have been minted under.
pub(crate) fn parse(input: Option<&Value>, store: bool, key: &str) -> Result<Vec<Item>, ApiError> {
    let list = match input {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => {
            return Ok(vec![Item::Message {
                role: "user".to_owned(),
                text: s.clone(),
            }]);
        }
        Some(Value::Array(list)) => list,
        Some(v) => return Err(ApiError::invalid_type("input", "a string or array", v)),
    };
    let mut pairing = Pairing::default();
    let mut items = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let at = format!("input[{i}]");
        let Some(obj) = raw.as_object() else {
            return Err(ApiError::invalid_type(&at, "an object", raw));
        };
        items.push(item(obj, &at, &mut pairing, store, key)?);
    }
    pairing.check()?;
    Ok(items)
}

/// One input item, by its `type` (a message when absent).
fn item(
    obj: &Map<String, Value>,
    at: &str,
    pairing: &mut Pairing,
    store: bool,
    key: &str,
) -> Result<Item, ApiError> {
    let kind = match field(obj, "type") {
        None => "message",
        Some(Value::String(t)) => t.as_str(),
        Some(v) => return Err(ApiError::invalid_type(&format!("{at}.type"), "a string", v)),
    };
    match kind {
        "message" => message(obj, at),
        "function_call" | "custom_tool_call" => {
            let (kind, payload_key) = if kind == "function_call" {
                (CallKind::Function, "arguments")
            } else {
                (CallKind::Custom, "input")
            };
            let call_id = string(obj, "call_id", at)?;
            let name = string(obj, "name", at)?;
            let payload = string(obj, payload_key, at)?;
            opt_string(obj, "namespace", at)?;
            pairing.call(kind, call_id);
            Ok(Item::Call {
                kind,
                call_id: call_id.to_owned(),
                name: name.to_owned(),
                payload: payload.to_owned(),
            })
        }
        "function_call_output" | "custom_tool_call_output" => {
            let kind = if kind == "function_call_output" {
                CallKind::Function
            } else {
                CallKind::Custom
            };
            let call_id = string(obj, "call_id", at)?;
            pairing.answer(kind, call_id)?;
            Ok(Item::Output {
                kind,
                call_id: call_id.to_owned(),
                text: output_text(obj, at)?,
            })
        }
        "reasoning" => reasoning(obj, at, store, key),
        "item_reference" => {
            let id = string(obj, "id", at)?;
            Err(ApiError::invalid_request(format!(
                "Item with id '{id}' not found: this server stores no items, so \
                 'item_reference' cannot be resolved. Send the item itself instead."
            ))
            .with_param(format!("{at}.id"))
            .with_code("item_not_found"))
        }
        hosted if HOSTED_ITEMS.contains(&hosted) => Err(ApiError::invalid_request(format!(
            "Input items of type '{hosted}' are not supported by this server (the anyint \
             emulator serves no hosted tools and no compaction)."
        ))
        .with_param(format!("{at}.type"))
        .with_code("unsupported_value")),
        other => Err(ApiError::invalid_value(
            &format!("{at}.type"),
            format!("Invalid value: '{other}'. Supported values are: {ITEM_TYPES}."),
        )),
    }
}

fn message(obj: &Map<String, Value>, at: &str) -> Result<Item, ApiError> {
    let role = string(obj, "role", at)?;
    one_of(&format!("{at}.role"), role, ROLES)?;
    if let Some(phase) = opt_string(obj, "phase", at)? {
        one_of(
            &format!("{at}.phase"),
            phase,
            &["commentary", "final_answer"],
        )?;
    }
    let text = match field(obj, "content") {
        None => return Err(ApiError::missing(&format!("{at}.content"))),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                text.push_str(&content_part(part, role, &format!("{at}.content[{j}]"))?);
            }
            text
        }
        Some(v) => {
            return Err(ApiError::invalid_type(
                &format!("{at}.content"),
                "a string or array",
                v,
            ));
        }
    };
    Ok(Item::Message {
        role: role.to_owned(),
        text,
    })
}

/// Validates one content part of a message with `role`; returns its text
/// (empty for images, files and refusals).
fn content_part(part: &Value, role: &str, at: &str) -> Result<String, ApiError> {
    let Some(obj) = part.as_object() else {
        return Err(ApiError::invalid_type(at, "an object", part));
    };
    let kind = string(obj, "type", at)?;
    if role == "assistant" {
        one_of(&format!("{at}.type"), kind, &["output_text", "refusal"])?;
        return if kind == "output_text" {
            Ok(string(obj, "text", at)?.to_owned())
        } else {
            string(obj, "refusal", at)?;
            Ok(String::new())
        };
    }
    input_part(obj, kind, at)
}

/// An `input_text` / `input_image` / `input_file` / `input_audio` part.
fn input_part(obj: &Map<String, Value>, kind: &str, at: &str) -> Result<String, ApiError> {
    one_of(
        &format!("{at}.type"),
        kind,
        &["input_text", "input_image", "input_file", "input_audio"],
    )?;
    match kind {
        "input_text" => return Ok(string(obj, "text", at)?.to_owned()),
        "input_image" => {
            let url = opt_string(obj, "image_url", at)?;
            let file = opt_string(obj, "file_id", at)?;
            if url.is_none() && file.is_none() {
                return Err(ApiError::missing(&format!("{at}.image_url")));
            }
            if let Some(detail) = opt_string(obj, "detail", at)? {
                one_of(
                    &format!("{at}.detail"),
                    detail,
                    &["low", "high", "auto", "original"],
                )?;
            }
        }
        "input_file" => {
            let mut any = false;
            for key in ["file_id", "file_data", "file_url"] {
                any |= opt_string(obj, key, at)?.is_some();
            }
            opt_string(obj, "filename", at)?;
            if !any {
                return Err(ApiError::missing(&format!("{at}.file_id")));
            }
        }
        _ => {
            let audio = match field(obj, "input_audio") {
                None => return Err(ApiError::missing(&format!("{at}.input_audio"))),
                Some(Value::Object(a)) => a,
                Some(v) => {
                    return Err(ApiError::invalid_type(
                        &format!("{at}.input_audio"),
                        "an object",
                        v,
                    ));
                }
            };
            let here = format!("{at}.input_audio");
            string(audio, "data", &here)?;
            one_of(
                &format!("{here}.format"),
                string(audio, "format", &here)?,
                &["mp3", "wav"],
            )?;
        }
    }
    Ok(String::new())
}

/// The `output` of a tool result: a string or text/image/file parts.
fn output_text(obj: &Map<String, Value>, at: &str) -> Result<String, ApiError> {
    match field(obj, "output") {
        None => Err(ApiError::missing(&format!("{at}.output"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let here = format!("{at}.output[{j}]");
                let Some(p) = part.as_object() else {
                    return Err(ApiError::invalid_type(&here, "an object", part));
                };
                let kind = string(p, "type", &here)?;
                one_of(
                    &format!("{here}.type"),
                    kind,
                    &["input_text", "input_image", "input_file"],
                )?;
                text.push_str(&input_part(p, kind, &here)?);
            }
            Ok(text)
        }
        Some(v) => Err(ApiError::invalid_type(
            &format!("{at}.output"),
            "a string or array",
            v,
        )),
    }
}

fn reasoning(obj: &Map<String, Value>, at: &str, store: bool, key: &str) -> Result<Item, ApiError> {
    let summary = match field(obj, "summary") {
        None => return Err(ApiError::missing(&format!("{at}.summary"))),
        Some(Value::Array(s)) => s,
        Some(v) => {
            return Err(ApiError::invalid_type(
                &format!("{at}.summary"),
                "an array",
                v,
            ));
        }
    };
    let mut text = Vec::new();
    for (j, part) in summary.iter().enumerate() {
        let here = format!("{at}.summary[{j}]");
        let Some(p) = part.as_object() else {
            return Err(ApiError::invalid_type(&here, "an object", part));
        };
        one_of(
            &format!("{here}.type"),
            string(p, "type", &here)?,
            &["summary_text"],
        )?;
        text.push(string(p, "text", &here)?);
    }
    if let Some(content) = field(obj, "content") {
        let Value::Array(parts) = content else {
            return Err(ApiError::invalid_type(
                &format!("{at}.content"),
                "an array",
                content,
            ));
        };
        for (j, part) in parts.iter().enumerate() {
            let here = format!("{at}.content[{j}]");
            let Some(p) = part.as_object() else {
                return Err(ApiError::invalid_type(&here, "an object", part));
            };
            one_of(
                &format!("{here}.type"),
                string(p, "type", &here)?,
                &["reasoning_text"],
            )?;
            string(p, "text", &here)?;
        }
    }
    let id = opt_string(obj, "id", at)?;
    match opt_string(obj, "encrypted_content", at)? {
        Some(blob) if !blob::verify(key, blob) => {
            let name = id.map_or_else(String::new, |id| format!(" for item {id}"));
            return Err(ApiError::invalid_request(format!(
                "The encrypted content{name} could not be verified."
            ))
            .with_code("invalid_encrypted_content"));
        }
        Some(_) => {}
        None => {
            if let (Some(id), false) = (id, store) {
                let mut err = ApiError::invalid_request(format!(
                    "Item with id '{id}' not found. Items are not persisted when `store` is set \
                     to false. Try again with `store` set to true, or remove this item from \
                     your input."
                ))
                .with_param("input");
                err.status = StatusCode::NOT_FOUND;
                return Err(err);
            }
        }
    }
    Ok(Item::Reasoning {
        text: text.join("\n\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(input: &Value) -> ApiError {
        parse(Some(input), true, "k").unwrap_err()
    }

    #[test]
    fn string_input_is_one_user_message() {
        let items = parse(Some(&json!("hi")), true, "k").unwrap();
        assert_eq!(last_user_text(&items), "hi");
        assert_eq!(raw_last_user_text(Some(&json!("hi"))), "hi");
    }

    #[test]
    fn messages_in_easy_and_typed_form() {
        let input = json!([
            {"role": "developer", "content": "be brief"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "a"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "f.pdf"},
                {"type": "input_text", "text": "b"}]},
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "phase": "final_answer",
             "content": [{"type": "output_text", "text": "ok", "annotations": []}, {"type": "refusal", "refusal": "no"}]}
        ]);
        let items = parse(Some(&input), true, "k").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(last_user_text(&items), "ab");
        assert_eq!(raw_last_user_text(Some(&input)), "ab");
    }

    #[test]
    fn bad_roles_and_parts() {
        let e = err(&json!([{"role": "bot", "content": "x"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].role"));
        let e =
            err(&json!([{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].type"));
        let e = err(&json!([{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].type"));
        let e = err(&json!([{"role": "user"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content"));
        let e = err(&json!([{"type": "bogus"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].type"));
        let e = err(&json!([{"type": "web_search_call", "id": "ws_1"}]));
        assert_eq!(e.code, Some("unsupported_value"));
        let e = err(&json!([{"type": "item_reference", "id": "msg_1"}]));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn calls_and_outputs_pair_up() {
        let call =
            json!({"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"});
        let out = json!({"type": "function_call_output", "call_id": "call_1", "output": "sunny"});
        let items = parse(Some(&json!([call, out])), true, "k").unwrap();
        assert!(matches!(&items[1], Item::Output { text, .. } if text == "sunny"));

        let e = err(&json!([out]));
        assert_eq!(
            e.message,
            "No tool call found for function call output with call_id call_1."
        );
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = err(&json!([call]));
        assert_eq!(e.message, "No tool output found for function call call_1.");
        // A custom output does not answer a function call.
        let custom_out =
            json!({"type": "custom_tool_call_output", "call_id": "call_1", "output": "x"});
        assert!(
            err(&json!([call, custom_out]))
                .message
                .contains("custom tool call")
        );
        // Arguments must be a string.
        let bad = json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": {}});
        assert_eq!(
            err(&json!([bad])).param.as_deref(),
            Some("input[0].arguments")
        );
    }

    #[test]
    fn reasoning_blobs_must_be_ours() {
        let ours = blob::mint("k", b"s");
        let item =
            json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": ours});
        assert!(parse(Some(&json!([item])), false, "k").is_ok());
        // Under another key, or forged: 400 invalid_encrypted_content.
        let e = parse(Some(&json!([item])), false, "other").unwrap_err();
        assert_eq!(e.code, Some("invalid_encrypted_content"));
        let forged = json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAAAABxyz"});
        assert_eq!(
            err(&json!([forged])).code,
            Some("invalid_encrypted_content")
        );
        // An id without a blob cannot be looked up when nothing is stored.
        let bare = json!({"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}]});
        let e = parse(Some(&json!([bare])), false, "k").unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert!(parse(Some(&json!([bare])), true, "k").is_ok());
        let e = err(&json!([{"type": "reasoning"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].summary"));
    }
}
