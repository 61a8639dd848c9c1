//! The OpenAI side of the content rules (see the crate docs): maps a chat
//! request onto the family-neutral [`content`](crate::content) rules and adds
//! OpenAI call ids and token counts. Pure functions of the validated request;
//! rendering happens in `render`.

use serde_json::Value;

use super::request::{ChatRequest, JsonFormat, last_user_text, text_of};
use crate::content::{self, Answer, Conversation, Finish};
use crate::util::{hex_id, quarter_tokens};

pub(crate) use crate::content::pieces;

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
    let result = last_is_tool.then(|| text_of(last.and_then(|m| m.get("content"))));

    let answer = content::answer(&Conversation {
        text: &t,
        tool_result: result.as_deref(),
        tools: &req.tools,
        choice: &req.tool_choice,
        parallel: req.parallel_tool_calls,
        stop: &req.stop,
        max_words: req.max_tokens,
    });
    let output = match answer {
        Answer::Text { content, finish } => Output::Text {
            // A JSON format shapes the answer unless the prompt dictates it exactly.
            content: match &req.json {
                Some(format) if content::reply_exactly(&t).is_none() => {
                    content::json_answer(match format {
                        JsonFormat::Mode => None,
                        JsonFormat::Schema(s) => Some(s),
                    })
                }
                _ => content,
            },
            finish: if finish == Finish::Length {
                "length"
            } else {
                "stop"
            },
        },
        Answer::Calls(calls) => Output::Tools(
            calls
                .into_iter()
                .enumerate()
                .map(|(index, call)| Call {
                    id: format!(
                        "call_{}",
                        hex_id(&[seed, &index.to_le_bytes()].concat(), 24)
                    ),
                    name: call.name,
                    arguments: Value::Object(call.input).to_string(),
                })
                .collect(),
        ),
    };

    let per_choice = match &output {
        Output::Text { content, .. } => content::words(content),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::request::parse;
    use crate::content::GREETING;
    use serde_json::json;

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
