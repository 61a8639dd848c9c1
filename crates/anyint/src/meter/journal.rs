//! The usage journal: every ledger row is appended to a local file before its response ends,
//! so a crash of the process (the kernel keeps what was written) cannot lose it. An entry is
//! staged under a lock (its byte range taken, its bytes added to the segment's staged bytes)
//! and committed before the response ends: the first commit to run writes every entry staged
//! so far with one `pwrite` after letting go of the lock, so the requests a serving thread
//! finishes together cost one write, and the serving threads' writes run side by side. A
//! commit whose entry another thread is writing writes its own line again (the same bytes at
//! the same place) rather than wait for that thread. A range a crash left unwritten reads as
//! zeros, which reading skips. The same staging also queues the row in memory (up to
//! [`QUEUE_ROWS`]), and the meter's writer takes its rows from there, so the file is read back
//! only for what overflowed the queue (a store far behind), at rotation, and after a crash.
//! The writer rotates the file once its rows are committed; at start-up the journals of
//! instances that died are replayed.
//!
//! Files, in `[meter] journal_dir`: `usage-<instance>.lock` (held locked by the live instance,
//! so a starting one never replays a live sibling's journal) and its segments
//! `usage-<instance>-<seq>.journal`. Each segment is JSON lines: a header, then one entry per
//! row, either final (the row as it goes to the store) or provisional (a stream in flight,
//! billed for what was delivered so far; a later entry of the same request supersedes it).
//! Rows are keyed by request ID and the store skips IDs it holds, so a replay never counts
//! twice.

use foldhash::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::config::Fsync;
use crate::error::Error;
use crate::store::{Store, UsageRecord};

/// A segment is rotated once the writer has read this far into it.
pub(super) const ROTATE_BYTES: u64 = 16 << 20;
/// Bytes the writer reads from a segment at once.
const READ_CHUNK: usize = 1 << 20;
/// Most entries waiting in memory for the writer. Past it, entries are only in the file until
/// the writer reads them from there: memory stays bounded however far the store falls behind.
pub(super) const QUEUE_ROWS: usize = 16_384;
const LOCK_SUFFIX: &str = ".lock";
const SEGMENT_SUFFIX: &str = ".journal";
const PREFIX: &str = "usage-";

/// Writes one entry's line, without its newline: `{"final":…,"row":{…}}`, the row as serde
/// writes a [`UsageRecord`] (a test holds the two equal). By hand
/// because it runs for every request: the keys are literals here, and escaping each one again
/// was a third of an append's work.
fn write_entry(out: &mut Vec<u8>, is_final: bool, r: &UsageRecord) {
    fn text(out: &mut Vec<u8>, key: &str, value: &str) {
        out.extend_from_slice(key.as_bytes());
        anyint_wire::json::write_json_string(out, value);
    }
    fn int(out: &mut Vec<u8>, key: &str, value: i64) {
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }
    out.extend_from_slice(if is_final {
        b"{\"final\":true,\"row\":{"
    } else {
        b"{\"final\":false,\"row\":{"
    });
    text(out, "\"request_id\":", &r.request_id);
    text(out, ",\"key_id\":", &r.key_id);
    text(out, ",\"account\":", &r.account);
    text(out, ",\"model\":", &r.model);
    text(out, ",\"provider\":", &r.provider);
    text(out, ",\"upstream_model\":", &r.upstream_model);
    text(out, ",\"family\":", &r.family);
    out.extend_from_slice(if r.stream {
        b",\"stream\":true"
    } else {
        b",\"stream\":false"
    });
    int(out, ",\"prompt_tokens\":", r.prompt_tokens);
    int(out, ",\"completion_tokens\":", r.completion_tokens);
    int(out, ",\"cache_read_tokens\":", r.cache_read_tokens);
    int(out, ",\"cache_write_tokens\":", r.cache_write_tokens);
    int(out, ",\"web_searches\":", r.web_searches);
    int(out, ",\"status\":", r.status);
    text(out, ",\"outcome\":", &r.outcome);
    int(out, ",\"latency_ms\":", r.latency_ms);
    int(out, ",\"created_at_ms\":", r.created_at_ms);
    int(out, ",\"cost_micros\":", r.cost_micros);
    match &r.team {
        Some(team) => text(out, ",\"team\":", team),
        None => out.extend_from_slice(b",\"team\":null"),
    }
    out.extend_from_slice(b"}}");
}

/// Bytes reserved for one entry's line: a typical row is 400 to 500 bytes.
const LINE_CAPACITY: usize = 640;

/// One line of a segment as read: a header (no `row`) or an entry.
#[derive(Deserialize)]
struct EntryIn {
    #[serde(rename = "final", default)]
    is_final: bool,
    row: Option<UsageRecord>,
}

/// An entry read back.
pub(super) struct Entry {
    pub(super) is_final: bool,
    pub(super) row: UsageRecord,
    /// The line as written, to carry a provisional entry into the next segment.
    pub(super) line: Vec<u8>,
}

