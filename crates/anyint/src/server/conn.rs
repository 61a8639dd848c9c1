//! Client connections: the connection cap, and the timers that close a connection which sends
//! nothing, sends a request head too slowly, sits idle between requests, or stalls a body.
//!
//! hyper's own header timer starts only once it knows the protocol (HTTP/1 or HTTP/2), so a
//! connection that sends nothing is never timed by it. Here the timing is in the socket
//! itself ([`TimedIo`]): while no request of the connection is in flight, a read waits at
//! most until the connection's deadline — `idle_timeout` after accept or after the last
//! response ended, or `header_read_timeout` after the first byte of a new request head — and
//! then fails, which makes hyper drop the connection. A request in flight (its response body
//! included, so streams are never cut) suspends the deadline; [`track`] marks it.
//!
//! The cap is a semaphore taken before `accept`: over it, new connections wait in the
//! kernel's listen backlog and are served as others close.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};

use tokio_rustls::TlsAcceptor;

use super::tls::{Protocol, Transport};
use crate::config::ServerConfig;
use crate::error::BodyStalled;

/// The connection timers of `[server]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    header: Duration,
    idle: Duration,
    body: Duration,
}

impl Timeouts {
    pub(crate) fn new(c: &ServerConfig) -> Self {
        Self {
            header: c.header_read_timeout,
            idle: c.idle_timeout,
            body: c.body_read_timeout,
        }
    }
}

/// What a connection's deadline depends on.
#[derive(Debug)]
struct ClockState {
    /// Requests of this connection in flight (HTTP/2 may have several).
    inflight: usize,
    /// Since when no request has been in flight.
    idle_since: Instant,
    /// When the first byte after `idle_since` arrived: a request head has begun.
    head_started: Option<Instant>,
}

/// One connection's activity, shared by its socket and its requests.
#[derive(Debug)]
pub(crate) struct ConnClock {
    timeouts: Timeouts,
    state: Mutex<ClockState>,
}

impl ConnClock {
    fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            state: Mutex::new(ClockState {
                inflight: 0,
                idle_since: Instant::now(),
                head_started: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // The state is plain data, valid after any panic: recover it rather than propagate.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the connection is closed if nothing changes; `None` while a request is in flight.
    fn deadline(&self) -> Option<Instant> {
        let s = self.lock();
        if s.inflight > 0 {
            return None;
        }
        Some(match s.head_started {
            Some(t) => t + self.timeouts.header,
            None => s.idle_since + self.timeouts.idle,
        })
    }

    /// Bytes arrived: while idle, they start a request head's timer.
    fn received(&self) {
        let mut s = self.lock();
        if s.inflight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
    }

    /// A request began; the returned guard ends it when dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        super::trim::note_request();
        let mut s = self.lock();
        s.inflight += 1;
        s.head_started = None;
        InFlight(self.clone())
    }
}

/// A request in flight on its connection, until its response body is dropped.
struct InFlight(Arc<ConnClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        super::trim::note_end();
        let mut s = self.0.lock();
        s.inflight = s.inflight.saturating_sub(1);
        if s.inflight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
    }
}

/// How many connections each serving worker holds, and a hand-off channel into each worker.
/// Every worker's runtime is woken for a new connection and the first to call `accept` takes
/// it; without this, one worker can take a whole burst (a load balancer's or a client's pool
/// opened at once) and serve it alone while the other cores idle. A worker that accepts while
/// holding two or more connections above the least busy one hands the socket to that worker.
/// Counts are taken at accept (and at hand-off, for the receiver), so a burst is spread by
/// the counts alone, whichever thread the kernel wakes first.
#[derive(Debug)]
pub(crate) struct Balance {
    open: Box<[AtomicUsize]>,
    handoff: Box<[mpsc::UnboundedSender<Handed>]>,
}

/// An accepted socket on its way to a less busy worker, already counted for it.
#[derive(Debug)]
pub(crate) struct Handed {
    tcp: std::net::TcpStream,
    addr: SocketAddr,
    held: Held,
}

/// A worker's end of its hand-off channel.
pub(crate) type Handoffs = mpsc::UnboundedReceiver<Handed>;

impl Balance {
    /// The balance of `workers` workers and each worker's receiving end, in worker order.
    pub(crate) fn new(workers: usize) -> (Arc<Self>, Vec<Handoffs>) {
        let workers = workers.max(1);
        let (senders, receivers) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let balance = Self {
            open: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            handoff: Vec::into_boxed_slice(senders),
        };
        (Arc::new(balance), receivers)
    }

    /// Connections open on each worker.
    pub(crate) fn counts(&self) -> Vec<usize> {
        (0..self.open.len()).map(|w| self.count(w)).collect()
    }

    fn count(&self, worker: usize) -> usize {
        self.open[worker].load(Ordering::Relaxed)
    }

    /// The least busy worker, when `worker` holds at least two connections more than it.
    fn less_busy_than(&self, worker: usize) -> Option<usize> {
        let (least, n) = (0..self.open.len())
            .map(|w| (w, self.count(w)))
            .min_by_key(|&(_, n)| n)?;
        (self.count(worker) >= n + 2).then_some(least)
    }

