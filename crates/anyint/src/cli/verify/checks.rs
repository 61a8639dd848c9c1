//! The synchronous checks: key, discovery, a minimal request, streaming, the Anthropic and
//! Gemini native shapes, error semantics and limits.

use serde_json::{Value, json};

use super::{Answer, Ctx, Found, Listed, Status, closest, failure, send};

const PROMPT: &str = "Reply with exactly: AnyInt OK";
const EXPECTED: &str = "AnyInt OK";

/// 1. The key is set, well-formed, and accepted by `GET /openai/v1/models`.
pub(super) async fn key(ctx: &mut Ctx) -> Found {
    if ctx.key.is_empty() {
        return Found::fail(
            "ANYINT_API_KEY is not set",
            "export ANYINT_API_KEY=<your key> (keys are never taken on the command line)",
        );
    }
    if ctx.key.trim() != ctx.key || !ctx.key.bytes().all(|b| b.is_ascii_graphic()) {
        return Found::fail(
            "ANYINT_API_KEY contains spaces or non-printable characters",
            "copy the key again without surrounding spaces or newlines",
        );
    }
    let a = match send(ctx.get("/openai/v1/models")).await {
        Ok(a) => a,
        Err(f) => return f,
    };
    if a.status == 404 {
        return Found::fail(
            format!("GET {}/openai/v1/models answered 404", ctx.base),
            "--base-url must be the gateway root (http://host:port), not a family path such as …/openai/v1",
        );
    }
    if a.status != 200 {
        return failure("GET /openai/v1/models", &a, None);
    }
    let Some(data) = a.json.get("data").and_then(Value::as_array) else {
        return Found::fail(
            "GET /openai/v1/models did not return a model list (`data`)",
            "check --base-url points at an anyint deployment (the gateway root, not /openai/v1)",
        );
    };
    ctx.models = data
        .iter()
        .filter_map(|m| {
            Some(Listed {
                id: m.get("id")?.as_str()?.to_owned(),
                owned_by: m
                    .get("owned_by")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                api: m
                    .get("api")
                    .and_then(Value::as_str)
                    .unwrap_or("chat")
                    .to_owned(),
            })
        })
        .collect();
    let prefix = super::redacted(&ctx.key);
    let note = if ctx.key.starts_with(crate::auth::KEY_PREFIX) {
        String::new()
    } else {
        format!(" (it does not start with {})", crate::auth::KEY_PREFIX)
    };
    Found::pass(format!(
        "key {prefix}… accepted{note}; {} models visible",
        ctx.models.len()
    ))
}

/// 2. The chosen model and fallback model are listed; the closest ID is suggested when not.
pub(super) fn models(ctx: &Ctx) -> Found {
    let mut missing = Vec::new();
    let mut present = Vec::new();
    let wanted = [
        ("--model", ctx.model()),
        ("--fallback-model", ctx.fallback_model()),
    ];
    for (flag, model) in wanted {
        match model {
            Some(m) if ctx.ids().any(|id| id == m) => present.push(m),
            Some(m) => missing.push((flag, m)),
            None => {}
        }
    }
    if let Some((flag, m)) = missing.first() {
        let hint = closest(m, ctx.ids())
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        return Found::fail(
            format!("{flag} `{m}` is not among the models this key may use"),
            format!(
                "{hint}GET /openai/v1/models lists what this key may use; if the model should be there, ask the operator to enable it for your key, team or plan"
            ),
        );
    }
    if present.is_empty() {
        return Found::fail(
            "no chat model is available to this key",
            "ask the operator to enable a model for your key, or pass --model",
        );
    }
    Found::pass(format!("listed: {}", present.join(", ")))
}

