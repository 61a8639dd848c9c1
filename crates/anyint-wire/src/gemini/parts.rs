//! Gemini `Part` ⇄ canonical [`Part`], shared by the request, response and stream codecs.
//!
//! Decoding keeps the function-call bookkeeping (synthesized ids, matching responses to calls
//! by name) and tags the thought signatures it reads as Gemini's (see
//! [`crate::canonical::signature`]); encoding keeps thought signatures on the part they belong
//! to, and sends each only where it may go.

use serde_json::{Map, Value, json};

use super::fields::{get, get_obj, get_str};
use crate::canonical::signature::{self as sigs, Origin};
use crate::canonical::{ImageSource, Part};

/// The part kinds that carry data; a part holds exactly one of them.
const DATA_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

/// One decoded Gemini part.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    /// Canonical parts, in order (a signature carrier may precede the part itself).
    pub(super) parts: Vec<Part>,
    /// Content with no canonical home, for `extra`: its key and value.
    pub(super) unsupported: Option<(&'static str, Value)>,
}

/// Converts Gemini parts to canonical ones, across a whole conversation or response.
#[derive(Debug)]
pub(super) struct PartsDecoder {
    /// Inserted into synthesized call ids: `call_<prefix><n>`.
    id_prefix: String,
    /// Request mode: malformed parts are errors. Response mode: they are skipped.
    strict: bool,
    calls: usize,
    /// Calls not yet answered by a function response: (name, id), oldest first.
    open: Vec<(String, String)>,
}

impl PartsDecoder {
    /// A decoder for a client request: malformed parts are errors; ids are `call_<n>`.
    pub(super) fn request() -> Self {
        Self {
            id_prefix: String::new(),
            strict: true,
            calls: 0,
            open: Vec::new(),
        }
    }

    /// A decoder for an upstream response: malformed parts are skipped; ids are
    /// `call_<responseId>_<n>` so ids from different turns differ.
    pub(super) fn response(response_id: &str) -> Self {
        let safe: String = response_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        Self {
            id_prefix: if safe.is_empty() {
                safe
            } else {
                format!("{safe}_")
            },
            strict: false,
            calls: 0,
            open: Vec::new(),
        }
    }

    /// Decodes one part. The error is a message to prefix with the part's location.
    pub(super) fn decode(&mut self, part: &Value) -> Result<Decoded, String> {
        let Some(obj) = part.as_object() else {
            return Err("must be an object".into());
        };
        let present: Vec<&str> = DATA_FIELDS
            .iter()
            .copied()
            .filter(|k| get(obj, k).is_some())
            .collect();
        // Untagged: Gemini's own; tagged: another provider's, echoed by a Gemini client.
        let signature = get_str(obj, "thoughtSignature")
            .filter(|s| !s.is_empty())
            .map(|s| sigs::from_wire(Origin::Gemini, s));
        let mut out = Decoded::default();
        let kind = match present.as_slice() {
            [kind] => *kind,
            [] if !self.strict => {
                // A bare signature carrier, as some streams send at the end of thinking.
                out.parts.extend(signature.map(carrier));
                return Ok(out);
            }
            _ => {
                return Err(format!(
                    "must contain exactly one of text, inlineData, fileData, functionCall or \
                     functionResponse (found {})",
                    present.len()
                ));
            }
        };
        match kind {
            "text" => text(obj, signature, &mut out.parts)?,
            "inlineData" => {
                let data = get_obj(obj, "inlineData").ok_or("inlineData must be an object")?;
                let mime = get_str(data, "mimeType").ok_or("inlineData.mimeType is required")?;
                let bytes = get_str(data, "data").ok_or("inlineData.data is required")?;
                check_image("inlineData", Some(mime))?;
                out.parts.extend(signature.map(carrier));
                out.parts.push(image(ImageSource::Base64 {
                    media_type: mime.to_owned(),
                    data: bytes.to_owned(),
                }));
            }
            "fileData" => {
                let data = get_obj(obj, "fileData").ok_or("fileData must be an object")?;
                let uri = get_str(data, "fileUri").ok_or("fileData.fileUri is required")?;
                check_image("fileData", get_str(data, "mimeType"))?;
                out.parts.extend(signature.map(carrier));
                out.parts.push(image(ImageSource::Url(uri.to_owned())));
            }
            "functionCall" => {
                out.parts.extend(signature.map(carrier));
                out.parts.push(self.call(obj)?);
            }
            "functionResponse" => {
                let resp =
                    get_obj(obj, "functionResponse").ok_or("functionResponse must be an object")?;
                if let Some(extra) = get(resp, "parts") {
                    out.unsupported = Some(("contents.functionResponse.parts", extra.clone()));
                }
                out.parts.push(self.response_part(resp)?);
            }
            "executableCode" => out.unsupported = Some(("contents.executableCode", part.clone())),
            _ => out.unsupported = Some(("contents.codeExecutionResult", part.clone())),
        }
        Ok(out)
    }

