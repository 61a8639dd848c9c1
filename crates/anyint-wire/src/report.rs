//! What upstream stream frames say to a meter: usage, the stream's proper end, an error, and
//! whether a frame carries part of the answer. [`FrameReport`] is one frame's, read by
//! `translate::Kind::report`; [`RunReport`] is a whole run of OpenAI chat events', read by
//! [`openai_run`] without splitting the run into frames.
//!
//! The run reader exists for the passthrough of OpenAI-compatible streams, the common case: a
//! chunk that is a run of whole one-line `data:` events is metered in one pass over its bytes
//! (one search for each key over the run, no event decoded or copied), and forwarded as it
//! came. Any other chunk is left to the splitter and [`FrameReport`]s; for every run it
//! accepts, the run reader answers what folding those reports answers (tested below).

use std::ops::Range;

use crate::Usage;
use crate::openai;

/// What one upstream frame says to a meter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "four independent facts about one frame, not the states of one"
)]
pub struct FrameReport {
    /// Usage the frame carries (to merge into what the stream reported before).
    pub usage: Option<Usage>,
    /// The frame carries only usage (OpenAI's final usage chunk).
    pub usage_only: bool,
    /// The frame ends the stream properly (`[DONE]`, `message_stop`, a `finishReason`,
    /// `response.completed` / `response.incomplete`).
    pub ends: bool,
    /// The frame is an error the upstream wrote into the stream.
    pub error: bool,
    /// The frame carries part of the answer: it has data and neither closes the answer (the
    /// end, OpenAI's finish chunk) nor carries only usage. A stream cut before its usage report
    /// is billed a token for each such frame.
    pub content: bool,
}

/// What a run of OpenAI chat stream events says to a meter: the fold of its frames' reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    /// The last usage a frame carried (an OpenAI chunk carries the stream's total).
    pub usage: Option<Usage>,
    /// A frame ended the stream.
    pub ends: bool,
    /// A frame was an error.
    pub error: bool,
    /// The frames that carry part of the answer.
    pub content: u64,
    /// Where the frames that carry only usage are in the run (bytes, whole events), for a
    /// client that did not ask for them.
    pub usage_only: Vec<Range<usize>>,
}

impl RunReport {
    /// Adds the report of the frame at `at` in the run, in stream order.
    pub fn add(&mut self, r: &FrameReport, at: Range<usize>) {
        if r.usage.is_some() {
            self.usage = r.usage;
        }
        if r.usage_only {
            self.usage_only.push(at);
        }
        self.ends |= r.ends;
        self.error |= r.error;
        self.content += u64::from(r.content);
    }
}

/// The report of `run`, a chunk of an OpenAI chat stream, when it is whole one-line `data:`
/// events and nothing else (`data: …\n\n` each, no carriage return); `None` for any other
/// chunk, which the caller reads frame by frame.
pub fn openai_run(run: &[u8]) -> Option<RunReport> {
    if !run.ends_with(b"\n\n") || memchr::memchr(b'\r', run).is_some() {
        return None;
    }
    // Each key searched once over the run, not once in each event: the searches' set-up
    // cost as much as their scanning on events of a few hundred bytes.
    let mut usage_at = openai::USAGE_KEY.find_iter(run).peekable();
    let mut finish_at = openai::FINISH_KEY.find_iter(run).peekable();
    let mut report = RunReport::default();
    let mut start = 0;
    while start < run.len() {
        let line_end = start + memchr::memchr(b'\n', run.get(start..)?)?;
        // A line end not followed by another: the event has a second line.
        if run.get(line_end + 1) != Some(&b'\n') {
            return None;
        }
        let value = run.get(start..line_end)?.strip_prefix(b"data:")?;
        let at = line_end - value.len() + usize::from(value.first() == Some(&b' '));
        let data = run.get(at..line_end)?;
        // The keys' occurrences in this event (a key has no line end, so none spans two).
        let has_usage = field_in(
            run,
            &mut usage_at,
            openai::USAGE_KEY.needle().len(),
            at,
            line_end,
            b'{',
        );
        let finishes = field_in(
            run,
            &mut finish_at,
            openai::FINISH_KEY.needle().len(),
            at,
            line_end,
            b'"',
        );
        let event = start..line_end + 2;
        start = event.end;
        let frame = if has_usage {
            // Rare (the last chunk): read as the frame path reads it, from the same text.
            match simdutf8::basic::from_utf8(data) {
                Ok(text) => openai_frame(text),
                Err(_) => openai_frame(&String::from_utf8_lossy(data)),
            }
        } else {
            plain_openai_frame(data, finishes)
        };
        report.add(&frame, event);
    }
    Some(report)
}

