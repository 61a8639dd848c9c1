//! Proto JSON field access: every field may be spelled camelCase or
//! snake_case, unknown names are refused, and a wrong type gets the API's
//! "Invalid value at" wording. Every part of the request uses these.

use serde_json::{Map, Value};

use crate::gemini::error::GoogleError;

/// `lowerCamel` → `lower_camel`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `obj[camel]` or `obj[snake]`, treating `null` as absent.
pub(super) fn get<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(&snake(camel)))
        .filter(|v| !v.is_null())
}

/// Rejects names that are neither a listed camelCase name nor its snake form.
pub(super) fn known(
    obj: &Map<String, Value>,
    allowed: &[&str],
    at: &str,
) -> Result<(), GoogleError> {
    let ok = |k: &str| allowed.iter().any(|a| *a == k || snake(a) == k);
    match obj.keys().find(|k| !ok(k)) {
        Some(k) => {
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" at '{at}'")
            };
            Err(GoogleError::payload(&format!(
                "Unknown name \"{k}\"{at}: Cannot find field."
            )))
        }
        None => Ok(()),
    }
}

pub(super) fn bad_value(at: &str, kind: &str, v: &Value) -> GoogleError {
    GoogleError::payload(&format!("Invalid value at '{at}' ({kind}), {v}"))
}