/// A segment being appended to, and what of it the writer has not taken yet.
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Shared so that a disk flush runs outside the lock, beside appends.
    file: Arc<File>,
    /// Bytes in the segment.
    len: u64,
    /// Final rows appended since the writer last took, in file order.
    queue: Vec<UsageRecord>,
    /// Streams in flight since the writer last took: request ID → its latest provisional
    /// line (a stream journals one every few events; only the latest matters, and each stream
    /// keeps one line here however long it runs).
    progress: HashMap<String, Vec<u8>>,
    /// Where `queue`'s last entry ends; entries from here to `len` overflowed the queue and
    /// are only in the file.
    queued_to: u64,
    /// Staged entries no commit has taken yet: the bytes from `pending_at` to `len`.
    pending: Vec<u8>,
    pending_at: u64,
    /// The last buffer a commit wrote, kept for its capacity.
    spare: Vec<u8>,
    /// Commits writing what they took, outside the lock.
    flying: u32,
    /// Every byte before this is in the file (when no write failed in this segment).
    durable_to: u64,
    /// A write failed: `durable_to` no longer moves, and each commit makes sure of its own
    /// entry.
    lost: bool,
    /// The ranges the last commits wrote, for entries that went out with another's write.
    written: [(u64, u64); WRITTEN_RANGES],
    written_next: usize,
}

/// Ranges remembered as written; an entry whose range is not among them (nor below
/// `durable_to`) writes its own line again, which costs a write but is never wrong.
const WRITTEN_RANGES: usize = 8;

/// An entry staged by [`Journal::stage`]: its segment, its place, and its line, to write it
/// again when another thread is writing it.
pub(super) struct Ticket {
    seq: u64,
    at: u64,
    line: Vec<u8>,
}

/// What [`Journal::stage`] did with an entry.
pub(super) enum Staged {
    /// Staged and queued; [`Journal::commit`] puts it in the file.
    Ticket(Ticket),
    /// Past the queue's bound, so written at once (the writer reads it back from the file):
    /// `None`, or the row (boxed: a rare failure) when the write failed and the caller must
    /// keep it.
    Written(Option<Box<UsageRecord>>),
}

/// What the writer takes from the journal at once: the streams' latest provisional lines,
/// the queued final rows (no stream's provisional line comes after its final one), then the
/// file range holding what overflowed the queue (empty when nothing did).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) progress: HashMap<String, Vec<u8>>,
    pub(super) rows: Vec<UsageRecord>,
    pub(super) spilled: Option<Tail>,
    /// The segment's length when taken (the writer rotates a long segment).
    pub(super) segment_len: u64,
}

/// The journal of this instance: the hot path's handle.
pub struct Journal {
    dir: PathBuf,
    instance: String,
    fsync: Fsync,
    /// The open segment; `None` once the meter has stopped. A mutex, not a read lock: the
    /// write and the queue push happen under it together, so the queue is in file order and
    /// the overflow is one range at its end.
    current: Mutex<Option<Segment>>,
    /// Held for the life of the instance.
    _lock: File,
    /// The last append failed (the row went to memory instead); `/readyz` reports it.
    broken: AtomicBool,
    /// What failed, for `/readyz` and the log.
    last_error: Mutex<Option<String>>,
    /// Most entries queued in memory ([`QUEUE_ROWS`]; smaller in tests).
    queue_rows: usize,
}

/// Why a journal path cannot be used, naming it.
fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::internal(format!(
        "usage journal: cannot {what} {}: {e}; the gateway does not run without a writable \
         journal (set [meter] journal_dir to a writable directory)",
        path.display()
    ))
}

impl Journal {
    /// Opens the journal of `instance` in `dir`: creates the directory, takes the instance's
    /// lock and writes the first segment's header. Any failure is an error naming the path.
    pub fn open(dir: &Path, instance: &str, fsync: Fsync) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create the directory", dir, &e))?;
        let lock_path = dir.join(format!("{PREFIX}{instance}{LOCK_SUFFIX}"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("create", &lock_path, &e))?;
        try_lock(&lock)
            .map_err(|e| io_error("lock", &lock_path, &std::io::Error::other(e.to_string())))?;
        let segment = create_segment(dir, instance, 0, fsync)?;
        Ok(Self {
            dir: dir.to_owned(),
            instance: instance.to_owned(),
            fsync,
            current: Mutex::new(Some(segment)),
            _lock: lock,
            broken: AtomicBool::new(false),
            last_error: Mutex::new(None),
            queue_rows: QUEUE_ROWS,
        })
    }

    /// Appends one entry and queues it for the writer: [`Journal::stage`] then
    /// [`Journal::commit`]. Returns the row when the writer will not get it (the caller keeps
    /// it elsewhere): the append failed and the row had overflowed the queue. Any failure marks
    /// the journal broken (the next successful append clears it); a queued row whose write or
    /// disk flush failed is not returned, as the writer takes it from the queue.
    #[must_use = "a returned row is not journaled and must be kept"]
    pub(super) fn append(&self, is_final: bool, row: UsageRecord) -> Option<UsageRecord> {
        match self.stage(is_final, row) {
            Staged::Ticket(ticket) => {
                self.commit(&ticket);
                None
            }
            Staged::Written(row) => row.map(|r| *r),
        }
    }

