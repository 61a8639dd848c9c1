//! `every=N` faults and per-tag stream accounting
//! (`/_emulator/streams/{tag}`) across the three wire families, over real
//! loopback HTTP with reqwest.

use std::time::Duration;

use anyint_emulator::Options;
use futures_util::StreamExt;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Emu, KEY, start};

const FAULT: &str = "x-emulator-fault";
/// Upper bound on `/_emulator/streams/{tag}` polls while waiting for the
/// emulator to notice how a stream ended (each poll is a loopback request
/// plus a short pause). Only bounds a failing test; nothing asserts timing.
const MAX_POLLS: usize = 1000;

/// `Reply with exactly: w1 w2 … wN`: a reply of N word pieces.
fn words(n: usize) -> String {
    let words: Vec<String> = (1..=n).map(|i| format!("w{i}")).collect();
    format!("Reply with exactly: {}", words.join(" "))
}

impl Emu {
    fn openai(&self, text: &str, stream: bool) -> RequestBuilder {
        self.bearer_post("/v1/chat/completions")
            .json(&json!({"model": "gpt-4o-mini", "stream": stream,
                          "messages": [{"role": "user", "content": text}]}))
    }

    fn anthropic(&self, text: &str, stream: bool) -> RequestBuilder {
        self.client
            .post(self.url("/v1/messages"))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .json(
                &json!({"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": stream,
                          "messages": [{"role": "user", "content": text}]}),
            )
    }

    fn gemini(&self, text: &str, stream: bool) -> RequestBuilder {
        let method = if stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        self.client
            .post(self.url(&format!("/v1beta/models/gemini-2.5-flash:{method}")))
            .header("x-goog-api-key", KEY)
            .json(&json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}))
    }

    async fn streams(&self, tag: &str) -> Value {
        self.get_json(&format!("/_emulator/streams/{tag}")).await
    }

    /// Polls the tag's stream counters until `done` holds (or the poll
    /// budget runs out) and returns the last value seen.
    async fn wait_streams(&self, tag: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut seen = self.streams(tag).await;
        for _ in 0..MAX_POLLS {
            if done(&seen) {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            seen = self.streams(tag).await;
        }
        seen
    }
}

/// `started`, `completed`, `aborted` and `cut` of a streams record.
fn tally(v: &Value) -> [u64; 4] {
    ["started", "completed", "aborted", "cut"].map(|k| v[k].as_u64().expect(k))
}

/// Sum of the finished outcomes (completed + aborted + cut).
fn ended(v: &Value) -> u64 {
    let [_, completed, aborted, cut] = tally(v);
    completed + aborted + cut
}

/// Sends `n` requests built by `make(i)` and returns the 1-based positions
/// answered with `status`, reading every body to its end.
async fn failing_positions(
    n: usize,
    status: StatusCode,
    make: impl Fn(usize) -> RequestBuilder,
) -> Vec<usize> {
    let mut failed = Vec::new();
    for i in 1..=n {
        let resp = make(i).send().await.unwrap();
        let got = resp.status();
        let body = resp.text().await.unwrap();
        if got == status {
            failed.push(i);
        } else {
            assert_eq!(got, StatusCode::OK, "request {i}: {body}");
        }
    }
    failed
}

#[tokio::test]
async fn every_third_request_fails() {
    let emu = start(Options::default()).await;
    let failed = failing_positions(9, StatusCode::SERVICE_UNAVAILABLE, |_| {
        emu.openai("Reply with exactly: ok", false)
            .header(FAULT, "status=503,every=3,tag=bench")
    })
    .await;
    assert_eq!(failed, [3, 6, 9]);
    let count = emu.get_json("/_emulator/counts/bench").await;
    assert_eq!(count["count"], 9);

    // The counter restarts with a reset.
    emu.client
        .post(format!("{}/_emulator/reset", emu.base))
        .send()
        .await
        .unwrap();
    let failed = failing_positions(3, StatusCode::SERVICE_UNAVAILABLE, |_| {
        emu.openai("Reply with exactly: ok", false)
            .header(FAULT, "status=503,every=3,tag=bench")
    })
    .await;
    assert_eq!(failed, [3]);
}

#[tokio::test]
async fn every_works_for_all_families_streaming_or_not() {
    let emu = start(Options::default()).await;
    let spec = |tag: &str| format!("status=503 every=2 tag={tag}");
    let text = "Reply with exactly: fine";
    for stream in [false, true] {
        let tag = |family: &str| format!("{family}-{stream}");
        let cases: [(&str, &dyn Fn() -> RequestBuilder); 3] = [
            ("openai", &|| emu.openai(text, stream)),
            ("anthropic", &|| emu.anthropic(text, stream)),
            ("gemini", &|| emu.gemini(text, stream)),
        ];
        for (family, make) in cases {
            let t = tag(family);
            let failed = failing_positions(5, StatusCode::SERVICE_UNAVAILABLE, |_| {
                make().header(FAULT, spec(&t))
            })
            .await;
            assert_eq!(failed, [2, 4], "{family} stream={stream}");
        }
    }
    // Requests `every` lets through keep their tag: their streams count.
    let seen = emu.wait_streams("gemini-true", |v| ended(v) == 3).await;
    assert_eq!(tally(&seen), [3, 3, 0, 0], "{seen}");
}

