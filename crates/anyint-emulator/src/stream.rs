//! Turns a finished list of stream events into a streaming response body,
//! applying the stream faults: `chunk_delay_ms` between events, `cut_after`
//! (abort the connection after N events) and `error_after` (replace the rest
//! with a family-specific error event). Knows no wire format: callers render
//! every event, this module only paces and cuts them. Streams of tagged
//! requests also report how they ended (completed, cut on purpose, or
//! dropped early because the peer went away) to the tag's
//! [`StreamCounts`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, stream};

use crate::fault::Fault;
use crate::state::{State, StreamCounts};

/// Pause before a `cut_after` abort so sent chunks reach the socket first.
const CUT_FLUSH_PAUSE: Duration = Duration::from_millis(5);

/// One stream, ready to send.
pub(crate) struct StreamBody {
    /// Every event in order, without the terminator.
    pub(crate) events: Vec<Bytes>,
    /// Sent after the events unless the stream is cut (`[DONE]`, `]`).
    pub(crate) end: Option<Bytes>,
    /// `Content-Type` of the body.
    pub(crate) content_type: &'static str,
}

impl StreamBody {
    /// Applies `error_after=N`: keeps N events, then the events `error`
    /// renders (given N), then `error_end` instead of the usual terminator.
    pub(crate) fn with_error_after(
        mut self,
        fault: &Fault,
        error: impl FnOnce(usize) -> Vec<Bytes>,
        error_end: Option<Bytes>,
    ) -> Self {
        if let Some(n) = fault.error_after {
            self.events.truncate(n);
            let kept = self.events.len();
            self.events.extend(error(kept));
            self.end = error_end;
        }
        self
    }

    /// The streaming response, honouring `chunk_delay_ms` and `cut_after`
    /// (which drops the terminator and ends the body with an error so the
    /// server aborts the connection). With a `tag`, the stream is counted
    /// as started now and reports its end to `state`.
    pub(crate) fn into_response(self, fault: &Fault, state: &State) -> Response {
        let Self {
            mut events,
            end,
            content_type,
        } = self;
        let delay = fault
            .chunk_delay_ms
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        let outcome = fault.tag.as_deref().map(|tag| Outcome {
            counts: state.stream_started(tag),
            finished: false,
        });
        let deliberate_end = fault.error_after.is_some();
        let abort = if let Some(n) = fault.cut_after {
            events.truncate(n);
            true
        } else {
            events.extend(end);
            false
        };
        let body = stream::iter(events.into_iter().enumerate())
            .then(move |(i, event)| async move {
                if let Some(d) = delay.filter(|_| i > 0) {
                    tokio::time::sleep(d).await;
                }
                Ok::<_, io::Error>(event)
            })
            .chain(stream::iter(abort.then_some(())).then(|()| async {
                // Return Pending once so hyper flushes the head and the chunks
                // already sent; erroring straight away would drop them unsent.
                tokio::task::yield_now().await;
                tokio::time::sleep(CUT_FLUSH_PAUSE).await;
                Err::<Bytes, _>(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "emulator fault: cut_after",
                ))
            }));
        let body = Tracked {
            inner: body.boxed(),
            outcome,
            deliberate_end,
        };
        let mut resp = Body::from_stream(body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }
}

/// How one tagged stream ended. Dropped before [`Outcome::finish`] ran, the
/// body was abandoned mid-stream (the server drops a response body only
/// when its connection is gone), which counts as `aborted`.
struct Outcome {
    counts: Arc<StreamCounts>,
    /// Set once the stream reached its own end (normal or deliberate).
    finished: bool,
}

impl Outcome {
    fn finish(&mut self, counter: fn(&StreamCounts) -> &AtomicU64) {
        if !self.finished {
            self.finished = true;
            counter(&self.counts).fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.finished {
            self.counts.aborted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The body stream with its (optional) [`Outcome`] guard: the last event
/// handed over marks it completed, or cut when the end was a `cut_after`
/// error or an `error_after` stream's end.
struct Tracked {
    inner: BoxStream<'static, io::Result<Bytes>>,
    outcome: Option<Outcome>,
    /// `error_after`: reaching the end is a deliberate cut, not a completion.
    deliberate_end: bool,
}

impl Stream for Tracked {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.inner.poll_next_unpin(cx));
        let ended: Option<fn(&StreamCounts) -> &AtomicU64> = match &item {
            Some(Ok(_)) => None,
            Some(Err(_)) => Some(|c| &c.cut),
            None if self.deliberate_end => Some(|c| &c.cut),
            None => Some(|c| &c.completed),
        };
        if let (Some(counter), Some(outcome)) = (ended, self.outcome.as_mut()) {
            outcome.finish(counter);
        }
        Poll::Ready(item)
    }
}
