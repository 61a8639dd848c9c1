//! Small pure helpers: stable hashing, hex ids, base64, clock, JSON responses.
//! Nothing here knows about OpenAI semantics.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// FNV-1a, 64 bit. Stable across Rust releases, unlike `DefaultHasher`.
pub(crate) fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `len` lowercase hex characters derived deterministically from `seed`.
pub(crate) fn hex_id(seed: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round: u64 = 0;
    while out.len() < len {
        let h = fnv64(&[seed, &round.to_le_bytes()]);
        // Writing to a String cannot fail.
        let _ = write!(out, "{h:016x}");
        round += 1;
    }
    out.truncate(len);
    out
}

/// Current unix time in seconds (0 if the clock is before 1970).
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Current unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for unix milliseconds, with `.mmm`
/// appended when `millis` is set (DashScope task times).
pub(crate) fn datetime(unix_ms: u64, millis: bool) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}");
    if millis {
        // Writing to a String cannot fail.
        let _ = write!(out, ".{:03}", unix_ms % 1000);
    }
    out
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days only).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A UUID-shaped id (`8-4-4-4-12` lowercase hex) derived from `seed`.
pub(crate) fn uuid_like(seed: &[u8]) -> String {
    let hex = hex_id(seed, 32);
    let part = |from: usize, to: usize| hex.get(from..to).unwrap_or("0");
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

/// ⌈chars/4⌉, the emulator's token estimate for a piece of text.
pub(crate) fn quarter_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// The first `len` values of the unit vector of `full` dimensions derived from `seed`: the same
/// seed always gives the same vector. With `len < full` the prefix is not a unit vector, as
/// a Gemini embedding shortened by `outputDimensionality` is not.
pub(crate) fn embedding_vector(seed: &[u8], full: usize, len: usize) -> Vec<f32> {
    let raw: Vec<f32> = (0..full.max(len))
        .map(|i| {
            let h = fnv64(&[seed, &i.to_le_bytes()]);
            let hi = u16::try_from(h >> 48).unwrap_or(0);
            f32::from(hi) / 32768.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    raw.into_iter()
        .take(len)
        .map(|x| if norm > 0.0 { x / norm } else { x })
        .collect()
}

/// The f32 as the shortest decimal that round-trips, so JSON stays short.
pub(crate) fn short_float(x: f32) -> Value {
    let f = format!("{x}").parse::<f64>().unwrap_or(f64::from(x));
    Value::from(f)
}

/// Standard base64 (RFC 4648 alphabet, with padding).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// Decodes a URL query string into `(name, value)` pairs: `+` is a space
/// and `%XX` escapes are decoded (invalid escapes are kept as written).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Human wording of a JSON value's type, as OpenAI's `invalid_type` errors use.
pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn hex_id_is_deterministic_and_sized() {
        assert_eq!(hex_id(b"x", 29), hex_id(b"x", 29));
        assert_ne!(hex_id(b"x", 24), hex_id(b"y", 24));
        assert_eq!(hex_id(b"x", 40).len(), 40);
    }

    #[test]
    fn query_pairs_decode() {
        let q = query_pairs("alt=sse&key=a%2Bb+c&flag&bad=%zz");
        assert_eq!(
            q,
            vec![
                ("alt".to_owned(), "sse".to_owned()),
                ("key".to_owned(), "a+b c".to_owned()),
                ("flag".to_owned(), String::new()),
                ("bad".to_owned(), "%zz".to_owned()),
            ]
        );
    }

    #[test]
    fn datetimes_are_utc_civil_times() {
        assert_eq!(datetime(0, true), "1970-01-01 00:00:00.000");
        // 2025-10-11 18:55:56.952 UTC.
        assert_eq!(datetime(1_760_208_956_952, true), "2025-10-11 18:55:56.952");
        assert_eq!(datetime(1_760_208_956_952, false), "2025-10-11 18:55:56");
        // Leap day.
        assert_eq!(datetime(1_709_164_800_000, false), "2024-02-29 00:00:00");
    }

    #[test]
    fn uuid_like_is_shaped() {
        let id = uuid_like(b"x");
        let lens: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12]);
        assert_ne!(id, uuid_like(b"y"));
    }

    #[test]
    fn embedding_vectors_are_deterministic_and_unit_length_when_whole() {
        let a = embedding_vector(b"hello", 8, 8);
        assert_eq!(a, embedding_vector(b"hello", 8, 8));
        assert_ne!(a, embedding_vector(b"world", 8, 8));
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm(&a) - 1.0).abs() < 1e-4);
        let short = embedding_vector(b"hello", 64, 4);
        assert_eq!(short.len(), 4);
        assert_eq!(short[..], embedding_vector(b"hello", 64, 64)[..4]);
        assert!(norm(&short) < 0.99, "a prefix is not a unit vector");
    }

    #[test]
    fn quarter_tokens_rounds_up() {
        assert_eq!(quarter_tokens(""), 0);
        assert_eq!(quarter_tokens("abcd"), 1);
        assert_eq!(quarter_tokens("abcde"), 2);
    }
}
