//! The Anthropic side of the content rules: maps a validated Messages
//! request onto [`content`](crate::content), adds the thinking block, ids,
//! stop reasons and token counts, and finds the prompt-cache prefix. Pure:
//! whether a prefix was seen before is the handler's question to `State`.

use serde_json::{Map, Value};

use super::request::{MessagesRequest, last_tool_result, last_user_text, text_of};
use crate::content::{self, Answer, Conversation, Finish};
use crate::search::{self, Found};
use crate::util::{base64, fnv64, hex_id, quarter_tokens};

/// The deterministic text of every thinking block.
pub(crate) const THINKING_TEXT: &str =
    "The user wants a deterministic answer. I will follow the emulator's content rules.";

/// One output content block.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    Thinking {
        thinking: String,
        signature: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Map<String, Value>,
    },
    /// The web search the model ran (`server_tool_use`).
    Search {
        id: String,
        query: String,
    },
    /// Its `web_search_tool_result`.
    SearchResult {
        tool_use_id: String,
        results: Vec<Found>,
    },
    /// Text citing the results (`citations` of `web_search_result_location`).
    CitedText {
        text: String,
        sources: Vec<Found>,
    },
}

/// Everything needed to render the answer, streamed or not.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub(crate) blocks: Vec<Block>,
    pub(crate) stop_reason: &'static str,
    pub(crate) stop_sequence: Option<String>,
    pub(crate) output_tokens: usize,
    /// Web searches run (`usage.server_tool_use.web_search_requests`).
    pub(crate) web_searches: usize,
}

/// The cacheable prefix of a prompt: everything up to the last
/// `cache_control` breakpoint (tools, then system, then messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CachePrefix {
    pub(crate) hash: u64,
    pub(crate) tokens: usize,
    pub(crate) one_hour: bool,
}

/// Input token counts of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prompt {
    /// All input tokens, cached or not (at least 1).
    pub(crate) total: usize,
    pub(crate) cache: Option<CachePrefix>,
}

/// The `usage` numbers of one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    pub(crate) input: usize,
    pub(crate) cache_creation: usize,
    pub(crate) cache_read: usize,
    /// The cache write used the 1-hour TTL.
    pub(crate) one_hour: bool,
    pub(crate) output: usize,
    /// Web searches run.
    pub(crate) web_searches: usize,
}

impl Usage {
    /// Splits the prompt into uncached, written and read tokens; `hit`
    /// says whether the cache prefix was seen before.
    pub(crate) fn new(prompt: &Prompt, hit: bool, output: usize) -> Self {
        let mut usage = Self {
            input: prompt.total,
            output,
            ..Self::default()
        };
        if let Some(cache) = prompt.cache {
            usage.input = prompt.total - cache.tokens;
            if hit {
                usage.cache_read = cache.tokens;
            } else {
                usage.cache_creation = cache.tokens;
                usage.one_hour = cache.one_hour;
            }
        }
        usage
    }
}

