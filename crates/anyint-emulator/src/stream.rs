//! Turns a finished list of stream events into a streaming response body,
//! applying the stream faults: `chunk_delay_ms` between events, `cut_after`
//! (abort the connection after N events) and `error_after` (replace the rest
//! with a family-specific error event). Knows no wire format: callers render
//! every event, this module only paces and cuts them.

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

use crate::fault::Fault;

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
    /// server aborts the connection).
    pub(crate) fn into_response(self, fault: &Fault) -> Response {
        let Self {
            mut events,
            end,
            content_type,
        } = self;
        let delay = fault
            .chunk_delay_ms
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
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
        let mut resp = Body::from_stream(body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }
}
