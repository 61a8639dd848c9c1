//! The opaque `reasoning.encrypted_content` blobs: minted for a reasoning
//! item when the request includes `reasoning.encrypted_content`, recognised
//! when a later request replays them. Like OpenAI's, a blob is bound to
//! the identity that minted it (here: the bearer key), so a blob replayed
//! under another key, or one this emulator never minted, is rejected.
//! Pure: no IO, no wire shapes.

use crate::util::{fnv64, hex_id};

/// Fernet-looking opening, like OpenAI's blobs (`gAAAAAB…`).
const PREFIX: &str = "gAAAAAB";
/// Mixed into every MAC so blobs of other software never verify.
const SECRET: &[u8] = b"anyint-emulator/reasoning-blob/v1";
/// Hex characters of the payload.
const PAYLOAD_LEN: usize = 64;
/// Hex characters of the MAC.
const MAC_LEN: usize = 16;

fn mac(key: &str, payload: &str) -> String {
    format!(
        "{:016x}",
        fnv64(&[SECRET, key.as_bytes(), payload.as_bytes()])
    )
}

/// A blob for the reasoning item derived from `seed`, bound to `key`.
pub(crate) fn mint(key: &str, seed: &[u8]) -> String {
    let payload = hex_id(&[seed, b"encrypted_content"].concat(), PAYLOAD_LEN);
    let mac = mac(key, &payload);
    format!("{PREFIX}{payload}{mac}")
}

/// True when `blob` was minted by [`mint`] under `key`.
pub(crate) fn verify(key: &str, blob: &str) -> bool {
    let Some(rest) = blob.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != PAYLOAD_LEN + MAC_LEN || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let (payload, tag) = rest.split_at(PAYLOAD_LEN);
    mac(key, payload) == tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_blobs_verify_under_their_key_only() {
        let blob = mint("sk-a", b"seed");
        assert!(blob.starts_with("gAAAAAB"));
        assert!(verify("sk-a", &blob));
        assert!(!verify("sk-b", &blob));
        assert_ne!(blob, mint("sk-a", b"other"));
        assert!(!verify("sk-a", "gAAAAABnot-ours"));
        assert!(!verify("sk-a", ""));
        let mut forged = blob.clone();
        forged.replace_range(10..11, if &blob[10..11] == "0" { "1" } else { "0" });
        assert!(!verify("sk-a", &forged));
    }
}
