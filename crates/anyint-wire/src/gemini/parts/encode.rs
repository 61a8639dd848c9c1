//! Canonical parts → Gemini parts: each thought signature on the part it belongs to and only
//! where it may go (a client sees every reasoning part; an upstream only Gemini-signed ones),
//! plus the builders for function calls and image parts.

use serde_json::{Map, Value, json};

use crate::canonical::signature::{self as sigs, Origin};
use crate::canonical::{ImageSource, Part};

/// Builds Gemini parts from canonical ones, putting each pending thought signature on the part
/// that follows it.
#[derive(Debug, Default)]
pub(in crate::gemini) struct PartsWriter {
    out: Vec<Value>,
    /// A signature from an empty reasoning part, for the next part written.
    signature: Option<String>,
    /// Request mode: the signature of the thought part just written (at this index of `out`).
    /// A function call written right after takes it (where Gemini put it); anything else
    /// gives it back to the thought part.
    held: Option<(usize, String)>,
    /// Response mode (a Gemini client): unsigned reasoning is shown as thought parts and
    /// other providers' signatures are written tagged. Request mode (a Gemini upstream) drops
    /// unsigned reasoning and reasoning other providers signed.
    client: bool,
}

impl PartsWriter {
    /// A writer for an upstream request: unsigned reasoning is dropped.
    pub(in crate::gemini) fn request() -> Self {
        Self::default()
    }

    /// A writer for a client response: every reasoning part is shown.
    pub(in crate::gemini) fn response() -> Self {
        Self {
            client: true,
            ..Self::default()
        }
    }

    /// Appends a part, giving it the pending signature.
    pub(in crate::gemini) fn push(&mut self, mut part: Map<String, Value>) {
        if let Some((at, sig)) = self.held.take() {
            if part.contains_key("functionCall") {
                part.insert("thoughtSignature".into(), sig.into());
                self.out.push(Value::Object(part));
                return;
            }
            self.sign(at, sig);
        }
        if let Some(sig) = self.signature.take() {
            part.insert("thoughtSignature".into(), sig.into());
        }
        self.out.push(Value::Object(part));
    }

    /// Puts a held signature back on its thought part.
    fn settle(&mut self) {
        if let Some((at, sig)) = self.held.take() {
            self.sign(at, sig);
        }
    }

    fn sign(&mut self, at: usize, sig: String) {
        if let Some(Value::Object(part)) = self.out.get_mut(at) {
            part.insert("thoughtSignature".into(), sig.into());
        }
    }

    /// Appends a thought part that carries its own signature (held for a following function
    /// call in request mode).
    fn push_signed(&mut self, mut part: Map<String, Value>, sig: String) {
        self.flush_signature();
        if self.client {
            part.insert("thoughtSignature".into(), sig.into());
        } else {
            self.held = Some((self.out.len(), sig));
        }
        self.out.push(Value::Object(part));
    }

    /// Writes a pending signature that no part followed as an empty thought part.
    fn flush_signature(&mut self) {
        self.settle();
        if let Some(sig) = self.signature.take() {
            let mut part = thought("");
            part.insert("thoughtSignature".into(), sig.into());
            self.out.push(Value::Object(part));
        }
    }

    /// A canonical signature as this writer's reader may receive it: for a client, Gemini's
    /// untagged and others tagged; for an upstream, Gemini's only.
    fn wire_signature(&self, sig: &str) -> Option<String> {
        if self.client {
            Some(sigs::for_client(Origin::Gemini, sig).to_owned())
        } else {
            sigs::for_upstream(Origin::Gemini, sig).map(str::to_owned)
        }
    }

    /// Appends a canonical part. Tool results are the caller's business and are skipped here.
    pub(in crate::gemini) fn part(&mut self, part: &Part) {
        match part {
            Part::Text { text, .. } => {
                if !text.is_empty() {
                    self.push(obj(json!({"text": text})));
                }
            }
            Part::Image { source, .. } => self.push(image_part(source)),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => self.push(function_call(id, name, arguments)),
            Part::Reasoning {
                text, signature, ..
            } => self.reasoning(text, signature.as_deref()),
            Part::ToolResult { .. } => {}
        }
    }

    /// Appends reasoning: signed text as a signed thought part, an empty signed part as a
    /// signature for the next part, unsigned text only in response mode. In request mode,
    /// reasoning signed by another provider counts as unsigned (Gemini could not verify it),
    /// and the signature of thought text directly followed by a function call goes on the call.
    pub(in crate::gemini) fn reasoning(&mut self, text: &str, signature: Option<&str>) {
        match signature.and_then(|s| self.wire_signature(s)) {
            Some(sig) if text.is_empty() => {
                self.flush_signature();
                self.signature = Some(sig);
            }
            Some(sig) => self.push_signed(thought(text), sig),
            None if self.client && !text.is_empty() => self.push(thought(text)),
            None => {}
        }
    }

    /// Whether nothing has been written (a pending signature counts as something).
    pub(in crate::gemini) fn is_empty(&self) -> bool {
        self.out.is_empty() && self.signature.is_none()
    }

    /// The parts written, a dangling signature included.
    pub(in crate::gemini) fn finish(mut self) -> Vec<Value> {
        self.flush_signature();
        self.out
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn thought(text: &str) -> Map<String, Value> {
    obj(json!({"text": text, "thought": true}))
}

/// `{"functionCall":{name, args, id}}`; the id is left out when empty.
pub(in crate::gemini) fn function_call(
    id: &str,
    name: &str,
    arguments: &str,
) -> Map<String, Value> {
    let mut call = obj(json!({"name": name, "args": args_object(arguments)}));
    if !id.is_empty() {
        call.insert("id".into(), id.into());
    }
    obj(json!({"functionCall": call}))
}

/// Tool call arguments as the JSON object Gemini requires: empty text is `{}`, anything that
/// is not an object is wrapped as `{"_raw": text}`.
pub(super) fn args_object(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"_raw": arguments}),
    }
}

/// `inlineData` for bytes and `data:` URLs, `fileData` for other URLs.
pub(in crate::gemini) fn image_part(source: &ImageSource) -> Map<String, Value> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            obj(json!({"inlineData": {"mimeType": media_type, "data": data}}))
        }
        ImageSource::Url(url) => match parse_data_url(url) {
            Some((mime, data)) => obj(json!({"inlineData": {"mimeType": mime, "data": data}})),
            None => obj(json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}})),
        },
    }
}

/// `data:<mime>;base64,<data>` → (mime, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (header, data) = rest.split_once(',')?;
    let mime = header.strip_suffix(";base64")?;
    Some((if mime.is_empty() { "image/jpeg" } else { mime }, data))
}

/// The image MIME type for a URL's extension; `image/jpeg` when unknown.
fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        _ => "image/jpeg",
    }
}
