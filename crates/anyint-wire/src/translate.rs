//! The translated path's codec chain: dispatch from a chat wire [`Kind`] (the client's family,
//! or the upstream's kind) to its codecs, and the [`Translator`], the stream stage that turns
//! upstream frames into client bytes through the canonical events.
//!
//! Every conversion goes through the canonical model: a client request is decoded once and
//! encoded for the upstream kind; an upstream answer is decoded and encoded for the client.
//! Decoding the answer takes the [`DecodeOptions`] of the request that was sent: what the
//! upstream could not be asked for and its decoder enforces (one tool call per turn for
//! Gemini).
//! The gateway and the pair tests (`tests/pairs.rs`) run this same chain.
//!
//! Responses clients differ in two ways: their encoders need the [`responses::Echo`] of the
//! request (so [`encode_response`] and [`ClientEncoder::new`] take the [`ClientShape`]), and
//! their in-stream failure depends on the stream so far (`error` + `response.failed`, numbered
//! after the last event), so the gateway asks the stage for it with [`Translator::fail`]
//! instead of rendering it alone. [`Translator::response`] hands back the final Response
//! object for the gateway's store.

use std::borrow::Cow;

use serde_json::Value;

pub use crate::canonical::DecodeOptions;
use crate::canonical::{ChatRequest, ChatResponse, EncodeOptions, StreamEvent};
pub use crate::report::FrameReport;
use crate::sse::Frame;
use crate::{DecodeError, Usage, anthropic, gemini, openai, responses};

/// A chat wire format: the shape a client family speaks, or an upstream kind serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// OpenAI Chat Completions (and every OpenAI-compatible upstream).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
}

impl Kind {
    /// Reads one frame of a stream in this kind's format, for metering. Cheap: only usage
    /// chunks are parsed.
    pub fn report(self, frame: &Frame) -> FrameReport {
        if self == Self::OpenAi {
            let mut report = crate::report::openai_frame(&frame.data);
            report.error |= frame.event.as_deref() == Some("error");
            return report;
        }
        // Any kind's upstream may write an error either way (OpenAI-compatible servers too).
        let error = frame.event.as_deref() == Some("error")
            || crate::report::is_error_payload(frame.data.as_bytes());
        let mut report = FrameReport {
            error,
            ..FrameReport::default()
        };
        match self {
            // Read above.
            Self::OpenAi => {}
            Self::Anthropic => match frame.event.as_deref() {
                Some("message_start" | "message_delta") => {
                    report.usage = anthropic::usage_from_frame(frame);
                }
                Some("message_stop") => report.ends = true,
                _ => {}
            },
            Self::Gemini => {
                report.usage = gemini::usage_from_frame(frame);
                report.ends = frame.data.contains("\"finishReason\"");
            }
            // The event name when the upstream writes `event:` lines (it does), read in place;
            // the data's `type` otherwise.
            Self::Responses => match frame
                .event
                .as_deref()
                .map(Cow::Borrowed)
                .or_else(|| responses::event_type(frame).map(Cow::Owned))
                .as_deref()
            {
                Some("response.completed" | "response.incomplete") => {
                    report.usage = responses::usage_from_frame(frame);
                    report.ends = true;
                }
                Some("response.failed") => {
                    report.usage = responses::usage_from_frame(frame);
                    report.error = true;
                }
                Some("error") => report.error = true,
                _ => {}
            },
        }
        report.content = !frame.data.is_empty() && !report.ends && !report.usage_only;
        report
    }

    /// The usage a whole (non-streamed) response reports.
    pub fn usage_from_response(self, body: &[u8]) -> Option<Usage> {
        match self {
            Self::OpenAi => openai::usage_from_response(body),
            Self::Anthropic => anthropic::usage_from_response(body),
            Self::Gemini => gemini::usage_from_response(body),
            Self::Responses => responses::usage_from_response(body),
        }
    }
}

/// What the client sent, for full decoding when a route needs translation.
#[derive(Clone, Copy, Debug)]
pub enum ClientShape<'a> {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages with the client's `anthropic-version` and `anthropic-beta`.
    Anthropic {
        /// The version header value.
        version: &'a str,
        /// The beta header value (empty when absent), checked with
        /// [`anthropic::check_betas`] when the request is decoded for translation.
        betas: &'a str,
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
    /// OpenAI Responses; its encoders need what the Response object echoes.
    Responses {
        /// The client's request as the answer echoes it, with the minted response id.
        echo: &'a responses::Echo,
    },
}

