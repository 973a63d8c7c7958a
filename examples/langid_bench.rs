//! Compares language identifiers on the short sentences of `examples/langid_bench.tsv`
//! (126 sentences, 19 languages, written for polybrief): polybrief's own `detect::identify`
//! (script rules + whatlang with a confidence floor), bare `whatlang`, and — with the
//! `bench-lingua` feature — `lingua` restricted to the same 19 languages.
//!
//! ```text
//! cargo run --example langid_bench                          # whatlang rows only
//! cargo run --example langid_bench --features bench-lingua  # adds lingua rows
//! cargo run --example langid_bench -- --errors              # also list the misses
//! ```
//!
//! Accuracy is per length bucket (characters): a "none" answer is not counted as correct,
//! but it is not a wrong language either — polybrief prefers "none" to a wrong guess, so the
//! table shows wrong answers separately.
//!
//! Measured 2026-11-22 (2-core shared machine, dev profile with dependencies at opt-level 3;
//! times are noisy, compare them only within one run):
//!
//! | identifier | ≤20 (n=44) | 21–60 (n=50) | >60 (n=32) | all | wrong | none | µs/text |
//! |---|---|---|---|---|---|---|---|
//! | polybrief `identify` (script rules + whatlang, confidence ≥ 0.3) | 52% | 78% | 100% | 75% | 0 | 32 | 228 |
//! | whatlang 0.16, all languages, best guess | 75% | 84% | 97% | 84% | 20 | 0 | 199 |
//! | whatlang 0.16, only the 19 languages, best guess | 82% | 88% | 100% | 89% | 14 | 0 | 93 |
//! | whatlang 0.16, all languages, `is_reliable()` only | 34% | 44% | 91% | 52% | 0 | 60 | 270 |
//! | polybrief `detect`, sentence as a paragraph of an article in its language | 86% | 90% | 100% | 91% | 0 | 11 | (2 paragraphs) |
//! | lingua 1.8, 19 languages, high accuracy | 100% | 100% | 100% | 100% | 0 | 0 | 1075 |
//! | lingua 1.8, 19 languages, low accuracy | 95% | 96% | 100% | 97% | 4 | 0 | 660 |
//!
//! lingua's cost, same machine: the example binary, stripped, is 1.2 MB without lingua and
//! 81.6 MB with it (its 19 model crates are 79 MB of data); resident memory +65 MiB after
//! the high-accuracy row; building it took 20 min wall / 6.5 min CPU (lingua, its model
//! crates and dependencies, plus shared dependencies rebuilt for the changed feature set).

use std::time::Instant;

use polybrief::article::{Article, ArticleMeta};
use polybrief::pipeline::detect;

struct Case {
    lang: &'static str,
    text: &'static str,
}

fn cases() -> Vec<Case> {
    include_str!("langid_bench.tsv")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split_once('\t'))
        .map(|(lang, text)| Case { lang, text })
        .collect()
}

const BUCKETS: [(&str, usize); 3] = [("≤20 chars", 20), ("21–60", 60), (">60", usize::MAX)];

fn bucket(text: &str) -> usize {
    let n = text.chars().count();
    BUCKETS
        .iter()
        .position(|&(_, max)| n <= max)
        .unwrap_or(BUCKETS.len() - 1)
}

type Identify<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

struct Row {
    name: String,
    correct: [usize; 3],
    total: [usize; 3],
    wrong: usize,
    none: usize,
    micros: f64,
    misses: Vec<String>,
}