/// 3. A minimal chat request: shape, content and usage.
pub(super) async fn chat(ctx: &Ctx) -> Found {
    let model = ctx.model();
    if let Some(skip) = ctx.unavailable(model.as_deref(), "--model") {
        return skip;
    }
    let model = model.unwrap_or_default();
    let body = json!({"model": model, "messages": [{"role": "user", "content": PROMPT}]});
    let a = match send(ctx.bearer(ctx.post_json("/openai/v1/chat/completions", &body))).await {
        Ok(a) => a,
        Err(f) => return f,
    };
    if a.status != 200 {
        return failure("POST /openai/v1/chat/completions", &a, Some(&model));
    }
    let content = a
        .json
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str);
    let finish = a
        .json
        .pointer("/choices/0/finish_reason")
        .and_then(Value::as_str);
    let usage = |k: &str| {
        a.json
            .pointer(&format!("/usage/{k}"))
            .and_then(Value::as_u64)
    };
    let (Some(content), Some(_), Some(p), Some(c), Some(t)) = (
        content,
        finish,
        usage("prompt_tokens"),
        usage("completion_tokens"),
        usage("total_tokens"),
    ) else {
        return Found::fail(
            "the completion lacks choices[0].message.content, finish_reason or usage",
            "the deployment is not answering in the OpenAI shape; report it to the operator",
        );
    };
    if a.json.get("object").and_then(Value::as_str) != Some("chat.completion") || t != p + c {
        return Found::fail(
            "the completion's object or usage totals are inconsistent",
            "the deployment is not answering in the OpenAI shape; report it to the operator",
        );
    }
    if !content.contains(EXPECTED) {
        return Found::fail(
            format!("`{model}` answered {content:?}, not {EXPECTED:?}"),
            "the model did not follow a simple instruction; try another --model",
        );
    }
    Found::pass(format!(
        "`{model}` answered {EXPECTED:?}; usage {p}+{c}={t} tokens"
    ))
}

/// Reads a streamed body, calling `each` with every SSE data payload as it arrives.
async fn read_sse(resp: reqwest::Response, mut each: impl FnMut(&str)) -> Result<(), String> {
    let mut resp = resp;
    let mut sse = anyint_wire::sse::SseSplitter::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                for frame in sse.push_bytes(&chunk) {
                    each(&frame.data);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(crate::providers::http::describe(&e)),
        }
    }
    if let Some(frame) = sse.finish() {
        each(&frame.data);
    }
    Ok(())
}

/// Sends a streaming request; an error answer is read whole.
async fn open_stream(req: reqwest::RequestBuilder) -> Result<reqwest::Response, Found> {
    let resp = req.send().await.map_err(|e| super::transport(&e))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let json = resp
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Err(failure(
        "the streaming request",
        &Answer {
            status,
            headers,
            json,
        },
        None,
    ))
}

/// 4. Streaming: incremental chunks before the final one, the terminator, and the content.
pub(super) async fn stream(ctx: &Ctx) -> Found {
    let model = ctx.model();
    if let Some(skip) = ctx.unavailable(model.as_deref(), "--model") {
        return skip;
    }
    if ctx.status("chat") == Some(Status::Fail) {
        return Found::skip("skipped: the minimal request failed");
    }
    let model = model.unwrap_or_default();
    let body = json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": PROMPT}]});
    let resp =
        match open_stream(ctx.bearer(ctx.post_json("/openai/v1/chat/completions", &body))).await {
            Ok(r) => r,
            Err(f) => return f,
        };
    let (mut deltas, mut before_final, mut finished, mut done, mut usage) =
        (0, 0, false, false, false);
    let mut text = String::new();
    let mut bad = None;
    let read = read_sse(resp, |data| {
        if data == "[DONE]" {
            done = true;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            bad = Some(data.chars().take(80).collect::<String>());
            return;
        };
        if v.get("error").is_some() {
            bad = Some(super::error_message(&v));
        }
        if let Some(t) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            && !t.is_empty()
        {
            deltas += 1;
            if !finished {
                before_final += 1;
            }
            text.push_str(t);
        }
        if v.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .is_some()
        {
            finished = true;
        }
        if v.get("usage").is_some_and(Value::is_object) {
            usage = true;
        }
    })
    .await;
    if let Err(e) = read {
        return Found::fail(
            format!("the stream broke: {e}"),
            "retry; if it persists, report it to the operator",
        );
    }
    if let Some(b) = bad {
        return Found::fail(
            format!("the stream carried an error or an unreadable event: {b}"),
            "retry with backoff; if it persists, report it to the operator",
        );
    }
    if before_final == 0 || !finished || !done {
        return Found::fail(
            format!("incremental chunks: {before_final}, final chunk: {finished}, [DONE]: {done}"),
            "the deployment is not streaming in the OpenAI shape (a proxy may be buffering the response)",
        );
    }
    if !text.contains(EXPECTED) {
        return Found::fail(
            format!("the reassembled content is {text:?}"),
            "try another --model",
        );
    }
    let usage = if usage { ", usage chunk" } else { "" };
    Found::pass(format!(
        "{deltas} content chunks before the final chunk, [DONE]{usage}; reassembled {EXPECTED:?}"
    ))
}

