//! What Claude Code sends through the Anthropic family, to every upstream kind: system
//! messages inside `messages`, `context_management`, `anthropic-beta`, `?beta=true`, and the
//! upstream's own refusal text on passthrough. Each test reads what the emulator received.

use serde_json::{Value, json};

use crate::harness::TestGateway;
use crate::responses::gateway;

async fn messages(
    t: &TestGateway,
    path: &str,
    beta: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut req = t
        .http
        .post(t.url(path))
        .header("x-api-key", &t.key)
        .header("anthropic-version", "2023-06-01");
    if let Some(beta) = beta {
        req = req.header("anthropic-beta", beta);
    }
    req.json(body).send().await.unwrap()
}

/// The message of a 400 in the Anthropic envelope.
async fn refusal(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

/// The last request the emulator received under `tag`: its headers and body.
async fn upstream(t: &TestGateway, tag: &str) -> (Value, Value) {
    let last = t.upstream_request(tag).await;
    (last["headers"].clone(), last["body"].clone())
}

/// A Claude Code turn: its reminders in a system message after the first message, and the
/// fields it sends for any model.
fn claude_code_body(model: &str, tag: &str) -> Value {
    json!({
        "model": model, "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "u"},
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object",
                "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"name": "Later", "description": "Loaded on demand", "defer_loading": true,
                "input_schema": {"type": "object", "properties": {}}}
        ],
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "system", "content": [{"type": "text", "text": "REMINDER-ONE",
                "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": "first answer"},
            {"role": "system", "content": "REMINDER-TWO"},
            {"role": "user", "content": format!("Reply with exactly: done [emulate: tag={tag}]")}
        ]
    })
}

const CLAUDE_CODE_BETAS: &str = "claude-code-20250219,interleaved-thinking-2025-05-14,\
    context-management-2025-06-27,mid-conversation-tool-changes-2026-07-01,\
    thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24";

#[tokio::test]
async fn system_messages_after_the_first_reach_every_upstream_kind_in_order() {
    let t = gateway().await;
    for model in ["gpt-4o-mini", "gpt-resp", "gemini", "claude"] {
        let tag = format!("sys-{}", model.replace('.', ""));
        let resp = messages(
            &t,
            "/anthropic/v1/messages?beta=true",
            Some(CLAUDE_CODE_BETAS),
            &claude_code_body(model, &tag),
        )
        .await;
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{model}: {answer}");
        assert_eq!(
            answer["content"].as_array().unwrap().last().unwrap()["text"],
            "done",
            "{model}: {answer}"
        );
        let (headers, body) = upstream(&t, &tag).await;
        match model {
            // OpenAI Chat: system messages where they were said.
            "gpt-4o-mini" => {
                let sent: Vec<(&str, String)> = body["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| (m["role"].as_str().unwrap(), m["content"].to_string()))
                    .collect();
                let roles: Vec<&str> = sent.iter().map(|(r, _)| *r).collect();
                assert_eq!(
                    roles,
                    ["system", "user", "system", "assistant", "system", "user"],
                    "{body}"
                );
                assert!(sent[2].1.contains("REMINDER-ONE") && sent[4].1.contains("REMINDER-TWO"));
                assert_eq!(body["reasoning_effort"], "high", "{body}");
            }
            // Responses: developer items in place.
            "gpt-resp" => {
                let input = body["input"].as_array().unwrap();
                let roles: Vec<&str> = input.iter().filter_map(|i| i["role"].as_str()).collect();
                assert_eq!(
                    roles,
                    ["user", "developer", "assistant", "developer", "user"],
                    "{body}"
                );
                assert!(input[1].to_string().contains("REMINDER-ONE"));
            }
            // Gemini: one system instruction, the reminders after the system prompt.
            "gemini" => {
                let system = body["systemInstruction"]["parts"].to_string();
                let (top, one, two) = (
                    system.find("You are Claude Code.").unwrap(),
                    system.find("REMINDER-ONE").unwrap(),
                    system.find("REMINDER-TWO").unwrap(),
                );
                assert!(top < one && one < two, "{system}");
                assert!(!body["contents"].to_string().contains("REMINDER"), "{body}");
            }
            // Passthrough: the client's body as it was, context_management and betas too.
            _ => {
                assert_eq!(body["messages"][1]["role"], "system", "{body}");
                assert_eq!(
                    body["messages"][3],
                    json!({"role": "system", "content": "REMINDER-TWO"})
                );
                assert_eq!(
                    body["context_management"],
                    json!({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]})
                );
                assert_eq!(headers["anthropic-beta"], CLAUDE_CODE_BETAS, "{headers}");
            }
        }
        if model != "claude" {
            // Translated: context_management is dropped (cost, not meaning); no beta header.
            assert!(body.get("context_management").is_none(), "{model}: {body}");
            assert!(
                headers.get("anthropic-beta").is_none(),
                "{model}: {headers}"
            );
        }
    }
}

