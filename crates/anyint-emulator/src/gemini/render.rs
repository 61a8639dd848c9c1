//! Renders a Gemini [`Plan`] as a `GenerateContentResponse` or as the
//! ordered list of stream chunks (each a full response with the new parts
//! only). Framing (SSE or JSON array) is the handler's job. No IO.

use serde_json::{Value, json};

use super::plan::{Output, Plan, TOOL_USE_PROMPT_TOKENS};
use crate::content::pieces;
use crate::util::hex_id;

/// The fields every response or chunk repeats.
pub(crate) struct Meta<'a> {
    pub(crate) model: &'a str,
    pub(crate) response_id: &'a str,
}

/// `usageMetadata`; `full` false gives the partial counts of a non-final
/// stream chunk (prompt only).
fn usage(plan: &Plan, full: bool) -> Value {
    let mut u = json!({"promptTokenCount": plan.prompt_tokens});
    let uncached = plan.prompt_tokens - plan.cached_tokens;
    u["promptTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": uncached}]);
    if plan.cached_tokens > 0 {
        u["cachedContentTokenCount"] = json!(plan.cached_tokens);
        u["cacheTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": plan.cached_tokens}]);
    }
    let tool_use = if plan.grounding.is_some() {
        TOOL_USE_PROMPT_TOKENS
    } else {
        0
    };
    if full {
        u["candidatesTokenCount"] = json!(plan.candidates_tokens);
        u["totalTokenCount"] =
            json!(plan.prompt_tokens + plan.candidates_tokens + plan.thoughts_tokens + tool_use);
        if tool_use > 0 {
            u["toolUsePromptTokenCount"] = json!(tool_use);
        }
        if plan.thoughts_tokens > 0 {
            u["thoughtsTokenCount"] = json!(plan.thoughts_tokens);
        }
    } else {
        u["totalTokenCount"] = json!(plan.prompt_tokens);
    }
    u
}

fn response(meta: &Meta<'_>, candidates: Vec<Value>, usage: Value) -> Value {
    let mut r = json!({"candidates": Value::Array(candidates)});
    r["usageMetadata"] = usage;
    r["modelVersion"] = json!(meta.model);
    r["responseId"] = json!(meta.response_id);
    r
}

fn candidate(index: usize, parts: Vec<Value>, finish: Option<&str>) -> Value {
    let mut content = json!({"role": "model"});
    if !parts.is_empty() {
        content["parts"] = Value::Array(parts);
    }
    let mut c = json!({"content": content, "index": index});
    if let Some(f) = finish {
        c["finishReason"] = json!(f);
    }
    c
}

/// The candidate's `groundingMetadata`: the query, the results as
/// redirect links titled by domain, and the cited span in UTF-8 bytes of
/// the answer part `part` (0 is left out, as proto3 JSON does).
fn grounding(plan: &Plan, part: usize) -> Option<Value> {
    let g = plan.grounding.as_ref()?;
    let chunks: Vec<Value> = g
        .results
        .iter()
        .map(|r| {
            let domain = r
                .url
                .trim_start_matches("https://")
                .split('/')
                .next()
                .unwrap_or_default();
            json!({"web": {
                "uri": format!("https://vertexaisearch.cloud.google.com/grounding-api-redirect/{}",
                               hex_id(r.url.as_bytes(), 32)),
                "title": domain,
            }})
        })
        .collect();
    let supports: Vec<Value> = g
        .cited
        .iter()
        .map(|(start, end, text)| {
            let mut segment = json!({"startIndex": start, "endIndex": end, "text": text});
            if part > 0 {
                segment["partIndex"] = json!(part);
            }
            json!({"segment": segment, "groundingChunkIndices": [0, 1],
                   "confidenceScores": [0.92, 0.71]})
        })
        .collect();
    Some(json!({
        "webSearchQueries": [g.query],
        "searchEntryPoint": {"renderedContent":
            "<style>.container{display:flex}</style><div class=\"container\">Google Search</div>"},
        "groundingChunks": chunks,
        "groundingSupports": supports,
    }))
}

/// The function call parts, the first carrying the thought signature.
fn call_parts(plan: &Plan) -> Vec<Value> {
    let Output::Calls(calls) = &plan.output else {
        return Vec::new();
    };
    calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            let mut part = json!({"functionCall": {"name": name, "args": args}});
            if let (0, Some(sig)) = (i, &plan.signature) {
                part["thoughtSignature"] = json!(sig);
            }
            part
        })
        .collect()
}

