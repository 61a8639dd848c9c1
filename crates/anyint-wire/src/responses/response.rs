//! Response objects ⇄ canonical [`ChatResponse`]: an upstream's, and the one a client gets.

use serde_json::{Value, json};

use super::blob;
use super::echo::{Echo, Status};
use super::input::reasoning_text;
use super::search;
use super::tools::flat_name;
use crate::DecodeError;
use crate::canonical::{ChatResponse, FinishReason, Part, WebSearchCall};

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The canonical finish reason of a terminal status.
pub(super) fn finish_of(
    status: &str,
    incomplete_reason: Option<&str>,
    calls: bool,
) -> FinishReason {
    match (status, incomplete_reason) {
        ("completed", _) if calls => FinishReason::ToolCalls,
        ("completed", _) => FinishReason::Stop,
        ("incomplete", Some("max_output_tokens")) => FinishReason::Length,
        ("incomplete", Some("content_filter")) => FinishReason::ContentFilter,
        ("incomplete", Some(other)) | (other, _) => FinishReason::Other(other.to_owned()),
    }
}

/// The status (and `incomplete_details.reason`) a client gets for a finish reason.
pub(super) fn status_of(finish: Option<&FinishReason>) -> Status<'static> {
    match finish {
        Some(FinishReason::Length) => Status::Incomplete("max_output_tokens"),
        Some(FinishReason::ContentFilter) => Status::Incomplete("content_filter"),
        _ => Status::Completed,
    }
}

/// The canonical parts of one output item (request history replays the same shapes).
/// Built-in tool calls and unknown items have no canonical home and give none.
pub(super) fn item_parts(item: &Value) -> Vec<Part> {
    match string(item, "type") {
        Some("message") => item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| match string(c, "type") {
                Some("output_text") => string(c, "text"),
                Some("refusal") => string(c, "refusal"),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .map(Part::text)
            .collect(),
        Some("function_call") => vec![Part::ToolCall {
            id: string(item, "call_id").unwrap_or_default().to_owned(),
            name: flat_name(
                string(item, "namespace"),
                string(item, "name").unwrap_or_default(),
            ),
            arguments: string(item, "arguments").unwrap_or("{}").to_owned(),
        }],
        Some("custom_tool_call") => vec![Part::ToolCall {
            id: string(item, "call_id").unwrap_or_default().to_owned(),
            name: flat_name(
                string(item, "namespace"),
                string(item, "name").unwrap_or_default(),
            ),
            arguments: json!({"input": string(item, "input").unwrap_or_default()}).to_string(),
        }],
        Some("reasoning") => {
            let text = reasoning_text(item);
            let (signature, redacted) = string(item, "encrypted_content")
                .and_then(|e| blob::read(e).ok())
                .unwrap_or_default();
            if text.is_empty() && signature.is_none() && redacted.is_none() {
                return Vec::new();
            }
            vec![Part::Reasoning {
                text,
                signature,
                redacted,
            }]
        }
        _ => Vec::new(),
    }
}

/// Decodes a Response object (an upstream's non-streamed answer, or a client's copy). A failed
/// response, or a body that is not a Response object (an error envelope), is an error.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("the upstream response is not valid JSON: {e}")))?;
    let Some(output) = v.get("output").and_then(Value::as_array) else {
        return Err(DecodeError::body(
            "the upstream response is not a Responses object (no `output`)",
        ));
    };
    let status = string(&v, "status").unwrap_or("completed");
    if status == "failed" {
        let message = v
            .get("error")
            .and_then(|e| string(e, "message"))
            .unwrap_or("the upstream response failed");
        return Err(DecodeError::body(format!(
            "the upstream response failed: {message}"
        )));
    }
    let parts: Vec<Part> = output.iter().flat_map(item_parts).collect();
    let calls = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let reason = v
        .get("incomplete_details")
        .and_then(|d| string(d, "reason"));
    Ok(ChatResponse {
        id: string(&v, "id").unwrap_or_default().to_owned(),
        model: string(&v, "model").unwrap_or_default().to_owned(),
        created: v.get("created_at").and_then(Value::as_i64),
        finish: Some(finish_of(status, reason, calls)),
        parts,
        stop_sequence: None,
        usage: super::usage_from_response(body).unwrap_or_default(),
        ..ChatResponse::default()
    })
}

/// Builds output items from canonical parts; shared by the Response object and the stream so
/// both give the same items and ids.
pub(super) struct ItemBuilder<'e> {
    echo: &'e Echo,
}

impl<'e> ItemBuilder<'e> {
    pub(super) fn new(echo: &'e Echo) -> Self {
        Self { echo }
    }

    /// A finished message item holding `text` with its `url_citation` annotations.
    pub(super) fn annotated_message(
        &self,
        index: usize,
        text: &str,
        status: &str,
        annotations: &[Value],
    ) -> Value {
        json!({
            "id": self.echo.item_id("msg", index),
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [annotated_text(text, annotations)],
        })
    }

    /// A finished `web_search_call` item: what `call` found, or (`None`) a search that never
    /// got its results, with the query it was given.
    pub(super) fn search(
        &self,
        index: usize,
        call: Option<&WebSearchCall>,
        query: Option<&str>,
    ) -> Value {
        search::item(
            &self.echo.item_id("ws", index),
            call,
            query,
            self.echo.include_sources,
        )
    }

    /// A finished reasoning item; `encrypted_content` only when the client asked for it.
    pub(super) fn reasoning(
        &self,
        index: usize,
        text: &str,
        signature: Option<&str>,
        redacted: Option<&str>,
    ) -> Value {
        let mut item = json!({
            "id": self.echo.item_id("rs", index),
            "type": "reasoning",
            "summary": summary(text),
        });
        if self.echo.include_encrypted
            && let (Some(enc), Some(o)) =
                (blob::for_client(signature, redacted), item.as_object_mut())
        {
            o.insert("encrypted_content".into(), json!(enc));
        }
        item
    }

