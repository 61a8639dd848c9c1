//! A JSON object kept as its top-level fields with raw, unparsed values.
//!
//! The passthrough path must read a few fields (`model`, `stream`) and rewrite one without
//! parsing or re-encoding the prompt, which is most of the bytes. Values stay as borrowed
//! [`RawJson`] slices of the client's body, found in one pass by [`scan`]; re-encoding copies
//! them verbatim.

pub mod scan;

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::DecodeError;

/// A JSON value's text, borrowed from a document already validated (like serde_json's
/// `RawValue`, without checking it again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }
}

/// A JSON string read by serde, borrowed from the input when it holds no escape and owned
/// when it does. serde's own `Cow<str>` is always owned, and `&str` refuses escaped strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Text<'_> {
    fn default() -> Self {
        Self(Cow::Borrowed(""))
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Self(Cow::Borrowed(s))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(TextVisitor).map(Text)
    }
}

/// The top-level fields of a JSON object, in their original order, values unparsed.
#[derive(Debug)]
pub struct RawObject<'a> {
    fields: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> RawObject<'a> {
    /// Splits `body` into its top-level fields. Fails with a client-facing message when the
    /// body is not a JSON object.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        if let Some(fields) = scan::object_fields(body) {
            return Ok(Self { fields });
        }
        // Not an object of valid JSON (or an escaped key): serde_json decides, and words the
        // error.
        let mut de = serde_json::Deserializer::from_slice(body);
        let fields = de.deserialize_map(FieldsVisitor).map_err(|e| {
            if e.is_data() {
                DecodeError::body("the request body must be a JSON object")
            } else {
                DecodeError::body(format!("the request body is not valid JSON: {e}"))
            }
        })?;
        de.end()
            .map_err(|e| DecodeError::body(format!("the request body is not valid JSON: {e}")))?;
        Ok(Self {
            fields: fields.into_iter().map(|(k, v)| (k, v.get())).collect(),
        })
    }

    /// [`decode`](Self::decode), and in the same pass the fields `wanted` of each element of
    /// the array field `array` ([`scan::object_fields_reading`]); that part is `None` when the
    /// scanner could not read them (the caller reads them another way).
    pub fn decode_reading<const N: usize>(
        body: &'a [u8],
        array: &str,
        wanted: [&str; N],
    ) -> Result<(Self, Option<scan::ElementFields<'a, N>>), DecodeError> {
        if let Some((fields, read)) = scan::object_fields_reading(body, Some((array, wanted))) {
            return Ok((Self { fields }, read));
        }
        Self::decode(body).map(|obj| (obj, None))
    }

    /// The raw value of field `name`, if present. A duplicated key yields its last value, as
    /// most JSON parsers (and the providers) do.
    pub fn get(&self, name: &str) -> Option<RawJson<'a>> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| RawJson(v))
    }

    /// Whether field `name` is present and not `null`.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v.get() != "null")
    }

    /// Re-encodes the object, replacing (or appending) the given fields with new raw JSON.
    /// Untouched values are copied byte for byte.
    pub fn encode_with(&self, overrides: &[(&str, &str)]) -> Vec<u8> {
        self.encode_edited(overrides, &[])
    }

    /// [`encode_with`](Self::encode_with), also leaving out the fields named in `remove`.
    pub fn encode_edited(&self, overrides: &[(&str, &str)], remove: &[&str]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.written_size(overrides, usize::MAX));
        // No value is borrowed at this size, so everything is written to `out`.
        self.encode_into(overrides, remove, usize::MAX, &mut out, &mut Vec::new());
        out
    }

    /// [`encode_edited`](Self::encode_edited) as pieces to send one after another: values of
    /// `borrow_from` bytes or more are borrowed from the input instead of copied, so a large
    /// body with one field rewritten goes out without a copy of its bulk.
    pub fn encode_pieces(
        &self,
        overrides: &[(&str, &str)],
        remove: &[&str],
        borrow_from: usize,
    ) -> Vec<Piece<'a>> {
        let mut out = Vec::with_capacity(self.written_size(overrides, borrow_from));
        let mut pieces = Vec::new();
        self.encode_into(overrides, remove, borrow_from, &mut out, &mut pieces);
        if !out.is_empty() {
            pieces.push(Piece::Written(out));
        }
        pieces
    }

    /// The object with `model` rewritten to `upstream_model` when it differs from the
    /// client's `model`, and nothing else changed (a same-family passthrough).
    pub fn encode_model(&self, model: &str, upstream_model: &str) -> Vec<u8> {
        with_model(model, upstream_model, |overrides| {
            self.encode_with(overrides)
        })
    }

    /// [`encode_model`](Self::encode_model) as [`encode_pieces`](Self::encode_pieces).
    pub fn model_pieces(
        &self,
        model: &str,
        upstream_model: &str,
        borrow_from: usize,
    ) -> Vec<Piece<'a>> {
        with_model(model, upstream_model, |overrides| {
            self.encode_pieces(overrides, &[], borrow_from)
        })
    }

    /// The bytes written (not borrowed) when values of `borrow_from` bytes or more are
    /// borrowed.
    fn written_size(&self, overrides: &[(&str, &str)], borrow_from: usize) -> usize {
        let fields = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + 4 + if v.len() >= borrow_from { 0 } else { v.len() })
            .sum::<usize>();
        let added = overrides
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
        fields + added + 2
    }

    fn encode_into(
        &self,
        overrides: &[(&str, &str)],
        remove: &[&str],
        borrow_from: usize,
        out: &mut Vec<u8>,
        pieces: &mut Vec<Piece<'a>>,
    ) {
        out.push(b'{');
        let mut first = true;
        let mut key_of = |out: &mut Vec<u8>, key: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_json_string(out, key);
            out.push(b':');
        };
        for (i, (key, value)) in self.fields.iter().enumerate() {
            // Skip earlier duplicates so the output has each key once.
            if self.fields.iter().skip(i + 1).any(|(k, _)| k == key)
                || remove.iter().any(|r| r == key)
            {
                continue;
            }
            key_of(out, key);
            match overrides.iter().find(|(k, _)| k == key) {
                Some((_, v)) => out.extend_from_slice(v.as_bytes()),
                None if value.len() >= borrow_from => {
                    pieces.push(Piece::Written(std::mem::take(out)));
                    pieces.push(Piece::Borrowed(value));
                }
                None => out.extend_from_slice(value.as_bytes()),
            }
        }
        for (key, value) in overrides {
            if !self.fields.iter().any(|(k, _)| k == key) {
                key_of(out, key);
                out.extend_from_slice(value.as_bytes());
            }
        }
        out.push(b'}');
    }
}

