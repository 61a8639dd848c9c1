//! The stream tap: sits between the upstream byte stream and the client, meters usage from the
//! events as they pass, and writes the ledger row when the stream ends, fails, or the client
//! goes away.
//!
//! In passthrough modes bytes reach the client exactly as the upstream sent them; the tap only
//! reads. Two exceptions, both whole-event and never re-encoded: an OpenAI client that did not
//! ask for the usage chunk does not get it (the gateway asked the upstream for it so it can
//! meter), and a Gemini client that asked for the JSON-array stream gets the upstream's SSE
//! events re-framed as array elements. In translate mode every event goes through the
//! canonical decoder and the client family's encoder.

use std::pin::Pin;
use std::task::{Context, Poll};

use anyint_wire::Usage;
use anyint_wire::canonical::StreamEvent;
use anyint_wire::openai::{StreamUsage, usage_from_chunk};
use anyint_wire::sse::{Frame, SseSplitter};
use anyint_wire::{anthropic, gemini};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::Meter;
use crate::error::{Error, ErrorKind};
use crate::gateway::translate::Translator;
use crate::providers::http::UpstreamStream;
use crate::store::UsageRecord;

/// How the stream ended, for the ledger's `outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Complete,
    UpstreamCut,
    ClientClosed,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "ok",
            Self::UpstreamCut => "upstream_cut",
            Self::ClientClosed => "client_closed",
        }
    }
}

/// Renders the client family's in-stream error (for JSON-array streams: the bare element).
pub type ErrorFrame = fn(&Error) -> Bytes;

/// What the tap does with each upstream event.
pub enum Mode {
    /// OpenAI passthrough; `strip_usage` drops the usage-only chunk the client did not ask for.
    OpenAi {
        /// Whether to drop the usage-only chunk.
        strip_usage: bool,
    },
    /// Anthropic passthrough.
    Anthropic,
    /// Gemini passthrough; `array` re-frames SSE events as a JSON array.
    Gemini {
        /// Whether the client asked for the JSON-array stream.
        array: bool,
    },
    /// Decode, translate, encode.
    Translate(Box<Translator>),
}

/// A metering wrapper around an upstream byte stream.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts about one stream, each read in one place"
)]
pub struct UsageTap {
    inner: UpstreamStream,
    splitter: SseSplitter,
    mode: Mode,
    /// Whether the client expects a JSON array (Gemini without `alt=sse`).
    array: bool,
    usage: Usage,
    complete: bool,
    /// The upstream already wrote its own in-stream error (passthrough): add no second one.
    upstream_errored: bool,
    /// Events received that carry data, for billing a stream cut before its usage report.
    events: u64,
    written: bool,
    pending: Option<(Meter, UsageRecord, Instant)>,
    error_frame: ErrorFrame,
    finished: bool,
    /// A concurrency slot held until the stream ends or the client leaves.
    hold: Vec<crate::policy::limits::Permit>,
}

impl UsageTap {
    /// Wraps `inner`. `row` is the ledger row to complete; `started` is when the request
    /// arrived; `array` says the client reads a JSON-array stream.
    pub fn new(
        inner: UpstreamStream,
        mode: Mode,
        array: bool,
        (meter, row, started): (Meter, UsageRecord, Instant),
        error_frame: ErrorFrame,
    ) -> Self {
        Self {
            inner,
            splitter: SseSplitter::new(),
            mode,
            array,
            usage: Usage::default(),
            complete: false,
            upstream_errored: false,
            events: 0,
            written: false,
            pending: Some((meter, row, started)),
            error_frame,
            finished: false,
            hold: Vec::new(),
        }
    }

    /// Holds `permits` for the life of the stream.
    #[must_use]
    pub fn holding(mut self, permits: Vec<crate::policy::limits::Permit>) -> Self {
        self.hold = permits;
        self
    }