    /// Takes the entry's byte range and queues its row; the bytes reach the file at the first
    /// [`Journal::commit`] after this. An entry past the queue's bound is written at once,
    /// under the lock, after the staged bytes before it: the writer reads it back from the
    /// file, and a read of its range must never find it missing.
    pub(super) fn stage(&self, is_final: bool, row: UsageRecord) -> Staged {
        // Sized for a whole line at once: growing from empty took five reallocations a row.
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        write_entry(&mut line, is_final, &row);
        line.push(b'\n');
        let Ok(mut current) = self.current.lock() else {
            return Staged::Written(Some(Box::new(row)));
        };
        let Some(seg) = current.as_mut() else {
            return Staged::Written(Some(Box::new(row)));
        };
        // Once an entry overflowed, the rest of the range stays in the file too, so the file
        // holds queued entries and then one overflowed range.
        if seg.queued_to == seg.len && (!is_final || seg.queue.len() < self.queue_rows) {
            let at = seg.len;
            seg.len += line.len() as u64;
            seg.queued_to = seg.len;
            seg.pending.extend_from_slice(&line);
            if is_final {
                seg.queue.push(row);
            } else {
                seg.progress.insert(row.request_id, line.clone());
            }
            return Staged::Ticket(Ticket {
                seq: seg.seq,
                at,
                line,
            });
        }
        let staged = seg.write_pending();
        let at = seg.len;
        seg.len += line.len() as u64;
        let write = staged.and_then(|()| write_at(&seg.file, &line, at));
        if write.is_err() {
            // The next entry takes the range over; what this one left of itself past the next
            // line's end is read as a line that does not parse.
            seg.len = at;
        }
        seg.pending_at = seg.len;
        seg.advance_durable();
        let file = seg.file.clone();
        drop(current);
        Staged::Written(
            self.written(match write {
                Ok(()) => self.flush(&file).map_err(|e| (e, None)),
                Err(e) => Err((e, Some(row))),
            })
            .map(Box::new),
        )
    }

    /// Puts a staged entry in the file, if no commit has yet: this commit then writes every
    /// entry staged so far, with one write outside the lock. An entry another thread is
    /// writing is written again here, its own line at its own place, rather than waited for.
    /// Failures are marked as [`Journal::append`]'s are; the row itself is in the queue.
    pub(super) fn commit(&self, ticket: &Ticket) {
        let end = ticket.at + ticket.line.len() as u64;
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        // Rotation and close write every staged byte of a segment before they let it go.
        let Some(seg) = current.as_mut().filter(|s| s.seq == ticket.seq) else {
            return;
        };
        if seg.holds(ticket.at, end) {
            return;
        }
        let file = seg.file.clone();
        if ticket.at < seg.pending_at {
            // Taken by a commit on another thread, whose write is under way.
            drop(current);
            let write = write_at(&file, &ticket.line, ticket.at).and_then(|()| self.flush(&file));
            self.written(write.map_err(|e| (e, None)));
            return;
        }
        let spare = std::mem::take(&mut seg.spare);
        let mut batch = std::mem::replace(&mut seg.pending, spare);
        let from = seg.pending_at;
        seg.pending_at = seg.len;
        seg.flying += 1;
        drop(current);
        let write = write_at(&file, &batch, from).and_then(|()| self.flush(&file));
        if let Ok(mut current) = self.current.lock()
            && let Some(seg) = current.as_mut().filter(|s| s.seq == ticket.seq)
        {
            seg.flying -= 1;
            if write.is_ok() {
                seg.remember(from, from + batch.len() as u64);
            } else {
                seg.lost = true;
            }
            seg.advance_durable();
            batch.clear();
            if seg.spare.capacity() < batch.capacity() {
                seg.spare = batch;
            }
        }
        self.written(write.map_err(|e| (e, None)));
    }

