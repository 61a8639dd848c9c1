//! Request validation tests: versions, required and extra fields, sampling
//! per version, tool pairing, thinking rules and block checks.

use serde_json::{Value, json};

use super::*;
use crate::anthropic::error::AnthropicError;

fn run(body: &Value) -> Result<MessagesRequest, AnthropicError> {
    parse(Some(body), Version::V2023_06_01, Endpoint::Messages)
}

fn msg(body: &Value) -> String {
    run(body).unwrap_err().message
}

fn base() -> Value {
    json!({"model": "claude-x", "max_tokens": 10,
           "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn versions() {
    assert!(
        Version::parse(None)
            .unwrap_err()
            .message
            .contains("required")
    );
    assert_eq!(
        Version::parse(Some("2026-10-21")).unwrap(),
        Version::V2026_10_21
    );
    let dup = Version::parse(Some("2023-06-01, 2023-06-01")).unwrap_err();
    assert!(dup.message.contains("not a valid version"));
}

#[test]
fn required_and_extra_fields() {
    let mut b = base();
    b.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(msg(&b), "max_tokens: Field required");
    let mut b = base();
    b["n"] = json!(1);
    assert_eq!(msg(&b), "n: Extra inputs are not permitted");
    let mut b = base();
    b["messages"][0]["role"] = json!("system");
    assert!(msg(&b).starts_with("messages.0.role"));
    assert!(parse(Some(&base()), Version::V2023_06_01, Endpoint::CountTokens).is_err());
    let mut count = base();
    count.as_object_mut().unwrap().remove("max_tokens");
    assert!(parse(Some(&count), Version::V2023_06_01, Endpoint::CountTokens).is_ok());
}

#[test]
fn removed_sampling_params_on_new_version() {
    let mut b = base();
    b["temperature"] = json!(0.5);
    assert!(run(&b).is_ok());
    assert!(parse(Some(&b), Version::V2026_10_21, Endpoint::Messages).is_err());
    b["temperature"] = json!(1.5);
    assert!(run(&b).is_err());
}

#[test]
fn tool_pairing() {
    let mut b = base();
    b["messages"] = json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": "no result"}
    ]);
    assert!(msg(&b).contains("t1"));
    b["messages"][2]["content"] =
        json!([{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]);
    let r = run(&b).unwrap();
    assert_eq!(last_tool_result(&r.messages).as_deref(), Some("ok"));
    assert_eq!(last_user_text(&r.messages), "go");
    b["messages"][1]["content"] = json!("plain text");
    assert!(msg(&b).contains("unexpected `tool_use_id` found in `tool_result` blocks: t1"));
}

#[test]
fn thinking_rules() {
    let mut b = base();
    b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    assert!(msg(&b).contains("max_tokens"));
    b["max_tokens"] = json!(2048);
    assert!(run(&b).unwrap().thinking.is_some());
    b["thinking"]["budget_tokens"] = json!(10);
    assert!(msg(&b).contains("1024"));
}

#[test]
fn blocks_are_checked() {
    let mut b = base();
    b["messages"][0]["content"] = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}]);
    assert!(msg(&b).contains("media_type"));
    b["messages"][0]["content"] =
        json!([{"type": "text", "text": "x", "cache_control": {"type": "persistent"}}]);
    assert!(msg(&b).contains("ephemeral"));
    b["messages"][0]["content"] = json!([{"type": "video"}]);
    assert!(msg(&b).contains("'video'"));
    b["messages"][0]["content"] = json!([
        {"type": "text", "text": "a"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AA=="}}
    ]);
    assert!(run(&b).is_ok());
}

#[test]
fn system_messages_after_the_first() {
    let mut b = base();
    b["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "remember", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "later"},
        {"role": "user", "content": "again"}
    ]);
    assert!(run(&b).is_ok());
    b["messages"][1]["content"] = json!([{"type": "image", "source": {}}]);
    assert!(msg(&b).starts_with("messages.1.content.0.type"));
    b["messages"][1]["content"] = json!("");
    assert!(msg(&b).contains("non-empty text"));
}
