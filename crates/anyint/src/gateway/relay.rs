//! The one stream path, from the upstream's bytes to the client's:
//!
//! ```text
//! upstream chunks ─▶ SSE frames ─▶ usage tap (observes) ─▶ stage (client bytes) ─▶ client
//! ```
//!
//! The [`UsageTap`] reads every upstream frame and writes the ledger row (durably, before the
//! chunk holding the stream's terminal event goes out); the [`Stage`] decides what the client
//! receives. Passthrough stages forward whole events, untouched: when a chunk is exactly whole
//! events (the common case) it goes out as it came, without a copy, and an OpenAI chunk of
//! one-line `data:` events is metered without being split into frames at all
//! ([`anyint_wire::report::openai_run`]). Two passthrough stages drop or re-frame whole events
//! and never re-encode one: an OpenAI client that did not ask for the usage chunk does not get
//! it (the gateway asked the upstream for it so it can meter), and a Gemini client that asked
//! for the JSON-array stream gets the upstream's SSE events as array elements. The translating
//! stage is `anyint-wire`'s [`Translator`]. A failure after the first byte ends the client's
//! stream with the family's error event, never silently.

use std::pin::Pin;
use std::task::{Context, Poll};

use anyint_wire::sse::{Frame, SseSplitter};
use anyint_wire::translate::Translator;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};

use crate::error::{Error, ErrorKind};
use crate::meter::tap::{End, UsageTap};
use crate::meter::{Durable, StagedRow};
use crate::providers::http::UpstreamStream;

/// Renders the client family's in-stream error (for JSON-array streams: the bare element).
pub type ErrorFrame = fn(&Error) -> Bytes;

/// Keeps a Responses API response (`store: true`): given the final Response object, it
/// writes it to the store. The relay holds the stream's last events until the write is done,
/// so a follow-up with `previous_response_id` finds it, on any instance.
pub type Keeper = Box<dyn FnOnce(serde_json::Value) -> BoxFuture<'static, ()> + Send>;

/// What the client receives for the upstream's events.
pub enum Stage {
    /// Same family: the upstream's events as they are.
    Forward,
    /// OpenAI passthrough for a client that did not ask for the usage chunk: all events but
    /// that one.
    StripUsage,
    /// Gemini passthrough for a JSON-array client: each SSE event's data as an array element.
    JsonArray,
    /// Another family: decode, translate, encode.
    Translate(Box<Translator>),
}

