//! Routing that survives upstream failure: retries, failover, fallbacks, breakers, deadlines,
//! key rotation, client disconnects. Faults come from the emulator; no test asserts on time.

use serde_json::{Value, json};

use crate::harness::{TestGateway, UPSTREAM_KEY, request_id, sse_data, user};

/// Extra providers and models for these tests. Upstream model names may carry an emulator
/// fault suffix (`model+fault`), which makes one route misbehave while another is healthy.
const ROUTING: &str = r#"
[[providers]]
name = "emu2"
kind = "openai"
base_url = "{emulator}/v1"
api_key = ["wrong-key", "test-upstream-key"]

[[models]]
id = "hung-then-ok"
ttfb_timeout_ms = 300
routes = [
  { provider = "emu", upstream_model = "gpt-4o-mini+latency_ms=10000,tag=hung", priority = 0 },
  { provider = "emu", upstream_model = "gpt-4o-mini", priority = 1 },
]

[[models]]
id = "idle-stream"
idle_timeout_ms = 300
routes = [{ provider = "emu", upstream_model = "gpt-4o-mini+chunk_delay_ms=5000" }]

[[models]]
id = "long-stream"
total_timeout_ms = 600
routes = [{ provider = "emu", upstream_model = "gpt-4o-mini+chunk_delay_ms=200" }]

[[models]]
id = "total-then-ok"
total_timeout_ms = 300
routes = [
  { provider = "emu", upstream_model = "gpt-4o-mini+latency_ms=10000,tag=slowtotal", priority = 0 },
  { provider = "emu", upstream_model = "gpt-4o-mini", priority = 1 },
]

[[models]]
id = "with-fallback"
fallbacks = ["gpt-4o"]
routes = [{ provider = "dead", upstream_model = "gpt-4o" }]

[[models]]
id = "all-down"
routes = [{ provider = "dead", upstream_model = "a" }, { provider = "dead", upstream_model = "b" }]

[[models]]
id = "flaky-pair"
routes = [
  { provider = "emu", upstream_model = "gpt-4o-mini+status=503,tag=bad" },
  { provider = "emu", upstream_model = "gpt-4o-mini+tag=good" },
]

[[models]]
id = "rotating"
routes = [{ provider = "emu2", upstream_model = "gpt-4o-mini" }]
"#;

async fn start() -> TestGateway {
    TestGateway::builder().toml(ROUTING).start().await
}

async fn count(t: &TestGateway, tag: &str) -> u64 {
    t.emulator_count(tag).await
}

#[tokio::test]
async fn two_503s_then_success_is_retried_and_billed_once() {
    let t = start().await;
    let resp = t.chat(json!({"model": "gpt-4o-mini", "messages": user("Reply with exactly: third [emulate: status=503 times=2 tag=r3]")})).await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    assert_eq!(resp.headers()["x-anyint-route"], "emu/gpt-4o-mini");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "third");
    assert_eq!(count(&t, "r3").await, 3);
    let rows = t.usage(&rid).await;
    assert_eq!(rows.len(), 1, "billed once");
    assert_eq!((rows[0].status, rows[0].outcome.as_str()), (200, "ok"));
    assert!(rows[0].completion_tokens > 0);
}

