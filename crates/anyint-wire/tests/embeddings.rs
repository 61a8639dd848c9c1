//! Golden tests for embeddings across the two wire formats, through the chain the gateway's
//! translated embedding path runs:
//! - `openai_to_gemini`: an OpenAI client's request → `embeddings::openai::decode_request` →
//!   `embeddings::gemini::encode_batches` (`upstream_request.json`, the first batch); the
//!   upstream's `batchEmbedContents` answer → `gemini::decode_response` →
//!   `normalize_shortened` → `openai::encode_response` (`client_response.json`, usage
//!   estimated from the inputs);
//! - `gemini_to_openai`: a Gemini client's `batchEmbedContents` → `gemini::decode_request` →
//!   `openai::encode_request`; the upstream's answer (out of index order) →
//!   `openai::decode_response` → `gemini::encode_response`.
//!
//! `UPDATE_GOLDEN=1 cargo test -p anyint-wire --test embeddings` rewrites the goldens.
#![expect(clippy::panic, reason = "golden helpers are test code")]

use std::fs;
use std::path::PathBuf;

use anyint_wire::embeddings::{self, gemini, openai};
use serde_json::Value;

fn dir(pair: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/embeddings")
        .join(pair)
}

fn read(pair: &str, name: &str) -> Vec<u8> {
    fs::read(dir(pair).join(name)).unwrap_or_else(|e| panic!("{pair}/{name}: {e}"))
}

/// Compares `got` with the golden `name` as JSON values (or rewrites it).
fn golden(pair: &str, name: &str, got: &[u8]) {
    let got: Value =
        serde_json::from_slice(got).unwrap_or_else(|e| panic!("{pair}/{name}: not JSON: {e}"));
    let path = dir(pair).join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&got).unwrap_or_default() + "\n";
        fs::write(&path, text).unwrap_or_else(|e| panic!("{pair}/{name}: {e}"));
        return;
    }
    let want: Value = serde_json::from_slice(&read(pair, name))
        .unwrap_or_else(|e| panic!("{pair}/{name}: {e} (run with UPDATE_GOLDEN=1)"));
    assert_eq!(got, want, "{pair}/{name}");
}

#[test]
fn openai_client_to_gemini_upstream() {
    let pair = "openai_to_gemini";
    let req = openai::decode_request(&read(pair, "client_request.json")).unwrap();
    let batches = gemini::encode_batches(&req, "gemini-embedding-001").unwrap();
    assert_eq!(batches.len(), 1);
    golden(pair, "upstream_request.json", &batches[0]);
    let mut resp = gemini::decode_response(&read(pair, "upstream_response.json")).unwrap();
    embeddings::normalize_shortened(&req, &mut resp);
    let out = openai::encode_response(&resp, &req.model, req.encoding, req.estimate_tokens());
    golden(pair, "client_response.json", &out);
    // Shortened vectors come back as unit vectors, as OpenAI's do.
    let v: Value = serde_json::from_slice(&out).unwrap();
    for d in v["data"].as_array().unwrap() {
        let norm: f64 = d["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap().powi(2))
            .sum();
        assert!((norm - 1.0).abs() < 1e-9, "{d}");
    }
}

#[test]
fn gemini_client_to_openai_upstream() {
    let pair = "gemini_to_openai";
    let req = gemini::decode_request(
        &read(pair, "client_request.json"),
        gemini::Method::Batch,
        "text-embedding-3-small",
    )
    .unwrap();
    golden(
        pair,
        "upstream_request.json",
        &openai::encode_request(&req, "text-embedding-3-small").unwrap(),
    );
    let resp = openai::decode_response(&read(pair, "upstream_response.json")).unwrap();
    assert_eq!(resp.prompt_tokens, Some(14));
    golden(
        pair,
        "client_response.json",
        &gemini::encode_response(&resp, gemini::Method::Batch),
    );
}