#[tokio::test]
async fn a_system_message_first_is_refused_as_the_api_does() {
    let t = gateway().await;
    for model in ["gpt-4o-mini", "gemini"] {
        let body = json!({"model": model, "max_tokens": 10,
            "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]});
        let message = refusal(messages(&t, "/anthropic/v1/messages", None, &body).await).await;
        assert!(message.starts_with("messages.0.role"), "{model}: {message}");
    }
}

#[tokio::test]
async fn answer_changing_betas_and_fields_a_translated_route_cannot_honour_are_400s_naming_them() {
    let t = gateway().await;
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 32,
            "messages": [{"role": "user", "content": "Reply with exactly: ok"}]})
    };
    for model in ["gpt-4o-mini", "gemini", "gpt-resp"] {
        let resp = messages(
            &t,
            "/anthropic/v1/messages",
            Some("claude-code-20250219, skills-2025-10-02"),
            &body(model),
        )
        .await;
        let message = refusal(resp).await;
        assert!(
            message.contains("`skills-2025-10-02`"),
            "{model}: {message}"
        );
        let mut with_mcp = body(model);
        with_mcp["mcp_servers"] =
            json!([{"type": "url", "url": "https://mcp.example", "name": "x"}]);
        let message = refusal(messages(&t, "/anthropic/v1/messages", None, &with_mcp).await).await;
        assert!(message.contains("mcp_servers"), "{model}: {message}");
    }
    // The same beta passes through to an Anthropic upstream, which decides.
    let mut tagged = body("claude");
    tagged["messages"][0]["content"] = json!("Reply with exactly: ok [emulate: tag=skills]");
    let resp = messages(
        &t,
        "/anthropic/v1/messages",
        Some("skills-2025-10-02"),
        &tagged,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (headers, _) = upstream(&t, "skills").await;
    assert_eq!(headers["anthropic-beta"], "skills-2025-10-02");
}

#[tokio::test]
async fn count_tokens_takes_beta_true_and_forwards_the_beta_header() {
    let t = gateway().await;
    for model in ["claude", "gpt-4o-mini", "gemini"] {
        let body = json!({"model": model,
            "messages": [{"role": "user", "content": "count me"},
                         {"role": "system", "content": "a reminder"},
                         {"role": "user", "content": "more [emulate: tag=count]"}],
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]}});
        let resp = messages(
            &t,
            "/anthropic/v1/messages/count_tokens?beta=true",
            Some(CLAUDE_CODE_BETAS),
            &body,
        )
        .await;
        assert_eq!(resp.status(), 200, "{model}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["input_tokens"].as_u64().unwrap() > 0, "{model}: {v}");
    }
    // Only the Anthropic route asked the upstream's counter, with the client's betas.
    let (headers, body) = upstream(&t, "count").await;
    assert_eq!(headers["anthropic-beta"], CLAUDE_CODE_BETAS, "{headers}");
    assert_eq!(body["messages"][1]["role"], "system");
}

#[tokio::test]
async fn passthrough_keeps_the_upstreams_refusal_text() {
    let t = gateway().await;
    // The emulator refuses unknown fields as the API does; the client reads its words.
    let body = json!({"model": "claude", "max_tokens": 10, "n": 1,
        "messages": [{"role": "user", "content": "hi"}]});
    let message = refusal(messages(&t, "/anthropic/v1/messages", None, &body).await).await;
    assert_eq!(message, "n: Extra inputs are not permitted");
}