/// What one `data:` payload of an OpenAI chat stream says to a meter.
pub fn openai_frame(data: &str) -> FrameReport {
    let (usage, usage_only) = match openai::usage_from_chunk(data) {
        openai::StreamUsage::None => (None, false),
        openai::StreamUsage::Inline(u) => (Some(u), false),
        openai::StreamUsage::UsageOnly(u) => (Some(u), true),
    };
    FrameReport {
        usage,
        usage_only,
        // The finish chunk and the usage chunk close the answer: no token of their own.
        ..plain_openai_frame(
            data.as_bytes(),
            usage_only || openai::gives_finish_reason(data),
        )
    }
}

/// [`openai_frame`] of a payload with no `usage` object, given whether it closes the answer
/// otherwise (sets a finish reason, or carries only usage).
fn plain_openai_frame(data: &[u8], closes: bool) -> FrameReport {
    let ends = data == b"[DONE]";
    FrameReport {
        usage: None,
        usage_only: false,
        ends,
        error: is_error_payload(data),
        content: !data.is_empty() && !ends && !closes,
    }
}

/// Whether a frame's data is an error object (`{"error": …}`), as any kind's upstream may
/// write one into a stream.
pub(crate) fn is_error_payload(data: &[u8]) -> bool {
    data.trim_ascii_start().starts_with(b"{\"error\"")
}

