//! Embeddings end to end: both client families (OpenAI `/embeddings`, Gemini `:embedContent` /
//! `:batchEmbedContents`) against both upstream kinds, through the emulator. Order across
//! Gemini batches, base64, dimensions and normalisation, token arrays, errors in each family's
//! envelope, the ledger row and tokens-per-minute, route failover and fallback models.

use anyint::store::KeyLimits;
use anyint_wire::embeddings::decode_base64;
use serde_json::{Value, json};

use crate::harness::{TestGateway, request_id, user};

/// Embedding models of each upstream kind; `tag=` suffixes count the emulator's calls.
const EMBED: &str = r#"
[[providers]]
name = "emu-gemini-2"
kind = "gemini"
base_url = "{emulator}/v1beta"
api_key = "test-upstream-key"

[[models]]
id = "text-embedding-3-small"
api = "embedding"
price = { input = 20000 }
routes = [{ provider = "emu", upstream_model = "text-embedding-3-small" }]

[[models]]
id = "gemini-embedding-001"
api = "embedding"
price = { input = 150000 }
routes = [{ provider = "emu-gemini", upstream_model = "gemini-embedding-001" }]

[[models]]
id = "gemini-embed-counted"
api = "embedding"
routes = [{ provider = "emu-gemini", upstream_model = "gemini-embedding-001+tag=gembatch" }]

[[models]]
id = "openai-embed-counted"
api = "embedding"
routes = [{ provider = "emu", upstream_model = "text-embedding-3-small+tag=oaiembed" }]

[[models]]
id = "embed-failover"
api = "embedding"
routes = [
  { provider = "emu-gemini", upstream_model = "gemini-embedding-001+status=503,tag=embdown", priority = 0 },
  { provider = "emu-gemini-2", upstream_model = "gemini-embedding-001+tag=embup", priority = 1 },
]

[[models]]
id = "embed-with-fallback"
api = "embedding"
fallbacks = ["text-embedding-3-small"]
routes = [{ provider = "emu", upstream_model = "text-embedding-3-small+status=500" }]
"#;

async fn start() -> TestGateway {
    TestGateway::builder().toml(EMBED).start().await
}

