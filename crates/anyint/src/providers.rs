//! Upstream adapters: one per provider `kind`, dispatched by a closed enum.
//!
//! An adapter builds the upstream request (URL, auth headers, body) and maps upstream errors
//! to the gateway [`Error`](crate::error::Error). All IO plumbing (the pooled client, timeouts,
//! error classification) lives once in [`http`].
//!
//! Adding a provider kind:
//! 1. add the variant to `config::ProviderKind` and to [`ProviderAdapter`];
//! 2. write `providers/<kind>.rs` with `chat_request` and `decode_error`, and teach
//!    `gateway::plan` and [`ProviderAdapter::wire_kind`] about its wire format (a new format
//!    is a new `anyint_wire::translate::Kind` with its codecs);
//! 3. let the compiler show every `match` that must now handle it;
//! 4. teach the emulator the provider's wire format and add conformance tests.

pub mod anthropic;
pub mod dashscope;
pub mod gemini;
pub mod http;
pub mod music;
pub mod openai;

use crate::config::{ProviderConfig, ProviderKind, UpstreamApi};

/// A configured provider with its HTTP client.
pub struct Provider {
    /// The validated config.
    pub config: ProviderConfig,
    /// The kind-specific adapter.
    pub adapter: ProviderAdapter,
    /// The pooled client of threads that are not serving workers (background tasks).
    shared: http::Client,
    /// One pooled client per serving worker, so an upstream connection is driven by the
    /// runtime whose requests use it; built on the worker's first call (a client holds its
    /// own TLS root store, about 1 MB, so idle workers do not pay for one).
    per_worker: Box<[std::sync::OnceLock<http::Client>]>,
    /// The chat endpoint, parsed once (OpenAI and Anthropic; Gemini's URL names the model).
    pub chat_url: Option<::http::Uri>,
    /// The chat endpoint's `Host` header when it is plain HTTP, where every call is HTTP/1 and
    /// the pooled client would otherwise format it on each call (for HTTPS, which may be
    /// HTTP/2 and carry `:authority` instead, the client still decides).
    chat_host: Option<::http::HeaderValue>,
    /// Each key's credential header value (`Bearer …` for OpenAI, the key for Anthropic's
    /// `x-api-key`), built once and marked sensitive; `None` where the kind sends its key
    /// another way or the key is not a valid header value (the call then fails as before).
    credentials: Box<[Option<::http::HeaderValue>]>,
}

/// Kind-specific behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderAdapter {
    /// OpenAI-compatible upstream (Chat Completions).
    OpenAi,
    /// OpenAI Responses upstream (`kind = "openai"`, `api = "responses"`).
    OpenAiResponses,
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
        matches!(
            self,
            Self::OpenAi | Self::OpenAiResponses | Self::Anthropic | Self::Gemini
        )
    }

    /// The chat wire format this upstream speaks (task adapters never reach the chat path;
    /// `entitlement::resolve` refuses their models there).
    pub fn wire_kind(self) -> anyint_wire::translate::Kind {
        match self {
            Self::OpenAi | Self::DashScope | Self::Music => anyint_wire::translate::Kind::OpenAi,
            Self::Anthropic => anyint_wire::translate::Kind::Anthropic,
            Self::Gemini => anyint_wire::translate::Kind::Gemini,
            Self::OpenAiResponses => anyint_wire::translate::Kind::Responses,
        }
    }
}