/// Applies the content rules. `seed` (a hash of the request body) makes
/// ids and signatures deterministic.
pub(crate) fn plan(req: &MessagesRequest, seed: &[u8]) -> Plan {
    let t = last_user_text(&req.messages);
    let result = last_tool_result(&req.messages);
    let answer = content::answer(&Conversation {
        text: &t,
        tool_result: result.as_deref(),
        tools: &req.tools,
        choice: &req.tool_choice,
        parallel: req.parallel,
        stop: &req.stop,
        max_words: req.max_tokens,
    });

    let mut blocks = Vec::new();
    let mut output_tokens = 0;
    if let Some(thinking) = req.thinking {
        let text = if thinking.omitted {
            String::new()
        } else {
            THINKING_TEXT.to_owned()
        };
        output_tokens += content::words(THINKING_TEXT);
        blocks.push(Block::Thinking {
            thinking: text,
            signature: base64(hex_id(&[seed, b"signature"].concat(), 96).as_bytes()),
        });
    }
    // Structured output: JSON filling the schema, unless told exactly what to say.
    let structured = req.json_schema.is_some() && content::reply_exactly(&t).is_none();
    let answer = match answer {
        Answer::Text { .. } if structured => {
            let (content, finish) = content::finish_text(
                content::json_answer(req.json_schema.as_ref()),
                &req.stop,
                req.max_tokens,
            );
            Answer::Text { content, finish }
        }
        other => other,
    };
    // The web search rule: search first, then answer citing what was found.
    let found = req.web_search.as_ref().and_then(|ws| {
        let query = search::query(&t)?;
        let id = format!("srvtoolu_01{}", hex_id(&[seed, b"search"].concat(), 22));
        let results = search::results(&query, &ws.allowed_domains);
        blocks.push(Block::Search {
            id: id.clone(),
            query,
        });
        blocks.push(Block::SearchResult {
            tool_use_id: id,
            results: results.clone(),
        });
        Some(results)
    });
    let (stop_reason, stop_sequence) = match answer {
        Answer::Text { content, finish } => {
            output_tokens += content::words(&content);
            match &found {
                // A structured answer is the JSON alone: no lead-in, no citations.
                Some(sources) if !content.is_empty() && !structured => {
                    output_tokens += content::words(search::PREFIX);
                    blocks.push(Block::Text(search::PREFIX.to_owned()));
                    blocks.push(Block::CitedText {
                        text: content,
                        sources: sources.clone(),
                    });
                }
                _ if !content.is_empty() => blocks.push(Block::Text(content)),
                _ => {}
            }
            match finish {
                Finish::Natural => ("end_turn", None),
                Finish::Stop(s) => ("stop_sequence", Some(s)),
                Finish::Length => ("max_tokens", None),
            }
        }
        Answer::Calls(calls) => {
            for (index, call) in calls.into_iter().enumerate() {
                let json = serde_json::to_string(&call.input).unwrap_or_default();
                output_tokens += json.len().div_ceil(4) + 1;
                blocks.push(Block::ToolUse {
                    id: format!(
                        "toolu_01{}",
                        hex_id(&[seed, &index.to_le_bytes()].concat(), 22)
                    ),
                    name: call.name,
                    input: call.input,
                });
            }
            ("tool_use", None)
        }
    };
    if req.max_tokens != Some(0) {
        output_tokens = output_tokens.max(1);
    }
    Plan {
        blocks,
        stop_reason,
        stop_sequence,
        output_tokens,
        web_searches: usize::from(found.is_some()),
    }
}

/// One piece of the prompt, in cache order.
struct Segment {
    tokens: usize,
    /// What identifies the piece for the cache (its JSON minus `cache_control`).
    key: String,
    /// The block's `cache_control`, when it is a breakpoint.
    breakpoint: Option<Value>,
}

fn segment(block: &Value, tokens: usize) -> Segment {
    let breakpoint = block.get("cache_control").filter(|c| !c.is_null()).cloned();
    let mut keyed = block.clone();
    if let Some(obj) = keyed.as_object_mut() {
        obj.remove("cache_control");
    }
    Segment {
        tokens,
        key: keyed.to_string(),
        breakpoint,
    }
}

/// Tokens of one message content block (images and documents count 0).
fn block_tokens(b: &Value) -> usize {
    let s = |key: &str| b.get(key).and_then(Value::as_str).unwrap_or("");
    match b.get("type").and_then(Value::as_str) {
        Some("text") => quarter_tokens(s("text")),
        Some("thinking") => quarter_tokens(s("thinking")),
        Some("tool_use") => {
            let input = b.get("input").map(Value::to_string).unwrap_or_default();
            quarter_tokens(s("name")) + quarter_tokens(&input)
        }
        Some("tool_result") => quarter_tokens(&text_of(b.get("content"))),
        _ => 0,
    }
}

