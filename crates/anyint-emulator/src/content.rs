//! The family-neutral content rules (see the crate docs): given the last
//! user text, the tools, the tool choice and the limits, decide what the
//! model says or which tools it calls. Every wire family (OpenAI chat,
//! Anthropic messages, Gemini) maps its request onto a [`Conversation`] and
//! renders the [`Answer`] in its own format. Pure: no IO, no wire shapes.

use serde_json::{Map, Value, json};

use crate::fault;

const REPLY_MARKER: &str = "Reply with exactly: ";
/// Rule 2's explicit form: `Call tool NAME with {JSON object}` on one line of `T`.
const CALL_MARKER: &str = "Call tool ";
/// Output when the last user text is empty.
pub(crate) const GREETING: &str = "Hello from the anyint emulator.";
/// Nesting limit when filling object-typed arguments.
const MAX_SCHEMA_DEPTH: usize = 8;

/// A function tool the emulator may call.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tool {
    pub(crate) name: String,
    /// JSON schema of the arguments (OpenAI `parameters`, Anthropic
    /// `input_schema`, Gemini `parameters` / `parametersJsonSchema`).
    pub(crate) parameters: Option<Value>,
}

/// Family-neutral tool choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    /// Never call a tool.
    None,
    /// Call the tools the user text mentions.
    Auto,
    /// Call a tool: the mentioned ones, else the first.
    Required,
    /// Call exactly this tool.
    Named(String),
}

/// Why text output ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The whole answer fit.
    Natural,
    /// Cut before this stop sequence.
    Stop(String),
    /// Truncated to the word limit.
    Length,
}

/// What one family's request says, reduced to what the rules read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conversation<'a> {
    /// `T`: the text of the last user turn that has text.
    pub(crate) text: &'a str,
    /// When the last turn is a tool result: that result's text.
    pub(crate) tool_result: Option<&'a str>,
    pub(crate) tools: &'a [Tool],
    pub(crate) choice: &'a ToolChoice,
    /// False when the request disables parallel tool calls.
    pub(crate) parallel: bool,
    pub(crate) stop: &'a [String],
    /// Output limit in words (the emulator's tokens).
    pub(crate) max_words: Option<usize>,
}

/// One tool call, before any family gives it an id.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Called {
    pub(crate) name: String,
    pub(crate) input: Map<String, Value>,
}

/// The model's answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    Text { content: String, finish: Finish },
    Calls(Vec<Called>),
}

/// Applies the content rules in order: reply-exactly, tool calls, tool
/// result acknowledgement, echo (or greeting).
pub(crate) fn answer(c: &Conversation<'_>) -> Answer {
    let text = |content: String| {
        let (content, finish) = finish_text(content, c.stop, c.max_words);
        Answer::Text { content, finish }
    };
    if let Some(exact) = reply_exactly(c.text) {
        return text(exact);
    }
    if let Some(called) = explicit_call(c) {
        return Answer::Calls(vec![called]);
    }
    let chosen = choose_tools(c);
    if !chosen.is_empty() {
        return Answer::Calls(
            chosen
                .into_iter()
                .map(|tool| Called {
                    name: tool.name.clone(),
                    input: sample_object(tool.parameters.as_ref(), 0),
                })
                .collect(),
        );
    }
    if let Some(result) = c.tool_result {
        text(format!("Tool result received: {result}"))
    } else if c.text.is_empty() {
        text(GREETING.to_owned())
    } else {
        text(format!("Echo: {}", c.text))
    }
}

/// Rule 1: the text after the marker up to end of line, minus directives.
pub(crate) fn reply_exactly(t: &str) -> Option<String> {
    let start = t.find(REPLY_MARKER)? + REPLY_MARKER.len();
    let line = t.get(start..)?.lines().next().unwrap_or("");
    Some(fault::strip_directives(line).trim().to_owned())
}

