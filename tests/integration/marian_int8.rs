//! The int8 quality gate: on a Marian trained for a few minutes on a synthetic task
//! (tests/fixtures/marian/trained-synthetic, written by
//! scripts/reference/train_int8_gate_marian.py), polybrief's int8 greedy and beam-4 outputs
//! must equal transformers' float32 ones on at least 99% of 300 held-out sentences. A trained
//! model is needed because a random model's next-token distributions are nearly flat, and
//! int8's error flips their argmax no matter how good the kernels are.

use std::path::PathBuf;

use candle_core::{DType, Device};
use polybrief::models::generate::GenerationParams;
use polybrief::models::marian::{MarianMTModel, WeightPrecision};
use polybrief::pipeline::translate::load_marian_with_precision;
use serde::Deserialize;

use super::marian_parity::run_generate;

/// The gate the issue sets: the share of sentences whose tokens equal float32's.
const MIN_AGREEMENT: f64 = 0.99;

#[derive(Deserialize)]
struct Reference {
    generation: Generation,
    training: Training,
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Generation {
    max_new_tokens: usize,
}

#[derive(Deserialize)]
struct Training {
    greedy_exact_match_with_rule: f64,
}

#[derive(Deserialize)]
struct Sentence {
    input_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    beam4_ids: Vec<u32>,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian/trained-synthetic")
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture_dir().join("reference.json"))
        .expect("reference.json is committed");
    serde_json::from_str(&text).expect("reference.json has the documented format")
}

fn load(precision: WeightPrecision) -> MarianMTModel {
    load_marian_with_precision(&fixture_dir(), DType::F32, &Device::Cpu, precision)
        .expect("the trained fixture loads")
}

/// The share of sentences whose output (decoder start included) equals `want`'s.
fn agreement(
    model: &MarianMTModel,
    r: &Reference,
    num_beams: usize,
    want: impl Fn(&Sentence) -> &[u32],
) -> f64 {
    let params = GenerationParams {
        num_beams,
        ..GenerationParams::for_marian(model.config())
    };
    let mut same = 0;
    for chunk in r.sentences.chunks(50) {
        let sources: Vec<&[u32]> = chunk.iter().map(|s| s.input_ids.as_slice()).collect();
        let got = run_generate(model, &sources, &params, r.generation.max_new_tokens);
        same += chunk
            .iter()
            .zip(&got)
            .filter(|(s, g)| want(s) == g.as_slice())
            .count();
    }
    same as f64 / r.sentences.len() as f64
}

#[test]
fn the_gate_fixture_is_a_trained_model() {
    // Guards the fixture: a model that had not learnt its task would have flat distributions
    // and make the gate meaningless (or impossible).
    let r = reference();
    assert!(r.sentences.len() >= 300);
    assert!(
        r.training.greedy_exact_match_with_rule >= 0.9,
        "{}",
        r.training.greedy_exact_match_with_rule
    );
}

#[test]
fn int8_agrees_with_f32_on_a_trained_model() {
    let r = reference();
    let int8 = load(WeightPrecision::Int8);
    assert_eq!(int8.precision(), WeightPrecision::Int8);
    let greedy = agreement(&int8, &r, 1, |s| &s.greedy_ids);
    let beam4 = agreement(&int8, &r, 4, |s| &s.beam4_ids);
    eprintln!("int8 vs transformers f32: greedy {greedy:.4}, beam-4 {beam4:.4}");
    assert!(greedy >= MIN_AGREEMENT, "greedy agreement {greedy}");
    assert!(beam4 >= MIN_AGREEMENT, "beam-4 agreement {beam4}");
}

#[test]
fn f32_matches_transformers_on_the_trained_model() {
    // The baseline the gate compares against: polybrief's own f32 reproduces the reference.
    let r = reference();
    let f32 = load(WeightPrecision::F32);
    let greedy = agreement(&f32, &r, 1, |s| &s.greedy_ids);
    let beam4 = agreement(&f32, &r, 4, |s| &s.beam4_ids);
    assert_eq!((greedy, beam4), (1.0, 1.0));
}