/// Counts input tokens and locates the cache prefix. The prefix hash covers
/// the model and every piece up to the last breakpoint (a top-level
/// `cache_control` makes the last piece the breakpoint).
pub(crate) fn prompt(req: &MessagesRequest, model: &str) -> Prompt {
    let mut segments: Vec<Segment> = Vec::new();
    for tool in &req.raw_tools {
        segments.push(segment(tool, quarter_tokens(&tool.to_string())));
    }
    for block in &req.system {
        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
        segments.push(segment(block, quarter_tokens(text)));
    }
    for m in &req.messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        segments.push(Segment {
            tokens: 0,
            key: format!("role:{role}"),
            breakpoint: None,
        });
        match m.get("content") {
            Some(Value::String(s)) => segments.push(Segment {
                tokens: quarter_tokens(s),
                key: Value::String(s.clone()).to_string(),
                breakpoint: None,
            }),
            Some(Value::Array(blocks)) => {
                segments.extend(blocks.iter().map(|b| segment(b, block_tokens(b))));
            }
            _ => {}
        }
    }
    let total = segments.iter().map(|s| s.tokens).sum::<usize>().max(1);

    let mut last = segments.iter().rposition(|s| s.breakpoint.is_some());
    let mut control = last
        .and_then(|i| segments.get(i))
        .and_then(|s| s.breakpoint.clone());
    if let Some(top) = &req.top_cache {
        if !segments.is_empty() {
            last = Some(segments.len() - 1);
            control = Some(top.clone());
        }
    }
    let cache = last.map(|end| {
        let prefix = segments.get(..=end).unwrap_or_default();
        let mut parts: Vec<&[u8]> = vec![model.as_bytes()];
        parts.extend(prefix.iter().map(|s| s.key.as_bytes()));
        let tokens = prefix
            .iter()
            .map(|s| s.tokens)
            .sum::<usize>()
            .clamp(1, total);
        CachePrefix {
            hash: fnv64(&parts),
            tokens,
            one_hour: control
                .as_ref()
                .and_then(|c| c.get("ttl"))
                .and_then(Value::as_str)
                == Some("1h"),
        }
    });
    Prompt { total, cache }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::request::{Endpoint, Version, parse};
    use serde_json::json;

    fn req(body: &Value) -> MessagesRequest {
        parse(Some(body), Version::V2023_06_01, Endpoint::Messages).unwrap()
    }

    #[test]
    fn text_stop_reasons() {
        let mut body = json!({"model": "m", "max_tokens": 100,
            "messages": [{"role": "user", "content": "Reply with exactly: one two END three"}]});
        body["stop_sequences"] = json!(["END"]);
        let p = plan(&req(&body), b"s");
        assert_eq!(p.blocks, vec![Block::Text("one two ".to_owned())]);
        assert_eq!(p.stop_reason, "stop_sequence");
        assert_eq!(p.stop_sequence.as_deref(), Some("END"));
        body["max_tokens"] = json!(1);
        let p = plan(&req(&body), b"s");
        assert_eq!(p.stop_reason, "max_tokens");
        assert_eq!(p.output_tokens, 1);
        body["max_tokens"] = json!(0);
        let p = plan(&req(&body), b"s");
        assert!(p.blocks.is_empty());
        assert_eq!(p.output_tokens, 0);
    }

    #[test]
    fn thinking_then_tool_use() {
        let body = json!({"model": "m", "max_tokens": 2000,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "get_weather", "input_schema": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
            "messages": [{"role": "user", "content": "get_weather for Oslo"}]});
        let p = plan(&req(&body), b"s");
        assert!(matches!(&p.blocks[0], Block::Thinking { signature, .. } if !signature.is_empty()));
        let Block::ToolUse { id, name, input } = &p.blocks[1] else {
            panic!("{p:?}")
        };
        assert!(id.starts_with("toolu_01"));
        assert_eq!(name, "get_weather");
        assert_eq!(Value::Object(input.clone()), json!({"city": "test"}));
        assert_eq!(p.stop_reason, "tool_use");
    }

    #[test]
    fn cache_prefix_ends_at_last_breakpoint() {
        let body = json!({"model": "m", "max_tokens": 10,
            "system": [{"type": "text", "text": "a long system prompt here", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": "question one"}]});
        let r = req(&body);
        let p = prompt(&r, "m");
        let cache = p.cache.unwrap();
        assert_eq!(cache.tokens, 7);
        assert!(cache.one_hour);
        assert_eq!(p.total, 7 + 3);
        let mut other = body.clone();
        other["messages"][0]["content"] = json!("question two, longer");
        assert_eq!(prompt(&req(&other), "m").cache.unwrap().hash, cache.hash);
        assert_ne!(prompt(&r, "m2").cache.unwrap().hash, cache.hash);
        let u = Usage::new(&p, false, 2);
        assert_eq!((u.input, u.cache_creation, u.cache_read), (3, 7, 0));
        let u = Usage::new(&p, true, 2);
        assert_eq!((u.input, u.cache_creation, u.cache_read), (3, 0, 7));
        let plain = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        assert!(prompt(&req(&plain), "m").cache.is_none());
    }
}
