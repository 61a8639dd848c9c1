//! Server-sent events framing: splits a byte stream into events, however it is chunked.
//!
//! The splitter keeps each event's raw bytes (terminator included) so a passthrough stream can
//! forward or drop whole events without re-encoding them, and decodes the `event:` and `data:`
//! fields for the usage tap and for translation. An event's raw bytes are a slice of the chunk
//! (or of the splitter's buffer) they arrived in, never a copy of their own.

use bytes::{Bytes, BytesMut};

/// One SSE event: its exact bytes on the wire and its decoded fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The event's bytes, including the blank line that ended it.
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; empty when the event carried none.
    pub data: String,
}

/// Incremental SSE splitter. Feed it chunks; it returns every event completed so far.
#[derive(Debug, Default)]
pub struct SseSplitter {
    /// Bytes of an event not yet complete.
    buf: BytesMut,
    /// How far `buf` has already been scanned for a terminator, so a slow trickle of bytes is
    /// not rescanned from the start each time.
    scanned: usize,
}

impl SseSplitter {
    /// A splitter with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `chunk` and returns the events it completed, in order. A chunk of many events
    /// (an upstream that writes a whole answer at once) is scanned once.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut from = self.scanned;
        while let Some((end, first_line)) = find_event_end(&self.buf, from) {
            // Lines before `scanned` were looked at in an earlier call: whether the event is one
            // line is known only when the search began at its start.
            let one_line = first_line && from == 0;
            frames.push(decode_frame(self.buf.split_to(end).freeze(), one_line));
            from = 0;
        }
        self.scanned = self.buf.len().saturating_sub(3);
        frames
    }

    /// [`push`](Self::push) for a chunk already in a [`Bytes`]: when nothing is pending, the
    /// events it holds are slices of it, and only an incomplete tail is copied.
    pub fn push_bytes(&mut self, chunk: &Bytes) -> Vec<Frame> {
        if !self.buf.is_empty() {
            return self.push(chunk);
        }
        // Room for the events a chunk likely holds (a chat stream's event is rarely under a
        // hundred bytes): a list grown from empty reallocated four times for twenty events.
        let mut frames = Vec::with_capacity(chunk.len() / 100 + 1);
        let mut start = 0;
        while let Some((end, one_line)) = find_event_end(chunk, start) {
            frames.push(decode_frame(chunk.slice(start..end), one_line));
            start = end;
        }
        self.buf
            .extend_from_slice(chunk.get(start..).unwrap_or_default());
        self.scanned = self.buf.len().saturating_sub(3);
        frames
    }

    /// Bytes received but not yet part of a complete event (a stream cut mid-event).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Ends the stream: an unterminated trailing event is returned if it carries data.
    pub fn finish(&mut self) -> Option<Frame> {
        self.scanned = 0;
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            self.buf.clear();
            return None;
        }
        Some(decode_frame(std::mem::take(&mut self.buf).freeze(), false))
    }
}

/// The index just past the first blank line (`\n\n`, `\r\n\r\n`, `\r\r`, mixed) at or after
/// `from`, and whether the first line end after `from` was the blank line's (so that, searched
/// from an event's start, the event is one line).
fn find_event_end(buf: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let mut first = true;
    loop {
        // Line ends are far apart (an event's JSON): jump to the next one.
        i += memchr::memchr2(b'\n', b'\r', buf.get(i..)?)?;
        let line_end = match buf.get(i) {
            Some(b'\n') => i + 1,
            Some(b'\r') if buf.get(i + 1) == Some(&b'\n') => i + 2,
            Some(b'\r') if i + 1 < buf.len() => i + 1,
            // A lone `\r` at the end might be the start of `\r\n`: wait for more bytes.
            _ => return None,
        };
        match buf.get(line_end) {
            Some(b'\n') => return Some((line_end + 1, first)),
            Some(b'\r') if buf.get(line_end + 1) == Some(&b'\n') => {
                return Some((line_end + 2, first));
            }
            Some(b'\r') if line_end + 1 < buf.len() => return Some((line_end + 1, first)),
            _ => {
                i = line_end;
                first = false;
            }
        }
    }
}

/// The non-empty lines of `text`, split at `\n` and `\r` by a byte search (a `char` pattern
/// decodes every character of the event's JSON).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let at = memchr::memchr2(b'\n', b'\r', rest.as_bytes()).unwrap_or(rest.len());
            // `at` is an ASCII byte's index or the end: both are character boundaries.
            let (line, tail) = rest.split_at(at);
            rest = tail.get(1..).unwrap_or("");
            if !line.is_empty() {
                return Some(line);
            }
        }
    })
}

/// `one_line` says the splitter saw no line end in `raw` before its blank line.
fn decode_frame(raw: Bytes, one_line: bool) -> Frame {
    if let Some(data) = single_data_line(&raw, one_line) {
        return Frame {
            raw,
            event: None,
            data,
        };
    }
    decode_lines(raw)
}

