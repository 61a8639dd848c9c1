//! The usage tap: observes a stream's upstream frames and nothing else. It reads usage,
//! notices the stream's proper end and any error the upstream wrote into it, and writes the
//! ledger row exactly once: when the stream ends, fails, or the client goes away (drop).
//!
//! It never changes a byte; what the client receives is the stream stage's business
//! (`gateway::relay`). It holds the admission's concurrency permits until the stream ends.
//!
//! So that the row is durable before the client sees the end, the relay calls
//! [`UsageTap::checkpoint`] after each upstream chunk and before forwarding it: the row is final
//! as soon as the stream's terminal event is observed. Until then the tap journals provisional
//! rows (the first before the stream first waits for the upstream or forwards a byte, then every
//! [`PROGRESS_EVENTS`] events or [`PROGRESS_EVERY`]), so a crash of the gateway mid-stream
//! leaves a row billed for what was delivered up to the last one. The first provisional row is
//! not written at the start but at the first wait ([`UsageTap::before_wait`]) or first forward:
//! no I/O happens in between, so a crash cannot fall there, and a stream whose first read holds
//! its whole answer (short answers, cached ones) writes its final row only, one journal write
//! instead of two.

use anyint_wire::Usage;
use anyint_wire::report::RunReport;
use anyint_wire::sse::Frame;
use anyint_wire::translate::{FrameReport, Kind};
use std::time::Duration;

use tokio::time::Instant;

use super::{Meter, StagedRow};
use crate::policy::limits::Permit;
use crate::store::UsageRecord;

/// A provisional row is journaled after this many events …
pub const PROGRESS_EVENTS: u64 = 64;
/// … or at the first event this long after the last one, whichever comes first. Models stream
/// a token every 10 to 50 ms, so an interval near that journals nearly every event: at 20 ms
/// each event of a stream paced 100 ms apart cost a row serialised and a `write(2)` (about
/// 4 µs, an eighth of the gateway's CPU per event), and a thousand open streams meant tens of
/// thousands of appends a second. A crash under-bills a stream by at most this much of its
/// streaming.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The outcome of a provisional row: the gateway stopped before the stream ended.
const INTERRUPTED: &str = "interrupted";

/// How the stream ended, for the ledger's `outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The upstream ended its stream properly.
    Complete,
    /// The upstream failed, cut, or reported an error mid-stream.
    UpstreamCut,
    /// The client went away first.
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

/// The metering observer of one upstream stream.
pub struct UsageTap {
    kind: Kind,
    usage: Usage,
    complete: bool,
    upstream_errored: bool,
    /// Events received that carry data, for billing a stream cut before its usage report.
    events: u64,
    pending: Option<(Meter, UsageRecord, Instant)>,
    /// Concurrency slots held until the stream ends or the client leaves.
    hold: Vec<Permit>,
    /// What the journal holds of the stream before its final row.
    journaled: Journaled,
}

/// The rows a stream in flight has in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Journaled {
    /// None yet: the first provisional row is written at the first wait or forward.
    Nothing,
    /// A provisional row (`interrupted`), updated as the stream goes: the events counted and
    /// the time when the last one was written.
    Provisional { events: u64, at: Instant },
    /// The stream's end was seen and journaled, but its last frames are still to come
    /// (Gemini: a `finishReason` is per candidate, so only the upstream's EOF is final).
    End,
}

impl UsageTap {
    /// Observes a stream in `kind`'s format. `row` is the ledger row to complete; `started` is
    /// when the request arrived. Nothing is journaled yet: see [`UsageTap::before_wait`].
    pub fn new(kind: Kind, (meter, row, started): (Meter, UsageRecord, Instant)) -> Self {
        Self {
            kind,
            usage: Usage::default(),
            complete: false,
            upstream_errored: false,
            events: 0,
            pending: Some((meter, row, started)),
            hold: Vec::new(),
            journaled: Journaled::Nothing,
        }
    }

    /// The stream is about to wait for the upstream: journals the first provisional row if
    /// none is written yet, so from here on a crash still bills the stream. Cheap when it is.
    pub fn before_wait(&mut self) {
        if self.journaled == Journaled::Nothing && self.pending.is_some() {
            self.provisional();
        }
    }

    /// Holds `permits` for the life of the stream.
    #[must_use]
    pub fn holding(mut self, permits: Vec<Permit>) -> Self {
        self.hold = permits;
        self
    }

    /// Reads one upstream frame; returns what it said.
    pub fn observe(&mut self, frame: &Frame) -> FrameReport {
        let report = self.kind.report(frame);
        self.absorb(
            u64::from(report.content),
            report.usage,
            report.ends,
            report.error,
        );
        report
    }