/// `encode` given the override that sets `model` to `upstream_model`, or none when the
/// client's `model` is that already.
fn with_model<T>(
    model: &str,
    upstream_model: &str,
    encode: impl FnOnce(&[(&str, &str)]) -> T,
) -> T {
    if upstream_model == model {
        return encode(&[]);
    }
    let model_json = json_string(upstream_model);
    encode(&[("model", &model_json)])
}

/// The top-level field `name` of the JSON object `body` as `T` (`None` when absent, `null`
/// or not a `T`), read as serde reads it through `W`, a struct holding only that field, which
/// `field` takes it from. When the field is the object's last (an answer's `usage`) it is read
/// from the end ([`scan::last_field`]); otherwise the scanner finds it without building the
/// rest of the document (serde walked every other value too); a body the scanner cannot decide
/// (not an object of valid JSON, an escaped key, the field twice) goes to serde through `W`, as
/// before. A field found last is taken as it stands, even where the rest of the body would
/// have gone to serde (the field twice, an error before it).
pub(crate) fn top_level<T, W>(
    body: &[u8],
    name: &str,
    field: impl FnOnce(W) -> Option<T>,
) -> Option<T>
where
    T: serde::de::DeserializeOwned,
    W: serde::de::DeserializeOwned,
{
    if let Some(v) = scan::last_field(body, name) {
        return serde_json::from_slice::<Option<T>>(v).ok().flatten();
    }
    top_level_or(body, name, || {
        serde_json::from_slice::<W>(body).ok().and_then(field)
    })
}

/// [`top_level`] without the look at the end (a Gemini chunk writes `usageMetadata` before
/// its model and response IDs), with `whole` reading the body the scanner cannot decide.
pub(crate) fn top_level_or<T: serde::de::DeserializeOwned>(
    body: &[u8],
    name: &str,
    whole: impl FnOnce() -> Option<T>,
) -> Option<T> {
    let Some(fields) = scan::object_fields(body) else {
        return whole();
    };
    let mut found = fields.iter().filter(|(k, _)| k == name);
    match (found.next(), found.next()) {
        (Some((_, v)), None) => serde_json::from_str::<Option<T>>(v).ok().flatten(),
        (None, _) => None,
        (Some(_), Some(_)) => whole(),
    }
}

