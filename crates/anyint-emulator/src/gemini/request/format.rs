//! Structured output in `generationConfig`: `responseMimeType`,
//! `responseSchema` (the OpenAPI-subset `Schema`, whose unknown field names
//! are refused like any proto field) and `responseJsonSchema` (plain JSON
//! Schema, which the API reads leniently), validated as the API does per
//! `structured-output.md` §4: both schemas at once, a schema without a
//! matching MIME type, or an unsupported MIME type is a 400.

use serde_json::{Map, Value};

use super::fields::{bad_value, get, known};
use crate::gemini::error::GoogleError;

/// What the answer's text must be.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    /// Free text (`text/plain`, the default).
    Text,
    /// `application/json`: JSON filling the schema (JSON mode without one).
    Json(Option<Value>),
    /// `text/x.enum`: one value of the schema's `enum`.
    Enum(Value),
}

/// The field names of the OpenAPI-subset `Schema` (the older API's list:
/// no `additionalProperties`, `$defs` or `$ref`).
const SCHEMA_FIELDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "propertyOrdering",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minProperties",
    "maxProperties",
    "anyOf",
    "default",
    "example",
];
const TYPES: &[&str] = &[
    "TYPE_UNSPECIFIED",
    "STRING",
    "NUMBER",
    "INTEGER",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "NULL",
];
const MIME_TYPES: &[&str] = &["text/plain", "application/json", "text/x.enum"];

pub(super) fn output(config: &Map<String, Value>, msg: &str) -> Result<Output, GoogleError> {
    let mime = match get(config, "responseMimeType") {
        None => "text/plain",
        Some(Value::String(m)) => m.as_str(),
        Some(v) => {
            return Err(bad_value(
                "generation_config.response_mime_type",
                "TYPE_STRING",
                v,
            ));
        }
    };
    if !MIME_TYPES.contains(&mime) {
        return Err(GoogleError::field(
            &format!("{msg}.generation_config.response_mime_type"),
            &format!(
                "allowed mimetypes are `text/plain`, `application/json` and `text/x.enum`, got \
                 `{mime}`."
            ),
        ));
    }
    let schema = get(config, "responseSchema");
    let json_schema = get(config, "responseJsonSchema");
    if schema.is_some() && json_schema.is_some() {
        return Err(GoogleError::invalid(
            "response_schema and response_json_schema cannot both be set.",
        ));
    }
    if let Some(s) = schema {
        check_schema(s, "generation_config.response_schema")?;
    }
    if let Some(s) = json_schema
        && !s.is_object()
        && !s.is_boolean()
    {
        return Err(bad_value(
            "generation_config.response_json_schema",
            "type.googleapis.com/google.protobuf.Value",
            s,
        ));
    }
    match mime {
        "application/json" => Ok(Output::Json(json_schema.or(schema).cloned())),
        "text/x.enum" => match (schema, json_schema) {
            (Some(s), None) if s.get("enum").is_some() => Ok(Output::Enum(s.clone())),
            _ => Err(GoogleError::invalid(
                "response_mime_type `text/x.enum` needs a response_schema with `enum`.",
            )),
        },
        _ if schema.is_some() || json_schema.is_some() => Err(GoogleError::invalid(
            "response_mime_type must be `application/json` (or `text/x.enum`) when a response \
             schema is set.",
        )),
        _ => Ok(Output::Text),
    }
}

/// An OpenAPI-subset schema: known field names and type names only.
fn check_schema(v: &Value, at: &str) -> Result<(), GoogleError> {
    let Some(m) = v.as_object() else {
        return Err(bad_value(
            at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Schema",
            v,
        ));
    };
    known(m, SCHEMA_FIELDS, at)?;
    if let Some(t) = get(m, "type") {
        let ok = t
            .as_str()
            .is_some_and(|t| TYPES.iter().any(|n| n.eq_ignore_ascii_case(t)));
        if !ok {
            return Err(bad_value(
                &format!("{at}.type"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Type",
                t,
            ));
        }
    }
    if let Some(items) = get(m, "items") {
        check_schema(items, &format!("{at}.items"))?;
    }
    if let Some(Value::Object(props)) = get(m, "properties") {
        for (name, s) in props {
            check_schema(s, &format!("{at}.properties[{name}].value"))?;
        }
    }
    if let Some(Value::Array(branches)) = get(m, "anyOf") {
        for (i, s) in branches.iter().enumerate() {
            check_schema(s, &format!("{at}.any_of[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(config: &Value) -> Result<Output, GoogleError> {
        output(config.as_object().unwrap(), "GenerateContentRequest")
    }

    #[test]
    fn json_schema_and_openapi_schema() {
        assert_eq!(run(&json!({})).unwrap(), Output::Text);
        assert_eq!(
            run(&json!({"responseMimeType": "application/json"})).unwrap(),
            Output::Json(None)
        );
        let js = json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 1}}});
        assert_eq!(
            run(&json!({"responseMimeType": "application/json", "responseJsonSchema": js}))
                .unwrap(),
            Output::Json(Some(js))
        );
        let rs = json!({"type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": true}},
            "propertyOrdering": ["a"]});
        assert_eq!(
            run(&json!({"response_mime_type": "application/json", "response_schema": rs})).unwrap(),
            Output::Json(Some(rs))
        );
    }

    #[test]
    fn refusals() {
        let e = run(&json!({"responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT"}, "responseJsonSchema": {"type": "object"}}))
        .unwrap_err();
        assert!(e.message.contains("cannot both be set"), "{}", e.message);
        let e = run(&json!({"responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "additionalProperties": false}}))
        .unwrap_err();
        assert!(
            e.message.contains(
                "Unknown name \"additionalProperties\" at 'generation_config.response_schema'"
            ),
            "{}",
            e.message
        );
        let e = run(&json!({"responseJsonSchema": {"type": "object"}})).unwrap_err();
        assert!(
            e.message.contains("must be `application/json`"),
            "{}",
            e.message
        );
        let e = run(&json!({"responseMimeType": "application/xml"})).unwrap_err();
        assert!(e.message.contains("allowed mimetypes"), "{}", e.message);
    }
}
