//! Validating, routing on and rewriting a Responses request without parsing the input.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::native::{self, NativeOnly};
use crate::DecodeError;
use crate::json::{RawJson, RawObject, json_string};

/// The `include` value that asks for reasoning state in `encrypted_content`.
pub const INCLUDE_ENCRYPTED: &str = "reasoning.encrypted_content";

/// What the gateway reads from a Responses request to authorize, route and meter it, and to
/// run the stored-state features it implements itself (`store`, `previous_response_id`). The
/// input stays unparsed in the raw fields.
#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is an independent flag of the request, read as the API names it"
)]
pub struct RequestHead<'a> {
    /// The public model ID the client asked for.
    pub model: String,
    /// Whether the client asked for an SSE stream.
    pub stream: bool,
    /// Whether the client wants the response stored (the API's default is `true`).
    pub store: bool,
    /// The response whose history this request continues, if any.
    pub previous_response_id: Option<String>,
    /// Whether `include` asks for `reasoning.encrypted_content`.
    pub include_encrypted: bool,
    /// Whether `include` asks for `web_search_call.action.sources`.
    pub include_sources: bool,
    body: RawObject<'a>,
}

fn parse<'de, T: Deserialize<'de>>(
    raw: Option<RawJson<'de>>,
    param: &'static str,
    what: &str,
) -> Result<Option<T>, DecodeError> {
    match raw {
        None => Ok(None),
        Some(r) => serde_json::from_str::<Option<T>>(r.get())
            .map_err(|_| DecodeError::field(param, format!("`{param}` must be {what}"))),
    }
}

