//! Validating and rewriting a Messages request without parsing the prompt (passthrough path).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::request::check;
use crate::DecodeError;
use crate::json::{RawJson, RawObject};

/// What the gateway reads from a Messages request to authorize, route and meter it. The rest
/// stays unparsed in the client's bytes.
#[derive(Debug)]
pub struct RequestHead<'a> {
    /// The public model ID the client asked for.
    pub model: String,
    /// Whether the client asked for an SSE stream.
    pub stream: bool,
    body: RawObject<'a>,
}

#[derive(Deserialize)]
struct MessageHead<'a> {
    #[serde(borrow, default)]
    role: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

impl<'a> RequestHead<'a> {
    /// Checks what the API requires (`model`, `max_tokens`, a non-empty `messages` array of
    /// user/assistant turns, and system messages after the first, with content) and reads the routing fields. Errors match
    /// [`super::decode_request`]'s.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        // The messages' roles and contents are read in the validating pass, not a second one.
        let (obj, messages) = RawObject::decode_reading(body, "messages", ["role", "content"])?;
        let model = match obj
            .get("model")
            .map(|r| serde_json::from_str::<Option<String>>(r.get()))
        {
            None | Some(Ok(None)) => return Err(check::required("model")),
            Some(Ok(Some(m))) => m,
            Some(Err(_)) => return Err(check::not_string("model")),
        };
        check::model(&model)?;
        match obj
            .get("max_tokens")
            .map(|r| serde_json::from_str::<Option<u64>>(r.get()))
        {
            None | Some(Ok(None)) => return Err(check::required("max_tokens")),
            Some(Ok(Some(_))) => {}
            Some(Err(_)) => return Err(check::max_tokens_type()),
        }
        check_messages(obj.get("messages"), messages)?;
        let stream = match obj.get("stream") {
            None => false,
            Some(raw) => serde_json::from_str::<Option<bool>>(raw.get())
                .map_err(|_| check::stream_type())?
                .unwrap_or(false),
        };
        Ok(Self {
            model,
            stream,
            body: obj,
        })
    }

    /// The body to send upstream: `model` replaced by `upstream_model` when it differs,
    /// everything else byte for byte.
    pub fn encode_upstream(&self, upstream_model: &str) -> Vec<u8> {
        self.body.encode_model(&self.model, upstream_model)
    }

    /// Whether `field` is set to something other than `null`.
    pub fn has(&self, field: &str) -> bool {
        self.body.has(field)
    }
}

/// `read`: each message's `role` and `content`, when the decode read them already.
fn check_messages(
    raw: Option<RawJson<'_>>,
    read: Option<crate::json::scan::ElementFields<'_, 2>>,
) -> Result<(), DecodeError> {
    // The common case in one quick pass over the (already validated) array: objects with an
    // allowed plain role string and content. Anything else is decoded below, which words the
    // error.
    let fast = read
        .or_else(|| {
            raw.and_then(|r| crate::json::scan::array_object_fields(r.get(), ["role", "content"]))
        })
        .is_some_and(|messages| {
            !messages.is_empty()
                && messages.iter().enumerate().all(|(i, [role, content])| {
                    role.and_then(crate::json::scan::plain_string)
                        .is_some_and(|r| check::role_allowed(i, Some(r)))
                        && content.is_some_and(|c| c != "null")
                })
        });
    if fast {
        return Ok(());
    }
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Err(check::required("messages"));
    };
    let messages: Vec<MessageHead<'_>> =
        serde_json::from_str(raw.get()).map_err(|_| check::messages_type())?;
    if messages.is_empty() {
        return Err(check::messages_empty());
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .role
            .and_then(|r| serde_json::from_str::<String>(r.get()).ok());
        if !check::role_allowed(i, role.as_deref()) {
            return Err(check::role(i));
        }
        if m.content.is_none_or(|c| c.get() == "null") {
            return Err(check::content_required(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<RequestHead<'_>, DecodeError> {
        RequestHead::decode(s.as_bytes())
    }

    #[test]
    fn reads_model_and_stream() {
        let h = decode(r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":true}"#).unwrap();
        assert_eq!(h.model, "m");
        assert!(h.stream);
        assert!(h.has("max_tokens") && !h.has("system"));
        // Escaped role strings are still roles.
        assert!(
            decode(
                r#"{"model":"m","max_tokens":5,"messages":[{"role":"us\u0065r","content":"x"}]}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_or_wrong_fields_name_the_param() {
        let cases = [
            (r#"{"max_tokens":1,"messages":[]}"#, "model"),
            (r#"{"model":3,"max_tokens":1,"messages":[]}"#, "model"),
            (r#"{"model":"","max_tokens":1,"messages":[]}"#, "model"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"m","max_tokens":-1,"messages":[]}"#,
                "max_tokens",
            ),
            (r#"{"model":"m","max_tokens":1}"#, "messages"),
            (r#"{"model":"m","max_tokens":1,"messages":[]}"#, "messages"),
            (r#"{"model":"m","max_tokens":1,"messages":{}}"#, "messages"),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]}"#,
                "messages",
            ),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"user"}]}"#,
                "messages",
            ),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                "stream",
            ),
        ];
        for (body, param) in cases {
            assert_eq!(decode(body).unwrap_err().param, Some(param), "{body}");
        }
    }

    #[test]
    fn upstream_body_rewrites_only_the_model() {
        let src = r#"{"model":"pub","max_tokens":5,"messages":[{"role":"user","content":"h\u00e9"}],"stream":true}"#;
        let h = decode(src).unwrap();
        assert_eq!(
            String::from_utf8(h.encode_upstream("claude\"x")).unwrap(),
            r#"{"model":"claude\"x","max_tokens":5,"messages":[{"role":"user","content":"h\u00e9"}],"stream":true}"#
        );
        assert_eq!(h.encode_upstream("pub"), src.as_bytes());
    }
}