    /// The open segment, once no commit is writing to it (a write outside the lock takes
    /// microseconds), with its staged bytes written: what rotation and close need before they
    /// let it go.
    fn settled(&self) -> Option<std::sync::MutexGuard<'_, Option<Segment>>> {
        loop {
            let mut current = self.current.lock().ok()?;
            match current.as_mut() {
                Some(seg) if seg.flying > 0 => {}
                Some(seg) => {
                    if let Err(e) = seg.write_pending() {
                        tracing::error!(error = %e, path = %seg.path.display(), "usage journal write failed; the rows are kept in memory for the store");
                    }
                    return Some(current);
                }
                None => return Some(current),
            }
            drop(current);
            std::thread::yield_now();
        }
    }

    /// Flushes an appended entry to the disk when `fsync = "always"`.
    fn flush(&self, file: &File) -> std::io::Result<()> {
        if self.fsync == Fsync::Always {
            file.sync_data()
        } else {
            Ok(())
        }
    }

    /// Marks the journal broken or writable again after an append, returning the row the
    /// caller must keep.
    fn written(
        &self,
        result: Result<(), (std::io::Error, Option<UsageRecord>)>,
    ) -> Option<UsageRecord> {
        match result {
            Ok(()) => {
                if self.broken.load(Ordering::Relaxed) {
                    self.broken.store(false, Ordering::Relaxed);
                    tracing::info!(dir = %self.dir.display(), "usage journal writable again");
                }
                None
            }
            Err((e, row)) => {
                metrics::counter!(crate::telemetry::METRIC_METER_JOURNAL_ERRORS).increment(1);
                let message = format!("{}: {e}", self.segment_path().display());
                if !self.broken.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %message, "usage journal write failed; rows are kept in memory until it recovers, and /readyz reports not ready");
                }
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(message);
                }
                row
            }
        }
    }

    /// The same journal with a smaller queue, to overflow it in tests.
    #[cfg(test)]
    pub(super) fn with_queue_rows(mut self, rows: usize) -> Self {
        self.queue_rows = rows;
        self
    }

    /// `Err` with the path and error while the last append failed.
    pub fn health(&self) -> Result<(), String> {
        if !self.broken.load(Ordering::Relaxed) {
            return Ok(());
        }
        Err(self
            .last_error
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_else(|| self.dir.display().to_string()))
    }

    fn segment_path(&self) -> PathBuf {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|s| s.path.clone()))
            .unwrap_or_else(|| self.dir.clone())
    }

    /// Takes what was appended since the last call: the queued entries, and a reader over the
    /// range that overflowed the queue.
    pub(super) fn take(&self) -> Pending {
        let Ok(mut current) = self.current.lock() else {
            return Pending::default();
        };
        current
            .as_mut()
            .map_or_else(Pending::default, Segment::take)
    }

    /// Flushes the open segment to the disk (`fsync = "batch"`), beside appends.
    pub(super) fn sync(&self) {
        if self.fsync != Fsync::Batch {
            return;
        }
        let Some((file, path)) = self
            .current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|s| (s.file.clone(), s.path.clone())))
        else {
            return;
        };
        if let Err(e) = file.sync_data() {
            tracing::warn!(error = %e, path = %path.display(), "usage journal fsync failed");
        }
    }

    /// Stops appends to the open segment while `f` runs: `f` gets everything not yet taken
    /// and returns the lines to carry over; they start the next segment, which replaces it.
    /// Returns the old segment's path, or `None` when the new segment could not be made (the
    /// old one stays open, and what `f` got is taken).
    pub(super) fn rotate(&self, f: impl FnOnce(Pending) -> Vec<u8>) -> Option<PathBuf> {
        let mut current = self.settled()?;
        let carry = f(current.as_mut()?.take());
        let seq = current.as_ref()?.seq + 1;
        let mut next = match create_segment(&self.dir, &self.instance, seq, self.fsync) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "usage journal rotation failed; appending to the old segment");
                return None;
            }
        };
        if !carry.is_empty() {
            if let Err(e) = write_at(&next.file, &carry, next.len) {
                tracing::error!(error = %e, path = %next.path.display(), "usage journal rotation failed; appending to the old segment");
                let _ = std::fs::remove_file(&next.path);
                return None;
            }
            next.len += carry.len() as u64;
            next.queued_to = next.len;
            next.pending_at = next.len;
            next.durable_to = next.len;
        }
        current.replace(next).map(|old| old.path)
    }

    /// Stops appends for good while `f` gets everything not yet taken; returns the segment's
    /// path.
    pub(super) fn close(&self, f: impl FnOnce(Pending)) -> Option<PathBuf> {
        let mut current = self.settled()?;
        f(current.as_mut()?.take());
        current.take().map(|s| s.path)
    }

    /// Removes the lock file once the journal has nothing left to replay.
    pub(super) fn remove_lock(&self) {
        let _ = std::fs::remove_file(
            self.dir
                .join(format!("{PREFIX}{}{LOCK_SUFFIX}", self.instance)),
        );
    }
}

/// Takes an exclusive advisory lock on `file` without waiting (released when the file closes,
/// so also when the process dies).
// `File::try_lock` is Rust 1.89; the workspace's declared 1.85 is already below what the code
// needs (let chains are 1.88), so this does not raise the real minimum by much.
#[expect(
    clippy::incompatible_msrv,
    reason = "std file locks are 1.89; let chains already need 1.88"
)]
fn try_lock(file: &File) -> Result<(), std::fs::TryLockError> {
    file.try_lock()
}

