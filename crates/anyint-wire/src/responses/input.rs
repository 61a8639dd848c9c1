//! A client's `input` items → canonical system blocks and messages.
//!
//! Items on the model's side (assistant messages, `reasoning`, `function_call`,
//! `custom_tool_call`) that follow each other form one assistant turn, in order, so a reasoning
//! item stays in the turn of the call it led to (Anthropic requires it). Each user message is
//! its own turn, and each function result its own `Role::Tool` message (as Chat Completions
//! has them). See the module docs of [`crate::responses`] for the mapping.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::blob;
use super::tools::flat_name;
use crate::DecodeError;
use crate::canonical::{ChatRequest, ImageSource, Message, Part, Role};

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn err(path: String, message: impl Into<String>) -> DecodeError {
    DecodeError::at("input", path, message)
}

/// A `data:` URL becomes inline base64; anything else stays a URL.
fn image_source(url: &str) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    ImageSource::Url(url.to_owned())
}

/// What a content part may be at a place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// System or developer text: text only.
    System,
    /// A user message or a tool result: text and images.
    User,
    /// Assistant history: output text and refusals.
    Assistant,
}

/// `content` (a string or parts) at `path` as canonical parts. Empty text is dropped.
fn content(v: Option<&Value>, path: &str, place: Place) -> Result<Vec<Part>, DecodeError> {
    let parts = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::text(s.clone())]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(err(
                path.to_owned(),
                format!("{path} must be a string or an array of content parts"),
            ));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{path}[{j}]");
        let kind = string(p, "type").unwrap_or_default();
        let text_key = match (kind, place) {
            ("input_text" | "output_text" | "text", _) => Some("text"),
            ("refusal", Place::Assistant) => Some("refusal"),
            _ => None,
        };
        if let Some(key) = text_key {
            let text = string(p, key).ok_or_else(|| {
                err(
                    format!("{at}.{key}"),
                    format!("{at}.{key} must be a string"),
                )
            })?;
            if !text.is_empty() {
                out.push(Part::text(text));
            }
            continue;
        }
        match (kind, place) {
            ("input_image", Place::User) => {
                let url = string(p, "image_url").ok_or_else(|| {
                    err(
                        format!("{at}.image_url"),
                        format!("{at}.image_url must be a URL or a data URL"),
                    )
                })?;
                out.push(Part::Image {
                    source: image_source(url),
                    detail: string(p, "detail").map(str::to_owned),
                    cache: None,
                });
            }
            _ => {
                return Err(err(
                    format!("{at}.type"),
                    format!("{at}.type `{kind}` cannot be used here"),
                ));
            }
        }
    }
    Ok(out)
}

/// Appends model-side parts to the current assistant turn, opening one when needed.
fn push_assistant(req: &mut ChatRequest, parts: Vec<Part>) {
    match req.messages.last_mut() {
        Some(m) if m.role == Role::Assistant => m.parts.extend(parts),
        _ => req.messages.push(Message {
            role: Role::Assistant,
            parts,
        }),
    }
}

fn required<'v>(item: &'v Value, key: &str, path: &str) -> Result<&'v str, DecodeError> {
    string(item, key).ok_or_else(|| {
        err(
            format!("{path}.{key}"),
            format!("{path}.{key} must be a string"),
        )
    })
}