fn finish(plan: &Plan) -> &'static str {
    match &plan.output {
        Output::Text { finish, .. } => finish,
        Output::Calls(_) => "STOP",
    }
}

/// The non-streaming `GenerateContentResponse`.
pub(crate) fn complete(meta: &Meta<'_>, plan: &Plan) -> Value {
    let mut parts = Vec::new();
    if let Some(t) = &plan.thought {
        parts.push(json!({"text": t, "thought": true}));
    }
    match &plan.output {
        Output::Text { content, .. } if content.is_empty() => {}
        Output::Text { content, .. } => parts.push(json!({"text": content})),
        Output::Calls(_) => parts.extend(call_parts(plan)),
    }
    let text_part = usize::from(plan.thought.is_some());
    let candidates = (0..plan.candidates)
        .map(|i| {
            let mut c = candidate(i, parts.clone(), Some(finish(plan)));
            if let Some(g) = grounding(plan, text_part) {
                c["groundingMetadata"] = g;
            }
            c
        })
        .collect();
    response(meta, candidates, usage(plan, true))
}

/// Every chunk of the stream in order: per candidate, the thought pieces,
/// then the text pieces (or all function calls in one chunk); each
/// candidate's last chunk carries its finish reason and the stream's last
/// chunk the complete usage.
pub(crate) fn chunks(meta: &Meta<'_>, plan: &Plan) -> Vec<Value> {
    let mut parts_per_chunk: Vec<Vec<Value>> = Vec::new();
    if let Some(t) = &plan.thought {
        for piece in pieces(t) {
            parts_per_chunk.push(vec![json!({"text": piece, "thought": true})]);
        }
    }
    match &plan.output {
        Output::Text { content, .. } => {
            for piece in pieces(content) {
                parts_per_chunk.push(vec![json!({"text": piece})]);
            }
            if content.is_empty() {
                parts_per_chunk.push(vec![json!({"text": ""})]);
            }
        }
        Output::Calls(_) => parts_per_chunk.push(call_parts(plan)),
    }
    let mut out = Vec::new();
    for index in 0..plan.candidates {
        let last_candidate = index + 1 == plan.candidates;
        for (k, parts) in parts_per_chunk.iter().enumerate() {
            let last = k + 1 == parts_per_chunk.len();
            let mut c = candidate(index, parts.clone(), last.then(|| finish(plan)));
            // Grounding arrives with the last chunk, its offsets into the streamed text.
            if let Some(g) = grounding(plan, 0).filter(|_| last) {
                c["groundingMetadata"] = g;
            }
            out.push(response(meta, vec![c], usage(plan, last && last_candidate)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: Meta<'static> = Meta {
        model: "gemini-x",
        response_id: "r1",
    };

    fn text_plan(content: &str) -> Plan {
        Plan {
            thought: None,
            output: Output::Text {
                content: content.to_owned(),
                finish: "STOP",
            },
            signature: None,
            grounding: None,
            candidates: 1,
            prompt_tokens: 4,
            cached_tokens: 0,
            candidates_tokens: 2,
            thoughts_tokens: 0,
        }
    }

    #[test]
    fn complete_shape() {
        let v = complete(&META, &text_plan("Hi there"));
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"],
            "Hi there"
        );
        assert_eq!(v["candidates"][0]["content"]["role"], "model");
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert_eq!(v["usageMetadata"]["totalTokenCount"], 6);
        assert!(v["usageMetadata"].get("thoughtsTokenCount").is_none());
        assert_eq!(v["modelVersion"], "gemini-x");
    }

    #[test]
    fn chunks_are_incremental() {
        let c = chunks(&META, &text_plan("Hi there"));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["candidates"][0]["content"]["parts"][0]["text"], "Hi");
        assert!(c[0]["candidates"][0].get("finishReason").is_none());
        assert_eq!(c[0]["usageMetadata"]["totalTokenCount"], 4);
        assert_eq!(
            c[1]["candidates"][0]["content"]["parts"][0]["text"],
            " there"
        );
        assert_eq!(c[1]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(c[1]["usageMetadata"]["candidatesTokenCount"], 2);
    }
}
