//! Part codec tests: call ids and response matching, thought signatures both ways, malformed
//! parts, images, and tool arguments as objects.

use serde_json::{Value, json};

use super::decode::{PartsDecoder, carrier, image};
use super::encode::{PartsWriter, args_object};
use crate::canonical::{ImageSource, Part};

fn decode_all(dec: &mut PartsDecoder, parts: &Value) -> Vec<Part> {
    parts
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| dec.decode(p).unwrap().parts)
        .collect()
}

#[test]
fn calls_get_ids_and_responses_match_by_name_in_order() {
    let mut dec = PartsDecoder::request();
    let parts = decode_all(
        &mut dec,
        &json!([
            {"functionCall": {"name": "a", "args": {"x": 1}}},
            {"functionCall": {"name": "b"}},
            {"functionCall": {"name": "a", "args": {}, "id": "mine"}},
            {"functionResponse": {"name": "a", "response": {"ok": true}}},
            {"functionResponse": {"name": "a", "response": {"error": "boom"}}},
            {"functionResponse": {"name": "b", "response": {}, "id": "given"}},
            {"functionResponse": {"name": "zz", "response": {}}},
        ]),
    );
    let ids: Vec<&str> = parts
        .iter()
        .map(|p| match p {
            Part::ToolCall { id, .. } => id.as_str(),
            Part::ToolResult { call_id, .. } => call_id.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(
        ids,
        [
            "call_0", "call_1", "mine", "call_0", "mine", "given", "call_zz"
        ]
    );
    assert!(matches!(&parts[0], Part::ToolCall { arguments, .. } if arguments == r#"{"x":1}"#));
    assert!(matches!(&parts[1], Part::ToolCall { arguments, .. } if arguments == "{}"));
    assert!(
        matches!(&parts[4], Part::ToolResult { is_error: true, content, name: Some(n), .. }
            if n == "a" && content == &vec![Part::text(r#"{"error":"boom"}"#)])
    );
    assert!(matches!(
        &parts[3],
        Part::ToolResult {
            is_error: false,
            ..
        }
    ));
}

#[test]
fn response_ids_carry_the_response_id() {
    let mut dec = PartsDecoder::response("r/1");
    let parts = decode_all(&mut dec, &json!([{"functionCall": {"name": "a"}}]));
    assert!(matches!(&parts[0], Part::ToolCall { id, .. } if id == "call_r1_0"));
    let mut dec = PartsDecoder::response("");
    let parts = decode_all(&mut dec, &json!([{"functionCall": {"name": "a"}}]));
    assert!(matches!(&parts[0], Part::ToolCall { id, .. } if id == "call_0"));
}

#[test]
fn signatures_and_thoughts() {
    let mut dec = PartsDecoder::request();
    let parts = decode_all(
        &mut dec,
        &json!([
            {"text": "hmm", "thought": true, "thoughtSignature": "S1"},
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S2"},
        ]),
    );
    assert_eq!(
        parts,
        vec![
            Part::Reasoning {
                text: "hmm".into(),
                signature: Some("anyint:gemini:S1".into()),
                redacted: None
            },
            carrier("anyint:gemini:S2".into()),
            Part::ToolCall {
                id: "call_0".into(),
                name: "f".into(),
                arguments: "{}".into()
            },
        ]
    );
    let mut w = PartsWriter::request();
    for p in &parts {
        w.part(p);
    }
    w.reasoning("unsigned", None);
    w.reasoning("", Some("S3"));
    assert_eq!(
        Value::Array(w.finish()),
        json!([
            {"text": "hmm", "thought": true, "thoughtSignature": "S1"},
            {"functionCall": {"name": "f", "args": {}, "id": "call_0"}, "thoughtSignature": "S2"},
            {"text": "", "thought": true, "thoughtSignature": "S3"},
        ])
    );
}

#[test]
fn signatures_keep_their_origin_both_ways() {
    // A Gemini client echoes its own signature and an Anthropic one it got tagged.
    let mut dec = PartsDecoder::request();
    let parts = decode_all(
        &mut dec,
        &json!([
            {"text": "mine", "thought": true, "thoughtSignature": "CiQB"},
            {"text": "theirs", "thought": true, "thoughtSignature": "anyint:anthropic:EqQB"},
        ]),
    );
    let sig = |p: &Part| match p {
        Part::Reasoning { signature, .. } => signature.clone(),
        _ => None,
    };
    assert_eq!(sig(&parts[0]).as_deref(), Some("anyint:gemini:CiQB"));
    assert_eq!(sig(&parts[1]).as_deref(), Some("anyint:anthropic:EqQB"));
    // To a Gemini client: its own untagged, the other tagged.
    let mut w = PartsWriter::response();
    for p in &parts {
        w.part(p);
    }
    assert_eq!(
        Value::Array(w.finish()),
        json!([
            {"text": "mine", "thought": true, "thoughtSignature": "CiQB"},
            {"text": "theirs", "thought": true, "thoughtSignature": "anyint:anthropic:EqQB"},
        ])
    );
    // To a Gemini upstream: the Anthropic-signed thought is dropped.
    let mut w = PartsWriter::request();
    for p in &parts {
        w.part(p);
    }
    assert_eq!(
        Value::Array(w.finish()),
        json!([{"text": "mine", "thought": true, "thoughtSignature": "CiQB"}])
    );
}

#[test]
fn malformed_parts_are_errors_in_request_mode() {
    let mut dec = PartsDecoder::request();
    for bad in [
        json!({}),
        json!({"text": "a", "inlineData": {"mimeType": "image/png", "data": ""}}),
        json!({"text": 3}),
        json!({"functionCall": {"args": {}}}),
        json!({"functionCall": {"name": "f", "args": [1]}}),
        json!({"functionResponse": {"name": "f", "response": "x"}}),
        json!({"inlineData": {"mimeType": "application/pdf", "data": "AA"}}),
        json!({"fileData": {"mimeType": "video/mp4", "fileUri": "gs://x"}}),
        json!("text"),
    ] {
        assert!(dec.decode(&bad).is_err(), "{bad}");
    }
    let mut lenient = PartsDecoder::response("r");
    assert!(lenient.decode(&json!({})).unwrap().parts.is_empty());
    let d = dec
        .decode(&json!({"executableCode": {"code": "1"}}))
        .unwrap();
    assert_eq!(d.unsupported.unwrap().0, "contents.executableCode");
}

#[test]
fn images_both_ways() {
    let mut dec = PartsDecoder::request();
    let parts = decode_all(
        &mut dec,
        &json!([
            {"inline_data": {"mime_type": "image/png", "data": "AAAA"}},
            {"fileData": {"fileUri": "https://x/y.webp"}},
        ]),
    );
    let mut w = PartsWriter::request();
    for p in &parts {
        w.part(p);
    }
    w.part(&image(ImageSource::Url(
        "data:image/gif;base64,R0lG".into(),
    )));
    w.part(&image(ImageSource::Url("https://x/photo?size=2".into())));
    assert_eq!(
        Value::Array(w.finish()),
        json!([
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://x/y.webp"}},
            {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/photo?size=2"}},
        ])
    );
}

#[test]
fn arguments_become_objects() {
    assert_eq!(args_object(""), json!({}));
    assert_eq!(args_object(r#"{"a":1}"#), json!({"a": 1}));
    assert_eq!(args_object("[1]"), json!({"_raw": "[1]"}));
    assert_eq!(args_object("{oops"), json!({"_raw": "{oops"}));
}