#[tokio::test]
async fn every_with_times_or_without_tag_is_rejected() {
    let emu = start(Options::default()).await;
    let resp = emu
        .openai("hi", false)
        .header(FAULT, "status=503,every=10,times=2,tag=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_emulator_fault");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("every") && msg.contains("times"), "{msg}");

    for (make, spec) in [
        (emu.anthropic("hi", true), "every=2"),
        (emu.gemini("hi", true), "every=0,tag=x"),
        (emu.openai("hi", true), "every=2,times=1,tag=x"),
    ] {
        let resp = make.header(FAULT, spec).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{spec}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("every"), "{spec}: {body}");
    }
}

/// Reads two chunks of a slow tagged stream, drops the response and waits
/// for the emulator to count the stream as aborted.
async fn assert_drop_is_aborted(emu: &Emu, tag: &str, req: RequestBuilder) {
    let resp = req
        .header(FAULT, format!("chunk_delay_ms=50,tag={tag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    for _ in 0..2 {
        let chunk = body.next().await.expect("a chunk").unwrap();
        assert!(!chunk.is_empty());
    }
    drop(body);

    let seen = emu.wait_streams(tag, |v| ended(v) >= 1).await;
    assert_eq!(tally(&seen), [1, 0, 1, 0], "{tag}: {seen}");
}

#[tokio::test]
async fn dropped_streams_count_as_aborted() {
    let emu = start(Options::default()).await;
    let text = words(200);
    assert_drop_is_aborted(&emu, "ab-openai", emu.openai(&text, true)).await;
    assert_drop_is_aborted(&emu, "ab-anthropic", emu.anthropic(&text, true)).await;
    assert_drop_is_aborted(&emu, "ab-gemini", emu.gemini(&text, true)).await;
    // The JSON-array Gemini stream too.
    let array = emu
        .client
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            emu.base
        ))
        .header("x-goog-api-key", KEY)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}));
    assert_drop_is_aborted(&emu, "ab-gemini-array", array).await;
}

#[tokio::test]
async fn fully_read_streams_count_as_completed() {
    let emu = start(Options::default()).await;
    let text = words(5);
    for (tag, req) in [
        ("done-openai", emu.openai(&text, true)),
        ("done-anthropic", emu.anthropic(&text, true)),
        ("done-gemini", emu.gemini(&text, true)),
    ] {
        let resp = req
            .header(FAULT, format!("chunk_delay_ms=1,tag={tag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.text().await.unwrap();
        assert!(body.contains("w5"), "{body}");
        let seen = emu.wait_streams(tag, |v| ended(v) >= 1).await;
        assert_eq!(tally(&seen), [1, 1, 0, 0], "{tag}: {seen}");
    }
    // Non-streaming responses are not streams.
    let resp = emu
        .openai(&text, false)
        .header(FAULT, "tag=plain")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap();
    assert_eq!(tally(&emu.streams("plain").await), [0, 0, 0, 0]);
}

#[tokio::test]
async fn deliberate_cuts_count_as_cut_and_reset_clears() {
    let emu = start(Options::default()).await;
    let text = words(5);
    for spec in ["cut_after=2", "error_after=1"] {
        for req in [
            emu.openai(&text, true),
            emu.anthropic(&text, true),
            emu.gemini(&text, true),
        ] {
            let resp = req
                .header(FAULT, format!("{spec},tag=cut"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            // cut_after ends in a transport error; read until either end.
            let mut body = resp.bytes_stream();
            while let Some(Ok(_)) = body.next().await {}
        }
    }
    let seen = emu.wait_streams("cut", |v| ended(v) >= 6).await;
    assert_eq!(tally(&seen), [6, 0, 0, 6], "{seen}");
    assert_eq!(seen["tag"], "cut");

    // `every` picks which streams get cut; the others complete.
    for _ in 0..4 {
        let resp = emu
            .openai(&text, true)
            .header(FAULT, "cut_after=1,every=2,tag=mixed")
            .send()
            .await
            .unwrap();
        let mut body = resp.bytes_stream();
        while let Some(Ok(_)) = body.next().await {}
    }
    let seen = emu.wait_streams("mixed", |v| ended(v) >= 4).await;
    assert_eq!(tally(&seen), [4, 2, 0, 2], "{seen}");

    let reset = emu
        .client
        .post(format!("{}/_emulator/reset", emu.base))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(tally(&emu.streams("cut").await), [0, 0, 0, 0]);
    assert_eq!(tally(&emu.streams("mixed").await), [0, 0, 0, 0]);
}