/// The data of an event that is one `data:` line ended by `\n\n`, the shape OpenAI-compatible
/// servers write every chunk in: read without splitting lines and fields (which took two
/// searches for line ends and one for the colon, about 400 instructions an event). `None` for
/// any other shape (and for text that is not UTF-8), which [`decode_lines`] reads. When
/// `one_line`, the only line end before the blank line can be a `\r` just before it (`\r\n\n`),
/// and the value is not searched again.
fn single_data_line(raw: &[u8], one_line: bool) -> Option<String> {
    let value = raw.strip_suffix(b"\n\n")?.strip_prefix(b"data:")?;
    let value = value.strip_prefix(b" ").unwrap_or(value);
    let breaks = if one_line {
        value.last() == Some(&b'\r')
    } else {
        memchr::memchr2(b'\n', b'\r', value).is_some()
    };
    if breaks {
        return None;
    }
    simdutf8::basic::from_utf8(value).ok().map(str::to_owned)
}

/// Any event: its lines split into fields.
fn decode_lines(raw: Bytes) -> Frame {
    // `from_utf8` validates far faster than the lossy decoder's chunk iterator (which was 6%
    // of a stream's instructions); only invalid bytes go through the replacing copy.
    let text = match std::str::from_utf8(&raw) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(&raw),
    };
    let mut event = None;
    let mut data: Option<String> = None;
    for line in lines(&text) {
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Frame {
        raw,
        event,
        data: data.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &[u8] =
        b"data: {\"a\":1}\n\nevent: ping\ndata: x\ndata: y\n\n: comment\n\ndata: [DONE]\r\n\r\n";

    fn split_all(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut s = SseSplitter::new();
        let mut out: Vec<Frame> = chunks.iter().flat_map(|c| s.push(c)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn one_data_line_is_read_as_the_line_splitter_reads_it() {
        for raw in [
            &b"data: {\"a\":1}\n\n"[..],
            b"data:{\"a\":1}\n\n",
            b"data:  two spaces\n\n",
            b"data:\n\n",
            b"data: [DONE]\n\n",
            b"data: a:b: c\n\n",
            b"data: \xc3\xa9\xe2\x9c\x93\n\n",
            // Other shapes go to the line splitter.
            b"data: bad \xff utf-8\n\n",
            b"data: x\r\n\r\n",
            b"data: x\r\n\n",
            b"data: x\rdata: y\n\n",
            b"data: x\ndata: y\n\n",
            b"event: ping\ndata: x\n\n",
            b": comment\n\n",
            b"datax: y\n\n",
            b"id: 1\n\n",
        ] {
            let raw = Bytes::copy_from_slice(raw);
            let fast = decode_frame(raw.clone(), false);
            let slow = decode_lines(raw.clone());
            assert_eq!(
                (&fast.event, &fast.data),
                (&slow.event, &slow.data),
                "{:?}",
                slow.raw
            );
            // And as the splitter reads it, told whether the event is one line.
            let (end, one_line) = find_event_end(&raw, 0).unwrap();
            assert_eq!(end, raw.len(), "{raw:?}");
            let split = decode_frame(raw.clone(), one_line);
            assert_eq!(
                (&split.event, &split.data),
                (&slow.event, &slow.data),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn decodes_events_data_and_comments() {
        let frames = split_all(&[STREAM]);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].data, "{\"a\":1}");
        assert_eq!(frames[1].event.as_deref(), Some("ping"));
        assert_eq!(frames[1].data, "x\ny");
        assert_eq!(frames[2].data, "");
        assert_eq!(frames[3].data, "[DONE]");
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.raw.clone()).collect();
        assert_eq!(joined, STREAM);
    }

    #[test]
    fn unterminated_tail_is_returned_by_finish() {
        let mut s = SseSplitter::new();
        assert!(s.push(b"data: partial").is_empty());
        assert_eq!(s.pending(), b"data: partial");
        assert_eq!(s.finish().unwrap().data, "partial");
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_frames(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..12)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts { chunks.push(&STREAM[last..c]); last = c; }
            chunks.push(&STREAM[last..]);
            prop_assert_eq!(split_all(&chunks), split_all(&[STREAM]));
        }

        #[test]
        fn chunks_in_bytes_give_the_same_frames(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..12)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut s = SseSplitter::new();
            let mut frames = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([STREAM.len()]) {
                frames.extend(s.push_bytes(&Bytes::copy_from_slice(&STREAM[last..c])));
                last = c;
            }
            frames.extend(s.finish());
            prop_assert_eq!(frames, split_all(&[STREAM]));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_lose_nothing(data in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
            let cut = cut.min(data.len());
            let mut s = SseSplitter::new();
            let mut raw: Vec<u8> = s.push(&data[..cut]).into_iter().flat_map(|f| f.raw).collect();
            raw.extend(s.push(&data[cut..]).into_iter().flat_map(|f| f.raw));
            raw.extend_from_slice(s.pending());
            prop_assert_eq!(raw, data);
        }
    }
}
