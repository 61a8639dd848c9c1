//! Kept HTTP/1.1 connections to one plain-HTTP origin (a self-hosted model server, a sidecar),
//! and the HTTP/1.1 spoken on them: the client's own path for its provider's `base_url` when
//! that is `http://`.
//!
//! hyper's client drives each connection from a task of its own: a call hands its request to
//! that task through a channel and waits for the answer on another, so each call wakes two
//! tasks, and each connection keeps the task, the channel (about 10 KB) and two 8 KB buffers for
//! as long as it lives. Here the call's own task writes the request and reads the answer: the
//! request goes out in vectored writes (its head, then the body's parts where they are), the
//! answer's head is parsed with `httparse`, and its body is read when the caller asks for the
//! next chunk. Bytes are read into a buffer allocated once the socket has some and let go when
//! they have been handed on, so a stream waiting for its next event holds no buffer.
//!
//! The pool is a list: a call takes the connection used last, and the answer's body puts it
//! back when it has been read to its end. A connection whose answer was not read to the end is
//! dropped, which closes it.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Failure, Payload, TransportError};

/// A read into an empty buffer goes to the stack, up to this much ([`Conn::poll_fill`]).
const STACK_READ: usize = 4 * 1024;
/// What a read into a buffer reserves at first; it doubles while reads fill it, up to
/// [`MAX_READ`].
const READ_SIZE: usize = 16 * 1024;
const MAX_READ: usize = 256 * 1024;
/// The largest answer head read, and the most header lines in it (hyper's default is 100).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// The longest chunk-size or trailer line of a chunked body.
const MAX_LINE: usize = 4 * 1024;
/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 16;

