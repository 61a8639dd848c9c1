//! Per-key restrictions: expiry, address allowlist, requests per minute, concurrency.

use anyint::store::KeyLimits;
use serde_json::{Value, json};

use crate::harness::{TestGateway, user};

async fn key_with(t: &TestGateway, limits: KeyLimits) -> String {
    anyint::auth::issue_key(t.store.as_ref(), "limited", "acct", None, limits)
        .await
        .unwrap()
        .1
}

fn chat_body(text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": user(text)})
}

#[tokio::test(flavor = "multi_thread")]
async fn rpm_60_admits_exactly_60_of_200_concurrent_requests() {
    let t = TestGateway::start().await;
    let key = key_with(
        &t,
        KeyLimits {
            rpm: Some(60),
            ..KeyLimits::default()
        },
    )
    .await;
    let url = t.url("/openai/v1/chat/completions");
    let requests = (0..200).map(|i| {
        let req = t
            .http
            .post(&url)
            .bearer_auth(&key)
            .json(&chat_body(&format!("n{i}")));
        async move { req.send().await.unwrap() }
    });
    let responses = futures_util::future::join_all(requests).await;
    let ok: Vec<_> = responses.iter().filter(|r| r.status() == 200).collect();
    let limited: Vec<_> = responses.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok.len(), limited.len()), (60, 140));
    for r in &limited {
        let retry_after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after));
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "60");
        assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
    }
    assert!(
        ok.iter()
            .all(|r| r.headers().contains_key("x-ratelimit-remaining-requests"))
    );
    let body: Value = responses
        .into_iter()
        .find(|r| r.status() == 429)
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("60 requests per minute"),
        "{body}"
    );
}