fn evaluate(name: &str, identify: Identify, cases: &[Case]) -> Row {
    let mut row = Row {
        name: name.to_string(),
        correct: [0; 3],
        total: [0; 3],
        wrong: 0,
        none: 0,
        micros: 0.0,
        misses: Vec::new(),
    };
    for case in cases {
        let b = bucket(case.text);
        row.total[b] += 1;
        match identify(case.text) {
            Some(found) if found == case.lang => row.correct[b] += 1,
            Some(found) => {
                row.wrong += 1;
                row.misses
                    .push(format!("{} → {found}: {}", case.lang, case.text));
            }
            None => {
                row.none += 1;
                row.misses
                    .push(format!("{} → none: {}", case.lang, case.text));
            }
        }
    }
    const ROUNDS: usize = 20;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for case in cases {
            std::hint::black_box(identify(std::hint::black_box(case.text)));
        }
    }
    row.micros = start.elapsed().as_secs_f64() * 1e6 / (ROUNDS * cases.len()) as f64;
    row
}

/// whatlang's ISO 639-3 codes for the 19 benchmark languages, as ISO 639-1.
#[rustfmt::skip]
const TWO_LETTER: &[(&str, &str)] = &[
    ("deu", "de"), ("fra", "fr"), ("spa", "es"), ("ita", "it"), ("por", "pt"), ("nld", "nl"),
    ("rus", "ru"), ("ukr", "uk"), ("pol", "pl"), ("tur", "tr"), ("swe", "sv"), ("ind", "id"),
    ("vie", "vi"), ("eng", "en"), ("ara", "ar"), ("hin", "hi"), ("cmn", "zh"), ("jpn", "ja"),
    ("kor", "ko"),
];

/// The benchmark language of a sentence (for building its context paragraph).
fn cases_lang(text: &str) -> &'static str {
    cases()
        .into_iter()
        .find(|c| c.text == text)
        .map_or("", |c| c.lang)
}

/// whatlang restricted to the benchmark's languages, like the lingua rows.
fn closed_whatlang() -> &'static whatlang::Detector {
    static DETECTOR: std::sync::OnceLock<whatlang::Detector> = std::sync::OnceLock::new();
    DETECTOR.get_or_init(|| {
        let ours = TWO_LETTER
            .iter()
            .filter_map(|(three, _)| whatlang::Lang::from_code(*three));
        whatlang::Detector::with_allowlist(ours.collect())
    })
}

/// A whatlang answer as a code comparable with the benchmark's (other languages keep their
/// three-letter code and so count as wrong).
fn whatlang_code(lang: whatlang::Lang) -> String {
    let code = lang.code();
    TWO_LETTER
        .iter()
        .find(|(three, _)| *three == code)
        .map_or(code, |(_, two)| two)
        .to_string()
}

/// Resident memory of this process in MiB, from /proc (Linux only).
#[cfg(feature = "bench-lingua")]
fn rss_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