/// A piece of a re-encoded object ([`RawObject::encode_pieces`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes the encoder wrote: keys, punctuation, overrides and short values.
    Written(Vec<u8>),
    /// A value of the input, verbatim.
    Borrowed(&'a str),
}

/// `s` as a JSON string literal, e.g. for a field override in [`RawObject::encode_with`].
pub fn json_string(s: &str) -> String {
    if !scan::needs_escape(s) {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return out;
    }
    // serde_json escapes exactly as JSON requires, and a `&str` cannot fail to serialize.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    if !scan::needs_escape(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // serde_json escapes exactly as JSON requires; writing into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((key, value));
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_to_the_same_bytes_and_borrow_only_large_values() {
        let big = format!("[{}]", vec!["\"hello\""; 200].join(","));
        let body = format!(r#"{{"messages":{big},"model":"a","model":"b","n":1,"tools":[1,2]}}"#);
        let obj = RawObject::decode(body.as_bytes()).unwrap();
        let overrides = [("model", "\"up\""), ("stream_options", "{}")];
        let whole = obj.encode_edited(&overrides, &["n"]);
        for borrow_from in [0, 1, 6, 100, usize::MAX] {
            let pieces = obj.encode_pieces(&overrides, &["n"], borrow_from);
            let mut joined = Vec::new();
            for p in &pieces {
                match p {
                    Piece::Written(w) => {
                        assert!(!w.is_empty(), "{borrow_from}: an empty piece");
                        joined.extend_from_slice(w);
                    }
                    Piece::Borrowed(v) => {
                        assert!(v.len() >= borrow_from);
                        // Borrowed from the input itself, not a copy.
                        let at = v.as_ptr() as usize - body.as_ptr() as usize;
                        assert_eq!(&body[at..at + v.len()], *v);
                        joined.extend_from_slice(v.as_bytes());
                    }
                }
            }
            assert_eq!(joined, whole, "{borrow_from}");
            let borrowed = pieces
                .iter()
                .filter(|p| matches!(p, Piece::Borrowed(_)))
                .count();
            // `model` is overridden and `n` removed: never borrowed.
            let want = match borrow_from {
                0 | 1 => 2,
                6 | 100 => 1,
                _ => 0,
            };
            assert_eq!(borrowed, want, "{borrow_from}: {pieces:?}");
        }
    }

    #[test]
    fn rewrites_one_field_and_keeps_the_rest_verbatim() {
        let body = br#"{"model":"a","messages":[{"role":"user","content":"hi \u00e9"}],"n":1}"#;
        let obj = RawObject::decode(body).unwrap();
        let out = obj.encode_with(&[("model", "\"b\"")]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"b","messages":[{"role":"user","content":"hi \u00e9"}],"n":1}"#
        );
    }

    #[test]
    fn appends_missing_override() {
        let obj = RawObject::decode(br#"{"a":1}"#).unwrap();
        assert_eq!(obj.encode_with(&[("b", "true")]), br#"{"a":1,"b":true}"#);
    }

    #[test]
    fn removes_fields_and_overrides_others() {
        let obj = RawObject::decode(br#"{"a":1,"b":2,"c":3}"#).unwrap();
        assert_eq!(
            obj.encode_edited(&[("c", "false")], &["b"]),
            br#"{"a":1,"c":false}"#
        );
    }

    #[test]
    fn non_object_and_garbage_are_rejected_with_a_message() {
        let e = RawObject::decode(b"[1,2]").unwrap_err();
        assert!(e.message.contains("JSON object"), "{e}");
        let e = RawObject::decode(b"{\"a\":").unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{e}");
        assert!(RawObject::decode(b"{} x").is_err());
    }

    #[test]
    fn escaped_keys_are_found_and_reencoded() {
        let obj = RawObject::decode(br#"{"mo\u0064el":"x"}"#).unwrap();
        assert_eq!(obj.get("model").unwrap().get(), "\"x\"");
        assert_eq!(obj.encode_with(&[]), br#"{"model":"x"}"#);
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_once() {
        let obj = RawObject::decode(br#"{"model":"a","model":"b"}"#).unwrap();
        assert_eq!(obj.get("model").unwrap().get(), "\"b\"");
        assert_eq!(obj.encode_with(&[]), br#"{"model":"b"}"#);
    }
}