    fn hold(self: &Arc<Self>, worker: usize) -> Held {
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        Held(self.clone(), worker)
    }

    /// Passes `tcp` to `worker`; gives it back if that worker no longer takes connections.
    fn hand(
        self: &Arc<Self>,
        worker: usize,
        tcp: std::net::TcpStream,
        addr: SocketAddr,
    ) -> Result<(), std::net::TcpStream> {
        let handed = Handed {
            tcp,
            addr,
            held: self.hold(worker),
        };
        self.handoff[worker].send(handed).map_err(|e| e.0.tcp)
    }
}

/// One connection counted for its worker until dropped.
#[derive(Debug)]
struct Held(Arc<Balance>, usize);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// The listener: the connection cap, and a [`TimedIo`] around every accepted socket.
pub(crate) struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    timeouts: Timeouts,
    tls: Option<TlsAcceptor>,
    /// The workers' connection counts, this worker's index among them, and the sockets other
    /// workers hand to it.
    balance: Arc<Balance>,
    worker: usize,
    handed: Handoffs,
}

impl CappedListener {
    /// Worker `worker`'s listener; `slots` (the connection cap) and `balance` are shared by
    /// every worker, `handed` is this worker's end of its hand-off channel.
    pub(crate) fn new(
        inner: TcpListener,
        slots: Arc<Semaphore>,
        timeouts: Timeouts,
        tls: Option<TlsAcceptor>,
        balance: Arc<Balance>,
        worker: usize,
        handed: Handoffs,
    ) -> Self {
        Self {
            inner,
            slots,
            timeouts,
            tls,
            balance,
            worker,
            handed,
        }
    }

