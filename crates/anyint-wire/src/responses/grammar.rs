//! A strict check of a Responses event stream against the §4 grammar and the parsing rules of
//! the SDKs, Codex and the Vercel AI SDK (§5). The crate's tests run every stream the encoder
//! writes through it; the gateway's tests can run what a client receives.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::sse::SseSplitter;

/// An item between its `output_item.added` and `output_item.done`.
struct Open {
    id: String,
    kind: String,
    name: Option<String>,
    /// Text, summary, arguments or input accumulated from deltas.
    acc: String,
    /// The open content part or summary part, and the next index.
    part: Option<u64>,
    next_part: u64,
    /// Annotations added to the open content part.
    notes: Vec<Value>,
    /// Annotations of each closed content part, in order.
    part_notes: Vec<Vec<Value>>,
    /// Search progress events seen: 1 `in_progress`, 2 `searching`, 3 `completed`.
    stage: u8,
}

fn field<'v>(d: &'v Value, k: &str) -> Result<&'v Value, String> {
    d.get(k).ok_or_else(|| format!("missing `{k}`"))
}

fn text<'v>(d: &'v Value, k: &str) -> Result<&'v str, String> {
    field(d, k)?
        .as_str()
        .ok_or_else(|| format!("`{k}` is not a string"))
}

fn number(d: &Value, k: &str) -> Result<u64, String> {
    field(d, k)?
        .as_u64()
        .ok_or_else(|| format!("`{k}` is not a number"))
}

/// Checks a whole client stream: `event:` equals `data.type` on every event;
/// `sequence_number` counts from 0 by one; `response.created` then `response.in_progress`
/// first; items added with dense `output_index` in order, each with a unique id used by all its
/// events, content and summary parts opened before their deltas and closed before the item,
/// `.done` texts equal to the deltas, annotations added in order inside the text streamed so far
/// and repeated by the part and the item, `web_search_call` items going through
/// `in_progress`, `searching`, `completed` and done with an `action`, items closed in
/// `output_index` order; an `error` only
/// right before `response.failed`; exactly one terminal event (`response.completed`,
/// `.incomplete` or `.failed`), last, whose `response.output` is the finished items in order
/// and, unless failed, whose `usage` has numeric `input_tokens` and `output_tokens`.
pub fn check_stream(bytes: &[u8]) -> Result<(), String> {
    let mut split = SseSplitter::new();
    let mut frames = split.push(bytes);
    frames.extend(split.finish());
    let mut open: BTreeMap<u64, Open> = BTreeMap::new();
    let mut done: Vec<Value> = Vec::new();
    let mut ids: HashSet<String> = HashSet::new();
    let mut terminal = false;
    let mut after_error = false;
    let mut seq = 0u64;
    for (n, f) in frames.iter().enumerate() {
        if f.data.is_empty() && f.event.is_none() {
            continue; // a keep-alive comment
        }
        let at = |m: String| format!("event {n} ({}): {m}", f.event.as_deref().unwrap_or("-"));
        let d: Value = serde_json::from_str(&f.data).map_err(|e| at(format!("data: {e}")))?;
        let kind = text(&d, "type").map_err(&at)?;
        if f.event.as_deref() != Some(kind) {
            return Err(at(format!("`event:` is not the data type {kind}")));
        }
        if terminal {
            return Err(at("event after the terminal event".into()));
        }
        if number(&d, "sequence_number").map_err(&at)? != seq {
            return Err(at(format!("sequence_number is not {seq}")));
        }
        seq += 1;
        if after_error && kind != "response.failed" {
            return Err(at("`error` not followed by response.failed".into()));
        }
        match (n, kind) {
            (0, "response.created") | (1, "response.in_progress") => {
                let r = field(&d, "response").map_err(&at)?;
                if r["status"] != "in_progress" || r["output"] != Value::Array(Vec::new()) {
                    return Err(at(
                        "the starting response is not in progress and empty".into()
                    ));
                }
                for k in ["id", "created_at", "model"] {
                    field(r, k).map_err(&at)?;
                }
                continue;
            }
            (0 | 1, _) => {
                return Err(at(
                    "the stream does not start with created, in_progress".into()
                ));
            }
            _ => {}
        }
        step(&d, kind, &mut open, &mut done, &mut ids).map_err(&at)?;
        match kind {
            "error" => {
                let e = field(&d, "error").map_err(&at)?;
                text(e, "message").map_err(&at)?;
                text(e, "code").map_err(&at)?;
                after_error = true;
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                terminal = true;
                let r = field(&d, "response").map_err(&at)?;
                let status = kind.trim_start_matches("response.");
                if r["status"] != status {
                    return Err(at(format!("response.status is {}", r["status"])));
                }
                if status != "failed" {
                    if !open.is_empty() {
                        return Err(at("items still open".into()));
                    }
                    let usage = field(r, "usage").map_err(&at)?;
                    number(usage, "input_tokens").map_err(&at)?;
                    number(usage, "output_tokens").map_err(&at)?;
                }
                if r["output"] != Value::Array(done.clone()) {
                    return Err(at("response.output is not the finished items".into()));
                }
            }
            _ => {}
        }
    }
    if terminal {
        Ok(())
    } else {
        Err("the stream has no terminal event".into())
    }
}

