//! The deterministic content rules (see the crate docs): what the assistant
//! says or which tools it calls, and the token counts. Pure functions of the
//! validated request; rendering happens in `render`.

use serde_json::{Map, Value, json};

use super::request::{ChatRequest, Tool, ToolChoice, last_user_text, text_of};
use crate::fault;
use crate::util::{hex_id, quarter_tokens};

const REPLY_MARKER: &str = "Reply with exactly: ";
const GREETING: &str = "Hello from the anyint emulator.";
/// Nesting limit when filling object-typed arguments.
const MAX_SCHEMA_DEPTH: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Text {
        content: String,
        finish: &'static str,
    },
    Tools(Vec<Call>),
}

/// Everything needed to render the answer, streamed or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) output: Output,
    pub(crate) prompt_tokens: usize,
    /// Across all `n` choices.
    pub(crate) completion_tokens: usize,
}

/// Applies the content rules. `seed` (a hash of the request body) makes
/// call ids deterministic.
pub(crate) fn plan(req: &ChatRequest, seed: &[u8]) -> Plan {
    let t = last_user_text(&req.messages);
    let last = req.messages.last();
    let last_is_tool = last.and_then(|m| m.get("role")).and_then(Value::as_str) == Some("tool");

    let output = if let Some(answer) = reply_exactly(&t) {
        finish_text(answer, req)
    } else if let Some(calls) = tool_calls(req, &t, last_is_tool, seed) {
        Output::Tools(calls)
    } else if last_is_tool {
        let result = text_of(last.and_then(|m| m.get("content")));
        finish_text(format!("Tool result received: {result}"), req)
    } else if t.is_empty() {
        finish_text(GREETING.to_owned(), req)
    } else {
        finish_text(format!("Echo: {t}"), req)
    };

    let per_choice = match &output {
        Output::Text { content, .. } => content.split_whitespace().count(),
        Output::Tools(calls) => calls
            .iter()
            .map(|c| c.arguments.len().div_ceil(4) + 1)
            .sum(),
    };
    let prompt: usize = req
        .messages
        .iter()
        .map(|m| quarter_tokens(&text_of(m.get("content"))))
        .sum::<usize>()
        + req.tools_chars.div_ceil(4);
    Plan {
        output,
        prompt_tokens: prompt.max(1),
        completion_tokens: per_choice.max(1) * req.n,
    }
}

/// Rule 1: the text after the marker up to end of line, minus directives.
fn reply_exactly(t: &str) -> Option<String> {
    let start = t.find(REPLY_MARKER)? + REPLY_MARKER.len();
    let line = t[start..].lines().next().unwrap_or("");
    Some(fault::strip_directives(line).trim().to_owned())
}

/// Cuts at the earliest stop string, then truncates to `max_tokens` words.
fn finish_text(mut content: String, req: &ChatRequest) -> Output {
    let mut finish = "stop";
    if let Some(cut) = req
        .stop
        .iter()
        .filter_map(|s| content.find(s.as_str()))
        .min()
    {
        content.truncate(cut);
    }
    if let Some(max) = req.max_tokens {
        let pieces = pieces(&content);
        let mut words = 0;
        let mut kept = 0;
        for piece in &pieces {
            if !piece.trim().is_empty() {
                if words == max {
                    finish = "length";
                    break;
                }
                words += 1;
            }
            kept += piece.len();
        }
        content.truncate(kept);
    }
    Output::Text { content, finish }
}

/// Splits text into word-ish pieces that keep their leading whitespace:
/// `"Hello world"` → `["Hello", " world"]`. Concatenation gives the input.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if seen_word {
                out.push(&text[start..i]);
                start = i;
                seen_word = false;
            }
        } else {
            seen_word = true;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Rule 2: which tools to call, if any.
fn tool_calls(req: &ChatRequest, t: &str, last_is_tool: bool, seed: &[u8]) -> Option<Vec<Call>> {
    let mut mentioned: Vec<(usize, &Tool)> = req
        .tools
        .iter()
        .filter_map(|tool| t.find(tool.name.as_str()).map(|pos| (pos, tool)))
        .collect();
    mentioned.sort_by_key(|&(pos, _)| pos);
    let mut mentioned: Vec<&Tool> = mentioned.into_iter().map(|(_, tool)| tool).collect();
    if !req.parallel_tool_calls {
        mentioned.truncate(1);
    }

    let chosen: Vec<&Tool> = match &req.tool_choice {
        ToolChoice::None => Vec::new(),
        ToolChoice::Named(name) => req
            .tools
            .iter()
            .filter(|t| &t.name == name)
            .take(1)
            .collect(),
        ToolChoice::Required if mentioned.is_empty() => req.tools.iter().take(1).collect(),
        ToolChoice::Auto if last_is_tool => Vec::new(),
        ToolChoice::Required | ToolChoice::Auto => mentioned,
    };
    if chosen.is_empty() {
        return None;
    }
    Some(
        chosen
            .into_iter()
            .enumerate()
            .map(|(index, tool)| Call {
                id: format!(
                    "call_{}",
                    hex_id(&[seed, &index.to_le_bytes()].concat(), 24)
                ),
                name: tool.name.clone(),
                arguments: Value::Object(sample_object(tool.parameters.as_ref(), 0)).to_string(),
            })
            .collect(),
    )
}

/// An object filling each `required` property of an object schema.
fn sample_object(schema: Option<&Value>, depth: usize) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(schema) = schema else {
        return out;
    };
    let props = schema.get("properties");
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let prop = props.and_then(|p| p.get(name));
        out.insert(name.to_owned(), sample(prop, depth + 1));
    }
    out
}