impl ClientShape<'_> {
    /// The wire kind this shape belongs to.
    pub fn kind(&self) -> Kind {
        match self {
            Self::OpenAi => Kind::OpenAi,
            Self::Anthropic { .. } => Kind::Anthropic,
            Self::Gemini { .. } => Kind::Gemini,
            Self::Responses { .. } => Kind::Responses,
        }
    }
}

/// Decodes the client's request into canonical form.
pub fn decode_request(shape: ClientShape<'_>, body: &[u8]) -> Result<ChatRequest, DecodeError> {
    decode_request_with(shape, body, DecodeOptions::default())
}

/// [`decode_request`] for a route that serves what `opts` says (its `web_search`).
pub fn decode_request_with(
    shape: ClientShape<'_>,
    body: &[u8],
    opts: DecodeOptions,
) -> Result<ChatRequest, DecodeError> {
    match shape {
        ClientShape::OpenAi => openai::decode_request(body),
        ClientShape::Anthropic { version, betas } => {
            anthropic::check_betas(betas)?;
            anthropic::decode_request(body, version)
        }
        ClientShape::Gemini { model, stream, .. } => gemini::decode_request(body, model, stream),
        ClientShape::Responses { .. } => responses::decode_request_with(body, opts.web_search),
    }
}

/// Encodes a canonical request for an upstream of `kind`. Hosted web search reaches only the
/// kinds with a search tool of their own (Anthropic, Gemini); the others refuse it (a native
/// Responses upstream gets a Responses client's tools untouched, by passthrough).
pub fn encode_request(kind: Kind, req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    if let Some(ws) = &req.web_search {
        match kind {
            Kind::OpenAi => return Err(ws.unsupported("openai")),
            Kind::Responses => return Err(ws.unsupported("openai responses")),
            Kind::Anthropic | Kind::Gemini => {}
        }
    }
    match kind {
        Kind::OpenAi => openai::encode_request(req),
        Kind::Anthropic => anthropic::encode_request(req),
        Kind::Gemini => gemini::encode_request(req),
        Kind::Responses => responses::encode_request(req),
    }
}

/// Decodes an upstream's non-streamed response to a request that asked for what `opts` says
/// ([`DecodeOptions::for_request`] of the canonical request sent).
pub fn decode_response(
    kind: Kind,
    body: &[u8],
    opts: DecodeOptions,
) -> Result<ChatResponse, DecodeError> {
    match kind {
        Kind::OpenAi => openai::decode_response(body),
        Kind::Anthropic => anthropic::decode_response(body),
        Kind::Gemini => gemini::decode_response_with(body, opts),
        Kind::Responses => responses::decode_response(body),
    }
}

/// Encodes a canonical response for a client of `shape`.
pub fn encode_response(shape: ClientShape<'_>, resp: &ChatResponse) -> Vec<u8> {
    match shape {
        ClientShape::OpenAi => openai::encode_response(resp),
        ClientShape::Anthropic { .. } => anthropic::encode_response(resp),
        ClientShape::Gemini { .. } => gemini::encode_response(resp),
        ClientShape::Responses { echo } => {
            serde_json::to_vec(&responses::encode_response(resp, echo)).unwrap_or_default()
        }
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
    /// Responses named events.
    Responses(responses::StreamDecoder),
}

impl UpstreamDecoder {
    /// A decoder for `kind`, for the answer to a request that asked for what `opts` says.
    pub fn new(kind: Kind, opts: DecodeOptions) -> Self {
        match kind {
            Kind::OpenAi => Self::OpenAi(openai::StreamDecoder::new()),
            Kind::Anthropic => Self::Anthropic(anthropic::StreamDecoder::new()),
            Kind::Gemini => Self::Gemini(gemini::StreamDecoder::with_options(opts)),
            Kind::Responses => Self::Responses(responses::StreamDecoder::new()),
        }
    }

    /// Decodes one upstream frame.
    pub fn feed(&mut self, frame: &Frame) -> Vec<StreamEvent> {
        match self {
            Self::OpenAi(d) => d.feed(frame),
            Self::Anthropic(d) => d.feed(frame),
            Self::Gemini(d) => d.feed(frame),
            Self::Responses(d) => d.feed(frame),
        }
    }

    /// The upstream reached EOF.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        match self {
            Self::OpenAi(d) => d.finish(),
            Self::Anthropic(d) => d.finish(),
            Self::Gemini(d) => d.finish(),
            Self::Responses(d) => d.finish(),
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
    /// Responses named events.
    Responses(Box<responses::StreamEncoder>),
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
            ClientShape::Responses { echo } => {
                Self::Responses(Box::new(responses::StreamEncoder::new(opts, echo.clone())))
            }
        }
    }

    /// Encodes one event, appending to `out`.
    pub fn encode_into(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            Self::OpenAi(e) => e.encode_into(ev, out),
            Self::Anthropic(e) => e.encode_into(ev, out),
            Self::Gemini(e) => out.append(&mut e.encode(ev)),
            Self::Responses(e) => out.append(&mut e.encode(ev)),
        }
    }

    /// Final bytes after the upstream ended.
    pub fn finish(&mut self) -> Vec<u8> {
        match self {
            Self::OpenAi(e) => e.finish(),
            Self::Anthropic(e) => e.finish(),
            Self::Gemini(e) => e.finish(),
            Self::Responses(e) => e.finish(),
        }
    }

    /// The client's in-stream failure, for a family whose error event depends on the stream
    /// so far (Responses: `error` + `response.failed`, numbered after the last event; see
    /// [`responses::StreamEncoder::fail`]). `None` for the others: their error event is
    /// stateless and the gateway renders it itself.
    pub fn fail(&mut self, code: &str, message: &str) -> Option<Vec<u8>> {
        match self {
            Self::Responses(e) => Some(e.fail(code, message)),
            Self::OpenAi(_) | Self::Anthropic(_) | Self::Gemini(_) => None,
        }
    }

    /// Responses only: the final Response object, once the stream's terminal event is
    /// written.
    pub fn response(&self) -> Option<&Value> {
        match self {
            Self::Responses(e) => e.response(),
            Self::OpenAi(_) | Self::Anthropic(_) | Self::Gemini(_) => None,
        }
    }
}