/// One event between the start and the terminal event.
fn step(
    d: &Value,
    kind: &str,
    open: &mut BTreeMap<u64, Open>,
    done: &mut Vec<Value>,
    ids: &mut HashSet<String>,
) -> Result<(), String> {
    if matches!(
        kind,
        "error" | "response.completed" | "response.incomplete" | "response.failed"
    ) {
        return Ok(());
    }
    let index = number(d, "output_index")?;
    if kind == "response.output_item.added" {
        let next = u64::try_from(done.len() + open.len()).unwrap_or(u64::MAX);
        if index != next {
            return Err(format!("output_index {index}, expected {next}"));
        }
        let item = field(d, "item")?;
        let id = text(item, "id")?.to_owned();
        if !ids.insert(id.clone()) {
            return Err(format!("item id {id} used twice"));
        }
        let kind = text(item, "type")?.to_owned();
        if kind != "reasoning" && item["status"] != "in_progress" {
            return Err("an added item is not in_progress".into());
        }
        open.insert(
            index,
            Open {
                id,
                name: item.get("name").and_then(Value::as_str).map(str::to_owned),
                kind,
                acc: String::new(),
                part: None,
                next_part: 0,
                notes: Vec::new(),
                part_notes: Vec::new(),
                stage: 0,
            },
        );
        return Ok(());
    }
    let Some(item) = open.get_mut(&index) else {
        return Err(format!("{kind} for item {index}, which is not open"));
    };
    if kind == "response.output_item.done" {
        return close(d, index, open, done);
    }
    if text(d, "item_id")? != item.id {
        return Err(format!("item_id is not {}", item.id));
    }
    item_event(d, kind, item)
}

/// An event inside an open item: its parts and deltas.
fn item_event(d: &Value, kind: &str, item: &mut Open) -> Result<(), String> {
    let part_key = if kind.contains("summary") {
        "summary_index"
    } else {
        "content_index"
    };
    let want_kind = |k: &str| {
        if item.kind == k {
            Ok(())
        } else {
            Err(format!("{kind} inside a {} item", item.kind))
        }
    };
    match kind {
        "response.content_part.added" | "response.reasoning_summary_part.added" => {
            want_kind(if part_key == "content_index" {
                "message"
            } else {
                "reasoning"
            })?;
            let i = number(d, part_key)?;
            if item.part.is_some() || i != item.next_part {
                return Err(format!("{part_key} {i} opened out of order"));
            }
            if field(d, "part")?["text"] != "" {
                return Err("a part starts with text".into());
            }
            item.part = Some(i);
            item.next_part += 1;
            item.acc.clear();
        }
        "response.output_text.delta"
        | "response.refusal.delta"
        | "response.reasoning_summary_text.delta" => {
            if item.part != Some(number(d, part_key)?) {
                return Err(format!("{kind} outside its open part"));
            }
            if kind == "response.output_text.delta" {
                field(d, "logprobs")?;
            }
            item.acc.push_str(text(d, "delta")?);
        }
        "response.output_text.done" | "response.reasoning_summary_text.done" => {
            if item.part != Some(number(d, part_key)?) || text(d, "text")? != item.acc {
                return Err(format!("{kind} does not match its deltas"));
            }
        }
        "response.content_part.done" | "response.reasoning_summary_part.done" => {
            let part = field(d, "part")?;
            if item.part != Some(number(d, part_key)?) || part["text"] != item.acc.as_str() {
                return Err(format!("{kind} does not match its deltas"));
            }
            if kind == "response.content_part.done" {
                if part.get("annotations") != Some(&Value::Array(item.notes.clone())) {
                    return Err("content_part.done annotations are not the ones added".into());
                }
                item.part_notes.push(std::mem::take(&mut item.notes));
            }
            item.part = None;
        }
        "response.output_text.annotation.added" => {
            want_kind("message")?;
            annotation_added(d, item)?;
        }
        "response.web_search_call.in_progress"
        | "response.web_search_call.searching"
        | "response.web_search_call.completed" => {
            want_kind("web_search_call")?;
            search_stage(kind, item)?;
        }
        "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
            want_kind(if kind.contains("function") {
                "function_call"
            } else {
                "custom_tool_call"
            })?;
            item.acc.push_str(text(d, "delta")?);
        }
        "response.function_call_arguments.done" => {
            want_kind("function_call")?;
            if text(d, "arguments")? != item.acc
                || d.get("name").and_then(Value::as_str) != item.name.as_deref()
            {
                return Err("arguments.done does not match its deltas or name".into());
            }
        }
        "response.custom_tool_call_input.done" => {
            want_kind("custom_tool_call")?;
            if text(d, "input")? != item.acc {
                return Err("input.done does not match its deltas".into());
            }
        }
        other => return Err(format!("unexpected event {other}")),
    }
    Ok(())
}