/// Whether one of the key occurrences `at` (positions in `run`, in order) in `from..to` is
/// followed by `:` and a value starting with `first`, as `has_field_starting` reads one
/// event's data; takes the occurrences before `to` off the iterator.
#[expect(
    clippy::inline_always,
    reason = "measured: called, not inlined, it cost a run of twenty events 1,000 instructions"
)]
#[inline(always)]
fn field_in(
    run: &[u8],
    at: &mut std::iter::Peekable<memchr::memmem::FindIter<'_, '_>>,
    key_len: usize,
    from: usize,
    to: usize,
    first: u8,
) -> bool {
    let mut found = false;
    while let Some(&pos) = at.peek() {
        if pos >= to {
            break;
        }
        at.next();
        if found || pos < from {
            continue;
        }
        let rest = run.get(pos + key_len..to).unwrap_or_default();
        found = openai::value_starts_with(rest, first);
    }
    found
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sse::SseSplitter;
    use crate::translate::Kind;

    /// The frame path's answer for `run`: split into frames, each read by `Kind::report`.
    fn by_frames(run: &[u8]) -> RunReport {
        let mut splitter = SseSplitter::new();
        let mut frames = splitter.push_bytes(&bytes::Bytes::copy_from_slice(run));
        frames.extend(splitter.finish());
        let mut report = RunReport::default();
        let mut at = 0;
        for f in &frames {
            report.add(&Kind::OpenAi.report(f), at..at + f.raw.len());
            at += f.raw.len();
        }
        report
    }

    const USAGE: &str = r#"{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}"#;

    fn content(text: &str, finish: &str) -> String {
        format!(
            r#"{{"id":"c","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":{text}}},"finish_reason":{finish}}}]}}"#
        )
    }

    #[test]
    fn a_stream_as_upstreams_write_it_is_read_in_one_pass() {
        let mut events = vec![content(r#""tok ""#, "null"); 3];
        events.push(content("null", r#""stop""#));
        events.push(format!(r#"{{"id":"c","choices":[],"usage":{USAGE}}}"#));
        events.push("[DONE]".to_owned());
        let run = events
            .iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect::<Vec<_>>()
            .concat();
        let report = openai_run(run.as_bytes()).expect("whole one-line events");
        assert_eq!(report, by_frames(run.as_bytes()));
        assert_eq!(report.content, 3);
        assert!(report.ends && !report.error);
        assert_eq!(report.usage.map(|u| u.output_tokens), Some(3));
        assert_eq!(report.usage_only.len(), 1);
    }

    #[test]
    fn other_shapes_are_left_to_the_frames() {
        for run in [
            "data: {}\n\n data: {}",
            "data: {}\n",
            "data: {}\r\n\r\n",
            "event: error\ndata: {}\n\n",
            ": keep-alive\n\n",
            "id: 1\n\n",
            "data: a\ndata: b\n\n",
            // Whole events up to the last one, which is not one: the frames read the lot.
            "data: {\"choices\":[],\"usage\":{}}\n\n: ping\n\n",
        ] {
            assert_eq!(openai_run(run.as_bytes()), None, "{run:?}");
        }
    }

    /// One event of an OpenAI-compatible stream as upstreams write them: one `data:` line.
    fn plain() -> impl Strategy<Value = Vec<u8>> {
        let text = prop_oneof![
            Just(r#""tok ""#.to_owned()),
            Just(r#""\"usage\": {""#.to_owned()),
            Just(r#""usage""#.to_owned()),
            Just(r#""finish_reason""#.to_owned()),
            Just(r#""\"finish_reason\":\"x""#.to_owned()),
            Just("null".to_owned()),
            "\\PC{0,6}".prop_map(|s| serde_json::Value::from(s).to_string()),
        ];
        let finish = prop_oneof![
            Just("null"),
            Just(r#""stop""#),
            Just(r#" "length""#),
            Just("7"),
        ];
        let data = prop_oneof![
            4 => (text, finish).prop_map(|(t, f)| content(&t, f)),
            1 => Just(format!(r#"{{"choices":[],"usage":{USAGE}}}"#)),
            1 => Just(format!(r#"{{"choices":[{{"delta":{{}}}}],"usage" : {USAGE}}}"#)),
            1 => Just(r#"{"choices":[],"usage":null}"#.to_owned()),
            1 => Just(r#"{"choices":"x","usage":{}}"#.to_owned()),
            1 => Just(r#"{"usage":{"prompt_tokens":1},"usage":{}}"#.to_owned()),
            1 => Just("[DONE]".to_owned()),
            1 => Just(" [DONE]".to_owned()),
            1 => Just(r#"{"error":{"message":"overloaded"}}"#.to_owned()),
            1 => Just(r#"  {"error" : 1}"#.to_owned()),
            1 => Just(String::new()),
            1 => Just(r#"{"choices":[{"finish_reason":"stop","delta":{"content":"finish_reason"}}]}"#.to_owned()),
            1 => Just("{\"choices\":[{\"finish_reason\"\t:\t\"stop\"}],\"é\":1}".to_owned()),
            1 => Just(format!("{{\"choices\":[],\"usage\"\t:\t{USAGE}}}")),
        ];
        (
            prop_oneof![Just("data: "), Just("data:"), Just("data:  ")],
            data,
        )
            .prop_map(|(field, data)| format!("{field}{data}\n\n").into_bytes())
    }

    /// [`plain`], or something else an upstream might write.
    fn event() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            12 => plain(),
            1 => Just(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\xff1}}\n\n".to_vec()),
            1 => Just(b"data: \xfe\xff\n\n".to_vec()),
            1 => Just(b"event: error\ndata: {}\n\n".to_vec()),
            1 => Just(b": ping\n\n".to_vec()),
            1 => Just(b"data: {}\r\n\r\n".to_vec()),
            1 => Just(b"data: {\"a\":1}\n".to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn a_run_read_in_one_pass_reads_as_its_frames_do(
            events in proptest::collection::vec(event(), 0..10)
        ) {
            let run = events.concat();
            if let Some(report) = openai_run(&run) {
                prop_assert_eq!(report, by_frames(&run));
            }
        }

        #[test]
        fn a_run_of_one_line_events_is_read_in_one_pass(
            events in proptest::collection::vec(plain(), 1..10)
        ) {
            let run = events.concat();
            prop_assert_eq!(openai_run(&run), Some(by_frames(&run)));
        }
    }
}
