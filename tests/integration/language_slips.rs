//! A language slip never fails a run: offline with nothing cached, an article whose language
//! needs a translation model that cannot be had is skipped and named (exit 3) while the
//! English articles are briefed; `--lang` and a front-matter `lang:` line settle a language
//! the identifier gets wrong or cannot tell.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::offline_run::{english_example as english_input, stderr};

/// The offline extractive run with string arguments.
fn run(dir: &Path, input: &Path, args: &[&str]) -> Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    crate::support::offline_run::run(dir, input, &args)
}

#[test]
fn an_article_needing_a_model_that_cannot_be_had_is_skipped_and_named_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let input = english_input(dir.path());
    std::fs::copy("examples/articles/de-sturm.txt", input.join("de-sturm.txt")).unwrap();
    let output = run(dir.path(), &input, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let brief = String::from_utf8_lossy(&output.stdout);
    let skipped = &brief[brief.find("## Skipped").expect("a Skipped section")..];
    assert!(
        skipped.contains("de-sturm.txt") && skipped.contains("opus-mt-de-en"),
        "{skipped}"
    );
    assert!(
        brief.contains("channel-post.txt"),
        "the English articles are briefed: {brief}"
    );
    assert!(
        stderr(&output).contains(
            "skipped de-sturm.txt: its translation model Helsinki-NLP/opus-mt-de-en cannot be had"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plain_english_that_statistics_call_french_needs_no_french_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("news");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("tram.txt"), "A new tram line opened in Oakdale on Monday, carrying 14335 passengers on its first day.\n").unwrap();
    let output = run(dir.path(), &input, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("tram.txt (English)"));
}

#[test]
fn lang_flag_and_front_matter_force_a_language() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("news");
    std::fs::create_dir_all(&input).unwrap();
    // Too short and name-heavy for any identifier: unknown, and so skipped, unless told.
    std::fs::write(
        input.join("short.txt"),
        "Oakdale Tram Line: Monday Opening\n",
    )
    .unwrap();
    let unknown = run(dir.path(), &input, &[]);
    assert_ne!(unknown.status.code(), Some(0), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("--lang CODE"),
        "the skip names the fix: {}",
        stderr(&unknown)
    );

    let forced = run(dir.path(), &input, &["--lang", "en"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(String::from_utf8_lossy(&forced.stdout).contains("short.txt (English)"));

    std::fs::write(
        input.join("short.txt"),
        "---\nlang: en\n---\nOakdale Tram Line: Monday Opening\n",
    )
    .unwrap();
    let front_matter = run(dir.path(), &input, &[]);
    assert_eq!(
        front_matter.status.code(),
        Some(0),
        "{}",
        stderr(&front_matter)
    );
}

/// `HF_HUB_OFFLINE` as the Python client reads it, seen through `--summarizer auto` with the
/// default catalog and a hub that refuses connections: offline says so; online tries the hub
/// and, unable to reach it, falls back to extractive summaries with a note all the same.
#[test]
fn summarizer_auto_falls_back_to_extractive_offline_or_when_the_hub_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let input = english_input(dir.path());
    for (value, offline) in [
        ("1", true),
        ("yes", true),
        ("ON", true),
        ("true", true),
        ("0", false),
        ("false", false),
        ("", false),
        ("no", false),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_polybrief"))
            .arg("--cache-dir")
            .arg(dir.path().join("stage-cache"))
            .arg("run")
            .arg(&input)
            .env("HF_HUB_OFFLINE", value)
            .env("HF_HUB_CACHE", dir.path().join("empty-hub-cache"))
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env("POLYBRIEF_HUB_TIMEOUT_SECS", "5")
            .env_remove("HF_HOME")
            .env_remove("POLYBRIEF_MODELS")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "HF_HUB_OFFLINE={value:?}: {}",
            stderr(&output)
        );
        let brief = String::from_utf8_lossy(&output.stdout);
        let note = if offline {
            "the run was offline"
        } else {
            "could not be fetched"
        };
        assert!(
            brief.contains("Summaries are extractive") && brief.contains(note),
            "HF_HUB_OFFLINE={value:?}: {brief}"
        );
    }
}
