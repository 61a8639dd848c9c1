//! A one-pass JSON scanner for request heads: it validates a document and splits an object into
//! its top-level fields as raw slices, without building values or copying strings.
//!
//! Coding agents resend whole conversations (hundreds of KB to MB of JSON) on every turn, and
//! the passthrough path needs only a few top-level fields of them. Splitting with serde_json
//! (into `RawValue`s) checked each value's UTF-8 a second time, and reading the messages' roles
//! decoded the whole array again: two full passes of serde's deserializer. Here one validating
//! pass splits the object (strings read 64 bytes at a time as bit masks, see [`string_end`]),
//! and reads the messages' roles in the same pass
//! ([`object_fields_reading`]): a second pass over a 500 KB conversation, even one only
//! jumping from quote to quote, was a third of the request's instructions.
//!
//! Whatever the scanner accepts, serde_json accepts with the same split (the fuzz suite
//! checks the two against each other); on anything else (invalid JSON, or an escaped top-level
//! key) it answers `None` and the caller asks serde_json, whose error message the client then
//! gets, so errors stay identical and an input the scanner is unsure of is never let through.
//! The one exception is [`last_field`], which reads only a document's end (an upstream
//! answer's `usage`, written last) and validates only what it reads.

use std::borrow::Cow;

/// The top-level fields of the JSON object `body`, in order, values as raw text; `None` when
/// `body` is not an object of valid JSON (or uses something the scanner leaves to serde_json:
/// an escaped key).
pub fn object_fields(body: &[u8]) -> Option<Fields<'_>> {
    object_fields_reading(body, None::<(&str, [&str; 0])>).map(|(fields, _)| fields)
}

/// An object's top-level fields, in order, values as raw text.
pub type Fields<'a> = Vec<(Cow<'a, str>, &'a str)>;

/// Fields of each element of one array, as [`array_object_fields`] gives them.
pub type ElementFields<'a, const N: usize> = Vec<[Option<&'a str>; N]>;

/// [`object_fields`], and in the same pass, for `inner = (array, wanted)`, what
/// [`array_object_fields`] gives for the last top-level field named `array` (the value a
/// reader takes): a conversation's roles are read while it is validated, not in a second pass
/// over it. The second part is `None` when that field is absent or
/// [`array_object_fields`] would answer `None`.
pub fn object_fields_reading<'a, const N: usize>(
    body: &'a [u8],
    inner: Option<(&str, [&str; N])>,
) -> Option<(Fields<'a>, Option<ElementFields<'a, N>>)> {
    // One UTF-8 check of the whole document: serde_json checks every raw value and key.
    // simdutf8 answers as `std::str::from_utf8` does, in vector instructions: a 2 MB body
    // took 25 µs instead of 44.
    let text = simdutf8::basic::from_utf8(body).ok()?;
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut fields = Vec::with_capacity(16);
    let mut read = None;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, escaped, start) = field_key(text, i)?;
            if escaped {
                return None;
            }
            let value_end = match inner {
                Some((array, wanted)) if array == key => {
                    let (end, elements) = array_end_reading(text, start, wanted)?;
                    read = elements;
                    end
                }
                _ => value_end(b, start)?,
            };
            fields.push((Cow::Borrowed(key), text.get(start..value_end)?));
            match after_field(b, value_end)? {
                (next, false) => i = next,
                (end, true) => {
                    i = end;
                    break;
                }
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some((fields, read))
}

/// The end of the value at `start`, validated as [`value_end`] validates it, and when it is an
/// array of objects, the fields `wanted` of each element (as [`array_object_fields`]: `None`
/// for an element that is not an object, an escaped key, or a wanted key twice in one
/// element). `None` overall only when the value is not valid JSON.
fn array_end_reading<'a, const N: usize>(
    text: &'a str,
    start: usize,
    wanted: [&str; N],
) -> Option<(usize, Option<ElementFields<'a, N>>)> {
    let b = text.as_bytes();
    if b.get(start) != Some(&b'[') {
        return Some((value_end(b, start)?, None));
    }
    let mut out = Some(Vec::new());
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&b']') {
        return Some((i + 1, out));
    }
    loop {
        if b.get(i) == Some(&b'{') {
            let mut found = [None; N];
            i = skip_ws(b, i + 1);
            if b.get(i) == Some(&b'}') {
                i += 1;
            } else {
                loop {
                    let (key, escaped, value_start) = field_key(text, i)?;
                    let value_end = value_end(b, value_start)?;
                    if escaped {
                        out = None;
                    } else if let Some(slot) = wanted.iter().position(|w| *w == key) {
                        match found.get_mut(slot) {
                            Some(f) if f.is_none() => *f = text.get(value_start..value_end),
                            _ => out = None,
                        }
                    }
                    match after_field(b, value_end)? {
                        (next, false) => i = next,
                        (end, true) => {
                            i = end;
                            break;
                        }
                    }
                }
            }
            if let Some(out) = out.as_mut() {
                out.push(found);
            }
        } else {
            i = value_end(b, i)?;
            out = None;
        }
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Some((i + 1, out)),
            _ => return None,
        }
    }
}