/// A deterministic value of the schema's type.
fn sample(schema: Option<&Value>, depth: usize) -> Value {
    let Some(schema) = schema else {
        return json!("test");
    };
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|&t| t != "null"),
        _ => None,
    };
    match kind {
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        Some("object") if depth < MAX_SCHEMA_DEPTH => {
            Value::Object(sample_object(Some(schema), depth))
        }
        Some("object") => json!({}),
        Some("null") => Value::Null,
        _ => json!("test"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::request::parse;

    fn run(body: &Value) -> Plan {
        plan(&parse(Some(body)).unwrap(), b"seed")
    }

    fn text(p: &Plan) -> (&str, &str) {
        match &p.output {
            Output::Text { content, finish } => (content, finish),
            Output::Tools(_) => panic!("expected text, got {p:?}"),
        }
    }

    fn user(content: &str) -> Value {
        json!({"model": "m", "messages": [{"role": "user", "content": content}]})
    }

    #[test]
    fn rule_1_reply_exactly() {
        let p = run(&user("Please. Reply with exactly: pong \nmore"));
        assert_eq!(text(&p), ("pong", "stop"));
        assert_eq!(p.completion_tokens, 1);
        let p = run(&user("Reply with exactly: ok [emulate: tag=z]"));
        assert_eq!(text(&p).0, "ok");
    }

    #[test]
    fn rule_4_echo_and_greeting() {
        assert_eq!(text(&run(&user("hi there"))).0, "Echo: hi there");
        assert_eq!(text(&run(&user(""))).0, GREETING);
        let p = run(&user("one two three"));
        assert_eq!(p.completion_tokens, 4);
        assert_eq!(p.prompt_tokens, 4); // 13 chars
    }

    #[test]
    fn stop_and_max_tokens() {
        let mut body = user("a b c d");
        body["max_tokens"] = json!(2);
        assert_eq!(text(&run(&body)), ("Echo: a", "length"));
        let mut body = user("a b c d");
        body["stop"] = json!([" c", "b"]);
        assert_eq!(text(&run(&body)), ("Echo: a ", "stop"));
        let mut body = user("a");
        body["max_tokens"] = json!(2);
        assert_eq!(text(&run(&body)), ("Echo: a", "stop"));
    }

    #[test]
    fn pieces_keep_whitespace() {
        assert_eq!(pieces("Hello world"), vec!["Hello", " world"]);
        assert_eq!(pieces(" a  b "), vec![" a", "  b", " "]);
        assert!(pieces("").is_empty());
    }

    fn tools_body(content: &str) -> Value {
        json!({
            "model": "m",
            "messages": [{"role": "user", "content": content}],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                   "unit": {"enum": ["c", "f"]}, "opt": {"type": "boolean"},
                                   "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}},
                    "required": ["city", "days", "unit", "where"]}}},
                {"type": "function", "function": {"name": "get_time"}}
            ]
        })
    }

    #[test]
    fn rule_2_tool_calls() {
        let p = run(&tools_body("call get_weather please"));
        let Output::Tools(calls) = &p.output else {
            panic!("{p:?}")
        };
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "get_weather");
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(
            args,
            json!({"city": "test", "days": 1, "unit": "c", "where": {"lat": 1}})
        );
        assert!(calls[0].id.starts_with("call_"));

        let p = run(&tools_body("get_time and get_weather"));
        let Output::Tools(calls) = &p.output else {
            panic!("{p:?}")
        };
        let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["get_time", "get_weather"]);
        assert_ne!(calls[0].id, calls[1].id);

        let mut body = tools_body("get_time and get_weather");
        body["parallel_tool_calls"] = json!(false);
        let Output::Tools(calls) = run(&body).output else {
            panic!()
        };
        assert_eq!(calls.len(), 1);

        // No mention, auto → echo; required → first tool; none → echo.
        assert!(matches!(run(&tools_body("hi")).output, Output::Text { .. }));
        let mut body = tools_body("hi");
        body["tool_choice"] = json!("required");
        let Output::Tools(calls) = run(&body).output else {
            panic!()
        };
        assert_eq!(calls[0].name, "get_weather");
        let mut body = tools_body("get_weather");
        body["tool_choice"] = json!("none");
        assert!(matches!(run(&body).output, Output::Text { .. }));
        let mut body = tools_body("get_weather");
        body["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
        let Output::Tools(calls) = run(&body).output else {
            panic!()
        };
        assert_eq!(calls[0].name, "get_time");
        assert_eq!(calls[0].arguments, "{}");
    }

    #[test]
    fn rule_3_tool_result() {
        let mut body = tools_body("use get_weather");
        body["messages"] = json!([
            {"role": "user", "content": "use get_weather"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ]);
        assert_eq!(text(&run(&body)).0, "Tool result received: sunny");
    }
}