    /// Reads a run of an OpenAI chat stream's events at once, as [`UsageTap::observe`] reads
    /// them one by one (`anyint_wire::report::openai_run`); only for a tap of that kind.
    pub fn observe_run(&mut self, run: &RunReport) {
        debug_assert_eq!(self.kind, Kind::OpenAi);
        self.absorb(run.content, run.usage, run.ends, run.error);
    }

    /// Takes in what frames said: `content` of them carried part of the answer, the last usage
    /// among them, whether one ended the stream and whether one was an error.
    fn absorb(&mut self, content: u64, usage: Option<Usage>, ends: bool, error: bool) {
        // Frames that close the answer ([DONE], OpenAI's finish chunk, the usage chunk) add
        // no tokens to the estimate a cut stream is billed by.
        self.events += content;
        if let Some(u) = usage {
            // OpenAI chunks and the Responses terminal event carry the total; the others report
            // parts to merge.
            self.usage = match self.kind {
                Kind::OpenAi | Kind::Responses => u,
                Kind::Anthropic | Kind::Gemini => self.usage.merge(u),
            };
        }
        self.complete |= ends;
        self.upstream_errored |= error;
    }

    /// Whether this tap reads an OpenAI chat stream, whose runs [`UsageTap::observe_run`]
    /// takes.
    pub fn reads_openai(&self) -> bool {
        self.kind == Kind::OpenAi
    }

    /// Whether the upstream ended its stream properly.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether the upstream wrote an error event of its own into the stream.
    pub fn upstream_errored(&self) -> bool {
        self.upstream_errored
    }

    /// `row` as billed so far, with `outcome`.
    fn billed(&self, mut row: UsageRecord, started: Instant, outcome: &str) -> UsageRecord {
        if self.usage == Usage::default() {
            // The stream ended before the upstream reported usage (it comes last). Bill what
            // was generated: the input estimate already in the row, and one token per content
            // event, which is how the providers stream.
            row.completion_tokens =
                i64::try_from(self.events.saturating_sub(1)).unwrap_or(i64::MAX);
        } else {
            let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            row.prompt_tokens = tokens(self.usage.input_tokens);
            row.completion_tokens = tokens(self.usage.output_tokens);
            row.cache_read_tokens = tokens(self.usage.cache_read_tokens);
            row.cache_write_tokens = tokens(self.usage.cache_write_tokens);
            row.web_searches = tokens(self.usage.web_searches);
        }
        outcome.clone_into(&mut row.outcome);
        row.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        row
    }

    /// Journals a provisional row with `outcome`.
    fn journal(&self, outcome: &str) {
        if let Some((meter, row, started)) = &self.pending {
            meter.checkpoint(self.billed(row.clone(), *started, outcome));
        }
    }

    /// Called after each upstream chunk is observed and before its bytes go out: makes the
    /// row final once the stream's terminal event is seen, and otherwise journals progress
    /// now and then.
    pub fn checkpoint(&mut self) {
        drop(self.checkpoint_staged());
    }

    /// [`UsageTap::checkpoint`], except that a final row is only staged in the journal: the
    /// caller commits it (or drops it) before the chunk goes out ([`Meter::record_staged`]).
    pub fn checkpoint_staged(&mut self) -> Option<StagedRow> {
        // Nothing to journal once the final row is written.
        self.pending.as_ref()?;
        if self.complete {
            if self.kind == Kind::Gemini {
                if self.journaled != Journaled::End {
                    // This row supersedes any provisional one; no `interrupted` row follows it.
                    self.journaled = Journaled::End;
                    self.journal(End::Complete.as_str());
                }
                return None;
            }
            return self.finish_staged(End::Complete);
        }
        match self.journaled {
            // The stream goes on and its first bytes go out now.
            Journaled::Nothing => self.provisional(),
            Journaled::Provisional { events, at }
                if self.events.saturating_sub(events) >= PROGRESS_EVENTS
                    || at.elapsed() >= PROGRESS_EVERY =>
            {
                self.provisional();
            }
            Journaled::Provisional { .. } | Journaled::End => {}
        }
        None
    }

    /// Journals a provisional row as the stream stands now.
    fn provisional(&mut self) {
        self.journaled = Journaled::Provisional {
            events: self.events,
            at: Instant::now(),
        };
        self.journal(INTERRUPTED);
    }

    /// Writes the ledger row (once; later calls do nothing).
    pub fn finish(&mut self, end: End) {
        drop(self.finish_staged(end));
    }

    /// [`UsageTap::finish`] with the row staged, not yet written: see
    /// [`UsageTap::checkpoint_staged`].
    fn finish_staged(&mut self, end: End) -> Option<StagedRow> {
        let (meter, row, started) = self.pending.take()?;
        // The final row is the pending one itself, not a copy (nine strings).
        Some(meter.record_staged(self.billed(row, started, end.as_str())))
    }
}

impl Drop for UsageTap {
    fn drop(&mut self) {
        // Still pending here means the client went away before the stream ended.
        self.finish(End::ClientClosed);
    }
}
