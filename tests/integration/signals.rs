//! Signals honoured in every stage of a real run (the binary, offline, extractive, on a long
//! generated English article): SIGTERM inside detect+segment of one long article stops the
//! run within 2 s, and so does SIGTERM inside summarize or synthesize of a 3 MB article (whole-
//! text passes that take tens of seconds in a debug build: `interrupt::GRACE` bounds them);
//! SIGINT during synthesis means no brief and exit 130; a second SIGINT exits at once and still
//! removes the lock file.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A deterministic English article of about `bytes` bytes, in paragraphs of news sentences.
fn long_article(bytes: usize) -> String {
    const SUBJECTS: &[&str] = &[
        "The city council",
        "A spokesperson for the transit agency",
        "The regional health board",
        "Local residents",
        "The mayor",
        "Engineers from the utility",
    ];
    const PLACES: &[&str] = &[
        "Oakdale",
        "Riverton",
        "Port Ellis",
        "Hillcrest",
        "Brookfield",
        "Westmere",
    ];
    const OBJECTS: &[&str] = &[
        "the new tram line",
        "the flood defences",
        "the budget for next year",
        "the hospital extension",
        "the bridge repairs",
        "the housing plan",
    ];
    const TAILS: &[&str] = &[
        "would open on Monday",
        "had cost more than expected",
        "was delayed by the storm",
        "needed another review",
        "carried {n} passengers on its first day",
        "drew {n} comments from the public",
    ];
    let mut state: u64 = 7;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let mut text = String::from("Oakdale transit and city report\n\n");
    while text.len() < bytes {
        for _ in 0..4 {
            let tail = TAILS[next(TAILS.len())].replace("{n}", &(100 + next(99_000)).to_string());
            text.push_str(&format!(
                "{} in {} said that {} {tail}. ",
                SUBJECTS[next(SUBJECTS.len())],
                PLACES[next(PLACES.len())],
                OBJECTS[next(OBJECTS.len())]
            ));
        }
        text.push_str("\n\n");
    }
    text
}

/// A run on `dir/news/article.txt` writing `dir/brief.md`, with its stderr lines on a channel.
struct Run {
    child: Child,
    lines: Receiver<String>,
    brief: PathBuf,
}

impl Run {
    fn start(dir: &Path, article_bytes: usize) -> Run {
        let input = dir.join("news");
        std::fs::create_dir_all(&input).unwrap();
        std::fs::write(input.join("article.txt"), long_article(article_bytes)).unwrap();
        let brief = dir.join("brief.md");
        let mut child = Command::new(env!("CARGO_BIN_EXE_polybrief"))
            .arg("--offline")
            .arg("--cache-dir")
            .arg(dir.join("stage-cache"))
            .arg("run")
            .arg(&input)
            .args(["--summarizer", "extractive", "-o"])
            .arg(&brief)
            .env("HF_HUB_CACHE", dir.join("empty-hub-cache"))
            .env_remove("HF_HOME")
            .env_remove("POLYBRIEF_MODELS")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Run {
            child,
            lines,
            brief,
        }
    }

    fn wait_for(&self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(marker) => return,
                Ok(_) => {}
                Err(e) => panic!("the run never logged `{marker}`: {e}"),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) },
            0
        );
    }

    /// Waits for the exit; returns its code and how long it took.
    fn wait_exit(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                panic!("the run did not stop");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn rest_of_stderr(&self) -> String {
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock_of(brief: &Path) -> PathBuf {
    brief.with_file_name("brief.md.lock")
}

#[test]
fn sigterm_inside_one_long_article_stops_the_run_within_two_seconds() {
    // Ingest is done: detect+segment of the one 1 MB article has begun.
    sigterm_stops_the_run_within_two_seconds(1_000_000, "stage ingest:");
}

#[test]
fn sigint_during_synthesis_means_no_brief_and_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), 300_000);
    run.wait_for("stage summarize:");
    run.signal(libc::SIGINT);
    let (code, _) = run.wait_exit();
    assert_eq!(code, Some(130), "{}", run.rest_of_stderr());
    assert!(!run.brief.exists(), "an interrupted run writes no brief");
    assert!(!lock_of(&run.brief).exists(), "the lock file is removed");
    // The finished stages are kept: a second run finds detect+segment and the summary cached.
    let cache_entries = crate::support::offline_run::cache_entries(&dir.path().join("stage-cache"));
    assert!(cache_entries >= 2, "{cache_entries} cache entries kept");
}

#[test]
fn a_second_sigint_exits_at_once_and_still_removes_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), 1_000_000);
    let lock = lock_of(&run.brief);
    run.wait_for("stage ingest:");
    assert!(lock.exists(), "the run holds its lock");
    run.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(50));
    run.signal(libc::SIGINT);
    let (code, _) = run.wait_exit();
    assert_eq!(code, Some(130));
    assert!(!lock.exists(), "the lock file was left behind");
    assert!(!run.brief.exists());
}

/// SIGTERM 0.3 s after the run logged `after` (the end of the stage before the one under
/// test), on an article of `bytes`: exit 130 within 2 s, no brief, no lock file.
fn sigterm_stops_the_run_within_two_seconds(bytes: usize, after: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), bytes);
    run.wait_for(after);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    let (code, took) = run.wait_exit();
    assert_eq!(code, Some(130), "{}", run.rest_of_stderr());
    assert!(
        took < Duration::from_secs(2),
        "stopped {took:?} after SIGTERM"
    );
    assert!(!run.brief.exists(), "an interrupted run writes no brief");
    assert!(!lock_of(&run.brief).exists(), "the lock file is removed");
}

#[test]
fn sigterm_inside_the_summary_of_a_3_mb_article_stops_the_run_within_two_seconds() {
    sigterm_stops_the_run_within_two_seconds(3_000_000, "stage translate:");
}

#[test]
fn sigterm_inside_the_synthesis_of_a_3_mb_article_stops_the_run_within_two_seconds() {
    sigterm_stops_the_run_within_two_seconds(3_000_000, "stage summarize:");
}
