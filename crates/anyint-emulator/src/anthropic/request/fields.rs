//! Reading one field of a JSON object, with the API's wording when it is
//! missing or of the wrong type. Every part of the request uses these.

use serde_json::{Map, Value};

use crate::anthropic::error::AnthropicError;

/// `obj[key]`, treating an explicit `null` as absent.
pub(super) fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(super) fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, AnthropicError> {
    match field(obj, key) {
        None => Err(AnthropicError::missing(path)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AnthropicError::expected(path, "a valid string")),
    }
}

pub(super) fn uint(v: &Value, path: &str) -> Result<u64, AnthropicError> {
    match v {
        Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Value::Number(n) if n.as_i64().is_some() => {
            Err(AnthropicError::expected(path, "greater than or equal to 0"))
        }
        _ => Err(AnthropicError::expected(path, "a valid integer")),
    }
}