    /// The next connection for this worker: handed over by another worker, or accepted here
    /// (and handed on when this worker is the busier one).
    async fn next(&mut self) -> (TcpStream, SocketAddr, Held) {
        loop {
            tokio::select! {
                biased;
                Some(h) = self.handed.recv() => match TcpStream::from_std(h.tcp) {
                    Ok(tcp) => return (tcp, h.addr, h.held),
                    Err(e) => tracing::warn!(error = %e, "taking over a connection failed"),
                },
                accepted = self.inner.accept() => match accepted {
                    Ok((tcp, addr)) => {
                        let Some(other) = self.balance.less_busy_than(self.worker) else {
                            return (tcp, addr, self.balance.hold(self.worker));
                        };
                        let tcp = match tcp.into_std() {
                            Ok(std) => match self.balance.hand(other, std, addr) {
                                Ok(()) => continue,
                                Err(std) => TcpStream::from_std(std),
                            },
                            Err(e) => Err(e),
                        };
                        match tcp {
                            Ok(tcp) => return (tcp, addr, self.balance.hold(self.worker)),
                            Err(e) => tracing::warn!(error = %e, "handing a connection over failed"),
                        }
                    }
                    Err(e) => {
                        // Out of descriptors (or a connection reset before accept): back off
                        // briefly instead of spinning, as axum's own listener does.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }

    /// The next connection, once the cap has a slot for it.
    pub(crate) async fn accept(&mut self) -> (TimedIo, SocketAddr) {
        // Wait for a free slot before accepting: over the cap, connections queue in the backlog.
        let permit = match self.slots.clone().acquire_owned().await {
            Ok(p) => p,
            // The semaphore is never closed; should it be, stop accepting rather than spin.
            Err(_) => std::future::pending().await,
        };
        let (tcp, addr, held) = self.next().await;
        // Nagle's algorithm would hold small SSE writes back on reused connections.
        let _ = tcp.set_nodelay(true);
        let clock = Arc::new(ConnClock::new(self.timeouts));
        let io = Transport::new(tcp, self.tls.as_ref());
        (TimedIo::new(io, clock, permit, held), addr)
    }
}

/// An accepted socket whose reads fail once the connection's deadline passes with no request
/// in flight. Holds one slot of the connection cap until it is dropped.
pub(crate) struct TimedIo {
    tcp: Transport,
    clock: Arc<ConnClock>,
    timer: Pin<Box<Sleep>>,
    // Fields drop in this order: the connection leaves its worker's count before its slot
    // frees, so a connection accepted into the slot never finds the count over the cap.
    _held: Held,
    _slot: OwnedSemaphorePermit,
}

impl TimedIo {
    /// The protocol the connection speaks, when its first bytes (plain) or its handshake's
    /// ALPN (TLS) tell before the connection's deadline; `None` leaves it to hyper-util's own
    /// sniffing. Peeked bytes stay in the socket for hyper's first read.
    pub(crate) async fn protocol(&mut self) -> Option<Protocol> {
        let deadline = self.clock.deadline()?;
        tokio::time::timeout_at(deadline, self.tcp.protocol())
            .await
            .ok()
            .flatten()
    }

    fn new(tcp: Transport, clock: Arc<ConnClock>, slot: OwnedSemaphorePermit, held: Held) -> Self {
        let first = clock.deadline().unwrap_or_else(Instant::now);
        Self {
            tcp,
            clock,
            timer: Box::pin(tokio::time::sleep_until(first)),
            _held: held,
            _slot: slot,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "connection idle or request head too slow",
    )
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Nothing to read: wait no longer than the deadline (none while a request is
                // in flight; hyper reads again when it ends, which re-arms the timer).
                let Some(deadline) = this.clock.deadline() else {
                    return Poll::Pending;
                };
                // The timer is moved only when the deadline comes nearer (a request head
                // began) or when it fires early; a deadline pushed later by each request
                // costs no timer operation per request.
                if this.timer.deadline() > deadline {
                    this.timer.as_mut().reset(deadline);
                }
                ready!(crate::clock::poll_deadline(
                    this.timer.as_mut(),
                    deadline,
                    cx
                ));
                Poll::Ready(Err(timed_out()))
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The connection a request came on: its peer address and its clock.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    clock: Arc<ConnClock>,
}

impl Peer {
    /// The connection `io`, accepted from `addr`.
    pub(crate) fn of(io: &TimedIo, addr: SocketAddr) -> Self {
        Self {
            addr,
            clock: io.clock.clone(),
        }
    }
}

/// The connection a request came on, as the router's path hands it over (an extension).
pub(crate) fn peer_of(req: &Request) -> Option<Peer> {
    req.extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.clone())
}

/// Around `inner` (the outermost step of the edge): marks the request in flight on `peer`,
/// its connection, until its response body is done, and fails a request body that stalls
/// longer than `body_read_timeout`.
pub(crate) async fn track<F, Fut>(req: Request, peer: Option<Peer>, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(peer) = peer else {
        return inner(req).await;
    };
    let guard = peer.clock.begin();
    let stall = peer.clock.timeouts.body;
    let req = req.map(|body| Body::new(StallBody::new(body, stall)));
    let resp = inner(req).await;
    resp.map(|inner| {
        Body::new(Answer {
            inner,
            _guard: guard,
        })
    })
}

/// A response body that keeps its request in flight until it is dropped, after its last
/// byte. It passes on the body's size: a `map_frame` wrapper did not, so every answer went out
/// chunked, a whole JSON answer too, instead of with its `content-length`.
struct Answer {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails with [`BodyStalled`] when no frame arrives for `stall` (the timer
/// starts when the handler first reads). One timer serves the whole body: a frame only notes
/// its time, and the timer, when it fires, is set again to the last frame's time + `stall`.
struct StallBody {
    inner: Body,
    stall: Duration,
    /// When the last frame arrived (or the first read began).
    last: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl StallBody {
    fn new(inner: Body, stall: Duration) -> Self {
        Self {
            inner,
            stall,
            last: None,
            timer: None,
        }
    }
}

impl HttpBody for StallBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.last = Some(Instant::now());
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let deadline = *this.last.get_or_insert_with(Instant::now) + this.stall;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                ready!(crate::clock::poll_deadline(timer.as_mut(), deadline, cx));
                Poll::Ready(Some(Err(axum::Error::new(BodyStalled(this.stall)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Raises the soft limit on open files to the hard limit (connections, the store and upstream
/// sockets all need descriptors), and returns the soft limit now in force (`None`: unlimited
/// or unknown).
#[cfg(unix)]
pub(crate) fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit (`None`) cannot be the soft one for open files (the kernel caps
    // it); the soft limit is then left as it is.
    if let Some(hard) = limit.maximum
        && limit.current != Some(hard)
    {
        let raised = rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = ?limit.current, hard = ?limit.maximum, "could not raise the open-file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Not unix: the limit is the platform's.
#[cfg(not(unix))]
pub(crate) fn raise_fd_limit() -> Option<u64> {
    None
}

/// The connection cap in force: `max_connections`, but never more than the descriptors left
/// after `fd_reserve` (at least 1).
pub(crate) fn effective_cap(c: &ServerConfig, fd_soft_limit: Option<u64>) -> usize {
    let Some(soft) = fd_soft_limit else {
        return c.max_connections;
    };
    let available = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(c.fd_reserve)
        .max(1);
    if available < c.max_connections {
        tracing::warn!(
            max_connections = c.max_connections,
            fd_soft_limit = soft,
            fd_reserve = c.fd_reserve,
            cap = available,
            "the open-file limit lowers the connection cap; raise `ulimit -n` to allow more"
        );
    }
    c.max_connections.min(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(max_connections: usize, fd_reserve: usize) -> ServerConfig {
        let mut c = crate::config::Config::parse("", "t.toml", &|_| None)
            .unwrap()
            .server;
        c.max_connections = max_connections;
        c.fd_reserve = fd_reserve;
        c
    }

    #[test]
    fn the_cap_leaves_the_reserve_of_descriptors_free() {
        // The case: 256 descriptors. The cap leaves 128 for the store and upstreams.
        assert_eq!(effective_cap(&server(4096, 128), Some(256)), 128);
        assert_eq!(effective_cap(&server(100, 128), Some(1_048_576)), 100);
        assert_eq!(effective_cap(&server(4096, 128), None), 4096);
        assert_eq!(effective_cap(&server(4096, 128), Some(64)), 1, "never zero");
    }
}
