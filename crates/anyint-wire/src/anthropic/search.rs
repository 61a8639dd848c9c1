//! Anthropic's server-side web search (`shared/protocols/web-search.md` §2), both ways from
//! the canonical model:
//!
//! - Request: [`ChatRequest::web_search`] becomes the server tool `{"type":
//!   "web_search_20250305", "name": "web_search", "max_uses"?, "allowed_domains"?,
//!   "user_location"?}` (20250305, not 20260209, whose dynamic filtering nests searches inside
//!   code execution). A client function also named `web_search` would collide with it: 400
//!   naming that tool.
//! - Responses: a `server_tool_use` (`name: "web_search"`) and its `web_search_tool_result`
//!   become one [`WebSearchCall`] (query from `input.query`, sources from the results' `url`
//!   and `title`; a `web_search_tool_result_error` makes it failed), placed where the pair
//!   was; a search left without its result (a turn that ended in `pause_turn`) is failed. The
//!   results' `encrypted_content` and the citations' `encrypted_index` are Anthropic's alone
//!   and are never read. A text block's `citations` (`web_search_result_location`) cover the
//!   whole block: each distinct URL becomes one [`Citation`] over the block's characters.
//! - Streams ([`SearchStream`]): `content_block_start` of a `server_tool_use` → `Started`;
//!   its `input_json_delta`s are buffered and parsed at `content_block_stop` → `Searching`
//!   with the query; the `web_search_tool_result` block (whole at its start) → `Done`. A text
//!   block's `citations_delta`s are buffered and become `Citation` events at its
//!   `content_block_stop`, once its text is known.

use serde::Serialize;
use serde_json::Value;

use crate::DecodeError;
use crate::canonical::{
    ChatRequest, ChatResponse, Citation, SearchProgress, Source, StreamEvent, UserLocation,
    WebSearchCall,
};
use crate::sse::Frame;

/// The server tool's type sent upstream.
pub(super) const TOOL_TYPE: &str = "web_search_20250305";
/// Its required name.
const TOOL_NAME: &str = "web_search";

/// The server tool as sent.
#[derive(Debug, Serialize)]
pub(super) struct WebSearchTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_uses: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    allowed_domains: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    user_location: Option<Location<'a>>,
}

/// `user_location` as sent (`type: "approximate"` is required).
#[derive(Debug, Serialize)]
struct Location<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
}

impl<'a> Location<'a> {
    fn of(l: &'a UserLocation) -> Self {
        Self {
            kind: "approximate",
            city: l.city.as_deref(),
            region: l.region.as_deref(),
            country: l.country.as_deref(),
            timezone: l.timezone.as_deref(),
        }
    }
}

/// The server tool for the request's web search, if it asked for one. A function tool named
/// `web_search` next to it is refused.
pub(super) fn tool(req: &ChatRequest) -> Result<Option<WebSearchTool<'_>>, DecodeError> {
    let Some(ws) = &req.web_search else {
        return Ok(None);
    };
    if let Some(j) = req.tools.iter().position(|t| t.name == TOOL_NAME) {
        return Err(DecodeError::at(
            "tools",
            format!("tools[{j}].name"),
            format!(
                "a function named `{TOOL_NAME}` cannot be used together with hosted web search \
                 on this model (Anthropic reserves the name for its search tool); rename the \
                 function"
            ),
        ));
    }
    Ok(Some(WebSearchTool {
        kind: TOOL_TYPE,
        name: TOOL_NAME,
        max_uses: ws.max_uses,
        allowed_domains: &ws.allowed_domains,
        user_location: ws.user_location.as_ref().map(Location::of),
    }))
}

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// A `web_search_tool_result`'s `content`: the sources, or failed for an error object.
fn results(content: Option<&Value>) -> (Vec<Source>, bool) {
    match content {
        Some(Value::Array(items)) => (
            items
                .iter()
                .filter_map(|r| {
                    Some(Source {
                        url: string(r, "url")?.to_owned(),
                        title: string(r, "title").map(str::to_owned),
                    })
                })
                .collect(),
            false,
        ),
        _ => (Vec::new(), true),
    }
}

/// The citations of a text block spanning `start..end` characters: one per distinct URL.
fn block_citations(citations: &[Value], start: usize, end: usize) -> Vec<Citation> {
    let mut out: Vec<Citation> = Vec::new();
    for c in citations {
        let Some(url) = string(c, "url") else {
            continue;
        };
        if start < end && !out.iter().any(|o| o.url == url) {
            out.push(Citation {
                url: url.to_owned(),
                title: string(c, "title").map(str::to_owned),
                start,
                end,
            });
        }
    }
    out
}

