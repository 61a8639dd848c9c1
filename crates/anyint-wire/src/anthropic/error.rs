//! The Anthropic error envelope `{"type":"error","error":{"type","message"},"request_id"}`, as
//! upstreams send it.

use serde::Deserialize;

/// The parts of an upstream error the gateway may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// The error `type`, e.g. `overloaded_error` (free-form: the API adds new ones).
    pub kind: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    error: Detail,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Decodes an upstream error body; `None` when it is not the Anthropic envelope (a top-level
/// `type` other than `error`, or an `error` object with neither `type` nor `message`).
pub fn decode_error(body: &[u8]) -> Option<ErrorBody> {
    let env: Envelope = serde_json::from_slice(body).ok()?;
    if env.kind.as_deref().is_some_and(|k| k != "error") {
        return None;
    }
    let Detail { kind, message } = env.error;
    if kind.is_none() && message.is_none() {
        return None;
    }
    Some(ErrorBody {
        message: message.unwrap_or_default(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_envelope_and_ignores_other_shapes() {
        let e = decode_error(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        )
        .unwrap();
        assert_eq!(e.kind.as_deref(), Some("overloaded_error"));
        assert_eq!(e.message, "Overloaded");
        assert!(decode_error(b"<html>").is_none());
        assert!(decode_error(br#"{"type":"message","error":{"message":"x"}}"#).is_none());
        assert!(decode_error(br#"{"error":{}}"#).is_none());
        assert!(decode_error(br#"{"error":"boom"}"#).is_none());
    }
}
