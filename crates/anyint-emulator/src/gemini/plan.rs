//! The Gemini side of the content rules: maps a validated generate request
//! onto [`content`](crate::content), adds thought summaries, thought
//! signatures, finish reasons and token counts. Pure functions of the
//! request; rendering happens in `render`.

use serde_json::{Map, Value};

use super::request::{GenerateRequest, ResponseFormat, last_function_result, last_user_text};
use crate::content::{self, Answer, Conversation, Finish};
use crate::search::{self, Found};
use crate::util::{base64, hex_id};

/// Tokens of search results fed back to the model, per grounded answer
/// (`toolUsePromptTokenCount`).
pub(crate) const TOOL_USE_PROMPT_TOKENS: usize = 64;

/// The Google Search an answer was grounded on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Grounding {
    pub(crate) query: String,
    pub(crate) results: Vec<Found>,
    /// The cited span of the answer text: UTF-8 byte offsets and its text
    /// (`None` when the answer is function calls).
    pub(crate) cited: Option<(usize, usize, String)>,
}

/// The deterministic thought summary returned with `includeThoughts`.
pub(crate) const THOUGHT_TEXT: &str =
    "The user wants a deterministic answer, so I will follow the emulator's content rules.";

/// What one candidate says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    Text {
        content: String,
        finish: &'static str,
    },
    /// `(name, args)` of each function call.
    Calls(Vec<(String, Map<String, Value>)>),
}

/// Everything needed to render the answer, streamed or not.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// Thought summary part (only with `includeThoughts`).
    pub(crate) thought: Option<String>,
    pub(crate) output: Output,
    /// `thoughtSignature` of the first function call part (thinking only).
    pub(crate) signature: Option<String>,
    /// Google Search grounding, when the request offered it and searched.
    pub(crate) grounding: Option<Grounding>,
    pub(crate) candidates: usize,
    pub(crate) prompt_tokens: usize,
    pub(crate) cached_tokens: usize,
    /// Across all candidates, without thoughts.
    pub(crate) candidates_tokens: usize,
    pub(crate) thoughts_tokens: usize,
}

/// Applies the content rules. `seed` (a hash of the request body) makes
/// thought signatures deterministic.
pub(crate) fn plan(req: &GenerateRequest, seed: &[u8]) -> Plan {
    let t = last_user_text(&req.contents);
    let result = last_function_result(&req.contents);
    let answer = content::answer(&Conversation {
        text: &t,
        tool_result: result.as_deref(),
        tools: &req.tools,
        choice: &req.tool_choice,
        parallel: true,
        stop: &req.stop,
        max_words: req.max_tokens,
    });
    // Structured output, unless told exactly what to say.
    let structured = matches!(
        req.output,
        ResponseFormat::Json(_) | ResponseFormat::Enum(_)
    ) && content::reply_exactly(&t).is_none();
    let answer = match answer {
        Answer::Text { .. } if structured => {
            let text = match &req.output {
                ResponseFormat::Json(schema) => content::json_answer(schema.as_ref()),
                ResponseFormat::Enum(schema) => schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                ResponseFormat::Text => String::new(),
            };
            let (content, finish) = content::finish_text(text, &req.stop, req.max_tokens);
            Answer::Text { content, finish }
        }
        other => other,
    };
    let query = req.google_search.then(|| search::query(&t)).flatten();
    let mut grounding = query.map(|query| Grounding {
        results: search::results(&query, &[]),
        query,
        cited: None,
    });
    let (output, per_candidate) = match answer {
        Answer::Text { content, finish } => {
            let finish = if finish == Finish::Length {
                "MAX_TOKENS"
            } else {
                "STOP"
            };
            // Grounded: the content follows a fixed prefix, and is the cited span (a
            // structured answer is the JSON alone: no prefix, no citation).
            let content = match &mut grounding {
                Some(g) if !content.is_empty() && !structured => {
                    let start = search::PREFIX.len();
                    g.cited = Some((start, start + content.len(), content.clone()));
                    format!("{}{content}", search::PREFIX)
                }
                _ => content,
            };
            let words = content::words(&content);
            (Output::Text { content, finish }, words)
        }
        Answer::Calls(calls) => {
            let tokens = calls
                .iter()
                .map(|c| {
                    serde_json::to_string(&c.input)
                        .unwrap_or_default()
                        .len()
                        .div_ceil(4)
                        + 1
                })
                .sum();
            let calls = calls.into_iter().map(|c| (c.name, c.input)).collect();
            (Output::Calls(calls), tokens)
        }
    };
    let thinking = req.thinking.is_some();
    let signature = (thinking && matches!(output, Output::Calls(_)))
        .then(|| base64(hex_id(&[seed, b"thought"].concat(), 48).as_bytes()));
    Plan {
        thought: (req.thinking == Some(true)).then(|| THOUGHT_TEXT.to_owned()),
        output,
        signature,
        grounding,
        candidates: req.candidates,
        prompt_tokens: req.prompt_tokens,
        cached_tokens: req.cached_tokens,
        candidates_tokens: per_candidate.max(1) * req.candidates,
        thoughts_tokens: if thinking {
            content::words(THOUGHT_TEXT) * req.candidates
        } else {
            0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::request::{Endpoint, parse};
    use serde_json::json;

    fn run(body: &Value) -> Plan {
        plan(&parse(Some(body), Endpoint::Generate).unwrap(), b"s")
    }

    #[test]
    fn echo_max_tokens_and_thinking() {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "a b c"}]}],
            "generationConfig": {"maxOutputTokens": 2}});
        let p = run(&body);
        assert_eq!(
            p.output,
            Output::Text {
                content: "Echo: a".to_owned(),
                finish: "MAX_TOKENS"
            }
        );
        assert_eq!(p.thoughts_tokens, 0);
        let body = json!({"contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": true}}});
        let p = run(&body);
        assert!(p.thought.is_some());
        assert!(p.thoughts_tokens > 0);
    }

    #[test]
    fn function_calls_get_a_signature_when_thinking() {
        let body = json!({"contents": [{"parts": [{"text": "call get_time"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_time"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 128}}});
        let p = run(&body);
        assert!(matches!(&p.output, Output::Calls(c) if c[0].0 == "get_time"));
        assert!(p.signature.is_some());
        assert!(p.thought.is_none());
    }
}
