//! The usage tap: wraps a passthrough SSE stream, reads usage from the events as they pass,
//! and meters the request when the stream ends, fails, or the client goes away.
//!
//! When the client asked for the usage chunk, bytes pass through exactly as the upstream sent
//! them. When it did not, the gateway still asked the upstream for usage, so the tap drops
//! that one usage-only event (whole events only; everything else is forwarded verbatim).

use std::pin::Pin;
use std::task::{Context, Poll};

use anyint_wire::Usage;
use anyint_wire::openai::{StreamUsage, usage_from_chunk};
use anyint_wire::sse::{Frame, SseSplitter};
use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use tokio::time::Instant;

use super::Meter;
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

/// Renders the in-stream error event for the client's family after a mid-stream failure.
pub type ErrorFrame = fn(&crate::error::Error) -> Bytes;

/// A metering wrapper around an upstream byte stream.
pub struct UsageTap {
    inner: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    splitter: SseSplitter,
    strip_usage: bool,
    usage: Usage,
    saw_done: bool,
    pending: Option<(Meter, UsageRecord, Instant)>,
    error_frame: ErrorFrame,
    finished: bool,
}

impl UsageTap {
    /// Wraps `inner`. `row` is the ledger row to complete; `started` is when the request
    /// arrived. With `strip_usage`, the usage-only event is not forwarded.
    pub fn new(
        inner: BoxStream<'static, Result<Bytes, reqwest::Error>>,
        strip_usage: bool,
        meter: Meter,
        row: UsageRecord,
        started: Instant,
        error_frame: ErrorFrame,
    ) -> Self {
        Self {
            inner,
            splitter: SseSplitter::new(),
            strip_usage,
            usage: Usage::default(),
            saw_done: false,
            pending: Some((meter, row, started)),
            error_frame,
            finished: false,
        }
    }

    /// Reads one event; returns whether to forward it.
    fn inspect(&mut self, frame: &Frame) -> bool {
        if frame.data == "[DONE]" {
            self.saw_done = true;
            return true;
        }
        match usage_from_chunk(&frame.data) {
            StreamUsage::None => true,
            StreamUsage::Inline(u) => {
                self.usage = u;
                true
            }
            StreamUsage::UsageOnly(u) => {
                self.usage = u;
                !self.strip_usage
            }
        }
    }

    fn finish(&mut self, end: End) {
        if let Some((meter, mut row, started)) = self.pending.take() {
            row.prompt_tokens = i64::try_from(self.usage.input_tokens).unwrap_or(i64::MAX);
            row.completion_tokens = i64::try_from(self.usage.output_tokens).unwrap_or(i64::MAX);
            row.cache_read_tokens = i64::try_from(self.usage.cache_read_tokens).unwrap_or(i64::MAX);
            row.cache_write_tokens =
                i64::try_from(self.usage.cache_write_tokens).unwrap_or(i64::MAX);
            end.as_str().clone_into(&mut row.outcome);
            row.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            meter.record(row);
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
                Poll::Ready(Some(Ok(bytes))) => {
                    let frames = this.splitter.push(&bytes);
                    if !this.strip_usage {
                        for f in &frames {
                            this.inspect(f);
                        }
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    let mut out = Vec::with_capacity(bytes.len());
                    for f in &frames {
                        if this.inspect(f) {
                            out.extend_from_slice(&f.raw);
                        }
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Bytes::from(out))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.finish(End::UpstreamCut);
                    tracing::warn!(error = %crate::providers::http::describe(&e), "upstream stream failed after the first byte");
                    let err = crate::error::Error::new(
                        crate::error::ErrorKind::UpstreamUnavailable,
                        "the upstream stream was interrupted; retry the request",
                    )
                    .with_code("upstream_unavailable");
                    return Poll::Ready(Some(Ok((this.error_frame)(&err))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let tail = this.splitter.finish();
                    let end = if this.saw_done {
                        End::Complete
                    } else {
                        End::UpstreamCut
                    };
                    this.finish(end);
                    if end == End::UpstreamCut {
                        let err = crate::error::Error::new(
                            crate::error::ErrorKind::UpstreamUnavailable,
                            "the upstream ended the stream early; retry the request",
                        )
                        .with_code("upstream_unavailable");
                        return Poll::Ready(Some(Ok((this.error_frame)(&err))));
                    }
                    // In strip mode a trailing event without its blank line was held back.
                    if this.strip_usage
                        && let Some(f) = tail
                    {
                        return Poll::Ready(Some(Ok(Bytes::from(f.raw))));
                    }
                    return Poll::Ready(None);
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