async fn embed(t: &TestGateway, body: Value) -> reqwest::Response {
    t.post("/openai/v1/embeddings")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn gemini(
    t: &TestGateway,
    version: &str,
    model: &str,
    method: &str,
    body: Value,
) -> reqwest::Response {
    t.http
        .post(t.url(&format!("/gemini/{version}/models/{model}:{method}")))
        .header("x-goog-api-key", &t.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn count(t: &TestGateway, tag: &str) -> u64 {
    t.emulator_count(tag).await
}

/// The JSON answer of a request that must succeed.
async fn json_of(req: reqwest::RequestBuilder) -> Value {
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn batch_entry(model: &str, text: &str) -> Value {
    json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}})
}

#[tokio::test]
async fn openai_clients_get_floats_or_base64_from_an_openai_upstream() {
    let t = start().await;
    let resp = embed(
        &t,
        json!({"model": "text-embedding-3-small", "input": ["red apple", "green pear"], "encoding_format": "float"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-anyint-route"],
        "emu/text-embedding-3-small"
    );
    let float: Value = resp.json().await.unwrap();
    assert_eq!(float["object"], "list");
    let data = float["data"].as_array().unwrap();
    assert_eq!(
        (data[0]["index"].as_u64(), data[1]["index"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(float["usage"]["prompt_tokens"].as_u64().unwrap() >= 2);
    // The same inputs as base64 decode to the same vectors (f32 precision).
    let b64: Value = embed(
        &t,
        json!({"model": "text-embedding-3-small", "input": ["red apple", "green pear"], "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    for i in 0..2 {
        let packed = decode_base64(b64["data"][i]["embedding"].as_str().unwrap()).unwrap();
        let plain = floats(&data[i]["embedding"]);
        assert_eq!(packed.len(), plain.len());
        for (a, b) in packed.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
    // `dimensions` passes through.
    let short: Value = embed(
        &t,
        json!({"model": "text-embedding-3-small", "input": "red apple", "dimensions": 3}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(floats(&short["data"][0]["embedding"]).len(), 3);
}

#[tokio::test]
async fn openai_clients_on_a_gemini_upstream_keep_order_across_batches_of_one_hundred() {
    let t = start().await;
    let texts: Vec<String> = (0..150).map(|i| format!("item number {i}")).collect();
    let resp = embed(
        &t,
        json!({"model": "gemini-embed-counted", "input": texts, "dimensions": 4}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        count(&t, "gembatch").await,
        2,
        "150 inputs are two batch calls"
    );
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 150);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        let e = floats(&d["embedding"]);
        assert_eq!(e.len(), 4);
        assert!(
            (norm(&e) - 1.0).abs() < 1e-6,
            "shortened vectors are re-normalised"
        );
    }
    assert_eq!(v["model"], "gemini-embed-counted");
    // Gemini reports no usage: estimated, ⌈chars/4⌉ per input.
    let estimate: usize = texts.iter().map(|s| s.len().div_ceil(4)).sum();
    assert_eq!(v["usage"]["prompt_tokens"], estimate);
    assert_eq!(v["usage"]["total_tokens"], estimate);
    // Input 120 (in the second batch) is the vector of its own text, normalised.
    let direct: Value = t
        .http
        .post(format!(
            "{}/v1beta/models/gemini-embedding-001:embedContent",
            t.emulator
        ))
        .header("x-goog-api-key", crate::harness::UPSTREAM_KEY)
        .json(&json!({"content": {"parts": [{"text": "item number 120"}]}, "outputDimensionality": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = floats(&direct["embedding"]["values"]);
    assert!(
        norm(&raw) < 0.99,
        "the upstream's shortened vector is not a unit vector"
    );
    let want: Vec<f64> = raw.iter().map(|x| x / norm(&raw)).collect();
    for (a, b) in floats(&data[120]["embedding"]).iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // The default (what the SDKs send) is base64 of the same vectors.
    let b64: Value = embed(
        &t,
        json!({"model": "gemini-embedding-001", "input": "item number 120", "dimensions": 4, "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let packed = decode_base64(b64["data"][0]["embedding"].as_str().unwrap()).unwrap();
    for (a, b) in packed.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[tokio::test]
async fn token_arrays_pass_to_openai_upstreams_and_are_refused_for_gemini_ones() {
    let t = start().await;
    for input in [json!([1, 2, 3]), json!([[1, 2], [3, 4, 5]])] {
        let resp = embed(
            &t,
            json!({"model": "text-embedding-3-small", "input": input}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{input}");
        let v: Value = resp.json().await.unwrap();
        let n = if input[0].is_array() { 2 } else { 1 };
        assert_eq!(v["data"].as_array().unwrap().len(), n);
        assert_eq!(v["usage"]["prompt_tokens"], if n == 2 { 5 } else { 3 });
    }
    let resp = embed(
        &t,
        json!({"model": "gemini-embed-counted", "input": [[1, 2], [3]]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "input");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("token input") && msg.contains("gemini-embed-counted"),
        "{msg}"
    );
    assert_eq!(
        count(&t, "gembatch").await,
        0,
        "refused before any upstream call"
    );
}

#[tokio::test]
async fn bad_inputs_and_wrong_models_are_refused_in_each_familys_envelope() {
    let t = start().await;
    let too_many: Vec<&str> = vec!["x"; 2049];
    for (body, needle) in [
        (
            json!({"model": "openai-embed-counted", "input": ""}),
            "'$.input' is invalid",
        ),
        (
            json!({"model": "openai-embed-counted", "input": ["a", ""]}),
            "'$.input' is invalid",
        ),
        (
            json!({"model": "openai-embed-counted", "input": too_many}),
            "array too long",
        ),
    ] {
        let resp = embed(&t, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "input");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    assert_eq!(
        count(&t, "oaiembed").await,
        0,
        "refused before calling upstream"
    );

    // An embeddings request to a chat model, and a chat request to an embedding model.
    let resp = embed(&t, json!({"model": "gpt-4o-mini", "input": "x"})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("`gpt-4o-mini`") && msg.contains("a chat model"),
        "{msg}"
    );
    assert_eq!(v["error"]["code"], "model_not_supported");
    let resp = t
        .chat(json!({"model": "text-embedding-3-small", "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("`text-embedding-3-small`")
            && msg.contains("an embedding model")
            && msg.contains("/openai/v1/embeddings"),
        "{msg}"
    );
    // The Anthropic family refuses it in its own envelope.
    let resp = t
        .post("/anthropic/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gemini-embedding-001", "max_tokens": 16, "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`gemini-embedding-001` is an embedding model"),
        "{v}"
    );
    let resp = embed(&t, json!({"model": "no-such-model", "input": "x"})).await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");

    // The same in the Gemini family, in Google's envelope.
    let resp = gemini(
        &t,
        "v1beta",
        "gemini-2.5-flash",
        "embedContent",
        json!({"content": {"parts": [{"text": "x"}]}}),
    )
    .await;
    // `gemini-2.5-flash` is not configured in the harness; `gemini` is its chat model.
    assert_eq!(resp.status(), 404);
    let resp = gemini(
        &t,
        "v1beta",
        "gemini",
        "batchEmbedContents",
        json!({"requests": [batch_entry("gemini", "x")]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a chat model"),
        "{v}"
    );
    let resp = gemini(
        &t,
        "v1beta",
        "gemini-embedding-001",
        "generateContent",
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("an embedding model"),
        "{v}"
    );
    let over: Vec<Value> = (0..101)
        .map(|i| batch_entry("gemini-embed-counted", &format!("t{i}")))
        .collect();
    let resp = gemini(
        &t,
        "v1beta",
        "gemini-embed-counted",
        "batchEmbedContents",
        json!({"requests": over}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        v["error"]["message"],
        "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"
    );
    assert_eq!(count(&t, "gembatch").await, 0);
}

#[tokio::test]
async fn gemini_clients_embed_on_both_upstream_kinds_under_both_versions() {
    let t = start().await;
    for version in ["v1beta", "v1"] {
        // Gemini upstream: passthrough, snake_case fields kept.
        let single: Value = gemini(
            &t,
            version,
            "gemini-embedding-001",
            "embedContent",
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "red apple"}]}, "task_type": "RETRIEVAL_QUERY", "output_dimensionality": 16}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(floats(&single["embedding"]["values"]).len(), 16, "{single}");
        let batch = gemini(
            &t,
            version,
            "gemini-embedding-001",
            "batchEmbedContents",
            json!({"requests": [batch_entry("gemini-embedding-001", "red apple"), batch_entry("gemini-embedding-001", "green pear")]}),
        )
        .await;
        assert_eq!(batch.status(), 200);
        let batch: Value = batch.json().await.unwrap();
        let e = batch["embeddings"].as_array().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(floats(&e[0]["values"]).len(), 3072);
        assert_ne!(e[0], e[1]);
        // OpenAI upstream: translated; outputDimensionality becomes dimensions.
        let resp = gemini(
            &t,
            version,
            "text-embedding-3-small",
            "batchEmbedContents",
            json!({"requests": [
                {"model": "models/text-embedding-3-small", "content": {"parts": [{"text": "red apple"}]}, "outputDimensionality": 5, "taskType": "RETRIEVAL_DOCUMENT", "title": "Fruit"},
                {"model": "models/text-embedding-3-small", "content": {"parts": [{"text": "green pear"}]}, "outputDimensionality": 5},
            ]}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let out: Value = resp.json().await.unwrap();
        let e = out["embeddings"].as_array().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(floats(&e[1]["values"]).len(), 5);
        let one: Value = gemini(
            &t,
            version,
            "text-embedding-3-small",
            "embedContent",
            json!({"content": {"parts": [{"text": "red apple"}]}, "outputDimensionality": 5}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            one["embedding"]["values"], e[0]["values"],
            "same text, same vector"
        );
    }
    // The OpenAI family sees the same vector for the same text on the same model.
    let oa: Value = embed(
        &t,
        json!({"model": "text-embedding-3-small", "input": "red apple", "dimensions": 5}),
    )
    .await
    .json()
    .await
    .unwrap();
    let g: Value = gemini(
        &t,
        "v1beta",
        "text-embedding-3-small",
        "embedContent",
        json!({"content": {"parts": [{"text": "red apple"}]}, "outputDimensionality": 5}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(oa["data"][0]["embedding"], g["embedding"]["values"]);
}

#[tokio::test]
async fn models_lists_say_what_each_model_serves() {
    let t = start().await;
    let v = json_of(t.get("/openai/v1/models")).await;
    let api = |id: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .map(|m| m["api"].clone())
    };
    assert_eq!(api("text-embedding-3-small"), Some(json!("embedding")));
    assert_eq!(api("gpt-4o-mini"), Some(json!("chat")));
    let one = json_of(t.get("/openai/v1/models/gemini-embedding-001")).await;
    assert_eq!(one["api"], "embedding");
    let gemini_get = |path: &str| {
        t.http
            .get(t.url(&format!("/gemini/v1beta/{path}")))
            .header("x-goog-api-key", &t.key)
    };
    let g = json_of(gemini_get("models")).await;
    let methods = |name: &str| {
        g["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["supportedGenerationMethods"].clone())
    };
    assert_eq!(
        methods("models/gemini-embedding-001"),
        Some(json!(["embedContent", "batchEmbedContents"]))
    );
    assert!(
        methods("models/gemini")
            .unwrap()
            .as_array()
            .unwrap()
            .contains(&json!("generateContent"))
    );
    let one = json_of(gemini_get("models/text-embedding-3-small")).await;
    assert_eq!(one["supportedGenerationMethods"][0], "embedContent");
}

#[tokio::test]
async fn the_ledger_bills_input_tokens_and_tokens_per_minute_count_them() {
    let t = start().await;
    // OpenAI upstream: the upstream's usage, priced per million input tokens.
    let resp = embed(
        &t,
        json!({"model": "text-embedding-3-small", "input": ["a".repeat(40), "b".repeat(8)]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    let rows = t.usage(&rid).await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.model.as_str(), r.family.as_str()),
        ("text-embedding-3-small", "openai")
    );
    assert_eq!((r.prompt_tokens, r.completion_tokens), (12, 0));
    assert_eq!(r.provider, "emu");
    // 12 tokens × 20,000 micro-units per million, rounded up.
    assert_eq!(r.cost_micros, 1);
    // Gemini upstream through the Gemini family: the estimate, at the model's price.
    let resp = gemini(
        &t,
        "v1beta",
        "gemini-embedding-001",
        "batchEmbedContents",
        json!({"requests": [batch_entry("gemini-embedding-001", &"c".repeat(4000))]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let rows = t.usage(&request_id(&resp)).await;
    assert_eq!(rows[0].prompt_tokens, 1000);
    assert_eq!(rows[0].family, "gemini");
    assert_eq!(rows[0].cost_micros, 150, "1000 × 150,000 / 1,000,000");

    // Tokens per minute count the input: ~100 estimated tokens empty a 50-token bucket.
    let (_, key) = anyint::auth::issue_key(
        t.store.as_ref(),
        "limited",
        "acct",
        None,
        KeyLimits {
            tpm: Some(50),
            ..KeyLimits::default()
        },
    )
    .await
    .unwrap();
    let big =
        json!({"model": "gemini-embedding-001", "input": "word ".repeat(80), "dimensions": 4});
    let send = || {
        t.http
            .post(t.url("/openai/v1/embeddings"))
            .bearer_auth(&key)
            .json(&big)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit-tokens"], "50");
    assert_eq!(first.headers()["x-ratelimit-remaining-tokens"], "0");
    let second = send().await.unwrap();
    assert_eq!(second.status(), 429);
    let rid = request_id(&second);
    let v: Value = second.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("50 tokens per minute"),
        "{v}"
    );
    let rows = t.usage(&rid).await;
    assert_eq!(
        (rows[0].status, rows[0].prompt_tokens),
        (429, 0),
        "a refusal bills nothing"
    );
}

#[tokio::test]
async fn a_failing_upstream_fails_over_to_the_next_provider_and_to_fallback_models() {
    let t = start().await;
    let resp = embed(
        &t,
        json!({"model": "embed-failover", "input": ["a", "b"], "dimensions": 4}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-anyint-route"],
        "emu-gemini-2/gemini-embedding-001+tag=embup"
    );
    let rid = request_id(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(count(&t, "embdown").await >= 1);
    assert_eq!(count(&t, "embup").await, 1);
    let rows = t.usage(&rid).await;
    assert_eq!(rows.len(), 1, "billed once");
    assert_eq!(rows[0].provider, "emu-gemini-2");

    let resp = gemini(
        &t,
        "v1beta",
        "embed-with-fallback",
        "embedContent",
        json!({"content": {"parts": [{"text": "x"}]}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-anyint-served-model"],
        "text-embedding-3-small"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(floats(&v["embedding"]["values"]).len(), 8);
}
