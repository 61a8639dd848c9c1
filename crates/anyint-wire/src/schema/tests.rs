//! Schema translation per target: what is kept, rewritten, dropped, and refused.

use serde_json::{Value, json};

use super::*;

fn ok(schema: &Value, source: SchemaSource, guarantee: bool, target: Target) -> Value {
    translate(schema, source, guarantee, target).unwrap()
}

fn refused(schema: &Value, source: SchemaSource, guarantee: bool, target: Target) -> String {
    let e = translate(schema, source, guarantee, target).unwrap_err();
    assert_eq!(e.param, Some(source.param()));
    e.path.unwrap()
}

const CHAT: SchemaSource = SchemaSource::ChatResponseFormat;

#[test]
fn anthropic_strict_keeps_what_it_enforces() {
    let s = json!({
        "type": "object", "title": "Forecast", "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {
            "city": {"type": "string", "description": "City", "examples": ["Oslo"]},
            "date": {"type": "string", "format": "date"},
            "site": {"type": "string", "format": "uri"},
            "wind": {"type": ["number", "null"]},
            "unit": {"type": ["string", "null"], "enum": ["C", "F", null]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "kind": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "ref": {"$ref": "#/$defs/point", "description": "dropped beside $ref"}
        },
        "required": ["city"],
        "additionalProperties": true,
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}}
    });
    assert_eq!(
        ok(&s, CHAT, true, Target::Anthropic),
        json!({
            "type": "object", "title": "Forecast",
            "properties": {
                "city": {"type": "string", "description": "City"},
                "date": {"type": "string", "format": "date"},
                "site": {"type": "string", "format": "uri"},
                "wind": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                "unit": {"anyOf": [{"type": "string", "enum": ["C", "F"]}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "kind": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "ref": {"$ref": "#/$defs/point"}
            },
            "required": ["city"],
            "additionalProperties": false,
            "$defs": {"point": {"type": "object", "additionalProperties": false,
                "properties": {"x": {"type": "number"}}}}
        })
    );
}

#[test]
fn anthropic_without_a_guarantee_moves_constraints_into_the_description() {
    let s = json!({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 10, "description": "A number"},
        "s": {"type": "string", "maxLength": 5, "pattern": "a+"},
        "l": {"type": "array", "minItems": 2}}});
    assert_eq!(
        ok(&s, CHAT, false, Target::Anthropic),
        json!({"type": "object", "additionalProperties": false, "properties": {
            "n": {"type": "integer", "description": "A number\n\n{maximum: 10, minimum: 1}"},
            "s": {"type": "string", "description": "{maxLength: 5, pattern: \"a+\"}"},
            "l": {"type": "array", "description": "{minItems: 2}"}}})
    );
}

#[test]
fn anthropic_refuses_what_would_loosen_a_guarantee() {
    let cases = [
        (
            json!({"type": "object", "additionalProperties": false,
                "properties": {"n": {"type": "integer", "minimum": 1}}}),
            "response_format.json_schema.schema.properties.n.minimum",
        ),
        (
            json!({"type": "object", "properties": {"l": {"type": "array", "maxItems": 3}}}),
            "response_format.json_schema.schema.properties.l.maxItems",
        ),
        (
            json!({"type": "object", "properties": {"m": {"type": "object",
                "additionalProperties": {"type": "number"}}}}),
            "response_format.json_schema.schema.properties.m.additionalProperties",
        ),
        (
            json!({"type": "object", "properties": {
                "either": {"oneOf": [{"type": "object"}, {"type": "object", "required": ["a"]}]}}}),
            "response_format.json_schema.schema.properties.either.oneOf",
        ),
        (
            json!({"type": "object", "properties": {"x": {"type": "string", "format": "regex"}}}),
            "response_format.json_schema.schema.properties.x.format",
        ),
        (
            json!({"type": "object", "properties": {"x": {"not": {"type": "null"}}}}),
            "response_format.json_schema.schema.properties.x.not",
        ),
    ];
    for (s, path) in cases {
        assert_eq!(refused(&s, CHAT, true, Target::Anthropic), path, "{s}");
    }
}

