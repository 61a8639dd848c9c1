//! Token usage as the gateway meters it, whatever family reported it.

/// Token counts for one request. Input counts exclude cached tokens only when the upstream
/// reports them separately; the meter stores what the upstream said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub input_tokens: u64,
    /// Completion (output) tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning, when reported.
    pub reasoning_tokens: u64,
}
