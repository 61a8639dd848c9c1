//! The proxy benchmark's floor: the gateway's HTTP stack and nothing else.
//!
//! `bench/proxy.sh` runs it beside nginx `proxy_pass` and the gateway. It serves like the
//! gateway (one thread a core, each with its own single-threaded runtime accepting from the
//! shared listening socket, `axum::serve`, a router, mimalloc) and forwards like it (hyper's pooled
//! client per thread, `TCP_NODELAY`, its idle pool's bounds), but does no
//! gateway work: no key, no limits, no body scan, no routing, no metering. Each request goes
//! to the upstream with its path unchanged and its body and answer streamed through. What it
//! costs is the part of the gateway's cost that is hyper's, axum's and Tokio's; what the
//! gateway costs above it is the gateway's own work.
//!
//! `cargo run --release --example bare_proxy -- LISTEN UPSTREAM WORKERS`, for example
//! `127.0.0.1:0 http://127.0.0.1:8081 2`; it prints `bare proxy listening on http://ADDR`.

use std::time::Duration;

use anyint::providers::http::client::{IDLE_PER_HOST, IDLE_TIMEOUT};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use http::StatusCode;
use http::uri::{PathAndQuery, Uri};
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};

// The gateway's allocator, so that memory and CPU compare like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What each worker forwards with.
#[derive(Clone)]
struct Forward {
    client: legacy::Client<HttpConnector, Body>,
    /// `scheme://authority` of the upstream.
    upstream: Uri,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy LISTEN UPSTREAM WORKERS";
    let listen = args.next().ok_or(usage)?;
    let upstream: Uri = args.next().ok_or(usage)?.parse()?;
    let workers: usize = args.next().ok_or(usage)?.parse()?;
    let listener = std::net::TcpListener::bind(&listen)?;
    listener.set_nonblocking(true)?;
    println!("bare proxy listening on http://{}", listener.local_addr()?);
    let threads = (0..workers.max(1))
        .map(|_| {
            let listener = listener.try_clone()?;
            let upstream = upstream.clone();
            Ok(std::thread::spawn(move || serve(listener, upstream)))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    for t in threads {
        t.join().map_err(|_| "a worker panicked")??;
    }
    Ok(())
}

/// One worker: its runtime, its client pool, its share of the accepts.
fn serve(listener: std::net::TcpListener, upstream: Uri) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(Duration::from_secs(60)));
        let client = legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(tcp);
        let app = Router::new()
            .fallback(forward)
            .with_state(Forward { client, upstream });
        let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await
    })
}

/// Sends the request upstream as it came (path, headers, body) and answers with the upstream's
/// answer as it comes.
async fn forward(State(f): State<Forward>, mut req: Request) -> Response {
    let mut parts = f.upstream.into_parts();
    parts.path_and_query = req
        .uri()
        .path_and_query()
        .cloned()
        .or_else(|| Some(PathAndQuery::from_static("/")));
    match Uri::from_parts(parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
    match f.client.request(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