/// A client stream relayed from an upstream stream.
pub struct Relay {
    inner: UpstreamStream,
    splitter: SseSplitter,
    stage: Stage,
    tap: UsageTap,
    /// Whether the client reads a JSON array (Gemini without `alt=sse`), however produced.
    array: bool,
    error_frame: ErrorFrame,
    written: bool,
    finished: bool,
    /// Stores the final response before the client sees the stream end.
    keeper: Option<Keeper>,
    /// The final response, once the stage has produced it and before the keeper has it.
    final_response: Option<serde_json::Value>,
    /// The keeper's write in progress, and the bytes held back until it is done.
    saving: Option<(BoxFuture<'static, ()>, Bytes)>,
    /// A Responses client on passthrough: where the upstream's events stand, so a failure the
    /// gateway adds continues their sequence.
    responses: Option<ResponsesProgress>,
    /// The stream's final row, staged in the journal by the chunk just read and written
    /// before that chunk goes out.
    final_row: Option<StagedRow>,
    /// That chunk, held while the row stands aside for the other streams ready on this
    /// thread to stage theirs, so that one journal write carries them all.
    committing: Option<(Durable, Bytes)>,
}

/// How far a passed-through Responses stream got: the next `sequence_number` and the Response
/// object `response.created` announced.
#[derive(Default)]
struct ResponsesProgress {
    next_sequence: u64,
    /// The `response.created` event's data, parsed only if the gateway must fail the stream.
    created: Option<String>,
}

impl ResponsesProgress {
    /// Follows one chunk's frames: `response.created` once, and the sequence number of the
    /// chunk's last event (numbers rise by one per event, so the last one is all that counts).
    fn observe(&mut self, frames: &[Frame]) {
        if self.created.is_none()
            && let Some(f) = frames
                .iter()
                .find(|f| f.event.as_deref() == Some("response.created"))
        {
            self.created = Some(f.data.clone());
        }
        if let Some(n) = frames.iter().rev().find_map(|f| sequence_number(&f.data)) {
            self.next_sequence = n.saturating_add(1);
        }
    }
}

/// The `sequence_number` of a Responses event, read without parsing the whole event (deltas
/// are the common case and can be long).
fn sequence_number(data: &str) -> Option<u64> {
    const KEY: &str = "\"sequence_number\":";
    let at = data.find(KEY)? + KEY.len();
    let rest = data.get(at..)?.trim_start();
    let end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

impl Relay {
    /// Relays `inner` through `stage`, metered by `tap`. `array` says the client reads a JSON
    /// array stream; `error_frame` renders its family's in-stream error.
    pub fn new(
        inner: UpstreamStream,
        stage: Stage,
        tap: UsageTap,
        array: bool,
        error_frame: ErrorFrame,
    ) -> Self {
        Self {
            inner,
            splitter: SseSplitter::new(),
            stage,
            tap,
            array,
            error_frame,
            written: false,
            finished: false,
            keeper: None,
            final_response: None,
            saving: None,
            responses: None,
            final_row: None,
            committing: None,
        }
    }

    /// The client speaks the Responses API: on passthrough, follow the upstream's event
    /// sequence so the gateway's own failure events continue it.
    #[must_use]
    pub fn responses_client(mut self) -> Self {
        if matches!(self.stage, Stage::Forward) {
            self.responses = Some(ResponsesProgress::default());
        }
        self
    }

    /// Stores the final response with `keeper` before the stream's last events go out.
    #[must_use]
    pub fn keeping(mut self, keeper: Keeper) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// Notes the final Responses API object a passthrough stream carries in its terminal event.
    fn note_final(&mut self, frames: &[Frame]) {
        if self.keeper.is_none() || self.final_response.is_some() {
            return;
        }
        let terminal = frames.iter().find(|f| {
            matches!(
                f.event.as_deref(),
                Some("response.completed" | "response.incomplete")
            )
        });
        if let Some(f) = terminal
            && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&f.data)
            && let Some(resp) = v.get_mut("response")
        {
            self.final_response = Some(resp.take());
        }
    }

    /// Emits `bytes`, or holds them while the keeper stores a final response found with them.
    fn emit_or_hold(
        &mut self,
        bytes: Bytes,
    ) -> Option<Poll<Option<Result<Bytes, std::io::Error>>>> {
        if self.final_response.is_some()
            && let (Some(resp), Some(keeper)) = (self.final_response.take(), self.keeper.take())
        {
            self.saving = Some((keeper(resp), bytes));
            return None;
        }
        if bytes.is_empty() {
            return None;
        }
        Some(self.emit(bytes))
    }

    /// Whether an error event is already on its way to the client from the upstream itself
    /// (passthrough), so the relay must not add a second one.
    fn upstream_wrote_error(&self) -> bool {
        !matches!(self.stage, Stage::Translate(_)) && self.tap.upstream_errored()
    }

    /// The relay's first item when the upstream's first bytes are here already (they are once
    /// `Provider::exchange` returns), read before the answer's head goes out: a stream whose
    /// first chunk ends it stages its final row there and stands aside for one turn, so that
    /// the streams ending on this thread share the journal write, and the head and the chunk
    /// still leave in one write (a body whose first poll stands aside made hyper send the head
    /// alone). `Pending` when nothing is ready yet.
    pub async fn first_ready(&mut self) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        std::future::poll_fn(|cx| match self.poll_next_unpin(cx) {
            Poll::Ready(item) => Poll::Ready(Poll::Ready(item)),
            // Standing aside: it woke itself, and its next poll writes the row.
            Poll::Pending if self.committing.is_some() => Poll::Pending,
            Poll::Pending => Poll::Ready(Poll::Pending),
        })
        .await
    }

