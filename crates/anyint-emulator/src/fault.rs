//! Fault specs: the `name=value` grammar, where a request's spec comes from,
//! and the headers a fault adds to a response. Pure: counting lives in
//! `state`, sleeping and short-circuiting in `gate`. The task keys
//! ([`TaskScript`]) are parsed here too but only read by the async task
//! families (`dashscope`, `music`) when they create a task.

use std::str::FromStr;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// Request header that carries a fault spec (first source checked).
pub(crate) const HEADER: &str = "x-emulator-fault";
/// Opening of an in-message directive: `[emulate: status=429]`.
const DIRECTIVE_OPEN: &str = "[emulate:";
const KNOWN_KEYS: &str = "status, quota, retry_after, retry_after_ms, should_retry, latency_ms, \
                          chunk_delay_ms, cut_after, error_after, times, every, tag, polls, fail, \
                          never, stage_ms, dup_callbacks, no_callbacks, fetch_delay_ms";

/// What one request asked the emulator to do wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) status: Option<u16>,
    pub(crate) quota: bool,
    pub(crate) retry_after: Option<String>,
    pub(crate) retry_after_ms: Option<u64>,
    pub(crate) should_retry: Option<bool>,
    pub(crate) latency_ms: Option<u64>,
    pub(crate) chunk_delay_ms: Option<u64>,
    pub(crate) cut_after: Option<usize>,
    pub(crate) error_after: Option<usize>,
    pub(crate) times: Option<u64>,
    pub(crate) every: Option<u64>,
    pub(crate) tag: Option<String>,
    /// How a task created by this request behaves (task families only).
    pub(crate) task: TaskScript,
}

/// The task keys of a spec: how an async task (DashScope, music) moves
/// through its states. Other families ignore them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TaskScript {
    /// `polls=N` (N ≥ 1): the task is final on the N-th status GET (or
    /// after N stages of `stage_ms`). Default [`TaskScript::DEFAULT_POLLS`].
    pub(crate) polls: Option<u32>,
    /// `fail=CODE`: the final state is a failure carrying CODE.
    pub(crate) fail: Option<String>,
    /// `never=1` (or bare `never`): stays in the first working state.
    pub(crate) never: bool,
    /// `stage_ms=M` (M ≥ 1): a timer advances the task every M ms; status
    /// GETs no longer advance it.
    pub(crate) stage_ms: Option<u64>,
    /// `dup_callbacks=1`: every callback is POSTed twice.
    pub(crate) dup_callbacks: bool,
    /// `no_callbacks=1`: no callbacks even with a callback URL.
    pub(crate) no_callbacks: bool,
    /// `fetch_delay_ms=M`: each status GET waits M ms before answering.
    pub(crate) fetch_delay_ms: Option<u64>,
}

impl TaskScript {
    /// Status GETs (or stages) to the final state when `polls` is unset.
    pub(crate) const DEFAULT_POLLS: u32 = 2;

    /// Steps from creation to the final state.
    pub(crate) fn polls(&self) -> u32 {
        self.polls.unwrap_or(Self::DEFAULT_POLLS)
    }

