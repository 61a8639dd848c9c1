//! Kept HTTP/1.1 connections to one plain-HTTP origin (a self-hosted model server, a sidecar):
//! the client's own pool for its provider's `base_url` when that is `http://`.
//!
//! hyper_util's pooled client, which serves every other call, costs a call about as much as
//! the rest of hyper's client path: it hashes the origin with SipHash byte by byte to check a
//! connection out and again to put it back, and spawns a task per call that waits for the
//! connection to be free again. A client talks to one origin, so this pool is a list: a call
//! takes the connection used last, and the answer's body puts it back when it has been read to
//! its end. A connection whose answer was not read to the end is dropped, and hyper closes it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use super::{Failure, PayloadBody, TransportError};

/// One origin's idle connections, most recently used last.
pub(super) struct Pool {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` a call without one is sent with (hyper's pooled client adds it too).
    host: Option<HeaderValue>,
    connector: HttpConnector,
    idle: Mutex<Vec<Idle>>,
    /// A task that closes connections idle past the timeout is running.
    reaping: AtomicBool,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    conn: http1::SendRequest<PayloadBody>,
    since: Instant,
}

/// A connection out of the pool for one call, put back by [`Lease::release`].
pub(super) struct Lease {
    pool: Arc<Pool>,
    conn: http1::SendRequest<PayloadBody>,
}

impl Lease {
    /// The call's answer was read to its end: the connection can carry another call once
    /// hyper is ready to send one on it, which it is by now unless the upstream answered before
    /// reading the whole request. Such a connection is closed rather than kept, so that no call
    /// waits on a connection still busy sending an earlier body.
    pub(super) fn release(self) {
        if self.conn.is_ready() {
            self.pool.put(self.conn);
        }
    }
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

    /// Sends `req` (to this pool's origin) on a kept connection, or a new one. A kept
    /// connection the server closed before the request went out is dropped and the request
    /// tried on the next, as hyper's pooled client does; a request that went out is never sent
    /// twice.
    pub(super) async fn send(
        self: &Arc<Self>,
        mut req: http::Request<PayloadBody>,
    ) -> Result<(http::Response<Incoming>, Lease), TransportError> {
        let origin_form = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(origin_form);
        if let Some(host) = &self.host {
            req.headers_mut()
                .entry(http::header::HOST)
                .or_insert_with(|| host.clone());
        }
        loop {
            let (mut conn, kept) = match self.take() {
                Some(conn) => (conn, true),
                // Boxed: the connector's future is large, and rarely needed.
                None => (Box::pin(self.connect()).await?, false),
            };
            if let Err(e) = conn.ready().await {
                if kept {
                    continue;
                }
                return Err(TransportError::from_source(Failure::Other, &e));
            }
            match conn.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        pool: Arc::clone(self),
                        conn,
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if kept => req = unsent,
                    _ => return Err(TransportError::from_source(Failure::Other, e.error())),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open; closed and expired ones
    /// are dropped on the way.
    fn take(&self) -> Option<http1::SendRequest<PayloadBody>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(Idle { conn, since }) = idle.pop() {
            if !conn.is_closed() && since.elapsed() < self.idle_timeout {
                return Some(conn);
            }
        }
        None
    }

    /// A new connection, its reading and writing driven by a task of its own.
    async fn connect(&self) -> Result<http1::SendRequest<PayloadBody>, TransportError> {
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
        let (conn, driver) = http1::Builder::new()
            .handshake(tcp)
            .await
            .map_err(|e| TransportError::from_source(Failure::Connect, &e))?;
        tokio::spawn(async move {
            // A connection error reaches the call through its answer; nothing to add here.
            let _ = driver.await;
        });
        Ok(conn)
    }

    /// Keeps `conn` for the next call, unless the pool is full or the connection closed.
    fn put(self: &Arc<Self>, conn: http1::SendRequest<PayloadBody>) {
        if conn.is_closed() {
            return;
        }
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
                idle.retain(|i| !i.conn.is_closed() && i.since.elapsed() < pool.idle_timeout);
                let Some(oldest) = idle.first() else {
                    pool.reaping.store(false, Ordering::Release);
                    return;
                };
                wake = oldest.since + pool.idle_timeout;
            }
        });
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
                        () = answer_all(&mut tcp) => {}
                        () = async { drop(closing.wait_for(|c| *c).await) } => {
                            let _ = tcp.shutdown().await;
                            let mut rest = [0u8; 64];
                            while matches!(tcp.read(&mut rest).await, Ok(n) if n > 0) {}
                        }
                    }
                    let _ = ended.send(());
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

    /// Answers requests (a head, then `content-length` bytes of body) until the client goes.
    async fn answer_all(tcp: &mut TcpStream) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 4096];
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..head_end + len);
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

    /// One call through `pool`, its answer read to the end before the connection goes back.
    async fn call(pool: &Arc<Pool>, url: &Uri) -> bytes::Bytes {
        let body = super::super::Payload::from(b"{}".to_vec()).into_body();
        let (resp, lease) = pool
            .send(http::Request::post(url.clone()).body(body).unwrap())
            .await
            .unwrap();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap();
        lease.release();
        body.to_bytes()
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
