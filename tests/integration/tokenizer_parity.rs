//! The opus-mt tokenizer built from a repository's own files gives exactly the ids and texts
//! transformers' `MarianTokenizer` gives, on the fixtures written by
//! scripts/reference/make_marian_fixtures.py (tests/fixtures/marian/{tiny,tiny-sep}).

use std::path::{Path, PathBuf};

use polybrief::models::marian_tokenizer::{MarianTokenizer, TokenizerError};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/marian")
        .join(name)
}

fn reference(dir: &Path) -> Value {
    let text =
        std::fs::read_to_string(dir.join("reference.json")).expect("reference.json is readable");
    serde_json::from_str(&text).expect("reference.json is JSON")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id list")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("an id")).expect("id fits u32"))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("a string").to_string())
        .collect()
}

fn joint() -> MarianTokenizer {
    let dir = fixture("tiny");
    MarianTokenizer::from_files(
        &dir.join("source.spm"),
        &dir.join("target.spm"),
        &dir.join("vocab.json"),
    )
    .expect("tiny fixture tokenizer loads")
}

#[test]
fn input_ids_match_transformers_on_every_fixture_sentence() {
    for name in ["tiny", "tiny-sep"] {
        let dir = fixture(name);
        let tok = MarianTokenizer::from_dir(&dir).expect("fixture tokenizer loads");
        let reference = reference(&dir);
        let sentences = reference["sentences"].as_array().expect("sentences");
        assert!(sentences.len() >= 6, "{name}: fixture has its sentences");
        for s in sentences {
            let text = s["text"].as_str().expect("text");
            assert_eq!(
                tok.encode(text).expect("encodes"),
                ids(&s["input_ids"]),
                "{name}: {text:?}"
            );
        }
    }
}

#[test]
fn edge_case_texts_split_into_the_same_pieces_and_ids() {
    for name in ["tiny", "tiny-sep"] {
        let dir = fixture(name);
        let tok = MarianTokenizer::from_dir(&dir).expect("fixture tokenizer loads");
        for case in reference(&dir)["tokenizer_cases"]
            .as_array()
            .expect("tokenizer_cases")
        {
            let text = case["text"].as_str().expect("text");
            assert_eq!(
                tok.tokenize(text),
                strings(&case["pieces"]),
                "{name}: pieces of {text:?}"
            );
            assert_eq!(
                tok.encode(text).expect("encodes"),
                ids(&case["input_ids"]),
                "{name}: ids of {text:?}"
            );
        }
    }
}

#[test]
fn generated_ids_decode_to_the_reference_text() {
    for name in ["tiny", "tiny-sep"] {
        let dir = fixture(name);
        let tok = MarianTokenizer::from_dir(&dir).expect("fixture tokenizer loads");
        for s in reference(&dir)["sentences"].as_array().expect("sentences") {
            for (ids_key, text_key) in [("greedy_ids", "greedy_text"), ("beam4_ids", "beam4_text")]
            {
                if s.get(ids_key).is_none() {
                    continue; // tiny-sep records greedy outputs only
                }
                let decoded = tok.decode(&ids(&s[ids_key])).expect("decodes");
                assert_eq!(
                    decoded,
                    s[text_key].as_str().expect("text"),
                    "{name}: {ids_key} of {:?}",
                    s["text"]
                );
            }
        }
    }
}

#[test]
fn decoding_skips_special_ids_and_keeps_target_only_pieces() {
    for name in ["tiny", "tiny-sep"] {
        let dir = fixture(name);
        let tok = MarianTokenizer::from_dir(&dir).expect("fixture tokenizer loads");
        for case in reference(&dir)["decode_cases"]
            .as_array()
            .expect("decode_cases")
        {
            let decoded = tok.decode(&ids(&case["ids"])).expect("decodes");
            assert_eq!(
                decoded,
                case["text"].as_str().expect("text"),
                "{name}: ids {}",
                case["ids"]
            );
        }
    }
}

#[test]
fn special_ids_and_vocab_size_match_the_model_config() {
    for name in ["tiny", "tiny-sep"] {
        let dir = fixture(name);
        let tok = MarianTokenizer::from_dir(&dir).expect("fixture tokenizer loads");
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("config.json")).expect("config.json"),
        )
        .expect("json");
        assert_eq!(
            Some(u64::from(tok.pad_id())),
            config["pad_token_id"].as_u64(),
            "{name}"
        );
        assert_eq!(
            Some(u64::from(tok.pad_id())),
            config["decoder_start_token_id"].as_u64(),
            "{name}"
        );
        assert_eq!(
            Some(u64::from(tok.eos_id())),
            config["eos_token_id"].as_u64(),
            "{name}"
        );
        assert_eq!(
            tok.unk_id(),
            1,
            "{name}: Marian vocabularies put <unk> at 1"
        );
        assert_eq!(
            Some(tok.vocab_size() as u64),
            config["vocab_size"].as_u64(),
            "{name}"
        );
    }
}

