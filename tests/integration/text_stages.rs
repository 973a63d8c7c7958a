//! The text stages end to end on files: ingest → detect → segment over the example
//! articles under examples/articles, and ingest's handling of bad inputs made in a temp dir.

use std::fs;
use std::path::{Path, PathBuf};

use polybrief::article::{Lang, SegmentedArticle};
use polybrief::pipeline::detect::detect;
use polybrief::pipeline::ingest::{ingest, IngestError, IngestOptions};
use polybrief::pipeline::segment::segment;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/articles")
}

fn run_text_stages() -> Vec<SegmentedArticle> {
    let report = ingest(&[examples()], &IngestOptions::default()).expect("examples exist");
    assert!(report.skipped.is_empty(), "skipped: {:?}", report.skipped);
    assert!(
        report.warnings.is_empty(),
        "warnings: {:?}",
        report.warnings
    );
    report
        .articles
        .into_iter()
        .map(|a| segment(detect(a)))
        .collect()
}

fn code(lang: &Option<Lang>) -> Option<&str> {
    lang.as_ref().map(Lang::code)
}

#[test]
fn example_articles_are_read_in_name_order_with_their_languages() {
    let articles = run_text_stages();
    let found: Vec<(&str, Option<&str>)> = articles
        .iter()
        .map(|a| (a.detected.article.origin.as_str(), code(&a.detected.lang)))
        .collect();
    assert_eq!(
        found,
        [
            ("de-sturm.txt", Some("de")),
            ("en-metro.txt", Some("en")),
            ("feed.jsonl#0", Some("zh")),
            ("feed.jsonl#1", Some("ko")),
            ("fr-tempete.html", Some("fr")),
            ("vi-metro.md", Some("vi")),
        ]
    );
}

#[test]
fn example_metadata_comes_from_front_matter_html_json_and_headlines() {
    let articles = run_text_stages();
    let meta = |origin: &str| {
        articles
            .iter()
            .find(|a| a.detected.article.origin == origin)
            .map(|a| a.detected.article.meta.clone())
            .expect(origin)
    };
    let de = meta("de-sturm.txt");
    assert_eq!(
        de.title.as_deref(),
        Some("Sturm „Hestia“ trifft die bretonische Küste")
    );
    assert_eq!(de.source.as_deref(), Some("Nordsee-Kurier"));
    let fr = meta("fr-tempete.html");
    assert_eq!(
        fr.title.as_deref(),
        Some("La tempête Hestia frappe la Bretagne")
    );
    assert_eq!(fr.source.as_deref(), Some("Ouest Quotidien"));
    assert_eq!(
        fr.url.as_deref(),
        Some("https://ouest-quotidien.example/bretagne/tempete-hestia")
    );
    assert_eq!(
        meta("feed.jsonl#1").published.as_deref(),
        Some("2026-04-30")
    );
    assert_eq!(
        meta("vi-metro.md").title.as_deref(),
        Some("Hà Nội khánh thành tuyến metro số 2")
    );
    assert_eq!(
        meta("en-metro.txt").title.as_deref(),
        Some("Hanoi opens second metro line with Korean-built trains")
    );
}

#[test]
fn html_example_keeps_the_article_and_drops_the_page_around_it() {
    let articles = run_text_stages();
    let fr = articles
        .iter()
        .find(|a| a.detected.article.origin == "fr-tempete.html")
        .unwrap();
    let text = fr.detected.article.text();
    assert!(text.contains("rafales atteignant 150 km/h"));
    for chrome in [
        "Accueil",
        "dataLayer",
        "trackRead",
        "À lire aussi",
        "Mentions légales",
        "Partager",
    ] {
        assert!(!text.contains(chrome), "{chrome:?} leaked into {text:?}");
    }
}

#[test]
fn mixed_article_keeps_english_and_marks_only_the_korean_quote() {
    let articles = run_text_stages();
    let en = articles
        .iter()
        .find(|a| a.detected.article.origin == "en-metro.txt")
        .unwrap();
    let langs: Vec<Option<&str>> = en
        .detected
        .paragraphs
        .iter()
        .map(|p| code(&p.lang))
        .collect();
    // The headline is the title, not a body paragraph.
    assert_eq!(
        en.detected.article.meta.title.as_deref(),
        Some("Hanoi opens second metro line with Korean-built trains")
    );
    assert_eq!(langs, [Some("en"), Some("en"), Some("ko"), Some("en")]);
    let korean: Vec<&str> = en
        .segments
        .iter()
        .filter(|s| code(&s.lang) == Some("ko"))
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(korean.len(), 2, "two Korean sentences: {korean:?}");
    assert!(korean
        .iter()
        .all(|s| s.contains("하노이") || s.contains("베트남")));
}

#[test]
fn segments_cover_every_paragraph_and_point_into_it() {
    for article in run_text_stages() {
        let paragraphs = &article.detected.article.paragraphs;
        for segment in &article.segments {
            assert_eq!(
                &paragraphs[segment.paragraph][segment.span.clone()],
                segment.text
            );
            assert_eq!(
                segment.lang,
                article.detected.paragraphs[segment.paragraph].lang
            );
        }
        for (index, paragraph) in paragraphs.iter().enumerate() {
            let covered: String = article
                .segments
                .iter()
                .filter(|s| s.paragraph == index)
                .map(|s| s.text.as_str())
                .collect();
            let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(
                strip(&covered),
                strip(paragraph),
                "text lost in {}",
                article.detected.article.origin
            );
        }
    }
}

