//! Compressed request bodies (`Content-Encoding: gzip` and `zstd`, as Codex sends them) on
//! every family's JSON routes: decompressed before anything reads them, bounded by the body
//! limit after decompression, and refused with a clear 400 when unreadable.

use std::io::Write;

use serde_json::{Value, json};

use crate::harness::{TestGateway, user};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

fn chat_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": "gpt-4o-mini", "messages": user(text)})).unwrap()
}

async fn send(t: &TestGateway, path: &str, encoding: &str, body: Vec<u8>) -> reqwest::Response {
    t.post(path)
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .header("x-api-key", "unused")
        .header("anthropic-version", "2023-06-01")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn gzip_and_zstd_chat_bodies_are_decompressed() {
    let t = TestGateway::start().await;
    for (name, body) in [
        ("gzip", gzip(&chat_body("Reply with exactly: squeezed"))),
        ("zstd", zstd(&chat_body("Reply with exactly: squeezed"))),
    ] {
        let resp = send(&t, "/openai/v1/chat/completions", name, body).await;
        assert_eq!(resp.status(), 200, "{name}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "squeezed", "{name}");
    }
}

#[tokio::test]
async fn compressed_anthropic_and_gemini_bodies_are_decompressed() {
    let t = TestGateway::start().await;
    let anthropic =
        json!({"model": "claude", "max_tokens": 64, "messages": user("Reply with exactly: small")});
    let resp = send(
        &t,
        "/anthropic/v1/messages",
        "zstd",
        zstd(&serde_json::to_vec(&anthropic).unwrap()),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "small");
    let gemini =
        json!({"contents": [{"role": "user", "parts": [{"text": "Reply with exactly: tiny"}]}]});
    let resp = send(
        &t,
        "/gemini/v1beta/models/gemini:generateContent",
        "gzip",
        gzip(&serde_json::to_vec(&gemini).unwrap()),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "tiny");
}

#[tokio::test]
async fn unknown_or_corrupt_encodings_are_400_naming_the_header() {
    let t = TestGateway::start().await;
    let resp = send(&t, "/openai/v1/chat/completions", "br", chat_body("x")).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unsupported_content_encoding");
    assert!(v["error"]["message"].as_str().unwrap().contains("`br`"));
    let resp = send(&t, "/openai/v1/chat/completions", "gzip", chat_body("x")).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid gzip"),
        "{v}"
    );
}

#[tokio::test]
async fn the_body_limit_applies_after_decompression() {
    let t = TestGateway::builder().max_body(64 * 1024).start().await;
    // 1 MiB of spaces inside the JSON compresses to about a kilobyte.
    let padded = format!(
        "{{\"model\":\"gpt-4o-mini\",{}\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}",
        " ".repeat(1 << 20)
    );
    let small = gzip(padded.as_bytes());
    assert!(small.len() < 64 * 1024);
    let resp = send(&t, "/openai/v1/chat/completions", "gzip", small).await;
    assert_eq!(resp.status(), 413);
}
