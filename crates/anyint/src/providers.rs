//! Upstream adapters: one per provider `kind`, dispatched by a closed enum.
//!
//! An adapter builds the upstream request (URL, auth headers, body) and maps upstream errors
//! to the gateway [`Error`](crate::error::Error). All IO plumbing (the pooled client, timeouts,
//! error classification) lives once in [`http`].
//!
//! Adding a provider kind:
//! 1. add the variant to `config::ProviderKind` and to [`ProviderAdapter`];
//! 2. write `providers/<kind>.rs` with `chat_request` and `decode_error`, and teach
//!    `gateway::plan` and `gateway::translate` about its wire codec;
//! 3. let the compiler show every `match` that must now handle it;
//! 4. teach the emulator the provider's wire format and add conformance tests.

pub mod anthropic;
pub mod dashscope;
pub mod gemini;
pub mod http;
pub mod music;
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
    /// The chat endpoint, parsed once (OpenAI and Anthropic; Gemini's URL names the model).
    pub chat_url: Option<reqwest::Url>,
}

/// Kind-specific behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderAdapter {
    /// OpenAI-compatible upstream.
    OpenAi,
    /// Anthropic Messages upstream.
    Anthropic,
    /// Gemini upstream.
    Gemini,
    /// DashScope async synthesis upstream (tasks only).
    DashScope,
    /// Suno-style music upstream (tasks only).
    Music,
}

impl ProviderAdapter {
    /// Whether this adapter serves chat (the task adapters are driven by `tasks`).
    pub fn is_chat(self) -> bool {
        matches!(self, Self::OpenAi | Self::Anthropic | Self::Gemini)
    }
}

impl Provider {
    /// Builds the adapter and client for one provider.
    pub fn new(config: ProviderConfig) -> Result<Self, crate::error::Error> {
        let adapter = match config.kind {
            ProviderKind::OpenAi => ProviderAdapter::OpenAi,
            ProviderKind::Anthropic => ProviderAdapter::Anthropic,
            ProviderKind::Gemini => ProviderAdapter::Gemini,
            ProviderKind::DashScope => ProviderAdapter::DashScope,
            ProviderKind::Music => ProviderAdapter::Music,
        };
        let client = http::client(&config)?;
        let chat_path = match adapter {
            ProviderAdapter::OpenAi => Some("/chat/completions"),
            ProviderAdapter::Anthropic => Some("/v1/messages"),
            ProviderAdapter::Gemini | ProviderAdapter::DashScope | ProviderAdapter::Music => None,
        };
        let chat_url = chat_path
            .map(|p| reqwest::Url::parse(&format!("{}{p}", config.base_url)))
            .transpose()
            .map_err(|e| {
                crate::error::Error::internal(format!("provider {}: base_url: {e}", config.name))
            })?;
        Ok(Self {
            config,
            adapter,
            client,
            chat_url,
        })
    }
}

/// One upstream call's credentials and total time limit.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The API key for this attempt (providers rotate through theirs).
    pub key: &'a crate::config::Secret,
    /// Total time limit for the call.
    pub total: std::time::Duration,
}

impl Provider {
    /// The key for rotation slot `n` (any `n`; it wraps).
    pub fn key(&self, n: usize) -> &crate::config::Secret {
        let keys = &self.config.api_keys;
        // Config validation guarantees at least one key.
        &keys[n % keys.len()]
    }

    /// A call with the first key and the provider's default total limit (count_tokens).
    pub fn default_call(&self) -> Call<'_> {
        Call {
            key: self.key(0),
            total: self.config.deadlines.total,
        }
    }

    /// Builds the upstream chat request for this provider's kind. `model` is the upstream model
    /// (Gemini carries it in the URL); `forward` are client headers a same-family passthrough
    /// forwards (e.g. `anthropic-version`, `anthropic-beta`).
    pub fn chat_request(
        &self,
        call: &Call<'_>,
        model: &str,
        body: Vec<u8>,
        stream: bool,
        forward: &ForwardHeaders,
    ) -> reqwest::RequestBuilder {
        match self.adapter {
            // Task models never reach the chat path (`entitlement::resolve` refuses them).
            ProviderAdapter::OpenAi | ProviderAdapter::DashScope | ProviderAdapter::Music => {
                openai::chat_request(self, call, body)
            }
            ProviderAdapter::Anthropic => anthropic::chat_request(self, call, body, forward),
            ProviderAdapter::Gemini => gemini::chat_request(self, call, model, body, stream),
        }
    }

    /// Sends a request whose whole JSON answer is relayed as it is (`count_tokens` on a
    /// same-family upstream); an error reply becomes the gateway error.
    pub async fn fetch(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, crate::error::Error> {
        let resp = http::send(&self.config.name, req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http::read_body(&self.config.name, resp).await?;
        if !status.is_success() {
            return Err(self.decode_error(status, &headers, &body));
        }
        Ok(body)
    }

    /// Maps an upstream error reply to the gateway error.
    pub fn decode_error(
        &self,
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> crate::error::Error {
        match self.adapter {
            ProviderAdapter::OpenAi => openai::decode_error(self, status, headers, body),
            ProviderAdapter::Anthropic => anthropic::decode_error(self, status, headers, body),
            ProviderAdapter::Gemini => gemini::decode_error(self, status, headers, body),
            ProviderAdapter::DashScope => dashscope::decode_error(self, status, headers, body),
            ProviderAdapter::Music => music::decode_error(self, status, headers, body),
        }
    }
}

/// Client headers a same-family passthrough forwards upstream.
#[derive(Clone, Debug, Default)]
pub struct ForwardHeaders {
    /// The client's `anthropic-version` (passthrough only; translation uses the provider's).
    pub anthropic_version: Option<String>,
    /// The client's `anthropic-beta` list.
    pub anthropic_beta: Option<String>,
}