/// Check 5: the Anthropic-native shape with `x-api-key` and `anthropic-version`, and the 400
/// when the version is missing.
pub(super) async fn anthropic(ctx: &Ctx) -> Found {
    let model = ctx.anthropic_model().or_else(|| ctx.model());
    if let Some(skip) = ctx.unavailable(model.as_deref(), "--anthropic-model") {
        return skip;
    }
    let model = model.unwrap_or_default();
    let body = json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]});
    let req = |version: bool| {
        let r = ctx
            .post_json("/anthropic/v1/messages", &body)
            .header("x-api-key", &ctx.key);
        if version {
            r.header("anthropic-version", "2023-06-01")
        } else {
            r
        }
    };
    let a = match send(req(true)).await {
        Ok(a) => a,
        Err(f) => return f,
    };
    if a.status != 200 {
        return failure("POST /anthropic/v1/messages", &a, Some(&model));
    }
    let text = a
        .json
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or("");
    if a.json.get("type").and_then(Value::as_str) != Some("message")
        || a.json.pointer("/usage/input_tokens").is_none()
    {
        return Found::fail(
            "the answer is not an Anthropic message with usage",
            "report it to the operator",
        );
    }
    if !text.contains(EXPECTED) {
        return Found::fail(
            format!("`{model}` answered {text:?}"),
            "try another --anthropic-model",
        );
    }
    let a = match send(req(false)).await {
        Ok(a) => a,
        Err(f) => return f,
    };
    let kind = a.json.pointer("/error/type").and_then(Value::as_str);
    if a.status != 400 || kind != Some("invalid_request_error") {
        return Found::fail(
            format!(
                "without anthropic-version the deployment answered HTTP {} ({})",
                a.status,
                kind.unwrap_or("no error type")
            ),
            "the Anthropic route must refuse a request without anthropic-version with a 400 invalid_request_error",
        );
    }
    Found::pass(format!(
        "x-api-key + anthropic-version: message from `{model}`; without the version: 400 invalid_request_error"
    ))
}

/// 6. Gemini-native streaming (`alt=sse`) with `x-goog-api-key`.
pub(super) async fn gemini(ctx: &Ctx) -> Found {
    let model = ctx.gemini_model().or_else(|| ctx.model());
    if let Some(skip) = ctx.unavailable(model.as_deref(), "--gemini-model") {
        return skip;
    }
    let model = model.unwrap_or_default();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]});
    let path = format!("/gemini/v1beta/models/{model}:streamGenerateContent?alt=sse");
    let req = ctx
        .post_json(&path, &body)
        .header("x-goog-api-key", &ctx.key);
    let resp = match open_stream(req).await {
        Ok(r) => r,
        Err(f) => return f,
    };
    let (mut events, mut finish, mut usage) = (0, false, false);
    let mut text = String::new();
    let read = read_sse(resp, |data| {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        events += 1;
        if let Some(parts) = v
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
        {
            for p in parts {
                text.push_str(p.get("text").and_then(Value::as_str).unwrap_or(""));
            }
        }
        finish |= v.pointer("/candidates/0/finishReason").is_some();
        usage |= v.get("usageMetadata").is_some();
    })
    .await;
    if let Err(e) = read {
        return Found::fail(
            format!("the stream broke: {e}"),
            "retry; if it persists, report it to the operator",
        );
    }
    if events == 0 || !finish || !text.contains(EXPECTED) {
        return Found::fail(
            format!("{events} events, finishReason: {finish}, text {text:?}"),
            "the Gemini route must stream `data: {GenerateContentResponse}` events with ?alt=sse",
        );
    }
    let usage = if usage { " with usageMetadata" } else { "" };
    Found::pass(format!(
        "{events} SSE events from `{model}`{usage}; reassembled {EXPECTED:?}"
    ))
}