#[tokio::test]
async fn retry_after_within_budget_is_waited_out_and_beyond_it_is_returned() {
    let t = start().await;
    let resp = t.chat(json!({"model": "gpt-4o-mini", "messages": user("Reply with exactly: ok [emulate: status=429 retry_after=1 times=1 tag=ra1]")})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(count(&t, "ra1").await, 2);

    // 30 s is beyond the 3 s budget: answered at once with the upstream's delay.
    let resp = t.chat(json!({"model": "gpt-4o-mini", "messages": user("hi [emulate: status=429 retry_after=30 tag=ra30]")})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(count(&t, "ra30").await, 1);
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    let t = start().await;
    let resp = t
        .chat(
            json!({"model": "gpt-4o-mini", "messages": user("hi [emulate: status=400 tag=c400]")}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(count(&t, "c400").await, 1);
}

#[tokio::test]
async fn hung_upstream_trips_the_first_byte_deadline_and_fails_over() {
    let t = start().await;
    for stream in [false, true] {
        let resp = t.chat(json!({"model": "hung-then-ok", "stream": stream, "messages": user("Reply with exactly: rescued")})).await;
        assert_eq!(resp.status(), 200, "stream={stream}");
        assert_eq!(resp.headers()["x-anyint-route"], "emu/gpt-4o-mini");
        let body = resp.text().await.unwrap();
        assert!(body.contains("rescued"), "{body}");
    }
    assert_eq!(
        count(&t, "hung").await,
        2,
        "the hung route was tried once per request"
    );
}

#[tokio::test]
async fn idle_stream_ends_with_an_error_event() {
    let t = start().await;
    let resp = t.chat(json!({"model": "idle-stream", "stream": true, "messages": user("Reply with exactly: a b c")})).await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let data = sse_data(&resp.text().await.unwrap());
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert!(data.last().unwrap().contains("\"error\""));
    assert_eq!(t.usage(&rid).await[0].outcome, "upstream_cut");
}

#[tokio::test]
async fn a_stream_past_the_total_limit_is_cut_with_an_error_event() {
    let t = start().await;
    // Thirty words 200 ms apart against a 600 ms limit: the limit ends the stream, not its end.
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let resp = t.chat(json!({"model": "long-stream", "stream": true, "messages": user(&format!("Reply with exactly: {}", words.join(" ")))})).await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let data = sse_data(&resp.text().await.unwrap());
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    assert!(data.last().unwrap().contains("\"error\""), "{data:?}");
    assert!(
        data.iter().any(|d| d.contains("w0")),
        "it started: {data:?}"
    );
    assert!(
        !data.iter().any(|d| d.contains("w29")),
        "it was cut: {data:?}"
    );
    assert_eq!(t.usage(&rid).await[0].outcome, "upstream_cut");
}

#[tokio::test]
async fn a_call_past_the_total_limit_fails_over() {
    let t = start().await;
    let resp = t
        .chat(json!({"model": "total-then-ok", "messages": user("Reply with exactly: in time")}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-anyint-route"], "emu/gpt-4o-mini");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "in time");
    assert_eq!(count(&t, "slowtotal").await, 1);
}

#[tokio::test]
async fn fallback_model_serves_when_every_route_fails_and_says_so() {
    let t = start().await;
    let resp = t.chat(json!({"model": "with-fallback", "messages": user("Reply with exactly: from fallback")})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-anyint-served-model"], "gpt-4o");
    assert_eq!(resp.headers()["x-anyint-route"], "emu/gpt-4o");
    let rid = request_id(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(v["choices"][0]["message"]["content"], "from fallback");
    assert_eq!(t.usage(&rid).await[0].model, "gpt-4o");

    // A key that may not use the fallback model does not get it.
    let (_, key) = anyint::auth::issue_key(
        t.store.as_ref(),
        "nf",
        "acct",
        Some(vec!["with-fallback".into()]),
        anyint::store::KeyLimits::default(),
    )
    .await
    .unwrap();
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "with-fallback", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn every_route_down_gives_each_familys_503() {
    let t = start().await;
    let resp = t
        .chat(json!({"model": "all-down", "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_unavailable");

    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages"))
        .header("x-api-key", &t.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "all-down", "max_tokens": 8, "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("api_error"))
    );

    let resp = t
        .http
        .post(t.url("/gemini/v1beta/models/all-down:generateContent"))
        .header("x-goog-api-key", &t.key)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn failing_route_opens_its_breaker_and_traffic_moves_away() {
    let t = TestGateway::builder().toml(ROUTING).toml("").start().await;
    for i in 0..12 {
        let resp = t.chat(json!({"model": "flaky-pair", "messages": user(&format!("Reply with exactly: n{i}"))})).await;
        assert_eq!(
            resp.status(),
            200,
            "request {i} failed over to the healthy route"
        );
    }
    let bad = count(&t, "bad").await;
    assert!(bad >= 1, "the bad route was tried");
    // Five failures in the window open the breaker (min_requests defaults to 5); after that the
    // bad route gets no traffic, so it saw at most five attempts for twelve requests.
    assert!(bad <= 5, "bad route attempts: {bad}");
    assert_eq!(count(&t, "good").await, 12);
    let routes: Value = t
        .admin(reqwest::Method::GET, "/admin/v1/routes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad_route = routes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["upstream_model"] == "gpt-4o-mini+status=503,tag=bad")
        .unwrap();
    if bad == 5 {
        assert_eq!(bad_route["state"], "open", "{bad_route}");
    }
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("anyint_route_state{"),
        "breaker state is exported"
    );
}

#[tokio::test]
async fn rejected_key_rotates_to_the_next_key() {
    let t = start().await;
    for i in 0..4 {
        let resp = t.chat(json!({"model": "rotating", "messages": user(&format!("Reply with exactly: k{i} [emulate: tag=rot]"))})).await;
        assert_eq!(resp.status(), 200, "request {i}");
    }
    let last: Value = t
        .http
        .get(format!("{}/_emulator/last/rot", t.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        last["headers"]["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    // Both keys were used: four successes took more than four upstream calls.
    assert!(count(&t, "rot").await > 4);
}

#[tokio::test]
async fn client_disconnect_mid_stream_closes_the_upstream_stream() {
    let t = start().await;
    for model in ["gpt-4o-mini", "claude", "gemini"] {
        let tag = format!("disc-{model}");
        let words = "w ".repeat(200);
        let body = json!({"model": model, "stream": true, "messages": user(&format!("Reply with exactly: {words} [emulate: chunk_delay_ms=20 tag={tag}]"))});
        let mut resp = t.chat(body).await;
        assert_eq!(resp.status(), 200);
        let _first = resp.chunk().await.unwrap();
        let _second = resp.chunk().await.unwrap();
        drop(resp);
        let mut aborted = 0;
        for _ in 0..2000 {
            let v: Value = t
                .http
                .get(format!("{}/_emulator/streams/{tag}", t.emulator))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            aborted = v["aborted"].as_u64().unwrap();
            if aborted > 0 {
                assert_eq!(v["completed"], 0);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            aborted, 1,
            "{model}: the upstream stream was not closed after the client left"
        );
    }
}
