use serde_json::{Value, json};

use super::gemini::{self, Method};
use super::*;

fn body(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[test]
fn base64_packs_little_endian_f32_as_the_api_does() {
    assert_eq!(encode_base64(&[0.25, -0.5, 0.125]), "AACAPgAAAL8AAAA+");
    assert_eq!(encode_base64(&[1.0, -2.0]), "AACAPwAAAMA=");
    assert_eq!(decode_base64("AACAPwAAAMA="), Some(vec![1.0, -2.0]));
    assert_eq!(decode_base64("AACAPw"), Some(vec![1.0]));
    assert_eq!(decode_base64("AAE="), None, "not whole f32s");
    assert_eq!(decode_base64("!!!!"), None);
    let v = [0.1, -0.33, 0.9];
    let back = decode_base64(&encode_base64(&v)).unwrap();
    for (a, b) in v.iter().zip(&back) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn l2_normalize_makes_unit_vectors_and_keeps_zero() {
    let mut v = vec![3.0, 4.0];
    l2_normalize(&mut v);
    assert_eq!(v, vec![0.6, 0.8]);
    let mut z = vec![0.0, 0.0];
    l2_normalize(&mut z);
    assert_eq!(z, vec![0.0, 0.0]);
}

#[test]
fn openai_accepts_the_four_input_shapes() {
    let shapes = [
        (json!("one"), vec![Input::Text("one".into())]),
        (
            json!(["a", "b"]),
            vec![Input::Text("a".into()), Input::Text("b".into())],
        ),
        (json!([1, 2, 3]), vec![Input::Tokens(vec![1, 2, 3])]),
        (
            json!([[1], [2, 3]]),
            vec![Input::Tokens(vec![1]), Input::Tokens(vec![2, 3])],
        ),
    ];
    for (input, want) in shapes {
        let req = openai::decode_request(&body(&json!({"model": "m", "input": input}))).unwrap();
        let got: Vec<Input> = req.items.into_iter().map(|i| i.input).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn openai_refuses_what_the_api_refuses() {
    let too_many: Vec<String> = (0..=OPENAI_MAX_INPUTS).map(|i| format!("t{i}")).collect();
    for (input, needle) in [
        (json!(""), "'$.input' is invalid"),
        (json!([]), "'$.input' is invalid"),
        (json!(["a", ""]), "'$.input' is invalid"),
        (json!([[]]), "'$.input' is invalid"),
        (json!(too_many), "array too long"),
        (json!([-1]), "non-negative"),
        (json!({"a": 1}), "expected a string"),
        (Value::Null, "Missing required parameter: 'input'"),
    ] {
        let e = openai::decode_request(&body(&json!({"model": "m", "input": input}))).unwrap_err();
        assert_eq!(e.param, Some("input"), "{input}");
        assert!(e.message.contains(needle), "{input}: {}", e.message);
    }
    let e = openai::decode_request(&body(&json!({"input": "x"}))).unwrap_err();
    assert_eq!(e.param, Some("model"));
    let e = openai::decode_request(&body(&json!({"model": "m", "input": "x", "dimensions": 0})))
        .unwrap_err();
    assert_eq!(e.param, Some("dimensions"));
    let e = openai::decode_request(&body(
        &json!({"model": "m", "input": "x", "encoding_format": "int8"}),
    ))
    .unwrap_err();
    assert_eq!(e.param, Some("encoding_format"));
}

#[test]
fn openai_answers_sort_by_index_and_read_base64() {
    let upstream = json!({"object": "list", "data": [
        {"object": "embedding", "index": 1, "embedding": "AACAPwAAAMA="},
        {"object": "embedding", "index": 0, "embedding": [0.5, 0.5]},
    ], "usage": {"prompt_tokens": 7, "total_tokens": 7}});
    let r = openai::decode_response(&body(&upstream)).unwrap();
    assert_eq!(r.vectors, vec![vec![0.5, 0.5], vec![1.0, -2.0]]);
    assert_eq!(r.prompt_tokens, Some(7));
    assert_eq!(openai::usage_from_response(&body(&upstream)), Some(7));
    assert!(openai::decode_response(b"{}").is_err());
}

#[test]
fn openai_client_answers_carry_usage_and_the_asked_encoding() {
    let resp = EmbedResponse {
        vectors: vec![vec![0.25, -0.5, 0.125], vec![1.0, -2.0]],
        prompt_tokens: None,
    };
    let float: Value =
        serde_json::from_slice(&openai::encode_response(&resp, "m", Encoding::Float, 5)).unwrap();
    assert_eq!(float["data"][1]["index"], 1);
    assert_eq!(float["data"][0]["embedding"], json!([0.25, -0.5, 0.125]));
    assert_eq!(
        float["usage"],
        json!({"prompt_tokens": 5, "total_tokens": 5})
    );
    assert_eq!(float["model"], "m");
    let b64: Value =
        serde_json::from_slice(&openai::encode_response(&resp, "m", Encoding::Base64, 5)).unwrap();
    assert_eq!(b64["data"][0]["embedding"], "AACAPgAAAL8AAAA+");
    assert_eq!(b64["data"][1]["embedding"], "AACAPwAAAMA=");
}

#[test]
fn gemini_accepts_snake_case_and_joins_parts() {
    let req = gemini::decode_request(
        &body(&json!({
            "content": {"parts": [{"text": "a"}, {"text": "b"}]},
            "task_type": "RETRIEVAL_DOCUMENT", "title": "T", "output_dimensionality": 16,
        })),
        Method::Single,
        "g",
    )
    .unwrap();
    let item = &req.items[0];
    assert_eq!(item.input, Input::Text("a\nb".into()));
    assert_eq!(item.task_type.as_deref(), Some("RETRIEVAL_DOCUMENT"));
    assert_eq!(item.title.as_deref(), Some("T"));
    assert_eq!(item.dimensions, Some(16));
    assert!(!item.non_text);
    let img = gemini::decode_request(
        &body(&json!({"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}})),
        Method::Single,
        "g",
    )
    .unwrap();
    assert!(img.items[0].non_text);
    assert!(
        openai::encode_request(&img, "u").is_err(),
        "an OpenAI upstream takes text only"
    );
}

#[test]
fn gemini_batches_are_limited_to_one_hundred_with_googles_text() {
    let entry = json!({"model": "models/g", "content": {"parts": [{"text": "x"}]}});
    let ok = json!({"requests": vec![entry.clone(); 100]});
    assert_eq!(
        gemini::decode_request(&body(&ok), Method::Batch, "g")
            .unwrap()
            .items
            .len(),
        100
    );
    let over = json!({"requests": vec![entry; 101]});
    let e = gemini::decode_request(&body(&over), Method::Batch, "g").unwrap_err();
    assert_eq!(e.message, gemini::BATCH_TOO_LARGE);
    for bad in [
        json!({}),
        json!({"requests": []}),
        json!({"requests": [{"content": {"parts": []}}]}),
    ] {
        assert!(
            gemini::decode_request(&body(&bad), Method::Batch, "g").is_err(),
            "{bad}"
        );
    }
}

#[test]
fn a_gemini_upstream_gets_one_entry_per_input_in_batches_of_at_most_one_hundred() {
    let items: Vec<Item> = (0..250).map(|i| Item::text(format!("t{i}"))).collect();
    let req = EmbedRequest {
        model: "public".into(),
        items,
        encoding: Encoding::Float,
    };
    let batches = gemini::encode_batches(&req, "up").unwrap();
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| {
            serde_json::from_slice::<Value>(b).unwrap()["requests"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let last: Value = serde_json::from_slice(&batches[2]).unwrap();
    assert_eq!(last["requests"][0]["content"]["parts"][0]["text"], "t200");
    assert_eq!(last["requests"][0]["model"], "models/up");
    let tokens = EmbedRequest {
        model: "public".into(),
        items: vec![Item {
            input: Input::Tokens(vec![1, 2]),
            ..Item::text("")
        }],
        encoding: Encoding::Float,
    };
    let e = gemini::encode_batches(&tokens, "up").unwrap_err();
    assert_eq!(e.param, Some("input"));
    assert!(
        e.message.contains("token input") && e.message.contains("`public`"),
        "{}",
        e.message
    );
}

#[test]
fn gemini_answers_decode_both_methods_and_encode_back() {
    let batch = json!({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3]}]});
    let r = gemini::decode_response(&body(&batch)).unwrap();
    assert_eq!(r.vectors, vec![vec![0.1, 0.2], vec![0.3]]);
    assert_eq!(r.prompt_tokens, None);
    let single = json!({"embedding": {"values": [0.5]}});
    assert_eq!(
        gemini::decode_response(&body(&single)).unwrap().vectors,
        vec![vec![0.5]]
    );
    let out: Value = serde_json::from_slice(&gemini::encode_response(&r, Method::Batch)).unwrap();
    assert_eq!(out, batch);
    let out: Value = serde_json::from_slice(&gemini::encode_response(
        &EmbedResponse {
            vectors: vec![vec![0.5]],
            prompt_tokens: None,
        },
        Method::Single,
    ))
    .unwrap();
    assert_eq!(out, single);
}

#[test]
fn gemini_passthrough_rewrites_only_the_model_names() {
    let client = json!({"requests": [
        {"model": "models/public", "content": {"parts": [{"text": "a"}]}, "taskType": "CLUSTERING", "extra": 1},
    ]});
    let out: Value =
        serde_json::from_slice(&gemini::rewrite_models(&body(&client), "up").unwrap()).unwrap();
    assert_eq!(out["requests"][0]["model"], "models/up");
    assert_eq!(out["requests"][0]["taskType"], "CLUSTERING");
    assert_eq!(out["requests"][0]["extra"], 1);
}

#[test]
fn mixed_dimensions_cannot_become_one_openai_request() {
    let mut a = Item::text("a");
    a.dimensions = Some(8);
    let req = EmbedRequest {
        model: "m".into(),
        items: vec![a, Item::text("b")],
        encoding: Encoding::Float,
    };
    assert!(openai::encode_request(&req, "u").is_err());
}

#[test]
fn estimates_count_token_ids_and_quarter_characters() {
    let req = EmbedRequest {
        model: "m".into(),
        items: vec![
            Item::text("abcdefgh"),
            Item::text("a"),
            Item {
                input: Input::Tokens(vec![1, 2, 3]),
                ..Item::text("")
            },
        ],
        encoding: Encoding::Float,
    };
    assert_eq!(req.estimate_tokens(), 2 + 1 + 3);
    assert!(req.has_tokens());
}