/// For `raw`, a JSON array, each element's top-level fields named in `wanted` as raw text.
/// `None` when `raw` is not an array of objects, a key is escaped, or a wanted key appears
/// twice in one element: the caller then decodes the array with serde.
pub fn array_object_fields<'a, const N: usize>(
    raw: &'a str,
    wanted: [&str; N],
) -> Option<ElementFields<'a, N>> {
    let b = raw.as_bytes();
    let (end, read) = array_end_reading(raw, skip_ws(b, 0), wanted)?;
    (skip_ws(b, end) == b.len()).then_some(read)?
}

/// The value of the field `key` (written without escapes) when it is the last field of the
/// object `body`, `…,"key":value}`, validated; `None` otherwise, and the caller splits the
/// whole object. An answer writes its `usage` last, after the choices: found from the end,
/// the rest of the answer is not read (a chat answer's split cost two thirds of reading its
/// usage).
///
/// Only the end is read, so the rest is not validated: an answer broken before its last field
/// still gives that field. On valid JSON it gives what [`object_fields`] gives for the last
/// field named `key` (the fuzz suite checks the two): a quote after `,` or `{` begins a string
/// (inside one, a quote is escaped), a string followed by `:` is a key, and a value followed
/// by the document's final `}` belongs to the outermost object.
pub fn last_field<'a>(body: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let at = memchr::memmem::rfind(body, key.as_bytes())?;
    let open = at.checked_sub(1)?;
    let close = at + key.len();
    if body.get(open) != Some(&b'"') || body.get(close) != Some(&b'"') {
        return None;
    }
    let before = body.get(..open)?.iter().rposition(|&c| !is_ws(c))?;
    if !matches!(body.get(before), Some(b',' | b'{')) || body.get(skip_ws(body, 0)) != Some(&b'{') {
        return None;
    }
    let colon = skip_ws(body, close + 1);
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let start = skip_ws(body, colon + 1);
    let end = value_end(body, start)?;
    let brace = skip_ws(body, end);
    (body.get(brace) == Some(&b'}') && skip_ws(body, brace + 1) == body.len())
        .then(|| body.get(start..end))?
}

/// The text of a JSON string literal without escapes (`"user"` → `user`); `None` for anything
/// else (an escaped string is left to serde).
pub fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then_some(inner)
}

/// Whether the text `s` has a byte that a JSON string literal must escape: a quote, a
/// backslash or a control byte. Sixteen bytes per compare: the IDs and names the gateway
/// writes into every request's journal line and upstream body need none, and serde's writer
/// looks each byte up in a table.
pub fn needs_escape(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        match first_special_of_16(b, i) {
            Sixteen::Plain => i += 16,
            Sixteen::At(..) => return true,
            Sixteen::Short => break,
        }
    }
    // The last few bytes, padded with spaces to sixteen.
    let mut tail = [b' '; 16];
    let rest = b.get(i..).unwrap_or_default();
    if let Some(head) = tail.get_mut(..rest.len()) {
        head.copy_from_slice(rest);
    }
    first_special_of_16(&tail, 0) != Sixteen::Plain
}

/// At a field's opening quote `i`: its key, whether the key holds escapes, and where its
/// value starts (after the colon).
fn field_key(text: &str, i: usize) -> Option<(&str, bool, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, escaped) = string_end(b, i + 1)?;
    let key = text.get(i + 1..end - 1)?;
    let i = skip_ws(b, end);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((key, escaped, skip_ws(b, i + 1)))
}

/// After a field's value ending at `i`: the next field's start and `false`, or the index past
/// the object's `}` and `true`.
fn after_field(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let i = skip_ws(b, i);
    match b.get(i)? {
        b',' => Some((skip_ws(b, i + 1), false)),
        b'}' => Some((i + 1, true)),
        _ => None,
    }
}

/// JSON's whitespace: space, newline, carriage return, tab.
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_ws(c)) {
        i += 1;
    }
    i
}

/// From just after a string's opening quote: the index just past its closing quote, and
/// whether it held escapes. Checks escapes and refuses raw control bytes, as JSON requires.
///
/// The string is read 64 bytes at a time as bit masks (quotes, backslashes, control bytes),
/// and which bytes a backslash escapes is worked out for the whole block with arithmetic
/// ([`escaped_bits`]). Agent transcripts escape every few bytes (quotes and newlines of code);
/// a loop that stopped at each escape mispredicted a branch or two per escape, and those
/// mispredictions were most of a 500 KB conversation's scan.
///
/// Most strings of a request's head and of an answer are short (keys, roles, IDs): the
/// sixteen bytes after the opening quote are looked at first, in one compare, and a string
/// that ends there before any backslash is done without a block's set-up (which cost about 140
/// instructions for each short string).
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    match first_special_of_16(b, i) {
        // No quote, backslash or control byte in the sixteen: the rest is read by blocks.
        Sixteen::Plain => block_string_end(b, i + 16),
        Sixteen::At(at, b'"') => Some((i + at + 1, false)),
        Sixteen::At(_, b'\\') | Sixteen::Short => block_string_end(b, i),
        // A raw control byte inside a string.
        Sixteen::At(..) => None,
    }
}

