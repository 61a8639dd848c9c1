//! The proxy benchmark's floor: the gateway's HTTP stack and nothing else.
//!
//! `bench/proxy.sh` runs it beside nginx `proxy_pass` and the gateway. It serves like the
//! gateway (one thread a core, each with its own single-threaded runtime accepting from the
//! shared listening socket, a router, mimalloc; it keeps `axum::serve`, whose protocol
//! sniffing costs a read and 8 KB of buffer a connection that the gateway's own accept loop,
//! `server::serve`, avoids) and forwards like it (the
//! gateway's upstream client, one per thread: its kept connections, `TCP_NODELAY`), but does no
//! gateway work: no key, no limits, no body scan, no routing, no metering. Each request goes
//! to the upstream with its path and headers unchanged and its body read whole (as the gateway
//! reads it), and the answer is streamed back as it comes. What it costs is the part of the
//! gateway's cost that is hyper's, axum's, Tokio's and the upstream client's; what the gateway
//! costs above it is the gateway's own work.
//!
//! `cargo run --release --example bare_proxy -- LISTEN UPSTREAM WORKERS`, for example
//! `127.0.0.1:0 http://127.0.0.1:8081 2`; it prints `bare proxy listening on http://ADDR`.

use anyint::providers::http::Client;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use http::StatusCode;
use http::uri::{PathAndQuery, Uri};

// The gateway's allocator, so that memory and CPU compare like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What each worker forwards with.
#[derive(Clone)]
struct Forward {
    client: Client,
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
        // The gateway's client for a provider whose `base_url` is the upstream.
        let config = format!(
            "[[providers]]\nname = \"floor\"\nkind = \"openai\"\nbase_url = \"{upstream}\"\napi_key = \"-\"\n"
        );
        let config = anyint::config::Config::parse(&config, "bare_proxy", &|_| None)
            .map_err(|e| std::io::Error::other(e.message))?;
        let provider = config.providers.first().ok_or_else(|| std::io::Error::other("no provider"))?;
        let client = Client::new(provider).map_err(|e| std::io::Error::other(e.message))?;
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
async fn forward(State(f): State<Forward>, req: Request) -> Response {
    let mut parts = f.upstream.into_parts();
    parts.path_and_query = req
        .uri()
        .path_and_query()
        .cloned()
        .or_else(|| Some(PathAndQuery::from_static("/")));
    let uri = match Uri::from_parts(parts) {
        Ok(uri) => uri,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let (head, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut call = f.client.post(uri).body(body);
    for (name, value) in &head.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            call = call.header(name.clone(), value.clone());
        }
    }
    match call.send().await {
        Ok(resp) => {
            let status = resp.status();
            let content_type = resp.headers().get(http::header::CONTENT_TYPE).cloned();
            let mut out = Response::new(Body::from_stream(resp.into_stream()));
            *out.status_mut() = status;
            if let Some(v) = content_type {
                out.headers_mut().insert(http::header::CONTENT_TYPE, v);
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
