//! Structured output: `output_config` (`effort`, `format`) and the
//! deprecated top-level `output_format`, and the JSON Schema rules the API
//! enforces on the format (per `structured-output.md` §5): an object root,
//! `additionalProperties: false` on every object, no recursion, local
//! `$ref`s only, the ten supported string formats, primitive `enum`s,
//! `minItems` 0 or 1, and none of the constraints it cannot decode with
//! (`minimum`, `maxLength`, `maxItems`, …). Each refusal names the keyword
//! and where it sits.

use serde_json::{Map, Value};

use super::fields::field;
use crate::anthropic::error::AnthropicError;

const FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "uri",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Keywords the API refuses in a structured-output schema.
const UNSUPPORTED: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "minProperties",
    "maxProperties",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "uniqueItems",
    "contains",
    "prefixItems",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// Keywords holding one sub-schema, a list of them, or a map of them.
const ONE: &[&str] = &["items", "additionalProperties"];
const LIST: &[&str] = &["anyOf", "allOf", "oneOf"];
const MAP: &[&str] = &["properties", "$defs", "definitions"];

/// The schema the answer must follow, if the request asks for one.
pub(super) fn output_format(obj: &Map<String, Value>) -> Result<Option<Value>, AnthropicError> {
    let config = match field(obj, "output_config") {
        None => None,
        Some(Value::Object(c)) => Some(c),
        Some(_) => {
            return Err(AnthropicError::expected(
                "output_config",
                "a valid dictionary",
            ));
        }
    };
    let mut from_config = None;
    if let Some(c) = config {
        if let Some(k) = c.keys().find(|k| *k != "effort" && *k != "format") {
            return Err(AnthropicError::invalid(format!(
                "output_config.{k}: Extra inputs are not permitted"
            )));
        }
        if field(c, "effort").is_some_and(|e| !e.is_string()) {
            return Err(AnthropicError::expected(
                "output_config.effort",
                "a valid string",
            ));
        }
        if let Some(f) = field(c, "format") {
            from_config = Some(format(f, "output_config.format")?);
        }
    }
    let deprecated = field(obj, "output_format")
        .map(|f| format(f, "output_format"))
        .transpose()?;
    if from_config.is_some() && deprecated.is_some() {
        return Err(AnthropicError::invalid(
            "output_format: cannot be combined with output_config.format",
        ));
    }
    Ok(from_config.or(deprecated))
}

/// `{"type": "json_schema", "schema": {...}}` at `at`: its checked schema.
fn format(v: &Value, at: &str) -> Result<Value, AnthropicError> {
    let Some(f) = v.as_object() else {
        return Err(AnthropicError::expected(at, "a valid dictionary"));
    };
    if let Some(k) = f.keys().find(|k| *k != "type" && *k != "schema") {
        return Err(AnthropicError::invalid(format!(
            "{at}.{k}: Extra inputs are not permitted"
        )));
    }
    if field(f, "type").and_then(Value::as_str) != Some("json_schema") {
        return Err(AnthropicError::expected(
            &format!("{at}.type"),
            "'json_schema'",
        ));
    }
    let schema = match field(f, "schema") {
        None => return Err(AnthropicError::missing(&format!("{at}.schema"))),
        Some(s @ Value::Object(_)) => s,
        Some(_) => {
            return Err(AnthropicError::expected(
                &format!("{at}.schema"),
                "a valid dictionary",
            ));
        }
    };
    let at = format!("{at}.schema");
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(AnthropicError::invalid(format!(
            "{at}: the root schema must have type 'object'"
        )));
    }
    check(schema, &at, "")?;
    if recursive(schema) {
        return Err(AnthropicError::invalid(format!(
            "{at}: recursive schemas are not supported"
        )));
    }
    Ok(schema.clone())
}

fn refuse(at: &str, path: &str, what: &str) -> AnthropicError {
    let place = if path.is_empty() { "the root" } else { path };
    AnthropicError::invalid(format!("{at}: {what} (at {place})"))
}