    /// A call item as the client declared the tool: `custom_tool_call{input}` for a custom
    /// tool (its `input` argument), `function_call` otherwise, with its `namespace` if any.
    pub(super) fn call(
        &self,
        index: usize,
        call_id: &str,
        name: &str,
        arguments: &str,
        status: &str,
    ) -> Value {
        let tool = self.echo.client_tool(name);
        let client_name = tool.map_or(name, |t| t.name.as_str());
        let mut item = if tool.is_some_and(|t| t.custom) {
            json!({
                "id": self.echo.item_id("ctc", index),
                "type": "custom_tool_call",
                "status": status,
                "call_id": call_id,
                "name": client_name,
                "input": custom_input(arguments),
            })
        } else {
            json!({
                "id": self.echo.item_id("fc", index),
                "type": "function_call",
                "status": status,
                "arguments": arguments,
                "call_id": call_id,
                "name": client_name,
            })
        };
        if let (Some(ns), Some(o)) = (
            tool.and_then(|t| t.namespace.as_deref()),
            item.as_object_mut(),
        ) {
            o.insert("namespace".into(), json!(ns));
        }
        item
    }
}

/// An `output_text` part (with the `annotations` and `logprobs` typed clients require).
pub(super) fn output_text(text: &str) -> Value {
    annotated_text(text, &[])
}

/// An `output_text` part with its annotations.
pub(super) fn annotated_text(text: &str, annotations: &[Value]) -> Value {
    json!({"type": "output_text", "text": text, "annotations": annotations, "logprobs": []})
}

/// A reasoning item's `summary` for `text` (none when empty).
pub(super) fn summary(text: &str) -> Value {
    if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    }
}

/// A custom tool's input from canonical arguments `{"input": "…"}`; other JSON is passed as
/// its text.
pub(super) fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(o)) => match o.get("input") {
            Some(Value::String(s)) if o.len() == 1 => s.clone(),
            _ => arguments.to_owned(),
        },
        _ => arguments.to_owned(),
    }
}

/// The Response object a client gets for a canonical response (the model shown is
/// `resp.model`, which the gateway sets to the public id). Text runs become message items
/// (with the `url_citation` annotations that fall inside them), calls
/// `function_call`/`custom_tool_call` items, reasoning `reasoning` items, searches
/// `web_search_call` items where the upstream ran them; an empty signed reasoning part right
/// after an unsigned one (Gemini signs the part after its thoughts) completes that item
/// instead of adding one. The last item of an incomplete response is `incomplete`.
pub fn encode_response(resp: &ChatResponse, echo: &Echo) -> Value {
    let items = ItemBuilder::new(echo);
    let status = status_of(resp.finish.as_ref());
    let mut output: Vec<Value> = Vec::new();
    let mut text = String::new();
    // Characters of answer text before the open run, and in all runs so far.
    let (mut run_start, mut answer_chars) = (0usize, 0usize);
    // The open reasoning item: (index in output, its text), while it is unsigned.
    let mut unsigned: Option<(usize, String)> = None;
    let flush = |text: &mut String, output: &mut Vec<Value>, run_start: usize| {
        if !text.is_empty() {
            let notes = search::annotations(&resp.citations, run_start, text.chars().count());
            let item = items.annotated_message(output.len(), text, "completed", &notes);
            output.push(item);
            text.clear();
        }
    };
    let mut searches: Vec<&(usize, WebSearchCall)> = resp.web_searches.iter().collect();
    searches.sort_by_key(|(at, _)| *at);
    let mut searches = searches.into_iter().peekable();
    for (i, p) in resp.parts.iter().enumerate() {
        while let Some((_, call)) = searches.next_if(|(at, _)| *at <= i) {
            flush(&mut text, &mut output, run_start);
            unsigned = None;
            let item = items.search(output.len(), Some(call), None);
            output.push(item);
        }
        match p {
            Part::Text { text: t, .. } => {
                if text.is_empty() {
                    run_start = answer_chars;
                }
                answer_chars += t.chars().count();
                text.push_str(t);
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                flush(&mut text, &mut output, run_start);
                unsigned = None;
                let item = items.call(output.len(), id, name, arguments, "completed");
                output.push(item);
            }
            Part::Reasoning {
                text: r,
                signature,
                redacted,
            } => {
                flush(&mut text, &mut output, run_start);
                if r.is_empty()
                    && redacted.is_none()
                    && let Some((at, prev)) = unsigned.take()
                    && at + 1 == output.len()
                    && let Some(slot) = output.get_mut(at)
                {
                    *slot = items.reasoning(at, &prev, signature.as_deref(), None);
                    continue;
                }
                let index = output.len();
                output.push(items.reasoning(index, r, signature.as_deref(), redacted.as_deref()));
                unsigned = (signature.is_none() && redacted.is_none()).then(|| (index, r.clone()));
            }
            Part::Image { .. } | Part::ToolResult { .. } => {}
        }
    }
    flush(&mut text, &mut output, run_start);
    for (_, call) in searches {
        let item = items.search(output.len(), Some(call), None);
        output.push(item);
    }
    if let (Status::Incomplete(_), Some(Value::Object(last))) = (status, output.last_mut())
        && last.contains_key("status")
    {
        last.insert("status".into(), json!("incomplete"));
    }
    echo.response(&resp.model, status, output, Some(&resp.usage))
}

#[cfg(test)]
mod tests;