/// A translating stream stage: upstream frames in, client bytes out. It stops at the first
/// error the upstream reports inside the stream, and closes the client's stream only when the
/// upstream's ended properly (so a cut stream never looks complete).
pub struct Translator {
    decoder: UpstreamDecoder,
    encoder: ClientEncoder,
    complete: bool,
}

impl Translator {
    /// A stage from an upstream of kind `upstream`, answering a request that asked for what
    /// `decode` says ([`DecodeOptions::for_request`]), to a client of shape `client`.
    pub fn new(
        upstream: Kind,
        decode: DecodeOptions,
        client: ClientShape<'_>,
        opts: EncodeOptions,
    ) -> Self {
        Self {
            decoder: UpstreamDecoder::new(upstream, decode),
            encoder: ClientEncoder::new(client, opts),
            complete: false,
        }
    }

    /// Translates one upstream frame, appending the client's bytes to `out`. An error the
    /// upstream reported in the stream comes back as its message; what this frame had encoded
    /// before it is already in `out`.
    pub fn feed(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), String> {
        self.feed_inspect(frame, out, |_| {})
    }

    /// [`feed`](Self::feed), showing each canonical event to `seen` first.
    pub fn feed_inspect(
        &mut self,
        frame: &Frame,
        out: &mut Vec<u8>,
        mut seen: impl FnMut(&StreamEvent),
    ) -> Result<(), String> {
        for ev in self.decoder.feed(frame) {
            seen(&ev);
            self.step(&ev, out)?;
        }
        Ok(())
    }

    /// The upstream reached EOF: the decoder's last events, then the client's closing bytes
    /// when the upstream's stream was complete.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.finish_inspect(out, |_| {});
    }

    /// [`finish`](Self::finish), showing each canonical event to `seen` first.
    pub fn finish_inspect(&mut self, out: &mut Vec<u8>, mut seen: impl FnMut(&StreamEvent)) {
        for ev in self.decoder.finish() {
            seen(&ev);
            if self.step(&ev, out).is_err() {
                break;
            }
        }
        if self.complete {
            out.extend(self.encoder.finish());
        }
    }

    /// Whether the upstream's stream ended properly.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Ends the client's stream with a failure the gateway detected (an upstream error in the
    /// stream, which [`feed`](Self::feed) returned, or a cut): the bytes to send when the
    /// client's family needs the stream's state for them (Responses), `None` when the gateway
    /// renders its family's stateless error event itself. See [`ClientEncoder::fail`].
    pub fn fail(&mut self, code: &str, message: &str) -> Option<Vec<u8>> {
        self.encoder.fail(code, message)
    }

    /// Responses clients: the final Response object once the stream completed or failed
    /// (for the gateway's store). `None` for other families.
    pub fn response(&self) -> Option<&Value> {
        self.encoder.response()
    }

    fn step(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) -> Result<(), String> {
        match ev {
            StreamEvent::End => self.complete = true,
            StreamEvent::Error { message } => return Err(message.clone()),
            _ => {}
        }
        self.encoder.encode_into(ev, out);
        Ok(())
    }
}
