//! `generationConfig`: stop sequences, output and candidate limits,
//! sampling ranges, and whether thinking is on.

use serde_json::{Map, Value};

use super::fields::{bad_value, get, known};
use super::format::{Output, output};
use crate::gemini::error::GoogleError;

const CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "responseModalities",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];
const MAX_STOP_SEQUENCES: usize = 5;
const MAX_CANDIDATES: u64 = 8;

/// What the emulator reads from `generationConfig`.
pub(super) struct Config {
    pub(super) stop: Vec<String>,
    pub(super) max_tokens: Option<usize>,
    pub(super) candidates: usize,
    pub(super) thinking: Option<bool>,
    pub(super) output: Output,
}

pub(super) fn config(obj: &Map<String, Value>, msg: &str) -> Result<Config, GoogleError> {
    let config = match get(obj, "generationConfig") {
        None => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(v) => {
            return Err(bad_value(
                "generation_config",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig",
                v,
            ));
        }
    };
    known(&config, CONFIG_FIELDS, "generation_config")?;
    let cfg = |field: &str| format!("{msg}.generation_config.{field}");
    let stop: Vec<String> = match get(&config, "stopSequences") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(v) => {
            return Err(bad_value(
                "generation_config.stop_sequences",
                "TYPE_STRING",
                v,
            ));
        }
    };
    if stop.len() > MAX_STOP_SEQUENCES {
        return Err(GoogleError::field(
            &cfg("stop_sequences"),
            "stop_sequences must have at most 5 elements",
        ));
    }
    let max_tokens = match get(&config, "maxOutputTokens") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(0) => None,
            Some(n) if n > 0 => usize::try_from(n).ok(),
            _ => {
                return Err(GoogleError::field(
                    &cfg("max_output_tokens"),
                    "max_output_tokens must be positive.",
                ));
            }
        },
    };
    let candidates = match get(&config, "candidateCount") {
        None => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=MAX_CANDIDATES) => usize::try_from(n).unwrap_or(1),
            _ => {
                return Err(GoogleError::field(
                    &cfg("candidate_count"),
                    "candidate_count must be between 1 and 8.",
                ));
            }
        },
    };
    for (key, field, max) in [("temperature", "temperature", 2.0), ("topP", "top_p", 1.0)] {
        if let Some(v) = get(&config, key) {
            let ok = v.as_f64().is_some_and(|x| (0.0..=max).contains(&x));
            if !ok {
                return Err(GoogleError::field(
                    &cfg(field),
                    &format!("{field} must be in the range [0, {max}]."),
                ));
            }
        }
    }
    let thinking = thinking(&config, msg)?;
    let output = output(&config, msg)?;
    Ok(Config {
        stop,
        max_tokens,
        candidates,
        thinking,
        output,
    })
}

/// `Some(include_thoughts)` when thinking is on: a `thinkingConfig` with a
/// non-zero budget (or a level).
fn thinking(config: &Map<String, Value>, msg: &str) -> Result<Option<bool>, GoogleError> {
    let Some(tc) = get(config, "thinkingConfig") else {
        return Ok(None);
    };
    let Some(tc) = tc.as_object() else {
        return Err(bad_value(
            "generation_config.thinking_config",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig",
            tc,
        ));
    };
    known(
        tc,
        &["thinkingBudget", "includeThoughts", "thinkingLevel"],
        "generation_config.thinking_config",
    )?;
    let budget = get(tc, "thinkingBudget");
    if let Some(b) = budget {
        if b.as_i64().is_none_or(|n| n < -1) {
            return Err(GoogleError::field(
                &format!("{msg}.generation_config.thinking_config.thinking_budget"),
                "thinking_budget must be -1 (dynamic), 0 (off) or positive.",
            ));
        }
    }
    if get(tc, "thinkingLevel").is_some() && budget.is_some() {
        return Err(GoogleError::invalid(
            "You can only set only one of thinking budget and thinking level.",
        ));
    }
    if budget.and_then(Value::as_i64) == Some(0) {
        return Ok(None);
    }
    Ok(Some(
        get(tc, "includeThoughts").and_then(Value::as_bool) == Some(true),
    ))
}
