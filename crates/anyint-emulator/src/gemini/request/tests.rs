//! Request validation tests: contents and parts, field names in both
//! spellings, tool config modes, and the text readers.

use serde_json::{Value, json};

use super::*;
use crate::content::ToolChoice;
use crate::gemini::error::GoogleError;

fn run(body: &Value) -> Result<GenerateRequest, GoogleError> {
    parse(Some(body), Endpoint::Generate)
}

fn msg(body: &Value) -> String {
    run(body).unwrap_err().message
}

#[test]
fn contents_required_and_parts_checked() {
    assert!(msg(&json!({})).contains("contents is not specified"));
    assert!(msg(&json!({"contents": []})).contains("contents is not specified"));
    assert!(
        msg(&json!({"contents": [{"role": "user", "parts": []}]})).contains("must not be empty")
    );
    assert!(
        msg(&json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}))
            .contains("valid role")
    );
    assert!(msg(&json!({"contents": [{"parts": [{}]}]})).contains("oneof field 'data'"));
    assert!(
        msg(&json!({"contents": [{"parts": [{"text": "a", "functionCall": {"name": "f"}}]}]}))
            .contains("already set")
    );
    let fr = json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "3C"}}]}]});
    assert!(msg(&fr).contains("google.protobuf.Struct"));
}

#[test]
fn unknown_names_and_snake_case() {
    assert!(
        msg(&json!({"contents": [{"parts": [{"text": "a"}]}], "max_tokens": 3}))
            .contains("Unknown name \"max_tokens\"")
    );
    let body = json!({"contents": [{"parts": [{"text": "a"}]}],
        "generation_config": {"max_output_tokens": 3, "stop_sequences": ["x"]}});
    let r = run(&body).unwrap();
    assert_eq!(r.max_tokens, Some(3));
    assert_eq!(r.stop, vec!["x".to_owned()]);
    let bad =
        json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"maxTokens": 3}});
    assert!(msg(&bad).contains("at 'generation_config'"));
}

#[test]
fn tool_config_modes() {
    let body = json!({"contents": [{"parts": [{"text": "a"}]}],
        "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}});
    let r = run(&body).unwrap();
    assert_eq!(r.tool_choice, ToolChoice::Named("g".to_owned()));
    assert_eq!(r.tools.len(), 1);
    let mut bad = body.clone();
    bad["tools"][0]["functionDeclarations"][0]["name"] = json!("9bad name");
    assert!(msg(&bad).contains("Invalid function name"));
}

#[test]
fn results_and_text() {
    let contents = vec![
        json!({"role": "user", "parts": [{"text": "weather?"}]}),
        json!({"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}),
        json!({"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"result": "3C"}}}]}),
    ];
    assert_eq!(last_user_text(&contents), "weather?");
    assert_eq!(last_function_result(&contents).as_deref(), Some("3C"));
    let count = parse(
        Some(&json!({"generateContentRequest": {"contents": contents}})),
        Endpoint::CountTokens,
    );
    assert!(count.is_ok());
}