    /// Handles the frames of one upstream chunk; returns the bytes for the client, or an error
    /// when the upstream reported one inside the stream.
    fn process(&mut self, chunk: &Bytes) -> Result<Option<Bytes>, (Bytes, String)> {
        let pending_before = self.splitter.pending().len();
        let frames = self.splitter.push(chunk);
        self.events += frames.iter().filter(|f| !f.data.is_empty()).count() as u64;
        // Passthrough forwards whole events only, so a cut mid-event never leaves half an
        // event before the error event. When the chunk is exactly whole events (the common
        // case) it is forwarded as is, without copying.
        let aligned = pending_before == 0 && self.splitter.pending().is_empty();
        let whole = |frames: &[Frame]| -> Bytes {
            if aligned {
                chunk.clone()
            } else {
                Bytes::from(
                    frames
                        .iter()
                        .flat_map(|f| f.raw.iter().copied())
                        .collect::<Vec<u8>>(),
                )
            }
        };
        if !matches!(self.mode, Mode::Translate(_))
            && frames.iter().any(|f| {
                f.event.as_deref() == Some("error") || f.data.trim_start().starts_with("{\"error\"")
            })
        {
            self.upstream_errored = true;
        }
        match &mut self.mode {
            Mode::OpenAi { strip_usage } => {
                let strip = *strip_usage;
                let mut out = Vec::new();
                for f in &frames {
                    let forward = inspect_openai(f, &mut self.usage, &mut self.complete, strip);
                    if strip && forward {
                        out.extend_from_slice(&f.raw);
                    }
                }
                Ok(Some(if strip {
                    Bytes::from(out)
                } else {
                    whole(&frames)
                }))
            }
            Mode::Anthropic => {
                for f in &frames {
                    match f.event.as_deref() {
                        Some("message_start" | "message_delta") => {
                            if let Some(u) = anthropic::usage_from_frame(f) {
                                self.usage = self.usage.merge(u);
                            }
                        }
                        Some("message_stop") => self.complete = true,
                        _ => {}
                    }
                }
                Ok(Some(whole(&frames)))
            }
            Mode::Gemini { array } => {
                let array = *array;
                let mut out = Vec::new();
                for f in &frames {
                    if let Some(u) = gemini::usage_from_frame(f) {
                        self.usage = self.usage.merge(u);
                    }
                    if f.data.contains("\"finishReason\"") {
                        self.complete = true;
                    }
                    if array && !f.data.trim().is_empty() {
                        out.extend_from_slice(if self.written || !out.is_empty() {
                            b",\r\n"
                        } else {
                            b"["
                        });
                        out.extend_from_slice(f.data.as_bytes());
                    }
                }
                Ok(Some(if array {
                    Bytes::from(out)
                } else {
                    whole(&frames)
                }))
            }
            Mode::Translate(t) => {
                let mut out = Vec::new();
                for f in &frames {
                    for ev in t.decoder.feed(f) {
                        if let Some(msg) = observe(&ev, &mut self.usage, &mut self.complete) {
                            // What was already encoded from this chunk still goes out first.
                            return Err((Bytes::from(out), msg));
                        }
                        out.extend(t.encoder.encode(&ev));
                    }
                }
                Ok(Some(Bytes::from(out)))
            }
        }
    }

    /// The upstream reached EOF: final bytes, if any.
    fn close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Mode::Translate(t) = &mut self.mode {
            let events = t.decoder.finish();
            for ev in &events {
                if observe(ev, &mut self.usage, &mut self.complete).is_some() {
                    break;
                }
                out.extend(t.encoder.encode(ev));
            }
            if self.complete {
                out.extend(t.encoder.finish());
            }
            return out;
        }
        // A last event without its blank line was held back: it still counts and is sent.
        if let Some(tail) = self.splitter.finish() {
            let mut tail_chunk = tail.raw.clone();
            tail_chunk.extend_from_slice(b"\n\n");
            if let Ok(Some(bytes)) = self.process(&Bytes::from(tail_chunk)) {
                out.extend_from_slice(&bytes);
            }
        }
        // Complete, or ended by the upstream's own error element: close the array either way.
        if matches!(self.mode, Mode::Gemini { array: true })
            && (self.complete || self.upstream_errored)
        {
            out.extend_from_slice(if self.written || !out.is_empty() {
                b"]"
            } else {
                b"[]"
            });
        }
        out
    }

    /// The client-facing bytes for a failure after the first byte.
    fn error_bytes(&self, message: &str) -> Bytes {
        let err =
            Error::new(ErrorKind::UpstreamUnavailable, message).with_code("upstream_unavailable");
        let element = (self.error_frame)(&err);
        if !self.array {
            // Raw passthrough may have forwarded half an event: end it before ours.
            let forwards_raw = matches!(
                self.mode,
                Mode::OpenAi { strip_usage: false }
                    | Mode::Anthropic
                    | Mode::Gemini { array: false }
            );
            if forwards_raw && !self.splitter.pending().is_empty() {
                let mut out = b"\n\n".to_vec();
                out.extend_from_slice(&element);
                return Bytes::from(out);
            }
            return element;
        }
        let mut out = Vec::with_capacity(element.len() + 4);
        out.extend_from_slice(if self.written { b",\r\n" } else { b"[" });
        out.extend_from_slice(&element);
        out.push(b']');
        Bytes::from(out)
    }

    fn finish(&mut self, end: End) {
        if let Some((meter, mut row, started)) = self.pending.take() {
            if self.usage == Usage::default() {
                // The stream ended before the upstream reported usage (it comes last). Bill
                // what was generated: the input estimate already in the row, and one token per
                // content event, which is how the providers stream.
                row.completion_tokens =
                    i64::try_from(self.events.saturating_sub(1)).unwrap_or(i64::MAX);
                meter.record(with_outcome(row, end, started));
                return;
            }
            row.prompt_tokens = i64::try_from(self.usage.input_tokens).unwrap_or(i64::MAX);
            row.completion_tokens = i64::try_from(self.usage.output_tokens).unwrap_or(i64::MAX);
            row.cache_read_tokens = i64::try_from(self.usage.cache_read_tokens).unwrap_or(i64::MAX);
            row.cache_write_tokens =
                i64::try_from(self.usage.cache_write_tokens).unwrap_or(i64::MAX);
            meter.record(with_outcome(row, end, started));
        }
    }

    fn emit(&mut self, bytes: Bytes) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.written = true;
        Poll::Ready(Some(Ok(bytes)))
    }
}

