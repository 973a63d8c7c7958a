//! Smaller things a user trips on, each fixed or refused up front with the fix: `run -`,
//! `--beams 0`, `summarize FILE.html`, and log lines a file name cannot forge.

use std::process::{Command, Output};

fn polybrief(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .args(args)
        .env_remove("POLYBRIEF_MODELS")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_dash_is_refused_naming_what_to_do_instead() {
    let output = polybrief(&["run", "-"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end(),
        "error: `run -`: run reads article files and folders, not standard input; save it to a file first (`... > article.txt`, then `polybrief run article.txt`), or use `polybrief translate -` or `polybrief summarize -` for one text"
    );
}

#[test]
fn beams_zero_is_refused_before_any_work() {
    let output = polybrief(&["run", "examples/english-only", "--beams", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid value '0' for '--beams <N>': 0 is not in 1..=16"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn summarize_reads_an_html_file_as_run_does_without_its_markup() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(
        &page,
        "<html><head><title>T</title></head><body><nav>Menu Home Login</nav><article><p>The council in Oakdale said on Monday that the new tram line would open next week.</p><p>Engineers said the bridge repairs were finished ahead of time.</p></article></body></html>",
    )
    .unwrap();
    let output = polybrief(&[
        "summarize",
        page.to_str().unwrap(),
        "--summarizer",
        "extractive",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("The council in Oakdale said on Monday"),
        "{summary}"
    );
    assert!(
        !summary.contains('<') && !summary.contains("Menu"),
        "markup or page chrome in the summary: {summary}"
    );
}

#[cfg(unix)]
#[test]
fn a_file_name_with_a_newline_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("news");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(
        "examples/english-only/channel-post.txt",
        input.join("channel-post.txt"),
    )
    .unwrap();
    let forged = "x\n2026-12-01T03:00:00 done in 1.0s: 9 sources, 0 skipped\u{1b}[2J.txt";
    std::fs::write(input.join(forged), "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .arg("--offline")
        .arg("--cache-dir")
        .arg(dir.path().join("stage-cache"))
        .arg("run")
        .arg(&input)
        .args(["--summarizer", "extractive"])
        .env("HF_HUB_CACHE", dir.path().join("empty-hub-cache"))
        .env_remove("POLYBRIEF_MODELS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-01T03:00:00")),
        "a forged line: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "a raw escape reached the log: {log:?}"
    );
    assert!(log.contains("\\u{1b}[2J"), "{log}");
    // The brief shows the name too, with its escape made visible.
    assert!(!String::from_utf8_lossy(&output.stdout).contains('\u{1b}'));
}