/// Reads a response body's searches and citations into `resp` (whose `parts` the ordinary
/// decoder filled: one per `text`, `thinking`, `redacted_thinking` and `tool_use` block).
pub(super) fn annotate(resp: &mut ChatResponse, body: &[u8]) {
    const MARKERS: [&[u8]; 2] = [b"\"server_tool_use\"", b"\"citations\""];
    if !MARKERS
        .iter()
        .any(|m| body.windows(m.len()).any(|w| w == *m))
    {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let (mut parts, mut chars) = (0usize, 0usize);
    for block in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match string(block, "type") {
            Some("text") => {
                let n = string(block, "text").map_or(0, |t| t.chars().count());
                if let Some(Value::Array(cites)) = block.get("citations") {
                    resp.citations
                        .extend(block_citations(cites, chars, chars + n));
                }
                chars += n;
                parts += 1;
            }
            Some("thinking" | "redacted_thinking" | "tool_use") => parts += 1,
            Some("server_tool_use") if string(block, "name") == Some(TOOL_NAME) => {
                let query = block
                    .get("input")
                    .and_then(|i| string(i, "query"))
                    .map(str::to_owned);
                let call = WebSearchCall {
                    id: string(block, "id").unwrap_or_default().to_owned(),
                    queries: query.iter().cloned().collect(),
                    query,
                    sources: Vec::new(),
                    // Until its result says otherwise.
                    failed: true,
                };
                resp.web_searches.push((parts, call));
            }
            Some("web_search_tool_result") => {
                let id = string(block, "tool_use_id").unwrap_or_default();
                if let Some((_, call)) = resp.web_searches.iter_mut().find(|(_, c)| c.id == id) {
                    (call.sources, call.failed) = results(block.get("content"));
                }
            }
            _ => {}
        }
    }
}

/// What an open upstream block is, for the search events.
#[derive(Debug)]
enum Open {
    /// A `server_tool_use` of web search: its id and the input JSON so far.
    Search { id: String, input: String },
    /// A text block that carries citations: where its text starts, and its citations.
    Cited { start: usize, citations: Vec<Value> },
}

/// The search side of an Anthropic stream: reads the frames the ordinary decoder passes over
/// (server tool blocks, citations) and adds their canonical events.
#[derive(Debug, Default)]
pub(super) struct SearchStream {
    /// Upstream block index → what it is, while open.
    open: Vec<(u64, Open)>,
    /// Searches started: (id, query).
    started: Vec<(String, Option<String>)>,
    /// Characters of answer text so far.
    chars: usize,
}

impl SearchStream {
    /// Reads one frame after the ordinary decoder turned it into `out`, and appends the search
    /// events it carries. `content` says whether content may still be emitted.
    pub(super) fn observe(&mut self, frame: &Frame, content: bool, out: &mut Vec<StreamEvent>) {
        let kind = frame.event.as_deref();
        let relevant = match kind {
            Some("content_block_start" | "content_block_stop") => true,
            Some("content_block_delta") => {
                frame.data.contains("citations_delta") || frame.data.contains("input_json_delta")
            }
            _ => false,
        };
        let start_chars = self.chars;
        let text: usize = out
            .iter()
            .map(|e| match e {
                StreamEvent::TextDelta(t) => t.chars().count(),
                _ => 0,
            })
            .sum();
        self.chars += text;
        if !relevant || !content {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&frame.data) else {
            return;
        };
        let Some(index) = v.get("index").and_then(Value::as_u64) else {
            return;
        };
        match kind {
            Some("content_block_start") => {
                let Some(block) = v.get("content_block") else {
                    return;
                };
                self.start(index, block, start_chars, out);
            }
            Some("content_block_delta") => {
                let Some(delta) = v.get("delta") else {
                    return;
                };
                match (
                    string(delta, "type"),
                    self.open.iter_mut().find(|(i, _)| *i == index),
                ) {
                    (Some("input_json_delta"), Some((_, Open::Search { input, .. }))) => {
                        input.push_str(string(delta, "partial_json").unwrap_or_default());
                    }
                    (Some("citations_delta"), Some((_, Open::Cited { citations, .. }))) => {
                        citations.extend(delta.get("citation").cloned());
                    }
                    (Some("citations_delta"), None) => {
                        // A text block that started without `citations: []`.
                        let citations = delta.get("citation").cloned().into_iter().collect();
                        self.open.push((
                            index,
                            Open::Cited {
                                start: self.chars,
                                citations,
                            },
                        ));
                    }
                    _ => {}
                }
            }
            _ => self.stop(index, out),
        }
    }

    fn start(&mut self, index: u64, block: &Value, chars: usize, out: &mut Vec<StreamEvent>) {
        self.open.retain(|(i, _)| *i != index);
        match string(block, "type") {
            Some("server_tool_use") if string(block, "name") == Some(TOOL_NAME) => {
                let id = string(block, "id").unwrap_or_default().to_owned();
                // The API starts with `input: {}`; a proxy may send it whole.
                let input = block
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                    .map(Value::to_string)
                    .unwrap_or_default();
                out.push(StreamEvent::WebSearch(SearchProgress::Started {
                    id: id.clone(),
                }));
                self.open.push((index, Open::Search { id, input }));
            }
            Some("web_search_tool_result") => {
                let id = string(block, "tool_use_id").unwrap_or_default();
                let query = self
                    .started
                    .iter()
                    .find(|(s, _)| s == id)
                    .and_then(|(_, q)| q.clone());
                let (sources, failed) = results(block.get("content"));
                out.push(StreamEvent::WebSearch(SearchProgress::Done(
                    WebSearchCall {
                        id: id.to_owned(),
                        queries: query.iter().cloned().collect(),
                        query,
                        sources,
                        failed,
                    },
                )));
            }
            Some("text") => {
                if let Some(Value::Array(citations)) = block.get("citations") {
                    self.open.push((
                        index,
                        Open::Cited {
                            start: chars,
                            citations: citations.clone(),
                        },
                    ));
                }
            }
            _ => {}
        }
    }

