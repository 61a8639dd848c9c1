//! Errors: the HTTP error envelope (the Chat Completions one, `{"error":{"message","type",
//! "param","code"}}`) and the in-stream failure (`error` then `response.failed`, §4 and §7).

use serde_json::{Map, Value, json};

pub use crate::openai::ErrorBody;

/// Decodes an upstream error body; `None` when it is not the OpenAI envelope.
pub fn decode_error(body: &[u8]) -> Option<ErrorBody> {
    crate::openai::decode_error(body)
}

/// Appends one event: `event: <type>` and `data: {"type","sequence_number",<fields>…}`, the
/// fields in the given order (the order real streams use).
pub(super) fn write_event(out: &mut Vec<u8>, kind: &str, seq: u64, fields: &[(&str, Value)]) {
    event_head(out, kind, seq);
    for (key, value) in fields {
        out.push(b',');
        push_str(out, key);
        out.push(b':');
        push_json(out, value);
    }
    out.extend_from_slice(b"}\n\n");
}

/// What every event starts with: `event: <type>` and `data: {"type":…,"sequence_number":…`.
fn event_head(out: &mut Vec<u8>, kind: &str, seq: u64) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"type\":");
    push_str(out, kind);
    out.extend_from_slice(b",\"sequence_number\":");
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
}

/// A delta event (`response.output_text.delta` and its kin, most of a stream's events) as
/// [`write_event`] writes it, without a `Value` per field: `item_id`, `output_index`, then
/// `part` (`content_index` or `summary_index`) as 0 when given, `delta`, and `"logprobs":[]`
/// when `logprobs`.
pub(super) fn write_delta_event(
    out: &mut Vec<u8>,
    kind: &str,
    seq: u64,
    (item_id, output_index): (&str, usize),
    part: Option<&str>,
    delta: &str,
    logprobs: bool,
) {
    event_head(out, kind, seq);
    out.extend_from_slice(b",\"item_id\":");
    push_str(out, item_id);
    out.extend_from_slice(b",\"output_index\":");
    out.extend_from_slice(itoa::Buffer::new().format(output_index).as_bytes());
    if let Some(part) = part {
        out.push(b',');
        push_str(out, part);
        out.extend_from_slice(b":0");
    }
    out.extend_from_slice(b",\"delta\":");
    push_str(out, delta);
    if logprobs {
        out.extend_from_slice(b",\"logprobs\":[]");
    }
    out.extend_from_slice(b"}\n\n");
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"null");
    }
}

fn push_json(out: &mut Vec<u8>, v: &Value) {
    // Writing a `Value` into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// The error `type` that goes with a `code` in the nested `error` event.
fn error_type(code: &str) -> &'static str {
    match code {
        "rate_limit_exceeded" => "rate_limit_error",
        "insufficient_quota" => "insufficient_quota",
        "context_length_exceeded" | "invalid_prompt" => "invalid_request_error",
        _ => "server_error",
    }
}

/// The nested `error` object of an `error` event.
pub(super) fn error_payload(code: &str, message: &str) -> Value {
    json!({"type": error_type(code), "code": code, "message": message, "param": null})
}

/// The failure a Responses client gets after the stream began: the nested `error` event
/// (`{"type":"error","error":{"type","code","message","param":null}}`, which the SDKs raise)
/// numbered `sequence_number`, then `response.failed` numbered one more, carrying `response`
/// (the object the stream announced; a bare one when `None`) with `status: "failed"` and
/// `error: {code, message}`. Codex reads `code`: `context_length_exceeded`,
/// `insufficient_quota`, `rate_limit_exceeded` (it parses "try again in 1.5s" from the message)
/// and `usage_not_included` are final, anything else (e.g. `server_error`) is retried.
///
/// For a native passthrough stream the gateway passes the upstream's last `sequence_number`
/// plus one and the response from its `response.created`; [`super::StreamEncoder::fail`] does
/// this itself for translated streams.
pub fn failure_events(
    sequence_number: u64,
    response: Option<&Value>,
    code: &str,
    message: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + 2 * message.len());
    write_event(
        &mut out,
        "error",
        sequence_number,
        &[("error", error_payload(code, message))],
    );
    let mut failed = if let Some(Value::Object(o)) = response {
        o.clone()
    } else {
        let mut o = Map::new();
        o.insert("object".into(), json!("response"));
        o.insert("output".into(), json!([]));
        o.insert("usage".into(), Value::Null);
        o
    };
    failed.insert("status".into(), json!("failed"));
    failed.insert("error".into(), json!({"code": code, "message": message}));
    failed.insert("incomplete_details".into(), Value::Null);
    write_event(
        &mut out,
        "response.failed",
        sequence_number.saturating_add(1),
        &[("response", Value::Object(failed))],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delta writer writes what `write_event` writes from the same fields.
    #[test]
    fn delta_events_are_written_as_write_event_writes_them() {
        let deltas = [
            "",
            "plain",
            "a \"quoted\"\nline\t\u{1}",
            "\u{e9}\u{1f600}",
            "</script>",
        ];
        for delta in deltas {
            for (part, logprobs) in [
                (Some("content_index"), true),
                (Some("summary_index"), false),
                (None, false),
            ] {
                let mut fields = vec![("item_id", json!("msg_\"1")), ("output_index", json!(12))];
                if let Some(part) = part {
                    fields.push((part, json!(0)));
                }
                fields.push(("delta", json!(delta)));
                if logprobs {
                    fields.push(("logprobs", json!([])));
                }
                let mut want = Vec::new();
                write_event(
                    &mut want,
                    "response.output_text.delta",
                    4_294_967_296,
                    &fields,
                );
                let mut got = Vec::new();
                write_delta_event(
                    &mut got,
                    "response.output_text.delta",
                    4_294_967_296,
                    ("msg_\"1", 12),
                    part,
                    delta,
                    logprobs,
                );
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(want).unwrap()
                );
            }
        }
    }
    use crate::sse::SseSplitter;

    #[test]
    fn failure_is_a_nested_error_then_response_failed() {
        let resp = json!({"id": "resp_1", "object": "response", "status": "in_progress"});
        let bytes = failure_events(7, Some(&resp), "server_error", "upstream went away");
        let frames = SseSplitter::new().push(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].event.as_deref(), Some("error"));
        let e: Value = serde_json::from_str(&frames[0].data).unwrap();
        assert_eq!(
            e,
            json!({"type": "error", "sequence_number": 7, "error": {
                "type": "server_error", "code": "server_error",
                "message": "upstream went away", "param": null}})
        );
        assert!(
            frames[0]
                .data
                .starts_with(r#"{"type":"error","sequence_number":7,"#)
        );
        let f: Value = serde_json::from_str(&frames[1].data).unwrap();
        assert_eq!(f["type"], "response.failed");
        assert_eq!(f["sequence_number"], 8);
        assert_eq!(f["response"]["id"], "resp_1");
        assert_eq!(f["response"]["status"], "failed");
        assert_eq!(f["response"]["error"]["code"], "server_error");
        let bare = failure_events(0, None, "rate_limit_exceeded", "slow down");
        assert!(
            String::from_utf8(bare)
                .unwrap()
                .contains("\"rate_limit_error\"")
        );
    }

    #[test]
    fn decodes_the_openai_envelope() {
        let e = decode_error(br#"{"error":{"message":"m","type":"invalid_request_error","param":"input","code":"invalid_value"}}"#).unwrap();
        assert_eq!(e.code.as_deref(), Some("invalid_value"));
        assert!(decode_error(b"{}").is_none());
    }
}
