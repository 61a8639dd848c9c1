//! What the content rules read from validated contents: a content's text,
//! the last user text `T`, and the last turn's function responses.

use serde_json::Value;

/// Text of a content's non-thought `text` parts.
pub(crate) fn text_of(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

/// `T`: the text of the last user content that has any text.
pub(crate) fn last_user_text(contents: &[Value]) -> String {
    contents
        .iter()
        .rev()
        .filter(|c| {
            c.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user" || r.is_empty())
        })
        .map(text_of)
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// When the last content carries `functionResponse` parts: each response
/// as text (a lone string field is unwrapped, anything else is compact
/// JSON), joined by newlines.
pub(crate) fn last_function_result(contents: &[Value]) -> Option<String> {
    let parts = contents.last()?.get("parts")?.as_array()?;
    let results: Vec<String> = parts
        .iter()
        .filter_map(|p| {
            p.get("functionResponse")
                .or_else(|| p.get("function_response"))
        })
        .map(|fr| match fr.get("response") {
            Some(Value::Object(o)) if o.len() == 1 => match o.values().next() {
                Some(Value::String(s)) => s.clone(),
                _ => Value::Object(o.clone()).to_string(),
            },
            Some(v) => v.to_string(),
            None => String::new(),
        })
        .collect();
    (!results.is_empty()).then(|| results.join("\n"))
}
