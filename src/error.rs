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

pub use crate::exit_code::ExitCode;

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

    #[error(transparent)]
    Hub(Box<crate::models::hub::HubError>),

    #[error(transparent)]
    Prompt(#[from] crate::prompts::PromptError),

    #[error(transparent)]
    Llm(#[from] crate::models::llm::LlmError),

    #[error("summarizing failed: {0}")]
    Summarize(#[from] crate::pipeline::summarize::SummarizeError),

    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),

    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),

    #[error(transparent)]
    Output(#[from] crate::output::OutputError),

    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),

    #[error(transparent)]
    Ingest(#[from] crate::pipeline::ingest::IngestError),

    #[error(transparent)]
    Translate(#[from] crate::pipeline::translate::TranslateError),

    /// An opus-mt tokenizer could not be built from the model's files.
    #[error(transparent)]
    MarianTokenizer(#[from] crate::models::marian_tokenizer::TokenizerError),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::Prompt(_) | Error::Ingest(_) => ExitCode::Usage,
            Error::Translate(crate::pipeline::translate::TranslateError::NotInCatalog {
                ..
            }) => ExitCode::Usage,
            Error::Read { .. }
            | Error::Write { .. }
            | Error::Llm(_)
            | Error::Summarize(_)
            | Error::Translate(_)
            | Error::MarianTokenizer(_) => ExitCode::Fatal,
            Error::Hub(e) => match **e {
                crate::models::hub::HubError::Catalog(_) => ExitCode::Usage,
                _ => ExitCode::Fatal,
            },
            Error::Cache(crate::cache::CacheError::NoDefaultDir) => ExitCode::Usage,
            Error::Lock(crate::lock::LockError::Held { .. }) => ExitCode::Locked,
            Error::Lock(_) | Error::Cache(_) | Error::Output(_) => ExitCode::Fatal,
            Error::Interrupted(_) => ExitCode::Interrupted,
        }
    }
}

/// Boxed: hub errors carry the repo, revision, file and ways out, and would otherwise make
/// every `Result` in the crate as large as the largest of them.
impl From<crate::models::hub::HubError> for Error {
    fn from(err: crate::models::hub::HubError) -> Self {
        Error::Hub(Box::new(err))
    }
}

impl From<crate::pipeline::translate::stage::PlanError> for Error {
    fn from(err: crate::pipeline::translate::stage::PlanError) -> Self {
        use crate::pipeline::translate::stage::PlanError;
        match err {
            PlanError::Translate(e) => Error::Translate(e),
            PlanError::Cache(e) => Error::Cache(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_run_exits_130() {
        let error = Error::from(crate::interrupt::Interrupted);
        assert_eq!(error.exit_code(), ExitCode::Interrupted);
        assert_eq!(ExitCode::Interrupted as i32, 130);
    }
}
