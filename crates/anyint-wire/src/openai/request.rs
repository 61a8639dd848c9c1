//! Validating and rewriting a chat completions request without parsing the prompt.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::DecodeError;
use crate::json::{RawJson, RawObject};

/// What the gateway reads from a chat request: enough to authorize, route and meter it.
/// The messages stay unparsed in `body`.
#[derive(Debug)]
pub struct ChatRequestHead<'a> {
    /// The public model ID the client asked for.
    pub model: String,
    /// Whether the client asked for an SSE stream.
    pub stream: bool,
    /// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    body: RawObject<'a>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<&'a RawValue>,
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

impl<'a> ChatRequestHead<'a> {
    /// Checks the fields the API requires and reads the routing ones. Errors name the field and
    /// what to send instead.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        // The messages' roles are read in the validating pass, not in a second one.
        let (obj, roles) = RawObject::decode_reading(body, "messages", ["role"])?;
        let model = match obj.get("model") {
            None => {
                return Err(DecodeError::field(
                    "model",
                    "you must provide a model parameter",
                ));
            }
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map_err(|_| DecodeError::field("model", "`model` must be a string"))?,
        };
        if model.is_empty() {
            return Err(DecodeError::field("model", "`model` must not be empty"));
        }
        check_messages(obj.get("messages"), roles)?;
        let stream = match obj.get("stream") {
            None => false,
            Some(raw) => serde_json::from_str::<Option<bool>>(raw.get())
                .map_err(|_| DecodeError::field("stream", "`stream` must be a boolean"))?
                .unwrap_or(false),
        };
        let include_usage = match obj.get("stream_options") {
            Some(raw) if raw.get() != "null" => {
                if !stream {
                    return Err(DecodeError::field(
                        "stream_options",
                        "`stream_options` is only allowed when `stream` is true",
                    ));
                }
                let opts: StreamOptions = serde_json::from_str(raw.get()).map_err(|_| {
                    DecodeError::field(
                        "stream_options",
                        "`stream_options` must be an object like {\"include_usage\": true}",
                    )
                })?;
                opts.include_usage.unwrap_or(false)
            }
            _ => false,
        };
        Ok(Self {
            model,
            stream,
            include_usage,
            body: obj,
        })
    }

    /// The body to send upstream: `model` replaced by `upstream_model` when it differs, and for
    /// streams `stream_options.include_usage` forced on so the gateway can always meter.
    pub fn encode_upstream(&self, upstream_model: &str) -> Vec<u8> {
        let model_json = crate::json::json_string(upstream_model);
        self.body
            .encode_with(&self.upstream_overrides(upstream_model, &model_json))
    }

    /// [`encode_upstream`](Self::encode_upstream) as pieces, values of `borrow_from` bytes or
    /// more borrowed ([`crate::json::RawObject::encode_pieces`]).
    pub fn upstream_pieces(
        &self,
        upstream_model: &str,
        borrow_from: usize,
    ) -> Vec<crate::json::Piece<'a>> {
        let model_json = crate::json::json_string(upstream_model);
        self.body.encode_pieces(
            &self.upstream_overrides(upstream_model, &model_json),
            &[],
            borrow_from,
        )
    }

    fn upstream_overrides<'m>(
        &self,
        upstream_model: &str,
        model_json: &'m str,
    ) -> Vec<(&'static str, &'m str)> {
        let mut overrides = Vec::with_capacity(2);
        if upstream_model != self.model {
            overrides.push(("model", model_json));
        }
        if self.stream && !self.include_usage {
            overrides.push(("stream_options", r#"{"include_usage":true}"#));
        }
        overrides
    }

    /// Whether `field` is set to something other than `null`.
    pub fn has(&self, field: &str) -> bool {
        self.body.has(field)
    }
}

/// `roles`: each message's `role`, when the decode read them already.
fn check_messages(
    raw: Option<RawJson<'_>>,
    roles: Option<crate::json::scan::ElementFields<'_, 1>>,
) -> Result<(), DecodeError> {
    // The common case in one quick pass over the (already validated) array: objects with a
    // plain role string that is allowed. Anything else is decoded below, which words the error.
    let fast = roles
        .or_else(|| raw.and_then(|r| crate::json::scan::array_object_fields(r.get(), ["role"])))
        .is_some_and(|messages| {
            !messages.is_empty()
                && messages.iter().all(|[role]| {
                    role.and_then(crate::json::scan::plain_string)
                        .is_some_and(|r| ROLES.contains(&r))
                })
        });
    if fast {
        return Ok(());
    }
    let Some(raw) = raw else {
        return Err(DecodeError::field(
            "messages",
            "you must provide a `messages` array",
        ));
    };
    let messages: Vec<Message<'_>> = serde_json::from_str(raw.get()).map_err(|_| {
        DecodeError::field("messages", "`messages` must be an array of message objects")
    })?;
    if messages.is_empty() {
        return Err(DecodeError::field(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .role
            .and_then(|r| serde_json::from_str::<String>(r.get()).ok());
        match role {
            Some(r) if ROLES.contains(&r.as_str()) => {}
            Some(_) => {
                return Err(DecodeError::field(
                    "messages",
                    format!("messages[{i}].role must be one of {}", ROLES.join(", ")),
                ));
            }
            None => {
                return Err(DecodeError::field(
                    "messages",
                    format!("messages[{i}] must have a string `role`"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<ChatRequestHead<'_>, DecodeError> {
        ChatRequestHead::decode(s.as_bytes())
    }

    #[test]
    fn reads_model_and_stream_flags() {
        let h = decode(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(h.model, "m");
        assert!(h.stream && h.include_usage);
    }

    #[test]
    fn missing_fields_name_the_param() {
        assert_eq!(
            decode(r#"{"messages":[]}"#).unwrap_err().param,
            Some("model")
        );
        assert_eq!(
            decode(r#"{"model":"m"}"#).unwrap_err().param,
            Some("messages")
        );
        assert_eq!(
            decode(r#"{"model":"m","messages":[]}"#).unwrap_err().param,
            Some("messages")
        );
        assert_eq!(
            decode(r#"{"model":3,"messages":[]}"#).unwrap_err().param,
            Some("model")
        );
        let e = decode(r#"{"model":"m","messages":[{"role":"robot"}]}"#).unwrap_err();
        assert!(e.message.contains("messages[0].role"), "{e}");
        let e = decode(r#"{"model":"m","messages":[{"role":"user"}],"stream_options":{}}"#)
            .unwrap_err();
        assert_eq!(e.param, Some("stream_options"));
    }

    #[test]
    fn upstream_body_rewrites_model_and_forces_usage_only_for_streams() {
        let src = r#"{"model":"pub","messages":[{"role":"user","content":"x"}],"stream":true}"#;
        let h = decode(src).unwrap();
        let out = String::from_utf8(h.encode_upstream("up\"1")).unwrap();
        assert_eq!(
            out,
            r#"{"model":"up\"1","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let src = r#"{"model":"same","messages":[{"role":"user","content":"x"}]}"#;
        assert_eq!(decode(src).unwrap().encode_upstream("same"), src.as_bytes());
    }
}
