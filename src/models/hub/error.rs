//! Why a model could not be made available: every hub failure, with the repo, revision, file
//! and the ways out, worded once.

use std::path::PathBuf;

use crate::models::catalog::CatalogError;

/// Why a model could not be made available.
/// The hub serves another file than the catalog pins (boxed in `HubError`: it is the largest
/// error and would otherwise enlarge every `Result` of the hub code).
#[derive(Debug, thiserror::Error)]
#[error(
    "the hub serves `{file}` of {repo} at `{revision}` as {what}, but the catalog ({origin}) pins {pinned}; \
     nothing was downloaded. Pin the revision the catalog was written for, or refresh the pins with \
     scripts/ops/pin_catalog.py"
)]
pub struct CatalogMismatch {
    pub repo: String,
    pub revision: String,
    pub file: String,
    pub what: String,
    pub pinned: String,
    pub origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    #[error("cannot reach {endpoint} to download `{file}` of {repo}: {reason}\n{ways_out}")]
    Unreachable {
        endpoint: String,
        repo: String,
        file: String,
        reason: String,
        ways_out: String,
    },

    #[error(
        "{url} answered 404 ({what}): {repo} has no `{file}` at revision `{revision}`; check the repo id, \
         revision and file name in the model catalog (`polybrief models list` shows them; \
         scripts/ops/pin_catalog.py re-reads them from the hub)"
    )]
    NotFound {
        repo: String,
        revision: String,
        file: String,
        url: String,
        what: String,
    },

    #[error(
        "{url} answered {status}: {repo} is gated or private; accept its terms on the hub and set HF_TOKEN \
         to a token that may read it"
    )]
    Unauthorized {
        repo: String,
        file: String,
        url: String,
        status: u16,
    },

    #[error("{url} answered {status} for `{file}` of {repo}; the hub or mirror has a problem, try again later \
             or set HF_ENDPOINT to another mirror")]
    Server {
        repo: String,
        file: String,
        url: String,
        status: u16,
    },

    #[error(
        "{endpoint} answered for `{file}` of {repo} but not like a Hugging Face hub ({reason}); \
             check HF_ENDPOINT"
    )]
    Protocol {
        endpoint: String,
        repo: String,
        file: String,
        reason: String,
    },

    #[error(
        "download of `{file}` from {repo} stalled: no data for {secs:.0} s after {received} bytes; the partial \
         file is kept and the next `polybrief models fetch` resumes it\n{ways_out}"
    )]
    Stalled {
        repo: String,
        file: String,
        secs: f64,
        received: u64,
        ways_out: String,
    },

    #[error(
        "download of `{file}` from {repo} broke off: {reason}; the partial file is kept and the next \
         `polybrief models fetch` resumes it"
    )]
    Transfer {
        repo: String,
        file: String,
        reason: String,
    },

    #[error(
        "`{file}` of {repo} is corrupt: sha256 {actual}, expected {expected}{}",
        if *removed { "; the file was removed: run `polybrief models fetch` to download it again (if this \
            repeats, the hub or mirror serves different bytes than the catalog pins)" }
        else { "; it was NOT removed (it is in your local model directory): replace it" }
    )]
    HashMismatch {
        repo: String,
        file: String,
        expected: String,
        actual: String,
        removed: bool,
    },

    #[error("`{file}` of {repo} has {actual} bytes, expected {expected}{}",
        if *removed { "; the file was removed: run `polybrief models fetch` to download it again" }
        else { "; replace it" })]
    SizeMismatch {
        repo: String,
        file: String,
        expected: u64,
        actual: u64,
        removed: bool,
    },

    #[error("{0}")]
    CatalogMismatch(Box<CatalogMismatch>),

    #[error("model {id}: `{file}` of {repo} at `{revision}` is not in the cache {cache}{}\n{ways_out}",
        if *offline { " and offline mode is on (--offline or HF_HUB_OFFLINE)" } else { "" })]
    NotCached {
        id: String,
        repo: String,
        revision: String,
        file: String,
        cache: PathBuf,
        offline: bool,
        ways_out: String,
    },

    #[error("model {id}: local directory {dir} has no `{file}` (set by `path` in {origin})")]
    LocalMissing {
        id: String,
        dir: PathBuf,
        file: String,
        origin: String,
    },

    #[error("model {id} has no file `{file}` in the catalog")]
    NoSuchFile { id: String, file: String },

    #[error("another process holds the download lock {path}; wait for it to finish or remove the lock file")]
    Locked { path: PathBuf },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
