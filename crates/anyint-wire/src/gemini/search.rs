//! Grounding with Google Search (`shared/protocols/web-search.md` §3), both ways from the
//! canonical model:
//!
//! - Request: [`ChatRequest::web_search`] becomes the tool `{"googleSearch": {}}`. Gemini has
//!   no domain allow-list (a request with `allowed_domains` is a 400 naming it: a restriction
//!   is never dropped), and no location or search cap (both dropped: a ranking hint and a
//!   limit Gemini does not offer). With function declarations as well, Gemini 1.x and 2.x
//!   answer 400 ("Tool use with function calling is unsupported"), so the search is dropped
//!   there ([`drops_web_search`] tells the gateway, which says so in a response header);
//!   Gemini 3 and later get `googleSearch` in the same Tool object as the declarations and
//!   `toolConfig.includeServerSideToolInvocations: true`, which they require for the mix.
//! - Responses: a candidate's `groundingMetadata` becomes one [`WebSearchCall`] (Gemini never
//!   says which query found which source): `query` the first of `webSearchQueries`, `queries`
//!   all of them, sources the `groundingChunks[].web` (`uri`, `title`). Non-streamed it is
//!   placed before the answer text; in a stream it is known only at the end. Each
//!   `groundingSupports[]` segment (UTF-8 **byte** offsets into the text of part
//!   `partIndex`, start inclusive, end exclusive, a missing start being 0) becomes one
//!   [`Citation`] per chunk it names, in characters of the answer text: the offsets are
//!   clamped to the text and backed off to character boundaries, and the span must read
//!   `segment.text` (else the text is searched for, and the support skipped when absent).
//!   `searchEntryPoint` (Google's suggestion chip, HTML) has no place in another family and is
//!   dropped. Usage: `web_searches` is the number of `webSearchQueries`.
//! - Streams: the metadata is merged field by field over the chunks (the last value wins, as
//!   several clients had to learn) and read at the end, against the concatenated answer text.

use serde_json::{Map, Value, json};

use super::fields::{as_u64, get, get_obj, get_str};
use crate::DecodeError;
use crate::canonical::{
    ChatRequest, ChatResponse, Citation, Part, SearchProgress, Source, StreamEvent, WebSearchCall,
    chars_before,
};

/// Whether a Gemini model takes built-in tools together with function calling (Gemini 3 and
/// later, with `includeServerSideToolInvocations`); 1.x and 2.x refuse the mix.
fn mixes_tools(model: &str) -> bool {
    !(model.starts_with("gemini-1") || model.starts_with("gemini-2"))
}

/// Whether encoding `req` drops its web search: it has function tools too, and the model
/// (`gemini-1*`, `gemini-2*`) cannot combine them with Google Search.
pub fn drops_web_search(req: &ChatRequest) -> bool {
    let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
    req.web_search.is_some() && !req.tools.is_empty() && !mixes_tools(model)
}

/// Adds Google Search to a request `body` whose `tools` the ordinary encoder wrote (see the
/// module docs).
pub(super) fn add_tool(
    body: &mut Map<String, Value>,
    req: &ChatRequest,
) -> Result<(), DecodeError> {
    let Some(ws) = &req.web_search else {
        return Ok(());
    };
    if !ws.allowed_domains.is_empty() {
        return Err(DecodeError::at(
            "tools",
            format!("{}.filters.allowed_domains", ws.path),
            format!(
                "{}.filters.allowed_domains cannot be honoured by this model's upstream \
                 (gemini): Google Search grounding has no domain allow-list; remove the filter \
                 or choose a model whose provider has one",
                ws.path
            ),
        ));
    }
    if drops_web_search(req) {
        return Ok(());
    }
    let tools = body.entry("tools").or_insert_with(|| json!([{}]));
    if let Some(first) = tools
        .as_array_mut()
        .and_then(|t| t.first_mut())
        .and_then(Value::as_object_mut)
    {
        first.insert("googleSearch".into(), json!({}));
    }
    if !req.tools.is_empty() {
        let config = body.entry("toolConfig").or_insert_with(|| json!({}));
        if let Some(c) = config.as_object_mut() {
            c.insert("includeServerSideToolInvocations".into(), json!(true));
        }
    }
    Ok(())
}

/// The grounding metadata of a candidate, if any.
fn metadata(cand: &Map<String, Value>) -> Option<&Map<String, Value>> {
    get_obj(cand, "groundingMetadata")
}

