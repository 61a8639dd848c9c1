//! The OpenAI error envelope `{"error":{"message","type","param","code"}}`, as upstreams send it.

use serde::Deserialize;

/// The parts of an upstream error the gateway may use. Codes are free-form upstream strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// The error `type`, e.g. `insufficient_quota`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The machine-readable `code`, e.g. `rate_limit_exceeded`.
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

/// Decodes an upstream error body; `None` when it is not the OpenAI envelope.
pub fn decode_error(body: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| e.error)
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_envelope_and_ignores_other_shapes() {
        let e = decode_error(
            br#"{"error":{"message":"m","type":"insufficient_quota","param":null,"code":429}}"#,
        )
        .unwrap();
        assert_eq!(e.kind.as_deref(), Some("insufficient_quota"));
        assert_eq!(e.code.as_deref(), Some("429"));
        assert!(decode_error(b"<html>").is_none());
    }
}