/// Writes all of `buf` at `offset`, beside other writes to the file.
#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Writes all of `buf` at `offset`, beside other writes to the file.
#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                buf = buf.get(n..).unwrap_or_default();
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Creates segment `seq` and writes its header.
fn create_segment(dir: &Path, instance: &str, seq: u64, fsync: Fsync) -> Result<Segment, Error> {
    let path = dir.join(format!("{PREFIX}{instance}-{seq:06}{SEGMENT_SUFFIX}"));
    // Not `append`: entries are written at the ranges their appends took.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| io_error("create", &path, &e))?;
    let header = serde_json::json!({"journal": 1, "instance": instance});
    let mut line = header.to_string().into_bytes();
    line.push(b'\n');
    // The header is the first write: a full disk shows here, not on a client's request.
    file.write_all(&line)
        .map_err(|e| io_error("write", &path, &e))?;
    if fsync != Fsync::Never {
        let _ = file.sync_all();
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let len = line.len() as u64;
    Ok(Segment {
        seq,
        path,
        file: Arc::new(file),
        len,
        queue: Vec::new(),
        progress: HashMap::default(),
        queued_to: len,
        pending: Vec::new(),
        pending_at: len,
        spare: Vec::new(),
        flying: 0,
        durable_to: len,
        lost: false,
        written: [(0, 0); WRITTEN_RANGES],
        written_next: 0,
    })
}

impl Segment {
    /// Writes the staged bytes no commit has taken, under the lock (an overflowed entry, and
    /// rotation, must find them in the file).
    fn write_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let from = self.pending_at;
        let to = from + self.pending.len() as u64;
        let write = write_at(&self.file, &self.pending, from);
        self.pending.clear();
        self.pending_at = to;
        match &write {
            Ok(()) => self.remember(from, to),
            Err(_) => self.lost = true,
        }
        write
    }

    /// With no commit writing and no write failed, everything before the staged bytes is in
    /// the file.
    fn advance_durable(&mut self) {
        if self.flying == 0 && !self.lost {
            self.durable_to = self.pending_at;
        }
    }

    /// Notes that `from..to` is in the file.
    fn remember(&mut self, from: u64, to: u64) {
        if let Some(slot) = self.written.get_mut(self.written_next) {
            *slot = (from, to);
        }
        self.written_next = (self.written_next + 1) % WRITTEN_RANGES;
    }

    /// Whether `from..to` is known to be in the file.
    fn holds(&self, from: u64, to: u64) -> bool {
        (to <= self.durable_to && !self.lost)
            || self.written.iter().any(|&(a, b)| a <= from && to <= b)
    }

    /// Everything appended since the last take; the next take starts at the current end.
    fn take(&mut self) -> Pending {
        let spilled = (self.queued_to < self.len).then(|| Tail {
            file: None,
            path: self.path.clone(),
            offset: self.queued_to,
            end: Some(self.len),
            partial: Vec::new(),
        });
        self.queued_to = self.len;
        // The next pass likely queues about as many: growing from empty again copied every
        // row a dozen times, under the lock, on the appends' path.
        let next = Vec::with_capacity(self.queue.len());
        Pending {
            progress: std::mem::take(&mut self.progress),
            rows: std::mem::replace(&mut self.queue, next),
            spilled,
            segment_len: self.len,
        }
    }
}

/// Reads a segment from an offset (to an end, or to wherever it ends), returning whole lines
/// only.
pub(super) struct Tail {
    /// Opened on the first read.
    file: Option<File>,
    pub(super) path: PathBuf,
    offset: u64,
    end: Option<u64>,
    partial: Vec<u8>,
}

impl Tail {
    /// Reads `path` from its start to its end.
    pub(super) fn open(path: PathBuf) -> Self {
        Self {
            file: None,
            path,
            offset: 0,
            end: None,
            partial: Vec::new(),
        }
    }

    /// The entries of the next whole lines (up to about a megabyte of them); empty at the end.
    pub(super) fn read(&mut self) -> std::io::Result<Vec<Entry>> {
        use std::io::{Read, Seek, SeekFrom};
        let want = self
            .end
            .map_or(READ_CHUNK, |end| {
                usize::try_from(end.saturating_sub(self.offset)).unwrap_or(READ_CHUNK)
            })
            .min(READ_CHUNK);
        if want == 0 {
            return Ok(Vec::new());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(File::open(&self.path)?),
        };
        let mut buf = vec![0u8; want];
        file.seek(SeekFrom::Start(self.offset))?;
        let n = file.read(&mut buf)?;
        if n == 0 && self.end.is_some() {
            // A bounded range the file no longer holds (cut short by something else): an
            // error, not an endless wait for bytes that will not come.
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the segment ends before what was written to it",
            ));
        }
        buf.truncate(n);
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        Ok(parse_lines(&whole, &self.path))
    }

    /// Whether a bounded read has reached its end.
    pub(super) fn done(&self) -> bool {
        self.end.is_some_and(|end| self.offset >= end)
    }

    /// Reads every whole line left.
    pub(super) fn read_to_end(&mut self) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        loop {
            let before = self.offset;
            out.extend(self.read()?);
            if self.offset == before {
                return Ok(out);
            }
        }
    }
}

/// The entries of complete lines; a line that does not parse is skipped with a warning.
/// Zeros are a range an append took and a crash left unwritten (or part-written): JSON never
/// holds a zero byte, so a line is what follows its last one.
fn parse_lines(bytes: &[u8], path: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let lines = bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| l.rsplit(|&b| b == 0).next())
        .filter(|l| !l.is_empty());
    for line in lines {
        match serde_json::from_slice::<EntryIn>(line) {
            Ok(EntryIn {
                is_final,
                row: Some(row),
            }) => out.push(Entry {
                is_final,
                row,
                line: [line, b"\n"].concat(),
            }),
            Ok(EntryIn { row: None, .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "skipping an unreadable usage journal line");
            }
        }
    }
    out
}

/// What a journal file's name says: (instance, `None` for its lock file or `Some(seq)`).
fn parse_name(name: &str) -> Option<(&str, Option<u64>)> {
    let rest = name.strip_prefix(PREFIX)?;
    if let Some(instance) = rest.strip_suffix(LOCK_SUFFIX) {
        return Some((instance, None));
    }
    let stem = rest.strip_suffix(SEGMENT_SUFFIX)?;
    let (instance, seq) = stem.rsplit_once('-')?;
    Some((instance, Some(seq.parse().ok()?)))
}

