//! Structured-output schemas across families (`shared/protocols/structured-output.md` §3–§7):
//! a client's JSON Schema rewritten for the subset an upstream accepts.
//!
//! Each family constrains decoding with a different subset of JSON Schema (§6). A schema is
//! passed on untouched to an upstream of its own family (see
//! [`SchemaSource`](crate::canonical::SchemaSource)) and translated by [`translate`] for the
//! others. The rule for every rewrite: a keyword is dropped or rewritten only where that
//! cannot change which answers are valid, or only makes the valid set smaller (every answer
//! the upstream may give is still valid for the client's schema). Anything else loosens the
//! schema, which is allowed only when the client asked for no guarantee (an OpenAI source
//! without `strict: true`); when it did, the request is refused with a 400 naming the
//! keyword's path in the client's body (`param` is the schema's top-level field).
//!
//! Rewrites on every target:
//! - Annotations (`default`, `examples`, `$comment`, `deprecated`, `readOnly`, `writeOnly`,
//!   `$schema`, `contentMediaType`, `discriminator`, …) and keywords no JSON Schema validator
//!   knows are dropped: they constrain nothing. `title` and `description` are kept.
//! - `oneOf` becomes `anyOf` when its branches are provably exclusive (distinct `type`s, or a
//!   required property with a distinct `const` in every branch, local `$ref`s followed), the
//!   two then meaning the same; otherwise it loosens the schema (see above).
//! - Keywords beside a `$ref` other than `$defs`/`definitions` go (no target takes them):
//!   annotations silently, constraints like any loosening rewrite.
//!
//! Per target:
//! - **OpenAI strict** (§3; only for Anthropic and Gemini sources, which always constrain):
//!   every object gets `additionalProperties: false` and lists every property in `required`
//!   (both only narrow the valid set: an optional property must then be sent). A single-branch
//!   `allOf` is merged into its node. Kept: `type` (also as a list), `enum`, `const`,
//!   `anyOf`, `$defs`/`definitions`, `$ref`, `pattern`, the nine supported `format`s, numeric
//!   bounds, `minItems`/`maxItems`. The root must be an object. Everything else (`minLength`,
//!   `uniqueItems`, `not`, other formats, a free-form object without properties, …) loosens.
//! - **Anthropic** (§5, like the SDK's `transform_schema`): objects get
//!   `additionalProperties: false`, type lists become `anyOf` (each branch keeping the
//!   keywords of its type, `enum` values filtered by type). Kept: `type`, `enum` of
//!   primitives, `const`, `anyOf`, `allOf`, local `$ref`/`$defs`/`definitions`, `required`,
//!   the ten supported `format`s, `minItems` 0 or 1, and `pattern` when a guarantee was asked
//!   (the API is reported to take simple patterns; the SDK moves it into the description).
//!   Without a guarantee, the rest is moved into the node's `description` as
//!   `{minimum: 1, maximum: 10}`, as the SDK does.
//! - **Gemini `responseJsonSchema`** (§4): type lists become `anyOf`, `const` a one-value
//!   `enum`, `definitions` `$defs`. Kept: `$id`, `$anchor`, `$defs`, `$ref`, `type`,
//!   `format`, `enum` of strings and numbers, `items`, `prefixItems`, `minItems`,
//!   `maxItems`, `minimum`, `maximum`, `anyOf`, `properties`, `additionalProperties`,
//!   `required`, `propertyOrdering`. Gemini ignores everything else, which loosens.
//!
//! A Gemini `responseJsonSchema` source never guaranteed the keywords Gemini ignores, so those
//! are dropped whatever the target.

mod graph;

use serde_json::{Map, Value};

use crate::DecodeError;
use crate::canonical::{ChatRequest, Part, SchemaSource};

pub(crate) use graph::is_recursive;

/// The instruction added for JSON mode when the prompt never says "json" (OpenAI refuses JSON
/// mode without the word, structured-output.md §1–§2).
pub(crate) const JSON_HINT: &str = "Respond in JSON.";