impl Provider {
    /// Builds the adapter and the shared client for one provider, with room for `workers`
    /// serving workers' own clients.
    pub fn new(config: ProviderConfig, workers: usize) -> Result<Self, crate::error::Error> {
        let adapter = match config.kind {
            ProviderKind::OpenAi if config.api == UpstreamApi::Responses => {
                ProviderAdapter::OpenAiResponses
            }
            ProviderKind::OpenAi => ProviderAdapter::OpenAi,
            ProviderKind::Anthropic => ProviderAdapter::Anthropic,
            ProviderKind::Gemini => ProviderAdapter::Gemini,
            ProviderKind::DashScope => ProviderAdapter::DashScope,
            ProviderKind::Music => ProviderAdapter::Music,
        };
        let shared = http::Client::new(&config)?;
        let per_worker = (0..workers.max(1))
            .map(|_| std::sync::OnceLock::new())
            .collect();
        let chat_path = match adapter {
            ProviderAdapter::OpenAi => Some("/chat/completions"),
            ProviderAdapter::OpenAiResponses => Some("/responses"),
            ProviderAdapter::Anthropic => Some("/v1/messages"),
            ProviderAdapter::Gemini | ProviderAdapter::DashScope | ProviderAdapter::Music => None,
        };
        let chat_url = chat_path
            .map(|p| format!("{}{p}", config.base_url).parse::<::http::Uri>())
            .transpose()
            .map_err(|e| {
                crate::error::Error::internal(format!("provider {}: base_url: {e}", config.name))
            })?;
        let chat_host = chat_url
            .as_ref()
            .filter(|u| u.scheme() == Some(&::http::uri::Scheme::HTTP))
            .and_then(http::client::host_header);
        let credentials = config
            .api_keys
            .iter()
            .map(|k| {
                let text = match adapter {
                    ProviderAdapter::OpenAi | ProviderAdapter::OpenAiResponses => {
                        format!("Bearer {}", k.expose())
                    }
                    ProviderAdapter::Anthropic => k.expose().to_owned(),
                    ProviderAdapter::Gemini
                    | ProviderAdapter::DashScope
                    | ProviderAdapter::Music => {
                        return None;
                    }
                };
                let mut v = ::http::HeaderValue::try_from(text).ok()?;
                v.set_sensitive(true);
                Some(v)
            })
            .collect();
        Ok(Self {
            config,
            adapter,
            shared,
            per_worker,
            chat_url,
            chat_host,
            credentials,
        })
    }

    /// A `POST` of the chat endpoint, with its `Host` header when that is known already;
    /// `None` for kinds whose URL names the model.
    pub fn chat_post(&self) -> Option<http::Request> {
        let req = self.client().post(self.chat_url.as_ref()?.clone());
        Some(match &self.chat_host {
            Some(host) => req.header(::http::header::HOST, host.clone()),
            None => req,
        })
    }

    /// The credential header value of `call`'s key (see `credentials`), when built.
    pub fn credential(&self, call: &Call<'_>) -> Option<::http::HeaderValue> {
        self.credentials.get(call.slot)?.clone()
    }

    /// The client of the calling thread's worker (see [`http::bind_worker`]), or the shared
    /// one off the workers.
    pub fn client(&self) -> &http::Client {
        let worker = http::worker();
        if worker == 0 {
            return &self.shared;
        }
        let slot = &self.per_worker[(worker - 1) % self.per_worker.len()];
        if let Some(c) = slot.get() {
            return c;
        }
        // The shared client was built from the same settings, so this does not fail in
        // practice; if it did, the shared pool still serves (with cross-thread wake-ups).
        match http::Client::new(&self.config) {
            Ok(c) => slot.get_or_init(|| c),
            Err(_) => &self.shared,
        }
    }
}

/// What the upstream said about a task.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Gateway status.
    pub status: crate::store::TaskStatus,
    /// Native status word; empty means "nothing new".
    pub native: String,
    /// Progress rank.
    pub stage: i64,
    /// The result view to keep.
    pub result: serde_json::Value,
    /// Failure code and message.
    pub error: Option<(String, String)>,
    /// Units to bill (seconds, images, songs) when the upstream reports them.
    pub units: Option<u64>,
}

impl Observation {
    /// An answer that changes nothing (an unknown or transient upstream status).
    pub fn unchanged() -> Self {
        Self {
            status: crate::store::TaskStatus::Pending,
            native: String::new(),
            stage: -1,
            result: serde_json::Value::Null,
            error: None,
            units: None,
        }
    }

    /// A failed task: its native status word, error code and message.
    pub fn failed(native: &str, code: &str, message: String) -> Self {
        Self {
            status: crate::store::TaskStatus::Failed,
            native: native.to_owned(),
            stage: 3,
            result: serde_json::Value::Null,
            error: Some((code.to_owned(), message)),
            units: None,
        }
    }
}

