//! Golden tests for every (client family, upstream kind) pair, through the chain the gateway's
//! translated path runs (`anyint_wire::translate`: its dispatch and its `Translator` stage):
//! - client request → client `decode_request` → `model` set to the upstream model, `stream` set
//!   → upstream `encode_request`;
//! - upstream response → upstream `decode_response` → `model` set to the public id → client
//!   `encode_response`;
//! - upstream SSE frames → upstream `StreamDecoder` → client `StreamEncoder`, then `finish()` on
//!   both.
//!
//! Each pair has a directory `tests/fixtures/pairs/<client>_to_<upstream>/`. Hand-written
//! inputs: `client_request.json`, `upstream_response.json`, `upstream_stream.sse` and
//! `upstream_error.json` (a 429 in the upstream kind's envelope; copies of one file per family).
//! Goldens: `upstream_request.json` (non-streamed), `upstream_request_stream.json`,
//! `client_response.json`, `client_stream.sse` (Responses client streams are also checked
//! against the §4 grammar by `anyint_wire::responses::check_stream`; OpenAI clients also
//! `client_stream_no_usage.sse`, without `include_usage`; Gemini clients also
//! `client_stream.json`, the JSON-array stream) and `decoded_error.txt`. JSON goldens are
//! compared as JSON values, the others byte for byte.
//!
//! Every pair sends its family's shared `client_request.json` but these:
//! - `openai_to_responses`, `anthropic_to_responses` and `gemini_to_responses` send no stop
//!   sequences, which the Responses API does not have (the encoder refuses them with a 400;
//!   [`responses_refuses_stop_sequences`] checks it).
//!
//! The OpenAI and Responses requests send `parallel_tool_calls: false` with tools. Gemini has
//! no such switch: its encoder adds a one-call system line, and the decoders keep the turn's
//! first function call. The `openai_to_gemini` and `responses_to_gemini` captures hold a
//! second call (in the same response, and in a chunk of its own in the stream) that must not
//! reach the client ([`gemini_answers_keep_one_call_per_turn`]).
//!
//! Structured output has a second set of pairs, `<client>_to_<upstream>_json` (all sixteen),
//! whose shared request per client family asks for JSON and nothing else (no tools, no stop
//! sequences), so every pair can carry it:
//! - OpenAI Chat: `response_format` `json_schema` with `strict: true` (a type list for a
//!   nullable field, an enum, `minItems: 0`);
//! - Anthropic: `output_config.format` (an optional property);
//! - Gemini: `responseMimeType: application/json` with an OpenAPI `responseSchema`
//!   (upper-case types, `nullable`, `format: enum`, `propertyOrdering`);
//! - Responses: `text.format` `json_object`, which reaches Anthropic as the gateway's forced
//!   JSON tool: `responses_to_anthropic_json`'s captures answer with that tool's call, which
//!   the client must get as text ([`the_forced_json_tool_comes_back_as_text`]).
//!
//! Every user turn says "JSON", so OpenAI's JSON-mode rule adds nothing. The upstream
//! captures answer with the same JSON object, streamed in four pieces.
//!
//! The Responses client's request is Codex-shaped: stateless (`store: false`, the whole
//! history in `input`), a custom tool and a namespace next to functions, a developer message
//! after the conversation began, and reasoning items from two providers: a Claude thinking
//! signature in the gateway's own `encrypted_content` blob, and an OpenAI blob. Each must reach
//! only its issuer. The Responses upstream capture follows the §4 grammar of
//! `shared/protocols/openai-responses.md`.
//! `openai_to_anthropic` and `gemini_to_anthropic` send both `temperature` and `top_p`, which
//! the Anthropic encoder must not pass on together (the goldens show `top_p` left out), and
//! `gemini_to_anthropic` carries a Gemini `thoughtSignature`, which must not reach Anthropic.
//!
//! Besides the goldens, every test checks properties that hold whatever the goldens say: the
//! upstream body reads back with the upstream kind's own `decode_request` (the same format
//! kind too: text, JSON mode or JSON Schema; Anthropic's forced JSON tool counts as the format
//! it carries), the client response
//! and stream decode back (with the client family's own decoders) to the same text, tool calls,
//! finish reason and token totals as the upstream's, and each client stream obeys its family's
//! framing rules.
//!
//! `UPDATE_GOLDEN=1 cargo test -p anyint-wire --test pairs` rewrites the goldens. Read the diff
//! against `shared/protocols/` before accepting it: a golden that enshrines a wire bug is worse
//! than none.
#![expect(
    clippy::panic,
    reason = "golden helpers are test code: a missing fixture or a broken chain must fail the test"
)]

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyint_wire::canonical::signature::{self, Origin};
use anyint_wire::canonical::{
    ChatRequest, ChatResponse, DecodeOptions, EncodeOptions, FinishReason, OutputFormat, Part,
    Role, StreamEvent, ToolChoice,
};
use anyint_wire::gemini::StreamFormat;
use anyint_wire::responses::{BLOB_PREFIX, Echo};
use anyint_wire::sse::{Frame, SseSplitter};
use anyint_wire::translate::{self, ClientShape, Kind, Translator, UpstreamDecoder};
use anyint_wire::{DecodeError, Usage, anthropic, gemini, openai, responses};
use serde_json::Value;