/// What the sixteen bytes at an index hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sixteen {
    /// No quote, backslash or control byte.
    Plain,
    /// The first of those: its offset and the byte.
    At(usize, u8),
    /// Fewer than sixteen bytes remain.
    Short,
}

/// Of the sixteen bytes at `i`, the first that is a quote, a backslash or a control byte.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn first_special_of_16(b: &[u8], i: usize) -> Sixteen {
    use safe_arch::{bitor_m128i, move_mask_i8_m128i};
    let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) else {
        return Sixteen::Short;
    };
    let [quote, backslash, control] = special_bytes(chunk);
    let special = bitor_m128i(bitor_m128i(quote, backslash), control);
    let at = move_mask_i8_m128i(special).trailing_zeros() as usize;
    chunk
        .get(at)
        .map_or(Sixteen::Plain, |&c| Sixteen::At(at, c))
}

/// The same in plain integer arithmetic, for other CPUs.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn first_special_of_16(b: &[u8], i: usize) -> Sixteen {
    first_special_of_16_swar(b, i)
}

#[cfg(any(not(all(target_arch = "x86_64", target_feature = "sse2")), test))]
fn first_special_of_16_swar(b: &[u8], i: usize) -> Sixteen {
    let Some(chunk) = b.get(i..i + 16) else {
        return Sixteen::Short;
    };
    for (k, word) in chunk.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let special = swar::zero(x ^ (swar::ONES * u64::from(b'"')))
            | swar::zero(x ^ (swar::ONES * u64::from(b'\\')))
            | swar::below(x, 0x20);
        if special != 0 {
            let at = 8 * k + special.trailing_zeros() as usize / 8;
            return chunk
                .get(at)
                .map_or(Sixteen::Plain, |&c| Sixteen::At(at, c));
        }
    }
    Sixteen::Plain
}

/// [`string_end`] by 64-byte blocks from `i`, inside the string.
fn block_string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut carry = false;
    let mut held_escapes = false;
    loop {
        let (m, len) = block_masks_at(b, i);
        let escaped = if m.backslash == 0 && !carry {
            if (m.quote | m.control) == 0 && len == 64 {
                // Prose: after one plain block the next are likely plain too, and one test
                // each passes them without building their masks (2 MB of it took 84
                // instructions a block through this loop, 49 through this).
                i = plain_blocks_from(b, i + 64);
                continue;
            }
            0
        } else {
            escaped_bits(m.backslash, &mut carry)
        };
        let quotes = m.quote & !escaped;
        // The bytes before the closing quote, or the whole block when it has none.
        let inside = (quotes & quotes.wrapping_neg()).wrapping_sub(1);
        if m.control & inside != 0 {
            return None;
        }
        let escaped_inside = escaped & inside;
        if escaped_inside != 0 {
            held_escapes = true;
            // An escaped quote or backslash is valid as it stands; only the letters need a look.
            let letters = escaped_inside & !(m.quote | m.backslash);
            if letters != 0 {
                // Code and prose escape mostly newlines and tabs: those two are found by compare
                // for the whole block, and only the rest are looked up one by one. A lookup per
                // letter, in a loop whose length varies from block to block, was a third of an
                // agent history's scan.
                let rest = letters & !newline_tab_bits(b, i);
                if rest != 0 {
                    check_escapes(b, i, rest)?;
                }
            }
        }
        if quotes != 0 {
            return Some((i + quotes.trailing_zeros() as usize + 1, held_escapes));
        }
        if len < 64 {
            return None;
        }
        i += 64;
    }
}

/// The index of the first 64-byte block from `i` that holds a quote, a backslash or a control
/// byte, or that is short (the end of `b`).
fn plain_blocks_from(b: &[u8], mut i: usize) -> usize {
    while let Some(block) = b.get(i..i + 64).and_then(|s| <&[u8; 64]>::try_from(s).ok()) {
        if !plain(block) {
            break;
        }
        i += 64;
    }
    i
}

/// Each escaped byte (`escaped`, bits of the block at `at`) is one JSON allows after a
/// backslash; `\u` takes four hex digits.
fn check_escapes(b: &[u8], at: usize, escaped: u64) -> Option<()> {
    // A table, not a `match`: the compiler made the match a jump table, an indirect branch
    // per escape.
    let mut bad = false;
    let mut unicode = false;
    let mut rest = escaped;
    while rest != 0 {
        let byte = *b.get(at + rest.trailing_zeros() as usize)?;
        let kind = ESCAPE.get(usize::from(byte)).copied().unwrap_or(0);
        bad |= kind == 0;
        unicode |= kind == 2;
        rest &= rest - 1;
    }
    if bad {
        return None;
    }
    if unicode {
        let mut rest = escaped;
        while rest != 0 {
            let i = at + rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if b.get(i) == Some(&b'u') && !b.get(i + 1..i + 5)?.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
        }
    }
    Some(())
}

