//! Embeddings: the canonical embedding request and answer, and the codecs of the two wire
//! formats that have them, OpenAI `POST /v1/embeddings` ([`openai`]) and Gemini
//! `:embedContent` / `:batchEmbedContents` ([`gemini`]). Facts: `shared/protocols/embeddings.md`.
//!
//! The canonical request keeps one [`Item`] per input, in order; an answer keeps one vector per
//! item, in the same order. Vectors are `f64` as JSON carries them; base64 packing (OpenAI's
//! little-endian `f32`) is applied only when an OpenAI client asked for it.

pub mod gemini;
pub mod openai;
#[cfg(test)]
mod tests;

/// Most inputs one OpenAI request may carry.
pub const OPENAI_MAX_INPUTS: usize = 2048;
/// Most requests one Gemini `batchEmbedContents` call may carry.
pub const GEMINI_MAX_BATCH: usize = 100;

/// One input to embed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Text (a Gemini content's text parts joined by newlines).
    Text(String),
    /// Token ids of the client's tokenizer (OpenAI only; Gemini cannot take them).
    Tokens(Vec<u64>),
}

impl Input {
    /// Estimated tokens: one per token id, or about four characters a token (at least 1).
    pub fn estimate_tokens(&self) -> u64 {
        match self {
            Self::Text(t) => u64::try_from(t.chars().count().div_ceil(4))
                .unwrap_or(u64::MAX)
                .max(1),
            Self::Tokens(ids) => u64::try_from(ids.len()).unwrap_or(u64::MAX),
        }
    }
}

/// One input with the Gemini-only hints that came with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// What to embed.
    pub input: Input,
    /// Gemini `taskType` (`RETRIEVAL_QUERY`, …); no OpenAI counterpart.
    pub task_type: Option<String>,
    /// Gemini `title` (for `RETRIEVAL_DOCUMENT`); no OpenAI counterpart.
    pub title: Option<String>,
    /// Requested vector length (OpenAI `dimensions`, Gemini `outputDimensionality`).
    pub dimensions: Option<u32>,
    /// The input had parts other than text (images, files): only a Gemini upstream can take it.
    pub non_text: bool,
}

impl Item {
    /// A text item with no hints.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            input: Input::Text(text.into()),
            task_type: None,
            title: None,
            dimensions: None,
            non_text: false,
        }
    }
}

/// How an OpenAI client wants vectors written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// JSON numbers (the API's default).
    #[default]
    Float,
    /// Standard base64 of the little-endian `f32` bytes.
    Base64,
}

/// A canonical embedding request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedRequest {
    /// The model asked for.
    pub model: String,
    /// The inputs, in order.
    pub items: Vec<Item>,
    /// How the answer's vectors are written (OpenAI clients).
    pub encoding: Encoding,
}

impl EmbedRequest {
    /// The input tokens estimated from the inputs (see [`Input::estimate_tokens`]).
    pub fn estimate_tokens(&self) -> u64 {
        self.items.iter().map(|i| i.input.estimate_tokens()).sum()
    }

    /// Whether any input is token ids.
    pub fn has_tokens(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.input, Input::Tokens(_)))
    }

    /// The one vector length all items ask for, `None` when none does; `Err` when they differ
    /// (an OpenAI request has one `dimensions`).
    pub fn dimensions(&self) -> Result<Option<u32>, crate::DecodeError> {
        let first = self.items.first().and_then(|i| i.dimensions);
        if self.items.iter().any(|i| i.dimensions != first) {
            return Err(crate::DecodeError::field(
                "outputDimensionality",
                "every request of the batch must ask for the same outputDimensionality for this model",
            ));
        }
        Ok(first)
    }
}

/// A canonical embedding answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbedResponse {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f64>>,
    /// Input tokens the upstream reported (Gemini reports none).
    pub prompt_tokens: Option<u64>,
}

/// A vector length as JSON gives it: a positive integer that fits a `u32`.
pub(crate) fn positive_u32(v: &serde_json::Value) -> Option<u32> {
    v.as_u64()
        .filter(|d| *d >= 1)
        .and_then(|d| u32::try_from(d).ok())
}

/// Scales `v` to unit length (OpenAI's vectors are unit vectors; a Gemini vector shortened by
/// `outputDimensionality` is not). A zero vector stays as it is.
pub fn l2_normalize(v: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A vector as OpenAI's base64: each value as a little-endian `f32`, concatenated, in standard
/// base64 with padding.
pub fn encode_base64(v: &[f64]) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "f32 is the wire format's precision"
    )]
    let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n];
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(
                    BASE64
                        .get(usize::try_from(s & 63).unwrap_or(0))
                        .copied()
                        .unwrap_or(b'A'),
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`encode_base64`]: `None` when the text is not base64 of whole `f32`s.
pub fn decode_base64(s: &str) -> Option<Vec<f64>> {
    let mut bytes = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.trim_end_matches('=').bytes() {
        let v = u32::try_from(BASE64.iter().position(|&b| b == c)?).ok()?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| {
                let arr = [
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                    c.get(2).copied().unwrap_or(0),
                    c.get(3).copied().unwrap_or(0),
                ];
                f64::from(f32::from_le_bytes(arr))
            })
            .collect(),
    )
}

/// Normalises every vector of `resp` when `req` asked for a shorter vector: OpenAI's shortened
/// vectors are unit vectors, a Gemini upstream's are not (`gemini-embedding-001` normalises
/// only its full length). Unit vectors are unchanged, so this is safe for any upstream.
pub fn normalize_shortened(req: &EmbedRequest, resp: &mut EmbedResponse) {
    if req.items.iter().any(|i| i.dimensions.is_some()) {
        for v in &mut resp.vectors {
            l2_normalize(v);
        }
    }
}