#[test]
fn openai_strict_requires_everything_and_closes_objects() {
    let source = SchemaSource::AnthropicOutputConfig;
    let s = json!({"type": "object", "description": "d", "properties": {
            "a": {"type": "string", "default": "x"},
            "b": {"type": "object", "properties": {"c": {"type": "integer", "minimum": 0}},
                  "required": []},
            "e": {"allOf": [{"type": "string", "format": "email"}]}},
        "required": ["a"]});
    assert_eq!(
        ok(&s, source, true, Target::OpenAiStrict),
        json!({"type": "object", "description": "d", "additionalProperties": false,
            "required": ["a", "b", "e"], "properties": {
                "a": {"type": "string"},
                "b": {"type": "object", "additionalProperties": false, "required": ["c"],
                      "properties": {"c": {"type": "integer", "minimum": 0}}},
                "e": {"type": "string", "format": "email"}}})
    );
    // What strict mode cannot enforce is refused with its path in the client's body.
    let s = json!({"type": "object", "properties": {"s": {"type": "string", "minLength": 1}}});
    assert_eq!(
        refused(&s, source, true, Target::OpenAiStrict),
        "output_config.format.schema.properties.s.minLength"
    );
    let list = json!({"type": "array", "items": {"type": "string"}});
    assert_eq!(
        refused(
            &list,
            SchemaSource::GeminiSchema,
            true,
            Target::OpenAiStrict
        ),
        "generationConfig.responseSchema.type"
    );
    let free = json!({"type": "object"});
    assert_eq!(
        refused(&free, source, true, Target::OpenAiStrict),
        "output_config.format.schema.additionalProperties"
    );
}

#[test]
fn a_gemini_json_schema_never_guaranteed_what_gemini_ignores() {
    // `maxLength` is ignored by Gemini's responseJsonSchema, so dropping it loses nothing;
    // `minItems` is honoured there, so it must survive (or be refused).
    let s = json!({"type": "object", "properties": {
        "s": {"type": "string", "maxLength": 3},
        "l": {"type": "array", "minItems": 2}}});
    let source = SchemaSource::GeminiJsonSchema;
    assert_eq!(
        ok(&s, source, true, Target::OpenAiStrict),
        json!({"type": "object", "additionalProperties": false, "required": ["l", "s"],
            "properties": {"s": {"type": "string"}, "l": {"type": "array", "minItems": 2}}})
    );
    assert_eq!(
        refused(&s, source, true, Target::Anthropic),
        "generationConfig.responseJsonSchema.properties.l.minItems"
    );
}

#[test]
fn gemini_json_rewrites_const_type_lists_and_definitions() {
    let s = json!({"type": "object", "additionalProperties": {"type": "string"},
        "properties": {
            "k": {"const": "x"},
            "n": {"type": ["integer", "null"], "minimum": 0},
            "p": {"$ref": "#/definitions/pt"},
            "t": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]}},
        "definitions": {"pt": {"type": "object"}}});
    assert_eq!(
        ok(&s, CHAT, true, Target::GeminiJson),
        json!({"type": "object", "additionalProperties": {"type": "string"},
            "properties": {
                "k": {"enum": ["x"]},
                "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
                "p": {"$ref": "#/$defs/pt"},
                "t": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]}},
            "$defs": {"pt": {"type": "object"}}})
    );
    let s = json!({"type": "string", "pattern": "^a"});
    assert_eq!(
        refused(&s, CHAT, true, Target::GeminiJson),
        "response_format.json_schema.schema.pattern"
    );
    assert_eq!(
        ok(&s, CHAT, false, Target::GeminiJson),
        json!({"type": "string"})
    );
    let flag = json!({"const": true});
    assert_eq!(
        refused(&flag, CHAT, true, Target::GeminiJson),
        "response_format.json_schema.schema.const"
    );
}

#[test]
fn discriminated_unions_stay_exact() {
    let s = json!({"type": "object", "properties": {"pet": {"oneOf": [
            {"$ref": "#/$defs/cat"}, {"$ref": "#/$defs/dog"}],
            "discriminator": {"propertyName": "kind"}}},
        "required": ["pet"], "additionalProperties": false,
        "$defs": {
            "cat": {"type": "object", "required": ["kind"], "additionalProperties": false,
                    "properties": {"kind": {"const": "cat"}}},
            "dog": {"type": "object", "required": ["kind"], "additionalProperties": false,
                    "properties": {"kind": {"const": "dog"}}}}});
    let out = ok(&s, SchemaSource::GeminiSchema, true, Target::OpenAiStrict);
    assert_eq!(
        out["properties"]["pet"],
        json!({"anyOf": [{"$ref": "#/$defs/cat"}, {"$ref": "#/$defs/dog"}]})
    );
    assert!(!is_recursive(&out));
}