/// Replays into `store` the journals in `dir` of instances that are not running (their lock
/// is free), then deletes them. Returns how many rows were replayed (the store skips the ones
/// it already holds). A journal the store cannot take is kept and the error returned.
pub async fn replay(
    dir: &Path,
    own: &str,
    store: &dyn Store,
    batch_size: usize,
) -> Result<usize, Error> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut instances: HashMap<String, Vec<(u64, PathBuf)>> = HashMap::default();
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some((instance, seq)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        if instance == own {
            continue;
        }
        let segments = instances.entry(instance.to_owned()).or_default();
        if let Some(seq) = seq {
            segments.push((seq, entry.path()));
        }
    }
    let mut replayed = 0;
    for (instance, mut segments) in instances {
        let lock_path = dir.join(format!("{PREFIX}{instance}{LOCK_SUFFIX}"));
        let Ok(lock) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        else {
            continue;
        };
        if try_lock(&lock).is_err() {
            // A live instance's journal: it writes its rows itself.
            continue;
        }
        segments.sort();
        // The latest entry of each request, a final one over any provisional one.
        let mut rows: HashMap<String, (bool, UsageRecord)> = HashMap::default();
        for (_, path) in &segments {
            let entries = match Tail::open(path.clone()).read_to_end() {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("read", path, &e)),
            };
            for e in entries {
                match rows.get(&e.row.request_id) {
                    Some((true, _)) if !e.is_final => {}
                    _ => {
                        rows.insert(e.row.request_id.clone(), (e.is_final, e.row));
                    }
                }
            }
        }
        let rows: Vec<UsageRecord> = rows.into_values().map(|(_, r)| r).collect();
        for chunk in rows.chunks(batch_size.max(1)) {
            store.insert_usage(chunk).await.map_err(|e| {
                Error::internal(format!(
                    "replaying the usage journal of {instance} in {}: {e}",
                    dir.display()
                ))
            })?;
        }
        replayed += rows.len();
        for (_, path) in &segments {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&lock_path);
        if !rows.is_empty() {
            tracing::info!(instance = %instance, rows = rows.len(), dir = %dir.display(), "replayed the usage journal of a stopped instance");
        }
    }
    Ok(replayed)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An entry's shape as serde writes it, for [`write_entry`] to be held to.
    #[derive(serde::Serialize)]
    struct EntryOut<'a> {
        #[serde(rename = "final")]
        is_final: bool,
        row: &'a UsageRecord,
    }

    #[test]
    fn a_line_written_by_hand_is_the_one_serde_writes() {
        let mut plain = row("req_1");
        let mut odd = row("req_\"2\"\\\u{1}é✓");
        odd.team = Some("team \"q\"\n".into());
        odd.outcome = "upstream_cut".into();
        odd.stream = true;
        odd.prompt_tokens = i64::MAX;
        odd.cost_micros = -5;
        plain.team = None;
        for (is_final, r) in [(true, &plain), (false, &odd), (true, &odd)] {
            let mut mine = Vec::new();
            write_entry(&mut mine, is_final, r);
            let theirs = serde_json::to_vec(&EntryOut { is_final, row: r }).unwrap();
            assert_eq!(
                String::from_utf8(mine.clone()).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
            let back: EntryIn = serde_json::from_slice(&mine).unwrap();
            assert_eq!((back.is_final, back.row.as_ref()), (is_final, Some(r)));
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            parse_name("usage-inst_ab-000012.journal"),
            Some(("inst_ab", Some(12)))
        );
        assert_eq!(parse_name("usage-inst_ab.lock"), Some(("inst_ab", None)));
        assert_eq!(parse_name("usage-inst_ab-x.journal"), None);
        assert_eq!(parse_name("other.journal"), None);
    }

    /// A ledger row for tests.
    pub(in crate::meter) fn row(id: &str) -> UsageRecord {
        UsageRecord {
            request_id: id.into(),
            key_id: "key_t".into(),
            account: "acct".into(),
            model: "m".into(),
            provider: "p".into(),
            upstream_model: "m".into(),
            family: "openai".into(),
            stream: false,
            prompt_tokens: 3,
            completion_tokens: 4,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            web_searches: 0,
            status: 200,
            outcome: "ok".into(),
            latency_ms: 1,
            created_at_ms: 1,
            cost_micros: 0,
            team: None,
        }
    }

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.row.request_id.clone()).collect()
    }

    /// The writer gets each entry exactly once: from memory while the queue has room (a
    /// stream's provisional line by its request, not queued), then from the file for the range
    /// that overflowed it; the next take starts afresh in memory.
    #[test]
    fn entries_past_the_queue_are_read_from_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_q", Fsync::Never)
            .unwrap()
            .with_queue_rows(10);
        for i in 0..25 {
            assert!(
                journal
                    .append(i != 3, row(&format!("req_{i:02}")))
                    .is_none()
            );
        }
        let mut pending = journal.take();
        let queued = ids_of(&pending.rows);
        assert_eq!(queued.len(), 10, "the queue holds at most its bound");
        assert_eq!(queued.first().map(String::as_str), Some("req_00"));
        assert!(
            !queued.contains(&"req_03".to_owned()),
            "a provisional entry is not queued"
        );
        // Only final rows are queued (the type says so now): exactly the first ten of them.
        let finals: Vec<String> = (0..=10)
            .filter(|&i| i != 3)
            .map(|i| format!("req_{i:02}"))
            .collect();
        assert_eq!(queued, finals);
        let line = pending.progress.get("req_03").expect("the stream's line");
        assert!(line.ends_with(b"\n") && line.starts_with(b"{\"final\":false"));
        let mut tail = pending.spilled.take().expect("an overflowed range");
        let spilled = ids(&tail.read_to_end().unwrap());
        assert!(tail.done());
        let expected: Vec<String> = (11..25).map(|i| format!("req_{i:02}")).collect();
        assert_eq!(
            spilled, expected,
            "the overflow is read in file order, nothing twice"
        );

        for i in 25..30 {
            assert!(journal.append(true, row(&format!("req_{i:02}"))).is_none());
        }
        let pending = journal.take();
        assert_eq!(pending.rows.len(), 5);
        assert!(pending.spilled.is_none(), "the queue has room again");
        // The file holds every entry, for a crash.
        let all = Tail::open(dir.path().join("usage-inst_q-000000.journal"))
            .read_to_end()
            .unwrap();
        assert_eq!(all.len(), 30);
        assert_eq!(
            pending.segment_len,
            std::fs::metadata(dir.path().join("usage-inst_q-000000.journal"))
                .unwrap()
                .len()
        );
    }

    /// Appends from many threads at once each get a range of their own: the file holds every
    /// entry whole, once, and the queue every final row.
    #[test]
    fn appends_side_by_side_keep_every_entry_whole() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_p", Fsync::Never).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let journal = &journal;
                s.spawn(move || {
                    for i in 0..500 {
                        let r = row(&format!("req_{t}_{i:03}"));
                        assert!(journal.append(i % 5 != 0, r).is_none());
                    }
                });
            }
        });
        let pending = journal.take();
        assert_eq!(pending.rows.len(), 4 * 400);
        assert_eq!(pending.progress.len(), 4 * 100);
        assert!(pending.spilled.is_none());
        let path = dir.path().join("usage-inst_p-000000.journal");
        let mut all = ids(&Tail::open(path.clone()).read_to_end().unwrap());
        assert_eq!(all.len(), 2000, "every entry parses");
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 2000, "no entry twice");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, pending.segment_len);
        assert!(!bytes.contains(&0), "no range left unwritten");
    }

    /// The request IDs segment 0 of `instance` in `dir` holds.
    fn segment_ids(dir: &Path, instance: &str) -> Vec<String> {
        ids(
            &Tail::open(dir.join(format!("usage-{instance}-000000.journal")))
                .read_to_end()
                .unwrap(),
        )
    }

    fn ticket(staged: Staged) -> Ticket {
        match staged {
            Staged::Ticket(t) => t,
            Staged::Written(_) => panic!("the entry was not staged"),
        }
    }

    /// Staged entries reach the file with the first commit, whichever entry's it is, and a
    /// later commit of an entry already written writes nothing more.
    #[test]
    fn the_first_commit_writes_every_staged_entry() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_s", Fsync::Never).unwrap();
        let tickets: Vec<Ticket> = ["req_a", "req_b", "req_c"]
            .iter()
            .map(|id| ticket(journal.stage(true, row(id))))
            .collect();
        assert!(
            segment_ids(dir.path(), "inst_s").is_empty(),
            "staged, not written"
        );
        journal.commit(&tickets[1]);
        assert_eq!(
            segment_ids(dir.path(), "inst_s"),
            ["req_a", "req_b", "req_c"]
        );
        let len = std::fs::metadata(dir.path().join("usage-inst_s-000000.journal"))
            .unwrap()
            .len();
        for t in &tickets {
            journal.commit(t);
        }
        let d = ticket(journal.stage(true, row("req_d")));
        journal.commit(&d);
        assert_eq!(
            segment_ids(dir.path(), "inst_s"),
            ["req_a", "req_b", "req_c", "req_d"]
        );
        let pending = journal.take();
        assert_eq!(pending.rows.len(), 4, "every staged row is queued once");
        assert_eq!(
            std::fs::metadata(dir.path().join("usage-inst_s-000000.journal"))
                .unwrap()
                .len(),
            len + d.line.len() as u64
        );
    }

    /// An entry that another thread's commit took and is still writing is written again by
    /// its own commit: it is in the file when its commit returns, without waiting.
    #[test]
    fn an_entry_another_commit_is_writing_is_written_by_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_f", Fsync::Never).unwrap();
        let a = ticket(journal.stage(true, row("req_a")));
        {
            // What a commit on another thread does before its write.
            let mut current = journal.current.lock().unwrap();
            let seg = current.as_mut().unwrap();
            seg.pending.clear();
            seg.pending_at = seg.len;
            seg.flying += 1;
        }
        journal.commit(&a);
        assert_eq!(segment_ids(dir.path(), "inst_f"), ["req_a"]);
        journal.current.lock().unwrap().as_mut().unwrap().flying -= 1;
    }

    /// An entry past the queue's bound is written at once, after the staged entries before
    /// it, so the file keeps their order and the overflow range holds only itself.
    #[test]
    fn an_overflowed_entry_writes_the_staged_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_o", Fsync::Never)
            .unwrap()
            .with_queue_rows(1);
        let a = ticket(journal.stage(true, row("req_a")));
        assert!(matches!(
            journal.stage(true, row("req_b")),
            Staged::Written(None)
        ));
        assert_eq!(segment_ids(dir.path(), "inst_o"), ["req_a", "req_b"]);
        journal.commit(&a);
        let mut pending = journal.take();
        assert_eq!(ids_of(&pending.rows), ["req_a"]);
        let spilled = pending.spilled.take().unwrap().read_to_end().unwrap();
        assert_eq!(ids(&spilled), ["req_b"]);
        assert_eq!(segment_ids(dir.path(), "inst_o"), ["req_a", "req_b"]);
    }

    /// Rotation writes the staged entries into the segment it lets go; their commits then
    /// write nothing into the next one.
    #[test]
    fn rotation_writes_staged_entries_first() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_r", Fsync::Never).unwrap();
        let a = ticket(journal.stage(true, row("req_a")));
        let old = journal
            .rotate(|pending| {
                assert_eq!(ids_of(&pending.rows), ["req_a"]);
                Vec::new()
            })
            .unwrap();
        assert_eq!(ids(&Tail::open(old).read_to_end().unwrap()), ["req_a"]);
        journal.commit(&a);
        let next = ids(&Tail::open(dir.path().join("usage-inst_r-000001.journal"))
            .read_to_end()
            .unwrap());
        assert!(next.is_empty(), "nothing of the old segment in the new one");
    }

    fn ids_of(rows: &[UsageRecord]) -> Vec<String> {
        rows.iter().map(|r| r.request_id.clone()).collect()
    }

    /// What a crash leaves between appends that took their ranges and the writes that did not
    /// happen (zeros, or part of a line and then zeros) costs only those entries.
    #[test]
    fn ranges_a_crash_left_unwritten_cost_only_their_own_entries() {
        let line = |id: &str| {
            let mut l = Vec::new();
            write_entry(&mut l, true, &row(id));
            l.push(b'\n');
            l
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage-inst_x-000000.journal");
        let mut bytes = b"{\"journal\":1,\"instance\":\"inst_x\"}\n".to_vec();
        bytes.extend(line("req_a"));
        bytes.extend([0; 300]);
        bytes.extend(line("req_b"));
        let cut = line("req_lost");
        bytes.extend(cut.get(..100).unwrap());
        bytes.extend([0; 200]);
        bytes.extend(line("req_c"));
        bytes.extend([0; 120]);
        std::fs::write(&path, bytes).unwrap();
        let read = ids(&Tail::open(path).read_to_end().unwrap());
        assert_eq!(read, ["req_a", "req_b", "req_c"]);
    }

    /// An overflow range the file no longer holds (cut short by something else) is an error
    /// for the writer to report, not a read that waits forever.
    #[test]
    fn an_overflow_range_cut_from_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_c", Fsync::Never)
            .unwrap()
            .with_queue_rows(1);
        for i in 0..4 {
            assert!(journal.append(true, row(&format!("req_{i}"))).is_none());
        }
        let mut tail = journal.take().spilled.expect("an overflowed range");
        let path = dir.path().join("usage-inst_c-000000.journal");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap();
        let err = tail.read_to_end().err().expect("the cut is reported");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    /// The journal's cost on the hot path, which an end-to-end benchmark on a shared machine
    /// cannot resolve: the time of one append (serialising the row and its one `write`).
    /// A benchmark, not a test; run it with
    /// `cargo test --release -p anyint --lib journal_append_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints the cost of an append"]
    fn journal_append_cost() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), "inst_bench", Fsync::Batch).unwrap();
        let row = UsageRecord {
            request_id: "req_0123456789abcdef0123456789".into(),
            key_id: "key_0123456789abcdef".into(),
            account: "acme".into(),
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini-2024-07-18".into(),
            family: "openai".into(),
            stream: true,
            prompt_tokens: 1234,
            completion_tokens: 567,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            web_searches: 0,
            status: 200,
            outcome: "ok".into(),
            latency_ms: 12,
            created_at_ms: 1_796_300_000_000,
            cost_micros: 8910,
            team: Some("research".into()),
        };
        for (label, n) in [("warm-up", 10_000_u32), ("measured", 200_000)] {
            let started = std::time::Instant::now();
            for i in 0..n {
                assert!(journal.append(i % 2 == 0, row.clone()).is_none());
            }
            let per = started.elapsed() / n;
            println!("{label}: {n} appends, {per:?} per append");
        }
        // The writer's flush (`fsync = "batch"`) runs beside the appends: does it stall them?
        let journal = std::sync::Arc::new(journal);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let syncer = {
            let (journal, stop) = (journal.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut syncs = 0_u32;
                while !stop.load(Ordering::Relaxed) {
                    journal.sync();
                    syncs += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                syncs
            })
        };
        let mut each: Vec<std::time::Duration> = (0..100_000)
            .map(|i| {
                let t = std::time::Instant::now();
                assert!(journal.append(i % 2 == 0, row.clone()).is_none());
                t.elapsed()
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        let syncs = syncer.join().unwrap();
        each.sort();
        // Per mille: 500 is the median.
        let at = |per_mille: usize| each[(each.len() - 1) * per_mille / 1000];
        println!(
            "with a flush every ~1 ms ({syncs} flushes): p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
            at(500),
            at(990),
            at(999),
            at(1000)
        );
    }
}
