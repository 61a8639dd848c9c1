//! Canonical [`StreamEvent`]s → the event stream a Responses client reads (§4 grammar).
//!
//! Every event is `event: <type>` + `data: {"type","sequence_number",…}`, numbered from 0 by
//! one. `response.created` and `response.in_progress` come first (written at the first
//! event), then the output items, each announced by `output_item.added` and closed by
//! `output_item.done`, then exactly one of `response.completed` / `response.incomplete` (at
//! `End`) or `error` + `response.failed` (at `Error`, or when the gateway calls
//! [`StreamEncoder::fail`]). Nothing follows the terminal event.
//!
//! Items open lazily: text opens a message item (with its one `output_text` part, content
//! index 0), reasoning or a signature a reasoning item (one `summary_text` part, summary index
//! 0; a signature or redacted data completes the item, so more reasoning opens a new one), a
//! `ToolCallStart` a `function_call` or, for a client's custom tool, a `custom_tool_call`
//! item. Opening a message or reasoning item closes every open item; tool calls stay open
//! together so arguments of parallel calls can interleave, and are closed in `output_index`
//! order before the next message, reasoning item or the terminal event. A custom tool's input
//! is sent whole at its close (its canonical arguments are `{"input": …}` JSON, which cannot be
//! unwrapped piece by piece). Arguments for a call already closed cannot be placed and are
//! dropped, as in the other encoders.
//!
//! Hosted web search (`shared/protocols/web-search.md` §1.3, §4.1): a search opens a
//! `web_search_call` item when it starts (closing every open item first, so text after it
//! opens a new message), with `response.web_search_call.in_progress`; `.searching` follows
//! when its query is known and `.completed` then `output_item.done` (status `completed` or
//! `failed`, always with an `action`) when it ends. A search reported only once done (Gemini)
//! runs all of these at once. A search still open when the stream ends never got its results
//! (an Anthropic turn that paused): it closes `failed`. A citation becomes
//! `response.output_text.annotation.added` on the open message when its span lies inside
//! that message's text (right after the delta that completed it), and is part of the
//! `output_text` in `content_part.done`, `output_item.done` and the final response; a
//! citation of text no longer open is dropped.

use serde_json::{Value, json};

use super::echo::{Echo, Status};
use super::error::{error_payload, write_delta_event, write_event};
use super::response::{ItemBuilder, annotated_text, custom_input, output_text, status_of};
use super::search;
use crate::Usage;
use crate::canonical::{Citation, EncodeOptions, FinishReason, SearchProgress, StreamEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet.
    Fresh,
    /// `response.created` written.
    Open,
    /// The terminal event written: nothing more.
    Done,
}

#[derive(Debug)]
enum Kind {
    Message {
        text: String,
        /// Characters of answer text before this message's.
        start: usize,
        /// Its `url_citation` annotations so far.
        annotations: Vec<Value>,
    },
    Search {
        /// The upstream's id of the search.
        upstream: String,
        query: Option<String>,
        /// `web_search_call.searching` was sent.
        searching: bool,
    },
    Reasoning {
        text: String,
        summary_open: bool,
        signature: Option<String>,
        redacted: Option<String>,
    },
    Call {
        canonical: u32,
        call_id: String,
        name: String,
        args: String,
        custom: bool,
    },
}

#[derive(Debug)]
struct Item {
    index: usize,
    id: String,
    kind: Kind,
}

/// Per-stream state for writing a Responses event stream to a client.
#[derive(Debug)]
pub struct StreamEncoder {
    opts: EncodeOptions,
    echo: Echo,
    seq: u64,
    phase: Phase,
    /// Closed items, in output order.
    output: Vec<Value>,
    /// Open items, in output order after `output`.
    open: Vec<Item>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    response: Option<Value>,
    /// Characters of answer text so far (citation offsets count them).
    answer_chars: usize,
}

impl StreamEncoder {
    /// An encoder for one response: `opts.model` is the model the client sees, `echo` the
    /// client's request (response id, creation time, echoed fields, tool names).
    pub fn new(opts: EncodeOptions, echo: Echo) -> Self {
        Self {
            opts,
            echo,
            seq: 0,
            phase: Phase::Fresh,
            output: Vec::new(),
            open: Vec::new(),
            usage: None,
            finish: None,
            response: None,
            answer_chars: 0,
        }
    }

