//! GenerateContentResponse ⇄ canonical [`ChatResponse`], and finish reasons both ways.

use serde_json::{Map, Value, json};

use super::fields::{get, get_obj, get_str};
use super::parts::{PartsDecoder, PartsWriter};
use super::usage::{from_metadata, to_metadata};
use crate::DecodeError;
use crate::canonical::{ChatResponse, DecodeOptions, FinishReason, Part};

/// Decodes an upstream generateContent response: the first candidate only.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    decode_response_with(body, DecodeOptions::default())
}

/// [`decode_response`] for a request that asked for what `opts` says: with
/// `first_tool_call_only`, every function call after the first is dropped (usage stays as
/// reported: those calls were generated).
pub fn decode_response_with(body: &[u8], opts: DecodeOptions) -> Result<ChatResponse, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("the upstream response is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(DecodeError::body(
            "the upstream response is not a JSON object",
        ));
    };
    if get(&obj, "error").is_some() {
        return Err(DecodeError::body(
            "the upstream returned an error instead of a response",
        ));
    }
    let id = get_str(&obj, "responseId").unwrap_or_default().to_owned();
    let mut resp = ChatResponse {
        model: get_str(&obj, "modelVersion").unwrap_or_default().to_owned(),
        usage: get_obj(&obj, "usageMetadata")
            .map(from_metadata)
            .unwrap_or_default(),
        ..ChatResponse::default()
    };
    match first_candidate(&obj) {
        Some(cand) => {
            let mut decoder = PartsDecoder::response(&id);
            resp.parts = candidate_parts(cand, &mut decoder);
            if opts.first_tool_call_only {
                resp.parts = keep_first_call(resp.parts, &mut false);
            }
            super::search::annotate(&mut resp, cand);
            resp.finish = get_str(cand, "finishReason").map(|r| {
                finish_from_wire(
                    r,
                    resp.parts
                        .iter()
                        .any(|p| matches!(p, Part::ToolCall { .. })),
                )
            });
        }
        None => resp.finish = blocked(&obj),
    }
    resp.id = id;
    Ok(resp)
}

/// The first candidate of a response chunk.
pub(super) fn first_candidate(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    get(obj, "candidates")?.as_array()?.first()?.as_object()
}

/// A candidate's parts in canonical form; malformed or untranslatable parts are skipped.
pub(super) fn candidate_parts(cand: &Map<String, Value>, dec: &mut PartsDecoder) -> Vec<Part> {
    let Some(parts) = get_obj(cand, "content")
        .and_then(|c| get(c, "parts"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    parts
        .iter()
        .filter_map(|p| dec.decode(p).ok())
        .flat_map(|d| d.parts)
        .collect()
}

/// `parts` without the function calls after the first one of the turn (`*seen`: the turn's
/// first call came in an earlier chunk), and without the signature carrier right before a
/// dropped call. Text and thoughts stay.
pub(super) fn keep_first_call(parts: Vec<Part>, seen: &mut bool) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for part in parts {
        if matches!(part, Part::ToolCall { .. }) {
            if *seen {
                // The signature Gemini put on this call travels as the part before it.
                let carrier = |p: &Part| {
                    matches!(p, Part::Reasoning { text, signature: Some(_), redacted: None }
                        if text.is_empty())
                };
                if out.last().is_some_and(carrier) {
                    out.pop();
                }
                continue;
            }
            *seen = true;
        }
        out.push(part);
    }
    out
}

/// `ContentFilter` when the prompt itself was blocked (`promptFeedback.blockReason`).
pub(super) fn blocked(obj: &Map<String, Value>) -> Option<FinishReason> {
    get_obj(obj, "promptFeedback")
        .and_then(|f| get_str(f, "blockReason"))
        .filter(|r| *r != "BLOCK_REASON_UNSPECIFIED")
        .map(|_| FinishReason::ContentFilter)
}

/// A Gemini `finishReason` in canonical form. Gemini stops with `STOP` after function calls.
pub(super) fn finish_from_wire(reason: &str, has_tool_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_tool_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// A canonical finish reason as a Gemini `finishReason`. Names that are not Gemini enum values
/// (another family's reason) become `OTHER`.
pub(super) fn finish_to_wire(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop | FinishReason::StopSequence | FinishReason::ToolCalls => "STOP",
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ContentFilter => "SAFETY",
        FinishReason::Other(name)
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            name
        }
        FinishReason::Other(_) => "OTHER",
    }
}

