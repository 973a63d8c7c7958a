//! Nightly-run guarantees that only show across processes: a lock held by another run is
//! reported with its holder and taken over after that run is killed with kill -9; a cache
//! whose writer is killed mid-storm holds only whole entries; a signal stops a run at the
//! next article boundary with exit code 130, and a second signal stops it at once.
//!
//! The other process is this test binary itself, re-run on the ignored test
//! `nightly::child_process` with `POLYBRIEF_NIGHTLY_CHILD` naming its role.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use polybrief::cache::{CacheKey, StageCache};
use polybrief::error::{Error, ExitCode};
use polybrief::lock::{LockError, OutputLock};

const ROLE_ENV: &str = "POLYBRIEF_NIGHTLY_CHILD";
const PATH_ENV: &str = "POLYBRIEF_NIGHTLY_CHILD_PATH";
const TIMEOUT: Duration = Duration::from_secs(60);
const STORM_STAGE: &str = "storm";

/// A child process in a role, with its stdout lines arriving on a channel.
struct ChildRun {
    child: Child,
    lines: Receiver<String>,
}

impl ChildRun {
    fn spawn(role: &str, path: &Path) -> ChildRun {
        let mut child = Command::new(std::env::current_exe().expect("test binary path"))
            .args([
                "nightly::child_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, role)
            .env(PATH_ENV, path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child test process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        ChildRun { child, lines }
    }

    /// Waits for a line containing `marker` and returns what follows it. (The harness's
    /// `test nightly::child_process ... ` has no newline, so the first marker shares its line.)
    fn wait_for(&self, marker: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find(marker) {
                        return line[at + marker.len()..].trim().to_string();
                    }
                }
                Err(e) => panic!("child never printed `{marker}`: {e}"),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("child did not exit within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// kill -9, and reap.
    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        self.child.wait().expect("reap the child");
    }
}

impl Drop for ChildRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn storm_key(i: usize) -> CacheKey {
    CacheKey::new(STORM_STAGE, &format!("article-{i}"), &("model", "rev", i)).expect("key")
}

/// Large enough (about 256 KiB) that a kill often lands in the middle of a write.
fn storm_value(i: usize) -> Vec<String> {
    (0..1024)
        .map(|j| format!("{i:08}-{j:04}-").repeat(16))
        .collect()
}

/// What the child does, selected by `POLYBRIEF_NIGHTLY_CHILD`. Not a test: without the
/// variable (a plain `cargo test -- --ignored`) it returns at once.
#[test]
#[ignore = "helper process for the other tests in this module"]
fn child_process() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(PATH_ENV).expect("path for the child"));
    match role.as_str() {
        "hold-lock" => {
            let _lock = OutputLock::acquire(&path).expect("child takes the lock");
            println!("LOCKED {}", std::process::id());
            std::thread::sleep(TIMEOUT);
        }
        "put-storm" => {
            let cache = StageCache::open(&path).expect("open cache");
            for i in 0..100_000 {
                cache.put(&storm_key(i), &storm_value(i)).expect("put");
                if i == 10 {
                    println!("WRITING");
                }
            }
        }
        "article-loop" => {
            polybrief::interrupt::install().expect("install the handler");
            println!("READY");
            for article in 0.. {
                // An "article": work that must not be cut in half by the first signal.
                std::thread::sleep(Duration::from_millis(50));
                println!("FINISHED {article}");
                if let Err(stop) = polybrief::interrupt::check() {
                    println!("STOPPED AT BOUNDARY");
                    std::process::exit(polybrief::error::Error::from(stop).exit_code() as i32);
                }
            }
        }
        "stuck" => {
            polybrief::interrupt::install().expect("install the handler");
            println!("READY");
            // Never reaches a boundary: only a second signal can stop it.
            std::thread::sleep(TIMEOUT);
            println!("SLEPT THROUGH");
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn lock_held_by_another_process_is_reported_then_taken_over_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("brief.md");
    let mut holder = ChildRun::spawn("hold-lock", &output);
    let child_pid: u32 = holder.wait_for("LOCKED").parse().unwrap();
    assert_eq!(child_pid, holder.child.id());

    let held = OutputLock::acquire(&output).expect_err("the child holds the lock");
    match &held {
        LockError::Held {
            holder: Some(info), ..
        } => {
            assert_eq!(info.pid, child_pid);
            assert_eq!(info.is_alive(), Some(true));
            assert!(info.command.contains("child_process"), "{}", info.command);
        }
        other => panic!("expected Held with the child's details, got {other:?}"),
    }
    let message = held.to_string();
    assert!(message.contains(&format!("pid {child_pid}")), "{message}");
    assert_eq!(Error::from(held).exit_code(), ExitCode::Locked);
    assert_eq!(ExitCode::Locked as i32, 4);

    holder.kill_9();
    assert!(
        OutputLock::lock_path_for(&output).exists(),
        "a killed run cannot remove its lock file"
    );
    let lock = OutputLock::acquire(&output).expect("the stale lock is taken over");
    let previous = lock.took_over().expect("the takeover is recorded");
    assert_eq!(previous.pid, child_pid);
    assert_eq!(previous.is_alive(), Some(false));
}

#[test]
fn kill_9_during_a_put_storm_leaves_only_whole_entries() {
    let dir = tempfile::tempdir().unwrap();
    // Several kills at different moments, each run overwriting the previous run's entries.
    for delay_ms in [0u64, 37, 150] {
        let mut writer = ChildRun::spawn("put-storm", dir.path());
        writer.wait_for("WRITING");
        std::thread::sleep(Duration::from_millis(delay_ms));
        writer.kill_9();
    }

    let cache = StageCache::open(dir.path()).unwrap();
    let stats = cache.stats().unwrap();
    eprintln!(
        "storm: {} entries, {} orphaned temporary files",
        stats.entries, stats.temp_files.entries
    );
    let on_disk = stats.by_stage.get(STORM_STAGE).map_or(0, |u| u.entries) as usize;
    assert!(
        on_disk >= 11,
        "the writer got {on_disk} entries in before the kills"
    );

    // Entries are written in order, so every one on disk is among the first on_disk + slack.
    let mut readable = 0;
    for i in 0..on_disk + 64 {
        if let Some(value) = cache.get::<Vec<String>>(&storm_key(i)) {
            assert_eq!(
                value,
                storm_value(i),
                "entry {i} holds another entry's data"
            );
            readable += 1;
        }
    }
    let counters = cache.counters(STORM_STAGE);
    assert_eq!(
        counters.corrupt, 0,
        "no entry may be half-written: {counters:?}"
    );
    assert_eq!(
        readable, on_disk,
        "every entry file on disk reads back whole"
    );
}

#[test]
fn first_signal_stops_at_the_next_article_boundary_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = ChildRun::spawn("article-loop", dir.path());
    run.wait_for("READY");
    run.wait_for("FINISHED 0");
    run.signal(libc::SIGINT);
    run.wait_for("STOPPED AT BOUNDARY");
    let status = run.wait_exit();
    assert_eq!(status.code(), Some(ExitCode::Interrupted as i32));
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = ChildRun::spawn("article-loop", dir.path());
    run.wait_for("READY");
    run.signal(libc::SIGTERM);
    run.wait_for("STOPPED AT BOUNDARY");
    assert_eq!(run.wait_exit().code(), Some(130));
}

#[test]
fn second_signal_exits_at_once_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = ChildRun::spawn("stuck", dir.path());
    run.wait_for("READY");
    let started = Instant::now();
    run.signal(libc::SIGINT);
    // Let the handler thread see the first signal before the second arrives.
    std::thread::sleep(Duration::from_millis(200));
    run.signal(libc::SIGINT);
    let status = run.wait_exit();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it stopped without finishing its work"
    );
}
