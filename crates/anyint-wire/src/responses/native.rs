//! Features only a native Responses upstream can serve: built-in (hosted) tools, stored
//! prompts, conversations, background mode, server-side compaction and truncation, and the
//! input items and content that depend on them or on OpenAI's file store.
//!
//! The gateway forwards them untouched when the route's upstream speaks Responses itself
//! (passthrough); any translation refuses them with a 400 naming the parameter, never drops
//! them. [`scan`] finds the first one, in the order top-level fields, `tools`, `tool_choice`,
//! `input`.

use serde_json::{Map, Value};

use crate::DecodeError;

/// Tool types the translation understands; every other `tools[].type` is a built-in tool.
const TRANSLATABLE_TOOLS: &[&str] = &["function", "custom", "namespace"];

/// Input item types the translation understands (a message may leave `type` out).
const TRANSLATABLE_ITEMS: &[&str] = &[
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "reasoning",
    // Replayed searches (Codex sends them without id or sources): dropped on translation.
    "web_search_call",
];

/// A request feature only a native Responses upstream can serve. Its [`DecodeError`] is the
/// 400 a translated route answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeOnly {
    /// The top-level parameter: `tools`, `tool_choice`, `input`, `prompt`, `background`, …
    pub param: &'static str,
    /// The exact place, as the API names it: `tools[1]`, `input[4]`, `input[2].content[1]`.
    pub path: String,
    /// What it is: the tool, item or content type (`web_search`, `item_reference`,
    /// `input_file`), or the parameter itself.
    pub feature: String,
    /// The client-facing explanation.
    pub message: String,
}

const ONLY_NATIVE: &str = "it works only with models served by the OpenAI Responses API itself; \
                           remove it or choose such a model";

impl NativeOnly {
    fn new(param: &'static str, path: String, feature: &str, what: &str) -> Self {
        Self {
            param,
            path,
            feature: feature.to_owned(),
            message: format!("{what} is not supported for this model; {ONLY_NATIVE}"),
        }
    }

    fn tool(path: String, kind: &str) -> Self {
        let mut refused = Self::new("tools", path, kind, &format!("the built-in tool `{kind}`"));
        if kind.starts_with("web_search") {
            // Codex sends it by default; say which setting turns it off.
            refused.message.push_str(
                " (Codex CLI sends it unless its config.toml says `web_search = \"disabled\"`)",
            );
        }
        refused
    }

    fn field(param: &'static str, what: &str) -> Self {
        Self::new(param, param.to_owned(), param, what)
    }

    /// The 400 for a translated route.
    pub fn error(&self) -> DecodeError {
        DecodeError::at(self.param, self.path.clone(), self.message.clone())
    }
}

impl From<NativeOnly> for DecodeError {
    fn from(n: NativeOnly) -> Self {
        n.error()
    }
}

fn kind(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str)
}

/// The first native-only feature of a request's top-level fields (only the ones that matter
/// here need be present). Malformed values are left to the full decoder.
pub(super) fn scan(obj: &Map<String, Value>) -> Option<NativeOnly> {
    scan_with(obj, false)
}

/// [`scan`], passing over hosted web search tools when the route serves them
/// (`web_search`).
pub(super) fn scan_with(obj: &Map<String, Value>, web_search: bool) -> Option<NativeOnly> {
    let set = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    if set("prompt") {
        return Some(NativeOnly::field("prompt", "`prompt` (a stored prompt)"));
    }
    if set("conversation") {
        return Some(NativeOnly::field(
            "conversation",
            "`conversation` (the Conversations API)",
        ));
    }
    if obj.get("background").and_then(Value::as_bool) == Some(true) {
        return Some(NativeOnly::field("background", "`background: true`"));
    }
    if obj
        .get("context_management")
        .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty()) && !v.is_null())
    {
        return Some(NativeOnly::field(
            "context_management",
            "`context_management` (server-side compaction)",
        ));
    }
    if set("moderation") {
        return Some(NativeOnly::field("moderation", "`moderation`"));
    }
    if obj.get("truncation").and_then(Value::as_str) == Some("auto") {
        return Some(NativeOnly::field("truncation", "`truncation: \"auto\"`"));
    }
    if let Some(n) = obj
        .get("tools")
        .and_then(|t| scan_tools(t, "tools", web_search))
    {
        return Some(n);
    }
    if let Some(n) = obj.get("tool_choice").and_then(scan_tool_choice) {
        return Some(n);
    }
    obj.get("input").and_then(scan_input)
}

fn scan_tools(tools: &Value, at: &str, web_search: bool) -> Option<NativeOnly> {
    tools
        .as_array()?
        .iter()
        .enumerate()
        .find_map(|(i, t)| match kind(t) {
            Some("namespace") => t
                .get("tools")
                .and_then(|inner| scan_tools(inner, &format!("{at}[{i}].tools"), false)),
            Some(k) if web_search && super::search::is_web_search(k) => None,
            Some(k) if !TRANSLATABLE_TOOLS.contains(&k) => {
                Some(NativeOnly::tool(format!("{at}[{i}]"), k))
            }
            _ => None,
        })
}