/// The `schema` and `strict` an OpenAI upstream gets for a `json_schema` format: an OpenAI
/// source's as sent; another family's (which always constrains) translated to strict mode.
pub(crate) fn for_openai(
    schema: Option<&Value>,
    source: SchemaSource,
    strict: Option<bool>,
) -> Result<(Option<Value>, Option<bool>), DecodeError> {
    if source.is_openai() {
        return Ok((schema.cloned(), strict));
    }
    match schema {
        Some(s) => Ok((
            Some(translate(s, source, true, Target::OpenAiStrict)?),
            Some(true),
        )),
        None => Ok((None, strict)),
    }
}

/// Whether the word "json" (any case) is in the request's text: its system prompt too when
/// `system` (Chat counts system messages; Responses only input messages).
pub(crate) fn mentions_json(req: &ChatRequest, system: bool) -> bool {
    let has = |p: &Part| match p {
        Part::Text { text, .. } => text.to_ascii_lowercase().contains("json"),
        _ => false,
    };
    (system && req.system.iter().any(has))
        || req.messages.iter().flat_map(|m| m.parts.iter()).any(has)
}

/// The subset a schema is translated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// OpenAI strict mode (Chat `response_format`, Responses `text.format`).
    OpenAiStrict,
    /// Anthropic `output_config.format` and tool input schemas.
    Anthropic,
    /// Gemini `responseJsonSchema`.
    GeminiJson,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::OpenAiStrict => "openai",
            Self::Anthropic => "anthropic",
            Self::GeminiJson => "gemini",
        }
    }
}

/// String formats OpenAI strict mode enforces.
const OPENAI_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];
/// String formats Anthropic enforces.
const ANTHROPIC_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "uri",
    "ipv4",
    "ipv6",
    "uuid",
];
/// Keywords Gemini honours in `responseJsonSchema` (§4); it ignores the others.
const GEMINI_JSON_KEYWORDS: &[&str] = &[
    "$id",
    "$defs",
    "$ref",
    "$anchor",
    "type",
    "format",
    "title",
    "description",
    "enum",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "anyOf",
    "oneOf",
    "properties",
    "additionalProperties",
    "required",
    "propertyOrdering",
];
/// JSON Schema keywords that constrain the instance (draft 2020-12 and draft-07). Any other
/// keyword is an annotation or unknown, and dropping it changes nothing.
const CONSTRAINTS: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "unevaluatedItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$dynamicRef",
];
/// Keywords that apply only to instances of one type, for splitting a type list.
const BY_TYPE: &[(&str, &[&str])] = &[
    (
        "string",
        &[
            "minLength",
            "maxLength",
            "pattern",
            "format",
            "contentMediaType",
            "contentEncoding",
        ],
    ),
    (
        "number",
        &[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ],
    ),
    (
        "array",
        &[
            "items",
            "prefixItems",
            "additionalItems",
            "unevaluatedItems",
            "minItems",
            "maxItems",
            "uniqueItems",
            "contains",
            "minContains",
            "maxContains",
        ],
    ),
    (
        "object",
        &[
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "propertyNames",
            "minProperties",
            "maxProperties",
            "dependentRequired",
            "dependentSchemas",
            "dependencies",
            "unevaluatedProperties",
            "propertyOrdering",
        ],
    ),
];

/// Translates `schema` (from `source`) for `target`. `guarantee`: the client asked for
/// constrained output, so nothing may loosen the schema (see the module docs).
pub(crate) fn translate(
    schema: &Value,
    source: SchemaSource,
    guarantee: bool,
    target: Target,
) -> Result<Value, DecodeError> {
    let walk = Walk {
        target,
        guarantee,
        source,
        root: schema,
    };
    let mut out = walk.node(schema, source.path())?;
    if target == Target::GeminiJson {
        graph::definitions_to_defs(&mut out);
    }
    if target == Target::OpenAiStrict && !is_object_type(&out) {
        return Err(walk.refusal(
            &format!("{}.type", source.path()),
            "the root of the schema must be an object (`\"type\": \"object\"`, not `anyOf`) in \
             this model's upstream (openai) strict mode",
        ));
    }
    Ok(out)
}

/// Gives the schema's root the format's `description` (what the output is for) when it has
/// none, for targets whose format has no description of its own. An annotation: it changes
/// nothing about which answers are valid.
pub(crate) fn describe_root(schema: &mut Value, description: Option<&str>) {
    if let (Some(d), Some(root)) = (
        description.filter(|d| !d.is_empty()),
        schema.as_object_mut(),
    ) {
        root.entry("description")
            .or_insert_with(|| Value::String(d.to_owned()));
    }
}

