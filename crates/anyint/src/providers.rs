//! Upstream adapters: one per provider `kind`, dispatched by a closed enum.
//!
//! An adapter builds the upstream request (URL, auth headers, body) and maps upstream errors
//! to the gateway [`Error`](crate::error::Error). All IO plumbing (the pooled client, timeouts,
//! error classification) lives once in [`http`].
//!
//! Adding a provider kind:
//! 1. add the variant to `config::ProviderKind` and to [`ProviderAdapter`];
//! 2. write `providers/<kind>.rs` with `chat_request` and `decode_error`;
//! 3. let the compiler show every `match` that must now handle it;
//! 4. teach the emulator the provider's wire format and add conformance tests.

pub mod http;
pub mod openai;

use crate::config::{ProviderConfig, ProviderKind};

/// A configured provider with its HTTP client.
pub struct Provider {
    /// The validated config.
    pub config: ProviderConfig,
    /// The kind-specific adapter.
    pub adapter: ProviderAdapter,
    /// A pooled client for this provider.
    pub client: reqwest::Client,
}

/// Kind-specific behaviour.
#[derive(Clone, Copy, Debug)]
pub enum ProviderAdapter {
    /// OpenAI-compatible upstream.
    OpenAi,
}

impl Provider {
    /// Builds the adapter and client for one provider.
    pub fn new(config: ProviderConfig) -> Result<Self, crate::error::Error> {
        let adapter = match config.kind {
            ProviderKind::OpenAi => ProviderAdapter::OpenAi,
        };
        let client = http::client(&config)?;
        Ok(Self {
            config,
            adapter,
            client,
        })
    }
}