    /// The final Response object, once the terminal event is written (what the gateway stores
    /// for `previous_response_id` and GET).
    pub fn response(&self) -> Option<&Value> {
        self.response.as_ref()
    }

    /// The `sequence_number` the next event gets.
    pub fn sequence_number(&self) -> u64 {
        self.seq
    }

    /// The bytes for one canonical event (often none).
    pub fn encode(&mut self, ev: &StreamEvent) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        match ev {
            StreamEvent::Start { model, .. } => {
                if self.opts.model.is_empty() {
                    model.clone_into(&mut self.opts.model);
                }
                self.ensure_started(&mut out);
            }
            StreamEvent::TextDelta(t) if !t.is_empty() => self.text(&mut out, t),
            StreamEvent::ReasoningDelta(t) if !t.is_empty() => self.reasoning(&mut out, t),
            StreamEvent::ReasoningSignature(sig) if !sig.is_empty() => {
                self.ensure_started(&mut out);
                match self.open.as_mut_slice() {
                    [
                        Item {
                            kind:
                                Kind::Reasoning {
                                    signature: signature @ None,
                                    redacted: None,
                                    ..
                                },
                            ..
                        },
                    ] => *signature = Some(sig.clone()),
                    _ => self.open_reasoning(&mut out, Some(sig.clone()), None),
                }
                self.close_all(&mut out, "completed");
            }
            StreamEvent::RedactedReasoning(data) => {
                self.ensure_started(&mut out);
                self.open_reasoning(&mut out, None, Some(data.clone()));
                self.close_all(&mut out, "completed");
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.call(&mut out, *index, id, name);
            }
            StreamEvent::ToolArgsDelta { index, json } if !json.is_empty() => {
                self.args(&mut out, *index, json);
            }
            StreamEvent::WebSearch(progress) => self.search(&mut out, progress),
            StreamEvent::Citation(c) => self.cite(&mut out, c),
            StreamEvent::Usage(u) => {
                self.usage = Some(self.usage.map_or(*u, |prev| prev.merge(*u)));
            }
            StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
            StreamEvent::Error { message } => out = self.fail("server_error", message),
            StreamEvent::End => self.end(&mut out),
            StreamEvent::TextDelta(_)
            | StreamEvent::ReasoningDelta(_)
            | StreamEvent::ReasoningSignature(_)
            | StreamEvent::ToolArgsDelta { .. } => {}
        }
        out
    }

    /// The upstream ended. Writes nothing: a complete stream was closed at `End`, and a cut
    /// one must be failed by the gateway ([`fail`](Self::fail)), which knows why.
    pub fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Ends the stream with a failure: the nested `error` event and `response.failed` (its
    /// `error.code` is `code`, e.g. `server_error`; its output the items finished so far),
    /// after `response.created` when nothing was written yet. Nothing once the stream ended.
    pub fn fail(&mut self, code: &str, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        self.ensure_started(&mut out);
        self.emit(
            &mut out,
            "error",
            &[("error", error_payload(code, message))],
        );
        let response = self.echo.response(
            &self.opts.model,
            Status::Failed { code, message },
            self.output.clone(),
            self.usage.as_ref(),
        );
        self.emit(
            &mut out,
            "response.failed",
            &[("response", response.clone())],
        );
        self.response = Some(response);
        self.phase = Phase::Done;
        out
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, fields: &[(&str, Value)]) {
        write_event(out, kind, self.seq, fields);
        self.seq += 1;
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::Fresh {
            return;
        }
        self.phase = Phase::Open;
        let response = self
            .echo
            .response(&self.opts.model, Status::InProgress, Vec::new(), None);
        self.emit(out, "response.created", &[("response", response.clone())]);
        self.emit(out, "response.in_progress", &[("response", response)]);
    }

    fn next_index(&self) -> usize {
        self.output.len() + self.open.len()
    }

    fn text(&mut self, out: &mut Vec<u8>, delta: &str) {
        self.ensure_started(out);
        if !matches!(
            self.open.as_slice(),
            [Item {
                kind: Kind::Message { .. },
                ..
            }]
        ) {
            self.close_all(out, "completed");
            let index = self.next_index();
            let id = self.echo.item_id("msg", index);
            let skeleton = json!({
                "id": id, "type": "message", "status": "in_progress", "role": "assistant",
                "content": [],
            });
            self.emit(
                out,
                "response.output_item.added",
                &[("output_index", json!(index)), ("item", skeleton)],
            );
            self.emit(
                out,
                "response.content_part.added",
                &[
                    ("item_id", json!(id)),
                    ("output_index", json!(index)),
                    ("content_index", json!(0)),
                    ("part", output_text("")),
                ],
            );
            self.open.push(Item {
                index,
                id,
                kind: Kind::Message {
                    text: String::new(),
                    start: self.answer_chars,
                    annotations: Vec::new(),
                },
            });
        }
        let Some(Item {
            index,
            id,
            kind: Kind::Message { text, .. },
        }) = self.open.last_mut()
        else {
            return;
        };
        text.push_str(delta);
        self.answer_chars += delta.chars().count();
        write_delta_event(
            out,
            "response.output_text.delta",
            self.seq,
            (id, *index),
            Some("content_index"),
            delta,
            true,
        );
        self.seq += 1;
    }

    fn open_reasoning(
        &mut self,
        out: &mut Vec<u8>,
        signature: Option<String>,
        redacted: Option<String>,
    ) {
        self.close_all(out, "completed");
        let index = self.next_index();
        let id = self.echo.item_id("rs", index);
        self.emit(
            out,
            "response.output_item.added",
            &[
                ("output_index", json!(index)),
                (
                    "item",
                    json!({"id": id, "type": "reasoning", "summary": []}),
                ),
            ],
        );
        self.open.push(Item {
            index,
            id,
            kind: Kind::Reasoning {
                text: String::new(),
                summary_open: false,
                signature,
                redacted,
            },
        });
    }

    fn reasoning(&mut self, out: &mut Vec<u8>, delta: &str) {
        self.ensure_started(out);
        let unsigned_open = matches!(
            self.open.as_slice(),
            [Item {
                kind: Kind::Reasoning {
                    signature: None,
                    redacted: None,
                    ..
                },
                ..
            }]
        );
        if !unsigned_open {
            self.open_reasoning(out, None, None);
        }
        let Some(Item {
            index,
            id,
            kind: Kind::Reasoning {
                text, summary_open, ..
            },
        }) = self.open.last_mut()
        else {
            return;
        };
        let (index, id) = (*index, id.clone());
        let first = !*summary_open;
        *summary_open = true;
        text.push_str(delta);
        if first {
            self.emit(
                out,
                "response.reasoning_summary_part.added",
                &[
                    ("item_id", json!(id)),
                    ("output_index", json!(index)),
                    ("summary_index", json!(0)),
                    ("part", json!({"type": "summary_text", "text": ""})),
                ],
            );
        }
        write_delta_event(
            out,
            "response.reasoning_summary_text.delta",
            self.seq,
            (&id, index),
            Some("summary_index"),
            delta,
            false,
        );
        self.seq += 1;
    }

    fn call(&mut self, out: &mut Vec<u8>, canonical: u32, call_id: &str, name: &str) {
        self.ensure_started(out);
        if self
            .open
            .iter()
            .any(|i| !matches!(i.kind, Kind::Call { .. }))
        {
            self.close_all(out, "completed");
        }
        let index = self.next_index();
        let skeleton = ItemBuilder::new(&self.echo).call(index, call_id, name, "", "in_progress");
        let field = |k: &str| skeleton.get(k).and_then(Value::as_str).unwrap_or_default();
        let id = field("id").to_owned();
        let custom = field("type") == "custom_tool_call";
        self.emit(
            out,
            "response.output_item.added",
            &[("output_index", json!(index)), ("item", skeleton)],
        );
        self.open.push(Item {
            index,
            id,
            kind: Kind::Call {
                canonical,
                call_id: call_id.to_owned(),
                name: name.to_owned(),
                args: String::new(),
                custom,
            },
        });
    }

    fn args(&mut self, out: &mut Vec<u8>, canonical: u32, delta: &str) {
        let Some(item) = self
            .open
            .iter_mut()
            .rev()
            .find(|i| matches!(&i.kind, Kind::Call { canonical: c, .. } if *c == canonical))
        else {
            return;
        };
        let Kind::Call { args, custom, .. } = &mut item.kind else {
            return;
        };
        args.push_str(delta);
        if !*custom {
            write_delta_event(
                out,
                "response.function_call_arguments.delta",
                self.seq,
                (&item.id, item.index),
                None,
                delta,
                false,
            );
            self.seq += 1;
        }
    }

    /// Opens a `web_search_call` item for the upstream's search `upstream`.
    fn open_search(&mut self, out: &mut Vec<u8>, upstream: &str) {
        self.ensure_started(out);
        self.close_all(out, "completed");
        let index = self.next_index();
        let id = self.echo.item_id("ws", index);
        self.emit(
            out,
            "response.output_item.added",
            &[
                ("output_index", json!(index)),
                ("item", search::skeleton(&id)),
            ],
        );
        let at = [("item_id", json!(id)), ("output_index", json!(index))];
        self.emit(out, "response.web_search_call.in_progress", &at);
        self.open.push(Item {
            index,
            id,
            kind: Kind::Search {
                upstream: upstream.to_owned(),
                query: None,
                searching: false,
            },
        });
    }

    /// The open search item of the upstream's search `upstream`, opened when there is none.
    fn open_search_for(&mut self, out: &mut Vec<u8>, upstream: &str) -> Option<&mut Item> {
        let is_it = |i: &Item| matches!(&i.kind, Kind::Search { upstream: u, .. } if u == upstream);
        if !self.open.iter().any(is_it) {
            self.open_search(out, upstream);
        }
        self.open.iter_mut().rev().find(|i| is_it(i))
    }

    fn search(&mut self, out: &mut Vec<u8>, progress: &SearchProgress) {
        match progress {
            SearchProgress::Started { id } => self.open_search(out, id),
            SearchProgress::Searching { id, query: q } => {
                let Some(item) = self.open_search_for(out, id) else {
                    return;
                };
                let (index, item_id) = (item.index, item.id.clone());
                let Kind::Search {
                    query, searching, ..
                } = &mut item.kind
                else {
                    return;
                };
                if q.is_some() {
                    query.clone_from(q);
                }
                if !std::mem::replace(searching, true) {
                    let at = [("item_id", json!(item_id)), ("output_index", json!(index))];
                    self.emit(out, "response.web_search_call.searching", &at);
                }
            }
            SearchProgress::Done(call) => {
                if self.open_search_for(out, &call.id).is_none() {
                    return;
                }
                let Some(pos) = self.open.iter().rposition(
                    |i| matches!(&i.kind, Kind::Search { upstream, .. } if *upstream == call.id),
                ) else {
                    return;
                };
                // Items opened after it (none in practice) close first, in order.
                let later = self.open.split_off(pos + 1);
                let item = self.open.pop();
                if let Some(item) = item {
                    self.close_search(out, item, Some(call));
                }
                for i in later {
                    self.close(out, i, "completed");
                }
            }
        }
    }

    fn cite(&mut self, out: &mut Vec<u8>, c: &Citation) {
        let Some(Item {
            index,
            id,
            kind:
                Kind::Message {
                    text,
                    start,
                    annotations,
                },
        }) = self.open.last_mut()
        else {
            return;
        };
        let Some(note) = search::annotation(c, *start, text.chars().count()) else {
            return;
        };
        let fields = [
            ("item_id", json!(id)),
            ("output_index", json!(index)),
            ("content_index", json!(0)),
            ("annotation_index", json!(annotations.len())),
            ("annotation", note.clone()),
        ];
        annotations.push(note);
        self.emit(out, "response.output_text.annotation.added", &fields);
    }

    /// Closes a search item: `searching` if not sent yet, `completed`, then the finished item
    /// (`failed` without a result).
    fn close_search(
        &mut self,
        out: &mut Vec<u8>,
        item: Item,
        call: Option<&crate::canonical::WebSearchCall>,
    ) {
        let Item { index, id, kind } = item;
        let Kind::Search {
            query, searching, ..
        } = kind
        else {
            return;
        };
        let at = [("item_id", json!(id)), ("output_index", json!(index))];
        if !searching {
            self.emit(out, "response.web_search_call.searching", &at);
        }
        self.emit(out, "response.web_search_call.completed", &at);
        let done = ItemBuilder::new(&self.echo).search(index, call, query.as_deref());
        self.emit(
            out,
            "response.output_item.done",
            &[("output_index", json!(index)), ("item", done.clone())],
        );
        self.output.push(done);
    }

    /// Closes every open item in order; the last gets `last_status`.
    fn close_all(&mut self, out: &mut Vec<u8>, last_status: &str) {
        let open = std::mem::take(&mut self.open);
        let count = open.len();
        for (n, item) in open.into_iter().enumerate() {
            let status = if n + 1 == count {
                last_status
            } else {
                "completed"
            };
            self.close(out, item, status);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>, item: Item, status: &str) {
        let Item { index, id, kind } = item;
        let at = |extra: Vec<(&'static str, Value)>| {
            let mut f = vec![("item_id", json!(id)), ("output_index", json!(index))];
            f.extend(extra);
            f
        };
        let builder = ItemBuilder::new(&self.echo);
        let done = match kind {
            search @ Kind::Search { .. } => {
                // Never got its results.
                self.close_search(
                    out,
                    Item {
                        index,
                        id,
                        kind: search,
                    },
                    None,
                );
                return;
            }
            Kind::Message {
                text, annotations, ..
            } => {
                let item = builder.annotated_message(index, &text, status, &annotations);
                let text_done = at(vec![
                    ("content_index", json!(0)),
                    ("text", json!(text)),
                    ("logprobs", json!([])),
                ]);
                let part_done = at(vec![
                    ("content_index", json!(0)),
                    ("part", annotated_text(&text, &annotations)),
                ]);
                self.emit(out, "response.output_text.done", &text_done);
                self.emit(out, "response.content_part.done", &part_done);
                item
            }
            Kind::Reasoning {
                text,
                summary_open,
                signature,
                redacted,
            } => {
                let item =
                    builder.reasoning(index, &text, signature.as_deref(), redacted.as_deref());
                if summary_open {
                    let text_done = at(vec![("summary_index", json!(0)), ("text", json!(text))]);
                    let part = json!({"type": "summary_text", "text": text});
                    let part_done = at(vec![("summary_index", json!(0)), ("part", part)]);
                    self.emit(out, "response.reasoning_summary_text.done", &text_done);
                    self.emit(out, "response.reasoning_summary_part.done", &part_done);
                }
                item
            }
            Kind::Call {
                call_id,
                name,
                args,
                custom,
                ..
            } => {
                let item = builder.call(index, &call_id, &name, &args, status);
                if custom {
                    let input = custom_input(&args);
                    if !input.is_empty() {
                        let delta = at(vec![("delta", json!(input))]);
                        self.emit(out, "response.custom_tool_call_input.delta", &delta);
                    }
                    let done = at(vec![("input", json!(input))]);
                    self.emit(out, "response.custom_tool_call_input.done", &done);
                } else {
                    let done = at(vec![
                        ("name", item.get("name").cloned().unwrap_or_default()),
                        ("arguments", json!(args)),
                    ]);
                    self.emit(out, "response.function_call_arguments.done", &done);
                }
                item
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            &[("output_index", json!(index)), ("item", done.clone())],
        );
        self.output.push(done);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let status = status_of(self.finish.as_ref());
        let last = if matches!(status, Status::Incomplete(_)) {
            "incomplete"
        } else {
            "completed"
        };
        self.close_all(out, last);
        let usage = self.usage.unwrap_or_default();
        let response =
            self.echo
                .response(&self.opts.model, status, self.output.clone(), Some(&usage));
        let name = if last == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(out, name, &[("response", response.clone())]);
        self.response = Some(response);
        self.phase = Phase::Done;
    }
}

#[cfg(test)]
mod tests;