/// What may follow a backslash: 1 for a one-byte escape, 2 for `u`, 0 for nothing valid.
#[expect(
    clippy::indexing_slicing,
    reason = "built at compile time, where an index out of range fails the build"
)]
static ESCAPE: [u8; 256] = {
    let mut t = [0; 256];
    let mut k = 0;
    let simple = b"\"\\/bfnrt";
    while k < simple.len() {
        t[simple[k] as usize] = 1;
        k += 1;
    }
    t[b'u' as usize] = 2;
    t
};

/// Which bytes of a block are escaped: in a run of backslashes, every second one, and the
/// byte after a run of odd length. `carry` says on entry that the block's first byte is
/// escaped (the block before ended in an odd run), and on return whether the next block's is.
fn escaped_bits(backslash: u64, carry: &mut bool) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let first = u64::from(*carry);
    // An escaped backslash starts no run.
    let bs = backslash & !first;
    let starts = bs & !(bs << 1);
    // Adding a run's lowest bit to the run clears it and carries to the byte just after it.
    // In a run that starts on an even bit, the odd bits are escaped (the byte after it
    // included); in one that starts on an odd bit, the even bits. A run that ends the block
    // carries out of it, and escapes the next block's first byte when it started on an odd bit.
    let (after_even, _) = bs.overflowing_add(starts & EVEN);
    let (after_odd, out) = bs.overflowing_add(starts & !EVEN);
    *carry = out;
    // What the additions changed: each run's bits, and the byte after it.
    ((bs ^ after_even) & !EVEN) | ((bs ^ after_odd) & EVEN) | first
}

/// A block's quotes, backslashes and control bytes (below 0x20), one bit per byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    control: u64,
}

impl Masks {
    /// A plain block's: none of the three.
    const NONE: Self = Self {
        quote: 0,
        backslash: 0,
        control: 0,
    };
}

/// `read` of the 64 bytes at `i` (fewer at the end of `b`: the rest count as spaces), and how
/// many bytes were there.
#[inline]
fn read_block<T>(b: &[u8], i: usize, read: impl FnOnce(&[u8; 64]) -> T) -> (T, usize) {
    if let Some(block) = b.get(i..i + 64).and_then(|s| <&[u8; 64]>::try_from(s).ok()) {
        return (read(block), 64);
    }
    let rest = b.get(i..).unwrap_or_default();
    let mut block = [b' '; 64];
    if let Some(head) = block.get_mut(..rest.len()) {
        head.copy_from_slice(rest);
    }
    (read(&block), rest.len())
}

/// The masks of the 64 bytes at `i` ([`read_block`]), and how many bytes were there.
fn block_masks_at(b: &[u8], i: usize) -> (Masks, usize) {
    read_block(b, i, block_masks)
}

/// The bytes `n` and `t` of the 64 at `i` ([`read_block`]), one bit per byte.
fn newline_tab_bits(b: &[u8], i: usize) -> u64 {
    read_block(b, i, block_bits_n_t).0
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn block_bits_n_t(block: &[u8; 64]) -> u64 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let mut bits = 0;
    for (k, chunk) in block
        .chunks_exact(16)
        .filter_map(|c| <&[u8; 16]>::try_from(c).ok())
        .enumerate()
    {
        let v = load_unaligned_m128i(chunk);
        let nt = bitor_m128i(
            cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(0x6e)),
            cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(0x74)),
        );
        bits |= u64::from(move_mask_i8_m128i(nt).unsigned_abs()) << (16 * k);
    }
    bits
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn block_bits_n_t(block: &[u8; 64]) -> u64 {
    block_bits_n_t_swar(block)
}

/// [`block_bits_n_t`] in plain integer arithmetic, for other CPUs.
#[cfg(any(not(all(target_arch = "x86_64", target_feature = "sse2")), test))]
fn block_bits_n_t_swar(block: &[u8; 64]) -> u64 {
    use swar::{ONES, pack, zero};
    let mut bits = 0;
    for (k, word) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        bits |= pack(zero(x ^ (ONES * u64::from(b'n'))) | zero(x ^ (ONES * u64::from(b't'))))
            << (8 * k);
    }
    bits
}

/// SSE2, which every x86-64 CPU has: sixteen bytes per compare.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn block_masks(block: &[u8; 64]) -> Masks {
    use safe_arch::{bitor_m128i, move_mask_i8_m128i, set_splat_i8_m128i};
    // The mask of sixteen bytes is sixteen bits: never negative.
    let bits = |v| u64::from(move_mask_i8_m128i(v).unsigned_abs());
    let chunks = block
        .chunks_exact(16)
        .filter_map(|c| <&[u8; 16]>::try_from(c).ok());
    let mut found = [[set_splat_i8_m128i(0); 3]; 4];
    let mut any = set_splat_i8_m128i(0);
    let mut any_control = set_splat_i8_m128i(0);
    for (f, chunk) in found.iter_mut().zip(chunks) {
        *f = special_bytes(chunk);
        any = bitor_m128i(any, bitor_m128i(f[0], f[1]));
        any_control = bitor_m128i(any_control, f[2]);
    }
    let mut m = Masks::NONE;
    // Most blocks of a long plain string have none of the three: one mask extraction, not twelve.
    let control = move_mask_i8_m128i(any_control) != 0;
    if !control && move_mask_i8_m128i(any) == 0 {
        return m;
    }
    for (k, [q, bs, _]) in found.iter().enumerate() {
        let shift = 16 * k;
        m.quote |= bits(*q) << shift;
        m.backslash |= bits(*bs) << shift;
    }
    // A raw control byte is an error inside a string and rare between values: its four
    // extractions are left out of the blocks that have none.
    if control {
        for (k, [_, _, ctl]) in found.iter().enumerate() {
            m.control |= bits(*ctl) << (16 * k);
        }
    }
    m
}