    /// Applies one task key; `Ok(false)` when `key` is not a task key.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "polls" => {
                let n: u32 = number(key, value)?;
                if n == 0 {
                    return Err("emulator fault `polls` must be at least 1".to_owned());
                }
                self.polls = Some(n);
            }
            "fail" => {
                if value.is_empty() {
                    return Err("emulator fault `fail` needs an error code".to_owned());
                }
                self.fail = Some(value.to_owned());
            }
            "never" => self.never = flag(key, value)?,
            "stage_ms" => {
                let ms: u64 = number(key, value)?;
                if ms == 0 {
                    return Err("emulator fault `stage_ms` must be at least 1".to_owned());
                }
                self.stage_ms = Some(ms);
            }
            "dup_callbacks" => self.dup_callbacks = flag(key, value)?,
            "no_callbacks" => self.no_callbacks = flag(key, value)?,
            "fetch_delay_ms" => self.fetch_delay_ms = Some(number(key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Fault {
    /// True when this request is let through untouched although it carries
    /// the fault: a `times=K` fault that has been used up, or an `every=N`
    /// fault on a request that is not an N-th one. `count` is this request's
    /// 1-based position among requests with the same tag (the tag counter).
    pub(crate) fn skips(&self, count: Option<u64>) -> bool {
        match count {
            Some(c) => {
                self.times.is_some_and(|k| c > k)
                    || self.every.is_some_and(|n| n == 0 || c % n != 0)
            }
            None => false,
        }
    }

    /// What is left of the fault when [`Fault::skips`] lets the request
    /// through: only the tag, so stream accounting still sees it, and the
    /// task keys, which describe the task rather than a failure.
    pub(crate) fn skipped(self) -> Self {
        Self {
            tag: self.tag,
            task: self.task,
            ..Self::default()
        }
    }

    /// Adds the `retry-after`, `retry-after-ms` and `x-should-retry` headers.
    pub(crate) fn decorate(&self, mut resp: Response) -> Response {
        let headers = resp.headers_mut();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        if let Some(s) = &self.retry_after {
            put("retry-after", s.clone());
        }
        if let Some(ms) = self.retry_after_ms {
            put("retry-after-ms", ms.to_string());
        }
        if let Some(b) = self.should_retry {
            put("x-should-retry", b.to_string());
        }
        resp
    }
}

/// Parses a spec such as `status=429,retry_after=3 tag=x`.
pub(crate) fn parse(spec: &str) -> Result<Fault, String> {
    let mut f = Fault::default();
    let pairs = spec
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty());
    for pair in pairs {
        // The one key that may stand alone.
        let pair = if pair == "never" { "never=1" } else { pair };
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!(
                "emulator fault spec: expected name=value, got `{pair}`"
            ));
        };
        match key {
            "status" => {
                let s: u16 = number(key, value)?;
                if !(400..=599).contains(&s) {
                    return Err(format!(
                        "emulator fault `status` must be 400-599, got `{value}`"
                    ));
                }
                f.status = Some(s);
            }
            "quota" => f.quota = flag(key, value)?,
            "retry_after" => {
                let secs: f64 = number(key, value)?;
                if !secs.is_finite() || secs < 0.0 {
                    return Err(format!(
                        "emulator fault `retry_after` must be a non-negative number, got `{value}`"
                    ));
                }
                f.retry_after = Some(value.to_owned());
            }
            "retry_after_ms" => f.retry_after_ms = Some(number(key, value)?),
            "should_retry" => f.should_retry = Some(flag(key, value)?),
            "latency_ms" => f.latency_ms = Some(number(key, value)?),
            "chunk_delay_ms" => f.chunk_delay_ms = Some(number(key, value)?),
            "cut_after" => f.cut_after = Some(number(key, value)?),
            "error_after" => f.error_after = Some(number(key, value)?),
            "times" => f.times = Some(number(key, value)?),
            "every" => {
                let n: u64 = number(key, value)?;
                if n == 0 {
                    return Err("emulator fault `every` must be at least 1".to_owned());
                }
                f.every = Some(n);
            }
            "tag" => {
                if value.is_empty() {
                    return Err("emulator fault `tag` must not be empty".to_owned());
                }
                f.tag = Some(value.to_owned());
            }
            other => {
                if !f.task.set(other, value)? {
                    return Err(format!(
                        "unknown emulator fault key `{other}` (known keys: {KNOWN_KEYS})"
                    ));
                }
            }
        }
    }
    if f.times.is_some() && f.tag.is_none() {
        return Err("emulator fault `times` needs a `tag` to count against".to_owned());
    }
    if f.every.is_some() && f.tag.is_none() {
        return Err("emulator fault `every` needs a `tag` to count against".to_owned());
    }
    if f.every.is_some() && f.times.is_some() {
        return Err(
            "emulator fault keys `every` and `times` cannot be combined (pick one)".to_owned(),
        );
    }
    Ok(f)
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("emulator fault `{key}` has an invalid number `{value}`"))
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!(
            "emulator fault `{key}` must be true/false/1/0, got `{value}`"
        )),
    }
}

/// Splits `gpt-4o-mini+status=503` into the model and its fault suffix.
pub(crate) fn split_model(model: &str) -> (&str, Option<&str>) {
    match model.split_once('+') {
        Some((m, spec)) => (m, Some(spec)),
        None => (model, None),
    }
}

/// The body of the first `[emulate: ...]` directive in `text`.
pub(crate) fn directive(text: &str) -> Option<&str> {
    let start = text.find(DIRECTIVE_OPEN)? + DIRECTIVE_OPEN.len();
    let rest = &text[start..];
    let end = rest.find(']')?;
    Some(rest[..end].trim())
}

