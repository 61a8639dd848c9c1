//! Hosted web search on translated routes (`shared/protocols/web-search.md`): the client's
//! `web_search` tool as a canonical [`WebSearch`], and the `web_search_call` items and
//! `url_citation` annotations a client gets back.
//!
//! - Tool: `web_search`, `web_search_2025_08_26`, `web_search_preview`,
//!   `web_search_preview_2025_03_11` (any type starting with `web_search`). One per request.
//!   `filters.allowed_domains` and `user_location` are kept; `max_tool_calls` (which caps
//!   built-in tool calls, and web search is the only one a translated route serves) becomes
//!   the search cap. `search_context_size`, `search_content_types`, `external_web_access`
//!   (Codex's default `cached` mode sends `false`; the upstream searches live anyway) and
//!   `index_gated_web_access` are hints with no counterpart and are dropped.
//! - Items: `{"id": "ws_…", "type": "web_search_call", "status": "completed" | "failed",
//!   "action": {"type": "search", "query"?, "queries"?, "sources"?}}`; `sources` (`{type:
//!   "url", url}`) only when `include` has `web_search_call.action.sources`, as the API does.
//!   A failed search keeps its `action` (Codex drops `done` items without one).
//! - Annotations: `{"type": "url_citation", "url", "title", "start_index", "end_index"}`,
//!   character offsets into that `output_text`, end exclusive; a title the upstream did not
//!   give is `""`.

use serde_json::{Map, Value, json};

use crate::DecodeError;
use crate::canonical::{Citation, UserLocation, WebSearch, WebSearchCall};

/// The `include` value that asks for a search's sources.
pub const INCLUDE_SOURCES: &str = "web_search_call.action.sources";

/// Whether a `tools[].type` is hosted web search.
pub(super) fn is_web_search(kind: &str) -> bool {
    kind.starts_with("web_search")
}

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The client's web search tool (top-level `tools` only) as a canonical [`WebSearch`], with
/// `max_tool_calls` as its cap. `None` when there is none, or when `max_tool_calls` is 0 (no
/// built-in tool call allowed, so no search to offer).
pub(super) fn decode_tool(
    tools: Option<&Value>,
    max_tool_calls: Option<u64>,
) -> Result<Option<WebSearch>, DecodeError> {
    let mut found: Option<WebSearch> = None;
    for (i, t) in tools
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(kind) = string(t, "type").filter(|k| is_web_search(k)) else {
            continue;
        };
        let path = format!("tools[{i}]");
        let bad = |field: &str, what: &str| {
            DecodeError::at(
                "tools",
                format!("{path}.{field}"),
                format!("{path}.{field} must be {what}"),
            )
        };
        if found.is_some() {
            return Err(DecodeError::at(
                "tools",
                path.clone(),
                format!("{path}: only one web search tool may be given"),
            ));
        }
        let allowed_domains = match t.get("filters").and_then(|f| f.get("allowed_domains")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(d)) => d
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| bad("filters.allowed_domains", "an array of domain names"))?,
            Some(_) => return Err(bad("filters.allowed_domains", "an array of domain names")),
        };
        let user_location = match t.get("user_location") {
            None | Some(Value::Null) => None,
            Some(l @ Value::Object(_)) => {
                let field = |k: &str| string(l, k).map(str::to_owned);
                Some(UserLocation {
                    city: field("city"),
                    region: field("region"),
                    country: field("country"),
                    timezone: field("timezone"),
                })
            }
            Some(_) => return Err(bad("user_location", "an object")),
        };
        if max_tool_calls == Some(0) {
            continue;
        }
        found = Some(WebSearch {
            allowed_domains,
            user_location,
            max_uses: max_tool_calls,
            path,
            tool: kind.to_owned(),
        });
    }
    Ok(found)
}

/// The `action` of a search: `{type: "search", query?, queries?, sources?}`.
fn action(call: Option<&WebSearchCall>, query: Option<&str>, sources: bool) -> Value {
    let mut a = Map::new();
    a.insert("type".into(), json!("search"));
    let query = call.and_then(|c| c.query.as_deref()).or(query);
    if let Some(q) = query {
        a.insert("query".into(), json!(q));
    }
    let queries: Vec<&str> = match call {
        Some(c) if !c.queries.is_empty() => c.queries.iter().map(String::as_str).collect(),
        _ => query.into_iter().collect(),
    };
    if !queries.is_empty() {
        a.insert("queries".into(), json!(queries));
    }
    if sources && let Some(c) = call {
        let list: Vec<Value> = c
            .sources
            .iter()
            .map(|s| json!({"type": "url", "url": s.url}))
            .collect();
        a.insert("sources".into(), Value::Array(list));
    }
    Value::Object(a)
}

/// A finished `web_search_call` item: `completed` with what `call` found, or `failed` (the
/// upstream reported an error, or the search never got its results) with the query known.
pub(super) fn item(
    id: &str,
    call: Option<&WebSearchCall>,
    query: Option<&str>,
    sources: bool,
) -> Value {
    let failed = call.is_none_or(|c| c.failed);
    json!({
        "id": id,
        "type": "web_search_call",
        "status": if failed { "failed" } else { "completed" },
        "action": action(call, query, sources),
    })
}

