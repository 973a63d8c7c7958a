//! Parity of polybrief's Marian model and decoding with HF transformers, on the tiny random
//! checkpoints and reference outputs in tests/fixtures/marian/ (written by
//! scripts/reference/make_marian_fixtures.py): encoder states and first-step logits within
//! 1e-4, greedy and beam-4 ids exactly, one sentence at a time and as one padded batch.
//! `tiny` shares one vocabulary between source and target; `tiny-sep` has separate source and
//! target vocabularies and embeddings (like some tc-big models) and greedy references only.

use std::path::PathBuf;

use candle_core::{DType, Tensor};
use polybrief::models::generate::{generate, GenerationParams, MarianDecoding};
use polybrief::models::marian::MarianMTModel;
use polybrief::pipeline::translate::{
    load_marian, SentenceTokenizer, TranslateSettings, Translator,
};
use serde::Deserialize;

use crate::support::target::{repo_root, test_device};

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    generation: Generation,
    sentences: Vec<Sentence>,
    batched: Batched,
}

#[derive(Deserialize)]
struct Generation {
    max_new_tokens: usize,
    num_beams: usize,
    length_penalty: f64,
    early_stopping: bool,
    no_repeat_ngram_size: usize,
}

#[derive(Deserialize)]
struct Hidden {
    shape: Vec<usize>,
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    input_ids: Vec<u32>,
    encoder_last_hidden_state: Hidden,
    first_step_logits: Vec<f32>,
    greedy_ids: Vec<u32>,
    #[serde(default)]
    beam4_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Batched {
    greedy_ids: Vec<Vec<u32>>,
    #[serde(default)]
    beam4_ids: Vec<Vec<u32>>,
}

const SHARED: &str = "tiny";
const SEPARATE: &str = "tiny-sep";

fn fixture_dir_of(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/marian").join(name)
}

fn fixture_dir() -> PathBuf {
    fixture_dir_of(SHARED)
}

fn reference_of(name: &str) -> Reference {
    let path = fixture_dir_of(name).join("reference.json");
    let text = std::fs::read_to_string(&path).expect("reference.json is committed");
    serde_json::from_str(&text).expect("reference.json has the documented format")
}

fn reference() -> Reference {
    reference_of(SHARED)
}

fn model_of(name: &str) -> MarianMTModel {
    load_marian(&fixture_dir_of(name), DType::F32, &test_device()).expect("tiny model loads")
}

fn model() -> MarianMTModel {
    model_of(SHARED)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn params(model: &MarianMTModel, reference: &Reference, num_beams: usize) -> GenerationParams {
    let g = &reference.generation;
    GenerationParams {
        num_beams,
        length_penalty: g.length_penalty,
        early_stopping: g.early_stopping,
        no_repeat_ngram_size: g.no_repeat_ngram_size,
        ..GenerationParams::for_marian(model.config())
    }
}

/// Runs generation on `sources` as one right-padded batch and returns, per sentence, the ids
/// the reference prints: decoder start token first.
pub(crate) fn run_generate(
    model: &MarianMTModel,
    sources: &[&[u32]],
    params: &GenerationParams,
    max_new: usize,
) -> Vec<Vec<u32>> {
    let pad = model.config().pad_token_id;
    let width = sources.iter().map(|s| s.len()).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for s in sources {
        ids.extend_from_slice(s);
        ids.extend(std::iter::repeat_n(pad, width - s.len()));
        mask.extend(std::iter::repeat_n(1u32, s.len()));
        mask.extend(std::iter::repeat_n(0u32, width - s.len()));
    }
    let ids = Tensor::from_vec(ids, (sources.len(), width), model.device()).unwrap();
    let mask = Tensor::from_vec(mask, (sources.len(), width), model.device()).unwrap();
    let encoded = model.encode(&ids, &mask).unwrap();
    let cache = model.new_cache(&encoded).unwrap();
    let mut decoding = MarianDecoding::new(model, cache);
    let out = generate(&mut decoding, params, &vec![max_new; sources.len()]).unwrap();
    out.into_iter()
        .map(|ids| {
            std::iter::once(params.decoder_start_token_id)
                .chain(ids)
                .collect()
        })
        .collect()
}

#[test]
fn fixture_outputs_vary_in_length() {
    // Guards the fixture itself: per-sequence EOS is only tested if some sequences end early
    // and others run to the maximum length.
    let r = reference();
    let full = r.generation.max_new_tokens + 1;
    let lengths: Vec<usize> = r.sentences.iter().map(|s| s.greedy_ids.len()).collect();
    assert!(lengths.iter().any(|&l| l < full), "{lengths:?}");
    assert!(
        lengths.contains(&full)
            || lengths
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 2,
        "{lengths:?}"
    );
    assert_eq!(r.generation.num_beams, 4);
}

#[test]
fn encoder_states_match_transformers() {
    for name in [SHARED, SEPARATE] {
        encoder_states_match(name);
    }
}

fn encoder_states_match(name: &str) {
    let r = reference_of(name);
    let model = model_of(name);
    for s in &r.sentences {
        let n = s.input_ids.len();
        let ids = Tensor::from_slice(&s.input_ids, (1, n), &test_device()).unwrap();
        let mask = Tensor::ones((1, n), DType::U32, &test_device()).unwrap();
        let hidden = model.encode(&ids, &mask).unwrap().hidden;
        assert_eq!(hidden.dims(), s.encoder_last_hidden_state.shape.as_slice());
        let ours = hidden.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let diff = max_abs_diff(&ours, &s.encoder_last_hidden_state.values);
        assert!(
            diff < TOLERANCE,
            "{name} {:?}: encoder differs by {diff}",
            s.text
        );
    }
}

#[test]
fn padding_does_not_change_encoder_states() {
    for name in [SHARED, SEPARATE] {
        padded_encoder_states_match(name);
    }
}

fn padded_encoder_states_match(name: &str) {
    let r = reference_of(name);
    let model = model_of(name);
    let sources: Vec<&[u32]> = r.sentences.iter().map(|s| s.input_ids.as_slice()).collect();
    let width = sources.iter().map(|s| s.len()).max().unwrap();
    let pad = model.config().pad_token_id;
    let ids: Vec<u32> = sources
        .iter()
        .flat_map(|s| {
            s.iter()
                .copied()
                .chain(std::iter::repeat_n(pad, width - s.len()))
        })
        .collect();
    let mask: Vec<u8> = sources
        .iter()
        .flat_map(|s| {
            std::iter::repeat_n(1u8, s.len()).chain(std::iter::repeat_n(0u8, width - s.len()))
        })
        .collect();
    let ids = Tensor::from_vec(ids, (sources.len(), width), &test_device()).unwrap();
    let mask = Tensor::from_vec(mask, (sources.len(), width), &test_device()).unwrap();
    let hidden = model.encode(&ids, &mask).unwrap().hidden;
    for (i, s) in r.sentences.iter().enumerate() {
        let n = s.input_ids.len();
        let ours = hidden
            .get(i)
            .unwrap()
            .narrow(0, 0, n)
            .unwrap()
            .flatten_all()
            .unwrap();
        let diff = max_abs_diff(
            &ours.to_vec1::<f32>().unwrap(),
            &s.encoder_last_hidden_state.values,
        );
        assert!(
            diff < TOLERANCE,
            "{name} {:?}: padded encoder differs by {diff}",
            s.text
        );
    }
}

#[test]
fn first_step_logits_match_transformers() {
    for name in [SHARED, SEPARATE] {
        first_step_logits_match(name);
    }
}

fn first_step_logits_match(name: &str) {
    let r = reference_of(name);
    let model = model_of(name);
    let start = model.config().decoder_start_token_id;
    for s in &r.sentences {
        let n = s.input_ids.len();
        let ids = Tensor::from_slice(&s.input_ids, (1, n), &test_device()).unwrap();
        let mask = Tensor::ones((1, n), DType::U32, &test_device()).unwrap();
        let dec = Tensor::from_slice(&[start], (1, 1), &test_device()).unwrap();
        let logits = model.forward(&ids, &mask, &dec).unwrap();
        let ours = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let diff = max_abs_diff(&ours, &s.first_step_logits);
        assert!(
            diff < TOLERANCE,
            "{name} {:?}: logits differ by {diff}",
            s.text
        );
    }
}

/// Off the CPU the LM head, the embeddings and the encoder are candle tensors, not the CPU's
/// panels and packed encoder: the path a GPU runs. Built here on the CPU, it is pinned against the same reference, so a
/// CPU-only checkout (CI) still tests what the GPU computes.
#[test]
fn the_tensor_lm_head_that_gpus_use_matches_transformers() {
    let r = reference();
    let cpu = candle_core::Device::Cpu;
    let config = model().config().clone();
    let vb = polybrief::models::marian::var_builder(
        &fixture_dir().join("model.safetensors"),
        DType::F32,
        &cpu,
    )
    .unwrap();
    let model = MarianMTModel::new_with_tensor_head(&config, vb).unwrap();
    let start = model.config().decoder_start_token_id;
    for s in &r.sentences {
        let n = s.input_ids.len();
        let ids = Tensor::from_slice(&s.input_ids, (1, n), &cpu).unwrap();
        let mask = Tensor::ones((1, n), DType::U32, &cpu).unwrap();
        let dec = Tensor::from_slice(&[start], (1, 1), &cpu).unwrap();
        let logits = model.forward(&ids, &mask, &dec).unwrap();
        let diff = max_abs_diff(
            &logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &s.first_step_logits,
        );
        assert!(
            diff < TOLERANCE,
            "{:?}: tensor-head logits differ by {diff}",
            s.text
        );
    }
    let p = params(&model, &r, 4);
    let sources: Vec<&[u32]> = r.sentences.iter().map(|s| s.input_ids.as_slice()).collect();
    let out = run_generate(&model, &sources, &p, r.generation.max_new_tokens);
    assert_eq!(out, r.batched.beam4_ids, "tensor-head beam-4 ids, batched");
}

#[test]
fn greedy_ids_match_transformers_one_by_one() {
    for name in [SHARED, SEPARATE] {
        greedy_ids_match_one_by_one(name);
    }
}

fn greedy_ids_match_one_by_one(name: &str) {
    let r = reference_of(name);
    let model = model_of(name);
    let p = params(&model, &r, 1);
    for s in &r.sentences {
        let out = run_generate(&model, &[&s.input_ids], &p, r.generation.max_new_tokens);
        assert_eq!(out[0], s.greedy_ids, "{name} {:?}", s.text);
    }
}

#[test]
fn beam4_ids_match_transformers_one_by_one() {
    let r = reference();
    let model = model();
    let p = params(&model, &r, 4);
    for s in &r.sentences {
        let out = run_generate(&model, &[&s.input_ids], &p, r.generation.max_new_tokens);
        assert_eq!(out[0], s.beam4_ids, "{:?}", s.text);
    }
}

#[test]
fn greedy_ids_match_transformers_batched() {
    for name in [SHARED, SEPARATE] {
        greedy_ids_match_batched(name);
    }
}

fn greedy_ids_match_batched(name: &str) {
    let r = reference_of(name);
    let model = model_of(name);
    let p = params(&model, &r, 1);
    let sources: Vec<&[u32]> = r.sentences.iter().map(|s| s.input_ids.as_slice()).collect();
    let out = run_generate(&model, &sources, &p, r.generation.max_new_tokens);
    assert_eq!(out, r.batched.greedy_ids, "{name}");
}

#[test]
fn beam4_ids_match_transformers_batched() {
    let r = reference();
    let model = model();
    let p = params(&model, &r, 4);
    let sources: Vec<&[u32]> = r.sentences.iter().map(|s| s.input_ids.as_slice()).collect();
    let out = run_generate(&model, &sources, &p, r.generation.max_new_tokens);
    assert_eq!(out, r.batched.beam4_ids);
}

#[test]
fn pytorch_bin_loads_the_same_weights_as_safetensors() {
    for name in [SHARED, SEPARATE] {
        bin_matches_safetensors(name);
    }
}

fn bin_matches_safetensors(name: &str) {
    let dir = fixture_dir_of(name);
    let from_safetensors = model_of(name);
    let vb = polybrief::models::marian::var_builder(
        &dir.join("pytorch_model.bin"),
        DType::F32,
        &test_device(),
    )
    .unwrap();
    let from_bin = MarianMTModel::new(from_safetensors.config(), vb).unwrap();
    let r = reference_of(name);
    let s = &r.sentences[0];
    let n = s.input_ids.len();
    let ids = Tensor::from_slice(&s.input_ids, (1, n), &test_device()).unwrap();
    let mask = Tensor::ones((1, n), DType::U32, &test_device()).unwrap();
    let start = from_bin.config().decoder_start_token_id;
    let dec = Tensor::from_slice(&[start, s.greedy_ids[1]], (1, 2), &test_device()).unwrap();
    let a = from_safetensors
        .forward(&ids, &mask, &dec)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = from_bin
        .forward(&ids, &mask, &dec)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(a, b);
}

/// A tokenizer that knows exactly the fixture's sentences, and "decodes" to the ids themselves,
/// so that the Translator's batching can be checked against the reference ids.
struct FixtureTokenizer {
    known: Vec<(String, Vec<u32>)>,
}

impl SentenceTokenizer for FixtureTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.known
            .iter()
            .find(|(t, _)| t == text)
            .map(|(_, ids)| ids.clone())
            .ok_or_else(|| format!("unknown sentence {text:?}"))
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        Ok(ids
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(" "))
    }
}

