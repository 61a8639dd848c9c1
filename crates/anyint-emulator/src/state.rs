//! Per-instance state: options, per-tag request counters and the last request
//! seen per tag. In memory only; never does IO.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::Options;

/// Counter key that every chat completion request increments.
pub(crate) const CHAT_TOTAL: &str = "_chat_total";

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) opts: Options,
    counts: Mutex<HashMap<String, u64>>,
    last: Mutex<HashMap<String, Value>>,
    requests: AtomicU64,
}

/// Locks ignoring poison: counters stay usable after a panicking handler.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub(crate) fn new(opts: Options) -> Self {
        Self {
            opts,
            counts: Mutex::default(),
            last: Mutex::default(),
            requests: AtomicU64::new(0),
        }
    }

    /// Increments `key` and returns the new count.
    pub(crate) fn bump(&self, key: &str) -> u64 {
        let mut counts = lock(&self.counts);
        let n = counts.entry(key.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    pub(crate) fn count(&self, key: &str) -> u64 {
        lock(&self.counts).get(key).copied().unwrap_or(0)
    }

    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub(crate) fn record_last(&self, tag: &str, record: Value) {
        lock(&self.last).insert(tag.to_owned(), record);
    }

    pub(crate) fn last(&self, tag: &str) -> Option<Value> {
        lock(&self.last).get(tag).cloned()
    }

    pub(crate) fn reset(&self) {
        lock(&self.counts).clear();
        lock(&self.last).clear();
    }

    /// A fresh `x-request-id` value.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("req_{}", crate::util::hex_id(&n.to_le_bytes(), 32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let s = State::new(Options::default());
        assert_eq!(s.bump("a"), 1);
        assert_eq!(s.bump("a"), 2);
        assert_eq!(s.count("a"), 2);
        assert_eq!(s.count("b"), 0);
        s.record_last("a", Value::Bool(true));
        assert_eq!(s.last("a"), Some(Value::Bool(true)));
        s.reset();
        assert_eq!(s.count("a"), 0);
        assert_eq!(s.last("a"), None);
        assert_ne!(s.next_request_id(), s.next_request_id());
    }
}
