//! Gemini's OpenAPI-subset `Schema` (function `parameters`) to plain JSON Schema.
//!
//! The subset differs from JSON Schema in a few spellings only: types are upper-case enum names
//! (`STRING`, `OBJECT`, …), `nullable: true` stands for a `"null"` type, `propertyOrdering` is a
//! Gemini-only hint, and int64 bounds (`minItems`, `maxLength`, …) may arrive as strings, as
//! proto3 JSON writes them. Everything else (`properties`, `items`, `anyOf`, `enum`,
//! `required`, `description`, `format`, bounds) already means the same thing and is kept.
//! Recursion is bounded by serde_json's nesting limit on the parsed input.

use serde_json::{Map, Value};

use super::fields::{as_u64, camel};

/// Keywords whose value is one sub-schema.
const SUBSCHEMA: &[&str] = &["items", "not", "additionalProperties"];
/// Keywords whose value is a list of sub-schemas.
const SUBSCHEMA_LISTS: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value is a map of name to sub-schema.
const SUBSCHEMA_MAPS: &[&str] = &["properties", "$defs", "definitions"];
/// Integer keywords proto3 JSON may send as strings.
const INT_KEYWORDS: &[&str] = &[
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
];

/// Converts one OpenAPI-subset schema to JSON Schema. Non-object input is returned unchanged.
pub(super) fn openapi_to_json_schema(schema: &Value) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    let mut out = Map::with_capacity(obj.len());
    let mut nullable = false;
    for (key, value) in obj {
        let key = camel(key);
        let converted = match key.as_str() {
            "type" => match value {
                Value::String(t) => match lower_type(t) {
                    Some(t) => Value::String(t),
                    None => continue,
                },
                other => other.clone(),
            },
            "nullable" => {
                nullable = value.as_bool().unwrap_or(false);
                continue;
            }
            "propertyOrdering" => continue,
            k if SUBSCHEMA.contains(&k) => openapi_to_json_schema(value),
            k if SUBSCHEMA_LISTS.contains(&k) => match value {
                Value::Array(items) => items.iter().map(openapi_to_json_schema).collect(),
                other => other.clone(),
            },
            k if SUBSCHEMA_MAPS.contains(&k) => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), openapi_to_json_schema(s)))
                        .collect(),
                ),
                other => other.clone(),
            },
            k if INT_KEYWORDS.contains(&k) => {
                as_u64(value).map_or_else(|| value.clone(), Value::from)
            }
            _ => value.clone(),
        };
        out.insert(key, converted);
    }
    if nullable {
        make_nullable(&mut out);
    }
    Value::Object(out)
}

/// `STRING` → `string`; `TYPE_UNSPECIFIED` (meaning "no type") → `None`.
fn lower_type(t: &str) -> Option<String> {
    if t.eq_ignore_ascii_case("TYPE_UNSPECIFIED") || t.is_empty() {
        None
    } else {
        Some(t.to_ascii_lowercase())
    }
}

/// Adds `"null"` to the schema's type (and to its `enum`, which would otherwise exclude it).
fn make_nullable(out: &mut Map<String, Value>) {
    match out.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            out.insert("type".into(), Value::Array(vec![t.into(), "null".into()]));
        }
        Some(Value::Array(types)) => {
            if !types.iter().any(|t| t == "null") {
                types.push("null".into());
            }
        }
        _ => {
            // No type to widen: say it as "this schema, or null".
            let inner = Value::Object(std::mem::take(out));
            out.insert(
                "anyOf".into(),
                Value::Array(vec![inner, serde_json::json!({"type": "null"})]),
            );
            return;
        }
    }
    if let Some(Value::Array(values)) = out.get_mut("enum")
        && !values.iter().any(Value::is_null)
    {
        values.push(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uppercase_types_become_json_schema() {
        let s = json!({
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING", "description": "City"},
                "days": {"type": "INTEGER", "minimum": 1, "nullable": true},
                "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a", "b"]}, "min_items": "1"},
                "unit": {"type": "STRING", "enum": ["C", "F"], "nullable": true},
                "any": {"anyOf": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]},
                "free": {"type": "TYPE_UNSPECIFIED", "description": "anything"}
            },
            "required": ["city"],
            "propertyOrdering": ["city", "days"]
        });
        assert_eq!(
            openapi_to_json_schema(&s),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City"},
                    "days": {"type": ["integer", "null"], "minimum": 1},
                    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 1},
                    "unit": {"type": ["string", "null"], "enum": ["C", "F", null]},
                    "any": {"anyOf": [{"type": "number"}, {"type": "boolean"}]},
                    "free": {"description": "anything"}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn nullable_without_type_and_odd_input() {
        assert_eq!(
            openapi_to_json_schema(&json!({"nullable": true, "description": "d"})),
            json!({"anyOf": [{"description": "d"}, {"type": "null"}]})
        );
        assert_eq!(openapi_to_json_schema(&json!(3)), json!(3));
        assert_eq!(
            openapi_to_json_schema(&json!({"type": "string"})),
            json!({"type": "string"})
        );
    }
}