/// Decodes `input` (a string, or items) into `req.system` and `req.messages`.
pub(super) fn decode(input: Option<&Value>, req: &mut ChatRequest) -> Result<(), DecodeError> {
    let items = match input {
        None | Some(Value::Null) => {
            return Err(DecodeError::field("input", "you must provide `input`"));
        }
        Some(Value::String(s)) => {
            req.messages.push(Message {
                role: Role::User,
                parts: vec![Part::text(s.clone())],
            });
            return Ok(());
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(DecodeError::field(
                "input",
                "`input` must be a string or an array of items",
            ));
        }
    };
    // call_id → canonical function name, for tool results (Gemini needs the name).
    let mut calls: HashMap<String, String> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        if !item.is_object() {
            return Err(err(path.clone(), format!("{path} must be an object")));
        }
        match string(item, "type").unwrap_or("message") {
            "message" => message(item, &path, req)?,
            kind @ ("function_call" | "custom_tool_call") => {
                let call_id = required(item, "call_id", &path)?;
                let name = flat_name(string(item, "namespace"), required(item, "name", &path)?);
                let arguments = if kind == "custom_tool_call" {
                    let input = string(item, "input").unwrap_or_default();
                    json!({"input": input}).to_string()
                } else {
                    match item.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        None | Some(Value::Null) => "{}".to_owned(),
                        // Lenient clients send the object itself.
                        Some(other) => other.to_string(),
                    }
                };
                calls.insert(call_id.to_owned(), name.clone());
                push_assistant(
                    req,
                    vec![Part::ToolCall {
                        id: call_id.to_owned(),
                        name,
                        arguments,
                    }],
                );
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = required(item, "call_id", &path)?;
                let output = content(item.get("output"), &format!("{path}.output"), Place::User)?;
                req.messages.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: call_id.to_owned(),
                        name: calls.get(call_id).cloned(),
                        content: output,
                        is_error: false,
                        cache: None,
                    }],
                });
            }
            "reasoning" => {
                if let Some(part) = reasoning(item, &path)? {
                    push_assistant(req, vec![part]);
                }
            }
            // A search the upstream ran in an earlier turn (Codex replays it without its id or
            // sources): it carries nothing the model needs, since the answer that followed
            // holds what it found, and no upstream could take it back (web-search.md §5).
            "web_search_call" => {}
            other => {
                // The native-only scan refuses these first, naming the feature.
                return Err(err(
                    format!("{path}.type"),
                    format!("{path}.type `{other}` cannot be translated for this model"),
                ));
            }
        }
    }
    if req.messages.is_empty() {
        return Err(DecodeError::field(
            "input",
            "`input` must contain at least one user or assistant item",
        ));
    }
    Ok(())
}

/// One message item. System and developer messages before the conversation starts go to
/// `system`; later ones stay in place as a user turn (see the module docs).
fn message(item: &Value, path: &str, req: &mut ChatRequest) -> Result<(), DecodeError> {
    let role = string(item, "role").unwrap_or_default();
    let at = format!("{path}.content");
    match role {
        "system" | "developer" => {
            let parts = content(item.get("content"), &at, Place::System)?;
            if req.messages.is_empty() {
                req.system.extend(parts);
            } else if !parts.is_empty() {
                req.messages.push(Message {
                    role: Role::User,
                    parts,
                });
            }
        }
        "user" => {
            let parts = content(item.get("content"), &at, Place::User)?;
            if !parts.is_empty() {
                req.messages.push(Message {
                    role: Role::User,
                    parts,
                });
            }
        }
        "assistant" => {
            let parts = content(item.get("content"), &at, Place::Assistant)?;
            if !parts.is_empty() {
                push_assistant(req, parts);
            }
        }
        _ => {
            return Err(err(
                format!("{path}.role"),
                format!("{path}.role must be one of user, assistant, system, developer"),
            ));
        }
    }
    Ok(())
}

/// The text of a reasoning item: its summary parts joined by a blank line, else its
/// `reasoning_text` content.
pub(super) fn reasoning_text(item: &Value) -> String {
    let texts = |key: &str| -> Vec<&str> {
        item.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| string(p, "text"))
            .collect()
    };
    let summary = texts("summary");
    if summary.is_empty() {
        texts("content").concat()
    } else {
        summary.join("\n\n")
    }
}

/// A reasoning item as a canonical part; `None` when it carries nothing.
fn reasoning(item: &Value, path: &str) -> Result<Option<Part>, DecodeError> {
    let text = reasoning_text(item);
    let (signature, redacted) = match item.get("encrypted_content") {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(s)) => blob::read(s).map_err(|()| {
            err(
                format!("{path}.encrypted_content"),
                format!(
                    "{path}.encrypted_content is not a valid reasoning blob from this gateway; \
                     send reasoning items back exactly as they were received"
                ),
            )
        })?,
        Some(_) => {
            return Err(err(
                format!("{path}.encrypted_content"),
                format!("{path}.encrypted_content must be a string"),
            ));
        }
    };
    if text.is_empty() && signature.is_none() && redacted.is_none() {
        return Ok(None);
    }
    Ok(Some(Part::Reasoning {
        text,
        signature,
        redacted,
    }))
}
