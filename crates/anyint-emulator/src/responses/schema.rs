//! OpenAI's strict-mode JSON Schema rules, checked for `text.format`
//! `json_schema` and function tools that ask for `strict: true`: the root
//! is an object, and every object schema has `additionalProperties: false`
//! and lists every property in `required`. Errors are worded like the real
//! API's (`In context=('properties', 'when'), …`). Pure.

use serde_json::Value;

/// One step of the path into a schema, rendered like a Python tuple item.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn context(path: &[Step<'_>]) -> String {
    let items: Vec<String> = path
        .iter()
        .map(|s| match s {
            Step::Key(k) => format!("'{k}'"),
            Step::Index(i) => i.to_string(),
        })
        .collect();
    match items.as_slice() {
        [] => "()".to_owned(),
        [one] => format!("({one},)"),
        many => format!("({})", many.join(", ")),
    }
}

/// Checks `schema` against the strict rules; the error is the message
/// after `Invalid schema for …: `.
pub(crate) fn check_strict(schema: &Value) -> Result<(), String> {
    let root_type = schema.get("type").and_then(Value::as_str);
    if root_type != Some("object") {
        let got = schema
            .get("type")
            .map_or_else(|| "None".to_owned(), ToString::to_string);
        return Err(format!(
            "schema must be a JSON Schema of 'type: \"object\"', got 'type: {got}'."
        ));
    }
    let mut path = Vec::new();
    walk(schema, &mut path)
}

fn is_object_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        _ => schema.get("properties").is_some(),
    }
}

fn walk<'a>(schema: &'a Value, path: &mut Vec<Step<'a>>) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return Ok(());
    };
    if is_object_schema(schema) {
        if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(format!(
                "In context={}, 'additionalProperties' is required to be supplied and to be \
                 false.",
                context(path)
            ));
        }
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let missing = obj
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|props| props.keys().find(|k| !required.contains(&k.as_str())));
        if let Some(missing) = missing {
            return Err(format!(
                "In context={}, 'required' is required to be supplied and to be an array \
                 including every key in properties. Missing '{missing}'.",
                context(path)
            ));
        }
    }
    for group in ["properties", "$defs", "definitions"] {
        if let Some(children) = obj.get(group).and_then(Value::as_object) {
            for (name, child) in children {
                path.push(Step::Key(group));
                path.push(Step::Key(name));
                walk(child, path)?;
                path.truncate(path.len() - 2);
            }
        }
    }
    if let Some(items) = obj.get("items") {
        path.push(Step::Key("items"));
        walk(items, path)?;
        path.pop();
    }
    if let Some(variants) = obj.get("anyOf").and_then(Value::as_array) {
        for (i, child) in variants.iter().enumerate() {
            path.push(Step::Key("anyOf"));
            path.push(Step::Index(i));
            walk(child, path)?;
            path.truncate(path.len() - 2);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_rules() {
        let ok = json!({"type": "object", "additionalProperties": false, "required": ["a", "b"],
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {
                "type": "object", "additionalProperties": false, "required": ["c"],
                "properties": {"c": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}}});
        assert_eq!(check_strict(&ok), Ok(()));

        let root = check_strict(&json!({"type": "array"})).unwrap_err();
        assert!(root.contains("'type: \"array\"'"), "{root}");
        let open = check_strict(&json!({"type": "object", "properties": {}})).unwrap_err();
        assert!(
            open.starts_with("In context=(), 'additionalProperties'"),
            "{open}"
        );
        let missing = check_strict(&json!({"type": "object", "additionalProperties": false,
            "required": ["a"], "properties": {"a": {"type": "object", "additionalProperties": false,
            "required": [], "properties": {"when": {"type": "string"}}}}}))
        .unwrap_err();
        assert_eq!(
            missing,
            "In context=('properties', 'a'), 'required' is required to be supplied and to be \
             an array including every key in properties. Missing 'when'."
        );
        let deep = check_strict(&json!({"type": "object", "additionalProperties": false,
            "required": ["x"], "properties": {"x": {"type": "array", "items": {"type": "object"}}}}))
        .unwrap_err();
        assert!(deep.contains("('properties', 'x', 'items')"), "{deep}");
        assert_eq!(context(&[Step::Key("items")]), "('items',)");
        assert_eq!(
            context(&[Step::Key("anyOf"), Step::Index(1)]),
            "('anyOf', 1)"
        );
    }
}
