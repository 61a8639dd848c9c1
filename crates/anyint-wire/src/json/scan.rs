//! A one-pass JSON scanner for request heads: it validates a document and splits an object into
//! its top-level fields as raw slices, without building values or copying strings.
//!
//! Coding agents resend whole conversations (hundreds of KB to MB of JSON) on every turn, and
//! the passthrough path needs only a few top-level fields of them. Splitting with serde_json
//! (into `RawValue`s) checked each value's UTF-8 a second time, and reading the messages' roles
//! decoded the whole array again: two full passes of serde's deserializer. Here one validating
//! pass splits the object (eight string bytes at a time tested for a quote, a backslash or a
//! control byte), and reads the messages' roles in the same pass
//! ([`object_fields_reading`]): a second pass over a 500 KB conversation, even one only
//! jumping from quote to quote, was a third of the request's instructions.
//!
//! Whatever the scanner accepts, serde_json accepts with the same split (the fuzz suite
//! checks the two against each other); on anything else (invalid JSON, or an escaped top-level
//! key) it answers `None` and the caller asks serde_json, whose error message the client then
//! gets, so errors stay identical and an input the scanner is unsure of is never let through.

use std::borrow::Cow;

/// The top-level fields of the JSON object `body`, in order, values as raw text; `None` when
/// `body` is not an object of valid JSON (or uses something the scanner leaves to serde_json:
/// an escaped key).
pub fn object_fields(body: &[u8]) -> Option<Fields<'_>> {
    object_fields_reading(body, None::<(&str, [&str; 0])>).map(|(fields, _)| fields)
}

/// An object's top-level fields, in order, values as raw text.
pub type Fields<'a> = Vec<(Cow<'a, str>, &'a str)>;

/// Fields of each element of one array, as [`array_object_fields`] gives them.
pub type ElementFields<'a, const N: usize> = Vec<[Option<&'a str>; N]>;

/// [`object_fields`], and in the same pass, for `inner = (array, wanted)`, what
/// [`array_object_fields`] gives for the last top-level field named `array` (the value a
/// reader takes): a conversation's roles are read while it is validated, not in a second pass
/// over it. The second part is `None` when that field is absent or
/// [`array_object_fields`] would answer `None`.
pub fn object_fields_reading<'a, const N: usize>(
    body: &'a [u8],
    inner: Option<(&str, [&str; N])>,
) -> Option<(Fields<'a>, Option<ElementFields<'a, N>>)> {
    // One UTF-8 check of the whole document: serde_json checks every raw value and key.
    let text = std::str::from_utf8(body).ok()?;
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut fields = Vec::with_capacity(16);
    let mut read = None;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, escaped, start) = field_key(text, i)?;
            if escaped {
                return None;
            }
            let value_end = match inner {
                Some((array, wanted)) if array == key => {
                    let (end, elements) = array_end_reading(text, start, wanted)?;
                    read = elements;
                    end
                }
                _ => value_end(b, start)?,
            };
            fields.push((Cow::Borrowed(key), text.get(start..value_end)?));
            match after_field(b, value_end)? {
                (next, false) => i = next,
                (end, true) => {
                    i = end;
                    break;
                }
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some((fields, read))
}

/// The end of the value at `start`, validated as [`value_end`] validates it, and when it is an
/// array of objects, the fields `wanted` of each element (as [`array_object_fields`]: `None`
/// for an element that is not an object, an escaped key, or a wanted key twice in one
/// element). `None` overall only when the value is not valid JSON.
fn array_end_reading<'a, const N: usize>(
    text: &'a str,
    start: usize,
    wanted: [&str; N],
) -> Option<(usize, Option<ElementFields<'a, N>>)> {
    let b = text.as_bytes();
    if b.get(start) != Some(&b'[') {
        return Some((value_end(b, start)?, None));
    }
    let mut out = Some(Vec::new());
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&b']') {
        return Some((i + 1, out));
    }
    loop {
        if b.get(i) == Some(&b'{') {
            let mut found = [None; N];
            i = skip_ws(b, i + 1);
            if b.get(i) == Some(&b'}') {
                i += 1;
            } else {
                loop {
                    let (key, escaped, value_start) = field_key(text, i)?;
                    let value_end = value_end(b, value_start)?;
                    if escaped {
                        out = None;
                    } else if let Some(slot) = wanted.iter().position(|w| *w == key) {
                        match found.get_mut(slot) {
                            Some(f) if f.is_none() => *f = text.get(value_start..value_end),
                            _ => out = None,
                        }
                    }
                    match after_field(b, value_end)? {
                        (next, false) => i = next,
                        (end, true) => {
                            i = end;
                            break;
                        }
                    }
                }
            }
            if let Some(out) = out.as_mut() {
                out.push(found);
            }
        } else {
            i = value_end(b, i)?;
            out = None;
        }
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Some((i + 1, out)),
            _ => return None,
        }
    }
}