impl<'a> RequestHead<'a> {
    /// Checks the fields the API requires and reads the routing ones. Errors name the field.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let obj = RawObject::decode(body)?;
        let model: String = parse(obj.get("model"), "model", "a string")?
            .ok_or_else(|| DecodeError::field("model", "you must provide a model parameter"))?;
        if model.is_empty() {
            return Err(DecodeError::field("model", "`model` must not be empty"));
        }
        if let Some(raw) = obj.get("input") {
            let v: Value = serde_json::from_str(raw.get()).map_err(|_| {
                DecodeError::field("input", "`input` must be a string or an array of items")
            })?;
            match v {
                Value::String(_) | Value::Null => {}
                Value::Array(items) => {
                    if let Some(i) = items.iter().position(|it| !it.is_object()) {
                        return Err(DecodeError::at(
                            "input",
                            format!("input[{i}]"),
                            format!("input[{i}] must be an object (an input item)"),
                        ));
                    }
                }
                _ => {
                    return Err(DecodeError::field(
                        "input",
                        "`input` must be a string or an array of items",
                    ));
                }
            }
        }
        let stream = parse(obj.get("stream"), "stream", "a boolean")?.unwrap_or(false);
        let store = parse(obj.get("store"), "store", "a boolean")?.unwrap_or(true);
        let previous_response_id = parse(
            obj.get("previous_response_id"),
            "previous_response_id",
            "a string",
        )?;
        let include: Vec<String> =
            parse(obj.get("include"), "include", "an array of strings")?.unwrap_or_default();
        parse::<bool>(obj.get("background"), "background", "a boolean")?;
        parse::<String>(obj.get("instructions"), "instructions", "a string")?;
        parse::<Vec<&RawValue>>(obj.get("tools"), "tools", "an array of tools")?;
        Ok(Self {
            model,
            stream,
            store,
            previous_response_id,
            include_encrypted: include.iter().any(|i| i == INCLUDE_ENCRYPTED),
            include_sources: include.iter().any(|i| i == super::INCLUDE_SOURCES),
            body: obj,
        })
    }

    /// The raw top-level fields, as the client sent them.
    pub fn raw(&self) -> &RawObject<'a> {
        &self.body
    }

    /// Whether `field` is set to something other than `null`.
    pub fn has(&self, field: &str) -> bool {
        self.body.has(field)
    }

    /// The body for a native Responses upstream (passthrough): only `model` rewritten, every
    /// other byte as the client sent it.
    pub fn encode_upstream(&self, upstream_model: &str) -> Vec<u8> {
        self.body.encode_model(&self.model, upstream_model)
    }

    /// [`encode_upstream`](Self::encode_upstream) as pieces, values of `borrow_from` bytes or
    /// more borrowed ([`crate::json::RawObject::encode_pieces`]).
    pub fn upstream_pieces(
        &self,
        upstream_model: &str,
        borrow_from: usize,
    ) -> Vec<crate::json::Piece<'a>> {
        self.body
            .model_pieces(&self.model, upstream_model, borrow_from)
    }

    /// The body with the history the gateway rebuilt for `previous_response_id`: `input`
    /// replaced by `input` (the stored input and output items followed by this request's
    /// [`input_items`](Self::input_items)), `previous_response_id` removed, `store: false` (the
    /// gateway keeps the state, not the upstream) and `model` set to `upstream_model`.
    /// Feed it to [`super::decode_request`] for a translated route, or send it as is to a
    /// native one.
    pub fn encode_with_input(&self, upstream_model: &str, input: &[Value]) -> Vec<u8> {
        let input = serde_json::to_string(input).unwrap_or_else(|_| "[]".to_owned());
        self.body.encode_edited(
            &[
                ("model", &json_string(upstream_model)),
                ("input", &input),
                ("store", "false"),
            ],
            &["previous_response_id"],
        )
    }

    /// This request's `input` as items: a string is one user message; missing is none.
    pub fn input_items(&self) -> Result<Vec<Value>, DecodeError> {
        let Some(raw) = self.body.get("input") else {
            return Ok(Vec::new());
        };
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::String(s)) => Ok(vec![
                serde_json::json!({"type": "message", "role": "user", "content": s}),
            ]),
            Ok(Value::Array(items)) => Ok(items),
            Ok(Value::Null) => Ok(Vec::new()),
            _ => Err(DecodeError::field(
                "input",
                "`input` must be a string or an array of items",
            )),
        }
    }

    /// The first feature of this request that only a native Responses upstream can serve
    /// (built-in tools, `prompt`, `conversation`, `background: true`, `item_reference` and
    /// `compaction` items, …; see [`NativeOnly`]). A route that translates must refuse the
    /// request with its error; [`super::decode_request`] does.
    pub fn native_only(&self) -> Option<NativeOnly> {
        const FIELDS: &[&str] = &[
            "prompt",
            "conversation",
            "background",
            "context_management",
            "moderation",
            "truncation",
            "tools",
            "tool_choice",
            "input",
        ];
        let mut obj = Map::new();
        for f in FIELDS {
            if let Some(v) = self
                .body
                .get(f)
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            {
                obj.insert((*f).to_owned(), v);
            }
        }
        native::scan(&obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn head(s: &str) -> Result<RequestHead<'_>, DecodeError> {
        RequestHead::decode(s.as_bytes())
    }

    #[test]
    fn reads_routing_fields_with_the_apis_defaults() {
        let h = head(r#"{"model":"m","input":"hi"}"#).unwrap();
        assert_eq!(h.model, "m");
        assert!(!h.stream && h.store && !h.include_encrypted);
        assert_eq!(h.previous_response_id, None);
        let h = head(r#"{"model":"m","input":[],"stream":true,"store":false,"previous_response_id":"resp_1","include":["reasoning.encrypted_content"]}"#).unwrap();
        assert!(h.stream && !h.store && h.include_encrypted);
        assert_eq!(h.previous_response_id.as_deref(), Some("resp_1"));
        assert!(h.has("input") && !h.has("tools"));
    }

    #[test]
    fn invalid_fields_name_the_param() {
        let cases = [
            (r#"{"input":"x"}"#, "model"),
            (r#"{"model":"","input":"x"}"#, "model"),
            (r#"{"model":1}"#, "model"),
            (r#"{"model":"m","input":3}"#, "input"),
            (r#"{"model":"m","input":["x"]}"#, "input"),
            (r#"{"model":"m","stream":"yes"}"#, "stream"),
            (r#"{"model":"m","store":1}"#, "store"),
            (r#"{"model":"m","include":"x"}"#, "include"),
            (r#"{"model":"m","tools":{}}"#, "tools"),
            (
                r#"{"model":"m","previous_response_id":5}"#,
                "previous_response_id",
            ),
        ];
        for (body, param) in cases {
            assert_eq!(head(body).unwrap_err().param, Some(param), "{body}");
        }
        let e = head(r#"{"model":"m","input":[{"role":"user"},7]}"#).unwrap_err();
        assert_eq!(e.param_path(), Some("input[1]"));
    }

    #[test]
    fn passthrough_rewrites_only_the_model() {
        let src = r#"{"model":"pub","input":"hi","tools":[{"type":"web_search"}],"x":1}"#;
        let h = head(src).unwrap();
        assert_eq!(
            String::from_utf8(h.encode_upstream("gpt-5.1")).unwrap(),
            r#"{"model":"gpt-5.1","input":"hi","tools":[{"type":"web_search"}],"x":1}"#
        );
        assert_eq!(h.encode_upstream("pub"), src.as_bytes());
        assert_eq!(h.native_only().unwrap().path, "tools[0]");
    }

    #[test]
    fn rebuilt_history_replaces_input_and_drops_previous_response_id() {
        let h =
            head(r#"{"model":"pub","previous_response_id":"resp_1","input":"next","store":true}"#)
                .unwrap();
        let mut input = vec![json!({"role": "user", "content": "first"})];
        input.extend(h.input_items().unwrap());
        let out: Value = serde_json::from_slice(&h.encode_with_input("up", &input)).unwrap();
        assert_eq!(
            out,
            json!({"model": "up", "store": false, "input": [
                {"role": "user", "content": "first"},
                {"type": "message", "role": "user", "content": "next"}
            ]})
        );
    }

    /// Request fields with a native-only feature, and the param and path its refusal names.
    fn native_only_cases() -> Vec<(Value, &'static str, &'static str)> {
        let user = json!({"role": "user", "content": "x"});
        vec![
            (
                json!({"tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}),
                "tools",
                "tools[1]",
            ),
            (
                json!({"tools": [{"type": "web_search_preview"}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "computer_use_preview"}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "image_generation"}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "mcp", "server_label": "s"}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "local_shell"}]}),
                "tools",
                "tools[0]",
            ),
            (json!({"tools": [{"type": "shell"}]}), "tools", "tools[0]"),
            (
                json!({"tools": [{"type": "apply_patch"}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tools": [{"type": "tool_search"}]}),
                "tools",
                "tools[0]",
            ),
            (
                json!({"tool_choice": {"type": "web_search"}}),
                "tool_choice",
                "tool_choice",
            ),
            (
                json!({"tool_choice": {"type": "mcp", "server_label": "s"}}),
                "tool_choice",
                "tool_choice",
            ),
            (json!({"prompt": {"id": "pmpt_1"}}), "prompt", "prompt"),
            (
                json!({"conversation": "conv_1"}),
                "conversation",
                "conversation",
            ),
            (json!({"background": true}), "background", "background"),
            (
                json!({"context_management": [{"type": "compaction"}]}),
                "context_management",
                "context_management",
            ),
            (json!({"truncation": "auto"}), "truncation", "truncation"),
            (
                json!({"input": [user.clone(), {"type": "item_reference", "id": "msg_1"}]}),
                "input",
                "input[1]",
            ),
            (
                json!({"input": [user.clone(), {"type": "compaction", "encrypted_content": "x"}]}),
                "input",
                "input[1]",
            ),
            (
                json!({"input": [user.clone(), {"type": "file_search_call", "id": "fs_1"}]}),
                "input",
                "input[1]",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]}),
                "input",
                "input[0].content[0]",
            ),
        ]
    }

    #[test]
    fn every_native_only_feature_is_refused_with_its_param() {
        let user = json!({"role": "user", "content": "x"});
        for (extra, param, path) in native_only_cases() {
            let mut body = json!({"model": "m", "input": [user.clone()]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let text = body.to_string();
            let head = RequestHead::decode(text.as_bytes()).unwrap();
            let native = head.native_only().unwrap_or_else(|| panic!("{body}"));
            let e = super::super::decode_request(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(e, native.error(), "{body}");
            assert_eq!(e.param, Some(param), "{body}");
            assert_eq!(e.param_path(), Some(path), "{body}");
            assert!(e.message.contains("not supported for this model"), "{e}");
        }
        let e = super::super::decode_request(json!({"model": "m", "input": [user], "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}).to_string().as_bytes()).unwrap_err();
        assert!(
            e.message
                .starts_with("the built-in tool `web_search` is not supported for this model; "),
            "{e}"
        );
    }
}