    fn call(&mut self, obj: &Map<String, Value>) -> Result<Part, String> {
        let call = get_obj(obj, "functionCall").ok_or("functionCall must be an object")?;
        let name = get_str(call, "name").ok_or("functionCall.name is required")?;
        let arguments = match get(call, "args") {
            None => "{}".to_owned(),
            Some(args @ Value::Object(_)) => args.to_string(),
            Some(_) => return Err("functionCall.args must be an object".into()),
        };
        let id = match get_str(call, "id") {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => format!("call_{}{}", self.id_prefix, self.calls),
        };
        self.calls += 1;
        self.open.push((name.to_owned(), id.clone()));
        Ok(Part::ToolCall {
            id,
            name: name.to_owned(),
            arguments,
        })
    }

    fn response_part(&mut self, resp: &Map<String, Value>) -> Result<Part, String> {
        let name = get_str(resp, "name").ok_or("functionResponse.name is required")?;
        let response = get(resp, "response").cloned().unwrap_or_else(|| json!({}));
        let Value::Object(fields) = &response else {
            return Err("functionResponse.response must be an object".into());
        };
        let is_error = fields.len() == 1 && fields.contains_key("error");
        Ok(Part::ToolResult {
            call_id: self.answer(name, get_str(resp, "id")),
            name: Some(name.to_owned()),
            content: vec![Part::text(response.to_string())],
            is_error,
            cache: None,
        })
    }

    /// The call id a function response answers: its own `id`, else the oldest open call with
    /// that name, else `call_<name>`.
    fn answer(&mut self, name: &str, id: Option<&str>) -> String {
        let pos = match id {
            Some(id) if !id.is_empty() => {
                let pos = self.open.iter().position(|(_, open)| open == id);
                if let Some(pos) = pos {
                    self.open.remove(pos);
                }
                return id.to_owned();
            }
            _ => self.open.iter().position(|(n, _)| n == name),
        };
        match pos {
            Some(pos) => self.open.remove(pos).1,
            None => format!("call_{name}"),
        }
    }
}

/// A text part: thought text is reasoning; other text follows its signature carrier.
fn text(
    obj: &Map<String, Value>,
    signature: Option<String>,
    out: &mut Vec<Part>,
) -> Result<(), String> {
    let text = get_str(obj, "text").ok_or("text must be a string")?;
    if get(obj, "thought").and_then(Value::as_bool) == Some(true) {
        out.push(Part::Reasoning {
            text: text.to_owned(),
            signature,
            redacted: None,
        });
    } else {
        out.extend(signature.map(carrier));
        if !text.is_empty() {
            out.push(Part::text(text));
        }
    }
    Ok(())
}

/// Only images can be translated; a missing MIME type is taken to be one.
fn check_image(field: &str, mime: Option<&str>) -> Result<(), String> {
    match mime {
        Some(mime) if !is_image(mime) => Err(format!(
            "{field} of type {mime} cannot be translated for this model; only images are supported"
        )),
        _ => Ok(()),
    }
}

/// An empty reasoning part carrying a signature that belongs to the part after it.
fn carrier(signature: String) -> Part {
    Part::Reasoning {
        text: String::new(),
        signature: Some(signature),
        redacted: None,
    }
}

fn image(source: ImageSource) -> Part {
    Part::Image {
        source,
        detail: None,
        cache: None,
    }
}

fn is_image(mime: &str) -> bool {
    mime.trim()
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("image/"))
}