/// One origin's idle connections, most recently used last.
pub(super) struct Pool {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` a call without one is sent with.
    host: Option<HeaderValue>,
    connector: HttpConnector,
    idle: Mutex<Vec<Idle>>,
    /// A task that closes connections idle past the timeout is running.
    reaping: AtomicBool,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// An answer's head, and its body still to be read from the connection.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: PlainBody,
}

impl Pool {
    /// A pool for `base` when it is a plain-HTTP URL.
    pub(super) fn for_origin(
        base: &Uri,
        connector: HttpConnector,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Option<Self> {
        if base.scheme() != Some(&Scheme::HTTP) {
            return None;
        }
        let authority = base.authority()?.clone();
        Some(Self {
            scheme: Scheme::HTTP,
            host: super::host_header(base),
            authority,
            connector,
            idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
            max_idle,
            idle_timeout,
        })
    }

    /// Whether a call to `uri` goes to this pool's origin.
    pub(super) fn serves(&self, uri: &Uri) -> bool {
        uri.scheme() == Some(&self.scheme) && uri.authority() == Some(&self.authority)
    }

    /// Sends a call to `uri` (this pool's origin) on a kept connection, or a new one; the
    /// answer's head is back when this returns. A kept connection that fails before it took
    /// any of the request's bytes (the origin had closed it) is dropped and the call tried on
    /// the next, as hyper's pooled client does; a request that went out is never sent twice.
    pub(super) async fn send(
        self: &Arc<Self>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Payload,
    ) -> Result<Answer, TransportError> {
        let mut out = Vec::with_capacity(1 + body.parts.len());
        out.push(request_head(
            method,
            uri,
            self.host.as_ref(),
            headers,
            body.len(),
        ));
        out.extend(body.parts);
        loop {
            let (conn, kept) = match self.take() {
                Some(conn) => (conn, true),
                // Boxed: the connector's future is large, and rarely needed.
                None => (Box::pin(self.connect()).await?, false),
            };
            let mut call = Call {
                conn,
                out: &out,
                part: 0,
                offset: 0,
                sent: false,
                cut_short: false,
            };
            let result = std::future::poll_fn(|cx| call.poll(cx)).await;
            match result {
                Ok(head) => return Ok(self.answer(method, head, call.conn, call.cut_short)),
                Err(CallError::Unsent(_)) if kept => {}
                Err(CallError::Unsent(e) | CallError::Failed(e)) => return Err(e),
            }
        }
    }

    /// The answer to a call whose head has been read from `conn`.
    fn answer(
        self: &Arc<Self>,
        method: &Method,
        head: Head,
        conn: Conn,
        cut_short: bool,
    ) -> Answer {
        let (framing, keep) = match framing(method, &head) {
            Ok(f) => f,
            // The head is handed on; its body is reported broken when read.
            Err(e) => (Framing::Broken(Some(e)), false),
        };
        let mut body = PlainBody {
            conn: Some(conn),
            framing,
            reusable: keep && !cut_short,
            pool: Arc::clone(self),
        };
        if matches!(body.framing, Framing::Length(0)) {
            // Nothing to read: the connection is free now, whether or not the body is polled.
            body.finish();
        }
        Answer {
            status: head.status,
            headers: head.headers,
            body,
        }
    }

    /// The most recently used idle connection that is still open; closed and expired ones
    /// are dropped on the way.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(Idle { conn, since }) = idle.pop() {
            if since.elapsed() < self.idle_timeout && conn.is_open() {
                return Some(conn);
            }
        }
        None
    }

    /// A new connection.
    async fn connect(&self) -> Result<Conn, TransportError> {
        let origin = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| TransportError::new(Failure::Request, e.to_string()))?;
        let mut connector = self.connector.clone();
        let tcp = tower::Service::call(&mut connector, origin)
            .await
            .map_err(|e| TransportError::from_source(Failure::Connect, &e))?;
        Ok(Conn {
            tcp: tcp.into_inner(),
            buf: BytesMut::new(),
            next_read: READ_SIZE,
        })
    }

    /// Keeps `conn` for the next call, unless the pool is full.
    fn put(self: &Arc<Self>, conn: Conn) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if idle.len() >= self.max_idle {
            // The oldest goes: the list stays the most recently used connections.
            idle.remove(0);
        }
        idle.push(Idle {
            conn,
            since: Instant::now(),
        });
        drop(idle);
        self.reap_later();
    }

    /// Starts the task that closes connections idle for longer than the timeout, when none
    /// is running. It wakes when the oldest would expire, and ends when the pool is empty.
    fn reap_later(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reaping.store(false, Ordering::Release);
            return;
        };
        let pool = Arc::downgrade(self);
        let mut wake = Instant::now() + self.idle_timeout;
        runtime.spawn(async move {
            loop {
                tokio::time::sleep_until(wake).await;
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                let Ok(mut idle) = pool.idle.lock() else {
                    return;
                };
                idle.retain(|i| i.since.elapsed() < pool.idle_timeout && i.conn.is_open());
                let Some(oldest) = idle.first() else {
                    pool.reaping.store(false, Ordering::Release);
                    return;
                };
                wake = oldest.since + pool.idle_timeout;
            }
        });
    }
}

/// One connection: its socket, and the bytes read from it that are not yet handed on.
struct Conn {
    tcp: TcpStream,
    /// Empty, and holding no memory, between reads once its bytes are handed on.
    buf: BytesMut,
    /// What the next read reserves.
    next_read: usize,
}

impl Conn {
    /// Reads what the socket has into the buffer: `Ok(0)` when the origin has closed it.
    ///
    /// Into an empty buffer, the read goes to the stack first, and what it brought is kept in
    /// an allocation of its own size: a stream's event (a few hundred bytes) holds no 8 KB
    /// buffer, and a wake-up that finds nothing to read (readiness outlives the bytes that set
    /// it) allocates nothing. A read that fills the stack goes on at once into a buffer
    /// reserved for more, which doubles while reads fill it; while it is that large, reads go
    /// to it directly, and a read that uses a quarter of it or less shrinks it back.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.is_empty() && self.next_read <= READ_SIZE {
            // Left uninitialised: zeroing 4 KB before each read was 4% of a request's
            // instructions (callgrind), for bytes the read overwrites.
            let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
            let mut read = ReadBuf::uninit(&mut stack);
            ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut read))?;
            let got = read.filled();
            let n = got.len();
            if n < STACK_READ {
                self.buf = BytesMut::from(got);
                return Poll::Ready(Ok(n));
            }
            self.buf = BytesMut::with_capacity(self.next_read);
            self.buf.extend_from_slice(got);
            // More is likely there; what this read cannot have yet, the next one reads.
            return Poll::Ready(Ok(n + self.read_into_buffer().unwrap_or(0)));
        }
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.read_into_buffer() {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// One read into the buffer, with room for [`Self::next_read`] bytes, which it adapts.
    fn read_into_buffer(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < self.next_read / 2 {
            self.buf.reserve(self.next_read);
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = self.tcp.try_read_buf(&mut self.buf)?;
        if n == room {
            self.next_read = (self.next_read * 2).min(MAX_READ);
        } else if n <= room / 4 {
            self.next_read = READ_SIZE;
        }
        Ok(n)
    }

    /// Of a run of `left` bytes, what the buffer holds (at most `left`), handed on; `left`
    /// is what remains of the run after it.
    fn take_of(&mut self, left: &mut u64) -> Bytes {
        let n = usize::try_from(*left)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        *left -= n as u64;
        self.take(n)
    }

    /// The next `n` bytes (at most what the buffer holds), handed on without a copy.
    fn take(&mut self, n: usize) -> Bytes {
        if n >= self.buf.len() {
            std::mem::take(&mut self.buf).freeze()
        } else {
            self.buf.split_to(n).freeze()
        }
    }

    /// Drops the next `n` bytes (framing); an emptied buffer is let go.
    fn skip(&mut self, n: usize) {
        if n >= self.buf.len() {
            self.buf = BytesMut::new();
        } else {
            self.buf.advance(n);
        }
    }

    /// Whether a kept connection can carry a call: the origin has not closed it (a read finds
    /// nothing yet) and sent nothing unasked.
    fn is_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// A call on one connection: its request being written, its answer's head being read.
struct Call<'a> {
    conn: Conn,
    /// The request: its head, then the body's parts.
    out: &'a [Bytes],
    /// Where the write is: the part, and the offset in it.
    part: usize,
    offset: usize,
    sent: bool,
    /// The answer came before the whole request went out: the connection is not reused.
    cut_short: bool,
}

enum CallError {
    /// The connection failed before it took any of the request.
    Unsent(TransportError),
    Failed(TransportError),
}

impl Call<'_> {
    /// Writes the request and reads the answer's head. Reading goes on while the request is
    /// written: an origin may answer (a 413, say) before it has read the whole body, and
    /// stop reading, and waiting for the write to finish would then wait for ever.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Head, CallError>> {
        loop {
            if !self.sent {
                match self.poll_write(cx) {
                    Poll::Ready(Ok(())) => self.sent = true,
                    Poll::Ready(Err(e)) if self.part == 0 && self.offset == 0 => {
                        return Poll::Ready(Err(CallError::Unsent(TransportError::from_source(
                            Failure::Other,
                            &e,
                        ))));
                    }
                    // The origin may have answered before it closed: read what it sent.
                    Poll::Ready(Err(_)) => {
                        self.sent = true;
                        self.cut_short = true;
                    }
                    Poll::Pending => {}
                }
            }
            loop {
                match parse_head(&mut self.conn) {
                    Ok(Some(head)) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                        return Poll::Ready(Err(CallError::Failed(TransportError::new(
                            Failure::Other,
                            "the upstream switched protocols, which a model call never asks"
                                .to_owned(),
                        ))));
                    }
                    // An interim answer (103 Early Hints, an unasked 100): the final one follows.
                    Ok(Some(head)) if head.status.is_informational() => {}
                    Ok(Some(head)) => {
                        self.cut_short |= !self.sent;
                        return Poll::Ready(Ok(head));
                    }
                    Ok(None) => break,
                    Err(e) => return Poll::Ready(Err(CallError::Failed(e))),
                }
            }
            match ready!(self.conn.poll_fill(cx)) {
                Ok(0) => {
                    return Poll::Ready(Err(CallError::Failed(TransportError::new(
                        Failure::Other,
                        "the upstream closed the connection before answering".to_owned(),
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    return Poll::Ready(Err(CallError::Failed(TransportError::from_source(
                        Failure::Other,
                        &e,
                    ))));
                }
            }
        }
    }

    /// Writes what is left of the request, as many buffers at once as a write takes.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = self.out;
        while let Some(first) = out.get(self.part) {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            let rest = out.get(self.part + 1..).unwrap_or_default();
            let first = first.get(self.offset..).unwrap_or_default();
            for (slot, part) in slices
                .iter_mut()
                .zip(std::iter::once(first).chain(rest.iter().map(Bytes::as_ref)))
            {
                *slot = IoSlice::new(part);
                count += 1;
            }
            let wrote = ready!(
                Pin::new(&mut self.conn.tcp)
                    .poll_write_vectored(cx, slices.get(..count).unwrap_or_default())
            )?;
            if wrote == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let mut left = wrote;
            while let Some(part) = out.get(self.part) {
                let here = part.len() - self.offset;
                if left < here {
                    self.offset += left;
                    break;
                }
                left -= here;
                self.part += 1;
                self.offset = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The request's head: its line, `host` unless the caller set one, the caller's headers but
/// those that frame the message (this client frames it), and the body's length.
fn request_head(
    method: &Method,
    uri: &Uri,
    host: Option<&HeaderValue>,
    headers: &HeaderMap,
    len: usize,
) -> Bytes {
    let path = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let mut head = Vec::with_capacity(96 + path.len() + 48 * headers.len());
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host.filter(|_| !headers.contains_key(HOST)) {
        put_header(&mut head, HOST.as_str(), host.as_bytes());
    }
    for (name, value) in headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING && name != CONNECTION {
            put_header(&mut head, name.as_str(), value.as_bytes());
        }
    }
    if len > 0 || !matches!(*method, Method::GET | Method::HEAD) {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Bytes::from(head)
}

fn put_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// An answer's head.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    /// HTTP/1.1 (`1`) or HTTP/1.0 (`0`).
    minor: u8,
}

fn protocol(detail: impl Into<String>) -> TransportError {
    TransportError::new(Failure::Other, detail.into())
}

/// The answer's head when the buffer holds all of it, which it then leaves.
fn parse_head(conn: &mut Conn) -> Result<Option<Head>, TransportError> {
    // Uninitialised slots: 128 empty headers were 4 KB written before each parse.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let buf: &[u8] = conn.buf.as_ref();
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => {
            return Err(protocol("the upstream's answer head is over 64 KB"));
        }
        Err(e) => {
            return Err(protocol(format!(
                "the upstream's answer head is malformed: {e}"
            )));
        }
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| protocol("the upstream's answer has no valid status"))?;
    // The head is copied out, so that header values kept for a stream's whole life do not
    // keep the read buffer they came in; each value is the copy's bytes where the parse
    // found it in the buffer.
    let copy = Bytes::copy_from_slice(buf.get(..len).unwrap_or_default());
    let start = buf.as_ptr() as usize;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in &*parsed.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| protocol("the upstream's answer has an invalid header name"))?;
        let at = (h.value.as_ptr() as usize).saturating_sub(start);
        let end = at.saturating_add(h.value.len());
        let value = (end <= copy.len())
            .then(|| copy.slice(at..end))
            .ok_or_else(|| protocol("the upstream's answer head is malformed"))?;
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| protocol("the upstream's answer has an invalid header value"))?;
        headers.append(name, value);
    }
    let minor = parsed.version.unwrap_or(1);
    conn.skip(len);
    Ok(Some(Head {
        status,
        headers,
        minor,
    }))
}

/// How an answer's body ends, and whether its connection can carry another call after it
/// (RFC 9112, section 6).
fn framing(method: &Method, head: &Head) -> Result<(Framing, bool), TransportError> {
    let keep_alive = if head.minor >= 1 {
        !has_token(&head.headers, &CONNECTION, "close")
    } else {
        has_token(&head.headers, &CONNECTION, "keep-alive")
    };
    if *method == Method::HEAD
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Length(0), keep_alive));
    }
    if head.headers.contains_key(TRANSFER_ENCODING) {
        let last = tokens(&head.headers, &TRANSFER_ENCODING).next_back();
        // A length beside a transfer coding is ignored, and the connection not trusted again.
        let keep = keep_alive && !head.headers.contains_key(CONTENT_LENGTH);
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => (Framing::Chunked(Chunked::Size), keep),
            _ => (Framing::Close, false),
        });
    }
    let mut length = None;
    for value in &head.headers.get_all(CONTENT_LENGTH) {
        for text in value.as_bytes().split(|b| *b == b',') {
            let n = parse_decimal(text.trim_ascii())
                .ok_or_else(|| protocol("the upstream's answer has an invalid content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(protocol(
                    "the upstream's answer has conflicting content-lengths",
                ));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Framing::Length(n), keep_alive),
        None => (Framing::Close, false),
    })
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Whether a header lists `token` (`connection: keep-alive, Upgrade`).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The items of a comma-separated list header, over all its lines, trimmed, empty ones left
/// out.
fn tokens<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> impl DoubleEndedIterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// How the rest of a body is read.
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunked),
    /// To the connection's end.
    Close,
    /// The head said something this client cannot read a body by; reported on the first read.
    Broken(Option<TransportError>),
}

/// Where a chunked body's reader is.
#[derive(Clone, Copy)]
enum Chunked {
    /// At a chunk-size line.
    Size,
    /// In a chunk's data, with this many bytes left.
    Data(u64),
    /// At the line end after a chunk's data.
    DataEnd,
    /// In the trailer section, after the last chunk.
    Trailers,
}

/// What the buffer gave a body's reader.
enum Step {
    Data(Bytes),
    End,
    /// The buffer holds no more of it: read.
    More,
}

impl Framing {
    /// The body's next bytes from what `conn` has read.
    fn step(&mut self, conn: &mut Conn) -> Result<Step, TransportError> {
        match self {
            Framing::Length(0) => Ok(Step::End),
            Framing::Length(left) => {
                if conn.buf.is_empty() {
                    return Ok(Step::More);
                }
                Ok(Step::Data(conn.take_of(left)))
            }
            Framing::Close if conn.buf.is_empty() => Ok(Step::More),
            Framing::Close => Ok(Step::Data(conn.take(usize::MAX))),
            Framing::Broken(e) => Err(e
                .take()
                .unwrap_or_else(|| protocol("the answer's body is unreadable"))),
            Framing::Chunked(state) => chunk_step(state, conn),
        }
    }
}

fn chunk_step(state: &mut Chunked, conn: &mut Conn) -> Result<Step, TransportError> {
    loop {
        match *state {
            Chunked::Size => {
                let Some(size) = take_line(conn, chunk_size)? else {
                    return Ok(Step::More);
                };
                *state = match size? {
                    0 => Chunked::Trailers,
                    size => Chunked::Data(size),
                };
            }
            Chunked::Data(mut left) => {
                if conn.buf.is_empty() {
                    return Ok(Step::More);
                }
                let data = conn.take_of(&mut left);
                *state = if left == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data(left)
                };
                return Ok(Step::Data(data));
            }
            Chunked::DataEnd => {
                let Some(empty) = take_line(conn, <[u8]>::is_empty)? else {
                    return Ok(Step::More);
                };
                if !empty {
                    return Err(body_error("chunk data longer than its size"));
                }
                *state = Chunked::Size;
            }
            Chunked::Trailers => {
                let Some(empty) = take_line(conn, <[u8]>::is_empty)? else {
                    return Ok(Step::More);
                };
                if empty {
                    return Ok(Step::End);
                }
            }
        }
    }
}

/// A chunk-size line's size; its extensions are read past.
fn chunk_size(line: &[u8]) -> Result<u64, TransportError> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let ext = line.get(digits..).unwrap_or_default();
    if digits == 0 || digits > 16 || !matches!(ext.first(), None | Some(b';' | b' ' | b'\t')) {
        return Err(body_error("an invalid chunk size"));
    }
    // At most sixteen hex digits: a u64 holds them.
    std::str::from_utf8(line.get(..digits).unwrap_or_default())
        .ok()
        .and_then(|d| u64::from_str_radix(d, 16).ok())
        .ok_or_else(|| body_error("an invalid chunk size"))
}

/// The next line of a chunked body's framing (without its `\r\n`), given to `read` where it
/// lies in the buffer and then dropped from it, or `None` when the buffer does not hold all of
/// it yet. Read in place: a chunked body has two such lines a chunk (a stream, one chunk an
/// event, often), and a copy of each was an allocation apiece.
fn take_line<R>(
    conn: &mut Conn,
    read: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>, TransportError> {
    let Some(end) = memchr::memchr(b'\n', &conn.buf) else {
        return if conn.buf.len() > MAX_LINE {
            Err(body_error("a chunk-size or trailer line over 4 KB"))
        } else {
            Ok(None)
        };
    };
    let line = conn.buf.get(..end).unwrap_or_default();
    let got = read(line.strip_suffix(b"\r").unwrap_or(line));
    conn.skip(end + 1);
    Ok(Some(got))
}

fn body_error(what: &str) -> TransportError {
    TransportError::new(
        Failure::Body,
        format!("the upstream's chunked body has {what}"),
    )
}

/// An answer's body, read from its connection as the caller asks for it. Read to its end, it
/// puts the connection back in the pool.
pub(super) struct PlainBody {
    conn: Option<Conn>,
    framing: Framing,
    /// The connection can carry another call once this body has been read to its end.
    reusable: bool,
    pool: Arc<Pool>,
}

impl PlainBody {
    /// The body's next bytes, or `None` at its end.
    pub(super) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, TransportError>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(Ok(None));
            };
            match self.framing.step(conn) {
                Ok(Step::Data(bytes)) => return Poll::Ready(Ok(Some(bytes))),
                Ok(Step::End) => {
                    self.finish();
                    return Poll::Ready(Ok(None));
                }
                Ok(Step::More) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Err(e));
                }
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if matches!(self.framing, Framing::Close) => {
                    self.conn = None;
                    return Poll::Ready(Ok(None));
                }
                Ok(0) => {
                    self.conn = None;
                    return Poll::Ready(Err(TransportError::new(
                        Failure::Body,
                        "the upstream closed the connection before the body's end".to_owned(),
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Err(TransportError::from_source(Failure::Body, &e)));
                }
            }
        }
    }

    /// The body has been read: its connection goes back to the pool if it can carry another
    /// call and the origin sent nothing past the body.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
            && conn.buf.is_empty()
        {
            self.pool.put(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, watch};

    use super::*;

    /// A plain-HTTP origin answering `ok` to each request.
    struct Origin {
        url: Uri,
        /// Connections it accepted.
        accepted: Arc<AtomicUsize>,
        /// One message per connection whose client side has gone.
        ends: mpsc::UnboundedReceiver<()>,
        /// Set to close every connection between requests, without saying so first (as a
        /// server ending idle connections does).
        close: watch::Sender<bool>,
    }

    async fn origin() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let (ended, ends) = mpsc::unbounded_channel();
        let (close, closing) = watch::channel(false);
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let (ended, mut closing) = (ended.clone(), closing.clone());
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    tokio::select! {
                        () = answer_all(&mut tcp) => {
                            let _ = ended.send(());
                        }
                        () = async { drop(closing.wait_for(|c| *c).await) } => {
                            // Done with the connection: the client sees so when it next
                            // takes it from the pool.
                            let _ = tcp.shutdown().await;
                            let _ = ended.send(());
                            let mut rest = [0u8; 64];
                            while matches!(tcp.read(&mut rest).await, Ok(n) if n > 0) {}
                        }
                    }
                });
            }
        });
        Origin {
            url: url.parse().unwrap(),
            accepted,
            ends,
            close,
        }
    }

    /// Reads one request (a head, then `content-length` bytes of body) from `buf` and the
    /// socket; `false` when the client has gone.
    async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>, with_body: bool) -> bool {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if !with_body {
            buf.drain(..head_end);
            return true;
        }
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        true
    }

    /// Answers requests until the client goes.
    async fn answer_all(tcp: &mut TcpStream) {
        let mut buf = Vec::new();
        while read_request(tcp, &mut buf, true).await {
            if tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn pool_for(url: &Uri, max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool::for_origin(url, HttpConnector::new(), max_idle, idle_timeout).unwrap())
    }

    /// One call with `body` through `pool`, its answer read to the end.
    async fn call_with(
        pool: &Arc<Pool>,
        url: &Uri,
        body: Payload,
    ) -> (StatusCode, Result<Bytes, TransportError>) {
        let answer = pool
            .send(&Method::POST, url, &HeaderMap::new(), body)
            .await
            .unwrap();
        let mut body = answer.body;
        let mut got = Vec::new();
        loop {
            match std::future::poll_fn(|cx| body.poll_chunk(cx)).await {
                Ok(Some(chunk)) => got.extend_from_slice(&chunk),
                Ok(None) => return (answer.status, Ok(Bytes::from(got))),
                Err(e) => return (answer.status, Err(e)),
            }
        }
    }

    async fn call(pool: &Arc<Pool>, url: &Uri) -> Bytes {
        call_with(pool, url, Payload::from(b"{}".to_vec()))
            .await
            .1
            .unwrap()
    }

    /// An origin that answers the requests on each connection with `answers` in turn, each
    /// written a few bytes at a time, and closes the connection after the last.
    async fn scripted(answers: &'static [&'static [u8]]) -> (Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tcp.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for answer in answers {
                        if !read_request(&mut tcp, &mut buf, true).await {
                            return;
                        }
                        for piece in answer.chunks(3) {
                            if tcp.write_all(piece).await.is_err() {
                                return;
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                    let _ = tcp.shutdown().await;
                });
            }
        });
        (url.parse().unwrap(), accepted)
    }

    #[tokio::test]
    async fn answers_are_read_by_each_framing_and_their_connections_kept_when_they_can_be() {
        let cases: [(&'static [&'static [u8]], &str, bool); 6] = [
            (
                &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n"],
                "hello, world",
                true,
            ),
            (
                &[b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nafter"],
                "after",
                true,
            ),
            (&[b"HTTP/1.1 204 No Content\r\n\r\n"], "", true),
            (&[b"HTTP/1.1 200 OK\r\n\r\nto the end"], "to the end", false),
            (
                &[b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold"],
                "old",
                false,
            ),
            (
                &[b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbye"],
                "bye",
                false,
            ),
        ];
        for (answers, want, kept) in cases {
            let (url, _) = scripted(answers).await;
            let pool = pool_for(&url, 4, Duration::from_secs(60));
            let (status, body) = call_with(&pool, &url, Payload::default()).await;
            assert!(status.is_success(), "{want:?}: {status}");
            assert_eq!(body.unwrap().as_ref(), want.as_bytes());
            assert_eq!(
                pool.idle.lock().unwrap().len(),
                usize::from(kept),
                "{want:?}"
            );
        }
    }

    /// The answer's header lines come out as sent, each value its own bytes: repeated names
    /// in order, inner spaces kept, the 1xx head's lines not mixed in, and none of the body.
    #[tokio::test]
    async fn the_answer_head_is_read_line_for_line() {
        let (url, _) = scripted(&[b"HTTP/1.1 103 Early Hints\r\nlink: </early>\r\n\r\nHTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nx-ratelimit-remaining-requests: 0\r\nset-cookie: a=1\r\nretry-after:  7 \r\nset-cookie: b=2; Path=/\r\nx-empty:\r\ncontent-length: 2\r\n\r\n{}"]).await;
        let pool = pool_for(&url, 4, Duration::from_secs(60));
        let answer = pool
            .send(&Method::POST, &url, &HeaderMap::new(), Payload::default())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        let h = &answer.headers;
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(
            h["retry-after"], "7",
            "httparse trims the value's outer spaces"
        );
        assert_eq!(h["x-empty"], "");
        let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2; Path=/"]);
        assert!(
            h.get("link").is_none(),
            "the 103's lines are not the answer's"
        );
        assert_eq!(h.len(), 7);
    }

    /// A large answer is read in large pieces, not a stack's worth at a time; both framings,
    /// and every byte in order.
    #[tokio::test]
    async fn a_large_answer_is_read_whole_in_pieces_larger_than_the_stack() {
        const LEN: usize = 3 << 20;
        fn content() -> Vec<u8> {
            (0..LEN).map(|i| u8::try_from(i % 251).unwrap()).collect()
        }
        let mut length = format!("HTTP/1.1 200 OK\r\ncontent-length: {LEN}\r\n\r\n").into_bytes();
        length.extend(content());
        let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for part in content().chunks(100_000) {
            chunked.extend(format!("{:x}\r\n", part.len()).into_bytes());
            chunked.extend(part);
            chunked.extend(b"\r\n");
        }
        chunked.extend(b"0\r\n\r\n");
        for answer in [length, chunked] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url: Uri = format!("http://{}/v1", listener.local_addr().unwrap())
                .parse()
                .unwrap();
            tokio::spawn(async move {
                let (mut tcp, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                assert!(read_request(&mut tcp, &mut buf, true).await);
                tcp.write_all(&answer).await.unwrap();
                let _ = read_request(&mut tcp, &mut buf, true).await;
            });
            let pool = pool_for(&url, 4, Duration::from_secs(60));
            let mut body = pool
                .send(&Method::GET, &url, &HeaderMap::new(), Payload::default())
                .await
                .unwrap()
                .body;
            let (mut got, mut largest) = (Vec::new(), 0);
            while let Some(chunk) = std::future::poll_fn(|cx| body.poll_chunk(cx))
                .await
                .unwrap()
            {
                largest = largest.max(chunk.len());
                got.extend_from_slice(&chunk);
            }
            assert!(got == content(), "the body arrived whole and in order");
            assert!(largest > STACK_READ, "largest piece {largest} bytes");
            assert_eq!(pool.idle.lock().unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn a_body_that_breaks_its_framing_is_an_error_not_a_wait() {
        let broken: [&'static [&'static [u8]]; 3] = [
            &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n"],
            &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhello\r\n"],
            &[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"],
        ];
        for answers in broken {
            let (url, _) = scripted(answers).await;
            let pool = pool_for(&url, 4, Duration::from_secs(60));
            let (_, body) = call_with(&pool, &url, Payload::default()).await;
            let e = body.unwrap_err();
            assert_eq!(e.failure(), Failure::Body, "{e}");
            assert!(pool.idle.lock().unwrap().is_empty());
        }
        let (url, _) = scripted(&[b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx"]).await;
        let pool = pool_for(&url, 4, Duration::from_secs(60));
        let e = call_with(&pool, &url, Payload::default())
            .await
            .1
            .unwrap_err();
        assert!(e.to_string().contains("conflicting content-lengths"), "{e}");
    }

    /// An origin that answers from the head and stops reading (a 413 for a body it will not
    /// take) is heard: the call does not wait to finish writing a body nobody reads.
    #[tokio::test]
    async fn an_answer_that_comes_before_the_whole_body_went_out_is_returned() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Uri = format!("http://{}/v1", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let (done, held) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            assert!(read_request(&mut tcp, &mut buf, false).await);
            tcp.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!")
                .await
                .unwrap();
            // Holds the connection open, reading nothing more.
            let _ = held.await;
        });
        let pool = pool_for(&url, 4, Duration::from_secs(60));
        let body = Payload::from(vec![b'x'; 32 << 20]);
        let (status, answer) = call_with(&pool, &url, body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.unwrap().as_ref(), b"too big!");
        // Its connection still holds unsent request bytes: it is not kept.
        assert!(pool.idle.lock().unwrap().is_empty());
        drop(done);
    }

    #[test]
    fn the_request_head_frames_the_body_itself() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        let uri: Uri = "http://up.test:8080/v1/chat/completions?x=1"
            .parse()
            .unwrap();
        let host = HeaderValue::from_static("up.test:8080");
        let head = request_head(&Method::POST, &uri, Some(&host), &headers, 12);
        assert_eq!(
            head.as_ref(),
            b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: up.test:8080\r\nx-api-key: k\r\ncontent-length: 12\r\n\r\n"
        );
        let head = request_head(&Method::GET, &uri, None, &HeaderMap::new(), 0);
        assert_eq!(
            head.as_ref(),
            b"GET /v1/chat/completions?x=1 HTTP/1.1\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn calls_read_to_the_end_share_one_connection_and_an_unread_answer_drops_its_own() {
        let o = origin().await;
        let client = super::super::tests::client_for(&o.url.to_string());
        for _ in 0..5 {
            let resp = client
                .post(o.url.clone())
                .body(b"{}".to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.bytes().await.unwrap().as_ref(), b"ok");
        }
        assert_eq!(o.accepted.load(Ordering::SeqCst), 1);

        // An answer dropped before its end leaves its connection unusable: it is not kept.
        drop(client.post(o.url.clone()).send().await.unwrap());
        let resp = client.post(o.url.clone()).send().await.unwrap();
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"ok");
        assert_eq!(o.accepted.load(Ordering::SeqCst), 2);

        // Only the provider's own plain-HTTP origin has a pool of this kind.
        let pool = pool_for(&o.url, 1, Duration::from_secs(1));
        assert!(!pool.serves(&"http://127.0.0.1:9/v1".parse().unwrap()));
        let tls = "https://up.test/v1".parse().unwrap();
        assert!(Pool::for_origin(&tls, HttpConnector::new(), 1, Duration::from_secs(1)).is_none());
    }

    #[tokio::test]
    async fn a_kept_connection_the_origin_closed_is_replaced_without_failing_the_call() {
        let mut o = origin().await;
        let pool = pool_for(&o.url, 4, Duration::from_secs(60));
        assert_eq!(call(&pool, &o.url).await.as_ref(), b"ok");
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
        // The origin ends the kept connection while it waits in the pool.
        o.close.send(true).unwrap();
        o.ends.recv().await.unwrap();
        o.close.send(false).unwrap();
        assert_eq!(call(&pool, &o.url).await.as_ref(), b"ok");
        assert_eq!(o.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_and_closed_once_idle_past_the_timeout() {
        let mut o = origin().await;
        let pool = pool_for(&o.url, 2, Duration::from_millis(200));
        // Three calls at once: three connections, of which two are kept.
        tokio::join!(
            call(&pool, &o.url),
            call(&pool, &o.url),
            call(&pool, &o.url)
        );
        assert_eq!(o.accepted.load(Ordering::SeqCst), 3);
        assert_eq!(pool.idle.lock().unwrap().len(), 2);
        o.ends.recv().await.unwrap();
        // The reaper closes the other two once they have been idle past the timeout.
        o.ends.recv().await.unwrap();
        o.ends.recv().await.unwrap();
        assert!(pool.idle.lock().unwrap().is_empty());
        assert!(!pool.reaping.load(Ordering::SeqCst));
    }
}