/// `text` with every complete `[emulate: ...]` directive removed.
pub(crate) fn strip_directives(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(DIRECTIVE_OPEN) {
        let Some(len) = rest[start..].find(']') else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Picks the spec: header, then model suffix, then message directive.
pub(crate) fn select<'a>(
    header: Option<&'a str>,
    model_suffix: Option<&'a str>,
    text: Option<&'a str>,
) -> Option<&'a str> {
    header
        .filter(|h| !h.trim().is_empty())
        .or(model_suffix)
        .or_else(|| text.and_then(directive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commas_and_spaces() {
        let f = parse("status=429,retry_after=3 tag=x  times=2").unwrap();
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after.as_deref(), Some("3"));
        assert_eq!(f.tag.as_deref(), Some("x"));
        assert_eq!(f.times, Some(2));
        assert_eq!(parse("").unwrap(), Fault::default());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(parse("stauts=429").unwrap_err().contains("stauts"));
        assert!(parse("status=200").is_err());
        assert!(parse("status").is_err());
        assert!(parse("latency_ms=-1").is_err());
        assert!(parse("times=2").is_err());
        assert!(parse("quota=maybe").is_err());
    }

    #[test]
    fn parses_task_keys() {
        let f = parse(
            "polls=3 fail=DataInspectionFailed never stage_ms=20 dup_callbacks=1 \
             no_callbacks=true fetch_delay_ms=50",
        )
        .unwrap();
        let t = &f.task;
        assert_eq!(t.polls(), 3);
        assert_eq!(t.fail.as_deref(), Some("DataInspectionFailed"));
        assert!(t.never && t.dup_callbacks && t.no_callbacks);
        assert_eq!((t.stage_ms, t.fetch_delay_ms), (Some(20), Some(50)));
        assert!(!parse("never=0").unwrap().task.never);
        assert_eq!(parse("").unwrap().task.polls(), TaskScript::DEFAULT_POLLS);
        assert!(parse("polls=0").unwrap_err().contains("polls"));
        assert!(parse("stage_ms=0").unwrap_err().contains("stage_ms"));
        assert!(parse("fail=").unwrap_err().contains("fail"));
        assert!(parse("forever").is_err());
    }

    #[test]
    fn skipping_keeps_task_keys() {
        let f = parse("status=503 times=1 tag=a polls=4").unwrap();
        let kept = f.skipped();
        assert_eq!((kept.status, kept.task.polls), (None, Some(4)));
    }

    #[test]
    fn times_exhaust_after_k() {
        let f = parse("times=2 tag=a").unwrap();
        assert!(!f.skips(Some(2)));
        assert!(f.skips(Some(3)));
        assert!(!Fault::default().skips(Some(9)));
    }

    #[test]
    fn every_applies_to_each_nth() {
        let f = parse("status=503,every=3,tag=a").unwrap();
        assert_eq!(f.every, Some(3));
        let applied: Vec<u64> = (1..=9).filter(|&c| !f.skips(Some(c))).collect();
        assert_eq!(applied, [3, 6, 9]);
        let all = parse("every=1 tag=a").unwrap();
        assert!((1..=5).all(|c| !all.skips(Some(c))));
        let kept = f.skipped();
        assert_eq!(kept.tag.as_deref(), Some("a"));
        assert_eq!(kept.status, None);
    }

    #[test]
    fn every_needs_a_tag_and_excludes_times() {
        assert!(parse("every=2").unwrap_err().contains("tag"));
        assert!(parse("every=0 tag=a").unwrap_err().contains("every"));
        assert!(parse("every=x tag=a").is_err());
        let both = parse("every=2 times=1 tag=a").unwrap_err();
        assert!(both.contains("every") && both.contains("times"), "{both}");
    }

    #[test]
    fn sources_in_priority_order() {
        let text = "hi [emulate: status=500 ] there";
        assert_eq!(directive(text), Some("status=500"));
        assert_eq!(select(Some("a=1"), Some("b=2"), Some(text)), Some("a=1"));
        assert_eq!(select(Some("  "), Some("b=2"), Some(text)), Some("b=2"));
        assert_eq!(select(None, None, Some(text)), Some("status=500"));
        assert_eq!(select(None, None, Some("plain")), None);
        assert_eq!(split_model("m+status=503"), ("m", Some("status=503")));
        assert_eq!(split_model("m"), ("m", None));
        assert_eq!(strip_directives("a [emulate: x=1] b"), "a  b");
        assert_eq!(strip_directives("a [emulate: open"), "a [emulate: open");
    }
}
