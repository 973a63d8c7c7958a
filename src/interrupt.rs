//! Stopping cleanly on Ctrl-C, SIGTERM (systemd stop, `kill`) and SIGHUP.
//!
//! The first signal only sets a flag; the pipeline checks [`requested`] (or calls [`check`])
//! at article boundaries, so the article in progress finishes, its results reach the cache,
//! the brief is not written, and the process exits with 130. A second signal exits at once
//! with 130: nothing is lost that the cache already holds, because every cache entry and
//! output is written atomically, and the output lock is released by the OS on exit.

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
                "interrupted: stopping after the current article (finished work is kept in the \
                 cache; run the same command again to resume). Interrupt again to stop now."
            );
        } else {
            eprintln!("interrupted again: stopping now");
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
    if requested() {
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

    // The only unit test touching the process-wide flag, so it cannot race another test.
    #[test]
    fn request_sets_the_flag_check_reports_interrupted_and_reset_clears() {
        reset();
        assert!(!requested());
        assert!(check().is_ok());
        request();
        assert!(requested());
        assert_eq!(check(), Err(Interrupted));
        reset();
        assert!(!requested());
    }
}