/// The model id clients ask for and must see in every answer.
const PUBLIC_MODEL: &str = "acme-chat";
/// The `anthropic-version` of Anthropic clients, and the one the gateway sends upstream.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The clock reading stamped on chunks and responses without their own.
const CREATED: i64 = 1_735_689_600;
/// The response id the gateway mints for Responses clients.
const RESPONSE_ID: &str = "resp_0123456789abcdef";
/// The system line the Gemini encoder adds for `parallel_tool_calls: false`.
const GEMINI_ONE_CALL_HINT: &str = "Call at most one function per turn.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    OpenAi,
    Anthropic,
    Gemini,
    Responses,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Responses => "responses",
        }
    }

    /// The model a route to an upstream of this kind names.
    fn upstream_model(self) -> &'static str {
        match self {
            Self::OpenAi => "gpt-4o-mini",
            Self::Anthropic => "claude-sonnet-4-5",
            // Gemini 3: exercises the placeholder signature on unsigned calls in history.
            Self::Gemini => "gemini-3-flash-preview",
            Self::Responses => "gpt-5.1",
        }
    }

    /// The wire kind of this family in `anyint_wire::translate`.
    fn kind(self) -> Kind {
        match self {
            Self::OpenAi => Kind::OpenAi,
            Self::Anthropic => Kind::Anthropic,
            Self::Gemini => Kind::Gemini,
            Self::Responses => Kind::Responses,
        }
    }

    /// The provider whose reasoning signatures an upstream of this kind verifies.
    fn origin(self) -> Option<Origin> {
        match self {
            Self::OpenAi => None,
            Self::Anthropic => Some(Origin::Anthropic),
            Self::Gemini => Some(Origin::Gemini),
            Self::Responses => Some(Origin::OpenAi),
        }
    }

    /// A client of this family streaming in `format` (Gemini clients only choose it);
    /// Responses clients carry the echo of their request.
    fn shape(self, format: StreamFormat, echo: &Echo) -> ClientShape<'_> {
        match self {
            Self::OpenAi => ClientShape::OpenAi,
            Self::Anthropic => ClientShape::Anthropic {
                version: ANTHROPIC_VERSION,
                betas: "",
            },
            Self::Gemini => ClientShape::Gemini {
                model: PUBLIC_MODEL,
                stream: true,
                sse: format == StreamFormat::Sse,
            },
            Self::Responses => ClientShape::Responses { echo },
        }
    }

    /// `decode_request` of this family; `model` and `stream` are the URL's (Gemini only).
    fn decode_request(
        self,
        body: &[u8],
        model: &str,
        stream: bool,
    ) -> Result<ChatRequest, DecodeError> {
        let echo = echo_of(body);
        let shape = match self {
            Self::OpenAi => ClientShape::OpenAi,
            Self::Anthropic => ClientShape::Anthropic {
                version: ANTHROPIC_VERSION,
                betas: "",
            },
            Self::Gemini => ClientShape::Gemini {
                model,
                stream,
                sse: true,
            },
            Self::Responses => ClientShape::Responses { echo: &echo },
        };
        translate::decode_request(shape, body)
    }

    fn encode_request(self, req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
        translate::encode_request(self.kind(), req)
    }

    fn decode_response(
        self,
        body: &[u8],
        opts: DecodeOptions,
    ) -> Result<ChatResponse, DecodeError> {
        translate::decode_response(self.kind(), body, opts)
    }

    fn encode_response(self, resp: &ChatResponse, echo: &Echo) -> Vec<u8> {
        translate::encode_response(self.shape(StreamFormat::Sse, echo), resp)
    }

    /// What this family's `decode_error` reads from an error body, one field a line.
    fn decode_error(self, body: &[u8]) -> Option<String> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "(none)".to_owned());
        Some(match self {
            Self::OpenAi => {
                let e = openai::decode_error(body)?;
                format!(
                    "message: {}\ntype: {}\ncode: {}\n",
                    e.message,
                    opt(e.kind),
                    opt(e.code)
                )
            }
            Self::Anthropic => {
                let e = anthropic::decode_error(body)?;
                format!("message: {}\ntype: {}\n", e.message, opt(e.kind))
            }
            Self::Gemini => {
                let e = gemini::decode_error(body)?;
                format!("message: {}\nstatus: {}\n", e.message, opt(e.status))
            }
            Self::Responses => {
                let e = responses::decode_error(body)?;
                format!(
                    "message: {}\ntype: {}\ncode: {}\n",
                    e.message,
                    opt(e.kind),
                    opt(e.code)
                )
            }
        })
    }
}