fn main() {
    let show_errors = std::env::args().any(|a| a == "--errors");
    let cases = cases();
    let mut rows = vec![
        evaluate(
            &format!(
                "polybrief detect::identify (script rules + whatlang, confidence ≥ {})",
                detect::MIN_CONFIDENCE
            ),
            Box::new(|t: &str| detect::identify(t).map(|l| l.code().to_string())),
            &cases,
        ),
        evaluate(
            "whatlang 0.16, all languages, best guess",
            Box::new(|t: &str| whatlang::detect(t).map(|i| whatlang_code(i.lang()))),
            &cases,
        ),
        evaluate(
            "whatlang 0.16, only the 19 languages, best guess",
            Box::new(|t: &str| closed_whatlang().detect(t).map(|i| whatlang_code(i.lang()))),
            &cases,
        ),
        evaluate(
            "whatlang 0.16, all languages, is_reliable() only",
            Box::new(|t: &str| {
                whatlang::detect(t)
                    .filter(|i| i.is_reliable())
                    .map(|i| whatlang_code(i.lang()))
            }),
            &cases,
        ),
    ];
    // The same sentences as a paragraph after a long paragraph in the same language: what
    // `detect` does with a short paragraph (a headline, a byline) inside an article.
    let context = |lang: &str| {
        let same = cases.iter().filter(|c| c.lang == lang);
        same.max_by_key(|c| c.text.len())
            .map_or("", |c| c.text)
            .to_string()
    };
    rows.push(evaluate(
        "polybrief detect::detect, sentence as a paragraph of an article in its language",
        Box::new(move |t: &str| {
            let lang = cases_lang(t);
            let paragraphs = vec![context(lang), t.to_string()];
            let article = Article::new("bench".into(), ArticleMeta::default(), paragraphs);
            detect::detect(article).paragraphs[1]
                .lang
                .as_ref()
                .map(|l| l.code().to_string())
        }),
        &cases,
    ));
    // Other confidence floors for polybrief's detector, to show the wrong/none trade-off.
    for floor in [0.0, 0.1, 0.2, 0.3] {
        rows.push(evaluate(
            &format!("  same, confidence ≥ {floor}"),
            Box::new(move |t: &str| {
                detect::identify_with_floor(t, floor).map(|l| l.code().to_string())
            }),
            &cases,
        ));
    }
    #[cfg(feature = "bench-lingua")]
    let notes = lingua_rows(&cases, &mut rows);
    #[cfg(not(feature = "bench-lingua"))]
    let notes = ["lingua rows need `--features bench-lingua`".to_string()];

    println!(
        "{} sentences; buckets by length in characters.\n",
        cases.len()
    );
    let counts: Vec<String> = BUCKETS
        .iter()
        .enumerate()
        .map(|(b, (name, _))| format!("{name} (n={})", rows[0].total[b]))
        .collect();
    println!(
        "| identifier | {} | all | wrong | none | µs/sentence |",
        counts.join(" | ")
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let pct = |c: usize, t: usize| format!("{:.0}%", 100.0 * c as f64 / t.max(1) as f64);
        let buckets: Vec<String> = (0..3).map(|b| pct(row.correct[b], row.total[b])).collect();
        let all = pct(row.correct.iter().sum(), row.total.iter().sum());
        println!(
            "| {} | {} | {all} | {} | {} | {:.1} |",
            row.name,
            buckets.join(" | "),
            row.wrong,
            row.none,
            row.micros
        );
    }
    for note in notes {
        println!("\n{note}");
    }
    if show_errors {
        for row in &rows {
            println!("\n{}:", row.name);
            for miss in &row.misses {
                println!("  {miss}");
            }
        }
    }
}

#[cfg(feature = "bench-lingua")]
fn lingua_rows(cases: &[Case], rows: &mut Vec<Row>) -> Vec<String> {
    let mut notes = Vec::new();
    use lingua::Language::*;
    use lingua::LanguageDetectorBuilder;

    let languages = [
        German, French, Spanish, Italian, Portuguese, Dutch, Russian, Ukrainian, Polish, Turkish,
        Swedish, Indonesian, Vietnamese, English, Arabic, Hindi, Chinese, Japanese, Korean,
    ];
    let code = |l: lingua::Language| l.iso_code_639_1().to_string();

    let before = rss_mib();
    let start = Instant::now();
    let high = LanguageDetectorBuilder::from_languages(&languages)
        .with_preloaded_language_models()
        .build();
    let load = start.elapsed();
    let after = rss_mib();
    notes.push(format!(
        "lingua high-accuracy models: loaded in {:.2} s, resident memory +{:.0} MiB",
        load.as_secs_f64(),
        after.zip(before).map_or(f64::NAN, |(a, b)| a - b)
    ));
    rows.push(evaluate(
        "lingua 1.8, 19 languages, high accuracy",
        Box::new(|t: &str| high.detect_language_of(t).map(code)),
        cases,
    ));

    notes.push(format!(
        "resident memory after the high-accuracy row: +{:.0} MiB over before loading",
        rss_mib().zip(before).map_or(f64::NAN, |(a, b)| a - b)
    ));

    let low = LanguageDetectorBuilder::from_languages(&languages)
        .with_low_accuracy_mode()
        .with_preloaded_language_models()
        .build();
    rows.push(evaluate(
        "lingua 1.8, 19 languages, low accuracy",
        Box::new(|t: &str| low.detect_language_of(t).map(code)),
        cases,
    ));
    notes
}
