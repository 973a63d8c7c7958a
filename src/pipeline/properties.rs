//! Property tests (proptest) over the code that reads hostile bytes: ingest of every format
//! (HTML, Markdown with front matter, plain text, JSON and JSON lines), the brief's escaping,
//! and the sentencepiece model reader. cargo-fuzz needs a nightly toolchain; proptest runs on
//! stable, in every `cargo test` with a small case count, and longer from
//! `scripts/fuzz/run.sh` (`PROPTEST_CASES`, bounded by `timeout`).
//!
//! Each property is "never panics" plus the promise the code makes: ingest returns articles
//! with text or skips the input with a reason; escaped text is one inert Markdown line with no
//! citation-looking brackets and no control characters; a corrupt `.spm` is an error, and a
//! readable one encodes and decodes any text.

use std::path::PathBuf;

use proptest::prelude::*;

use crate::models::marian_tokenizer::sentencepiece::SentencePiece;
use crate::output::{is_hazard, visible_controls};
use crate::pipeline::ingest::{ingest, IngestOptions};
use crate::pipeline::render::escape;

/// Cases per property in `cargo test`; `PROPTEST_CASES` overrides it (the fuzz script).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text with the characters that break parsers and terminals: markup, front-matter fences,
/// brackets and digits, quotes, control characters, bidi overrides, invisible characters,
/// look-alike brackets, CJK and combining marks.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("---\n".to_string()),
        Just("title: \"x\"\n".to_string()),
        Just("lang: en\n".to_string()),
        Just("<p>".to_string()),
        Just("</p>".to_string()),
        Just("<script>".to_string()),
        Just("<!--".to_string()),
        Just("# ".to_string()),
        Just("\n\n".to_string()),
        Just("[9]".to_string()),
        Just("[\u{2060}9]".to_string()),
        Just("⟦3⟧".to_string()),
        Just("{\"text\":".to_string()),
        Just("\u{1b}c".to_string()),
        Just("\u{9b}31m".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{feff}".to_string()),
        Just("\r\n".to_string()),
        Just("한국어 ".to_string()),
        Just("e\u{301}".to_string()),
        "[a-zA-Z0-9 .,]{0,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..40).prop_map(|parts| parts.concat())
}

fn ingest_bytes(name: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the input");
    let report =
        ingest(&[path], &IngestOptions::default()).expect("an existing input is never an error");
    for article in &report.articles {
        assert!(
            !article.paragraphs.is_empty(),
            "an article without text: {article:?}"
        );
        assert!(
            article.paragraphs.iter().all(|p| !p.trim().is_empty()),
            "an empty paragraph: {article:?}"
        );
    }
    for skipped in &report.skipped {
        assert!(!skipped.reason.is_empty());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ingest_of_any_text_in_any_format_reads_or_skips_it(text in hostile_text(), ext in prop::sample::select(vec!["txt", "md", "html", "json", "jsonl"])) {
        ingest_bytes(&format!("input.{ext}"), text.as_bytes());
    }

    #[test]
    fn ingest_of_any_bytes_reads_or_skips_them(bytes in prop::collection::vec(any::<u8>(), 0..512), ext in prop::sample::select(vec!["txt", "md", "html", "json", "jsonl"])) {
        ingest_bytes(&format!("input.{ext}"), &bytes);
    }

    #[test]
    fn json_records_with_hostile_fields_are_read_or_skipped(title in hostile_text(), text in hostile_text(), lang in "[a-zA-Z]{0,4}") {
        let record = serde_json::json!({ "title": title, "text": text, "lang": lang });
        ingest_bytes("feed.jsonl", format!("{record}\n{record}\n").as_bytes());
        ingest_bytes("one.json", serde_json::to_string(&vec![record]).unwrap_or_default().as_bytes());
    }

    #[test]
    fn escaped_text_is_one_inert_line_without_citations_or_controls(text in hostile_text()) {
        let escaped = escape(&text);
        let visible = visible_controls(&escaped);
        prop_assert!(!visible.contains('\n'), "{visible:?}");
        prop_assert!(!visible.chars().any(is_hazard), "{visible:?}");
        // Any bracket left is escaped, so nothing renders as a link or a citation `[n]`.
        for (at, _) in visible.match_indices('[') {
            prop_assert!(at > 0 && visible.as_bytes()[at - 1] == b'\\', "an unescaped bracket: {visible:?}");
        }
        prop_assert!(!visible.starts_with('#') && !visible.starts_with('>'), "{visible:?}");
    }

    #[test]
    fn visible_controls_leaves_no_hazard_and_keeps_other_text(text in hostile_text()) {
        let visible = visible_controls(&text);
        prop_assert!(!visible.chars().any(is_hazard));
        let kept: String = text.chars().filter(|c| !is_hazard(*c)).collect();
        let shown: String = visible.chars().filter(|c| c.is_alphabetic() || c.is_whitespace()).collect();
        prop_assert!(kept.chars().filter(|c| c.is_alphabetic() || c.is_whitespace()).all(|c| shown.contains(c)));
    }

    #[test]
    fn a_corrupted_sentencepiece_model_is_an_error_or_a_working_model(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), text in hostile_text()) {
        let mut bytes = std::fs::read("tests/fixtures/marian/tiny/source.spm").expect("fixture");
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
        bytes.truncate(keep);
        if let Ok(model) = SentencePiece::from_bytes(&bytes) {
            let pieces = model.encode(&text);
            let _ = model.decode_pieces(&pieces);
        }
    }

    #[test]
    fn any_bytes_as_a_sentencepiece_model_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = SentencePiece::from_bytes(&bytes);
    }
}
