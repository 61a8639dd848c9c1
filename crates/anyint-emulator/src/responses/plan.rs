//! The Responses side of the content rules (see the crate docs): maps a
//! validated request onto the family-neutral [`content`](crate::content)
//! rules and turns the answer into output items (a reasoning item first
//! when reasoning is on, then a message or tool calls) with ids, the
//! structured-output override and token counts. Pure functions of the
//! request; rendering happens in `render`.

use serde_json::Value;

use super::blob;
use super::input::{CallKind, Item, last_user_text};
use super::request::ResponsesRequest;
use super::tools::{Callable, Format};
use crate::content::{self, Answer, Called, Conversation, Finish, Tool};
use crate::util::{hex_id, quarter_tokens};

/// Hex characters after an id's prefix (`resp_`, `msg_`, `rs_`, …).
const ID_LEN: usize = 48;
/// Hex characters after `call_`.
const CALL_ID_LEN: usize = 24;
/// The `input` of every custom tool call (the string fill of the
/// argument rule).
pub(crate) const CUSTOM_INPUT: &str = "test";

/// One output item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Reasoning {
        id: String,
        summary: String,
        /// Only when `include` asks for `reasoning.encrypted_content`.
        encrypted: Option<String>,
    },
    Message {
        id: String,
        text: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        namespace: Option<String>,
        arguments: String,
    },
    CustomCall {
        id: String,
        call_id: String,
        name: String,
        namespace: Option<String>,
        input: String,
    },
}

impl Output {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Reasoning { id, .. }
            | Self::Message { id, .. }
            | Self::FunctionCall { id, .. }
            | Self::CustomCall { id, .. } => id,
        }
    }
}

/// Everything needed to render the answer, streamed or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) output: Vec<Output>,
    /// The text was cut at `max_output_tokens`.
    pub(crate) incomplete: bool,
    pub(crate) input_tokens: usize,
    /// Including the reasoning tokens.
    pub(crate) output_tokens: usize,
    pub(crate) reasoning_tokens: usize,
}

/// A deterministic id: `prefix` + 48 hex characters derived from the
/// request `seed` and the item's position.
pub(crate) fn item_id(prefix: &str, seed: &[u8], index: usize) -> String {
    let mix = [seed, prefix.as_bytes(), &index.to_le_bytes()].concat();
    format!("{prefix}_{}", hex_id(&mix, ID_LEN))
}

/// The reasoning summary for `effort`.
pub(crate) fn summary(effort: &str) -> String {
    format!("**Planning the reply**\n\nThinking at {effort} effort.")
}

/// Input tokens: ⌈chars/4⌉ of every message text, replayed call (name and
/// arguments / input), tool result and reasoning summary, plus the
/// instructions and ⌈chars(tools JSON)/4⌉; at least 1.
pub(crate) fn input_tokens(req: &ResponsesRequest) -> usize {
    let items: usize = req
        .items
        .iter()
        .map(|item| match item {
            Item::Message { text, .. } | Item::Output { text, .. } | Item::Reasoning { text } => {
                quarter_tokens(text)
            }
            Item::Call { name, payload, .. } => quarter_tokens(name) + quarter_tokens(payload),
        })
        .sum();
    let instructions = req.instructions.as_deref().map_or(0, quarter_tokens);
    (items + instructions + req.tools.chars.div_ceil(4)).max(1)
}