fn list<'a>(meta: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    get(meta, key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The chunks' sources, by index (`None` for a chunk that is not a web page).
fn sources(meta: &Map<String, Value>) -> Vec<Option<Source>> {
    list(meta, "groundingChunks")
        .iter()
        .map(|c| {
            let web = c.as_object().and_then(|c| get_obj(c, "web"))?;
            Some(Source {
                url: get_str(web, "uri")?.to_owned(),
                title: get_str(web, "title").map(str::to_owned),
            })
        })
        .collect()
}

/// The search the metadata reports, if it reports one.
fn call(meta: &Map<String, Value>) -> Option<WebSearchCall> {
    let queries: Vec<String> = list(meta, "webSearchQueries")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let sources: Vec<Source> = sources(meta).into_iter().flatten().collect();
    if queries.is_empty() && sources.is_empty() {
        return None;
    }
    Some(WebSearchCall {
        id: String::new(),
        query: queries.first().cloned(),
        queries,
        sources,
        failed: false,
    })
}

/// The searches a response chunk's first candidate reports (one per query).
pub(super) fn searches_of(chunk: &Map<String, Value>) -> u64 {
    super::response::first_candidate(chunk)
        .and_then(metadata)
        .map_or(0, |m| list(m, "webSearchQueries").len() as u64)
}

/// The character span of a support's segment in `text` (`None` when it cannot be placed).
fn span(segment: &Map<String, Value>, text: &str) -> Option<(usize, usize)> {
    let start = get(segment, "startIndex").and_then(as_u64).unwrap_or(0);
    let end = get(segment, "endIndex").and_then(as_u64)?;
    let (s, e) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(end).unwrap_or(usize::MAX),
    );
    let want = get_str(segment, "text");
    let (cs, ce) = (chars_before(text, s), chars_before(text, e));
    let byte = |c: usize| crate::canonical::byte_of_char(text, c);
    let read = text.get(byte(cs)..byte(ce));
    match want {
        Some(w) if read != Some(w) => {
            // The offsets do not read the segment: find its text instead.
            let at = text.find(w).filter(|_| !w.is_empty())?;
            let from = chars_before(text, at);
            Some((from, from + w.chars().count()))
        }
        _ => (cs < ce).then_some((cs, ce)),
    }
}