/// Whether a schema's root is a plain object schema (`"type": "object"`).
pub(crate) fn is_object_type(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

struct Walk<'a> {
    target: Target,
    guarantee: bool,
    source: SchemaSource,
    root: &'a Value,
}

fn at(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

impl Walk<'_> {
    fn refusal(&self, path: &str, why: &str) -> DecodeError {
        DecodeError::at(self.source.param(), path, format!("`{path}`: {why}"))
    }

    /// A keyword the target cannot enforce: dropped when nothing was guaranteed (or the source
    /// never enforced it), refused otherwise. `Some(text)` is the `key: value` an Anthropic
    /// target keeps in the description.
    fn loosen(&self, key: &str, value: &Value, path: &str) -> Result<Option<String>, DecodeError> {
        if self.source == SchemaSource::GeminiJsonSchema && !GEMINI_JSON_KEYWORDS.contains(&key) {
            // Gemini ignored it for the client too.
            return Ok(None);
        }
        if self.guarantee {
            return Err(self.refusal(
                &at(path, key),
                &format!(
                    "`{key}` cannot be enforced by this model's upstream ({}), so the schema's \
                     guarantee would be lost; remove it or choose a model served by a \
                     compatible upstream",
                    self.target.name()
                ),
            ));
        }
        Ok((self.target == Target::Anthropic).then(|| format!("{key}: {value}")))
    }

    fn node(&self, v: &Value, path: &str) -> Result<Value, DecodeError> {
        match v {
            Value::Object(o) => self.object(o.clone(), path).map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn list(&self, v: &Value, path: &str) -> Result<Value, DecodeError> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| self.node(s, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    fn map(&self, v: &Value, path: &str) -> Result<Value, DecodeError> {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, s)| Ok((k.clone(), self.node(s, &at(path, k))?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn object(
        &self,
        mut m: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, DecodeError> {
        let combined = ["anyOf", "oneOf", "allOf"]
            .iter()
            .any(|k| m.contains_key(*k));
        if let Some(Value::Array(types)) = m.get("type") {
            let mut names: Vec<String> = Vec::with_capacity(types.len());
            for t in types.iter().filter_map(Value::as_str) {
                if !names.iter().any(|n| n == t) {
                    names.push(t.to_owned());
                }
            }
            match names.len() {
                0 => {
                    m.remove("type");
                }
                1 => {
                    m.insert(
                        "type".into(),
                        names.pop().map(Value::String).unwrap_or_default(),
                    );
                }
                _ if self.target != Target::OpenAiStrict && !combined => {
                    return self.object(split_types(m, &names), path);
                }
                _ => {}
            }
        }
        if m.contains_key("$ref") {
            return self.reference(m, path);
        }
        self.one_of(&mut m, path)?;
        self.all_of(&mut m, path)?;
        let mut out = Map::new();
        let mut moved: Vec<String> = Vec::new();
        let additional = m.remove("additionalProperties");
        for (k, v) in &m {
            self.keyword(k, v, path, &mut out, &mut moved)?;
        }
        let object = is_object_type(&Value::Object(out.clone()))
            || out.contains_key("properties")
            || matches!(out.get("type"), Some(Value::Array(t)) if t.iter().any(|t| t == "object"));
        if object {
            self.additional(additional, path, &mut out, &mut moved)?;
        } else if let Some(v) = additional {
            // On a node that is not an object it constrains nothing.
            if self.target == Target::GeminiJson {
                out.insert(
                    "additionalProperties".into(),
                    self.node(&v, &at(path, "additionalProperties"))?,
                );
            }
        }
        if !moved.is_empty() {
            let note = format!("{{{}}}", moved.join(", "));
            let text = match out.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            };
            out.insert("description".into(), Value::String(text));
        }
        Ok(out)
    }

    /// `additionalProperties` of an object node, and (OpenAI) its `required` list.
    fn additional(
        &self,
        value: Option<Value>,
        path: &str,
        out: &mut Map<String, Value>,
        moved: &mut Vec<String>,
    ) -> Result<(), DecodeError> {
        if self.target == Target::GeminiJson {
            if let Some(v) = value {
                let v = self.node(&v, &at(path, "additionalProperties"))?;
                out.insert("additionalProperties".into(), v);
            }
            return Ok(());
        }
        let has_properties = out
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if value != Some(Value::Bool(false)) && !has_properties {
            // A free-form object (a map): `false` would leave only `{}`.
            let shown = value.clone().unwrap_or(Value::Bool(true));
            moved.extend(self.loosen("additionalProperties", &shown, path)?);
        }
        out.insert("additionalProperties".into(), Value::Bool(false));
        if !out.contains_key("type") {
            out.insert("type".into(), Value::String("object".into()));
        }
        if self.target == Target::OpenAiStrict {
            let names: Vec<Value> = out
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().map(Value::String).collect())
                .unwrap_or_default();
            out.insert("required".into(), Value::Array(names));
        }
        Ok(())
    }

    fn keyword(
        &self,
        k: &str,
        v: &Value,
        path: &str,
        out: &mut Map<String, Value>,
        moved: &mut Vec<String>,
    ) -> Result<(), DecodeError> {
        let t = self.target;
        let sub = match k {
            "properties" | "$defs" | "definitions" => Some(self.map(v, &at(path, k))?),
            "anyOf" => Some(self.list(v, &at(path, k))?),
            "allOf" if t == Target::Anthropic => Some(self.list(v, &at(path, k))?),
            "prefixItems" if t == Target::GeminiJson => Some(self.list(v, &at(path, k))?),
            "items" if v.is_object() || v.is_boolean() => Some(self.node(v, &at(path, k))?),
            _ => None,
        };
        if let Some(sub) = sub {
            out.insert(k.to_owned(), sub);
            return Ok(());
        }
        if k == "const" && t == Target::GeminiJson && (v.is_string() || v.is_number()) {
            // Gemini has no `const`; a one-value `enum` says the same.
            if !out.contains_key("enum") {
                out.insert("enum".into(), Value::Array(vec![v.clone()]));
                return Ok(());
            }
        }
        match support(t, self.guarantee, k, v) {
            Support::Keep => {
                out.insert(k.to_owned(), v.clone());
            }
            Support::Loosen => moved.extend(self.loosen(k, v, path)?),
            Support::Drop => {}
        }
        Ok(())
    }

    /// A `$ref` node: only the reference (and definitions) remain.
    fn reference(
        &self,
        m: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, DecodeError> {
        let mut out = Map::new();
        for (k, v) in m {
            match k.as_str() {
                "$ref" => {
                    let local = v.as_str().is_some_and(|r| r.starts_with('#'));
                    if !local && self.guarantee {
                        return Err(self.refusal(
                            &at(path, "$ref"),
                            "only local references (`#/$defs/…`) can be translated",
                        ));
                    }
                    out.insert(k, v);
                }
                "$defs" | "definitions" => {
                    let defs = self.map(&v, &at(path, &k))?;
                    out.insert(k, defs);
                }
                other if CONSTRAINTS.contains(&other) => {
                    // No target takes constraints beside a reference.
                    self.loosen(other, &v, path)?;
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// `oneOf` → `anyOf` where that changes nothing (or nothing was guaranteed).
    fn one_of(&self, m: &mut Map<String, Value>, path: &str) -> Result<(), DecodeError> {
        let Some(branches) = m.remove("oneOf") else {
            return Ok(());
        };
        let exclusive = self.source == SchemaSource::GeminiJsonSchema
            || branches
                .as_array()
                .is_some_and(|b| graph::exclusive(b, self.root));
        if m.contains_key("anyOf") || (!exclusive && self.guarantee) {
            if self.guarantee {
                return Err(self.refusal(
                    &at(path, "oneOf"),
                    &format!(
                        "`oneOf` whose branches may overlap cannot be enforced by this model's \
                         upstream ({}), which only has `anyOf`; make the branches exclusive \
                         (distinct types, or a required property with a distinct `const`) or \
                         use `anyOf`",
                        self.target.name()
                    ),
                ));
            }
            return Ok(());
        }
        m.insert("anyOf".into(), branches);
        Ok(())
    }

    /// A one-branch `allOf` merged into its node (OpenAI, Gemini; Anthropic takes `allOf`).
    fn all_of(&self, m: &mut Map<String, Value>, path: &str) -> Result<(), DecodeError> {
        if self.target == Target::Anthropic {
            return Ok(());
        }
        let Some(all) = m.remove("allOf") else {
            return Ok(());
        };
        if let Some([Value::Object(only)]) = all.as_array().map(Vec::as_slice)
            && !only.contains_key("$ref")
            && only
                .keys()
                .all(|k| !m.contains_key(k) || !CONSTRAINTS.contains(&k.as_str()))
        {
            for (k, v) in only {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
            return Ok(());
        }
        self.loosen("allOf", &all, path)?;
        Ok(())
    }
}

/// What a target does with a keyword whose value needs no translation.
enum Support {
    Keep,
    /// Not enforced by the target: see [`Walk::loosen`].
    Loosen,
    /// Constrains nothing.
    Drop,
}

fn support(t: Target, guarantee: bool, k: &str, v: &Value) -> Support {
    let keep = match k {
        "title" | "description" | "required" => true,
        "type" => v.is_string() || (t == Target::OpenAiStrict && v.is_array()),
        "enum" => v.as_array().is_some_and(|values| {
            values.iter().all(|x| match t {
                Target::OpenAiStrict => true,
                Target::Anthropic => !x.is_object() && !x.is_array(),
                Target::GeminiJson => x.is_string() || x.is_number(),
            })
        }),
        "const" => t != Target::GeminiJson,
        "format" => match t {
            Target::OpenAiStrict => v.as_str().is_some_and(|f| OPENAI_FORMATS.contains(&f)),
            Target::Anthropic => v.as_str().is_some_and(|f| ANTHROPIC_FORMATS.contains(&f)),
            Target::GeminiJson => true,
        },
        "pattern" => t == Target::OpenAiStrict || (t == Target::Anthropic && guarantee),
        "minimum" | "maximum" | "maxItems" => t != Target::Anthropic,
        "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => t == Target::OpenAiStrict,
        "minItems" => t != Target::Anthropic || matches!(v.as_u64(), Some(0 | 1)),
        "propertyOrdering" | "$id" | "$anchor" if t == Target::GeminiJson => true,
        _ if CONSTRAINTS.contains(&k) => false,
        // Annotations and unknown keywords.
        _ => return Support::Drop,
    };
    if keep { Support::Keep } else { Support::Loosen }
}

/// A node with a list of types as `anyOf`, one branch per type with the keywords of that type
/// (`enum`/`const` values filtered by type; a branch left with no value goes). `title`,
/// `description` and definitions stay on the node.
fn split_types(mut m: Map<String, Value>, types: &[String]) -> Map<String, Value> {
    m.remove("type");
    let mut node = Map::new();
    for k in ["title", "description", "$defs", "definitions"] {
        if let Some(v) = m.remove(k) {
            node.insert(k.into(), v);
        }
    }
    let branches: Vec<Value> = types
        .iter()
        .filter_map(|t| branch(&m, t).map(Value::Object))
        .collect();
    node.insert("anyOf".into(), Value::Array(branches));
    node
}

fn branch(m: &Map<String, Value>, t: &str) -> Option<Map<String, Value>> {
    let owner = |k: &str| {
        BY_TYPE
            .iter()
            .find(|(_, keys)| keys.contains(&k))
            .map(|(ty, _)| *ty)
    };
    let mine = |ty: &str| ty == t || (ty == "number" && t == "integer");
    let mut out = Map::new();
    out.insert("type".into(), Value::String(t.to_owned()));
    for (k, v) in m {
        match k.as_str() {
            "enum" => {
                let values: Vec<Value> = v
                    .as_array()
                    .map(|vs| vs.iter().filter(|x| of_type(x, t)).cloned().collect())
                    .unwrap_or_default();
                if values.is_empty() {
                    return None;
                }
                if t != "null" {
                    out.insert(k.clone(), Value::Array(values));
                }
            }
            "const" => {
                if !of_type(v, t) {
                    return None;
                }
                if t != "null" {
                    out.insert(k.clone(), v.clone());
                }
            }
            _ => match owner(k) {
                Some(ty) if !mine(ty) => {}
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            },
        }
    }
    Some(out)
}

/// Whether a JSON value is an instance of the JSON Schema type `t`.
fn of_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
