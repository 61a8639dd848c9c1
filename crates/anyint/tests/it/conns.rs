//! Slow and idle clients: the connection timers and the connection cap of `[server]`. Each test
//! waits for the server to close a socket (read returns 0 or an error), never for a time.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{TestGateway, user};

/// A gateway with 1 s connection timers.
async fn quick(extra: &str) -> TestGateway {
    TestGateway::builder()
        .server("header_read_timeout_secs = 1\nidle_timeout_secs = 1\nbody_read_timeout_secs = 1")
        .server(extra)
        .start()
        .await
}

async fn connect(gw: &TestGateway) -> TcpStream {
    TcpStream::connect(gw.gw.as_ref().unwrap().addr)
        .await
        .unwrap()
}

/// Reads until the server closes the socket; returns what it sent before.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A normal request on a fresh client, which must succeed. A client of its own: a connection
/// kept in the harness's pool may be the one the 1 s idle timer is closing as it is reused,
/// and the request would be lost in flight (a race of keep-alive, not of the gateway).
async fn served(gw: &TestGateway) {
    let resp = reqwest::Client::new()
        .post(gw.url("/openai/v1/chat/completions"))
        .bearer_auth(&gw.key)
        .json(&json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn silent_partial_and_idle_connections_are_closed_while_others_are_served() {
    let gw = quick("").await;
    // Sends nothing: closed before protocol detection ever ends.
    let mut silent = connect(&gw).await;
    // Half a request head.
    let mut partial = connect(&gw).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // An HTTP/2 preface cut short (the protocol is not yet known).
    let mut preface = connect(&gw).await;
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    // One full request, then idle on the kept-alive connection.
    let mut idle = connect(&gw).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    // Meanwhile other clients are served.
    served(&gw).await;

    assert_eq!(until_closed(&mut silent).await, "");
    assert_eq!(until_closed(&mut partial).await, "");
    assert_eq!(until_closed(&mut preface).await, "");
    let answered = until_closed(&mut idle).await;
    assert!(
        answered.starts_with("HTTP/1.1 200"),
        "the idle connection's request was answered before it closed: {answered}"
    );
    assert_eq!(
        answered.matches("HTTP/1.1").count(),
        1,
        "one answer, then closed"
    );
    served(&gw).await;
    gw.shutdown().await;
}

/// The protocol is told from a connection's first bytes, peeked: a head that comes a byte at
/// a time (its first, `P`, could begin an HTTP/2 preface) is still served as HTTP/1, and one
/// that turns out to be HTTP/1 after a few bytes is not misread. No body: the gateway answers
/// a keyless request from its head and closes, and a body still arriving byte by byte would
/// meet a reset (a race of the test, not of the gateway).
#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_served() {
    let gw = quick("").await;
    let mut s = connect(&gw).await;
    s.set_nodelay(true).unwrap();
    let head = b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    for byte in head {
        s.write_all(std::slice::from_ref(byte)).await.unwrap();
        s.flush().await.unwrap();
    }
    let answered = until_closed(&mut s).await;
    assert!(
        answered.starts_with("HTTP/1.1 401"),
        "answered in HTTP/1.1 (no key): {answered}"
    );
    assert!(
        answered.contains("\"code\":\"invalid_api_key\""),
        "the OpenAI envelope: {answered}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_request_head_is_timed_from_its_first_byte_not_by_the_idle_timer() {
    // An hour of idle allowance: only the header timer can close this connection.
    let gw = TestGateway::builder()
        .server("header_read_timeout_secs = 1\nidle_timeout_secs = 3600")
        .start()
        .await;
    let mut s = connect(&gw).await;
    s.write_all(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut s).await, "");
    served(&gw).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_slow_body_gets_408_in_the_family_envelope() {
    let gw = quick("").await;
    for (path, check) in [
        (
            "/openai/v1/chat/completions",
            "\"type\":\"invalid_request_error\"",
        ),
        ("/anthropic/v1/messages", "\"type\":\"timeout_error\""),
        (
            "/dashscope/v1/services/aigc/text2image/image-synthesis",
            "\"code\":\"RequestTimeOut\"",
        ),
        ("/music/v1/generate", "\"code\":408"),
    ] {
        let mut s = connect(&gw).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":",
            key = gw.key
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let answer = until_closed(&mut s).await;
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{path}: a stalled body is answered 408: {answer}"
        );
        assert!(answer.contains(check), "{path}: family envelope: {answer}");
        assert!(answer.contains("stalled"), "{path}: {answer}");
    }
    served(&gw).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn over_the_connection_cap_clients_wait_and_are_served_when_a_slot_frees() {
    // Timers of an hour: only closing a held connection frees a slot.
    let gw = TestGateway::builder()
        .server("max_connections = 2\nidle_timeout_secs = 3600\nheader_read_timeout_secs = 3600")
        .start()
        .await;
    let running = gw.gw.as_ref().unwrap();
    assert_eq!(running.connection_cap(), 2);
    // Two connections hold both slots (one request each, kept alive).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&gw).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    assert_eq!(running.open_connections(), 2);
    // A third client connects (the kernel's backlog takes it) and sends its request.
    let mut third = connect(&gw).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // It is not accepted while both slots are held. (The wait only gives a broken cap the
    // chance to show; a working one never answers here, however long the wait.)
    let mut buf = [0u8; 1];
    let early =
        tokio::time::timeout(std::time::Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "served over the cap");
    assert_eq!(running.open_connections(), 2);
    // One held connection closes: the third is accepted and answered.
    drop(held.pop());
    let answer = until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(running.open_connections() <= 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_long_request_is_not_cut_by_the_idle_timer() {
    // The upstream's delay holds the request in flight past the 1 s timers.
    let gw = quick("").await;
    let resp = gw
        .chat(json!({"model": "gpt-4o-mini", "messages": user("[emulate: latency_ms=2500] hi")}))
        .await;
    assert_eq!(resp.status(), 200);
    // And a stream whose chunks come further apart than the timers.
    let resp = gw
        .chat(json!({"model": "gpt-4o-mini", "stream": true, "messages": user("[emulate: chunk_delay_ms=1200] hi")}))
        .await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("[DONE]"), "the stream ended properly: {body}");
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_requests_and_slow_streams_are_not_cut_by_the_timers() {
    let gw = quick("").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let chat = |text: &str, stream: bool| {
        h2.post(gw.url("/openai/v1/chat/completions"))
            .bearer_auth(&gw.key)
            .json(&json!({"model": "gpt-4o-mini", "stream": stream, "messages": user(text)}))
            .send()
    };
    let resp = chat("hi", false).await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let resp = chat("[emulate: chunk_delay_ms=1200] hi", true)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("[DONE]"), "the stream ended properly: {body}");
    gw.shutdown().await;
}

/// `[server] workers = 3` starts three serving threads; streams held open on many connections
/// at once are all served to their end, and a shutdown begun while they stream waits for
/// every worker's streams before it returns.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_serves_and_shutdown_waits_for_all_their_streams() {
    let before = crate::harness::worker_threads("self").len();
    let gw = TestGateway::builder().server("workers = 3").start().await;
    let names = crate::harness::worker_threads("self");
    assert_eq!(names.len() - before, 3, "{names:?}");
    for i in 1..=3 {
        assert!(names.contains(&format!("anyint-worker-{i}")), "{names:?}");
    }
    // Separate clients: separate connections, which the workers accept between them.
    let (begun, mut started) = tokio::sync::mpsc::channel::<()>(12);
    let streams: Vec<_> = (0..12)
        .map(|i| {
            let url = gw.url("/openai/v1/chat/completions");
            let key = gw.key.clone();
            let begun = begun.clone();
            tokio::spawn(async move {
                let resp = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"model": "gpt-4o-mini", "stream": true,
                        "messages": user(&format!("[emulate: chunk_delay_ms=150] stream {i}"))}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                begun.send(()).await.unwrap();
                resp.text().await.unwrap()
            })
        })
        .collect();
    // Every stream has its response head before the shutdown begins.
    for _ in 0..12 {
        started.recv().await.unwrap();
    }
    let store = gw.store.clone();
    gw.shutdown().await;
    // Had the shutdown not waited for every worker's streams, their usage rows would come
    // after the meter's last flush.
    let rows = store
        .usage(&anyint::store::UsageQuery {
            limit: 100,
            ..anyint::store::UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        12,
        "every stream metered before shutdown returned"
    );
    for s in streams {
        let body = s.await.unwrap();
        assert!(body.contains("[DONE]"), "cut short by the shutdown: {body}");
    }
}

/// A burst of connections (all in the listen backlog before any is accepted) is spread over
/// the workers: a worker two connections ahead of another hands the next one to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connections_is_spread_over_the_workers() {
    let gw = TestGateway::builder().server("workers = 2").start().await;
    let running = gw.gw.as_ref().unwrap();
    let addr = running.addr;
    let mut open: Vec<TcpStream> =
        futures_util::future::join_all((0..32).map(|_| TcpStream::connect(addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    for s in &mut open {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    let by_worker = running.connections_by_worker();
    assert_eq!(by_worker.iter().sum::<usize>(), 32, "{by_worker:?}");
    // Spread by the counts (a worker two ahead hands the socket over), not by timing: two
    // workers accepting at the same moment can each take one before the other's count shows.
    let (min, max) = (by_worker.iter().min(), by_worker.iter().max());
    assert!(max.unwrap() - min.unwrap() <= 4, "{by_worker:?}");
    drop(open);
    gw.shutdown().await;
}

/// The framing an answer went out with: its `content-length` and whether it was chunked.
fn framing(resp: &reqwest::Response) -> (Option<usize>, bool) {
    let length = resp
        .headers()
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let chunked = resp
        .headers()
        .get("transfer-encoding")
        .is_some_and(|v| v.to_str().unwrap().contains("chunked"));
    (length, chunked)
}

#[tokio::test]
async fn a_whole_answer_carries_its_length_and_a_stream_goes_chunked() {
    let gw = TestGateway::start().await;
    // An answer, and a refusal in the family's envelope: both whole.
    for (model, status) in [("gpt-4o-mini", 200), ("no-such-model", 404)] {
        let whole = gw
            .chat(json!({"model": model, "messages": user("hi")}))
            .await;
        assert_eq!(whole.status(), status);
        let (length, chunked) = framing(&whole);
        let body = whole.bytes().await.unwrap();
        assert_eq!((length, chunked), (Some(body.len()), false), "{model}");
    }

    let stream = gw
        .chat(json!({"model": "gpt-4o-mini", "stream": true, "messages": user("hi")}))
        .await;
    assert_eq!(stream.status(), 200);
    assert_eq!(framing(&stream), (None, true));
    assert!(stream.text().await.unwrap().contains("data: [DONE]"));
}
