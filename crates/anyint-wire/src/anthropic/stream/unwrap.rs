//! Streaming `{"value": X}` → `X`: the input of
//! [`JSON_VALUE_TOOL`](crate::anthropic::JSON_VALUE_TOOL) arrives as JSON fragments, and the
//! client is owed the text of `X` as it comes.
//!
//! The fragments are held until the opening `{"value":` has been seen, then passed on as they
//! come, except a trailing run of `}` and whitespace, which may be the wrapper's closing
//! brace; the last `}` of the block is dropped at its end. Anything else (the model answered
//! with other keys first, or nothing parseable) is held to the end of the block and answered
//! with its `value` when it parses, else as it came.

/// Per-block state of one value-wrapped tool input.
#[derive(Debug, Default)]
pub(super) struct ValueUnwrap {
    /// Text before the body starts (the prefix not yet matched), or everything (fallback).
    head: String,
    /// The prefix matched: the value's text is passing through.
    open: bool,
    /// The prefix cannot match: everything is held to the end.
    fallback: bool,
    /// The held tail: `}` and whitespace that may close the wrapper.
    tail: String,
}

/// Whether `s` is the wrapper's opening (`{`, `"value"`, `:` with any whitespace), `Ok(n)`
/// giving its length; `Err(true)` when more text may still complete it, `Err(false)` when it
/// cannot.
fn prefix(s: &str) -> Result<usize, bool> {
    let mut rest = s.trim_start();
    for token in ["{", "\"value\"", ":"] {
        if rest.is_empty() {
            return Err(true);
        }
        if let Some(after) = rest.strip_prefix(token) {
            rest = after.trim_start();
        } else if token.starts_with(rest) {
            return Err(true);
        } else {
            return Err(false);
        }
    }
    if rest.is_empty() {
        // The value may start with whitespace still to come; nothing is lost by waiting.
        return Err(true);
    }
    Ok(s.len() - rest.len())
}

impl ValueUnwrap {
    /// The text a fragment releases (often empty).
    pub(super) fn push(&mut self, fragment: &str) -> String {
        if self.fallback {
            self.head.push_str(fragment);
            return String::new();
        }
        if !self.open {
            self.head.push_str(fragment);
            match prefix(&self.head) {
                Ok(n) => {
                    self.open = true;
                    let body = self.head.get(n..).unwrap_or_default().to_owned();
                    self.head.clear();
                    return self.body(&body);
                }
                Err(true) => return String::new(),
                Err(false) => {
                    self.fallback = true;
                    return String::new();
                }
            }
        }
        self.body(fragment)
    }

    fn body(&mut self, fragment: &str) -> String {
        let mut s = std::mem::take(&mut self.tail);
        s.push_str(fragment);
        let kept = s
            .trim_end_matches(|c: char| c == '}' || c.is_ascii_whitespace())
            .len();
        s.get(kept..).unwrap_or_default().clone_into(&mut self.tail);
        s.truncate(kept);
        s
    }

    /// The block ended: the rest of the value's text.
    pub(super) fn finish(&mut self) -> String {
        if self.fallback || !self.open {
            let all = std::mem::take(&mut self.head);
            return match serde_json::from_str::<serde_json::Value>(&all) {
                Ok(v) => v.get("value").map_or(all, ToString::to_string),
                Err(_) => all,
            };
        }
        let mut tail = std::mem::take(&mut self.tail);
        let end = tail.trim_end().len();
        tail.truncate(end);
        if tail.ends_with('}') {
            tail.pop();
        }
        // Whitespace between the value and the wrapper's brace is not the value's.
        let end = tail.trim_end().len();
        tail.truncate(end);
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&str]) -> String {
        let mut u = ValueUnwrap::default();
        let mut out: String = pieces.iter().map(|p| u.push(p)).collect();
        out.push_str(&u.finish());
        out
    }

    #[test]
    fn unwraps_whatever_the_split() {
        let whole = r#"{"value": [{"a": {}}, "x}"] }"#;
        for cut in 1..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(run(&[a, b]), r#"[{"a": {}}, "x}"]"#, "cut at {cut}");
        }
        let one_char: Vec<String> = whole.chars().map(String::from).collect();
        let pieces: Vec<&str> = one_char.iter().map(String::as_str).collect();
        assert_eq!(run(&pieces), r#"[{"a": {}}, "x}"]"#);
        assert_eq!(run(&[r#"{"value":"#, "3", "}"]), "3");
    }

    #[test]
    fn streams_as_it_goes() {
        let mut u = ValueUnwrap::default();
        assert_eq!(u.push(r#"{"val"#), "");
        assert_eq!(u.push(r#"ue": ["a"#), r#"["a"#);
        assert_eq!(u.push(r#"", "b"] "#), r#"", "b"]"#);
        assert_eq!(u.push("}"), "");
        assert_eq!(u.finish(), "");
    }

    #[test]
    fn other_shapes_are_answered_at_the_end() {
        assert_eq!(run(&[r#"{"other": 1, "value": 2}"#]), "2");
        assert_eq!(run(&[r#"{"other": 1}"#]), r#"{"other": 1}"#);
        assert_eq!(run(&["not json"]), "not json");
        assert_eq!(run(&[]), "");
    }
}