fn check(node: &Value, at: &str, path: &str) -> Result<(), AnthropicError> {
    let Some(m) = node.as_object() else {
        return Ok(());
    };
    let here = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    if let Some(k) = m.keys().find(|k| UNSUPPORTED.contains(&k.as_str())) {
        return Err(refuse(at, path, &format!("'{k}' is not supported")));
    }
    if m.get("minItems")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(refuse(at, path, "'minItems' must be 0 or 1"));
    }
    if let Some(f) = m.get("format").and_then(Value::as_str)
        && !FORMATS.contains(&f)
    {
        return Err(refuse(at, path, &format!("format '{f}' is not supported")));
    }
    if let Some(Value::Array(values)) = m.get("enum")
        && values.iter().any(|v| v.is_object() || v.is_array())
    {
        return Err(refuse(at, path, "'enum' values must be primitives"));
    }
    if let Some(r) = m.get("$ref").and_then(Value::as_str)
        && !r.starts_with('#')
    {
        return Err(refuse(at, path, "only local '$ref's are supported"));
    }
    if m.get("type").and_then(Value::as_str) == Some("object")
        && m.get("additionalProperties") != Some(&Value::Bool(false))
    {
        return Err(refuse(
            at,
            path,
            "'additionalProperties' must be set to false for objects",
        ));
    }
    for (k, v) in m {
        if ONE.contains(&k.as_str()) {
            check(v, at, &here(k))?;
        } else if LIST.contains(&k.as_str()) {
            for (i, s) in v.as_array().into_iter().flatten().enumerate() {
                check(s, at, &format!("{}[{i}]", here(k)))?;
            }
        } else if MAP.contains(&k.as_str()) {
            for (name, s) in v.as_object().into_iter().flatten() {
                check(s, at, &format!("{}.{name}", here(k)))?;
            }
        }
    }
    Ok(())
}

/// Every `$ref` in `v`, not looking into the root's own definitions.
fn refs<'a>(v: &'a Value, root: bool, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if root && (k == "$defs" || k == "definitions") {
                    continue;
                }
                if k == "$ref" {
                    out.extend(child.as_str());
                } else {
                    refs(child, false, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, false, out)),
        _ => {}
    }
}

/// Whether a local reference leads back to a schema already being followed.
fn recursive(root: &Value) -> bool {
    fn target<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
        if r == "#" {
            return Some(root);
        }
        let (group, name) = r.strip_prefix("#/")?.split_once('/')?;
        root.get(group)?.get(name)
    }
    fn visit<'a>(root: &'a Value, r: &'a str, chain: &mut Vec<&'a str>) -> bool {
        if chain.contains(&r) {
            return true;
        }
        let Some(def) = target(root, r) else {
            return false;
        };
        chain.push(r);
        let mut inner = Vec::new();
        refs(def, r == "#", &mut inner);
        let found = inner.into_iter().any(|i| visit(root, i, chain));
        chain.pop();
        found
    }
    let mut start = Vec::new();
    refs(root, true, &mut start);
    let mut chain = vec!["#"];
    start.into_iter().any(|r| visit(root, r, &mut chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(config: &Value) -> Result<Option<Value>, AnthropicError> {
        let body = json!({"output_config": config});
        output_format(body.as_object().unwrap())
    }

    fn schema(properties: &Value) -> Value {
        json!({"format": {"type": "json_schema", "schema": {"type": "object",
            "additionalProperties": false, "properties": properties}}})
    }

    #[test]
    fn accepts_what_the_api_decodes_with() {
        let s = schema(&json!({
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "p": {"$ref": "#/$defs/p"}}));
        assert!(with(&s).unwrap().is_some());
        assert_eq!(with(&json!({"effort": "high"})).unwrap(), None);
        let deprecated = json!({"output_format": {"type": "json_schema",
            "schema": {"type": "object", "additionalProperties": false}}});
        assert!(
            output_format(deprecated.as_object().unwrap())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn refuses_what_it_cannot_enforce() {
        let cases = [
            (
                schema(&json!({"n": {"type": "integer", "minimum": 1}})),
                "'minimum' is not supported (at properties.n)",
            ),
            (
                schema(&json!({"l": {"type": "array", "minItems": 2}})),
                "'minItems' must be 0 or 1",
            ),
            (
                schema(&json!({"o": {"type": "object"}})),
                "'additionalProperties' must be set to false",
            ),
            (
                schema(&json!({"s": {"type": "string", "format": "regex"}})),
                "format 'regex'",
            ),
            (
                json!({"format": {"type": "json_schema", "schema": {"type": "array"}}}),
                "root schema must have type 'object'",
            ),
            (
                json!({"format": {"type": "json_schema", "schema": {"type": "object", "additionalProperties": false,
                "properties": {"next": {"$ref": "#"}}}}}),
                "recursive",
            ),
            (
                json!({"format": {"type": "json_object"}}),
                "output_config.format.type",
            ),
            (
                json!({"format": {"type": "json_schema"}}),
                "output_config.format.schema: Field required",
            ),
            (
                json!({"verbosity": "low"}),
                "output_config.verbosity: Extra inputs",
            ),
        ];
        for (config, msg) in cases {
            let e = with(&config).unwrap_err();
            assert!(e.message.contains(msg), "{config}: {}", e.message);
        }
        let both = json!({"output_config": schema(&json!({})),
            "output_format": {"type": "json_schema", "schema": {"type": "object", "additionalProperties": false}}});
        assert!(output_format(both.as_object().unwrap()).is_err());
    }
}
