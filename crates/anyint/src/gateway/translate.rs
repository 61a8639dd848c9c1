//! Dispatch from (client family, upstream kind) to the wire codecs, for the translated path.
//! Every conversion goes through the canonical model in `anyint-wire`.

use anyint_wire::canonical::{ChatRequest, ChatResponse, EncodeOptions, StreamEvent};
use anyint_wire::sse::Frame;
use anyint_wire::{DecodeError, anthropic, gemini, openai};

use crate::families::Family;
use crate::providers::ProviderAdapter;

/// What the client sent, for full decoding when a route needs translation.
#[derive(Clone, Copy, Debug)]
pub enum ClientShape<'a> {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages with the client's `anthropic-version`.
    Anthropic {
        /// The version header value.
        version: &'a str,
    },
    /// Gemini generateContent; the model and stream flag come from the URL.
    Gemini {
        /// The model in the URL.
        model: &'a str,
        /// Whether the client called `:streamGenerateContent`.
        stream: bool,
        /// Whether the client asked for SSE (`alt=sse`) rather than a JSON array stream.
        sse: bool,
    },
}

/// Decodes the client's request into canonical form.
pub fn decode_request(shape: ClientShape<'_>, body: &[u8]) -> Result<ChatRequest, DecodeError> {
    match shape {
        ClientShape::OpenAi => openai::decode_request(body),
        ClientShape::Anthropic { version } => anthropic::decode_request(body, version),
        ClientShape::Gemini { model, stream, .. } => gemini::decode_request(body, model, stream),
    }
}

/// Encodes a canonical request for an upstream of `kind`.
pub fn encode_request(kind: ProviderAdapter, req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    match kind {
        ProviderAdapter::OpenAi | ProviderAdapter::DashScope | ProviderAdapter::Music => {
            openai::encode_request(req)
        }
        ProviderAdapter::Anthropic => anthropic::encode_request(req),
        ProviderAdapter::Gemini => gemini::encode_request(req),
    }
}

/// Decodes an upstream's non-streamed response.
pub fn decode_response(kind: ProviderAdapter, body: &[u8]) -> Result<ChatResponse, DecodeError> {
    match kind {
        ProviderAdapter::OpenAi | ProviderAdapter::DashScope | ProviderAdapter::Music => {
            openai::decode_response(body)
        }
        ProviderAdapter::Anthropic => anthropic::decode_response(body),
        ProviderAdapter::Gemini => gemini::decode_response(body),
    }
}

/// Encodes a canonical response for the client's family.
pub fn encode_response(family: Family, resp: &ChatResponse) -> Vec<u8> {
    match family {
        Family::OpenAi => openai::encode_response(resp),
        Family::Anthropic => anthropic::encode_response(resp),
        Family::Gemini => gemini::encode_response(resp),
    }
}

/// A stream decoder for an upstream kind.
pub enum UpstreamDecoder {
    /// OpenAI-compatible chunks.
    OpenAi(openai::StreamDecoder),
    /// Anthropic named events.
    Anthropic(anthropic::StreamDecoder),
    /// Gemini response chunks.
    Gemini(gemini::StreamDecoder),
}

impl UpstreamDecoder {
    /// A decoder for `kind`.
    pub fn new(kind: ProviderAdapter) -> Self {
        match kind {
            // Task adapters never reach here (the chat path refuses task models).
            ProviderAdapter::OpenAi | ProviderAdapter::DashScope | ProviderAdapter::Music => {
                Self::OpenAi(openai::StreamDecoder::new())
            }
            ProviderAdapter::Anthropic => Self::Anthropic(anthropic::StreamDecoder::new()),
            ProviderAdapter::Gemini => Self::Gemini(gemini::StreamDecoder::new()),
        }
    }

    /// Decodes one upstream frame.
    pub fn feed(&mut self, frame: &Frame) -> Vec<StreamEvent> {
        match self {
            Self::OpenAi(d) => d.feed(frame),
            Self::Anthropic(d) => d.feed(frame),
            Self::Gemini(d) => d.feed(frame),
        }
    }

    /// The upstream reached EOF.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        match self {
            Self::OpenAi(d) => d.finish(),
            Self::Anthropic(d) => d.finish(),
            Self::Gemini(d) => d.finish(),
        }
    }
}

/// A stream encoder for the client's family.
pub enum ClientEncoder {
    /// OpenAI chunks ending in `[DONE]`.
    OpenAi(openai::StreamEncoder),
    /// Anthropic named events.
    Anthropic(anthropic::StreamEncoder),
    /// Gemini chunks (SSE or JSON array).
    Gemini(gemini::StreamEncoder),
}

impl ClientEncoder {
    /// An encoder for the client's shape.
    pub fn new(shape: ClientShape<'_>, opts: EncodeOptions) -> Self {
        match shape {
            ClientShape::OpenAi => Self::OpenAi(openai::StreamEncoder::new(opts)),
            ClientShape::Anthropic { .. } => Self::Anthropic(anthropic::StreamEncoder::new(opts)),
            ClientShape::Gemini { sse, .. } => {
                let format = if sse {
                    gemini::StreamFormat::Sse
                } else {
                    gemini::StreamFormat::JsonArray
                };
                Self::Gemini(gemini::StreamEncoder::new(opts, format))
            }
        }
    }

    /// Encodes one event.
    pub fn encode(&mut self, ev: &StreamEvent) -> Vec<u8> {
        match self {
            Self::OpenAi(e) => e.encode(ev),
            Self::Anthropic(e) => e.encode(ev),
            Self::Gemini(e) => e.encode(ev),
        }
    }

    /// Final bytes after the upstream ended.
    pub fn finish(&mut self) -> Vec<u8> {
        match self {
            Self::OpenAi(e) => e.finish(),
            Self::Anthropic(e) => e.finish(),
            Self::Gemini(e) => e.finish(),
        }
    }
}

/// A translating stream: upstream frames in, client bytes out.
pub struct Translator {
    /// Upstream side.
    pub decoder: UpstreamDecoder,
    /// Client side.
    pub encoder: ClientEncoder,
}