/// One upstream call's credentials and total time limit.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The API key for this attempt (providers rotate through theirs).
    pub key: &'a crate::config::Secret,
    /// The key's place among the provider's keys ([`Provider::key`] of it is `key`).
    pub slot: usize,
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

    /// A call with the key of rotation slot `n` (any `n`; it wraps) and time limit `total`.
    pub fn call(&self, n: usize, total: std::time::Duration) -> Call<'_> {
        let slot = n % self.config.api_keys.len().max(1);
        Call {
            key: self.key(slot),
            slot,
            total,
        }
    }

    /// A call with the first key and the provider's default total limit (count_tokens).
    pub fn default_call(&self) -> Call<'_> {
        self.call(0, self.config.deadlines.total)
    }

    /// Builds the upstream chat request for this provider's kind. `model` is the upstream model
    /// (Gemini carries it in the URL); `forward` are client headers a same-family passthrough
    /// forwards (e.g. `anthropic-version`, `anthropic-beta`).
    pub fn chat_request(
        &self,
        call: &Call<'_>,
        model: &str,
        body: impl Into<http::Payload>,
        stream: bool,
        forward: &ForwardHeaders,
    ) -> http::Request {
        match self.adapter {
            // Task models never reach the chat path (`entitlement::resolve` refuses them).
            ProviderAdapter::OpenAi
            | ProviderAdapter::OpenAiResponses
            | ProviderAdapter::DashScope
            | ProviderAdapter::Music => openai::chat_request(self, call, body),
            ProviderAdapter::Anthropic => anthropic::chat_request(self, call, body, forward),
            ProviderAdapter::Gemini => gemini::chat_request(self, call, model, body, stream),
        }
    }

    /// Sends `req` and waits at most `limits.ttfb` (counted from `started`) for the answer to
    /// start: a whole body, or a stream whose first bytes arrived. An error reply becomes the
    /// gateway error. Also returns the time to the answer's first byte.
    pub async fn exchange(
        &self,
        req: http::Request,
        stream: bool,
        limits: crate::config::Deadlines,
        started: tokio::time::Instant,
    ) -> Result<(http::Reply, std::time::Duration), crate::error::Error> {
        let name = &self.config.name;
        // Non-streamed completions send their first byte only when generation is done, so for
        // them this limit bounds the whole generation (documented with `ttfb_timeout_ms`).
        // One timer bounds the head: the client is told not to set its own.
        let head_by = tokio::time::Instant::now() + limits.ttfb;
        let resp =
            match tokio::time::timeout_at(head_by, self.send(req.head_bounded_by(head_by))).await {
                Ok(r) => r?,
                Err(_) => return Err(http::ttfb_timeout(name)),
            };
        if !stream {
            let ttfb = started.elapsed();
            return Ok((http::Reply::Body(http::read_body(name, resp).await?), ttfb));
        }
        if !http::is_sse(&resp) {
            return Err(http::not_a_stream(name));
        }
        let left = limits.ttfb.saturating_sub(started.elapsed());
        let upstream = http::open_stream(name, resp, left, limits.idle).await?;
        Ok((http::Reply::Stream(upstream), started.elapsed()))
    }

    /// Sends the upstream request and turns an error reply into the gateway error.
    async fn send(&self, req: http::Request) -> Result<http::Response, crate::error::Error> {
        let resp = http::send(&self.config.name, req).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = http::read_error_body(resp).await;
        Err(self.decode_error(status, &headers, &body))
    }

    /// Sends a request whose whole JSON answer is relayed as it is (`count_tokens` on a
    /// same-family upstream); an error reply becomes the gateway error.
    pub async fn fetch(&self, req: http::Request) -> Result<bytes::Bytes, crate::error::Error> {
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
        status: ::http::StatusCode,
        headers: &::http::HeaderMap,
        body: &[u8],
    ) -> crate::error::Error {
        match self.adapter {
            ProviderAdapter::OpenAi | ProviderAdapter::OpenAiResponses => {
                openai::decode_error(self, status, headers, body)
            }
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
