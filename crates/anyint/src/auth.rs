//! Client authentication: issuing keys, hashing them, and the in-memory key cache.
//!
//! Keys are random, shown once, and stored only as SHA-256 hashes with a short visible prefix.
//! The hot path looks keys up in [`KeyCache`]; the store is read only on a cache miss (a key
//! created by another process since the last refresh), and misses are remembered briefly so a
//! flood of bad keys cannot turn into a flood of queries.

use foldhash::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::store::{ApiKey, Store};

/// Every issued key starts with this.
pub const KEY_PREFIX: &str = "sk-anyint-";
/// How many characters of a key are kept visible for identification.
const VISIBLE_LEN: usize = KEY_PREFIX.len() + 6;
/// How long an unknown hash is remembered as unknown.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Bound on remembered misses; cleared wholesale when reached.
const NEGATIVE_MAX: usize = 10_000;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all; fall back to a
    // time-seeded value rather than crash (the gateway cannot run on such a system anyway).
    if getrandom::fill(&mut buf).is_err() {
        let seed = crate::clock::unix_millis().to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = seed.get(i % seed.len()).copied().unwrap_or(0)
                ^ u8::try_from(i & 0xff).unwrap_or(0);
        }
    }
    buf
}

/// A new random key: `sk-anyint-` + 40 base62 characters (~238 bits).
pub fn generate_key() -> String {
    let bytes = random_bytes::<40>();
    let mut key = String::with_capacity(KEY_PREFIX.len() + 40);
    key.push_str(KEY_PREFIX);
    for b in bytes {
        // 256 % 62 bias is negligible for a 40-character secret.
        key.push(char::from(
            ALPHABET
                .get(usize::from(b) % ALPHABET.len())
                .copied()
                .unwrap_or(b'A'),
        ));
    }
    key
}

/// A new opaque ID with the given prefix, e.g. `key_3f9c…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<8>()))
}

/// Hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    hex_of(&digest_key(key))
}

/// A key's SHA-256: what the cache looks keys up by (the store keeps its hex).
type KeyDigest = [u8; 32];

fn digest_key(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// The digest a stored hex hash spells; `None` for anything but 64 hex digits.
fn digest_of_hex(hash: &str) -> Option<KeyDigest> {
    let mut d = [0u8; 32];
    hex::decode_to_slice(hash, &mut d).ok()?;
    Some(d)
}

fn hex_of(digest: &KeyDigest) -> String {
    let mut hash = String::with_capacity(64);
    push_hex(&mut hash, digest);
    hash
}

/// Appends `bytes` in lower-case hex. Every request names itself in hex; `hex::encode`
/// collects its string a `char` at a time through an iterator, and pushing `char`s one by one
/// cost about as much: the digits are written into a buffer and appended at once.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for part in bytes.chunks(32) {
        let mut buf = [0u8; 64];
        for (pair, &b) in buf.chunks_exact_mut(2).zip(part) {
            if let [hi, lo] = pair {
                *hi = DIGITS[usize::from(b >> 4)];
                *lo = DIGITS[usize::from(b & 0x0f)];
            }
        }
        let digits = buf.get(..2 * part.len()).unwrap_or_default();
        out.push_str(std::str::from_utf8(digits).unwrap_or_default());
    }
}

/// The visible part of a key.
pub fn visible_prefix(key: &str) -> String {
    key.chars().take(VISIBLE_LEN).collect()
}

/// Issues a key and stores its hash; returns the record and the key (to show once).
pub async fn issue_key(
    store: &dyn Store,
    name: &str,
    account: &str,
    models: Option<Vec<String>>,
    limits: crate::store::KeyLimits,
) -> Result<(ApiKey, String), crate::store::Error> {
    issue_team_key(store, name, account, models, limits, None).await
}

/// Like [`issue_key`], for a key that belongs to `team` (which must be in `account`).
pub async fn issue_team_key(
    store: &dyn Store,
    name: &str,
    account: &str,
    models: Option<Vec<String>>,
    limits: crate::store::KeyLimits,
    team: Option<String>,
) -> Result<(ApiKey, String), crate::store::Error> {
    let key = generate_key();
    let record = ApiKey {
        id: new_id("key_"),
        name: name.to_owned(),
        account: account.to_owned(),
        models,
        prefix: visible_prefix(&key),
        key_hash: hash_key(&key),
        created_at: crate::clock::unix_secs(),
        revoked_at: None,
        limits,
        team,
    };
    store.insert_key(&record).await?;
    Ok((record, key))
}