#[tokio::test]
async fn anthropic_routes_get_anthropic_rate_limit_headers() {
    let t = TestGateway::start().await;
    let key = key_with(
        &t,
        KeyLimits {
            rpm: Some(5),
            ..KeyLimits::default()
        },
    )
    .await;
    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 8, "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["anthropic-ratelimit-requests-limit"], "5");
    assert_eq!(
        resp.headers()["anthropic-ratelimit-requests-remaining"],
        "4"
    );
    assert!(
        resp.headers()["anthropic-ratelimit-requests-reset"]
            .to_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[tokio::test]
async fn concurrency_limit_counts_streams_until_their_last_byte() {
    let t = TestGateway::start().await;
    let key = key_with(
        &t,
        KeyLimits {
            concurrency: Some(1),
            ..KeyLimits::default()
        },
    )
    .await;
    let url = t.url("/openai/v1/chat/completions");
    let words = "w ".repeat(40);
    let slow = json!({"model": "gpt-4o-mini", "stream": true, "messages": user(&format!("Reply with exactly: {words}[emulate: chunk_delay_ms=10]"))});
    let mut stream = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&slow)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let _first = stream.chunk().await.unwrap();
    let refused = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let v: Value = refused.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in flight"),
        "{v}"
    );
    while stream.chunk().await.unwrap().is_some() {}
    // The stream ended: its slot is free again.
    let mut admitted = false;
    for _ in 0..200 {
        let r = t
            .http
            .post(&url)
            .bearer_auth(&key)
            .json(&chat_body("hi"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(admitted, "the slot was never released");
}

#[tokio::test]
async fn expired_key_is_401_and_allowlist_is_403() {
    let t = TestGateway::start().await;
    let expired = key_with(
        &t,
        KeyLimits {
            expires_at: Some(anyint::clock::unix_secs() - 1),
            ..KeyLimits::default()
        },
    )
    .await;
    let resp = t
        .http
        .get(t.url("/openai/v1/models"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    let elsewhere = key_with(
        &t,
        KeyLimits {
            ip_allowlist: Some(vec!["10.0.0.0/8".into()]),
            ..KeyLimits::default()
        },
    )
    .await;
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&elsewhere)
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "ip_not_allowed");

    let here = key_with(
        &t,
        KeyLimits {
            ip_allowlist: Some(vec!["127.0.0.0/8".into()]),
            ..KeyLimits::default()
        },
    )
    .await;
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&here)
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A spoofed X-Forwarded-For means nothing without a trusted proxy.
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&elsewhere)
        .header("x-forwarded-for", "10.1.2.3")
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_checked() {
    let t = TestGateway::builder()
        .server("trusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await;
    let key = key_with(
        &t,
        KeyLimits {
            ip_allowlist: Some(vec!["203.0.113.0/24".into()]),
            ..KeyLimits::default()
        },
    )
    .await;
    let url = t.url("/openai/v1/chat/completions");
    let ok = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .header("x-forwarded-for", "198.51.100.1")
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let direct = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        direct.status(),
        403,
        "without the header the client is the proxy itself"
    );
}

/// The hardening issue's spoofing shapes: a proxy appends the real client to what the client
/// sent, so an entry the gateway cannot read must not be skipped in favour of the client's own
/// claim further left.
#[tokio::test]
async fn forwarding_headers_the_gateway_cannot_read_never_pass_an_allowlist() {
    let t = TestGateway::builder()
        .server("trusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await;
    let key = key_with(
        &t,
        KeyLimits {
            ip_allowlist: Some(vec!["203.0.113.9/32".into()]),
            ..KeyLimits::default()
        },
    )
    .await;
    let url = t.url("/openai/v1/chat/completions");
    let send = |key: &str, headers: &[(&'static str, &'static str)]| {
        let mut req = t.http.post(&url).bearer_auth(key).json(&chat_body("hi"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    for allowed in [
        &[("x-forwarded-for", "203.0.113.9")][..],
        &[("x-forwarded-for", "203.0.113.9:443")],
        &[("forwarded", "for=203.0.113.9;proto=https")],
        &[("forwarded", "for=\"203.0.113.9:443\"")],
        &[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    ] {
        assert_eq!(send(&key, allowed).await.0, 200, "{allowed:?}");
    }
    for spoofed in [
        &[("x-forwarded-for", "203.0.113.9, 198.51.100.7:5678")][..],
        &[("x-forwarded-for", "203.0.113.9, [2001:db8::7]")],
        &[("x-forwarded-for", "203.0.113.9, unknown")],
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "unknown"),
        ],
        &[("forwarded", "for=203.0.113.9, for=\"198.51.100.7:5678\"")],
        &[("forwarded", "for=203.0.113.9, for=\"[2001:db8::7]\"")],
        &[("forwarded", "for=203.0.113.9, for=unknown")],
        &[("forwarded", "for=203.0.113.9, for=_hidden")],
        // A proxy that writes only one of the headers passes the other through from the
        // client: they must agree.
        &[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "198.51.100.7"),
        ],
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.7"),
        ],
    ] {
        let (status, v) = send(&key, spoofed).await;
        assert_eq!(status, 403, "{spoofed:?}: {v}");
        assert_eq!(v["error"]["code"], "ip_not_allowed", "{spoofed:?}");
    }
    // An unreadable hop is named as the problem.
    let (_, v) = send(&key, &[("x-forwarded-for", "203.0.113.9, unknown")]).await;
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not be determined"), "{message}");
    // A key without an allowlist is not affected.
    let open = key_with(&t, KeyLimits::default()).await;
    assert_eq!(
        send(&open, &[("x-forwarded-for", "203.0.113.9, unknown")])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn expires_at_takes_rfc3339_and_answers_with_it() {
    let t = TestGateway::start().await;
    let create = |expires_at: Value| {
        t.admin(reqwest::Method::POST, "/admin/v1/keys")
            .json(&json!({"name": "e", "expires_at": expires_at}))
            .send()
    };
    let later: Value = create(json!("2126-12-31T23:59:59+01:00"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(later["expires_at"], "2126-12-31T22:59:59Z", "{later}");
    let past: Value = create(json!("2020-01-01T00:00:00Z"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(past["expires_at"], "2020-01-01T00:00:00Z");
    // The timestamp is enforced: the past one is expired, the later one works.
    let status = |key: String| {
        let t = &t;
        async move {
            t.http
                .post(t.url("/openai/v1/chat/completions"))
                .bearer_auth(key)
                .json(&chat_body("hi"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(past["key"].as_str().unwrap().to_owned()).await, 401);
    assert_eq!(status(later["key"].as_str().unwrap().to_owned()).await, 200);
    // The list shows the same form, and no key.
    let list: Value = t
        .admin(reqwest::Method::GET, "/admin/v1/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["expires_at"].as_str())
        .collect();
    assert!(shown.contains(&"2126-12-31T22:59:59Z"), "{list}");
    let bad = create(json!("tomorrow")).await.unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["param"], "expires_at", "{body}");
}

#[tokio::test]
async fn admin_api_creates_keys_with_limits_and_rejects_bad_ones() {
    let t = TestGateway::start().await;
    let created: Value = t
        .admin(reqwest::Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "l", "rpm": 2, "concurrency": 3, "ip_allowlist": ["127.0.0.1/32"], "expires_at": 4_102_444_800_i64}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (created["rpm"].as_u64(), created["concurrency"].as_u64()),
        (Some(2), Some(3))
    );
    // Unix seconds in, RFC 3339 out.
    assert_eq!(created["expires_at"], "2100-01-01T00:00:00Z");
    let key = created["key"].as_str().unwrap();
    for expected in [200, 200, 429] {
        let r = t
            .http
            .post(t.url("/openai/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat_body("hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
    for bad in [
        json!({"name": "x", "ip_allowlist": ["nope"]}),
        json!({"name": "x", "rpm": 0}),
        json!({"name": "x", "expires_at": "2026-12-31"}),
        json!({"name": "x", "expires_at": "2026-02-30T00:00:00Z"}),
        json!({"name": "x", "expires_at": true}),
    ] {
        let r = t
            .admin(reqwest::Method::POST, "/admin/v1/keys")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn tokens_per_minute_admit_on_an_estimate_with_token_headers() {
    let t = TestGateway::start().await;
    let key = key_with(
        &t,
        KeyLimits {
            tpm: Some(50),
            ..KeyLimits::default()
        },
    )
    .await;
    let url = t.url("/openai/v1/chat/completions");
    // A prompt of ~400 bytes is estimated above the whole limit: admitted on a full bucket,
    // which it then empties.
    let big = json!({"model": "gpt-4o-mini", "messages": user(&"word ".repeat(80))});
    let first = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit-tokens"], "50");
    assert_eq!(first.headers()["x-ratelimit-remaining-tokens"], "0");
    let second = t
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let v: Value = second.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("50 tokens per minute"),
        "{v}"
    );
}
