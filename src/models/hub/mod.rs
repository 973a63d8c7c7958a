//! Getting catalog models onto disk and proving they are intact.
//!
//! Files come from the Hugging Face hub through the `hf-hub` crate into the same cache layout
//! the Python client uses (`models--org--name/{blobs,snapshots,refs}`), so caches are shared.
//! `hf-hub` reads only `HF_HOME`/`HF_ENDPOINT` and has no timeouts, so this module adds what a
//! command line needs around it:
//! - settings from `HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`;
//! - a pre-flight request per file with our own bounded ureq agent, so an unreachable or
//!   silent hub fails within the timeout with a message naming the repo, the file and the
//!   ways out, and 404/401/500 get precise messages;
//! - the download on a worker thread under a watchdog that gives up when no byte arrived for
//!   the stall timeout (a stuck thread cannot be killed; it is left to die with its socket);
//! - sha256 (or git blob sha1 for small non-LFS files) checked after every download and before
//!   a cached file is first used in a process; a file that fails is removed, never returned.
//!
//! Entries with `path = ...` are read from a local directory and never touch the network.

// Hub errors carry repo, revision, file, cache path and the ways out so that messages can
// name them; they occur once per failed run, so their size on the error path costs nothing.
#![allow(clippy::result_large_err)]

mod download;
mod error;
mod settings;
mod store;

pub use self::error::{CatalogMismatch, HubError};
pub use self::settings::HubSettings;
pub use self::store::{CacheState, FileOutcome, FileReport, LocalModel, ModelStore, VerifyReport};
