//! The candle sentence encoder against the original runtime (sentence-transformers on PyTorch),
//! on the fixed sentences of `scripts/models/sentence_reference.py`: same token ids, and
//! embeddings whose cosine to the reference is 1 to five decimals.

use scoring_service::meaning::{SentenceEncoder, default_model_dir};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    sentences: Vec<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/sentence_reference.json")).expect("fixture")
}

fn encoder() -> SentenceEncoder {
    SentenceEncoder::load(&default_model_dir())
        .expect("the sentence model (run scripts/fetch-assets.sh)")
}

#[test]
fn the_tokenizer_gives_the_reference_token_ids() {
    let encoder = encoder();
    for r in fixture().sentences {
        assert_eq!(
            encoder.token_ids(&r.text).unwrap(),
            r.token_ids,
            "{}",
            r.text
        );
    }
}

#[test]
fn embeddings_match_the_original_runtime_in_one_batch_and_alone() {
    let encoder = encoder();
    let fixture = fixture();
    let texts: Vec<&str> = fixture.sentences.iter().map(|r| r.text.as_str()).collect();
    let batched = encoder.embed(&texts).unwrap();
    for (r, got) in fixture.sentences.iter().zip(&batched) {
        let alone = &encoder.embed(&[r.text.as_str()]).unwrap()[0];
        for e in [got, alone] {
            let cosine: f32 = e
                .as_slice()
                .iter()
                .zip(&r.embedding)
                .map(|(a, b)| a * b)
                .sum();
            let worst = e
                .as_slice()
                .iter()
                .zip(&r.embedding)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(cosine > 0.99999, "{}: cosine {cosine}", r.text);
            assert!(worst < 1e-4, "{}: largest difference {worst}", r.text);
        }
    }
}

#[test]
fn similar_meanings_are_closer_than_unrelated_ones() {
    let encoder = encoder();
    let e = encoder
        .embed(&[
            "generate unique short keys",
            "I keep a counter and write each number in base 62 as the code.",
            "Last weekend I went hiking in the mountains with my dog.",
        ])
        .unwrap();
    assert!(e[0].similarity(&e[1]) > e[0].similarity(&e[2]) + 0.1);
}

#[test]
fn a_missing_model_stops_the_service_with_the_fix() {
    let env: std::collections::HashMap<String, String> = [(
        "SENTENCE_MODEL_DIR".to_string(),
        "/nonexistent/all-minilm-l6-v2".to_string(),
    )]
    .into_iter()
    .collect();
    let config = scoring_service::Config::from_env(&env).unwrap();
    let err = scoring_service::load_encoder(&config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/all-minilm-l6-v2/config.json"),
        "{err}"
    );
    assert!(err.contains("scripts/fetch-assets.sh"), "{err}");
}