/// Whether a block holds none of a quote, a backslash or a control byte: [`block_masks`]
/// without building the masks, one test for the 64 bytes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn plain(block: &[u8; 64]) -> bool {
    use safe_arch::{bitor_m128i, move_mask_i8_m128i, set_splat_i8_m128i};
    let mut any = set_splat_i8_m128i(0);
    for chunk in block
        .chunks_exact(16)
        .filter_map(|c| <&[u8; 16]>::try_from(c).ok())
    {
        let [quote, backslash, control] = special_bytes(chunk);
        any = bitor_m128i(any, bitor_m128i(quote, bitor_m128i(backslash, control)));
    }
    move_mask_i8_m128i(any) == 0
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn plain(block: &[u8; 64]) -> bool {
    block_masks_swar(block) == Masks::NONE
}

/// The quotes, backslashes and control bytes of sixteen bytes, each a byte mask: what both
/// the first look at a string and the 64-byte blocks compare.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn special_bytes(chunk: &[u8; 16]) -> [safe_arch::m128i; 3] {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, set_splat_i8_m128i};
    let v = load_unaligned_m128i(chunk);
    [
        cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(0x22)),
        cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(0x5c)),
        // A byte is below 0x20 when the lesser of it and 0x1f is itself.
        cmp_eq_mask_i8_m128i(min_u8_m128i(v, set_splat_i8_m128i(0x1f)), v),
    ]
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn block_masks(block: &[u8; 64]) -> Masks {
    block_masks_swar(block)
}

/// The same masks eight bytes at a time in plain integer arithmetic, for other CPUs.
#[cfg(any(not(all(target_arch = "x86_64", target_feature = "sse2")), test))]
fn block_masks_swar(block: &[u8; 64]) -> Masks {
    use swar::{ONES, below, pack, zero};
    let mut m = Masks::NONE;
    for (k, word) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let shift = 8 * k;
        m.quote |= pack(zero(x ^ (ONES * u64::from(b'"')))) << shift;
        m.backslash |= pack(zero(x ^ (ONES * u64::from(b'\\')))) << shift;
        m.control |= pack(below(x, 0x20)) << shift;
    }
    m
}

/// Byte tests on a 64-bit word: each answers with the high bit of every byte that passes,
/// exactly (no borrow between bytes).
#[cfg(any(not(all(target_arch = "x86_64", target_feature = "sse2")), test))]
mod swar {
    pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// The bytes that are zero.
    pub(super) fn zero(v: u64) -> u64 {
        !(((v & LOW7) + LOW7) | v) & HIGH
    }

    /// The bytes below `n` (at most 0x80).
    pub(super) fn below(v: u64, n: u8) -> u64 {
        !(((v & LOW7) + ONES * u64::from(0x80 - n)) | v) & HIGH
    }

