//! Token usage as the gateway meters it, whatever family reported it.

/// Token counts for one request. `input_tokens` is the full prompt size including cached
/// tokens; `cache_read_tokens` and `cache_write_tokens` say how much of it hit or filled the
/// provider's cache. (Anthropic reports input excluding cache; its codec adds them up.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt (input) tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion (output) tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning, when reported.
    pub reasoning_tokens: u64,
    /// Hosted web searches the upstream ran (billed apart from tokens).
    pub web_searches: u64,
}

impl Usage {
    /// Merges a later report into this one: each non-zero field of `later` wins.
    #[must_use]
    pub fn merge(self, later: Self) -> Self {
        let pick = |a: u64, b: u64| if b > 0 { b } else { a };
        Self {
            input_tokens: pick(self.input_tokens, later.input_tokens),
            output_tokens: pick(self.output_tokens, later.output_tokens),
            cache_read_tokens: pick(self.cache_read_tokens, later.cache_read_tokens),
            cache_write_tokens: pick(self.cache_write_tokens, later.cache_write_tokens),
            reasoning_tokens: pick(self.reasoning_tokens, later.reasoning_tokens),
            web_searches: pick(self.web_searches, later.web_searches),
        }
    }
}