/// `response.output_text.annotation.added`: in the open part, in order, a `url_citation`
/// inside the text streamed so far.
fn annotation_added(d: &Value, item: &mut Open) -> Result<(), String> {
    if item.part != Some(number(d, "content_index")?) {
        return Err("annotation.added outside its open part".into());
    }
    if usize::try_from(number(d, "annotation_index")?).ok() != Some(item.notes.len()) {
        return Err("annotation_index out of order".into());
    }
    let note = field(d, "annotation")?;
    if text(note, "type")? == "url_citation" {
        text(note, "url")?;
        text(note, "title")?;
        let (start, end) = (number(note, "start_index")?, number(note, "end_index")?);
        let len = u64::try_from(item.acc.chars().count()).unwrap_or(u64::MAX);
        if start > end || end > len {
            return Err(format!(
                "url_citation {start}..{end} is not inside the {len} characters streamed"
            ));
        }
    }
    item.notes.push(note.clone());
    Ok(())
}

/// `response.web_search_call.*`: `in_progress`, `searching`, `completed`, in that order.
fn search_stage(kind: &str, item: &mut Open) -> Result<(), String> {
    let stage = match kind {
        "response.web_search_call.in_progress" => 1,
        "response.web_search_call.searching" => 2,
        _ => 3,
    };
    if item.stage + 1 != stage {
        return Err(format!("{kind} out of order"));
    }
    item.stage = stage;
    Ok(())
}