    /// The high bits of a byte test's answer, gathered into the low eight bits.
    pub(super) fn pack(h: u64) -> u64 {
        ((h >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }
}

/// The index just past the JSON value starting at `i`, validated (nesting kept on a stack, so
/// depth is unbounded as in serde_json's skipping of raw values).
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut stack = Nesting::default();
    loop {
        // A value at `i`.
        match *b.get(i)? {
            b'"' => i = string_end(b, i + 1)?.0,
            b'{' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    stack.push(true);
                    i = object_key(b, i)?;
                    continue;
                }
            }
            b'[' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(false);
                    continue;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number_end(b, i)?,
            _ => return None,
        }
        // After a value: close containers, or move to the next element or field.
        loop {
            let Some(object) = stack.last() else {
                return Some(i);
            };
            i = skip_ws(b, i);
            match (b.get(i)?, object) {
                (b',', true) => {
                    i = object_key(b, skip_ws(b, i + 1))?;
                    break;
                }
                (b',', false) => {
                    i = skip_ws(b, i + 1);
                    break;
                }
                (b'}', true) | (b']', false) => {
                    stack.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// The containers open around a value, as bits (1 for an object), the innermost lowest. The
/// first 64 levels live in one word: a `Vec` allocated (and freed) for every nested value
/// skipped, the choices of every answer among them.
#[derive(Default)]
struct Nesting {
    inner: u64,
    depth: usize,
    /// Full words of outer levels, beyond 64.
    outer: Vec<u64>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth % 64 == 0 {
            self.outer.push(self.inner);
            self.inner = 0;
        }
        self.inner = (self.inner << 1) | u64::from(object);
        self.depth += 1;
    }

    /// Whether the innermost open container is an object; `None` at the top level.
    fn last(&self) -> Option<bool> {
        (self.depth > 0).then_some(self.inner & 1 == 1)
    }

    fn pop(&mut self) {
        if self.depth == 0 {
            return;
        }
        self.depth -= 1;
        self.inner >>= 1;
        if self.depth > 0 && self.depth % 64 == 0 {
            self.inner = self.outer.pop().unwrap_or(0);
        }
    }
}

/// At an object key: the index of the value after `"key":`.
fn object_key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, _) = string_end(b, i + 1)?;
    let i = skip_ws(b, end);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(skip_ws(b, i + 1))
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// A number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| {
        let mut j = i;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        (j > i).then_some(j)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn strings_of_every_length_are_checked_byte_for_byte() {
        for len in [0, 7, 8, 63, 64, 65, 71, 72, 100, 1000, 5000] {
            let plain = "a".repeat(len);
            for (at, bad, ok) in [
                (None, "", true),
                (Some(len / 2), "\u{1}", false),
                (Some(len), "\n", false),
                (Some(len / 3), "\\n", true),
                (Some(len / 3), "\\q", false),
                (Some(len.saturating_sub(1)), "\\\"", true),
                (Some(len / 2), "\u{1f}", false),
                (Some(len / 2), " ", true),
            ] {
                let mut text = plain.clone();
                if let Some(at) = at {
                    text.insert_str(at, bad);
                }
                let body = format!(r#"{{"content":"{text}","n":1}}"#);
                let fast = object_fields(body.as_bytes()).is_some();
                let serde = serde_json::from_str::<serde_json::Value>(&body).is_ok();
                assert_eq!(fast, ok, "{len} {bad:?}");
                assert_eq!(fast, serde, "{len} {bad:?}");
            }
        }
    }

    #[test]
    fn the_last_field_is_read_from_the_end_and_only_when_it_is_last_at_the_top() {
        let usage = br#"{"prompt_tokens":12,"completion_tokens":2}"#;
        let answer = br#"{"id":"c","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":2}}"#;
        assert_eq!(last_field(answer, "usage"), Some(&usage[..]));
        let spaced = b" {\n \"usage\" :\t{\"prompt_tokens\":12,\"completion_tokens\":2} \n} \n";
        assert_eq!(last_field(spaced, "usage"), Some(&usage[..]));
        assert_eq!(
            last_field(br#"{"usage":null}"#, "usage"),
            Some(&b"null"[..])
        );
        for (body, why) in [
            (&br#"{"usage":{"a":1},"model":"m"}"#[..], "not last"),
            (br#"{"a":{"usage":{"b":1}}}"#, "nested in an object"),
            (br#"{"a":[{"usage":{"b":1}}]}"#, "nested in an array"),
            (br#"{"a":["x","usage"]}"#, "an array's string"),
            (br#"{"a":"x\",\"usage\":{}"}"#, "inside a string"),
            (br#"{"a":"x\"usage":1}"#, "after an escaped quote: not JSON"),
            (br#"{"usage":{"a":1}"#, "no closing brace"),
            (br#"{"usage":{"a":1}}}"#, "a brace too many"),
            (br#"{"usage":{"a":1}} x"#, "text after the object"),
            (br#"{"usage":{"a":"#, "cut short"),
            (br#"{"usage":{"a":01}}"#, "an invalid value"),
            (br#"["usage",{"usage":1}]"#, "not an object"),
            (br#"{"xusage":{"a":1}}"#, "another key ending alike"),
            (b"", "empty"),
        ] {
            assert_eq!(last_field(body, "usage"), None, "{why}");
        }
        // Where it says no, the whole object decides: the same value when the field is there.
        let not_last = br#"{"usage":{"a":1},"model":"m"}"#;
        let fields = object_fields(not_last).unwrap_or_default();
        assert_eq!(fields.first().map(|(_, v)| *v), Some(r#"{"a":1}"#));
    }

    /// The escaped bytes of `text`, one bit per byte, by walking it byte by byte.
    fn escaped_by_walking(text: &[u8]) -> Vec<bool> {
        let mut out = vec![false; text.len()];
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'\\' && i + 1 < text.len() {
                out[i + 1] = true;
                i += 2;
            } else {
                i += 1;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaped_bits_of_blocks_match_a_walk(
            text in proptest::collection::vec(proptest::sample::select(b"\\\\\\\"ab".to_vec()), 0..300),
        ) {
            let want = escaped_by_walking(&text);
            let mut carry = false;
            for (k, block) in text.chunks(64).enumerate() {
                let backslash = block
                    .iter()
                    .enumerate()
                    .fold(0u64, |m, (j, &c)| m | (u64::from(c == b'\\') << j));
                let bits = escaped_bits(backslash, &mut carry);
                for j in 0..block.len() {
                    proptest::prop_assert_eq!(bits >> j & 1 == 1, want[64 * k + j], "byte {}", 64 * k + j);
                }
            }
        }

        #[test]
        fn block_masks_agree_with_the_integer_version(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![proptest::sample::select(b"\"\\\x00\x1f\x20\x7f\x80\xff\xa2\xdc".to_vec()), proptest::num::u8::ANY],
                64,
            ),
        ) {
            let block: [u8; 64] = bytes.try_into().unwrap_or([0; 64]);
            let want = Masks {
                quote: block.iter().enumerate().fold(0, |m, (j, &c)| m | (u64::from(c == b'"') << j)),
                backslash: block.iter().enumerate().fold(0, |m, (j, &c)| m | (u64::from(c == b'\\') << j)),
                control: block.iter().enumerate().fold(0, |m, (j, &c)| m | (u64::from(c < 0x20) << j)),
            };
            proptest::prop_assert_eq!(block_masks(&block), want);
            proptest::prop_assert_eq!(block_masks_swar(&block), want);
            proptest::prop_assert_eq!(plain(&block), want == Masks::NONE);
        }

        #[test]
        fn newlines_and_tabs_are_found_as_a_walk_finds_them(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![proptest::sample::select(b"ntNT\\\"u/\xee\xf4".to_vec()), proptest::num::u8::ANY],
                0..140,
            ),
            at in 0usize..80,
        ) {
            let want = bytes
                .iter()
                .skip(at)
                .take(64)
                .enumerate()
                .fold(0u64, |m, (j, &c)| m | (u64::from(c == b'n' || c == b't') << j));
            proptest::prop_assert_eq!(newline_tab_bits(&bytes, at), want);
            if let Some(block) = bytes.get(at..at + 64).and_then(|s| <&[u8; 64]>::try_from(s).ok()) {
                proptest::prop_assert_eq!(block_bits_n_t_swar(block), want);
            }
        }

        #[test]
        fn a_block_is_plain_unless_one_byte_is_special(
            text in proptest::collection::vec(0x20u8..=0xff, 64),
            at in 0usize..80,
            special in proptest::sample::select(b"\"\\\x00\x1f".to_vec()),
        ) {
            let mut block: [u8; 64] = text.try_into().unwrap_or([b' '; 64]);
            for c in &mut block {
                if *c == b'"' || *c == b'\\' {
                    *c = b'a';
                }
            }
            if let Some(c) = block.get_mut(at) {
                *c = special;
            }
            proptest::prop_assert_eq!(plain(&block), at >= 64);
            proptest::prop_assert_eq!(plain(&block), block_masks(&block) == Masks::NONE);
        }

        #[test]
        fn nesting_follows_a_stack(
            // Three pushes to a pop: the depth passes 64 and 128 and comes back.
            ops in proptest::collection::vec(
                proptest::prop_oneof![
                    3 => proptest::bool::ANY.prop_map(Some),
                    1 => proptest::strategy::Just(None),
                ],
                0..600,
            ),
        ) {
            let (mut bits, mut model) = (Nesting::default(), Vec::new());
            for op in ops {
                if let Some(object) = op {
                    bits.push(object);
                    model.push(object);
                } else {
                    bits.pop();
                    model.pop();
                }
                proptest::prop_assert_eq!(bits.last(), model.last().copied());
            }
        }

        #[test]
        fn the_first_special_byte_of_16_agrees_with_the_integer_version(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0x20u8..0x7f,
                    1 => proptest::sample::select(b"\"\\\x00\x1f\x20\x7f\x80\xff\xa2\xdc".to_vec()),
                ],
                0..40,
            ),
            at in 0usize..24,
        ) {
            let want = bytes.get(at..at + 16).map_or(Sixteen::Short, |chunk| {
                chunk
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                    .and_then(|k| chunk.get(k).map(|&c| Sixteen::At(k, c)))
                    .unwrap_or(Sixteen::Plain)
            });
            proptest::prop_assert_eq!(first_special_of_16(&bytes, at), want);
            proptest::prop_assert_eq!(first_special_of_16_swar(&bytes, at), want);
        }
    }

    #[test]
    fn escapes_across_block_edges_are_read_as_serde_reads_them() {
        // Runs of backslashes and escapes placed on and around each 64-byte edge of a string,
        // and around the sixteen bytes a short string is first read in.
        for len in [
            0, 1, 14, 15, 16, 17, 18, 60, 62, 63, 64, 65, 66, 126, 127, 128, 129, 200,
        ] {
            for at in [0, 1, 14, 15, 16, 17, 61, 62, 63, 64, 65, 126, 127, 128] {
                for piece in [
                    "\\\"",
                    "\\\\",
                    "\\\\\\\"",
                    "\\\\\\\\",
                    "\\u00e9",
                    "\\u00g9",
                    "\\\\\"",
                    "\"",
                    "\\",
                    "\\\\\\",
                    "\u{1}",
                    "\\n\\t",
                    // A bad escape, or a short `\u`, among the newlines and tabs found by compare.
                    "\\n\\q\\t",
                    "\\t\\n\\u12\\n",
                    "\\n\\r\\b\\f\\/\\u0041\\t",
                    "\\N\\T",
                ] {
                    let mut text = "x".repeat(len);
                    text.insert_str(at.min(len), piece);
                    let body = format!(r#"{{"a":"{text}","b":"\\\\","c":1}}"#);
                    let fast = object_fields(body.as_bytes()).map(|f| f.len());
                    let serde =
                        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&body)
                            .ok()
                            .map(|m| m.len());
                    assert_eq!(fast, serde, "{body}");
                }
            }
            // A key whose only escape is an escaped backslash is still left to serde.
            let key = format!(
                "{}\\\\{}",
                "k".repeat(len.min(62)),
                "k".repeat(len - len.min(62))
            );
            let body = format!(r#"{{"{key}":1}}"#);
            assert!(object_fields(body.as_bytes()).is_none(), "{body}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "{body}"
            );
        }
    }

    #[test]
    fn message_fields_are_read_in_the_splitting_pass_as_a_second_pass_reads_them() {
        let cases: [&str; 9] = [
            r#"{"model":"m","messages":[{"role":"user","content":"a \"q\" b"},{"content":[1,{"x":"]"}],"role":"assistant"}]}"#,
            r#"{"messages":[{"role":"user"}],"messages":[{"role":"system","content":null}]}"#,
            r#"{"messages":[{"role":"user","role":"user"}]}"#,
            r#"{"messages":[{"r\u006fle":"user"}]}"#,
            r#"{"messages":[{"role":"user"}, 3]}"#,
            r#"{"messages":[ ] , "model" : "m" }"#,
            r#"{"messages":{"role":"user"}}"#,
            r#"{"model":"m"}"#,
            r#"{ "messages" : [ { "role" : "user" , "content" : [ ] } ] }"#,
        ];
        for body in cases {
            let (fields, read) =
                object_fields_reading(body.as_bytes(), Some(("messages", ["role", "content"])))
                    .unwrap();
            assert_eq!(
                Some(&fields),
                object_fields(body.as_bytes()).as_ref(),
                "{body}"
            );
            let last = fields
                .iter()
                .rev()
                .find(|(k, _)| k == "messages")
                .map(|(_, v)| *v);
            let two = last.and_then(|raw| array_object_fields(raw, ["role", "content"]));
            assert_eq!(read, two, "{body}");
        }
        // The first case is read whole; an invalid body is refused as the split refuses it.
        let (_, read) =
            object_fields_reading(cases[0].as_bytes(), Some(("messages", ["role"]))).unwrap();
        assert_eq!(
            read,
            Some(vec![[Some(r#""user""#)], [Some(r#""assistant""#)]])
        );
        let bad = r#"{"messages":[{"role":"user","content":"a\x"}]}"#;
        assert!(object_fields_reading(bad.as_bytes(), Some(("messages", ["role"]))).is_none());
        assert!(object_fields(bad.as_bytes()).is_none());
    }

    #[test]
    fn needs_escape_agrees_with_serde() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 40] {
            for at in [None, Some(0), Some(len / 2), Some(len.saturating_sub(1))] {
                for bad in ['"', '\\', '\u{1}', '\n', '\u{1f}', ' ', '\u{7f}', 'é'] {
                    let mut text: Vec<char> = "abcdefghij".chars().cycle().take(len).collect();
                    if let Some(at) = at.filter(|_| len > 0) {
                        text[at] = bad;
                    }
                    let text: String = text.into_iter().collect();
                    let plain = serde_json::to_string(&text).unwrap() == format!("\"{text}\"");
                    assert_eq!(needs_escape(&text), !plain, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn splits_objects_and_refuses_what_json_refuses() {
        let f = object_fields(br#" {"a": [1, {"b": "x\"y"}], "c":-0.5e+3 ,"d":{}} "#).unwrap();
        let got: Vec<_> = f.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        assert_eq!(
            got,
            [
                ("a", r#"[1, {"b": "x\"y"}]"#),
                ("c", "-0.5e+3"),
                ("d", "{}")
            ]
        );
        for bad in [
            &b"[]"[..],
            b"{",
            b"{\"a\":01}",
            b"{\"a\":1.}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":[1,]}",
            b"{\"a\":tru}",
            b"{\"a\":1} x",
            b"{\"a\":\"\xff\"}",
            b"{\"a\" 1}",
        ] {
            assert!(
                object_fields(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn reads_fields_of_array_elements() {
        let got = array_object_fields(
            r#"[{"role":"user","content":"hi"},{"content":null,"x":[{"role":1}]}]"#,
            ["role", "content"],
        )
        .unwrap();
        assert_eq!(
            got,
            [[Some("\"user\""), Some("\"hi\"")], [None, Some("null")]]
        );
        assert_eq!(
            array_object_fields(
                r#"[{"n":1,"role":"tool","content":null}, {"role":true}]"#,
                ["role"]
            ),
            Some(vec![[Some("\"tool\"")], [Some("true")]])
        );
        assert!(array_object_fields(r#"[["user"]]"#, ["role"]).is_none());
        assert!(array_object_fields(r#"[{"role":"a","role":"b"}]"#, ["role"]).is_none());
        assert_eq!(plain_string("\"user\""), Some("user"));
        assert_eq!(plain_string("\"us\\u0065r\""), None);
    }
}