/// Active keys by hash, refreshed from the store periodically and on admin changes.
///
/// Both maps are keyed by the digest's bytes, not its hex: a request then neither spells its
/// key's hash in hex nor hashes 64 characters to find it (the hex is made only on a miss, to
/// ask the store).
pub struct KeyCache {
    store: Arc<dyn Store>,
    keys: RwLock<HashMap<KeyDigest, Arc<ApiKey>>>,
    misses: RwLock<HashMap<KeyDigest, Instant>>,
}

impl KeyCache {
    /// An empty cache over `store`; call [`KeyCache::reload`] before serving.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            keys: RwLock::default(),
            misses: RwLock::default(),
        }
    }

    /// Replaces the cache with the store's active keys.
    pub async fn reload(&self) -> Result<(), crate::store::Error> {
        let fresh: HashMap<KeyDigest, Arc<ApiKey>> = self
            .store
            .active_keys()
            .await?
            .into_iter()
            .filter_map(|k| Some((digest_of_hex(&k.key_hash)?, Arc::new(k))))
            .collect();
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        if let Ok(mut misses) = self.misses.write() {
            misses.clear();
        }
        Ok(())
    }

    /// Adds or replaces one key (after an admin create).
    pub fn insert(&self, key: ApiKey) {
        let Some(digest) = digest_of_hex(&key.key_hash) else {
            return;
        };
        if let Ok(mut misses) = self.misses.write() {
            misses.remove(&digest);
        }
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(digest, Arc::new(key));
        }
    }

    /// Drops a key (after an admin revoke).
    pub fn remove(&self, key_hash: &str) {
        let Some(digest) = digest_of_hex(key_hash) else {
            return;
        };
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(&digest);
        }
    }

    /// Resolves a presented key. `header` names the header this route expects, for the 401.
    pub async fn authenticate(
        &self,
        presented: Option<&str>,
        header: &str,
    ) -> Result<Arc<ApiKey>, Error> {
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            return Err(unauthenticated(format!(
                "no API key provided: send your anyint key in the `{header}` header"
            )));
        };
        let digest = digest_key(presented);
        if let Some(key) = self.keys.read().ok().and_then(|k| k.get(&digest).cloned()) {
            return Ok(key);
        }
        // Not shaped like an issued key: refuse without asking the store, so a flood of
        // garbage credentials never reaches the database.
        if !presented.starts_with(KEY_PREFIX) || presented.len() != KEY_PREFIX.len() + 40 {
            return Err(unauthenticated(format!(
                "invalid API key: the key in `{header}` is not an anyint key (they start with {KEY_PREFIX}); check it, or ask your administrator for a new key"
            )));
        }
        let recently_missed = self
            .misses
            .read()
            .ok()
            .and_then(|m| m.get(&digest).copied())
            .is_some_and(|at| at.elapsed() < NEGATIVE_TTL);
        if !recently_missed {
            match self.store.key_by_hash(&hex_of(&digest)).await {
                Ok(Some(key)) if key.revoked_at.is_none() => {
                    let key = Arc::new(key);
                    if let Ok(mut keys) = self.keys.write() {
                        keys.insert(digest, key.clone());
                    }
                    return Ok(key);
                }
                Ok(_) => {
                    if let Ok(mut misses) = self.misses.write() {
                        if misses.len() >= NEGATIVE_MAX {
                            misses.clear();
                        }
                        misses.insert(digest, Instant::now());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(unauthenticated(format!(
            "invalid API key: the key in `{header}` is unknown or revoked; check it, or ask your administrator for a new key"
        )))
    }
}

fn unauthenticated(message: String) -> Error {
    Error::new(ErrorKind::Unauthenticated, message).with_code("invalid_api_key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hash_stably() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 40);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_eq!(hash_key(&a).len(), 64);
        assert_eq!(hash_key(&a), hex::encode(Sha256::digest(a.as_bytes())));
        assert!(!hash_key(&a).contains(&a[KEY_PREFIX.len()..]));
        assert_eq!(visible_prefix(&a).len(), VISIBLE_LEN);
        assert_eq!(digest_of_hex(&hash_key(&a)), Some(digest_key(&a)));
        assert_eq!(digest_of_hex("abc"), None);
        assert_eq!(digest_of_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn hex_is_written_as_hex_encode_writes_it() {
        for len in [0, 1, 6, 31, 32, 33, 64, 70] {
            let bytes: Vec<u8> = (0..len)
                .map(|i: u8| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            let mut out = String::from("x");
            push_hex(&mut out, &bytes);
            assert_eq!(out, format!("x{}", hex::encode(&bytes)), "{len}");
        }
    }
}