/// The citations of `meta`'s supports. `text_of(partIndex)` gives that part's text and where
/// it starts in the answer text; a segment that cannot be placed there (the part is thought
/// text, or its offsets do not read the segment) is looked for in the whole `answer` text.
fn citations<'t>(
    meta: &Map<String, Value>,
    text_of: impl Fn(usize) -> Option<(usize, &'t str)>,
    answer: &str,
) -> Vec<Citation> {
    let sources = sources(meta);
    let mut out: Vec<Citation> = Vec::new();
    for support in list(meta, "groundingSupports")
        .iter()
        .filter_map(Value::as_object)
    {
        let Some(segment) = get_obj(support, "segment") else {
            continue;
        };
        let part = get(segment, "partIndex")
            .and_then(as_u64)
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(0);
        let placed = text_of(part)
            .and_then(|(offset, text)| span(segment, text).map(|(s, e)| (offset + s, offset + e)))
            .or_else(|| {
                let want = get_str(segment, "text").filter(|w| !w.is_empty())?;
                let at = answer.find(want)?;
                let from = chars_before(answer, at);
                Some((from, from + want.chars().count()))
            });
        let Some((start, end)) = placed else {
            continue;
        };
        for k in list(support, "groundingChunkIndices") {
            let source = as_u64(k)
                .and_then(|k| usize::try_from(k).ok())
                .and_then(|k| sources.get(k))
                .and_then(Option::as_ref);
            let Some(source) = source else {
                continue;
            };
            let c = Citation {
                url: source.url.clone(),
                title: source.title.clone(),
                start,
                end,
            };
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Reads the first candidate's grounding into a decoded response: the search (placed before
/// the first answer text), its citations and the search count.
pub(super) fn annotate(resp: &mut ChatResponse, cand: &Map<String, Value>) {
    let Some(meta) = metadata(cand) else {
        return;
    };
    let raw: &[Value] = get_obj(cand, "content")
        .and_then(|c| get(c, "parts"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    // Each raw part's answer text and where it starts (thought text is not answer text).
    let mut texts: Vec<Option<(usize, &str)>> = Vec::with_capacity(raw.len());
    let mut answer = String::new();
    let mut chars = 0usize;
    for p in raw {
        let text = p.as_object().and_then(|o| {
            let thought = get(o, "thought").and_then(Value::as_bool) == Some(true);
            get_str(o, "text").filter(|_| !thought)
        });
        texts.push(text.map(|t| (chars, t)));
        chars += text.map_or(0, |t| t.chars().count());
        answer.push_str(text.unwrap_or_default());
    }
    resp.citations = citations(meta, |i| texts.get(i).copied().flatten(), &answer);
    if let Some(call) = call(meta) {
        let at = resp
            .parts
            .iter()
            .position(|p| matches!(p, Part::Text { .. }))
            .unwrap_or(resp.parts.len());
        resp.web_searches.push((at, call));
    }
    resp.usage.web_searches = list(meta, "webSearchQueries").len() as u64;
}

/// The grounding side of a Gemini stream: the answer text so far and the metadata merged over
/// the chunks, turned into events at the end.
#[derive(Debug, Default)]
pub(super) struct SearchStream {
    text: String,
    meta: Map<String, Value>,
}

impl SearchStream {
    /// Records a chunk's answer text.
    pub(super) fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Merges a chunk's candidate metadata, field by field (the last value wins).
    pub(super) fn observe(&mut self, cand: &Map<String, Value>) {
        if let Some(meta) = metadata(cand) {
            for (k, v) in meta {
                if !v.is_null() {
                    self.meta.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// The events at the stream's end: the citations, then the search.
    pub(super) fn finish(&self) -> Vec<StreamEvent> {
        if self.meta.is_empty() {
            return Vec::new();
        }
        let text = self.text.as_str();
        let mut out: Vec<StreamEvent> = citations(&self.meta, |_| Some((0, text)), text)
            .into_iter()
            .map(StreamEvent::Citation)
            .collect();
        if let Some(call) = call(&self.meta) {
            out.push(StreamEvent::WebSearch(SearchProgress::Done(call)));
        }
        out
    }

    /// The searches the merged metadata reports.
    pub(super) fn searches(&self) -> u64 {
        list(&self.meta, "webSearchQueries").len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::WebSearch;

    fn web_search(domains: &[&str]) -> WebSearch {
        WebSearch {
            allowed_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            path: "tools[0]".into(),
            tool: "web_search".into(),
            ..WebSearch::default()
        }
    }

    #[test]
    fn byte_spans_become_character_citations() {
        // §3.2's example: 25 characters, 27 bytes.
        let cand = json!({
            "content": {"role": "model", "parts": [
                {"text": "thinking…", "thought": true},
                {"text": "Ja. "},
                {"text": "Café Nørd opened in 2024."}
            ]},
            "groundingMetadata": {
                "webSearchQueries": ["Café Nørd opening year", "Café Nørd"],
                "groundingChunks": [
                    {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbC", "title": "example.no"}},
                    {"retrievedContext": {"uri": "gs://x"}}
                ],
                "groundingSupports": [
                    {"segment": {"partIndex": 2, "endIndex": 27, "text": "Café Nørd opened in 2024."},
                     "groundingChunkIndices": [0, 1, 7], "confidenceScores": [0.93, 0.5, 0.1]},
                    {"segment": {"partIndex": 2, "startIndex": 12, "endIndex": 18, "text": "opened"},
                     "groundingChunkIndices": [0]},
                    {"segment": {"partIndex": 2, "startIndex": 0, "endIndex": 3, "text": "missing"},
                     "groundingChunkIndices": [0]}
                ],
                "searchEntryPoint": {"renderedContent": "<div></div>"}
            }
        });
        let mut resp = ChatResponse {
            parts: vec![
                Part::Reasoning {
                    text: "thinking…".into(),
                    signature: None,
                    redacted: None,
                },
                Part::text("Ja. "),
                Part::text("Café Nørd opened in 2024."),
            ],
            ..ChatResponse::default()
        };
        annotate(&mut resp, cand.as_object().unwrap());
        let url = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbC";
        let spans: Vec<(usize, usize)> = resp.citations.iter().map(|c| (c.start, c.end)).collect();
        // "Ja. " is 4 characters; the segment covers the whole second part; "opened" is
        // bytes 12..18 but characters 10..16 of it (after "é" and "ø").
        assert_eq!(spans, [(4, 29), (14, 20)]);
        assert!(resp.citations.iter().all(|c| c.url == url));
        assert_eq!(resp.citations[0].title.as_deref(), Some("example.no"));
        let (at, call) = &resp.web_searches[0];
        assert_eq!(*at, 1, "before the first answer text");
        assert_eq!(call.query.as_deref(), Some("Café Nørd opening year"));
        assert_eq!(call.queries.len(), 2);
        assert_eq!(call.sources.len(), 1);
        assert_eq!(resp.usage.web_searches, 2);
        let text: String = "Ja. Café Nørd opened in 2024."
            .chars()
            .skip(14)
            .take(6)
            .collect();
        assert_eq!(text, "opened");
    }

    #[test]
    fn offsets_that_miss_are_found_by_text_or_skipped() {
        let text = "Zürich is in Switzerland. It is big.";
        let meta = json!({"groundingChunks": [{"web": {"uri": "u", "title": "t"}}],
        "groundingSupports": [
            // Character offsets where bytes were due: found by its text instead.
            {"segment": {"startIndex": 0, "endIndex": 24, "text": "Zürich is in Switzerland"}, "groundingChunkIndices": [0]},
            // Past the end: clamped, and the text read does not match nor occur.
            {"segment": {"startIndex": 30, "endIndex": 99, "text": "elsewhere"}, "groundingChunkIndices": [0]},
            // No text to check: the clamped span stands.
            {"segment": {"startIndex": 27, "endIndex": 99}, "groundingChunkIndices": [0]}
        ]});
        let c = citations(meta.as_object().unwrap(), |_| Some((0, text)), text);
        let spans: Vec<(usize, usize)> = c.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(spans, [(0, 24), (26, 36)]);
    }

    #[test]
    fn the_tool_is_added_or_dropped_by_model() {
        let mut req = ChatRequest {
            model: "gemini-2.5-flash".into(),
            web_search: Some(web_search(&[])),
            ..ChatRequest::default()
        };
        let mut body = Map::new();
        add_tool(&mut body, &req).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"tools": [{"googleSearch": {}}]})
        );
        req.tools.push(crate::canonical::Tool {
            name: "shell".into(),
            description: None,
            parameters: json!({"type": "object"}),
            cache: None,
        });
        assert!(drops_web_search(&req));
        let mut body = json!({"tools": [{"functionDeclarations": []}]})
            .as_object()
            .cloned()
            .unwrap();
        add_tool(&mut body, &req).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"tools": [{"functionDeclarations": []}]})
        );
        req.model = "models/gemini-3-pro-preview".into();
        assert!(!drops_web_search(&req));
        let mut body = json!({"tools": [{"functionDeclarations": []}]})
            .as_object()
            .cloned()
            .unwrap();
        add_tool(&mut body, &req).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"tools": [{"functionDeclarations": [], "googleSearch": {}}],
                   "toolConfig": {"includeServerSideToolInvocations": true}})
        );
        req.web_search = Some(web_search(&["docs.rs"]));
        let e = add_tool(&mut Map::new(), &req).unwrap_err();
        assert_eq!(e.param_path(), Some("tools[0].filters.allowed_domains"));
    }

    #[test]
    fn a_stream_merges_metadata_and_cites_the_whole_text() {
        let mut s = SearchStream::default();
        s.text("Café ");
        let early = json!({"groundingMetadata": {"webSearchQueries": ["q"]}});
        s.observe(early.as_object().unwrap());
        s.text("Nørd.");
        let late = json!({"groundingMetadata": {
            "groundingChunks": [{"web": {"uri": "u", "title": "t"}}],
            "groundingSupports": [{"segment": {"startIndex": 6, "endIndex": 12, "text": "Nørd."}, "groundingChunkIndices": [0]}]}});
        s.observe(late.as_object().unwrap());
        assert_eq!(s.searches(), 1);
        let ev = s.finish();
        assert_eq!(
            ev,
            [
                StreamEvent::Citation(Citation {
                    url: "u".into(),
                    title: Some("t".into()),
                    start: 5,
                    end: 10
                }),
                StreamEvent::WebSearch(SearchProgress::Done(WebSearchCall {
                    id: String::new(),
                    query: Some("q".into()),
                    queries: vec!["q".into()],
                    sources: vec![Source {
                        url: "u".into(),
                        title: Some("t".into())
                    }],
                    failed: false,
                }))
            ]
        );
        assert!(SearchStream::default().finish().is_empty());
    }
}