fn close(
    d: &Value,
    index: u64,
    open: &mut BTreeMap<u64, Open>,
    done: &mut Vec<Value>,
) -> Result<(), String> {
    if open.keys().next() != Some(&index) {
        return Err(format!("item {index} closed before an earlier one"));
    }
    let Some(item) = open.remove(&index) else {
        return Err(format!("item {index} is not open"));
    };
    let fin = field(d, "item")?;
    if text(fin, "id")? != item.id || text(fin, "type")? != item.kind {
        return Err("the done item is not the added one".into());
    }
    if item.part.is_some() {
        return Err("a part is still open".into());
    }
    let status = fin.get("status");
    let wrong_annotations = |(i, part): (usize, &Value)| {
        let added = item.part_notes.get(i).cloned().unwrap_or_default();
        part.get("annotations") != Some(&Value::Array(added))
    };
    match item.kind.as_str() {
        "message"
            if field(fin, "content")?
                .as_array()
                .is_none_or(|parts| parts.iter().enumerate().any(wrong_annotations)) =>
        {
            return Err("output_text annotations are not the ones added (or missing)".into());
        }
        "web_search_call" => {
            if item.stage != 3 {
                return Err("web_search_call done before in_progress, searching, completed".into());
            }
            text(field(fin, "action")?, "type")?;
            if !matches!(status.and_then(Value::as_str), Some("completed" | "failed")) {
                return Err("a done web_search_call is not completed or failed".into());
            }
            done.push(fin.clone());
            return Ok(());
        }
        "function_call" => {
            if text(fin, "arguments")? != item.acc {
                return Err("function_call arguments are not the deltas".into());
            }
            text(fin, "call_id")?;
        }
        "custom_tool_call" => {
            if text(fin, "input")? != item.acc {
                return Err("custom_tool_call input is not the deltas".into());
            }
            text(fin, "call_id")?;
        }
        _ => {}
    }
    if item.kind != "reasoning"
        && !matches!(
            status.and_then(Value::as_str),
            Some("completed" | "incomplete")
        )
    {
        return Err("a done item is not completed or incomplete".into());
    }
    done.push(fin.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid stream: one message, then a call.
    fn events() -> Vec<String> {
        [
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","created_at":1,"model":"m","status":"in_progress","output":[]}}"#,
            r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","created_at":1,"model":"m","status":"in_progress","output":[]}}"#,
            r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
            r#"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}}"#,
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","logprobs":[]}"#,
            r#"{"type":"response.output_text.done","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hi","logprobs":[]}"#,
            r#"{"type":"response.content_part.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hi","annotations":[],"logprobs":[]}}"#,
            r#"{"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[],"logprobs":[]}]}}"#,
            r#"{"type":"response.output_item.added","sequence_number":8,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"c","name":"f"}}"#,
            r#"{"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_1","output_index":1,"delta":"{}"}"#,
            r#"{"type":"response.function_call_arguments.done","sequence_number":10,"item_id":"fc_1","output_index":1,"name":"f","arguments":"{}"}"#,
            r#"{"type":"response.output_item.done","sequence_number":11,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"completed","arguments":"{}","call_id":"c","name":"f"}}"#,
            r#"{"type":"response.completed","sequence_number":12,"response":{"id":"resp_1","status":"completed","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[],"logprobs":[]}]},{"id":"fc_1","type":"function_call","status":"completed","arguments":"{}","call_id":"c","name":"f"}],"usage":{"input_tokens":1,"output_tokens":2}}}"#,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn sse(events: &[String]) -> Vec<u8> {
        events
            .iter()
            .map(|d| {
                let v: Value = serde_json::from_str(d).unwrap();
                format!("event: {}\ndata: {d}\n\n", v["type"].as_str().unwrap())
            })
            .collect::<Vec<String>>()
            .concat()
            .into_bytes()
    }

    type Edit = Box<dyn Fn(&mut Vec<String>)>;

    /// Renumbers `sequence_number` densely after an edit.
    fn renumber(events: &mut [String]) {
        for (n, e) in events.iter_mut().enumerate() {
            let mut v: Value = serde_json::from_str(e).unwrap();
            v["sequence_number"] = n.into();
            *e = v.to_string();
        }
    }

    #[test]
    fn accepts_a_valid_stream_and_rejects_each_violation() {
        check_stream(&sse(&events())).unwrap();
        let broken: Vec<(&str, Edit)> = vec![
            (
                "skipped sequence",
                Box::new(|e| e[4] = e[4].replace("\"sequence_number\":4", "\"sequence_number\":5")),
            ),
            (
                "no content_part.added",
                Box::new(|e| {
                    e.remove(3);
                    renumber(e);
                }),
            ),
            (
                "no output_item.added",
                Box::new(|e| {
                    e.remove(8);
                    renumber(e);
                }),
            ),
            (
                "wrong item id",
                Box::new(|e| e[9] = e[9].replace("fc_1", "fc_2")),
            ),
            (
                "sparse index",
                Box::new(|e| e[8] = e[8].replace("\"output_index\":1", "\"output_index\":2")),
            ),
            (
                "done text differs",
                Box::new(|e| e[5] = e[5].replace("\"text\":\"Hi\"", "\"text\":\"Ho\"")),
            ),
            (
                "two terminals",
                Box::new(|e| {
                    let last = e[12].clone();
                    e.push(last);
                    renumber(e);
                }),
            ),
            (
                "no terminal",
                Box::new(|e| {
                    e.pop();
                }),
            ),
            (
                "created not first",
                Box::new(|e| {
                    e.swap(0, 1);
                    renumber(e);
                }),
            ),
            (
                "output differs",
                Box::new(|e| {
                    e[12] = e[12].replace(
                        "\"arguments\":\"{}\",\"call_id\":\"c\",\"name\":\"f\"}]",
                        "\"arguments\":\"{ }\",\"call_id\":\"c\",\"name\":\"f\"}]",
                    );
                }),
            ),
            (
                "args done without name",
                Box::new(|e| e[10] = e[10].replace("\"name\":\"f\",", "")),
            ),
        ];
        for (what, edit) in broken {
            let mut e = events();
            edit(&mut e);
            assert!(check_stream(&sse(&e)).is_err(), "{what} passed");
        }
        // `event:` must equal the type.
        let bad = String::from_utf8(sse(&events())).unwrap().replacen(
            "event: response.output_text.delta",
            "event: message",
            1,
        );
        assert!(check_stream(bad.as_bytes()).is_err());
    }

    /// A valid stream: a search, then a cited message.
    fn search_events() -> Vec<String> {
        let cite = r#"{"type":"url_citation","url":"https://e.com","title":"E","start_index":0,"end_index":2}"#;
        [
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","created_at":1,"model":"m","status":"in_progress","output":[]}}"#.to_owned(),
            r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","created_at":1,"model":"m","status":"in_progress","output":[]}}"#.to_owned(),
            r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"ws_1","type":"web_search_call","status":"in_progress"}}"#.to_owned(),
            r#"{"type":"response.web_search_call.in_progress","sequence_number":3,"item_id":"ws_1","output_index":0}"#.to_owned(),
            r#"{"type":"response.web_search_call.searching","sequence_number":4,"item_id":"ws_1","output_index":0}"#.to_owned(),
            r#"{"type":"response.web_search_call.completed","sequence_number":5,"item_id":"ws_1","output_index":0}"#.to_owned(),
            r#"{"type":"response.output_item.done","sequence_number":6,"output_index":0,"item":{"id":"ws_1","type":"web_search_call","status":"completed","action":{"type":"search","query":"q"}}}"#.to_owned(),
            r#"{"type":"response.output_item.added","sequence_number":7,"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#.to_owned(),
            r#"{"type":"response.content_part.added","sequence_number":8,"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}}"#.to_owned(),
            r#"{"type":"response.output_text.delta","sequence_number":9,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hé","logprobs":[]}"#.to_owned(),
            format!(r#"{{"type":"response.output_text.annotation.added","sequence_number":10,"item_id":"msg_1","output_index":1,"content_index":0,"annotation_index":0,"annotation":{cite}}}"#),
            r#"{"type":"response.output_text.done","sequence_number":11,"item_id":"msg_1","output_index":1,"content_index":0,"text":"Hé","logprobs":[]}"#.to_owned(),
            format!(r#"{{"type":"response.content_part.done","sequence_number":12,"item_id":"msg_1","output_index":1,"content_index":0,"part":{{"type":"output_text","text":"Hé","annotations":[{cite}],"logprobs":[]}}}}"#),
            format!(r#"{{"type":"response.output_item.done","sequence_number":13,"output_index":1,"item":{{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"Hé","annotations":[{cite}],"logprobs":[]}}]}}}}"#),
            format!(r#"{{"type":"response.completed","sequence_number":14,"response":{{"id":"resp_1","status":"completed","output":[{{"id":"ws_1","type":"web_search_call","status":"completed","action":{{"type":"search","query":"q"}}}},{{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"Hé","annotations":[{cite}],"logprobs":[]}}]}}],"usage":{{"input_tokens":1,"output_tokens":2}}}}}}"#),
        ]
        .to_vec()
    }

    #[test]
    fn searches_and_annotations_follow_their_rules() {
        check_stream(&sse(&search_events())).unwrap();
        let broken: Vec<(&str, Edit)> = vec![
            (
                "searching before in_progress",
                Box::new(|e| {
                    e.swap(3, 4);
                    renumber(e);
                }),
            ),
            (
                "no completed",
                Box::new(|e| {
                    e.remove(5);
                    renumber(e);
                }),
            ),
            (
                "done without an action",
                Box::new(|e| e[6] = e[6].replace(r#","action":{"type":"search","query":"q"}"#, "")),
            ),
            (
                "citation past the text streamed",
                Box::new(|e| e[10] = e[10].replace(r#""end_index":2"#, r#""end_index":3"#)),
            ),
            (
                "annotation missing from the part",
                Box::new(|e| {
                    e[12] = e[12].replacen(r#""annotations":[{"#, r#""annotations":[],"x":[{"#, 1);
                }),
            ),
            (
                "annotation index skipped",
                Box::new(|e| {
                    e[10] = e[10].replace(r#""annotation_index":0"#, r#""annotation_index":1"#);
                }),
            ),
        ];
        for (what, edit) in broken {
            let mut e = search_events();
            edit(&mut e);
            assert!(check_stream(&sse(&e)).is_err(), "{what} passed");
        }
    }
}