#[test]
fn example_sentences_split_where_expected() {
    let articles = run_text_stages();
    let sentences = |origin: &str| -> Vec<String> {
        let article = articles
            .iter()
            .find(|a| a.detected.article.origin == origin)
            .unwrap();
        article.segments.iter().map(|s| s.text.clone()).collect()
    };
    let de = sentences("de-sturm.txt");
    assert_eq!(de.len(), 6, "{de:#?}");
    assert!(de[4].contains("am 28. Februar eine orangefarbene Warnung"));
    assert!(de[5].contains("z. B. an der Nordküste"));
    // "当地时间…停电。" is two sentences, then three more in the second paragraph.
    assert_eq!(sentences("feed.jsonl#0").len(), 5);
}

#[test]
fn bad_inputs_are_skipped_with_reasons_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    fs::create_dir(&root).unwrap();
    let good = "Die Fähre fuhr am Morgen wieder. Alle Passagiere waren froh.";
    fs::write(root.join("a-good.txt"), good).unwrap();
    fs::create_dir(root.join("copies")).unwrap();
    fs::write(root.join("copies/same.md"), good).unwrap();
    fs::write(root.join("empty.txt"), "").unwrap();
    fs::write(root.join("binary.txt"), b"GIF89a\x00\x01\x02\x00").unwrap();
    let latin1: Vec<u8> = "Grüße aus Köln, schöne Öfen überall"
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    fs::write(root.join("latin1.txt"), latin1).unwrap();
    fs::write(root.join("big.txt"), "x".repeat(4096)).unwrap();
    fs::write(root.join("slides.pdf"), "%PDF-1.7").unwrap();
    fs::write(root.join(".DS_Store"), "ignored").unwrap();
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, "Outside the input folder.").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, root.join("link.txt")).unwrap();

    let options = IngestOptions {
        max_file_size: 1024,
        ..IngestOptions::default()
    };
    let report = ingest(std::slice::from_ref(&root), &options).unwrap();

    assert_eq!(report.articles.len(), 1);
    assert_eq!(report.articles[0].origin, "a-good.txt");
    assert_eq!(report.articles[0].also_at, ["copies/same.md"]);

    let mut reasons: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|s| {
            let name = s
                .path
                .strip_prefix(&root)
                .unwrap_or(&s.path)
                .display()
                .to_string();
            (name, s.reason.clone())
        })
        .collect();
    reasons.sort();
    let reason = |name: &str| {
        reasons
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.as_str())
            .unwrap_or("<not skipped>")
    };
    assert_eq!(reason("empty.txt"), "empty file");
    assert_eq!(reason("binary.txt"), "binary file (contains NUL bytes)");
    assert!(
        reason("latin1.txt").starts_with("not UTF-8 text"),
        "{}",
        reason("latin1.txt")
    );
    assert_eq!(
        reason("big.txt"),
        "file is 4.0 KiB, over the 1.0 KiB size limit"
    );
    assert!(reason("slides.pdf").starts_with("unsupported file type `.pdf`"));
    #[cfg(unix)]
    assert!(
        reason("link.txt").contains("outside the input folder"),
        "{}",
        reason("link.txt")
    );
    assert!(reasons.iter().all(|(name, _)| name != ".DS_Store"));
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_skipped_unless_running_as_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.txt");
    fs::write(&path, "Nobody may read this article.").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&path).is_ok() {
        // Root (or a capability like CAP_DAC_OVERRIDE) reads any file, so there is
        // nothing to test here.
        eprintln!("skipping unreadable-file check: this process can read mode-000 files (root)");
        return;
    }
    let report = ingest(&[dir.path().to_path_buf()], &IngestOptions::default()).unwrap();
    assert!(report.articles.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].reason, "cannot read: permission denied");
}

#[test]
fn invalid_utf8_in_mostly_good_text_is_repaired_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("almost.txt");
    let mut bytes = "Der Hafen wurde am Dienstag wieder geöffnet, sagte die Behörde. "
        .repeat(4)
        .into_bytes();
    bytes.push(0x96); // a lone Windows-1252 dash
    fs::write(&path, bytes).unwrap();
    let report = ingest(&[path], &IngestOptions::default()).unwrap();
    assert_eq!(report.articles.len(), 1);
    assert!(report.skipped.is_empty());
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("not valid UTF-8; 1 invalid byte sequence(s) replaced"));
}

#[test]
fn a_missing_input_is_a_usage_error_naming_it() {
    let missing = PathBuf::from("/nonexistent/polybrief-input");
    let err = ingest(&[examples(), missing.clone()], &IngestOptions::default()).unwrap_err();
    assert!(matches!(&err, IngestError::Missing { path } if *path == missing));
    assert_eq!(
        err.to_string(),
        "input `/nonexistent/polybrief-input` does not exist; give a file or a folder of articles"
    );
}
