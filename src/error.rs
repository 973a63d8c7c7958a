//! The one error type the command line reports, with every user-facing wording in its
//! `Display` and a documented exit code per kind of failure.
//!
//! Exit codes (also in `--help` and the README):
//! - 0: everything asked for was done
//! - 1: a fatal error (a model could not be fetched or loaded, an output could not be written)
//! - 2: a usage error (bad flag, missing input, malformed catalog or prompt template)
//! - 3: finished, but some inputs were skipped (each is listed in the log and the brief)
//! - 4: another polybrief run holds the lock on the same output
//! - 130: interrupted (Ctrl-C); completed work is kept in the cache

use std::path::PathBuf;

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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An opus-mt tokenizer could not be built from the model's files.
    #[error(transparent)]
    MarianTokenizer(#[from] crate::models::marian_tokenizer::TokenizerError),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Read { .. } | Error::Write { .. } | Error::MarianTokenizer(_) => ExitCode::Fatal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
