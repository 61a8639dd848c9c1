//! Reasoning state in `encrypted_content`: OpenAI's own blobs, and the gateway's for reasoning
//! another provider signed.
//!
//! A Responses client keeps the chain of thought across stateless turns (`store: false`) by
//! replaying each reasoning item's `encrypted_content`. OpenAI mints that blob; for reasoning
//! that came from Anthropic or Gemini the gateway mints its own, so a client like Codex carries
//! a Claude thinking signature (or redacted thinking) or a Gemini thought signature through the
//! conversation and the gateway can hand it back to the provider that issued it.
//!
//! The gateway's blob is `anyint1.` followed by the unpadded base64url of a small JSON object:
//! `{"s": "<origin-tagged signature>", "r": "<redacted data>"}` (each key only when present).
//! It is encoded, not encrypted: the signature inside is already opaque and only its issuer
//! can verify it (see [`crate::canonical::signature`]), and a client that edits the blob only
//! breaks its own conversation. OpenAI's blobs (Fernet tokens, `gAAAA…`) never start with
//! `anyint1.`, so the two cannot be confused.

use serde::{Deserialize, Serialize};

use crate::canonical::signature::{self, Origin};

/// The prefix of a gateway-minted `encrypted_content`.
pub const BLOB_PREFIX: &str = "anyint1.";

#[derive(Serialize, Deserialize)]
struct Carried<'a> {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none", borrow)]
    signature: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none", borrow)]
    redacted: Option<std::borrow::Cow<'a, str>>,
}

/// A reasoning item's canonical signature and redacted data, read from its
/// `encrypted_content`. `Err` when it claims to be the gateway's blob but is not a valid one.
pub(super) fn read(encrypted: &str) -> Result<(Option<String>, Option<String>), ()> {
    let Some(b64) = encrypted.strip_prefix(BLOB_PREFIX) else {
        return Ok((Some(signature::from_wire(Origin::OpenAi, encrypted)), None));
    };
    let bytes = b64url_decode(b64).ok_or(())?;
    let carried: Carried<'_> = serde_json::from_slice(&bytes).map_err(|_| ())?;
    Ok((
        carried.signature.map(std::borrow::Cow::into_owned),
        carried.redacted.map(std::borrow::Cow::into_owned),
    ))
}

/// The `encrypted_content` a Responses client gets for a reasoning part: OpenAI's own blob
/// as issued (also a signature of unknown origin), anything else (another provider's signature,
/// redacted thinking) in the gateway's blob. `None` when there is nothing to carry.
pub(super) fn for_client(signature: Option<&str>, redacted: Option<&str>) -> Option<String> {
    match (signature, redacted) {
        (None, None) => None,
        (Some(sig), None) if matches!(signature::parse(sig).0, None | Some(Origin::OpenAi)) => {
            Some(signature::for_client(Origin::OpenAi, sig).to_owned())
        }
        (signature, redacted) => Some(mint(signature, redacted)),
    }
}

/// The gateway's blob for a signature (kept with its origin tag) and redacted data.
fn mint(signature: Option<&str>, redacted: Option<&str>) -> String {
    let carried = Carried {
        signature: signature.map(std::borrow::Cow::Borrowed),
        redacted: redacted.map(std::borrow::Cow::Borrowed),
    };
    // Serializing two optional strings cannot fail.
    let json = serde_json::to_vec(&carried).unwrap_or_default();
    format!("{BLOB_PREFIX}{}", b64url_encode(&json))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url.
fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let push = |v: u32, out: &mut String| {
        let i = usize::try_from(v & 63).unwrap_or(0);
        out.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'A')));
    };
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            push(acc >> bits, &mut out);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        push(acc << (6 - bits), &mut out);
    }
    out
}

/// Decodes base64url (padding tolerated); `None` on any other character.
fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..40 {
            let enc = b64url_encode(&data[..len]);
            assert!(!enc.contains(['+', '/', '=']));
            assert_eq!(b64url_decode(&enc).unwrap(), &data[..len]);
        }
        assert_eq!(b64url_encode(b"hello"), "aGVsbG8");
        assert_eq!(b64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert!(b64url_decode("a b").is_none());
    }

    #[test]
    fn foreign_signatures_travel_in_the_gateway_blob() {
        let tagged = signature::tag(Origin::Anthropic, "EqQB");
        let blob = for_client(Some(&tagged), None).unwrap();
        assert!(blob.starts_with(BLOB_PREFIX), "{blob}");
        assert_eq!(read(&blob), Ok((Some(tagged), None)));
        let blob = for_client(None, Some("REDACTED")).unwrap();
        assert_eq!(read(&blob), Ok((None, Some("REDACTED".to_owned()))));
        assert!(read("anyint1.!!").is_err());
        assert!(read("anyint1.aGVsbG8").is_err());
    }

    #[test]
    fn openai_blobs_pass_as_issued() {
        let own = signature::tag(Origin::OpenAi, "gAAAAB");
        assert_eq!(for_client(Some(&own), None).as_deref(), Some("gAAAAB"));
        assert_eq!(for_client(Some("plain"), None).as_deref(), Some("plain"));
        assert_eq!(for_client(None, None), None);
        assert_eq!(read("gAAAAB"), Ok((Some(own), None)));
    }
}