/// For `raw`, a JSON array, each element's top-level fields named in `wanted` as raw text.
/// `None` when `raw` is not an array of objects, a key is escaped, or a wanted key appears
/// twice in one element: the caller then decodes the array with serde.
pub fn array_object_fields<'a, const N: usize>(
    raw: &'a str,
    wanted: [&str; N],
) -> Option<ElementFields<'a, N>> {
    let b = raw.as_bytes();
    let (end, read) = array_end_reading(raw, skip_ws(b, 0), wanted)?;
    (skip_ws(b, end) == b.len()).then_some(read)?
}

/// The text of a JSON string literal without escapes (`"user"` → `user`); `None` for anything
/// else (an escaped string is left to serde).
pub fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then_some(inner)
}

/// At a field's opening quote `i`: its key, whether the key holds escapes, and where its
/// value starts (after the colon).
fn field_key(text: &str, i: usize) -> Option<(&str, bool, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, escaped) = string_end(b, i + 1)?;
    let key = text.get(i + 1..end - 1)?;
    let i = skip_ws(b, end);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((key, escaped, skip_ws(b, i + 1)))
}

/// After a field's value ending at `i`: the next field's start and `false`, or the index past
/// the object's `}` and `true`.
fn after_field(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let i = skip_ws(b, i);
    match b.get(i)? {
        b',' => Some((skip_ws(b, i + 1), false)),
        b'}' => Some((i + 1, true)),
        _ => None,
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// From just after a string's opening quote: the index just past its closing quote, and
/// whether it held escapes. Checks escapes and refuses raw control bytes, as JSON requires.
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        i = next_special(b, i)?;
        match *b.get(i)? {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => escaped = true,
            _ => return None,
        }
        // A backslash: one of the JSON escapes; `\u` takes four hex digits.
        match b.get(i + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
            b'u' => {
                let hex = b.get(i + 2..i + 6)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                i += 6;
            }
            _ => return None,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The index of the first `"`, `\\` or control byte (below 0x20) at or after `i`, eight bytes
/// at a time (strings in agent transcripts are long but escape often, so a word-at-a-time test
/// beats both a byte loop and a search call per escape).
fn next_special(b: &[u8], mut i: usize) -> Option<usize> {
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        // The lowest flagged byte is exact (a borrow can only flag bytes above a true hit).
        let hits = zero_bytes(x ^ (ONES * u64::from(b'"')))
            | zero_bytes(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|at| i + at)
}

/// The index just past the JSON value starting at `i`, validated (nesting kept on a stack, so
/// depth is unbounded as in serde_json's skipping of raw values).
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    // Open containers: `true` for an object.
    let mut stack: Vec<bool> = Vec::new();
    loop {
        // A value at `i`.
        match *b.get(i)? {
            b'"' => i = string_end(b, i + 1)?.0,
            b'{' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    stack.push(true);
                    i = object_key(b, i)?;
                    continue;
                }
            }
            b'[' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(false);
                    continue;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number_end(b, i)?,
            _ => return None,
        }
        // After a value: close containers, or move to the next element or field.
        loop {
            let Some(&object) = stack.last() else {
                return Some(i);
            };
            i = skip_ws(b, i);
            match (b.get(i)?, object) {
                (b',', true) => {
                    i = object_key(b, skip_ws(b, i + 1))?;
                    break;
                }
                (b',', false) => {
                    i = skip_ws(b, i + 1);
                    break;
                }
                (b'}', true) | (b']', false) => {
                    stack.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// At an object key: the index of the value after `"key":`.
fn object_key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, _) = string_end(b, i + 1)?;
    let i = skip_ws(b, end);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(skip_ws(b, i + 1))
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// A number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| {
        let mut j = i;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        (j > i).then_some(j)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_of_every_length_are_checked_byte_for_byte() {
        for len in [0, 7, 8, 63, 64, 65, 71, 72, 100, 1000, 5000] {
            let plain = "a".repeat(len);
            for (at, bad, ok) in [
                (None, "", true),
                (Some(len / 2), "\u{1}", false),
                (Some(len), "\n", false),
                (Some(len / 3), "\\n", true),
                (Some(len / 3), "\\q", false),
                (Some(len.saturating_sub(1)), "\\\"", true),
                (Some(len / 2), "\u{1f}", false),
                (Some(len / 2), " ", true),
            ] {
                let mut text = plain.clone();
                if let Some(at) = at {
                    text.insert_str(at, bad);
                }
                let body = format!(r#"{{"content":"{text}","n":1}}"#);
                let fast = object_fields(body.as_bytes()).is_some();
                let serde = serde_json::from_str::<serde_json::Value>(&body).is_ok();
                assert_eq!(fast, ok, "{len} {bad:?}");
                assert_eq!(fast, serde, "{len} {bad:?}");
            }
        }
    }

    #[test]
    fn message_fields_are_read_in_the_splitting_pass_as_a_second_pass_reads_them() {
        let cases: [&str; 9] = [
            r#"{"model":"m","messages":[{"role":"user","content":"a \"q\" b"},{"content":[1,{"x":"]"}],"role":"assistant"}]}"#,
            r#"{"messages":[{"role":"user"}],"messages":[{"role":"system","content":null}]}"#,
            r#"{"messages":[{"role":"user","role":"user"}]}"#,
            r#"{"messages":[{"r\u006fle":"user"}]}"#,
            r#"{"messages":[{"role":"user"}, 3]}"#,
            r#"{"messages":[ ] , "model" : "m" }"#,
            r#"{"messages":{"role":"user"}}"#,
            r#"{"model":"m"}"#,
            r#"{ "messages" : [ { "role" : "user" , "content" : [ ] } ] }"#,
        ];
        for body in cases {
            let (fields, read) =
                object_fields_reading(body.as_bytes(), Some(("messages", ["role", "content"])))
                    .unwrap();
            assert_eq!(
                Some(&fields),
                object_fields(body.as_bytes()).as_ref(),
                "{body}"
            );
            let last = fields
                .iter()
                .rev()
                .find(|(k, _)| k == "messages")
                .map(|(_, v)| *v);
            let two = last.and_then(|raw| array_object_fields(raw, ["role", "content"]));
            assert_eq!(read, two, "{body}");
        }
        // The first case is read whole; an invalid body is refused as the split refuses it.
        let (_, read) =
            object_fields_reading(cases[0].as_bytes(), Some(("messages", ["role"]))).unwrap();
        assert_eq!(
            read,
            Some(vec![[Some(r#""user""#)], [Some(r#""assistant""#)]])
        );
        let bad = r#"{"messages":[{"role":"user","content":"a\x"}]}"#;
        assert!(object_fields_reading(bad.as_bytes(), Some(("messages", ["role"]))).is_none());
        assert!(object_fields(bad.as_bytes()).is_none());
    }

    #[test]
    fn splits_objects_and_refuses_what_json_refuses() {
        let f = object_fields(br#" {"a": [1, {"b": "x\"y"}], "c":-0.5e+3 ,"d":{}} "#).unwrap();
        let got: Vec<_> = f.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        assert_eq!(
            got,
            [
                ("a", r#"[1, {"b": "x\"y"}]"#),
                ("c", "-0.5e+3"),
                ("d", "{}")
            ]
        );
        for bad in [
            &b"[]"[..],
            b"{",
            b"{\"a\":01}",
            b"{\"a\":1.}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":[1,]}",
            b"{\"a\":tru}",
            b"{\"a\":1} x",
            b"{\"a\":\"\xff\"}",
            b"{\"a\" 1}",
        ] {
            assert!(
                object_fields(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn reads_fields_of_array_elements() {
        let got = array_object_fields(
            r#"[{"role":"user","content":"hi"},{"content":null,"x":[{"role":1}]}]"#,
            ["role", "content"],
        )
        .unwrap();
        assert_eq!(
            got,
            [[Some("\"user\""), Some("\"hi\"")], [None, Some("null")]]
        );
        assert_eq!(
            array_object_fields(
                r#"[{"n":1,"role":"tool","content":null}, {"role":true}]"#,
                ["role"]
            ),
            Some(vec![[Some("\"tool\"")], [Some("true")]])
        );
        assert!(array_object_fields(r#"[["user"]]"#, ["role"]).is_none());
        assert!(array_object_fields(r#"[{"role":"a","role":"b"}]"#, ["role"]).is_none());
        assert_eq!(plain_string("\"user\""), Some("user"));
        assert_eq!(plain_string("\"us\\u0065r\""), None);
    }
}
