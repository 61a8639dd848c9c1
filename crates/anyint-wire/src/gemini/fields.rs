//! Reading Gemini JSON objects: field lookup under both spellings Google accepts, and the
//! small value readers every decoder shares. Never panics on any input.

use serde_json::{Map, Value};

/// The snake_case spelling of a camelCase field name (`systemInstruction` →
/// `system_instruction`).
pub(super) fn snake(camel: &str) -> String {
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

/// The camelCase spelling of a field name given in either form.
pub(super) fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Field `name` (given in camelCase) of `obj`, under either spelling; `null` counts as absent.
pub(super) fn get<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let v = match obj.get(name) {
        Some(v) => Some(v),
        None if name.bytes().any(|b| b.is_ascii_uppercase()) => obj.get(&snake(name)),
        None => None,
    };
    v.filter(|v| !v.is_null())
}

/// Field `name` of `obj` when it is a string.
pub(super) fn get_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    get(obj, name).and_then(Value::as_str)
}

/// Field `name` of `obj` when it is an object.
pub(super) fn get_obj<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
) -> Option<&'a Map<String, Value>> {
    get(obj, name).and_then(Value::as_object)
}

/// A list field: an array, or a single value standing for a one-element list (Google's parser
/// accepts both for repeated fields). `None` when absent.
pub(super) fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A non-negative integer, also from an integral float or a decimal string (proto3 JSON writes
/// 64-bit integers as strings).
pub(super) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 9.0e15)
                .map(|f| {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "checked above: integral, non-negative, below 2^53"
                    )]
                    let n = f as u64;
                    n
                })
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A signed integer, also from a decimal string.
pub(super) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Token counts: a missing or malformed count is 0 (proto3 JSON leaves zero values out).
pub(super) fn count(obj: &Map<String, Value>, name: &str) -> u64 {
    get(obj, name).and_then(as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_spellings_are_found() {
        let o = json!({"system_instruction": 1, "topK": 2, "x": null});
        let o = o.as_object().unwrap();
        assert_eq!(get(o, "systemInstruction"), Some(&json!(1)));
        assert_eq!(get(o, "topK"), Some(&json!(2)));
        assert_eq!(get(o, "x"), None);
        assert_eq!(camel("max_output_tokens"), "maxOutputTokens");
        assert_eq!(camel("topP"), "topP");
        assert_eq!(snake("parametersJsonSchema"), "parameters_json_schema");
    }

    #[test]
    fn integers_from_numbers_floats_and_strings() {
        assert_eq!(as_u64(&json!(3)), Some(3));
        assert_eq!(as_u64(&json!(3.0)), Some(3));
        assert_eq!(as_u64(&json!("7")), Some(7));
        assert_eq!(as_u64(&json!(-1)), None);
        assert_eq!(as_u64(&json!(1.5)), None);
        assert_eq!(as_i64(&json!("-1")), Some(-1));
    }
}