fn fixture_translator(
    num_beams: usize,
    batch_tokens: usize,
) -> (Translator<FixtureTokenizer>, Reference) {
    let r = reference();
    let known = r
        .sentences
        .iter()
        .map(|s| (s.text.trim().to_string(), s.input_ids.clone()))
        .collect();
    let settings = TranslateSettings {
        num_beams,
        length_penalty: r.generation.length_penalty,
        early_stopping: r.generation.early_stopping,
        no_repeat_ngram_size: r.generation.no_repeat_ngram_size,
        repetition_guard: None,
        batch_tokens,
        max_batch_sentences: 3,
        max_source_tokens: 10_000,
        // A fixed maximum, as in the reference run.
        max_output_ratio: 0.0,
        max_output_extra: r.generation.max_new_tokens,
        exact_output_ratio: None,
    };
    (
        Translator::new("tiny".into(), model(), FixtureTokenizer { known }, settings),
        r,
    )
}

fn expected_text(ids: &[u32], model_cfg: &polybrief::models::marian::Config) -> String {
    ids.iter()
        .filter(|&&id| id != model_cfg.pad_token_id && id != model_cfg.eos_id())
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn translator_batches_by_length_and_restores_input_order() {
    // Small batches of at most 3 sentences, in length order: several batches, mixed lengths.
    for (beams, pick) in [(1usize, 0usize), (4, 1)] {
        let (mut translator, r) = fixture_translator(beams, 4 * 64);
        let texts: Vec<String> = r.sentences.iter().map(|s| s.text.clone()).collect();
        let english = translator.translate(&texts).unwrap();
        let cfg = load_marian(&fixture_dir(), DType::F32, &test_device())
            .unwrap()
            .config()
            .clone();
        for (s, got) in r.sentences.iter().zip(&english) {
            let ids = if pick == 0 {
                &s.greedy_ids
            } else {
                &s.beam4_ids
            };
            assert_eq!(
                got,
                &expected_text(ids, &cfg),
                "{:?} with {beams} beams",
                s.text
            );
        }
    }
}

#[test]
fn translator_returns_empty_strings_for_blank_input() {
    let (mut translator, r) = fixture_translator(1, 4096);
    let texts = vec!["  ".to_string(), r.sentences[0].text.clone(), String::new()];
    let english = translator.translate(&texts).unwrap();
    assert_eq!(english.len(), 3);
    assert!(english[0].is_empty() && english[2].is_empty());
    assert!(!english[1].is_empty() || r.sentences[0].greedy_ids.len() <= 2);
}

#[derive(Deserialize)]
struct TextReference {
    sentences: Vec<TextSentence>,
}

#[derive(Deserialize)]
struct TextSentence {
    text: String,
    greedy_text: String,
    #[serde(default)]
    beam4_text: Option<String>,
}

#[test]
fn translator_with_the_opus_mt_tokenizer_reproduces_the_reference_texts() {
    // Text in, text out, through the real tokenizer, batching and decoding: the strings
    // transformers printed with tokenizer.decode(generate(...), skip_special_tokens=True).
    use polybrief::models::marian_tokenizer::MarianTokenizer;
    let dir = fixture_dir();
    let r = reference();
    let text_ref: TextReference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    for beams in [1usize, 4] {
        let settings = TranslateSettings {
            num_beams: beams,
            repetition_guard: None,
            max_output_ratio: 0.0,
            max_output_extra: r.generation.max_new_tokens,
            ..TranslateSettings::default()
        };
        let tokenizer = MarianTokenizer::from_dir(&dir).unwrap();
        let mut translator = Translator::new("tiny".into(), model(), tokenizer, settings);
        let texts: Vec<String> = text_ref.sentences.iter().map(|s| s.text.clone()).collect();
        let english = translator.translate(&texts).unwrap();
        for (s, got) in text_ref.sentences.iter().zip(&english) {
            let want = if beams == 1 {
                &s.greedy_text
            } else {
                s.beam4_text.as_ref().unwrap()
            };
            assert_eq!(got, want.trim(), "{:?} with {beams} beams", s.text);
        }
    }
}

#[test]
fn loading_explains_missing_and_legacy_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture_dir().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let err = load_marian(dir.path(), DType::F32, &test_device())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither model.safetensors nor pytorch_model.bin"),
        "{err}"
    );
    assert!(err.contains(&dir.path().display().to_string()), "{err}");

    // A pre-1.6 torch.save file is a bare pickle, not a zip archive.
    std::fs::write(dir.path().join("pytorch_model.bin"), b"\x80\x02}q\x00.").unwrap();
    let err = load_marian(dir.path(), DType::F32, &test_device())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("legacy") && err.contains("model.safetensors"),
        "{err}"
    );
}

