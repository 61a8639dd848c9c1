//! Chat Completions `response_format` ⇄ canonical [`OutputFormat`] (structured-output.md §1).
//!
//! `{"type":"text"}` is the default and maps to no format; `json_object` and `json_schema`
//! (with its nested `json_schema: {name, schema?, description?, strict?}`) map one to one.
//! Any other `type` is not read here and stays in `extra`. The Chat encoder writes a canonical
//! format back as `response_format`, and also takes the one `extra` field a Responses client
//! may leave for an OpenAI upstream, `top_logprobs` (sent with `logprobs: true`).
//!
//! An Anthropic or Gemini schema (which always constrains) is sent with `strict: true`,
//! translated to OpenAI's strict rules (see the crate's `schema` module; what cannot be
//! enforced is a 400 naming the keyword's path), named `response`. JSON mode gets a system message
//! "Respond in JSON." when no message says "json", which OpenAI requires.

use serde_json::{Map, Value, json};

use crate::DecodeError;
use crate::canonical::{OutputFormat, SchemaSource};

/// Reads `response_format`: `Ok(None)` for text or an unknown type (the caller keeps an unknown
/// one in `extra`), an error when a `json_schema` lacks its `name`.
pub(super) fn decode(v: &Value) -> Result<Option<OutputFormat>, DecodeError> {
    match v.get("type").and_then(Value::as_str) {
        Some("json_object") => Ok(Some(OutputFormat::JsonObject)),
        Some("json_schema") => {
            let spec = v.get("json_schema").unwrap_or(&Value::Null);
            let name = spec.get("name").and_then(Value::as_str).ok_or_else(|| {
                DecodeError::field(
                    "response_format",
                    "`response_format.json_schema.name` is required (a string)",
                )
            })?;
            Ok(Some(OutputFormat::JsonSchema {
                name: name.to_owned(),
                schema: spec.get("schema").filter(|s| !s.is_null()).cloned(),
                description: spec
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                strict: spec.get("strict").and_then(Value::as_bool),
                source: SchemaSource::ChatResponseFormat,
            }))
        }
        _ => Ok(None),
    }
}

/// The `response_format` value for a canonical format. Another family's schema is translated
/// to strict mode (see the crate's `schema` module), which may refuse it.
pub(super) fn encode(f: &OutputFormat) -> Result<Value, DecodeError> {
    Ok(match f {
        OutputFormat::Text => json!({"type": "text"}),
        OutputFormat::JsonObject => json!({"type": "json_object"}),
        OutputFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
            source,
        } => {
            let (schema, strict) = crate::schema::for_openai(schema.as_ref(), *source, *strict)?;
            let mut spec = Map::new();
            spec.insert("name".into(), json!(name));
            if let Some(d) = description {
                spec.insert("description".into(), json!(d));
            }
            if let Some(s) = schema {
                spec.insert("schema".into(), s);
            }
            if let Some(s) = strict {
                spec.insert("strict".into(), json!(s));
            }
            json!({"type": "json_schema", "json_schema": spec})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_round_trips_and_needs_a_name() {
        let v = json!({"type": "json_schema", "json_schema": {
            "name": "answer", "description": "d", "strict": true,
            "schema": {"type": "object", "properties": {}}}});
        let f = decode(&v).unwrap().unwrap();
        assert_eq!(encode(&f).unwrap(), v);
        assert_eq!(
            decode(&json!({"type": "json_object"})).unwrap(),
            Some(OutputFormat::JsonObject)
        );
        assert_eq!(decode(&json!({"type": "text"})).unwrap(), None);
        assert_eq!(decode(&json!({"type": "grammar"})).unwrap(), None);
        let e = decode(&json!({"type": "json_schema", "json_schema": {}})).unwrap_err();
        assert_eq!(e.param, Some("response_format"));
    }
}