/// The skeleton a stream announces: no `action` yet, as the API sends it.
pub(super) fn skeleton(id: &str) -> Value {
    json!({"id": id, "type": "web_search_call", "status": "in_progress"})
}

/// A `url_citation` annotation for `c`, its offsets made relative to an `output_text` that
/// starts at character `from` of the answer text and is `len` characters long. `None` when
/// the span is empty or not inside that text.
pub(super) fn annotation(c: &Citation, from: usize, len: usize) -> Option<Value> {
    let start = c.start.checked_sub(from)?;
    let end = c.end.checked_sub(from)?;
    (start < end && end <= len).then(|| {
        json!({
            "type": "url_citation",
            "url": c.url,
            "title": c.title.as_deref().unwrap_or(""),
            "start_index": start,
            "end_index": end,
        })
    })
}

/// The annotations of an `output_text` starting at character `from` of the answer text and
/// `len` characters long, in citation order.
pub(super) fn annotations(citations: &[Citation], from: usize, len: usize) -> Vec<Value> {
    citations
        .iter()
        .filter_map(|c| annotation(c, from, len))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::Source;

    #[test]
    fn decodes_codex_and_sdk_tools() {
        let tools = json!([
            {"type": "function", "name": "shell"},
            {"type": "web_search", "external_web_access": false, "search_context_size": "high",
             "filters": {"allowed_domains": ["docs.rs", "crates.io"]},
             "user_location": {"type": "approximate", "city": "Oslo", "country": "NO"},
             "search_content_types": ["text", "image"]}
        ]);
        let ws = decode_tool(Some(&tools), Some(3)).unwrap().unwrap();
        assert_eq!(ws.path, "tools[1]");
        assert_eq!(ws.tool, "web_search");
        assert_eq!(ws.allowed_domains, ["docs.rs", "crates.io"]);
        assert_eq!(ws.max_uses, Some(3));
        let loc = ws.user_location.unwrap();
        assert_eq!(
            (loc.city.as_deref(), loc.country.as_deref(), loc.region),
            (Some("Oslo"), Some("NO"), None)
        );
        let preview = json!([{"type": "web_search_preview_2025_03_11"}]);
        let ws = decode_tool(Some(&preview), None).unwrap().unwrap();
        assert_eq!(
            (ws.tool.as_str(), ws.allowed_domains.len(), ws.max_uses),
            ("web_search_preview_2025_03_11", 0, None)
        );
        assert_eq!(
            decode_tool(Some(&json!([{"type": "function"}])), None),
            Ok(None)
        );
        assert_eq!(decode_tool(None, None), Ok(None));
        assert_eq!(decode_tool(Some(&preview), Some(0)), Ok(None));
        for (bad, path) in [
            (
                json!([{"type": "web_search", "filters": {"allowed_domains": "x.com"}}]),
                "tools[0].filters.allowed_domains",
            ),
            (
                json!([{"type": "web_search", "user_location": "Oslo"}]),
                "tools[0].user_location",
            ),
            (
                json!([{"type": "web_search"}, {"type": "web_search_preview"}]),
                "tools[1]",
            ),
        ] {
            let e = decode_tool(Some(&bad), None).unwrap_err();
            assert_eq!(e.param_path(), Some(path), "{bad}");
        }
    }

    #[test]
    fn items_carry_an_action_and_sources_only_when_included() {
        let call = WebSearchCall {
            id: "srvtoolu_1".into(),
            query: Some("tokio releases".into()),
            queries: Vec::new(),
            sources: vec![Source {
                url: "https://github.com/tokio-rs/tokio/releases".into(),
                title: Some("Releases".into()),
            }],
            failed: false,
        };
        assert_eq!(
            item("ws_1", Some(&call), None, true),
            json!({"id": "ws_1", "type": "web_search_call", "status": "completed",
                   "action": {"type": "search", "query": "tokio releases", "queries": ["tokio releases"],
                              "sources": [{"type": "url", "url": "https://github.com/tokio-rs/tokio/releases"}]}})
        );
        assert!(item("ws_1", Some(&call), None, false)["action"]["sources"].is_null());
        // Never finished: failed, with the query it was given.
        assert_eq!(
            item("ws_2", None, Some("q"), true),
            json!({"id": "ws_2", "type": "web_search_call", "status": "failed",
                   "action": {"type": "search", "query": "q", "queries": ["q"]}})
        );
        let failed = WebSearchCall {
            failed: true,
            ..call
        };
        assert_eq!(item("ws_3", Some(&failed), None, false)["status"], "failed");
    }

    #[test]
    fn annotations_are_relative_to_their_output_text() {
        let c = Citation {
            url: "https://e.com".into(),
            title: None,
            start: 12,
            end: 20,
        };
        assert_eq!(
            annotation(&c, 10, 10),
            Some(
                json!({"type": "url_citation", "url": "https://e.com", "title": "", "start_index": 2, "end_index": 10})
            )
        );
        assert_eq!(annotation(&c, 13, 30), None, "starts before the text");
        assert_eq!(annotation(&c, 10, 9), None, "ends after the text");
        let empty = Citation {
            end: 12,
            ..c.clone()
        };
        assert_eq!(annotations(&[c, empty], 0, 40).len(), 1);
    }
}
