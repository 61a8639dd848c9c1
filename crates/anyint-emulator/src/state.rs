//! Per-instance state: options, per-tag request counters, per-tag stream
//! outcomes, the last request seen per tag, the prompt-cache prefixes
//! seen so far and the async tasks ([`crate::task::Tasks`]). In memory
//! only; never does IO itself (task callbacks are sent by `task`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use crate::Options;
use crate::task::Tasks;

/// Counter key that every generation request (any family) increments.
pub(crate) const CHAT_TOTAL: &str = "_chat_total";
/// Counter key that every Anthropic `/v1/messages` request increments.
pub(crate) const ANTHROPIC_TOTAL: &str = "_anthropic_total";
/// Counter key that every OpenAI Responses create request increments.
pub(crate) const RESPONSES_TOTAL: &str = "_responses_total";
/// Counter key that every Gemini generate request increments.
pub(crate) const GEMINI_TOTAL: &str = "_gemini_total";
/// Prompt-cache prefixes remembered before the set starts over.
const MAX_CACHE_PREFIXES: usize = 4096;

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) opts: Options,
    counts: Mutex<HashMap<String, u64>>,
    last: Mutex<HashMap<String, Value>>,
    streams: Mutex<HashMap<String, Arc<StreamCounts>>>,
    cache_prefixes: Mutex<HashSet<u64>>,
    requests: AtomicU64,
    /// DashScope and music tasks (shared with their stage timers and
    /// callback workers).
    pub(crate) tasks: Arc<Tasks>,
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
            streams: Mutex::default(),
            cache_prefixes: Mutex::default(),
            requests: AtomicU64::new(0),
            tasks: Arc::new(Tasks::new()),
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
        lock(&self.streams).clear();
        lock(&self.cache_prefixes).clear();
        self.tasks.clear();
    }

    /// Counts a streaming response started under `tag` and returns the
    /// tag's counters, for the stream to report how it ended. A reset
    /// detaches the counters of streams still running, so they no longer
    /// show up afterwards.
    pub(crate) fn stream_started(&self, tag: &str) -> Arc<StreamCounts> {
        let counts = Arc::clone(lock(&self.streams).entry(tag.to_owned()).or_default());
        counts.started.fetch_add(1, Ordering::Relaxed);
        counts
    }

    /// `{"tag", "started", "completed", "aborted", "cut"}` (zeros if unseen).
    pub(crate) fn streams(&self, tag: &str) -> Value {
        let counts = lock(&self.streams).get(tag).cloned().unwrap_or_default();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "tag": tag,
            "started": get(&counts.started),
            "completed": get(&counts.completed),
            "aborted": get(&counts.aborted),
            "cut": get(&counts.cut),
        })
    }

    /// Records a prompt-cache prefix; true when it was already cached (a
    /// cache read), false when this request writes it. The set is bounded:
    /// when full it starts over, like an evicting cache.
    pub(crate) fn cache_prefix(&self, hash: u64) -> bool {
        let mut set = lock(&self.cache_prefixes);
        if set.contains(&hash) {
            return true;
        }
        if set.len() >= MAX_CACHE_PREFIXES {
            set.clear();
        }
        set.insert(hash);
        false
    }

    /// A fresh `x-request-id` value.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("req_{}", crate::util::hex_id(&n.to_le_bytes(), 32))
    }
}

/// How the streaming responses of one tag ended.
#[derive(Debug, Default)]
pub(crate) struct StreamCounts {
    /// Streaming responses built.
    pub(crate) started: AtomicU64,
    /// Streams whose every event and terminator was handed to the server.
    pub(crate) completed: AtomicU64,
    /// Streams dropped before the end: the peer went away mid-stream.
    pub(crate) aborted: AtomicU64,
    /// Streams that reached a deliberate `cut_after` / `error_after` end.
    pub(crate) cut: AtomicU64,
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
        assert!(!s.cache_prefix(7));
        assert!(s.cache_prefix(7));
        let c = s.stream_started("t");
        c.aborted.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            s.streams("t"),
            json!({"tag": "t", "started": 1, "completed": 0, "aborted": 1, "cut": 0})
        );
        s.reset();
        assert_eq!(s.streams("t")["started"], 0);
        assert!(!s.cache_prefix(7));
        assert_eq!(s.count("a"), 0);
        assert_eq!(s.last("a"), None);
        assert_ne!(s.next_request_id(), s.next_request_id());
    }
}