    /// Meters and forwards an OpenAI passthrough chunk that is whole one-line `data:` events
    /// (how OpenAI-compatible upstreams write) in one pass over its bytes, without splitting it
    /// into frames: decoding and copying each event's data was most of a stream's cost in the
    /// gateway. `None`, with nothing observed, for any other chunk or stage.
    fn process_run(&mut self, chunk: &Bytes) -> Option<Bytes> {
        let strip = match self.stage {
            Stage::Forward => false,
            Stage::StripUsage => true,
            Stage::JsonArray | Stage::Translate(_) => return None,
        };
        if !self.tap.reads_openai()
            || self.keeper.is_some()
            || self.responses.is_some()
            || !self.splitter.pending().is_empty()
        {
            return None;
        }
        let run = anyint_wire::report::openai_run(chunk)?;
        self.tap.observe_run(&run);
        // Before any of these bytes go out: the row is final once the end is seen.
        self.final_row = self.tap.checkpoint_staged();
        if !strip || run.usage_only.is_empty() {
            return Some(chunk.clone());
        }
        let mut out = Vec::with_capacity(chunk.len());
        let mut from = 0;
        for event in &run.usage_only {
            out.extend_from_slice(chunk.get(from..event.start).unwrap_or_default());
            from = event.end;
        }
        out.extend_from_slice(chunk.get(from..).unwrap_or_default());
        Some(Bytes::from(out))
    }

    /// Handles the frames of one upstream chunk; returns the bytes for the client, or an error
    /// when the upstream reported one inside a translated stream.
    fn process(&mut self, chunk: &Bytes) -> Result<Bytes, (Bytes, String)> {
        if let Some(bytes) = self.process_run(chunk) {
            return Ok(bytes);
        }
        let pending_before = self.splitter.pending().len();
        let frames = self.splitter.push_bytes(chunk);
        let reports: Vec<_> = frames.iter().map(|f| self.tap.observe(f)).collect();
        // Before any of these bytes go out: the row is final once the end is seen.
        self.final_row = self.tap.checkpoint_staged();
        // Passthrough forwards whole events only, so a cut mid-event never leaves half an
        // event before the error event.
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
        if matches!(self.stage, Stage::Forward) {
            self.note_final(&frames);
            if let Some(progress) = self.responses.as_mut() {
                progress.observe(&frames);
            }
        }
        match &mut self.stage {
            Stage::Forward => Ok(whole(&frames)),
            Stage::StripUsage => {
                // Sized once: everything but one usage event goes out, and growing by doubling
                // copied a chunk of twenty events several times over.
                let mut out = Vec::with_capacity(chunk.len());
                for (f, r) in frames.iter().zip(&reports) {
                    if !r.usage_only {
                        out.extend_from_slice(&f.raw);
                    }
                }
                Ok(Bytes::from(out))
            }
            Stage::JsonArray => {
                let mut out = Vec::with_capacity(chunk.len() + 2);
                for f in &frames {
                    if !f.data.trim().is_empty() {
                        out.extend_from_slice(if self.written || !out.is_empty() {
                            b",\r\n"
                        } else {
                            b"["
                        });
                        out.extend_from_slice(f.data.as_bytes());
                    }
                }
                Ok(Bytes::from(out))
            }
            Stage::Translate(t) => {
                // A translated event is about as long as the upstream's: one allocation, not
                // one growth per event.
                let mut out = Vec::with_capacity(chunk.len() + 256);
                for f in &frames {
                    if let Err(msg) = t.feed(f, &mut out) {
                        // What was already encoded from this chunk still goes out first.
                        return Err((Bytes::from(out), msg));
                    }
                }
                if self.keeper.is_some() && self.final_response.is_none() {
                    self.final_response = t.response().cloned();
                }
                Ok(Bytes::from(out))
            }
        }
    }