#[test]
fn an_exact_output_ratio_decodes_every_sentence_to_its_share_of_the_source_and_records_it() {
    // The end-to-end benchmark's forced lengths (examples/bench_run.rs): each sentence's
    // output is EOS plus ratio × its source's tokens, whatever the (random) weights prefer.
    use polybrief::workload::{self, Work};
    for beams in [1usize, 4] {
        let (mut translator, r) = fixture_translator(beams, 4096);
        translator.settings_mut().exact_output_ratio = Some(1.5);
        let reference_model = model();
        let cfg = reference_model.config();
        let sources: Vec<&[u32]> = r.sentences.iter().map(|s| s.input_ids.as_slice()).collect();
        workload::start_recording();
        let out = translator.generate_ids(&sources).unwrap();
        let record = workload::take_record();
        let eos = cfg.eos_id();
        for (source, ids) in sources.iter().zip(&out) {
            let want = (1 + (1.5 * (source.len() - 1) as f64).ceil() as usize)
                .min(cfg.max_position_embeddings);
            assert_eq!(ids.len(), want, "{beams} beams, source {source:?}: {ids:?}");
            assert_eq!(ids.last(), Some(&eos));
            assert!(!ids[..ids.len() - 1].contains(&eos), "{ids:?}");
        }
        // Tests running beside this one may add their own batches while it records.
        let recorded: Vec<&Work> = record.work.iter().map(|w| &w.work).collect();
        let want = Work::Translation {
            model: "tiny".into(),
            beams,
            source_tokens: sources.iter().map(|s| s.len()).collect(),
            target_tokens: out.iter().map(Vec::len).collect(),
        };
        assert!(recorded.contains(&&want), "{recorded:?}");
    }
}
