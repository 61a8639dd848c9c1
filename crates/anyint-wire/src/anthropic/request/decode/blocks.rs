//! Content blocks (in messages, the system prompt and tool results): which types may appear
//! where, each block's fields, image sources, `cache_control`, and error paths that point at
//! the block.

use serde_json::{Map, Value};

use super::shared::{Version, err, take, take_str};
use crate::DecodeError;
use crate::canonical::signature::{self, Origin};
use crate::canonical::{CacheControl, ImageSource, Part};

/// Where a block sits, which decides the block types it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    System,
    User,
    Assistant,
    ToolResult,
}

/// A block list's location, for error messages.
pub(super) struct At<'a> {
    pub(super) param: &'static str,
    pub(super) path: String,
    pub(super) place: Place,
    pub(super) version: Version<'a>,
}

impl At<'_> {
    fn err(&self, j: usize, msg: impl std::fmt::Display) -> DecodeError {
        err(self.param, format!("{}.{j}{msg}", self.path))
    }
}

pub(super) fn decode_blocks(blocks: Vec<Value>, at: &At<'_>) -> Result<Vec<Part>, DecodeError> {
    blocks
        .into_iter()
        .enumerate()
        .map(|(j, b)| decode_block(b, j, at))
        .collect()
}

fn decode_block(b: Value, j: usize, at: &At<'_>) -> Result<Part, DecodeError> {
    let Value::Object(mut b) = b else {
        return Err(at.err(j, ": Input should be a valid dictionary"));
    };
    let Some(Value::String(kind)) = b.remove("type") else {
        return Err(at.err(j, ".type: Field required"));
    };
    let cache = decode_cache(take(&mut b, "cache_control"), j, at)?;
    let string = |b: &mut Map<String, Value>, key: &str| match take_str(b, key) {
        Some(Ok(s)) => Ok(s),
        _ => Err(at.err(j, format_args!(".{key}: Input should be a valid string"))),
    };
    let allowed = match kind.as_str() {
        "text" => true,
        "image" => at.place != Place::System,
        "tool_use" => at.place == Place::Assistant,
        "tool_result" => at.place == Place::User,
        "thinking" | "redacted_thinking" => matches!(at.place, Place::User | Place::Assistant),
        "document" => {
            return Err(at.err(
                j,
                ": `document` blocks are not supported by this gateway; send the text or page images instead",
            ));
        }
        other => {
            return Err(at.err(
                j,
                format_args!(
                    ".type: content block type `{other}` is not supported by this gateway"
                ),
            ));
        }
    };
    if !allowed {
        return Err(at.err(
            j,
            format_args!(
                ": `{kind}` blocks are not allowed in {}",
                place_name(at.place)
            ),
        ));
    }
    Ok(match kind.as_str() {
        "text" => {
            let has_citations = take(&mut b, "citations")
                .is_some_and(|c| c.as_array().is_none_or(|a| !a.is_empty()));
            if has_citations && at.place == Place::User && at.version.without_sampling() {
                return Err(at.err(
                    j,
                    format_args!(
                        ".citations: not allowed in user messages with anthropic-version {}",
                        at.version.0
                    ),
                ));
            }
            Part::Text {
                text: string(&mut b, "text")?,
                cache,
            }
        }
        "image" => Part::Image {
            source: decode_image(take(&mut b, "source"), j, at)?,
            detail: None,
            cache,
        },
        "tool_use" => {
            let id = string(&mut b, "id")?;
            let name = string(&mut b, "name")?;
            let arguments = match take(&mut b, "input") {
                Some(input @ Value::Object(_)) => input.to_string(),
                _ => return Err(at.err(j, ".input: Input should be a valid dictionary")),
            };
            Part::ToolCall {
                id,
                name,
                arguments,
            }
        }
        "tool_result" => decode_tool_result(b, cache, j, at)?,
        "thinking" => Part::Reasoning {
            text: string(&mut b, "thinking")?,
            signature: match take_str(&mut b, "signature") {
                None => None,
                Some(Ok(s)) if s.is_empty() => None,
                // Untagged: one Anthropic issued; tagged: another family's, given to this
                // client earlier in the conversation.
                Some(Ok(s)) => Some(signature::from_wire(Origin::Anthropic, &s)),
                Some(Err(_)) => {
                    return Err(at.err(j, ".signature: Input should be a valid string"));
                }
            },
            redacted: None,
        },
        // Only "redacted_thinking" is left: every other kind returned above.
        _ => Part::Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some(string(&mut b, "data")?),
        },
    })
}

