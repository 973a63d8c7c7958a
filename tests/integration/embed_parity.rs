//! Parity of polybrief's sentence embedder (BERT + mean pooling + L2 norm) with
//! sentence-transformers' pipeline over transformers' BertModel, on the tiny random checkpoint
//! in tests/fixtures/bert/tiny/ (written by scripts/reference/make_bert_fixtures.py): token ids
//! exactly (including truncation to max_seq_length), embeddings within 1e-4, and a padded batch
//! gives the same vectors as one text at a time.

use polybrief::models::embedder::{EmbedderFiles, SentenceEmbedder};
use polybrief::models::Embedder;
use serde::Deserialize;

use crate::support::target::{repo_root, test_device};

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    max_length: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixture() -> (SentenceEmbedder, Reference) {
    let dir = repo_root().join("tests/fixtures/bert/tiny");
    let files = EmbedderFiles {
        config: dir.join("config.json"),
        weights: dir.join("model.safetensors"),
        tokenizer: dir.join("tokenizer.json"),
        sentence_config: Some(dir.join("sentence_bert_config.json")),
    };
    let embedder = SentenceEmbedder::load(&files, &test_device()).expect("tiny BERT loads");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    (embedder, reference)
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= TOLERANCE, "{what}: max abs diff {worst}");
}

#[test]
fn token_ids_match_the_reference_tokenizer_including_truncation() {
    let (embedder, reference) = fixture();
    assert!(
        reference
            .cases
            .iter()
            .any(|c| c.ids.len() == reference.max_length),
        "a case must be truncated"
    );
    for case in &reference.cases {
        assert_eq!(
            embedder.token_ids(&case.text).unwrap(),
            case.ids,
            "{}",
            case.text
        );
    }
}

#[test]
fn embeddings_match_sentence_transformers_one_by_one() {
    let (mut embedder, reference) = fixture();
    for case in &reference.cases {
        let got = embedder.embed(std::slice::from_ref(&case.text)).unwrap();
        assert_close(&got[0], &case.embedding, &case.text);
        let norm: f32 = got[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "not unit length: {norm}");
    }
}

#[test]
fn a_padded_batch_equals_one_text_at_a_time() {
    let (mut embedder, reference) = fixture();
    let texts: Vec<String> = reference.cases.iter().map(|c| c.text.clone()).collect();
    let batched = embedder.embed(&texts).unwrap();
    assert_eq!(batched.len(), texts.len());
    for (got, case) in batched.iter().zip(&reference.cases) {
        assert_close(got, &case.embedding, &format!("batched: {}", case.text));
    }
}