    fn stop(&mut self, index: u64, out: &mut Vec<StreamEvent>) {
        let Some(pos) = self.open.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let (_, open) = self.open.remove(pos);
        match open {
            Open::Search { id, input } => {
                let query = serde_json::from_str::<Value>(&input)
                    .ok()
                    .and_then(|v| string(&v, "query").map(str::to_owned));
                self.started.push((id.clone(), query.clone()));
                out.push(StreamEvent::WebSearch(SearchProgress::Searching {
                    id,
                    query,
                }));
            }
            Open::Cited { start, citations } => {
                out.extend(
                    block_citations(&citations, start, self.chars)
                        .into_iter()
                        .map(StreamEvent::Citation),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Part, Tool, WebSearch};
    use serde_json::json;

    #[test]
    fn the_tool_carries_the_clients_options() {
        let mut req = ChatRequest {
            web_search: Some(WebSearch {
                allowed_domains: vec!["docs.rs".into()],
                user_location: Some(UserLocation {
                    city: Some("Oslo".into()),
                    ..UserLocation::default()
                }),
                max_uses: Some(2),
                path: "tools[0]".into(),
                tool: "web_search".into(),
            }),
            ..ChatRequest::default()
        };
        let t = serde_json::to_value(tool(&req).unwrap().unwrap()).unwrap();
        assert_eq!(
            t,
            json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 2,
                   "allowed_domains": ["docs.rs"], "user_location": {"type": "approximate", "city": "Oslo"}})
        );
        req.tools.push(Tool {
            name: "web_search".into(),
            description: None,
            parameters: json!({"type": "object"}),
            cache: None,
        });
        let e = tool(&req).unwrap_err();
        assert_eq!(e.param_path(), Some("tools[0].name"));
        req.web_search = None;
        assert!(tool(&req).unwrap().is_none());
    }

    #[test]
    fn a_response_gives_its_searches_in_place_and_block_citations() {
        let body = json!({"content": [
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "tokio releases"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
                {"type": "web_search_result", "url": "https://github.com/tokio-rs/tokio/releases",
                 "title": "Releases", "encrypted_content": "EqQB", "page_age": "2 days ago"}]},
            {"type": "text", "text": "Per the résumé, "},
            {"type": "text", "text": "tokio notes live on GitHub.", "citations": [
                {"type": "web_search_result_location", "url": "https://github.com/tokio-rs/tokio/releases",
                 "title": "Releases", "cited_text": "…", "encrypted_index": "Eo8B"},
                {"type": "web_search_result_location", "url": "https://github.com/tokio-rs/tokio/releases",
                 "title": "Releases", "cited_text": "…", "encrypted_index": "Eo8C"}]},
            {"type": "server_tool_use", "id": "srvtoolu_02", "name": "web_search", "input": {"query": "more"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_02",
             "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}},
            {"type": "server_tool_use", "id": "srvtoolu_03", "name": "web_search", "input": {"query": "paused"}}
        ]});
        let mut resp = ChatResponse {
            parts: vec![
                Part::text("Per the résumé, "),
                Part::text("tokio notes live on GitHub."),
            ],
            ..ChatResponse::default()
        };
        annotate(&mut resp, body.to_string().as_bytes());
        let at: Vec<(usize, &str, bool)> = resp
            .web_searches
            .iter()
            .map(|(at, c)| (*at, c.query.as_deref().unwrap_or(""), c.failed))
            .collect();
        assert_eq!(
            at,
            [
                (0, "tokio releases", false),
                (2, "more", true),
                (2, "paused", true)
            ]
        );
        assert_eq!(
            resp.web_searches[0].1.sources,
            [Source {
                url: "https://github.com/tokio-rs/tokio/releases".into(),
                title: Some("Releases".into())
            }]
        );
        // "Per the résumé, " is 16 characters (18 bytes); the cited block follows it.
        assert_eq!(
            resp.citations,
            [Citation {
                url: "https://github.com/tokio-rs/tokio/releases".into(),
                title: Some("Releases".into()),
                start: 16,
                end: 43
            }]
        );
        let plain = json!({"content": [{"type": "text", "text": "hi"}]});
        let mut resp = ChatResponse::default();
        annotate(&mut resp, plain.to_string().as_bytes());
        assert!(resp.web_searches.is_empty() && resp.citations.is_empty());
    }
}