fn with_outcome(mut row: UsageRecord, end: End, started: Instant) -> UsageRecord {
    end.as_str().clone_into(&mut row.outcome);
    row.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    row
}

/// Tracks usage and completion from a canonical event; returns an upstream error message.
fn observe(ev: &StreamEvent, usage: &mut Usage, complete: &mut bool) -> Option<String> {
    match ev {
        StreamEvent::Usage(u) => *usage = usage.merge(*u),
        StreamEvent::End => *complete = true,
        StreamEvent::Error { message } => return Some(message.clone()),
        _ => {}
    }
    None
}

/// Reads one OpenAI frame; returns whether to forward it in strip mode.
fn inspect_openai(frame: &Frame, usage: &mut Usage, complete: &mut bool, strip: bool) -> bool {
    if frame.data == "[DONE]" {
        *complete = true;
        return true;
    }
    match usage_from_chunk(&frame.data) {
        StreamUsage::None => true,
        StreamUsage::Inline(u) => {
            *usage = u;
            true
        }
        StreamUsage::UsageOnly(u) => {
            *usage = u;
            !strip
        }
    }
}

impl Stream for UsageTap {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => match this.process(&bytes) {
                    Ok(Some(out)) if !out.is_empty() => return this.emit(out),
                    Ok(_) => {}
                    Err((before, upstream_message)) => {
                        this.finished = true;
                        this.finish(End::UpstreamCut);
                        tracing::warn!(
                            upstream_error_len = upstream_message.len(),
                            "upstream reported an error inside the stream"
                        );
                        let mut bytes = before.to_vec();
                        bytes.extend_from_slice(&this.error_bytes(
                            "the upstream provider failed mid-stream; retry the request",
                        ));
                        return this.emit(Bytes::from(bytes));
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.finish(End::UpstreamCut);
                    tracing::warn!(error = %e, "upstream stream failed after the first byte");
                    if this.upstream_errored {
                        // The client already has the upstream's own error event.
                        return Poll::Ready(None);
                    }
                    let bytes =
                        this.error_bytes("the upstream stream was interrupted; retry the request");
                    return this.emit(bytes);
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let mut tail = this.close();
                    if this.complete {
                        this.finish(End::Complete);
                    } else {
                        this.finish(End::UpstreamCut);
                        if !this.upstream_errored {
                            tail.extend_from_slice(&this.error_bytes(
                                "the upstream ended the stream early; retry the request",
                            ));
                        }
                    }
                    if tail.is_empty() {
                        return Poll::Ready(None);
                    }
                    return this.emit(Bytes::from(tail));
                }
            }
        }
    }
}

impl Drop for UsageTap {
    fn drop(&mut self) {
        // Still pending here means the client went away before the stream ended.
        self.finish(End::ClientClosed);
    }
}