fn place_name(p: Place) -> &'static str {
    match p {
        Place::System => "the system prompt",
        Place::User => "user messages",
        Place::Assistant => "assistant messages",
        Place::ToolResult => "tool results",
    }
}

fn decode_cache(
    v: Option<Value>,
    j: usize,
    at: &At<'_>,
) -> Result<Option<CacheControl>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    cache_control(v).map(Some).map_err(|m| at.err(j, m))
}

/// `{type: "ephemeral", ttl?}`; the error is a message suffix starting at `.cache_control`.
pub(super) fn cache_control(v: Value) -> Result<CacheControl, &'static str> {
    let Value::Object(mut c) = v else {
        return Err(".cache_control: Input should be a valid dictionary");
    };
    if c.get("type").and_then(Value::as_str) != Some("ephemeral") {
        return Err(".cache_control.type: Input should be 'ephemeral'");
    }
    let ttl = match take_str(&mut c, "ttl") {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Err(".cache_control.ttl: Input should be '5m' or '1h'"),
    };
    Ok(CacheControl { ttl })
}

fn decode_image(source: Option<Value>, j: usize, at: &At<'_>) -> Result<ImageSource, DecodeError> {
    let Some(Value::Object(mut s)) = source else {
        return Err(at.err(j, ".source: Field required"));
    };
    let mut string = |key: &str| match take_str(&mut s, key) {
        Some(Ok(v)) => Ok(v),
        _ => Err(at.err(
            j,
            format_args!(".source.{key}: Input should be a valid string"),
        )),
    };
    match string("type")?.as_str() {
        "base64" => {
            let media_type = string("media_type")?;
            if !matches!(
                media_type.as_str(),
                "image/jpeg" | "image/png" | "image/gif" | "image/webp"
            ) {
                return Err(at.err(
                    j,
                    ".source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                ));
            }
            Ok(ImageSource::Base64 {
                media_type,
                data: string("data")?,
            })
        }
        "url" => Ok(ImageSource::Url(string("url")?)),
        other => Err(at.err(
            j,
            format_args!(".source.type: image source `{other}` is not supported by this gateway; use base64 or url"),
        )),
    }
}

fn decode_tool_result(
    mut b: Map<String, Value>,
    cache: Option<CacheControl>,
    j: usize,
    at: &At<'_>,
) -> Result<Part, DecodeError> {
    let Some(Ok(call_id)) = take_str(&mut b, "tool_use_id") else {
        return Err(at.err(j, ".tool_use_id: Input should be a valid string"));
    };
    let content = match take(&mut b, "content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Part::text(s)],
        Some(Value::Array(blocks)) => decode_blocks(
            blocks,
            &At {
                param: at.param,
                path: format!("{}.{j}.content", at.path),
                place: Place::ToolResult,
                version: at.version,
            },
        )?,
        Some(_) => {
            return Err(at.err(
                j,
                ".content: Input should be a string or a list of content blocks",
            ));
        }
    };
    let is_error = match take(&mut b, "is_error") {
        None => false,
        Some(Value::Bool(e)) => e,
        Some(_) => return Err(at.err(j, ".is_error: Input should be a valid boolean")),
    };
    Ok(Part::ToolResult {
        call_id,
        name: None,
        content,
        is_error,
        cache,
    })
}