/// The tool result the conversation ends with: the trailing run of tool
/// outputs, joined by newlines.
fn trailing_result(items: &[Item]) -> Option<String> {
    let start = items
        .iter()
        .rposition(|i| !matches!(i, Item::Output { .. }))
        .map_or(0, |p| p + 1);
    let texts: Vec<&str> = items
        .get(start..)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| match i {
            Item::Output { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The answer text a structured-output format demands, if any.
fn formatted(format: &Format) -> Option<String> {
    match format {
        Format::Text => None,
        Format::JsonObject => Some(content::json_answer(None)),
        Format::JsonSchema(schema) => Some(content::json_answer(Some(schema))),
    }
}

/// Applies the content rules. `seed` (a hash of the request body) makes
/// ids deterministic; `key` (the bearer key) binds minted blobs.
pub(crate) fn plan(req: &ResponsesRequest, seed: &[u8], key: &str) -> Plan {
    let mut output = Vec::new();
    let mut reasoning_tokens = 0;
    if let Some(reasoning) = &req.reasoning {
        let summary = summary(&reasoning.effort);
        reasoning_tokens = content::words(&summary);
        output.push(Output::Reasoning {
            id: item_id("rs", seed, 0),
            summary,
            encrypted: reasoning.encrypted.then(|| blob::mint(key, seed)),
        });
    }

    let t = last_user_text(&req.items);
    let result = trailing_result(&req.items);
    let callable: Vec<&Callable> = req
        .tools
        .callable
        .iter()
        .filter(|c| {
            req.choice
                .allowed
                .as_ref()
                .is_none_or(|names| names.contains(&c.name))
        })
        .collect();
    let tools: Vec<Tool> = callable
        .iter()
        .map(|c| Tool {
            name: c.name.clone(),
            parameters: c.parameters.clone(),
        })
        .collect();
    let answer = content::answer(&Conversation {
        text: t,
        tool_result: result.as_deref(),
        tools: &tools,
        choice: &req.choice.choice,
        parallel: req.parallel_tool_calls,
        stop: &[],
        max_words: None,
    });

    let mut incomplete = false;
    let answer_tokens = match answer {
        Answer::Text { content, .. } => {
            let content = match formatted(&req.text.format) {
                Some(json) if content::reply_exactly(t).is_none() => json,
                _ => content,
            };
            let limit = req
                .max_output_tokens
                .map(|max| max.saturating_sub(reasoning_tokens));
            let (text, finish) = content::finish_text(content, &[], limit);
            incomplete = finish == Finish::Length;
            let tokens = content::words(&text);
            // A budget the reasoning used up leaves no message at all.
            if !(incomplete && text.is_empty()) {
                output.push(Output::Message {
                    id: item_id("msg", seed, output.len()),
                    text,
                });
            }
            tokens
        }
        Answer::Calls(calls) => calls
            .into_iter()
            .enumerate()
            .map(|(index, call)| {
                let item = call_item(call, index, output.len(), &callable, seed);
                let tokens = match &item {
                    Output::FunctionCall { arguments, .. } => arguments.len().div_ceil(4) + 1,
                    _ => CUSTOM_INPUT.len().div_ceil(4) + 1,
                };
                output.push(item);
                tokens
            })
            .sum(),
    };
    Plan {
        output,
        incomplete,
        input_tokens: input_tokens(req),
        output_tokens: (reasoning_tokens + answer_tokens).max(1),
        reasoning_tokens,
    }
}

/// The output item of the `index`-th call, at output position `at`: a
/// `custom_tool_call` for a custom tool, else a `function_call`.
fn call_item(call: Called, index: usize, at: usize, callable: &[&Callable], seed: &[u8]) -> Output {
    let tool = callable.iter().find(|c| c.name == call.name);
    let namespace = tool.and_then(|t| t.namespace.clone());
    let call_id = format!(
        "call_{}",
        hex_id(&[seed, &index.to_le_bytes()].concat(), CALL_ID_LEN)
    );
    if tool.is_some_and(|t| t.kind == CallKind::Custom) {
        Output::CustomCall {
            id: item_id("ctc", seed, at),
            call_id,
            name: call.name,
            namespace,
            input: CUSTOM_INPUT.to_owned(),
        }
    } else {
        Output::FunctionCall {
            id: item_id("fc", seed, at),
            call_id,
            name: call.name,
            namespace,
            arguments: Value::Object(call.input).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::GREETING;
    use crate::responses::request::{Endpoint, parse};
    use serde_json::json;

    fn run(body: &Value) -> Plan {
        plan(
            &parse(Some(body), Endpoint::Create, "k").unwrap(),
            b"seed",
            "k",
        )
    }

    fn only_text(p: &Plan) -> &str {
        match p.output.as_slice() {
            [Output::Message { text, .. }] => text,
            other => panic!("expected one message, got {other:?}"),
        }
    }

    #[test]
    fn text_rules() {
        assert_eq!(
            only_text(&run(
                &json!({"model": "m", "input": "Reply with exactly: pong"})
            )),
            "pong"
        );
        assert_eq!(
            only_text(&run(&json!({"model": "m", "input": "hi there"}))),
            "Echo: hi there"
        );
        assert_eq!(
            only_text(&run(&json!({"model": "m", "input": []}))),
            GREETING
        );
        let p = run(&json!({"model": "m", "input": "one two three"}));
        assert_eq!((p.input_tokens, p.output_tokens), (4, 4));
        assert!(p.output[0].id().starts_with("msg_"));
    }

    #[test]
    fn truncation_counts_reasoning() {
        let words: Vec<String> = (1..=20).map(|i| format!("w{i}")).collect();
        let body = json!({"model": "m", "input": format!("Reply with exactly: {}", words.join(" ")),
            "max_output_tokens": 16});
        let p = run(&body);
        assert!(p.incomplete);
        assert_eq!(only_text(&p).split_whitespace().count(), 16);
        let mut body = body;
        body["reasoning"] = json!({"effort": "high"});
        let p = run(&body);
        assert!(p.incomplete);
        let reasoning = p.reasoning_tokens;
        assert_eq!(reasoning, content::words(&summary("high")));
        let Output::Message { text, .. } = &p.output[1] else {
            panic!("{p:?}")
        };
        assert_eq!(text.split_whitespace().count(), 16 - reasoning);
        assert_eq!(p.output_tokens, 16);
    }

    fn tools_body(input: &Value) -> Value {
        json!({"model": "m", "input": input, "tools": [
            {"type": "function", "name": "get_weather", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"type": "custom", "name": "apply_patch"},
            {"type": "namespace", "name": "fs", "description": "files", "tools": [{"type": "function", "name": "read_file"}]}
        ]})
    }

    #[test]
    fn tool_calls_and_results() {
        let p = run(&tools_body(&json!(
            "get_weather, then apply_patch and read_file"
        )));
        let [
            Output::FunctionCall {
                name,
                arguments,
                call_id,
                namespace: None,
                ..
            },
            Output::CustomCall {
                name: custom,
                input,
                id,
                ..
            },
            Output::FunctionCall {
                name: ns_name,
                namespace: Some(ns),
                ..
            },
        ] = p.output.as_slice()
        else {
            panic!("{p:?}")
        };
        assert_eq!(
            (name.as_str(), arguments.as_str()),
            ("get_weather", r#"{"city":"test"}"#)
        );
        assert!(call_id.starts_with("call_"));
        assert_eq!((custom.as_str(), input.as_str()), ("apply_patch", "test"));
        assert!(id.starts_with("ctc_"));
        assert_eq!((ns_name.as_str(), ns.as_str()), ("read_file", "fs"));

        let mut body = tools_body(&json!("get_weather and apply_patch"));
        body["parallel_tool_calls"] = json!(false);
        assert_eq!(run(&body).output.len(), 1);

        let body = tools_body(&json!([
            {"role": "user", "content": "use get_weather"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
        ]));
        assert_eq!(only_text(&run(&body)), "Tool result received: sunny");
    }

    #[test]
    fn allowed_tools_restrict_the_choice() {
        let mut body = tools_body(&json!("hi"));
        body["tool_choice"] = json!({"type": "allowed_tools", "mode": "required",
            "tools": [{"type": "custom", "name": "apply_patch"}]});
        assert!(matches!(
            run(&body).output.as_slice(),
            [Output::CustomCall { .. }]
        ));
    }

    #[test]
    fn structured_output() {
        let body = json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema",
            "name": "o", "schema": {"type": "object", "properties": {
                "n": {"type": "integer"}, "tags": {"type": "array"}, "skip": {"type": "string"}},
                "required": ["n", "tags"]}}}});
        let v: Value = serde_json::from_str(only_text(&run(&body))).unwrap();
        assert_eq!(v, json!({"n": 1, "tags": []}));
        let body = json!({"model": "m", "input": "json please", "text": {"format": {"type": "json_object"}}});
        assert_eq!(only_text(&run(&body)), "{}");
    }

    #[test]
    fn reasoning_item_and_blob() {
        let body = json!({"model": "m", "input": "hi", "reasoning": {"effort": "low"}});
        let p = run(&body);
        assert!(
            matches!(&p.output[0], Output::Reasoning { encrypted: None, id, .. } if id.starts_with("rs_"))
        );
        let mut body = body;
        body["include"] = json!(["reasoning.encrypted_content"]);
        let Output::Reasoning {
            encrypted: Some(blob),
            ..
        } = &run(&body).output[0]
        else {
            panic!()
        };
        assert!(blob::verify("k", blob));
    }
}