    /// The upstream reached EOF: final bytes, if any.
    fn close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Stage::Translate(t) = &mut self.stage {
            t.finish(&mut out);
            if self.keeper.is_some() && self.final_response.is_none() {
                self.final_response = t.response().cloned();
            }
            return out;
        }
        // A last event without its blank line was held back: it still counts and is sent.
        if let Some(tail) = self.splitter.finish() {
            let mut tail_chunk = tail.raw.to_vec();
            tail_chunk.extend_from_slice(b"\n\n");
            if let Ok(bytes) = self.process(&Bytes::from(tail_chunk)) {
                out.extend_from_slice(&bytes);
            }
        }
        // Complete, or ended by the upstream's own error element: close the array either way.
        if matches!(self.stage, Stage::JsonArray)
            && (self.tap.is_complete() || self.tap.upstream_errored())
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
    fn error_bytes(&mut self, message: &str) -> Bytes {
        // Responses clients: the `error` event and `response.failed`, continuing the sequence.
        if let Stage::Translate(t) = &mut self.stage
            && let Some(events) = t.fail("server_error", message)
        {
            return Bytes::from(events);
        }
        if let Some(progress) = &self.responses {
            // The upstream may have sent half an event: end it before ours.
            let mut out = if self.splitter.pending().is_empty() {
                Vec::new()
            } else {
                b"\n\n".to_vec()
            };
            let created = progress
                .created
                .as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .and_then(|mut v| v.get_mut("response").map(serde_json::Value::take));
            out.extend(anyint_wire::responses::failure_events(
                progress.next_sequence,
                created.as_ref(),
                "server_error",
                message,
            ));
            return Bytes::from(out);
        }
        let err =
            Error::new(ErrorKind::UpstreamUnavailable, message).with_code("upstream_unavailable");
        let element = (self.error_frame)(&err);
        if !self.array {
            // Raw passthrough may have forwarded half an event: end it before ours.
            if matches!(self.stage, Stage::Forward) && !self.splitter.pending().is_empty() {
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

    fn emit(&mut self, bytes: Bytes) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.written = true;
        Poll::Ready(Some(Ok(bytes)))
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.poll_relay(cx);
        // Whatever goes out now (bytes or the end), a final row staged on the way is written
        // first: the client never sees a stream's end before its row is in the journal.
        if polled.is_ready()
            && let Some(row) = this.final_row.take()
        {
            row.commit();
        }
        polled
    }
}

impl Relay {
    /// The relay's poll; [`Stream::poll_next`] writes a staged final row before what this
    /// returns goes out.
    fn poll_relay(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let this = self;
        if let Some((row, _)) = this.committing.as_mut() {
            if Pin::new(row).poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some((_, held)) = this.committing.take() {
                return this.emit(held);
            }
        }
        if let Some((saving, _)) = this.saving.as_mut() {
            if saving.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some((_, held)) = this.saving.take()
                && !held.is_empty()
            {
                return this.emit(held);
            }
        }
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => {
                    // Before the first wait the stream's provisional row goes to the journal.
                    this.tap.before_wait();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(bytes))) => match this.process(&bytes) {
                    Ok(out) => {
                        if let Some(row) = this.final_row.take() {
                            if row.is_pending() && this.keeper.is_none() && !out.is_empty() {
                                // The row's first poll stands aside: the streams ready after
                                // this one stage their rows, and the first write carries all.
                                this.committing = Some((row.durable(), out));
                                return this.poll_relay(cx);
                            }
                            row.commit();
                        }
                        if let Some(ready) = this.emit_or_hold(out) {
                            return ready;
                        }
                        if this.saving.is_some() {
                            return this.poll_next_unpin(cx);
                        }
                    }
                    Err((before, upstream_message)) => {
                        this.finished = true;
                        this.tap.finish(End::UpstreamCut);
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
                    this.tap.finish(End::UpstreamCut);
                    tracing::warn!(error = %e, "upstream stream failed after the first byte");
                    if this.upstream_wrote_error() {
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
                    let complete = match &this.stage {
                        Stage::Translate(t) => t.is_complete(),
                        _ => this.tap.is_complete(),
                    };
                    if complete {
                        this.tap.finish(End::Complete);
                    } else {
                        this.tap.finish(End::UpstreamCut);
                        if !this.upstream_wrote_error() {
                            tail.extend_from_slice(&this.error_bytes(
                                "the upstream ended the stream early; retry the request",
                            ));
                        }
                    }
                    if let Some(ready) = this.emit_or_hold(Bytes::from(tail)) {
                        return ready;
                    }
                    if this.saving.is_some() {
                        return this.poll_next_unpin(cx);
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::tests::{journal_lines, journaled_meter, openai_tap};
    use crate::providers::http::StreamFailure;

    /// The chunk that ends a stream is held for one poll and goes out only once the stream's
    /// row is in the journal; the streams that end meanwhile on the thread share that write,
    /// and a relay dropped while it holds its end writes the row as it goes.
    #[tokio::test]
    async fn a_stream_end_goes_out_after_its_row_is_written_and_shares_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, jdir, meter, task) = journaled_meter(dir.path()).await;
        let answer: &'static [u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n";
        let relay = |id: &str| {
            let upstream =
                futures_util::stream::iter([Ok::<_, StreamFailure>(Bytes::from_static(answer))]);
            Relay::new(
                upstream.boxed(),
                Stage::Forward,
                openai_tap(&meter, id),
                false,
                |_| Bytes::new(),
            )
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut first = relay("req_r1");
        let mut second = relay("req_r2");
        assert!(first.poll_next_unpin(&mut cx).is_pending());
        assert!(second.poll_next_unpin(&mut cx).is_pending());
        assert!(
            journal_lines(&jdir, "req_r1").is_empty(),
            "staged while the end is held"
        );
        let Poll::Ready(Some(Ok(out))) = first.poll_next_unpin(&mut cx) else {
            panic!("the held end goes out on the next poll");
        };
        assert_eq!(out, answer);
        assert_eq!(journal_lines(&jdir, "req_r1").len(), 1);
        assert_eq!(
            journal_lines(&jdir, "req_r2").len(),
            1,
            "written with the first"
        );
        assert!(matches!(
            second.poll_next_unpin(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(matches!(second.poll_next_unpin(&mut cx), Poll::Ready(None)));

        let mut third = relay("req_r3");
        assert!(third.poll_next_unpin(&mut cx).is_pending());
        drop(third);
        assert_eq!(journal_lines(&jdir, "req_r3").len(), 1);

        // Read before the head: the answer's chunk comes back with its row written, both
        // streams' rows in the journal once either is done.
        let (mut fourth, mut fifth) = (relay("req_r4"), relay("req_r5"));
        let (a, b) = tokio::join!(fourth.first_ready(), fifth.first_ready());
        assert!(matches!(a, Poll::Ready(Some(Ok(ref out))) if out == answer));
        assert!(matches!(b, Poll::Ready(Some(Ok(_)))));
        assert_eq!(journal_lines(&jdir, "req_r4").len(), 1);
        assert_eq!(journal_lines(&jdir, "req_r5").len(), 1);
        // Nothing ready yet: the relay is left for the body to poll.
        let mut waiting = Relay::new(
            futures_util::stream::pending().boxed(),
            Stage::Forward,
            openai_tap(&meter, "req_r6"),
            false,
            |_| Bytes::new(),
        );
        assert!(waiting.first_ready().await.is_pending());
        task.shutdown().await;
    }
}
