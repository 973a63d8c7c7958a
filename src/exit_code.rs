//! The process's exit statuses, documented in `--help` and the README. Which error gets which
//! status is decided in one place, `Error::exit_code`; this type sits in the bottom layer so
//! that the signal handler can exit with [`ExitCode::Interrupted`] without knowing errors.

/// Exit status of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Fatal = 1,
    Usage = 2,
    SkippedInputs = 3,
    Locked = 4,
    Interrupted = 130,
}
