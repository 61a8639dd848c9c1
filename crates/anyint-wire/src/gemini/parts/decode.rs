//! Gemini parts → canonical parts, across a whole conversation or response: one data field per
//! part, synthesized call ids and responses matched to their calls, thought signatures tagged
//! as Gemini's, and strict (request) or lenient (response) handling of malformed parts.

use serde_json::{Map, Value, json};

use crate::canonical::signature::{self as sigs, Origin};
use crate::canonical::{ImageSource, Part};
use crate::gemini::fields::{get, get_obj, get_str};

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
pub(in crate::gemini) struct Decoded {
    /// Canonical parts, in order (a signature carrier may precede the part itself).
    pub(in crate::gemini) parts: Vec<Part>,
    /// Content with no canonical home, for `extra`: its key and value.
    pub(in crate::gemini) unsupported: Option<(&'static str, Value)>,
}

/// Converts Gemini parts to canonical ones, across a whole conversation or response.
#[derive(Debug)]
pub(in crate::gemini) struct PartsDecoder {
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
    pub(in crate::gemini) fn request() -> Self {
        Self {
            id_prefix: String::new(),
            strict: true,
            calls: 0,
            open: Vec::new(),
        }
    }

    /// A decoder for an upstream response: malformed parts are skipped; ids are
    /// `call_<responseId>_<n>` so ids from different turns differ.
    pub(in crate::gemini) fn response(response_id: &str) -> Self {
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
    pub(in crate::gemini) fn decode(&mut self, part: &Value) -> Result<Decoded, String> {
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
pub(super) fn carrier(signature: String) -> Part {
    Part::Reasoning {
        text: String::new(),
        signature: Some(signature),
        redacted: None,
    }
}

pub(super) fn image(source: ImageSource) -> Part {
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