/// What a Responses client's answer echoes of its request `body`, with the gateway's id (for
/// other families' bodies, an echo nothing reads).
fn echo_of(body: &[u8]) -> Echo {
    Echo::new(body, RESPONSE_ID, CREATED).unwrap_or_else(|_| {
        Echo::new(br#"{"model":"m"}"#, RESPONSE_ID, CREATED).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Which request a pair sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// The family's shared conversation with tools, images and reasoning.
    Base,
    /// Structured output: the family's shared `_json` request (see the module docs).
    Json,
}

#[derive(Clone, Copy)]
struct Pair {
    client: Family,
    upstream: Family,
    case: Case,
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_to_{}", self.client.name(), self.upstream.name())?;
        if self.case == Case::Json {
            f.write_str("_json")?;
        }
        Ok(())
    }
}

impl Pair {
    fn dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pairs")
            .join(self.to_string())
    }

    fn path(self, file: &str) -> PathBuf {
        self.dir().join(file)
    }

    fn read(self, file: &str) -> Vec<u8> {
        let path = self.path(file);
        fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The client's request in canonical form, as the gateway decodes it.
    fn client_request(self) -> ChatRequest {
        self.client
            .decode_request(&self.read("client_request.json"), PUBLIC_MODEL, false)
            .unwrap_or_else(|e| panic!("{self}: the client request does not decode: {e:?}"))
    }

    /// The body the gateway sends upstream.
    fn upstream_request(self, stream: bool) -> Result<Vec<u8>, DecodeError> {
        let mut req = self.client_request();
        self.upstream.upstream_model().clone_into(&mut req.model);
        req.stream = stream;
        self.upstream.encode_request(&req)
    }

    /// What decoding the upstream's answer enforces for this client's request, as the gateway
    /// builds it.
    fn decode_options(self) -> DecodeOptions {
        DecodeOptions::for_request(&self.client_request())
    }

    /// The echo of the client's request (read by Responses clients' encoders only).
    fn echo(self) -> Echo {
        echo_of(&self.read("client_request.json"))
    }

    fn options(self, include_usage: bool) -> EncodeOptions {
        EncodeOptions {
            model: PUBLIC_MODEL.to_owned(),
            include_usage,
            input_tokens_estimate: self.client_request().estimate_input_tokens(),
            created: CREATED,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Golden files.

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` byte for byte with a golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden_bytes(path: &Path, actual: &[u8]) -> Result<(), String> {
    if updating() {
        return fs::write(path, actual).map_err(|e| format!("{}: {e}", path.display()));
    }
    let expected = fs::read(path).map_err(|e| {
        format!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "{} differs (rerun with UPDATE_GOLDEN=1 if intended)\n--- actual\n{}\n--- expected\n{}",
        path.display(),
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected)
    ))
}

/// Compares `actual` (JSON text) as a JSON value with a golden file, or rewrites it pretty-printed
/// under `UPDATE_GOLDEN=1`.
fn golden_json(path: &Path, actual: &[u8]) -> Result<(), String> {
    let actual: Value = serde_json::from_slice(actual)
        .map_err(|e| format!("{}: the output is not JSON: {e}", path.display()))?;
    if updating() {
        let mut text = serde_json::to_vec_pretty(&actual).map_err(|e| e.to_string())?;
        text.push(b'\n');
        return fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()));
    }
    let expected: Value = serde_json::from_slice(&fs::read(path).map_err(|e| {
        format!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    })?)
    .map_err(|e| format!("{}: {e}", path.display()))?;
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "{} differs (rerun with UPDATE_GOLDEN=1 if intended)\n--- actual\n{actual:#}\n--- expected\n{expected:#}",
        path.display()
    ))
}

fn report(pair: Pair, failures: &[String]) {
    assert!(failures.is_empty(), "{pair}:\n{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Family-independent views of requests, responses and streams, for the structural checks.

/// A tool call: id, name and arguments as JSON (whitespace and key order do not matter).
type Call = (String, String, Value);

fn json_or_text(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// What a request asks, in terms every family can express.
#[derive(Debug, PartialEq)]
struct RequestView {
    system: String,
    /// Per turn: the speaker (tool results count as the user's) and its text.
    turns: Vec<(&'static str, String)>,
    calls: Vec<Call>,
    /// Per tool result: the call it answers and its content (as JSON when it is JSON).
    results: Vec<(String, Value)>,
    images: usize,
    tools: Vec<String>,
    tool_choice: Option<ToolChoice>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Vec<String>,
    /// The structured output asked for: `text`, `json_object` or `json_schema`.
    format: &'static str,
}

fn request_view(req: &ChatRequest) -> RequestView {
    let mut view = RequestView {
        system: req
            .system
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n\n"),
        turns: Vec::new(),
        calls: Vec::new(),
        results: Vec::new(),
        images: 0,
        tools: req.tools.iter().map(|t| t.name.clone()).collect(),
        tool_choice: req.tool_choice.clone(),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.clone(),
        format: match &req.format {
            None | Some(OutputFormat::Text) => "text",
            Some(OutputFormat::JsonObject) => "json_object",
            Some(OutputFormat::JsonSchema { .. }) => "json_schema",
        },
    };
    for m in &req.messages {
        let role = match m.role {
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
            Role::System => "system",
        };
        let mut text = String::new();
        for p in &m.parts {
            match p {
                Part::Text { text: t, .. } => text.push_str(t),
                Part::Image { .. } => view.images += 1,
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => view
                    .calls
                    .push((id.clone(), name.clone(), json_or_text(arguments))),
                Part::ToolResult {
                    call_id, content, ..
                } => {
                    let body: String = content
                        .iter()
                        .filter_map(|c| match c {
                            Part::Text { text, .. } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect();
                    view.results.push((call_id.clone(), json_or_text(&body)));
                }
                Part::Reasoning { .. } => {}
            }
        }
        // Families merge consecutive turns of one speaker differently; compare merged turns.
        match view.turns.last_mut() {
            Some((last, prev)) if *last == role => prev.push_str(&text),
            _ => view.turns.push((role, text)),
        }
    }
    view.turns.retain(|(_, t)| !t.is_empty());
    view
}

/// What an answer says, in terms every family can express.
#[derive(Clone, Debug, PartialEq)]
struct AnswerView {
    text: String,
    calls: Vec<Call>,
    finish: Option<FinishReason>,
    input_tokens: u64,
    output_tokens: u64,
    /// Whether the stream completed (`End`); always true for a response.
    complete: bool,
}

fn response_view(resp: &ChatResponse) -> AnswerView {
    AnswerView {
        text: resp
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect(),
        calls: resp
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => Some((id.clone(), name.clone(), json_or_text(arguments))),
                _ => None,
            })
            .collect(),
        finish: resp.finish.clone(),
        input_tokens: resp.usage.input_tokens,
        output_tokens: resp.usage.output_tokens,
        complete: true,
    }
}

fn stream_view(events: &[StreamEvent]) -> AnswerView {
    let mut text = String::new();
    let mut calls: Vec<(u32, String, String, String)> = Vec::new();
    let mut finish = None;
    let mut usage = Usage::default();
    let mut complete = false;
    for ev in events {
        match ev {
            StreamEvent::TextDelta(t) => text.push_str(t),
            StreamEvent::ToolCallStart { index, id, name } => {
                calls.push((*index, id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolArgsDelta { index, json } => {
                if let Some(call) = calls.iter_mut().rev().find(|c| c.0 == *index) {
                    call.3.push_str(json);
                }
            }
            StreamEvent::Usage(u) => usage = usage.merge(*u),
            StreamEvent::Finish { reason, .. } => finish = Some(reason.clone()),
            StreamEvent::End => complete = true,
            StreamEvent::Start { .. }
            | StreamEvent::ReasoningDelta(_)
            | StreamEvent::ReasoningSignature(_)
            | StreamEvent::RedactedReasoning(_)
            | StreamEvent::WebSearch(_)
            | StreamEvent::Citation(_)
            | StreamEvent::Error { .. } => {}
        }
    }
    AnswerView {
        text,
        calls: calls
            .into_iter()
            .map(|(_, id, name, args)| (id, name, json_or_text(&args)))
            .collect(),
        finish,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        complete,
    }
}

/// Reasoning signatures in a stream, in order (families without signatures have none).
fn signatures(events: &[StreamEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ReasoningSignature(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Streams.

fn frames(bytes: &[u8], chunk: usize) -> Vec<Frame> {
    let mut split = SseSplitter::new();
    let mut out: Vec<Frame> = bytes
        .chunks(chunk.max(1))
        .flat_map(|c| split.push(c))
        .collect();
    out.extend(split.finish());
    out
}

/// A whole stream decoded by `family`'s own decoder, for a request that asked for `opts`.
fn decode_stream(family: Family, bytes: &[u8], opts: DecodeOptions) -> Vec<StreamEvent> {
    let mut dec = UpstreamDecoder::new(family.kind(), opts);
    let mut events: Vec<StreamEvent> = frames(bytes, bytes.len())
        .iter()
        .flat_map(|f| dec.feed(f))
        .collect();
    events.extend(dec.finish());
    events
}

/// A client stream read back by the client family's own decoder.
fn decode_client_stream(family: Family, format: StreamFormat, bytes: &[u8]) -> Vec<StreamEvent> {
    if format == StreamFormat::Sse {
        return decode_stream(family, bytes, DecodeOptions::default());
    }
    // The Gemini decoder takes a whole JSON-array stream in one frame.
    let mut dec = gemini::StreamDecoder::new();
    let frame = Frame {
        raw: bytes.to_vec().into(),
        event: None,
        data: String::from_utf8_lossy(bytes).into_owned(),
    };
    let mut events = dec.feed(&frame);
    events.extend(dec.finish());
    events
}

/// The gateway's translating stage (`anyint_wire::translate::Translator`, the one the gateway
/// runs): upstream bytes in `chunk`-sized pieces → client bytes, and the canonical events in
/// between.
fn translate(
    pair: Pair,
    upstream: &[u8],
    chunk: usize,
    opts: EncodeOptions,
    format: StreamFormat,
) -> (Vec<u8>, Vec<StreamEvent>) {
    let mut split = SseSplitter::new();
    let echo = pair.echo();
    let mut stage = Translator::new(
        pair.upstream.kind(),
        pair.decode_options(),
        pair.client.shape(format, &echo),
        opts,
    );
    let mut out = Vec::new();
    let mut events = Vec::new();
    for piece in upstream.chunks(chunk.max(1)) {
        for frame in split.push(piece) {
            let fed = stage.feed_inspect(&frame, &mut out, |ev| events.push(ev.clone()));
            assert!(fed.is_ok(), "{pair}: the upstream capture reports an error");
        }
    }
    // The captures end with a blank line, so nothing is left in the splitter (the gateway
    // would not feed a leftover either).
    assert!(
        split.finish().is_none(),
        "{pair}: the upstream capture ends mid-event"
    );
    stage.finish_inspect(&mut out, |ev| events.push(ev.clone()));
    (out, events)
}

/// Anthropic's event grammar: named events whose `data.type` is the name; `message_start`
/// first; every block started (indices 0, 1, …) before its deltas, with deltas of its own
/// kind, and stopped before the next starts and before `message_delta`; one `message_delta`;
/// `message_stop` last.
fn check_anthropic_grammar(bytes: &[u8]) -> Result<(), String> {
    let mut open: Option<(u64, String)> = None;
    let mut next_index = 0;
    let mut seen_start = false;
    let mut seen_delta = false;
    let mut seen_stop = false;
    for (i, f) in frames(bytes, bytes.len()).iter().enumerate() {
        let at = |m: &str| format!("event {i}: {m}");
        let name = f.event.as_deref().ok_or_else(|| at("no `event:` line"))?;
        let data: Value =
            serde_json::from_str(&f.data).map_err(|e| at(&format!("data is not JSON: {e}")))?;
        if data["type"] != name {
            return Err(at(&format!(
                "data.type {} under event {name}",
                data["type"]
            )));
        }
        if seen_stop {
            return Err(at("event after message_stop"));
        }
        if name == "ping" {
            continue;
        }
        if !seen_start && name != "message_start" {
            return Err(at(&format!("{name} before message_start")));
        }
        let index = data["index"].as_u64();
        match name {
            "message_start" if seen_start => return Err(at("second message_start")),
            "message_start" => seen_start = true,
            "content_block_start" => {
                if let Some((o, _)) = &open {
                    return Err(at(&format!("block {o} still open")));
                }
                if index != Some(next_index) {
                    return Err(at(&format!("block index {index:?}, expected {next_index}")));
                }
                next_index += 1;
                let kind = data["content_block"]["type"].as_str().unwrap_or_default();
                open = Some((next_index - 1, kind.to_owned()));
            }
            "content_block_delta" => {
                let Some((o, kind)) = &open else {
                    return Err(at("delta outside a block"));
                };
                if index != Some(*o) {
                    return Err(at(&format!("delta for block {index:?} while {o} is open")));
                }
                let delta = data["delta"]["type"].as_str().unwrap_or_default();
                let fits = match kind.as_str() {
                    "text" => delta == "text_delta" || delta == "citations_delta",
                    "thinking" => delta == "thinking_delta" || delta == "signature_delta",
                    "tool_use" => delta == "input_json_delta",
                    _ => false,
                };
                if !fits {
                    return Err(at(&format!("{delta} inside a {kind} block")));
                }
            }
            "content_block_stop" => match &open {
                Some((o, _)) if index == Some(*o) => open = None,
                _ => return Err(at(&format!("stop of block {index:?}, open: {open:?}"))),
            },
            "message_delta" => {
                if let Some((o, _)) = &open {
                    return Err(at(&format!("message_delta while block {o} is open")));
                }
                if seen_delta {
                    return Err(at("second message_delta"));
                }
                if data["usage"]["output_tokens"].as_u64().is_none() {
                    return Err(at("message_delta without usage.output_tokens"));
                }
                seen_delta = true;
            }
            "message_stop" if !seen_delta => return Err(at("message_stop before message_delta")),
            "message_stop" => seen_stop = true,
            other => return Err(at(&format!("unexpected event {other}"))),
        }
    }
    if seen_stop {
        Ok(())
    } else {
        Err("the stream does not end with message_stop".to_owned())
    }
}

/// OpenAI chunks: `data:` lines only, the same id/created/model everywhere, `usage: null` on
/// every chunk and one usage-only chunk right before `[DONE]` exactly when `include_usage`,
/// `[DONE]` last.
fn check_openai_stream(bytes: &[u8], include_usage: bool) -> Result<(), String> {
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?;
    if !text.ends_with("data: [DONE]\n\n") {
        return Err("the stream does not end with `data: [DONE]`".to_owned());
    }
    let all = frames(bytes, bytes.len());
    let Some((done, chunks)) = all.split_last() else {
        return Err("empty stream".to_owned());
    };
    if done.data != "[DONE]" {
        return Err(format!("last frame is {:?}", done.data));
    }
    let mut first: Option<(Value, Value, Value)> = None;
    let mut usage_chunks = Vec::new();
    for (i, f) in chunks.iter().enumerate() {
        let at = |m: &str| format!("chunk {i}: {m}");
        if f.event.is_some() || !f.raw.starts_with(b"data: ") {
            return Err(at("not a bare `data:` event"));
        }
        let c: Value = serde_json::from_str(&f.data).map_err(|e| at(&e.to_string()))?;
        if c["object"] != "chat.completion.chunk" {
            return Err(at("object is not chat.completion.chunk"));
        }
        let ids = (c["id"].clone(), c["created"].clone(), c["model"].clone());
        match &first {
            None => first = Some(ids),
            Some(f) if *f != ids => return Err(at("id/created/model changed")),
            Some(_) => {}
        }
        match c.get("usage") {
            None if include_usage => return Err(at("no `usage` key with include_usage")),
            Some(_) if !include_usage => return Err(at("`usage` key without include_usage")),
            Some(Value::Null) | None => {}
            Some(_) => usage_chunks.push(i),
        }
    }
    let expected: Vec<usize> = if include_usage {
        vec![chunks.len() - 1]
    } else {
        Vec::new()
    };
    if usage_chunks != expected {
        return Err(format!(
            "usage chunks at {usage_chunks:?}, expected {expected:?}"
        ));
    }
    if let Some(&i) = usage_chunks.first() {
        let c: Value = serde_json::from_str(&chunks[i].data).map_err(|e| e.to_string())?;
        if c["choices"] != Value::Array(Vec::new()) {
            return Err("the usage chunk has choices".to_owned());
        }
    }
    Ok(())
}

/// Gemini SSE: nothing but `data: {json object}` events, CRLF-framed.
fn check_gemini_sse(bytes: &[u8]) -> Result<Vec<Value>, String> {
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.starts_with("data: {") {
            return Err(format!("not a `data: {{…}}` line: {line}"));
        }
    }
    frames(bytes, bytes.len())
        .iter()
        .map(|f| {
            if !f.raw.ends_with(b"\r\n\r\n") {
                return Err(format!("event not CRLF-framed: {:?}", f.data));
            }
            serde_json::from_str::<Value>(&f.data).map_err(|e| e.to_string())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks, one per aspect; each pair runs all of them.

fn check_upstream_request(pair: Pair) {
    let mut failures = Vec::new();
    for (stream, file) in [
        (false, "upstream_request.json"),
        (true, "upstream_request_stream.json"),
    ] {
        match pair.upstream_request(stream) {
            Ok(body) => failures.extend(golden_json(&pair.path(file), &body).err()),
            Err(e) => failures.push(format!("{file}: the upstream encoder refused: {e:?}")),
        }
    }
    report(pair, &failures);
}

/// The upstream body is one the upstream kind's own decoder accepts, and it asks the same
/// thing as the client's request.
fn check_upstream_request_valid(pair: Pair) {
    let client = pair.client_request();
    let mut failures = Vec::new();
    for stream in [false, true] {
        let body = match pair.upstream_request(stream) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!(
                    "stream={stream}: the upstream encoder refused: {e:?}"
                ));
                continue;
            }
        };
        let model = pair.upstream.upstream_model();
        match pair.upstream.decode_request(&body, model, stream) {
            Ok(back) => {
                if back.stream != stream {
                    failures.push(format!(
                        "stream={stream}: decodes with stream={}",
                        back.stream
                    ));
                }
                if pair.upstream != Family::Gemini && back.model != model {
                    failures.push(format!("stream={stream}: model {:?}", back.model));
                }
                if !back.extra.is_empty() {
                    failures.push(format!("stream={stream}: unmapped fields {:?}", back.extra));
                }
                if let Err(e) = check_upstream_hazards(pair, &body) {
                    failures.push(format!("stream={stream}: {e}"));
                }
                let mut want = request_view(&client);
                let mut got = request_view(&back);
                if pair.upstream == Family::Anthropic && want.temperature.is_some() {
                    // Deliberate: Claude 4.5+ refuse `top_p` with `temperature`; the encoder
                    // keeps `temperature`.
                    want.top_p = None;
                }
                if pair.upstream == Family::Anthropic && client.reasoning.is_some() {
                    // Deliberate: Anthropic counts thinking inside `max_tokens`, so the encoder
                    // adds the thinking budget to the client's cap.
                    got.max_tokens = want.max_tokens;
                }
                if pair.upstream == Family::Anthropic
                    && let Some(i) = got
                        .tools
                        .iter()
                        .position(|t| t == anthropic::JSON_TOOL || t == anthropic::JSON_VALUE_TOOL)
                {
                    // Deliberate: structured output Anthropic cannot take natively is its
                    // reserved tool, forced (the decoders turn its call back into text).
                    got.tools.remove(i);
                    got.tool_choice.clone_from(&want.tool_choice);
                    if got.format == "text" {
                        got.format = want.format;
                    }
                }
                if pair.upstream == Family::Gemini && pair.decode_options().first_tool_call_only {
                    // Deliberate: Gemini has no `parallel_tool_calls` switch, so the encoder
                    // asks for one call in the system prompt (and the decoders keep the first).
                    got.system = got
                        .system
                        .strip_suffix(GEMINI_ONE_CALL_HINT)
                        .map(|s| s.strip_suffix("\n\n").unwrap_or(s).to_owned())
                        .unwrap_or(got.system);
                }
                if want != got {
                    failures.push(format!(
                        "stream={stream}: the upstream request asks something else\n--- client\n{want:#?}\n--- upstream\n{got:#?}"
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "stream={stream}: the {} decoder rejects the body: {e:?}\n{}",
                pair.upstream.name(),
                String::from_utf8_lossy(&body)
            )),
        }
    }
    report(pair, &failures);
}

/// What the upstream's own decoder accepts but the real API refuses.
/// - Claude 4.5 and later answer 400 when `temperature` and `top_p` are both set.
/// - Reasoning signatures are verified by the provider that issued them: Anthropic refuses a
///   `thinking` block it did not sign ("Invalid `signature` in `thinking` block"), Gemini a
///   foreign `thoughtSignature` ("Thought signature is not valid"), OpenAI an
///   `encrypted_content` it did not mint (`invalid_encrypted_content`). Exactly the signatures
///   the client carries from the upstream's provider are sent (Google's documented placeholder
///   aside): its own family's, and those the gateway handed it tagged (`anyint:<origin>:…`) or,
///   for Responses clients, inside its `encrypted_content` blob. They go as issued: the
///   gateway's tags and blobs never reach an upstream.
fn check_upstream_hazards(pair: Pair, body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if pair.upstream == Family::Anthropic
        && v.get("temperature").is_some()
        && v.get("top_p").is_some()
    {
        return Err("`temperature` and `top_p` both sent to Anthropic".to_owned());
    }
    let mut sent = wire_signatures(pair.upstream, &v);
    if let Some(tagged) = sent
        .iter()
        .find(|s| s.starts_with("anyint:") || s.starts_with(BLOB_PREFIX))
    {
        return Err(format!(
            "an origin-tagged signature or a gateway blob reaches the upstream: {tagged}"
        ));
    }
    let mut carried = carried_signatures(pair);
    sent.sort();
    carried.sort();
    if sent != carried {
        return Err(format!(
            "the {} upstream is sent the reasoning signatures {sent:?}, but the {} client carries {carried:?} from its provider",
            pair.upstream.name(),
            pair.client.name()
        ));
    }
    Ok(())
}

/// The reasoning state in the client's request that the upstream's provider issued, as it
/// issued it: signatures of its origin, and (Anthropic) redacted thinking.
fn carried_signatures(pair: Pair) -> Vec<String> {
    let Some(origin) = pair.upstream.origin() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in pair
        .client_request()
        .messages
        .iter()
        .flat_map(|m| m.parts.iter())
    {
        if let Part::Reasoning {
            signature,
            redacted,
            ..
        } = p
        {
            out.extend(
                signature
                    .as_deref()
                    .and_then(|s| signature::for_upstream(origin, s))
                    .map(str::to_owned),
            );
            if origin == Origin::Anthropic {
                out.extend(redacted.clone());
            }
        }
    }
    out
}

/// The reasoning signatures in a request body of `family`: Anthropic `thinking` and
/// `redacted_thinking` blocks (their signature or data), Gemini `thoughtSignature`s other than
/// Google's placeholder, Responses reasoning items' `encrypted_content`.
fn wire_signatures(family: Family, v: &Value) -> Vec<String> {
    let strings = |it: Vec<&Value>| -> Vec<String> {
        it.into_iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    match family {
        Family::OpenAi => Vec::new(),
        Family::Anthropic => strings(
            v["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["content"].as_array().into_iter().flatten())
                .filter_map(|b| match b["type"].as_str() {
                    Some("thinking") => Some(&b["signature"]),
                    Some("redacted_thinking") => Some(&b["data"]),
                    _ => None,
                })
                .collect(),
        ),
        Family::Gemini => strings(
            v["contents"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["parts"].as_array().into_iter().flatten())
                .filter_map(|p| p.get("thoughtSignature"))
                .filter(|s| *s != "skip_thought_signature_validator")
                .collect(),
        ),
        Family::Responses => strings(
            v["input"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["type"] == "reasoning")
                .filter_map(|i| i.get("encrypted_content"))
                .collect(),
        ),
    }
}

/// A client of `family` gets its own family's signatures as issued: only foreign ones carry
/// an origin tag.
fn check_no_own_tag(pair: Pair, body: &[u8]) -> Result<(), String> {
    let own = match pair.client {
        Family::OpenAi => return Ok(()),
        Family::Anthropic => "anyint:anthropic:",
        Family::Gemini => "anyint:gemini:",
        Family::Responses => "anyint:openai:",
    };
    if String::from_utf8_lossy(body).contains(own) {
        return Err(format!(
            "the client sees its own family's signature with the gateway's tag `{own}`"
        ));
    }
    Ok(())
}

/// Gemini has no switch for `parallel_tool_calls: false`: the shared OpenAI request (which
/// sends it, with tools) goes out with a one-call hint, and the decoders keep the first call.
#[test]
fn gemini_keeps_the_first_call_for_the_shared_openai_request() {
    let shared = Pair {
        client: Family::OpenAi,
        upstream: Family::OpenAi,
        case: Case::Base,
    };
    let mut req = shared.client_request();
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert!(shared.decode_options().first_tool_call_only);
    Family::Gemini.upstream_model().clone_into(&mut req.model);
    let body: Value = serde_json::from_slice(&gemini::encode_request(&req).unwrap()).unwrap();
    let system = body["systemInstruction"]["parts"].as_array().unwrap();
    assert_eq!(system.last().unwrap()["text"], GEMINI_ONE_CALL_HINT);
    req.parallel_tool_calls = None;
    let body: Value = serde_json::from_slice(&gemini::encode_request(&req).unwrap()).unwrap();
    assert_eq!(
        body["systemInstruction"]["parts"].as_array().unwrap().len(),
        1
    );
}

/// The `openai_to_gemini` and `responses_to_gemini` captures hold two function calls in the
/// turn; those clients asked for `parallel_tool_calls: false`, so only the first reaches them,
/// in the response and in the stream, and usage stays as Gemini reported it.
#[test]
fn gemini_answers_keep_one_call_per_turn() {
    for client in [Family::OpenAi, Family::Responses] {
        let pair = Pair {
            client,
            upstream: Family::Gemini,
            case: Case::Base,
        };
        let body = pair.read("upstream_response.json");
        let all = Family::Gemini
            .decode_response(&body, DecodeOptions::default())
            .unwrap();
        let one = Family::Gemini
            .decode_response(&body, pair.decode_options())
            .unwrap();
        let (all, one) = (response_view(&all), response_view(&one));
        assert_eq!((all.calls.len(), one.calls.len()), (2, 1), "{pair}");
        assert_eq!(one.calls.first(), all.calls.first(), "{pair}");
        assert_eq!(
            (one.input_tokens, one.output_tokens),
            (all.input_tokens, all.output_tokens)
        );
        let stream = pair.read("upstream_stream.sse");
        let all = stream_view(&decode_stream(
            Family::Gemini,
            &stream,
            DecodeOptions::default(),
        ));
        let one = stream_view(&decode_stream(
            Family::Gemini,
            &stream,
            pair.decode_options(),
        ));
        assert_eq!((all.calls.len(), one.calls.len()), (2, 1), "{pair}");
        assert_eq!(one.calls.first(), all.calls.first(), "{pair}");
        assert_eq!(one.output_tokens, all.output_tokens);
        assert!(one.complete);
    }
}

/// The Responses client's JSON mode reaches Anthropic as the gateway's forced JSON tool; its
/// call comes back to the client as the answer's text (finish `stop`), never as a tool call,
/// in the response and in the stream.
#[test]
fn the_forced_json_tool_comes_back_as_text() {
    let pair = Pair {
        client: Family::Responses,
        upstream: Family::Anthropic,
        case: Case::Json,
    };
    let upstream: Value = serde_json::from_slice(&pair.upstream_request(false).unwrap()).unwrap();
    assert_eq!(upstream["tool_choice"]["name"], anthropic::JSON_TOOL);
    let body = pair.read("upstream_response.json");
    let raw: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(raw["content"][0]["name"], anthropic::JSON_TOOL);
    let resp = response_view(
        &Family::Anthropic
            .decode_response(&body, pair.decode_options())
            .unwrap(),
    );
    let stream = response_view_of_stream(&decode_stream(
        Family::Anthropic,
        &pair.read("upstream_stream.sse"),
        pair.decode_options(),
    ));
    for view in [resp, stream] {
        assert!(view.calls.is_empty(), "{view:?}");
        assert_eq!(view.finish, Some(FinishReason::Stop));
        let answer: Value = serde_json::from_str(&view.text).unwrap();
        assert_eq!(answer, raw["content"][0]["input"]);
    }
}

fn response_view_of_stream(events: &[StreamEvent]) -> AnswerView {
    stream_view(events)
}

/// The Responses API has no stop sequences, so the shared requests of the other families
/// (which send them) are refused with a 400 naming `stop`.
#[test]
fn responses_refuses_stop_sequences() {
    for family in [Family::OpenAi, Family::Anthropic, Family::Gemini] {
        let shared = Pair {
            client: family,
            upstream: family,
            case: Case::Base,
        };
        let mut req = shared.client_request();
        assert!(!req.stop.is_empty(), "{}", family.name());
        Family::Responses
            .upstream_model()
            .clone_into(&mut req.model);
        let e = responses::encode_request(&req).expect_err("stop sequences");
        assert_eq!(e.param, Some("stop"), "{e}");
        req.stop.clear();
        req.parallel_tool_calls = None;
        assert!(responses::encode_request(&req).is_ok(), "{}", family.name());
    }
}

fn check_response(pair: Pair) {
    let upstream_body = pair.read("upstream_response.json");
    let mut resp = pair
        .upstream
        .decode_response(&upstream_body, pair.decode_options())
        .unwrap_or_else(|e| panic!("{pair}: the upstream response does not decode: {e:?}"));
    let want = response_view(&resp);
    PUBLIC_MODEL.clone_into(&mut resp.model);
    if resp.created.is_none() {
        resp.created = Some(CREATED);
    }
    let body = pair.client.encode_response(&resp, &pair.echo());
    let mut failures: Vec<String> = golden_json(&pair.path("client_response.json"), &body)
        .err()
        .into_iter()
        .collect();
    let value: Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = match pair.client {
        Family::OpenAi | Family::Anthropic | Family::Responses => &value["model"],
        Family::Gemini => &value["modelVersion"],
    };
    if model != PUBLIC_MODEL {
        failures.push(format!("the client sees model {model}"));
    }
    failures.extend(check_no_own_tag(pair, &body).err());
    match pair.client.decode_response(&body, DecodeOptions::default()) {
        Ok(back) => {
            let got = response_view(&back);
            if got != want {
                failures.push(format!(
                    "the client response says something else\n--- upstream\n{want:#?}\n--- client\n{got:#?}"
                ));
            }
        }
        Err(e) => failures.push(format!("the client response does not decode: {e:?}")),
    }
    report(pair, &failures);
}

fn check_stream(pair: Pair) {
    let upstream = pair.read("upstream_stream.sse");
    let upstream_events = decode_stream(pair.upstream, &upstream, pair.decode_options());
    let want = stream_view(&upstream_events);
    assert!(
        want.complete,
        "{pair}: the upstream capture does not complete"
    );
    let mut failures = Vec::new();
    let mut outputs: Vec<(&str, bool, StreamFormat)> =
        vec![("client_stream.sse", true, StreamFormat::Sse)];
    match pair.client {
        Family::OpenAi => outputs.push(("client_stream_no_usage.sse", false, StreamFormat::Sse)),
        Family::Anthropic | Family::Responses => outputs[0].1 = false,
        Family::Gemini => {
            outputs[0].1 = false;
            outputs.push(("client_stream.json", false, StreamFormat::JsonArray));
        }
    }
    let mut gemini_sse: Option<Vec<Value>> = None;
    for (file, include_usage, format) in outputs {
        let opts = pair.options(include_usage);
        let (out, events) = translate(pair, &upstream, upstream.len(), opts.clone(), format);
        if events != upstream_events {
            failures.push(format!(
                "{file}: the tap saw other events than a plain decode"
            ));
        }
        // However the upstream bytes are chunked, the client gets the same bytes.
        for chunk in [1, 2, 7, 64, 509] {
            if translate(pair, &upstream, chunk, opts.clone(), format).0 != out {
                failures.push(format!(
                    "{file}: output differs with {chunk}-byte upstream chunks"
                ));
            }
        }
        let mut fail = |m: String| failures.push(format!("{file}: {m}"));
        if format == StreamFormat::JsonArray {
            if let Err(e) = golden_json(&pair.path(file), &out) {
                fail(e);
            }
            match serde_json::from_slice::<Value>(&out) {
                Ok(Value::Array(items)) => {
                    if gemini_sse.as_ref().is_some_and(|sse| *sse != items) {
                        fail("the array's chunks differ from the SSE stream's".to_owned());
                    }
                }
                other => fail(format!("not a JSON array: {other:?}")),
            }
        } else if let Err(e) = golden_bytes(&pair.path(file), &out) {
            fail(e);
        }
        let structure = match (pair.client, format) {
            (Family::OpenAi, _) => check_openai_stream(&out, include_usage),
            (Family::Anthropic, _) => check_anthropic_grammar(&out),
            (Family::Gemini, StreamFormat::Sse) => check_gemini_sse(&out).map(|chunks| {
                gemini_sse = Some(chunks);
            }),
            (Family::Gemini, StreamFormat::JsonArray) => Ok(()),
            (Family::Responses, _) => responses::check_stream(&out),
        };
        if let Err(e) = structure.and_then(|()| check_no_own_tag(pair, &out)) {
            fail(e);
        }
        // The client stream, read back by its own family, says what the upstream said.
        let client_events = decode_client_stream(pair.client, format, &out);
        let got = stream_view(&client_events);
        let want = if pair.client == Family::OpenAi && !include_usage {
            // Without `include_usage` an OpenAI client is told no usage at all.
            AnswerView {
                input_tokens: 0,
                output_tokens: 0,
                ..want.clone()
            }
        } else {
            want.clone()
        };
        if got != want {
            fail(format!(
                "the client stream says something else\n--- upstream\n{want:#?}\n--- client\n{got:#?}"
            ));
        }
        // Families with signatures pass them on.
        if pair.client != Family::OpenAi
            && pair.upstream != Family::OpenAi
            && signatures(&client_events) != signatures(&upstream_events)
        {
            fail(format!(
                "signatures {:?}, upstream sent {:?}",
                signatures(&client_events),
                signatures(&upstream_events)
            ));
        }
    }
    report(pair, &failures);
}

fn check_error(pair: Pair) {
    let body = pair.read("upstream_error.json");
    let mut failures = Vec::new();
    match pair.upstream.decode_error(&body) {
        Some(text) => {
            let text = format!("upstream: {}\n{text}", pair.upstream.name());
            failures.extend(golden_bytes(&pair.path("decoded_error.txt"), text.as_bytes()).err());
        }
        None => failures.push(format!(
            "the {} decoder does not read its own error envelope",
            pair.upstream.name()
        )),
    }
    // An error body must never pass for an (empty) answer.
    if let Ok(resp) = pair
        .upstream
        .decode_response(&body, DecodeOptions::default())
    {
        failures.push(format!("the error body decodes as a response: {resp:?}"));
    }
    report(pair, &failures);
}

macro_rules! pairs {
    ($($name:ident: $client:ident -> $upstream:ident, $case:ident;)*) => {$(
        mod $name {
            use super::{Case, Family, Pair};

            const PAIR: Pair = Pair {
                client: Family::$client,
                upstream: Family::$upstream,
                case: Case::$case,
            };

            #[test]
            fn upstream_request() {
                super::check_upstream_request(PAIR);
            }

            #[test]
            fn upstream_request_is_valid_for_its_kind() {
                super::check_upstream_request_valid(PAIR);
            }

            #[test]
            fn response() {
                super::check_response(PAIR);
            }

            #[test]
            fn stream() {
                super::check_stream(PAIR);
            }

            #[test]
            fn error() {
                super::check_error(PAIR);
            }
        }
    )*};
}

pairs! {
    openai_to_openai: OpenAi -> OpenAi, Base;
    openai_to_anthropic: OpenAi -> Anthropic, Base;
    openai_to_gemini: OpenAi -> Gemini, Base;
    anthropic_to_openai: Anthropic -> OpenAi, Base;
    anthropic_to_anthropic: Anthropic -> Anthropic, Base;
    anthropic_to_gemini: Anthropic -> Gemini, Base;
    gemini_to_openai: Gemini -> OpenAi, Base;
    gemini_to_anthropic: Gemini -> Anthropic, Base;
    gemini_to_gemini: Gemini -> Gemini, Base;
    openai_to_responses: OpenAi -> Responses, Base;
    anthropic_to_responses: Anthropic -> Responses, Base;
    gemini_to_responses: Gemini -> Responses, Base;
    responses_to_openai: Responses -> OpenAi, Base;
    responses_to_anthropic: Responses -> Anthropic, Base;
    responses_to_gemini: Responses -> Gemini, Base;
    responses_to_responses: Responses -> Responses, Base;
    openai_to_openai_json: OpenAi -> OpenAi, Json;
    openai_to_anthropic_json: OpenAi -> Anthropic, Json;
    openai_to_gemini_json: OpenAi -> Gemini, Json;
    openai_to_responses_json: OpenAi -> Responses, Json;
    anthropic_to_openai_json: Anthropic -> OpenAi, Json;
    anthropic_to_anthropic_json: Anthropic -> Anthropic, Json;
    anthropic_to_gemini_json: Anthropic -> Gemini, Json;
    anthropic_to_responses_json: Anthropic -> Responses, Json;
    gemini_to_openai_json: Gemini -> OpenAi, Json;
    gemini_to_anthropic_json: Gemini -> Anthropic, Json;
    gemini_to_gemini_json: Gemini -> Gemini, Json;
    gemini_to_responses_json: Gemini -> Responses, Json;
    responses_to_openai_json: Responses -> OpenAi, Json;
    responses_to_anthropic_json: Responses -> Anthropic, Json;
    responses_to_gemini_json: Responses -> Gemini, Json;
    responses_to_responses_json: Responses -> Responses, Json;
}