/// Cuts at the earliest stop string (the first listed wins a tie), then
/// truncates to `max_words` words.
pub(crate) fn finish_text(
    mut content: String,
    stop: &[String],
    max_words: Option<usize>,
) -> (String, Finish) {
    let mut finish = Finish::Natural;
    let earliest = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| content.find(s.as_str()).map(|pos| (pos, s)))
        .min_by_key(|&(pos, _)| pos);
    if let Some((cut, s)) = earliest {
        finish = Finish::Stop(s.clone());
        content.truncate(cut);
    }
    if let Some(max) = max_words {
        let mut words = 0;
        let mut kept = 0;
        for piece in pieces(&content) {
            if !piece.trim().is_empty() {
                if words == max {
                    finish = Finish::Length;
                    break;
                }
                words += 1;
            }
            kept += piece.len();
        }
        content.truncate(kept);
    }
    (content, finish)
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
                out.extend(text.get(start..i));
                start = i;
                seen_word = false;
            }
        } else {
            seen_word = true;
        }
    }
    if start < text.len() {
        out.extend(text.get(start..));
    }
    out
}

/// Number of whitespace-separated words: the emulator's output tokens.
pub(crate) fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Rule 2's explicit form: `Call tool NAME with {…}` in `T` (the object up to the end of
/// the line, directives removed) calls NAME with exactly that object, when the request
/// offers NAME and the tool choice lets the model call it.
fn explicit_call(c: &Conversation<'_>) -> Option<Called> {
    let start = c.text.find(CALL_MARKER)? + CALL_MARKER.len();
    let line = c.text.get(start..)?.lines().next().unwrap_or("");
    let line = fault::strip_directives(line);
    let (name, args) = line.split_once(" with ")?;
    let name = name.trim();
    let Ok(Value::Object(input)) = serde_json::from_str::<Value>(args.trim()) else {
        return None;
    };
    let allowed = match c.choice {
        ToolChoice::None => false,
        ToolChoice::Named(n) => n == name,
        ToolChoice::Auto => c.tool_result.is_none(),
        ToolChoice::Required => true,
    };
    (allowed && c.tools.iter().any(|t| t.name == name)).then(|| Called {
        name: name.to_owned(),
        input,
    })
}

/// Rule 2: which tools to call (empty: none).
fn choose_tools<'t>(c: &Conversation<'t>) -> Vec<&'t Tool> {
    let mut mentioned: Vec<(usize, &Tool)> = c
        .tools
        .iter()
        .filter_map(|tool| c.text.find(tool.name.as_str()).map(|pos| (pos, tool)))
        .collect();
    mentioned.sort_by_key(|&(pos, _)| pos);
    let mut mentioned: Vec<&Tool> = mentioned.into_iter().map(|(_, tool)| tool).collect();
    if !c.parallel {
        mentioned.truncate(1);
    }
    match c.choice {
        ToolChoice::None => Vec::new(),
        ToolChoice::Named(name) => c.tools.iter().filter(|t| &t.name == name).take(1).collect(),
        ToolChoice::Required if mentioned.is_empty() => c.tools.iter().take(1).collect(),
        ToolChoice::Auto if c.tool_result.is_some() => Vec::new(),
        ToolChoice::Required | ToolChoice::Auto => mentioned,
    }
}

/// An object filling each `required` property of an object schema.
pub(crate) fn sample_object(schema: Option<&Value>, depth: usize) -> Map<String, Value> {
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

/// The answer text a structured-output format demands (OpenAI `json_schema`,
/// Anthropic `output_config.format`, Gemini `responseJsonSchema` /
/// `responseSchema`): the compact JSON filling the schema like tool
/// arguments (an object root: its required properties; another root: a
/// value of its type). JSON mode without a schema (`None`): `{}`.
pub(crate) fn json_answer(schema: Option<&Value>) -> String {
    let Some(schema) = schema else {
        return "{}".to_owned();
    };
    let is_object = schema.get("properties").is_some()
        || schema
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("object"));
    let value = if is_object {
        Value::Object(sample_object(Some(schema), 0))
    } else {
        sample(Some(schema), 0)
    };
    value.to_string()
}

