//! Stopping cleanly on Ctrl-C, SIGTERM (systemd stop, `kill`) and SIGHUP.
//!
//! The first signal only sets a flag. Every stage checks it: between inputs (ingest, detect,
//! segment, translate, summarize), and inside every model call once per generation step
//! (translation, summaries, key points), so a run stops within one generation step, or within
//! the cost of one bounded non-model unit (one file read, one paragraph identified or
//! segmented, one capped extractive summary) otherwise. Work already finished is in the
//! cache; work cut short is not cached; the brief is not written; the process exits with 130.
//!
//! A second signal exits at once with 130, after removing this run's lock files (the OS
//! drops the locks themselves on exit; removing the files keeps the folder clean): nothing is
//! lost that the cache already holds, because every cache entry and output is written
//! atomically.
//!
//! The checks are the way a run stops; [`GRACE`] is the bound on it. A step that does not reach
//! a check within it after the first signal (a whole-text pass over a multi-megabyte article,
//! a slow model step) is stopped the way a second signal stops the run, so a signal is honoured
//! within `GRACE` in every stage. Only writing the outputs ([`commit`]) is waited for, so that
//! an interrupted run never leaves half a brief.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::exit_code::ExitCode;

/// A stop was requested: the run ends at this boundary, keeping what the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted: finished work is kept in the cache; run the same command again to resume")]
pub struct Interrupted;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The outputs are being written ([`commit`]): the grace timer waits for that to end.
static WRITING: AtomicBool = AtomicBool::new(false);

/// How long after the first signal a run may take to reach a check before it is stopped
/// without one.
pub const GRACE: Duration = Duration::from_millis(1500);

/// Installs the signal handler. Call once, early in `main`; a second call fails with
/// `ctrlc::Error::MultipleHandlers`.
pub fn install() -> Result<(), ctrlc::Error> {
    // ctrlc runs this on its own thread, not in signal context, so logging is safe here.
    ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
            REQUESTED.store(true, Ordering::SeqCst);
            log::warn!(
                "interrupted: stopping (finished work is kept in the cache; run the same command \
                 again to resume). Interrupt again to stop now."
            );
            std::thread::spawn(stop_after_grace);
        } else {
            eprintln!("interrupted again: stopping now");
            stop_now();
        }
    })
}

/// The bound on honouring a signal: a run still going after [`GRACE`] (and after any output
/// write under way) is stopped here.
fn stop_after_grace() {
    std::thread::sleep(GRACE);
    while WRITING.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "interrupted: the current step did not stop within {:.1} s; stopping now",
        GRACE.as_secs_f64()
    );
    stop_now();
}

/// Exits with 130 at once, removing this run's lock files (no `Drop` runs).
fn stop_now() -> ! {
    crate::lock::remove_held_lock_files();
    std::process::exit(ExitCode::Interrupted as i32);
}

/// The last check before the outputs are written: `Err(Interrupted)` once a stop was
/// requested; otherwise a guard during whose life a stop request waits, so that a brief is
/// written whole or not at all.
pub fn commit() -> Result<Writing, Interrupted> {
    WRITING.store(true, Ordering::SeqCst);
    match check() {
        Ok(()) => Ok(Writing(())),
        Err(e) => {
            WRITING.store(false, Ordering::SeqCst);
            Err(e)
        }
    }
}

/// Outputs are being written; see [`commit`].
#[must_use = "the outputs are protected only while the guard lives"]
pub struct Writing(());

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.store(false, Ordering::SeqCst);
    }
}

/// Whether a stop was requested (by a signal or [`request`]).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a stop was requested: `interrupt::check()?` at an article
/// boundary.
pub fn check() -> Result<(), Interrupted> {
    outcome(requested())
}

fn outcome(requested: bool) -> Result<(), Interrupted> {
    if requested {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Requests a stop as the first signal would (for a time budget, and for tests).
pub fn request() {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Clears a request: for tests, and for a long-lived process that runs several jobs.
pub fn reset() {
    SIGNALS.store(0, Ordering::SeqCst);
    REQUESTED.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    // No unit test may set the process-wide flag: ingest, detect, segment and generation read
    // it, and tests run in parallel threads. The flag itself is exercised across processes,
    // with real signals (tests/integration/nightly.rs, signals.rs).
    #[test]
    fn a_requested_stop_is_reported_as_interrupted_with_exit_code_130() {
        assert_eq!(outcome(false), Ok(()));
        assert_eq!(outcome(true), Err(Interrupted));
        assert_eq!(ExitCode::Interrupted as i32, 130);
    }
}
