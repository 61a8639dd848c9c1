//! Gemini's OpenAPI-subset `Schema` (function `parameters`, `responseSchema`) to plain JSON
//! Schema, and back.
//!
//! The subset differs from JSON Schema in a few spellings only: types are upper-case enum names
//! (`STRING`, `OBJECT`, …), `nullable: true` stands for a `"null"` type, `propertyOrdering` is a
//! Gemini-only hint, `format: "enum"` marks a string enum, and int64 bounds (`minItems`,
//! `maxLength`, …) may arrive as strings, as proto3 JSON writes them. Everything else
//! (`properties`, `items`, `anyOf`, `enum`, `required`, `description`, `format`, bounds)
//! already means the same thing and is kept. Recursion is bounded by serde_json's nesting
//! limit on the parsed input.

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

/// Converts one OpenAPI-subset schema to JSON Schema, dropping `propertyOrdering` (a tool's
/// parameters) or keeping it (`keep_ordering`, a `responseSchema`, whose key order is the
/// answer's). Non-object input is returned unchanged.
pub(super) fn openapi_to_json_schema(schema: &Value, keep_ordering: bool) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    let convert = |s: &Value| openapi_to_json_schema(s, keep_ordering);
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
            "propertyOrdering" if !keep_ordering => continue,
            // A string enum's marker; `enum` says it all in JSON Schema.
            "format" if value == "enum" => continue,
            k if SUBSCHEMA.contains(&k) => convert(value),
            k if SUBSCHEMA_LISTS.contains(&k) => match value {
                Value::Array(items) => items.iter().map(convert).collect(),
                other => other.clone(),
            },
            k if SUBSCHEMA_MAPS.contains(&k) => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), convert(s)))
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

/// The inverse of [`openapi_to_json_schema`], for a `responseSchema` that came from a Gemini
/// client and goes back to Gemini: lower-case types become upper-case, a `"null"` in a type
/// list (or a `{"type": "null"}` branch of `anyOf`) becomes `nullable: true`, and `null` leaves
/// `enum`.
pub(super) fn json_schema_to_openapi(schema: &Value) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    // `{"anyOf": [S, {"type": "null"}]}`, as a typeless nullable schema was converted.
    if let Some(Value::Array(branches)) = obj.get("anyOf")
        && obj.len() == 1
        && let [inner, Value::Object(null)] = branches.as_slice()
        && null.len() == 1
        && null.get("type").and_then(Value::as_str) == Some("null")
    {
        let mut out = match json_schema_to_openapi(inner) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        out.insert("nullable".into(), Value::Bool(true));
        return Value::Object(out);
    }
    let mut out = Map::with_capacity(obj.len());
    let mut nullable = false;
    for (key, value) in obj {
        let converted = match key.as_str() {
            "type" => match value {
                Value::String(t) => Value::String(t.to_ascii_uppercase()),
                Value::Array(types) => {
                    let named: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                    nullable = named.contains(&"null");
                    match named.iter().find(|t| **t != "null") {
                        Some(t) => Value::String(t.to_ascii_uppercase()),
                        None => Value::String("NULL".into()),
                    }
                }
                other => other.clone(),
            },
            "enum" => match value {
                Value::Array(values) => values.iter().filter(|v| !v.is_null()).cloned().collect(),
                other => other.clone(),
            },
            k if SUBSCHEMA.contains(&k) => json_schema_to_openapi(value),
            k if SUBSCHEMA_LISTS.contains(&k) => match value {
                Value::Array(items) => items.iter().map(json_schema_to_openapi).collect(),
                other => other.clone(),
            },
            k if SUBSCHEMA_MAPS.contains(&k) => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), json_schema_to_openapi(s)))
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
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
            openapi_to_json_schema(&s, false),
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
            openapi_to_json_schema(&json!({"nullable": true, "description": "d"}), false),
            json!({"anyOf": [{"description": "d"}, {"type": "null"}]})
        );
        assert_eq!(openapi_to_json_schema(&json!(3), false), json!(3));
        assert_eq!(
            openapi_to_json_schema(&json!({"type": "string"}), false),
            json!({"type": "string"})
        );
    }

    #[test]
    fn response_schemas_round_trip() {
        let s = json!({
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING", "maxLength": 20},
                "mood": {"type": "STRING", "format": "enum", "enum": ["up", "down"], "nullable": true},
                "any": {"nullable": true, "description": "d"},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}}
            },
            "required": ["name"],
            "propertyOrdering": ["name", "mood", "any", "tags"]
        });
        let js = openapi_to_json_schema(&s, true);
        assert_eq!(js["propertyOrdering"], s["propertyOrdering"]);
        assert_eq!(
            js["properties"]["mood"],
            json!({"type": ["string", "null"], "enum": ["up", "down", null]})
        );
        let mut back = s.clone();
        back["properties"]["mood"]
            .as_object_mut()
            .unwrap()
            .remove("format");
        assert_eq!(json_schema_to_openapi(&js), back);
    }
}