/// A deterministic value of the schema's type. Type names are matched
/// case-insensitively, so Gemini's `STRING`/`OBJECT` work too. A union
/// (`anyOf`/`oneOf`) takes its first branch that is not `null`.
pub(crate) fn sample(schema: Option<&Value>, depth: usize) -> Value {
    let Some(schema) = schema else {
        return json!("test");
    };
    let branches = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(branches) = branches
        && schema.get("type").is_none()
    {
        let not_null = |b: &&Value| {
            b.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| !t.eq_ignore_ascii_case("null"))
        };
        let pick = branches.iter().find(not_null).or_else(|| branches.first());
        return match pick {
            Some(b) if depth < MAX_SCHEMA_DEPTH => sample(Some(b), depth + 1),
            _ => Value::Null,
        };
    }
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
        Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .map(str::to_ascii_lowercase),
        _ => None,
    };
    match kind.as_deref() {
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

    fn conv<'a>(text: &'a str, tools: &'a [Tool], choice: &'a ToolChoice) -> Conversation<'a> {
        Conversation {
            text,
            tool_result: None,
            tools,
            choice,
            parallel: true,
            stop: &[],
            max_words: None,
        }
    }

    #[test]
    fn finish_reports_the_stop_sequence_and_length() {
        let stop = ["c".to_owned(), " b".to_owned()];
        assert_eq!(
            finish_text("a b c".to_owned(), &stop, None),
            ("a".to_owned(), Finish::Stop(" b".to_owned()))
        );
        assert_eq!(
            finish_text("a b c".to_owned(), &[], Some(2)),
            ("a b".to_owned(), Finish::Length)
        );
        assert_eq!(
            finish_text("a b".to_owned(), &[], Some(2)),
            ("a b".to_owned(), Finish::Natural)
        );
        assert_eq!(
            finish_text("a b".to_owned(), &[], Some(0)),
            (String::new(), Finish::Length)
        );
    }

    #[test]
    fn gemini_type_names_fill_arguments() {
        let tools = [Tool {
            name: "f".to_owned(),
            parameters: Some(json!({"type": "OBJECT",
                "properties": {"n": {"type": "INTEGER"}, "o": {"type": "OBJECT"}},
                "required": ["n", "o"]})),
        }];
        let choice = ToolChoice::Required;
        let Answer::Calls(calls) = answer(&conv("", &tools, &choice)) else {
            panic!("expected calls")
        };
        assert_eq!(
            Value::Object(calls[0].input.clone()),
            json!({"n": 1, "o": {}})
        );
    }

    #[test]
    fn tool_result_stops_auto_loops() {
        let tools = [Tool {
            name: "f".to_owned(),
            parameters: None,
        }];
        let choice = ToolChoice::Auto;
        let mut c = conv("use f", &tools, &choice);
        assert!(matches!(answer(&c), Answer::Calls(_)));
        c.tool_result = Some("42");
        assert_eq!(
            answer(&c),
            Answer::Text {
                content: "Tool result received: 42".to_owned(),
                finish: Finish::Natural
            }
        );
    }

    #[test]
    fn call_tool_with_gives_exact_arguments_over_mentions() {
        let tools = [
            Tool {
                name: "Agent".to_owned(),
                parameters: None,
            },
            Tool {
                name: "Bash".to_owned(),
                parameters: None,
            },
        ];
        let choice = ToolChoice::Auto;
        let text = "The Agent tool exists.\nCall tool Bash with {\"command\": \"echo hi > f\"} [emulate: tag=x]\nmore";
        let mut c = conv(text, &tools, &choice);
        assert_eq!(
            answer(&c),
            Answer::Calls(vec![Called {
                name: "Bash".to_owned(),
                input: json!({"command": "echo hi > f"})
                    .as_object()
                    .unwrap()
                    .clone(),
            }])
        );
        // After the result the loop ends, as with mentions.
        c.tool_result = Some("ok");
        assert!(matches!(answer(&c), Answer::Text { .. }));
        // An unknown tool or a choice of none: no explicit call.
        let none = ToolChoice::None;
        assert!(explicit_call(&conv(text, &tools, &none)).is_none());
        assert!(explicit_call(&conv("Call tool Nope with {}", &tools, &choice)).is_none());
    }
}