#[test]
fn batch_encoding_and_token_counts_agree_with_single_encoding() {
    let tok = joint();
    let texts: Vec<String> = reference(&fixture("tiny"))["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| s["text"].as_str().expect("text").to_string())
        .collect();
    let batch = tok.encode_batch(&texts).expect("encodes");
    for (text, ids) in texts.iter().zip(&batch) {
        assert_eq!(ids, &tok.encode(text).expect("encodes"));
        assert_eq!(tok.token_count(text), ids.len());
        assert_eq!(
            ids.last(),
            Some(&tok.eos_id()),
            "every input ends with </s>"
        );
    }
}

#[test]
fn from_files_and_from_dir_build_the_same_tokenizer() {
    let dir = fixture("tiny");
    let by_dir = MarianTokenizer::from_dir(&dir).expect("loads");
    let by_files = joint();
    for case in reference(&dir)["tokenizer_cases"]
        .as_array()
        .expect("tokenizer_cases")
    {
        let text = case["text"].as_str().expect("text");
        assert_eq!(
            by_dir.encode(text).expect("encodes"),
            by_files.encode(text).expect("encodes")
        );
    }
}

#[test]
fn separate_vocabularies_decode_through_the_target_vocabulary() {
    let dir = fixture("tiny-sep");
    let sep = MarianTokenizer::from_files_separate(
        &dir.join("source.spm"),
        &dir.join("target.spm"),
        &dir.join("vocab.json"),
        &dir.join("target_vocab.json"),
    )
    .expect("loads");
    let shared_by_mistake = MarianTokenizer::from_files(
        &dir.join("source.spm"),
        &dir.join("target.spm"),
        &dir.join("vocab.json"),
    )
    .expect("loads");
    let reference = reference(&dir);
    let mut differs = false;
    for s in reference["sentences"].as_array().expect("sentences") {
        let greedy = ids(&s["greedy_ids"]);
        assert_eq!(
            sep.decode(&greedy).expect("decodes"),
            s["greedy_text"].as_str().expect("text")
        );
        differs |= shared_by_mistake.decode(&greedy).expect("decodes")
            != s["greedy_text"].as_str().expect("text");
    }
    assert!(
        differs,
        "the fixture must tell the target vocabulary from the source one"
    );
}

#[test]
fn a_corrupt_sentencepiece_file_is_named_with_the_way_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = fixture("tiny");
    for file in ["target.spm", "vocab.json"] {
        std::fs::copy(dir.join(file), tmp.path().join(file)).expect("copy");
    }
    std::fs::write(tmp.path().join("source.spm"), b"<html>404 Not Found</html>").expect("write");
    let err = MarianTokenizer::from_dir(tmp.path()).expect_err("garbage is refused");
    assert!(
        matches!(err, TokenizerError::Sentencepiece { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("source.spm") && msg.contains("polybrief models fetch"),
        "{msg}"
    );
}

#[test]
fn a_missing_or_incomplete_vocabulary_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = fixture("tiny");
    for file in ["source.spm", "target.spm"] {
        std::fs::copy(dir.join(file), tmp.path().join(file)).expect("copy");
    }
    let err = MarianTokenizer::from_dir(tmp.path()).expect_err("no vocab.json");
    assert!(matches!(err, TokenizerError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("vocab.json"), "{err}");

    std::fs::write(
        tmp.path().join("vocab.json"),
        r#"{"</s>": 0, "<unk>": 1, "▁a": 2}"#,
    )
    .expect("write");
    let err = MarianTokenizer::from_dir(tmp.path()).expect_err("no <pad>");
    let msg = err.to_string();
    assert!(msg.contains("vocab.json") && msg.contains("<pad>"), "{msg}");

    std::fs::write(tmp.path().join("vocab.json"), "[1, 2, 3]").expect("write");
    let err = MarianTokenizer::from_dir(tmp.path()).expect_err("not an object");
    assert!(matches!(err, TokenizerError::Vocab { .. }), "{err:?}");
}