fn scan_tool_choice(choice: &Value) -> Option<NativeOnly> {
    let k = kind(choice)?;
    let hosted = |k: &str| !matches!(k, "function" | "custom");
    if k == "allowed_tools" {
        let tools = choice.get("tools")?.as_array()?;
        return tools.iter().enumerate().find_map(|(i, t)| {
            let k = kind(t)?;
            hosted(k).then(|| {
                NativeOnly::new(
                    "tool_choice",
                    format!("tool_choice.tools[{i}]"),
                    k,
                    &format!("allowing the built-in tool `{k}`"),
                )
            })
        });
    }
    hosted(k).then(|| {
        NativeOnly::new(
            "tool_choice",
            "tool_choice".into(),
            k,
            &format!("`tool_choice` of type `{k}`"),
        )
    })
}

fn scan_input(input: &Value) -> Option<NativeOnly> {
    input.as_array()?.iter().enumerate().find_map(|(i, item)| {
        let k = kind(item).unwrap_or("message");
        if !TRANSLATABLE_ITEMS.contains(&k) {
            return Some(NativeOnly::new(
                "input",
                format!("input[{i}]"),
                k,
                &format!("an input item of type `{k}`"),
            ));
        }
        let content = match k {
            "message" => item.get("content"),
            "function_call_output" | "custom_tool_call_output" => item.get("output"),
            _ => None,
        };
        let field = if k == "message" { "content" } else { "output" };
        content
            .and_then(Value::as_array)?
            .iter()
            .enumerate()
            .find_map(|(j, part)| {
                let pk = kind(part)?;
                let native = matches!(pk, "input_file" | "input_audio")
                    || (pk == "input_image" && part.get("image_url").is_none_or(Value::is_null));
                native.then(|| {
                    let what = if pk == "input_image" {
                        "an `input_image` given by `file_id`".to_owned()
                    } else {
                        format!("content of type `{pk}`")
                    };
                    NativeOnly::new("input", format!("input[{i}].{field}[{j}]"), pk, &what)
                })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scan_json(v: &Value) -> Option<NativeOnly> {
        scan(v.as_object().unwrap())
    }

    /// Each request body and the native-only feature it has: param, path, feature.
    fn cases() -> Vec<(Value, &'static str, &'static str, &'static str)> {
        vec![
            (
                json!({"tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}),
                "tools",
                "tools[1]",
                "web_search",
            ),
            (
                json!({"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "function", "name": "f"}, {"type": "mcp"}]}]}),
                "tools",
                "tools[0].tools[1]",
                "mcp",
            ),
            (
                json!({"tool_choice": {"type": "file_search"}}),
                "tool_choice",
                "tool_choice",
                "file_search",
            ),
            (
                json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}, {"type": "image_generation"}]}}),
                "tool_choice",
                "tool_choice.tools[1]",
                "image_generation",
            ),
            (
                json!({"input": [{"role": "user", "content": "x"}, {"type": "item_reference", "id": "msg_1"}]}),
                "input",
                "input[1]",
                "item_reference",
            ),
            (
                json!({"input": [{"type": "compaction", "encrypted_content": "x"}]}),
                "input",
                "input[0]",
                "compaction",
            ),
            (
                json!({"input": [{"type": "local_shell_call", "call_id": "c"}]}),
                "input",
                "input[0]",
                "local_shell_call",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}, {"type": "input_file", "file_id": "f"}]}]}),
                "input",
                "input[0].content[1]",
                "input_file",
            ),
            (
                json!({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "file_id": "f"}]}]}),
                "input",
                "input[0].output[0]",
                "input_image",
            ),
            (json!({"prompt": {"id": "p"}}), "prompt", "prompt", "prompt"),
            (
                json!({"conversation": "conv_1"}),
                "conversation",
                "conversation",
                "conversation",
            ),
            (
                json!({"background": true}),
                "background",
                "background",
                "background",
            ),
            (
                json!({"context_management": [{"type": "compaction"}]}),
                "context_management",
                "context_management",
                "context_management",
            ),
            (
                json!({"truncation": "auto"}),
                "truncation",
                "truncation",
                "truncation",
            ),
            (
                json!({"moderation": {"model": "m"}}),
                "moderation",
                "moderation",
                "moderation",
            ),
        ]
    }

    #[test]
    fn finds_each_native_only_feature_with_its_path() {
        for (body, param, path, feature) in cases() {
            let n = scan_json(&body).unwrap_or_else(|| panic!("{body}"));
            assert_eq!(
                (n.param, n.path.as_str(), n.feature.as_str()),
                (param, path, feature)
            );
            let e = n.error();
            assert_eq!(e.param, Some(param));
            assert_eq!(e.param_path(), Some(path));
            assert!(e.message.contains("not supported for this model"), "{e}");
        }
        let n =
            scan_json(&json!({"tools": [{"type": "function"}, {"type": "web_search"}]})).unwrap();
        assert!(
            n.message
                .starts_with("the built-in tool `web_search` is not supported for this model; ")
        );
    }

    #[test]
    fn translatable_requests_pass() {
        let body = json!({
            "background": false, "truncation": "disabled", "prompt": null, "context_management": [],
            "tools": [{"type": "function", "name": "f"}, {"type": "custom", "name": "c"},
                      {"type": "namespace", "name": "n", "tools": [{"type": "function", "name": "g"}]}],
            "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
            "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]},
                      {"type": "reasoning", "summary": []},
                      {"type": "custom_tool_call_output", "call_id": "c", "output": "ok"}]
        });
        assert_eq!(scan_json(&body), None);
        assert_eq!(
            scan_json(&json!({"input": "hi", "tool_choice": "auto"})),
            None
        );
    }
}
