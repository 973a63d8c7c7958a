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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::exit_code::ExitCode;

/// A stop was requested: the run ends at this boundary, keeping what the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted: finished work is kept in the cache; run the same command again to resume")]
pub struct Interrupted;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

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
        } else {
            eprintln!("interrupted again: stopping now");
            crate::lock::remove_held_lock_files();
            std::process::exit(ExitCode::Interrupted as i32);
        }
    })
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