/// Builds Gemini parts from canonical ones, putting each pending thought signature on the part
/// that follows it.
#[derive(Debug, Default)]
pub(super) struct PartsWriter {
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
    pub(super) fn request() -> Self {
        Self::default()
    }

    /// A writer for a client response: every reasoning part is shown.
    pub(super) fn response() -> Self {
        Self {
            client: true,
            ..Self::default()
        }
    }

    /// Appends a part, giving it the pending signature.
    pub(super) fn push(&mut self, mut part: Map<String, Value>) {
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
    pub(super) fn part(&mut self, part: &Part) {
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
    pub(super) fn reasoning(&mut self, text: &str, signature: Option<&str>) {
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
    pub(super) fn is_empty(&self) -> bool {
        self.out.is_empty() && self.signature.is_none()
    }

    /// The parts written, a dangling signature included.
    pub(super) fn finish(mut self) -> Vec<Value> {
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
pub(super) fn function_call(id: &str, name: &str, arguments: &str) -> Map<String, Value> {
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
pub(super) fn image_part(source: &ImageSource) -> Map<String, Value> {
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
pub(super) fn guess_mime(url: &str) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut PartsDecoder, parts: &Value) -> Vec<Part> {
        parts
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| dec.decode(p).unwrap().parts)
            .collect()
    }

    #[test]
    fn calls_get_ids_and_responses_match_by_name_in_order() {
        let mut dec = PartsDecoder::request();
        let parts = decode_all(
            &mut dec,
            &json!([
                {"functionCall": {"name": "a", "args": {"x": 1}}},
                {"functionCall": {"name": "b"}},
                {"functionCall": {"name": "a", "args": {}, "id": "mine"}},
                {"functionResponse": {"name": "a", "response": {"ok": true}}},
                {"functionResponse": {"name": "a", "response": {"error": "boom"}}},
                {"functionResponse": {"name": "b", "response": {}, "id": "given"}},
                {"functionResponse": {"name": "zz", "response": {}}},
            ]),
        );
        let ids: Vec<&str> = parts
            .iter()
            .map(|p| match p {
                Part::ToolCall { id, .. } => id.as_str(),
                Part::ToolResult { call_id, .. } => call_id.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(
            ids,
            [
                "call_0", "call_1", "mine", "call_0", "mine", "given", "call_zz"
            ]
        );
        assert!(matches!(&parts[0], Part::ToolCall { arguments, .. } if arguments == r#"{"x":1}"#));
        assert!(matches!(&parts[1], Part::ToolCall { arguments, .. } if arguments == "{}"));
        assert!(
            matches!(&parts[4], Part::ToolResult { is_error: true, content, name: Some(n), .. }
                if n == "a" && content == &vec![Part::text(r#"{"error":"boom"}"#)])
        );
        assert!(matches!(
            &parts[3],
            Part::ToolResult {
                is_error: false,
                ..
            }
        ));
    }

    #[test]
    fn response_ids_carry_the_response_id() {
        let mut dec = PartsDecoder::response("r/1");
        let parts = decode_all(&mut dec, &json!([{"functionCall": {"name": "a"}}]));
        assert!(matches!(&parts[0], Part::ToolCall { id, .. } if id == "call_r1_0"));
        let mut dec = PartsDecoder::response("");
        let parts = decode_all(&mut dec, &json!([{"functionCall": {"name": "a"}}]));
        assert!(matches!(&parts[0], Part::ToolCall { id, .. } if id == "call_0"));
    }

    #[test]
    fn signatures_and_thoughts() {
        let mut dec = PartsDecoder::request();
        let parts = decode_all(
            &mut dec,
            &json!([
                {"text": "hmm", "thought": true, "thoughtSignature": "S1"},
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S2"},
            ]),
        );
        assert_eq!(
            parts,
            vec![
                Part::Reasoning {
                    text: "hmm".into(),
                    signature: Some("anyint:gemini:S1".into()),
                    redacted: None
                },
                carrier("anyint:gemini:S2".into()),
                Part::ToolCall {
                    id: "call_0".into(),
                    name: "f".into(),
                    arguments: "{}".into()
                },
            ]
        );
        let mut w = PartsWriter::request();
        for p in &parts {
            w.part(p);
        }
        w.reasoning("unsigned", None);
        w.reasoning("", Some("S3"));
        assert_eq!(
            Value::Array(w.finish()),
            json!([
                {"text": "hmm", "thought": true, "thoughtSignature": "S1"},
                {"functionCall": {"name": "f", "args": {}, "id": "call_0"}, "thoughtSignature": "S2"},
                {"text": "", "thought": true, "thoughtSignature": "S3"},
            ])
        );
    }

    #[test]
    fn signatures_keep_their_origin_both_ways() {
        // A Gemini client echoes its own signature and an Anthropic one it got tagged.
        let mut dec = PartsDecoder::request();
        let parts = decode_all(
            &mut dec,
            &json!([
                {"text": "mine", "thought": true, "thoughtSignature": "CiQB"},
                {"text": "theirs", "thought": true, "thoughtSignature": "anyint:anthropic:EqQB"},
            ]),
        );
        let sig = |p: &Part| match p {
            Part::Reasoning { signature, .. } => signature.clone(),
            _ => None,
        };
        assert_eq!(sig(&parts[0]).as_deref(), Some("anyint:gemini:CiQB"));
        assert_eq!(sig(&parts[1]).as_deref(), Some("anyint:anthropic:EqQB"));
        // To a Gemini client: its own untagged, the other tagged.
        let mut w = PartsWriter::response();
        for p in &parts {
            w.part(p);
        }
        assert_eq!(
            Value::Array(w.finish()),
            json!([
                {"text": "mine", "thought": true, "thoughtSignature": "CiQB"},
                {"text": "theirs", "thought": true, "thoughtSignature": "anyint:anthropic:EqQB"},
            ])
        );
        // To a Gemini upstream: the Anthropic-signed thought is dropped.
        let mut w = PartsWriter::request();
        for p in &parts {
            w.part(p);
        }
        assert_eq!(
            Value::Array(w.finish()),
            json!([{"text": "mine", "thought": true, "thoughtSignature": "CiQB"}])
        );
    }

    #[test]
    fn malformed_parts_are_errors_in_request_mode() {
        let mut dec = PartsDecoder::request();
        for bad in [
            json!({}),
            json!({"text": "a", "inlineData": {"mimeType": "image/png", "data": ""}}),
            json!({"text": 3}),
            json!({"functionCall": {"args": {}}}),
            json!({"functionCall": {"name": "f", "args": [1]}}),
            json!({"functionResponse": {"name": "f", "response": "x"}}),
            json!({"inlineData": {"mimeType": "application/pdf", "data": "AA"}}),
            json!({"fileData": {"mimeType": "video/mp4", "fileUri": "gs://x"}}),
            json!("text"),
        ] {
            assert!(dec.decode(&bad).is_err(), "{bad}");
        }
        let mut lenient = PartsDecoder::response("r");
        assert!(lenient.decode(&json!({})).unwrap().parts.is_empty());
        let d = dec
            .decode(&json!({"executableCode": {"code": "1"}}))
            .unwrap();
        assert_eq!(d.unsupported.unwrap().0, "contents.executableCode");
    }

    #[test]
    fn images_both_ways() {
        let mut dec = PartsDecoder::request();
        let parts = decode_all(
            &mut dec,
            &json!([
                {"inline_data": {"mime_type": "image/png", "data": "AAAA"}},
                {"fileData": {"fileUri": "https://x/y.webp"}},
            ]),
        );
        let mut w = PartsWriter::request();
        for p in &parts {
            w.part(p);
        }
        w.part(&image(ImageSource::Url(
            "data:image/gif;base64,R0lG".into(),
        )));
        w.part(&image(ImageSource::Url("https://x/photo?size=2".into())));
        assert_eq!(
            Value::Array(w.finish()),
            json!([
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://x/y.webp"}},
                {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/photo?size=2"}},
            ])
        );
    }

    #[test]
    fn arguments_become_objects() {
        assert_eq!(args_object(""), json!({}));
        assert_eq!(args_object(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(args_object("[1]"), json!({"_raw": "[1]"}));
        assert_eq!(args_object("{oops"), json!({"_raw": "{oops"}));
    }
}