/// Encodes a canonical response as the body a Gemini client receives.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let mut w = PartsWriter::response();
    for part in &resp.parts {
        w.part(part);
    }
    let mut cand = Map::new();
    cand.insert(
        "content".into(),
        json!({"role": "model", "parts": w.finish()}),
    );
    if let Some(reason) = &resp.finish {
        cand.insert("finishReason".into(), finish_to_wire(reason).into());
    }
    cand.insert("index".into(), 0.into());
    let body = json!({
        "candidates": [cand],
        "usageMetadata": to_metadata(&resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Usage;

    #[test]
    fn finish_reasons_both_ways() {
        assert_eq!(finish_from_wire("STOP", false), FinishReason::Stop);
        assert_eq!(finish_from_wire("STOP", true), FinishReason::ToolCalls);
        assert_eq!(finish_from_wire("MAX_TOKENS", true), FinishReason::Length);
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
        ] {
            assert_eq!(
                finish_from_wire(r, false),
                FinishReason::ContentFilter,
                "{r}"
            );
        }
        assert_eq!(
            finish_from_wire("MALFORMED_FUNCTION_CALL", false),
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into())
        );
        assert_eq!(finish_to_wire(&FinishReason::Stop), "STOP");
        assert_eq!(finish_to_wire(&FinishReason::StopSequence), "STOP");
        assert_eq!(finish_to_wire(&FinishReason::ToolCalls), "STOP");
        assert_eq!(finish_to_wire(&FinishReason::Length), "MAX_TOKENS");
        assert_eq!(finish_to_wire(&FinishReason::ContentFilter), "SAFETY");
        assert_eq!(
            finish_to_wire(&FinishReason::Other("LANGUAGE".into())),
            "LANGUAGE"
        );
        assert_eq!(
            finish_to_wire(&FinishReason::Other("pause_turn".into())),
            "OTHER"
        );
    }

    #[test]
    fn decodes_first_candidate_with_tool_call() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Checking."},{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}}}]},"finishReason":"STOP","index":0},{"content":{"parts":[{"text":"ignored"}]}}],
            "usageMetadata":{"promptTokenCount":41,"candidatesTokenCount":9,"thoughtsTokenCount":4,"totalTokenCount":54},"modelVersion":"gemini-2.5-flash","responseId":"AbC"}"#;
        let r = decode_response(body).unwrap();
        assert_eq!(r.id, "AbC");
        assert_eq!(r.model, "gemini-2.5-flash");
        assert_eq!(r.finish, Some(FinishReason::ToolCalls));
        assert_eq!(
            r.parts,
            vec![
                Part::text("Checking."),
                Part::ToolCall {
                    id: "call_AbC_0".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into()
                }
            ]
        );
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 41,
                output_tokens: 13,
                reasoning_tokens: 4,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn blocked_prompt_is_content_filter_and_errors_are_refused() {
        let r = decode_response(br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5}}"#).unwrap();
        assert_eq!(r.finish, Some(FinishReason::ContentFilter));
        assert!(r.parts.is_empty());
        assert_eq!(r.usage.input_tokens, 5);
        assert!(decode_response(br#"{"error":{"code":500}}"#).is_err());
        assert!(decode_response(b"[1]").is_err());
        assert!(decode_response(b"{").is_err());
        let r = decode_response(br#"{"candidates":[{"finishReason":"SAFETY"}]}"#).unwrap();
        assert_eq!(r.finish, Some(FinishReason::ContentFilter));
    }

    #[test]
    fn encodes_client_body() {
        let resp = ChatResponse {
            id: "r1".into(),
            model: "my-model".into(),
            parts: vec![
                Part::Reasoning {
                    text: "thinking".into(),
                    signature: None,
                    redacted: None,
                },
                Part::text("Hi"),
                Part::ToolCall {
                    id: "t1".into(),
                    name: "f".into(),
                    arguments: "not json".into(),
                },
            ],
            finish: Some(FinishReason::ToolCalls),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 7,
                cache_read_tokens: 4,
                reasoning_tokens: 2,
                ..Usage::default()
            },
            ..ChatResponse::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
        assert_eq!(
            v,
            json!({
                "candidates": [{"content": {"role": "model", "parts": [
                    {"text": "thinking", "thought": true},
                    {"text": "Hi"},
                    {"functionCall": {"name": "f", "args": {"_raw": "not json"}, "id": "t1"}}
                ]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 17,
                    "cachedContentTokenCount": 4, "thoughtsTokenCount": 2},
                "modelVersion": "my-model",
                "responseId": "r1"
            })
        );
    }

    #[test]
    fn one_call_per_turn_keeps_the_first_and_the_usage() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[
            {"text":"Checking both."},
            {"functionCall":{"name":"a","args":{}},"thoughtSignature":"S1"},
            {"functionCall":{"name":"b","args":{}},"thoughtSignature":"S2"},
            {"functionCall":{"name":"a","args":{"x":1}}}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":30},"responseId":"r"}"#;
        let all = decode_response(body).unwrap();
        let calls = |r: &ChatResponse| {
            r.parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(calls(&all), ["a", "b", "a"]);
        let one = decode_response_with(
            body,
            DecodeOptions {
                first_tool_call_only: true,
                ..DecodeOptions::default()
            },
        )
        .unwrap();
        assert_eq!(calls(&one), ["a"]);
        assert_eq!(
            one.parts,
            all.parts.get(..3).unwrap().to_vec(),
            "text, the first call's signature and the call stay; the rest goes"
        );
        assert_eq!(one.usage, all.usage);
        assert_eq!(one.finish, Some(FinishReason::ToolCalls));
    }
}
