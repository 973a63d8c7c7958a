//! Smaller things a user trips on, each fixed or refused up front with the fix: `run -` (one
//! article from stdin, read as a file is), `--beams 0`, `summarize`/`translate FILE.html`
//! and `-` (read as `run` reads them), and log lines a file name cannot forge.

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

/// `polybrief ARGS` with `stdin` on its standard input, offline, with its own empty caches.
fn polybrief_with_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .arg("--cache-dir")
        .arg(dir.join("stage-cache"))
        .args(args)
        .env_remove("POLYBRIEF_MODELS")
        .env_remove("HF_HOME")
        .env("HF_HUB_CACHE", dir.join("empty-hub-cache"))
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const STORM_MD: &str = "---\ntitle: Storm Hestia hits Brittany\nsource: Coast Daily\n---\nFerries between Roscoff and Plymouth were halted on Monday as Storm Hestia brought winds of 130 km/h to north-west France.\n\nAbout 30,000 homes lost power, the grid operator said on Monday evening.\n";

const STORM_HTML: &str = "<!doctype html><html><head><title>Coast Daily | News</title></head><body><nav>Menu Home Login</nav><h1>Ferries halted as Storm Hestia hits</h1><p>Ferries between Roscoff and Plymouth were halted on Monday as Storm Hestia brought winds of 130 km/h to north-west France.</p></body></html>";

#[test]
fn run_dash_briefs_one_article_from_stdin_with_its_front_matter() {
    let dir = tempfile::tempdir().unwrap();
    let brief = dir.path().join("brief.md");
    let output = polybrief_with_stdin(
        dir.path(),
        &[
            "run",
            "-",
            "--summarizer",
            "extractive",
            "-o",
            brief.to_str().unwrap(),
        ],
        STORM_MD,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let brief_text = std::fs::read_to_string(&brief).unwrap();
    assert!(
        brief_text
            .contains("1. **Storm Hestia hits Brittany**, Coast Daily — &lt;stdin&gt; (English)"),
        "{brief_text}"
    );
    assert!(brief_text.contains("Ferries between Roscoff and Plymouth were halted"));
    assert!(
        !brief_text.contains("title:"),
        "front matter read as text: {brief_text}"
    );
    assert!(
        !dir.path().join("brief.md.lock").exists(),
        "the lock is released"
    );
}

#[test]
fn run_dash_reads_an_html_page_from_stdin_without_its_markup() {
    let dir = tempfile::tempdir().unwrap();
    let output = polybrief_with_stdin(
        dir.path(),
        &["run", "-", "--summarizer", "extractive"],
        STORM_HTML,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let brief = String::from_utf8_lossy(&output.stdout);
    assert!(
        brief.contains("## Ferries halted as Storm Hestia hits"),
        "{brief}"
    );
    assert!(
        !brief.contains("Menu") && !brief.contains("&lt;p"),
        "{brief}"
    );
}

#[test]
fn run_dash_named_twice_is_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let output = polybrief_with_stdin(dir.path(), &["run", "-", "-"], STORM_MD);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end(),
        "error: `-` (standard input) is named 2 times; it holds one text: name it once, or save the texts to files"
    );
}

#[test]
fn an_output_named_dash_is_stdout_while_the_input_dash_is_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let output = polybrief_with_stdin(
        dir.path(),
        &["run", "-", "--summarizer", "extractive", "-o", "-"],
        STORM_MD,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("## Storm Hestia hits Brittany"));
}

#[test]
fn summarize_and_translate_dash_read_stdin_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["summarize", "translate"] {
        let output = polybrief_with_stdin(dir.path(), &[command, "-"], STORM_HTML);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{command}: {}",
            stderr(&output)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("Ferries between Roscoff and Plymouth"),
            "{command}: {text}"
        );
        assert!(
            !text.contains('<') && !text.contains("Menu"),
            "{command}: {text}"
        );
        let output = polybrief_with_stdin(dir.path(), &[command, "-"], STORM_MD);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !text.contains("title:") && !text.contains("---"),
            "{command}: front matter read as text: {text}"
        );
    }
}

#[test]
fn translate_reads_an_html_file_as_run_does_without_its_markup() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(&page, STORM_HTML).unwrap();
    let output = polybrief(&["translate", page.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("Ferries between Roscoff and Plymouth"),
        "{text}"
    );
    assert!(
        !text.contains('<') && !text.contains("Menu"),
        "markup in the translation: {text}"
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