/// Check 9: a bad key gives 401 in the auth shape; an unentitled model 403; an unknown
/// model 404.
pub(super) async fn errors(ctx: &Ctx) -> Found {
    let bad_key = format!("{}verify-not-a-real-key-000000", crate::auth::KEY_PREFIX);
    let a = match send(
        ctx.http
            .get(ctx.url("/openai/v1/models"))
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {bad_key}")),
    )
    .await
    {
        Ok(a) => a,
        Err(f) => return f,
    };
    let kind = a.json.pointer("/error/type").and_then(Value::as_str);
    if a.status != 401 || kind != Some("authentication_error") {
        return Found::fail(
            format!(
                "a bad key got HTTP {} ({})",
                a.status,
                kind.unwrap_or("no error type")
            ),
            "a wrong key must get 401 authentication_error so SDKs raise AuthenticationError",
        );
    }
    let mut seen = vec!["bad key → 401 authentication_error".to_owned()];
    let chat = |model: &str| {
        ctx.bearer(ctx.post_json(
            "/openai/v1/chat/completions",
            &json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        ))
    };
    let unknown = "anyint-verify-no-such-model";
    let a = match send(chat(unknown)).await {
        Ok(a) => a,
        Err(f) => return f,
    };
    if a.status != 404 {
        return Found::fail(
            format!("an unknown model got HTTP {}", a.status),
            "an unknown model must get 404 model_not_found",
        );
    }
    seen.push("unknown model → 404".into());
    match &ctx.args.unentitled_model {
        Some(m) => {
            let a = match send(chat(m)).await {
                Ok(a) => a,
                Err(f) => return f,
            };
            if a.status != 403 {
                return Found::fail(
                    format!("--unentitled-model `{m}` got HTTP {}, not 403", a.status),
                    "pass a model this key must not use; a model outside the key's plan, team or key list must get 403 model_not_allowed",
                );
            }
            seen.push(format!("`{m}` → 403 {}", super::error_code(&a.json)));
        }
        None => seen.push("403 not exercised (pass --unentitled-model ID)".into()),
    }
    Found::pass(seen.join("; "))
}

/// The 429 envelope and `Retry-After`, found by sending requests until a limit answers.
pub(super) async fn limits(ctx: &Ctx) -> Found {
    if !ctx.args.include_limits {
        return Found::skip(
            "not run: pass --include-limits to send requests until a limit answers 429",
        );
    }
    let Some(model) = ctx.model().filter(|m| ctx.ids().any(|id| id == m)) else {
        return Found::skip("no chat model is available to this key (pass --model)");
    };
    let body =
        json!({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..20 {
        let batch =
            (0..10).map(|_| send(ctx.bearer(ctx.post_json("/openai/v1/chat/completions", &body))));
        for a in futures_util::future::join_all(batch)
            .await
            .into_iter()
            .flatten()
        {
            if a.status != 429 {
                continue;
            }
            let code = super::error_code(&a.json);
            let retry = a
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok());
            let kind = a
                .json
                .pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or("");
            if code.contains("insufficient_quota") {
                return Found::pass(
                    "429 insufficient_quota (a credit cap): not retryable, as documented",
                );
            }
            return match retry {
                Some(r) if !kind.is_empty() => {
                    Found::pass(format!("429 {kind} ({code}) with Retry-After: {r}"))
                }
                _ => Found::fail(
                    format!("a 429 came without Retry-After or an error type ({kind:?})"),
                    "a rate-limit 429 must carry Retry-After so clients know when to retry",
                ),
            };
        }
    }
    Found::skip("no limit answered 429 after 200 requests: this key has no limit that low")
}
