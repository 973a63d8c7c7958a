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

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::error::ExitCode;
use crate::models::catalog::{is_commit_sha, is_sha256, CatalogError, FileEntry, ModelEntry};
use crate::progress::{Reporter, Task};

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Bound on every network wait; with no network a fetch fails within about this long.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Extra resumed attempts after a transfer breaks off midway.
const DEFAULT_RETRIES: u32 = 2;

/// How to reach the hub and where the cache is.
#[derive(Clone, Debug, PartialEq)]
pub struct HubSettings {
    /// The hub cache (`.../huggingface/hub`), shared with the Python client.
    pub cache_dir: PathBuf,
    /// `https://huggingface.co` or a mirror, without a trailing `/`.
    pub endpoint: String,
    pub token: Option<String>,
    /// Never use the network; only the cache and local directories.
    pub offline: bool,
    /// Longest wait for a connection, a response, or the next bytes of a download.
    pub timeout: Duration,
    /// Extra attempts (resuming from the partial file) after a transfer breaks off.
    pub retries: u32,
}

impl HubSettings {
    /// Settings from the environment, the way the Python hub client reads it:
    /// cache `HF_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub`; `HF_ENDPOINT`; token `HF_TOKEN`, else the token file
    /// (`HF_TOKEN_PATH` or `HF_HOME/token`); offline when `offline_flag` or `HF_HUB_OFFLINE`
    /// is truthy. `POLYBRIEF_HUB_TIMEOUT_SECS` bounds network waits (default 15 s).
    pub fn from_env(offline_flag: bool) -> HubSettings {
        HubSettings::from_vars(offline_flag, |name| std::env::var(name).ok())
    }

    /// [`HubSettings::from_env`] over any variable lookup (tests pass a map).
    pub fn from_vars(offline_flag: bool, var: impl Fn(&str) -> Option<String>) -> HubSettings {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".cache"))
                .join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                fs::read_to_string(path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            });
        let truthy = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_uppercase().as_str(),
                    "1" | "ON" | "YES" | "TRUE"
                )
            })
        };
        let offline = offline_flag || truthy(var("HF_HUB_OFFLINE"));
        let timeout = var("POLYBRIEF_HUB_TIMEOUT_SECS")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_TIMEOUT);
        HubSettings {
            cache_dir,
            endpoint: endpoint.trim().trim_end_matches('/').to_string(),
            token,
            offline,
            timeout,
            retries: DEFAULT_RETRIES,
        }
    }

    /// Explicit settings (library use and tests): no token, online, default timeout.
    pub fn new(cache_dir: impl Into<PathBuf>, endpoint: impl Into<String>) -> HubSettings {
        HubSettings {
            cache_dir: cache_dir.into(),
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            token: None,
            offline: false,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
        }
    }

    /// The cache folder of a model repo: `models--org--name`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir
            .join(format!("models--{}", repo.replace('/', "--")))
    }

    /// The snapshot folder a revision resolves to, from the cache alone. A commit sha is
    /// its own snapshot (the Python client writes no `refs/<sha>`); a branch or ref is
    /// looked up in `refs/`.
    pub fn snapshot_dir(&self, repo: &str, revision: &str) -> Option<PathBuf> {
        let dir = self.repo_dir(repo);
        let commit = if is_commit_sha(revision) {
            revision.to_string()
        } else {
            let commit = fs::read_to_string(dir.join("refs").join(revision)).ok()?;
            let commit = commit.trim().to_string();
            if !is_commit_sha(&commit) {
                return None;
            }
            commit
        };
        Some(dir.join("snapshots").join(commit))
    }

    fn ways_out(&self) -> String {
        format!(
            "ways out: set HF_ENDPOINT to a reachable mirror (now {}); or fill the cache at {} on a \
             machine with network (`polybrief models fetch`, or the Python hub client) and run with \
             --offline (HF_HUB_OFFLINE=1); or give the model a local directory with `path = \"...\"` \
             in a --models catalog file",
            self.endpoint,
            self.cache_dir.display()
        )
    }
}

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

impl HubError {
    /// Malformed catalogs are usage errors; everything else is fatal.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            HubError::Catalog(_) => ExitCode::Usage,
            _ => ExitCode::Fatal,
        }
    }
}

/// A model whose files are all on disk and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalModel {
    pub id: String,
    /// The commit the main repo's files came from, or `local` for a local directory.
    pub revision: String,
    pub files: BTreeMap<String, PathBuf>,
}

impl LocalModel {
    /// The path of one of the model's files.
    pub fn file(&self, name: &str) -> Result<&Path, HubError> {
        self.files
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| HubError::NoSuchFile {
                id: self.id.clone(),
                file: name.to_string(),
            })
    }
}

/// How much of a model is on disk (no hashing, no network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheState {
    /// All files present; total bytes on disk.
    Cached {
        bytes: u64,
    },
    /// Some files present.
    Partial {
        present: usize,
        total: usize,
        bytes: u64,
    },
    NotCached,
    /// A local directory with every file.
    LocalDir {
        bytes: u64,
    },
    /// A local directory that lacks files.
    LocalDirIncomplete {
        missing: Vec<String>,
    },
}

/// The result of re-hashing one model's files.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub id: String,
    pub files: Vec<FileReport>,
}

impl VerifyReport {
    /// No file was found corrupt (missing files are not failures here).
    pub fn is_ok(&self) -> bool {
        self.files
            .iter()
            .all(|f| !matches!(f.outcome, FileOutcome::Corrupt { .. }))
    }
}

#[derive(Clone, Debug)]
pub struct FileReport {
    pub name: String,
    pub path: Option<PathBuf>,
    pub outcome: FileOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// Content matches the pinned or published hash.
    Verified {
        algorithm: &'static str,
    },
    /// Present, but nothing to check it against (no pin, no hash in the cache's blob name).
    Unchecked,
    NotCached,
    /// Content does not match; `removed` says whether the file was deleted.
    Corrupt {
        reason: String,
        removed: bool,
    },
}

/// Fetches, finds and verifies catalog models.
pub struct ModelStore {
    settings: HubSettings,
    reporter: Reporter,
    /// Files already hashed in this process, so each is read once per run.
    verified: Mutex<HashSet<PathBuf>>,
}

impl ModelStore {
    pub fn new(settings: HubSettings, reporter: Reporter) -> ModelStore {
        ModelStore {
            settings,
            reporter,
            verified: Mutex::new(HashSet::new()),
        }
    }

    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// The model if every file is already on disk (cache or local directory), without
    /// network and without hashing; sizes are checked where the catalog knows them.
    pub fn cached(&self, entry: &ModelEntry) -> Option<LocalModel> {
        if let Some(dir) = &entry.path {
            let files = entry
                .files
                .iter()
                .map(|f| {
                    let p = dir.join(&f.name);
                    p.is_file().then_some((f.name.clone(), p))
                })
                .collect::<Option<BTreeMap<_, _>>>()?;
            return Some(LocalModel {
                id: entry.id.clone(),
                revision: "local".into(),
                files,
            });
        }
        let mut files = BTreeMap::new();
        for f in &entry.files {
            let (repo, rev) = entry.source_of(f);
            let path = self.cached_file(repo, rev, &f.name)?;
            if f.size.is_some_and(|size| file_len(&path) != Some(size)) {
                return None;
            }
            files.insert(f.name.clone(), path);
        }
        let revision = self.resolved_commit(entry);
        Some(LocalModel {
            id: entry.id.clone(),
            revision,
            files,
        })
    }

    /// How much of the model is on disk, for `models list`.
    pub fn cache_state(&self, entry: &ModelEntry) -> CacheState {
        if let Some(dir) = &entry.path {
            let missing: Vec<String> = entry
                .files
                .iter()
                .filter(|f| !dir.join(&f.name).is_file())
                .map(|f| f.name.clone())
                .collect();
            if missing.is_empty() {
                let bytes = entry
                    .files
                    .iter()
                    .filter_map(|f| file_len(&dir.join(&f.name)))
                    .sum();
                return CacheState::LocalDir { bytes };
            }
            return CacheState::LocalDirIncomplete { missing };
        }
        let present: Vec<u64> = entry
            .files
            .iter()
            .filter_map(|f| {
                let (repo, rev) = entry.source_of(f);
                self.cached_file(repo, rev, &f.name)
                    .and_then(|p| file_len(&p))
            })
            .collect();
        let bytes = present.iter().sum();
        match present.len() {
            0 => CacheState::NotCached,
            n if n == entry.files.len() => CacheState::Cached { bytes },
            n => CacheState::Partial {
                present: n,
                total: entry.files.len(),
                bytes,
            },
        }
    }

    /// Makes every file of the model available and verified: cached files are checked (once
    /// per process), missing ones downloaded (unless offline), corrupt ones removed and
    /// downloaded again. Stops at the first file that cannot be had.
    pub fn fetch(&self, entry: &ModelEntry) -> Result<LocalModel, HubError> {
        if let Some(dir) = &entry.path {
            return self.local_model(entry, dir);
        }
        let mut files = BTreeMap::new();
        for f in &entry.files {
            let (repo, rev) = entry.source_of(f);
            if let Some(path) = self.cached_file(repo, rev, &f.name) {
                match self.check(repo, f, &path, true, false) {
                    Ok(_) => {
                        files.insert(f.name.clone(), path);
                        continue;
                    }
                    Err(e) if self.settings.offline => return Err(e),
                    Err(e) => log::warn!("{e}"),
                }
            }
            if self.settings.offline {
                return Err(self.not_cached(entry, repo, rev, f));
            }
            let path = self.download(entry, repo, rev, f)?;
            files.insert(f.name.clone(), path);
        }
        Ok(LocalModel {
            id: entry.id.clone(),
            revision: self.resolved_commit(entry),
            files,
        })
    }

    /// Re-hashes every file of the model that is on disk; corrupt cache files are removed.
    /// Never touches the network.
    pub fn verify(&self, entry: &ModelEntry) -> Result<VerifyReport, HubError> {
        let mut report = VerifyReport {
            id: entry.id.clone(),
            files: Vec::new(),
        };
        for f in &entry.files {
            let (repo, rev) = entry.source_of(f);
            let local = entry.path.is_some();
            let path = match &entry.path {
                Some(dir) => Some(dir.join(&f.name)).filter(|p| p.is_file()),
                None => self.cached_file(repo, rev, &f.name),
            };
            let Some(path) = path else {
                report.files.push(FileReport {
                    name: f.name.clone(),
                    path: None,
                    outcome: FileOutcome::NotCached,
                });
                continue;
            };
            let outcome = match self.check(repo, f, &path, false, local) {
                Ok(Some(algorithm)) => FileOutcome::Verified { algorithm },
                Ok(None) => FileOutcome::Unchecked,
                Err(e @ (HubError::HashMismatch { .. } | HubError::SizeMismatch { .. })) => {
                    FileOutcome::Corrupt {
                        reason: e.to_string(),
                        removed: !local,
                    }
                }
                Err(e) => return Err(e),
            };
            report.files.push(FileReport {
                name: f.name.clone(),
                path: Some(path),
                outcome,
            });
        }
        Ok(report)
    }

    // --- cache ---------------------------------------------------------------------------

    /// The snapshot path of a file if it is in the cache (a dangling link counts as absent).
    pub fn cached_file(&self, repo: &str, revision: &str, name: &str) -> Option<PathBuf> {
        let path = self.settings.snapshot_dir(repo, revision)?.join(name);
        path.is_file().then_some(path)
    }

    fn resolved_commit(&self, entry: &ModelEntry) -> String {
        self.settings
            .snapshot_dir(&entry.repo, &entry.revision)
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| entry.revision.clone())
    }

    fn not_cached(&self, entry: &ModelEntry, repo: &str, rev: &str, f: &FileEntry) -> HubError {
        HubError::NotCached {
            id: entry.id.clone(),
            repo: repo.to_string(),
            revision: rev.to_string(),
            file: f.name.clone(),
            cache: self.settings.cache_dir.clone(),
            offline: self.settings.offline,
            ways_out: self.settings.ways_out(),
        }
    }

    fn local_model(&self, entry: &ModelEntry, dir: &Path) -> Result<LocalModel, HubError> {
        let mut files = BTreeMap::new();
        for f in &entry.files {
            let path = dir.join(&f.name);
            if !path.is_file() {
                return Err(HubError::LocalMissing {
                    id: entry.id.clone(),
                    dir: dir.to_path_buf(),
                    file: f.name.clone(),
                    origin: entry.origin.clone(),
                });
            }
            self.check(&entry.repo, f, &path, true, true)?;
            files.insert(f.name.clone(), path);
        }
        Ok(LocalModel {
            id: entry.id.clone(),
            revision: "local".into(),
            files,
        })
    }

    /// Checks size and content of a file on disk. The expected hash is the catalog's sha256,
    /// else what the cache's blob name says (LFS blobs are named by their sha256, small files
    /// by their git blob sha1). A failing cache file is removed (never a local-directory one).
    /// Returns the algorithm used, or `None` when there was nothing to check against.
    fn check(
        &self,
        repo: &str,
        f: &FileEntry,
        path: &Path,
        memo: bool,
        local: bool,
    ) -> Result<Option<&'static str>, HubError> {
        let blob = if local {
            None
        } else {
            fs::canonicalize(path).ok()
        };
        let key = blob.clone().unwrap_or_else(|| path.to_path_buf());
        if memo
            && self
                .verified
                .lock()
                .map(|v| v.contains(&key))
                .unwrap_or(false)
        {
            return Ok(Some("sha256"));
        }
        let blob_name = blob
            .as_ref()
            .and_then(|b| b.file_name())
            .map(|n| n.to_string_lossy().to_ascii_lowercase());
        let len = file_len(path).unwrap_or(0);
        if let Some(expected) = f.size.filter(|&s| s != len) {
            let removed = !local && self.remove_cached(path);
            return Err(HubError::SizeMismatch {
                repo: repo.to_string(),
                file: f.name.clone(),
                expected,
                actual: len,
                removed,
            });
        }
        let expected = f
            .sha256
            .clone()
            .map(Expected::Sha256)
            .or_else(|| {
                blob_name
                    .clone()
                    .filter(|n| is_sha256(n))
                    .map(Expected::Sha256)
            })
            .or_else(|| {
                blob_name
                    .filter(|n| is_commit_sha(n))
                    .map(Expected::GitSha1)
            });
        let Some(expected) = expected else {
            return Ok(None);
        };
        let (want, got, algorithm) = match &expected {
            Expected::Sha256(want) => (
                want.clone(),
                hash_file::<sha2::Sha256>(path, None)?,
                "sha256",
            ),
            Expected::GitSha1(want) => (
                want.clone(),
                hash_file::<sha1::Sha1>(path, Some(len))?,
                "git-sha1",
            ),
        };
        if want != got {
            let removed = !local && self.remove_cached(path);
            return Err(HubError::HashMismatch {
                repo: repo.to_string(),
                file: f.name.clone(),
                expected: format!("{want} ({algorithm})"),
                actual: got,
                removed,
            });
        }
        if let Ok(mut v) = self.verified.lock() {
            v.insert(key);
        }
        Ok(Some(algorithm))
    }

    /// Removes a snapshot entry and the blob it points to. Returns whether anything went.
    fn remove_cached(&self, path: &Path) -> bool {
        let blob = fs::canonicalize(path).ok();
        let mut removed = false;
        if let Some(blob) = &blob {
            removed |= fs::remove_file(blob).is_ok();
            if let Ok(mut v) = self.verified.lock() {
                v.remove(blob);
            }
        }
        if fs::symlink_metadata(path).is_ok() {
            removed |= fs::remove_file(path).is_ok();
        }
        removed
    }

    // --- network -------------------------------------------------------------------------

    fn url(&self, repo: &str, rev: &str, name: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            self.settings.endpoint,
            repo,
            rev.replace('/', "%2F"),
            name
        )
    }

    fn download(
        &self,
        entry: &ModelEntry,
        repo: &str,
        rev: &str,
        f: &FileEntry,
    ) -> Result<PathBuf, HubError> {
        let url = self.url(repo, rev, &f.name);
        let remote = self.preflight(&url, repo, rev, &f.name)?;
        let mismatch = |what: String, pinned: String| {
            HubError::CatalogMismatch(Box::new(CatalogMismatch {
                repo: repo.to_string(),
                revision: rev.to_string(),
                file: f.name.clone(),
                what,
                pinned,
                origin: entry.origin.clone(),
            }))
        };
        if let (Some(pinned), true) = (&f.sha256, is_sha256(&remote.etag)) {
            if !remote.etag.eq_ignore_ascii_case(pinned) {
                return Err(mismatch(
                    format!("sha256 {}", remote.etag),
                    format!("sha256 {pinned}"),
                ));
            }
        }
        if let (Some(pinned), Some(size)) = (f.size, remote.size) {
            if pinned != size {
                return Err(mismatch(format!("{size} bytes"), format!("{pinned} bytes")));
            }
        }
        if is_commit_sha(rev) && !remote.commit.eq_ignore_ascii_case(rev) {
            log::warn!(
                "{url}: the server reports commit {} for pinned revision {rev}",
                remote.commit
            );
        }
        // A partial file longer than the real one can never resume (hf-hub refuses it).
        let part = self
            .settings
            .repo_dir(repo)
            .join("blobs")
            .join(format!("{}.part", remote.etag));
        if let (Some(size), Some(len)) = (remote.size, file_len(&part)) {
            if len > size {
                let _ = fs::remove_file(&part);
            }
        }

        let task = self.reporter.bytes(
            &format!("{}/{}", entry.id, f.name),
            remote.size.unwrap_or(0),
        );
        let mut attempt = 0;
        let path = loop {
            match self.download_once(repo, rev, &f.name, &task) {
                Ok(path) => break path,
                Err(e @ HubError::Transfer { .. }) if attempt < self.settings.retries => {
                    attempt += 1;
                    log::warn!("{e} (retry {attempt} of {})", self.settings.retries);
                }
                Err(e) => {
                    task.fail(&first_line(&e.to_string()));
                    return Err(e);
                }
            }
        };
        if let Some(size) = remote.size.filter(|&s| Some(s) != file_len(&path)) {
            let actual = file_len(&path).unwrap_or(0);
            let removed = self.remove_cached(&path);
            let e = HubError::SizeMismatch {
                repo: repo.into(),
                file: f.name.clone(),
                expected: size,
                actual,
                removed,
            };
            task.fail(&first_line(&e.to_string()));
            return Err(e);
        }
        match self.check(repo, f, &path, false, false) {
            Ok(Some(algorithm)) => task.finish(&format!("{algorithm} verified")),
            Ok(None) => task.finish("no published hash to verify against"),
            Err(e) => {
                task.fail(&first_line(&e.to_string()));
                return Err(e);
            }
        }
        Ok(path)
    }

    /// One `GET Range: bytes=0-0` with our own bounded agent: proves the hub answers and
    /// reads the commit, etag (sha256 for LFS files) and size before hf-hub starts.
    fn preflight(&self, url: &str, repo: &str, rev: &str, name: &str) -> Result<Remote, HubError> {
        let timeout = self.settings.timeout;
        let unreachable = |reason: String| HubError::Unreachable {
            endpoint: self.settings.endpoint.clone(),
            repo: repo.to_string(),
            file: name.to_string(),
            reason,
            ways_out: self.settings.ways_out(),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let token = self.settings.token.clone();
        let (tx, rx) = mpsc::channel();
        let mut current = url.to_string();
        // Relative redirects (a renamed repo) are followed; absolute ones (LFS files sent to
        // the CDN) already carry every header we need.
        for _ in 0..5 {
            let agent = agent.clone();
            let tx = tx.clone();
            let token = token.clone();
            let target = current.clone();
            std::thread::spawn(move || {
                let mut req = agent.get(&target).header("Range", "bytes=0-0").header(
                    "User-Agent",
                    concat!("polybrief/", env!("CARGO_PKG_VERSION")),
                );
                if let Some(token) = &token {
                    req = req.header("Authorization", format!("Bearer {token}"));
                }
                let result = req.call().map(|resp| {
                    let headers = resp
                        .headers()
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((
                                k.as_str().to_ascii_lowercase(),
                                v.to_str().ok()?.to_string(),
                            ))
                        })
                        .collect::<Vec<_>>();
                    (resp.status().as_u16(), headers)
                });
                let _ = tx.send(result);
            });
            // The agent's global timeout should fire first; this bounds DNS and anything else.
            let (status, headers) = match rx.recv_timeout(timeout + Duration::from_secs(2)) {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => return Err(unreachable(describe_ureq(&e, timeout))),
                Err(_) => {
                    return Err(unreachable(format!(
                        "no answer within {:.0} s",
                        timeout.as_secs_f64()
                    )))
                }
            };
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            match status {
                200..=399 if header("x-repo-commit").is_some() => {
                    let commit = header("x-repo-commit").unwrap_or_default();
                    let etag = header("x-linked-etag")
                        .or_else(|| header("etag"))
                        .map(|e| e.trim_start_matches("W/").replace('"', ""))
                        .ok_or_else(|| self.protocol(repo, name, "no ETag header"))?;
                    let size = header("x-linked-size")
                        .and_then(|s| s.trim().parse().ok())
                        .or_else(|| {
                            header("content-range")
                                .and_then(|r| r.rsplit('/').next()?.trim().parse().ok())
                        });
                    return Ok(Remote { commit, etag, size });
                }
                300..=399 => match header("location") {
                    Some(loc) if loc.starts_with('/') => {
                        current = format!("{}{}", self.settings.endpoint, loc);
                        continue;
                    }
                    _ => {
                        return Err(self.protocol(
                            repo,
                            name,
                            &format!("redirect {status} without X-Repo-Commit"),
                        ))
                    }
                },
                200..=299 => return Err(self.protocol(repo, name, "no X-Repo-Commit header")),
                401 | 403 => {
                    return Err(HubError::Unauthorized {
                        repo: repo.into(),
                        file: name.into(),
                        url: current,
                        status,
                    })
                }
                404 => {
                    let what = match header("x-error-code").as_deref() {
                        Some("RepoNotFound") => "repository not found",
                        Some("RevisionNotFound") => "revision not found",
                        Some("EntryNotFound") => "file not found",
                        _ => "not found",
                    };
                    return Err(HubError::NotFound {
                        repo: repo.into(),
                        revision: rev.into(),
                        file: name.into(),
                        url: current,
                        what: what.into(),
                    });
                }
                _ => {
                    return Err(HubError::Server {
                        repo: repo.into(),
                        file: name.into(),
                        url: current,
                        status,
                    })
                }
            }
        }
        Err(self.protocol(repo, name, "too many redirects"))
    }

    fn protocol(&self, repo: &str, file: &str, reason: &str) -> HubError {
        HubError::Protocol {
            endpoint: self.settings.endpoint.clone(),
            repo: repo.to_string(),
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    /// One hf-hub download on a worker thread, abandoned when no byte arrives for the timeout.
    fn download_once(
        &self,
        repo: &str,
        rev: &str,
        name: &str,
        task: &Task,
    ) -> Result<PathBuf, HubError> {
        let api = hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(
            self.settings.cache_dir.clone(),
        ))
        .with_endpoint(self.settings.endpoint.clone())
        // Set explicitly: hf-hub would otherwise read a token file relative to the cache.
        .with_token(self.settings.token.clone())
        .with_progress(false)
        .with_retries(0)
        .with_user_agent("polybrief", env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(|e| self.map_api_error(repo, name, e))?;
        let handle = api.repo(hf_hub::Repo::with_revision(
            repo.to_string(),
            hf_hub::RepoType::Model,
            rev.to_string(),
        ));
        let activity = Arc::new(Activity::new());
        let progress = HubProgress {
            task: task.clone(),
            activity: activity.clone(),
        };
        let (tx, rx) = mpsc::channel();
        let file = name.to_string();
        std::thread::Builder::new()
            .name(format!("download {name}"))
            .spawn(move || {
                let _ = tx.send(handle.download_with_progress(&file, progress));
            })
            .map_err(|e| HubError::Io {
                path: self.settings.cache_dir.clone(),
                source: e,
            })?;
        let timeout = self.settings.timeout;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(path)) => return Ok(path),
                Ok(Err(e)) => return Err(self.map_api_error(repo, name, e)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if activity.idle() >= timeout {
                        return Err(HubError::Stalled {
                            repo: repo.to_string(),
                            file: name.to_string(),
                            secs: timeout.as_secs_f64(),
                            received: task.position(),
                            ways_out: self.settings.ways_out(),
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(HubError::Transfer {
                        repo: repo.to_string(),
                        file: name.to_string(),
                        reason: "the download thread ended without a result".into(),
                    })
                }
            }
        }
    }

    fn map_api_error(&self, repo: &str, name: &str, e: hf_hub::api::sync::ApiError) -> HubError {
        use hf_hub::api::sync::ApiError;
        let url = self.url(repo, "…", name);
        match e {
            ApiError::RequestError(err) => match *err {
                ureq::Error::StatusCode(status @ (401 | 403)) => HubError::Unauthorized {
                    repo: repo.into(),
                    file: name.into(),
                    url,
                    status,
                },
                ureq::Error::StatusCode(404) => HubError::NotFound {
                    repo: repo.into(),
                    revision: "…".into(),
                    file: name.into(),
                    url,
                    what: "not found during download".into(),
                },
                ureq::Error::StatusCode(status) => HubError::Server {
                    repo: repo.into(),
                    file: name.into(),
                    url,
                    status,
                },
                other => HubError::Transfer {
                    repo: repo.into(),
                    file: name.into(),
                    reason: describe_ureq(&other, self.settings.timeout),
                },
            },
            ApiError::IoError(err) => HubError::Transfer {
                repo: repo.into(),
                file: name.into(),
                reason: err.to_string(),
            },
            ApiError::TooManyRetries(inner) => self.map_api_error(repo, name, *inner),
            ApiError::LockAcquisition(path) => HubError::Locked { path },
            ApiError::MissingHeader(h) => self.protocol(repo, name, &format!("missing header {h}")),
            ApiError::InvalidHeader(h) => self.protocol(repo, name, &format!("invalid header {h}")),
            other => HubError::Transfer {
                repo: repo.into(),
                file: name.into(),
                reason: other.to_string(),
            },
        }
    }
}

/// What the pre-flight learned about a remote file.
struct Remote {
    commit: String,
    /// sha256 for LFS files, git blob sha1 for small ones.
    etag: String,
    size: Option<u64>,
}

enum Expected {
    Sha256(String),
    GitSha1(String),
}

/// When the download last made progress, shared with the watchdog.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Bridges hf-hub's progress callbacks to our progress bars and the stall watchdog.
struct HubProgress {
    task: Task,
    activity: Arc<Activity>,
}

impl hf_hub::api::Progress for HubProgress {
    // hf-hub calls init at the start of every attempt and then update(already_downloaded)
    // when it resumes, so init restarts the count.
    fn init(&mut self, size: usize, _filename: &str) {
        self.task.set_length(size as u64);
        self.task.set_position(0);
        self.activity.touch();
    }

    fn update(&mut self, size: usize) {
        self.task.inc(size as u64);
        self.activity.touch();
    }

    fn finish(&mut self) {
        self.activity.touch();
    }
}

fn describe_ureq(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {:.0} s", timeout.as_secs_f64()),
        ureq::Error::HostNotFound => "host not found (DNS)".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        other => other.to_string(),
    }
}

/// Hex digest of a file; with `git_len`, hashed as a git blob (`blob <len>\0` + content).
fn hash_file<D: Digest>(path: &Path, git_len: Option<u64>) -> Result<String, HubError> {
    let io = |source| HubError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut hasher = D::new();
    if let Some(len) = git_len {
        hasher.update(format!("blob {len}\0").as_bytes());
    }
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn file_len(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings_from(vars: &[(&str, &str)]) -> HubSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::from_vars(false, |k| map.get(k).cloned())
    }

    #[test]
    fn hf_hub_cache_wins_over_hf_home() {
        let s = settings_from(&[("HF_HOME", "/h"), ("HF_HUB_CACHE", "/c")]);
        assert_eq!(s.cache_dir, PathBuf::from("/c"));
        let s = settings_from(&[("HF_HOME", "/h")]);
        assert_eq!(s.cache_dir, PathBuf::from("/h/hub"));
        let s = settings_from(&[("XDG_CACHE_HOME", "/x")]);
        assert_eq!(s.cache_dir, PathBuf::from("/x/huggingface/hub"));
    }

    #[test]
    fn endpoint_token_offline_and_timeout_come_from_the_environment() {
        let s = settings_from(&[
            ("HF_ENDPOINT", "https://hf-mirror.com/"),
            ("HF_TOKEN", "hf_abc"),
            ("HF_HUB_OFFLINE", "1"),
            ("POLYBRIEF_HUB_TIMEOUT_SECS", "2.5"),
        ]);
        assert_eq!(s.endpoint, "https://hf-mirror.com");
        assert_eq!(s.token.as_deref(), Some("hf_abc"));
        assert!(s.offline);
        assert_eq!(s.timeout, Duration::from_millis(2500));
        let s = settings_from(&[
            ("HF_HUB_OFFLINE", "0"),
            ("POLYBRIEF_HUB_TIMEOUT_SECS", "soon"),
        ]);
        assert!(!s.offline);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert!(HubSettings::from_vars(true, |_| None).offline);
    }

    #[test]
    fn token_file_is_read_from_hf_home() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("token"), "hf_from_file\n").unwrap();
        let home = dir.path().to_str().unwrap();
        let s = settings_from(&[("HF_HOME", home)]);
        assert_eq!(s.token.as_deref(), Some("hf_from_file"));
        let s = settings_from(&[("HF_HOME", home), ("HF_TOKEN", "hf_env")]);
        assert_eq!(s.token.as_deref(), Some("hf_env"));
    }

    #[test]
    fn snapshot_of_a_pinned_sha_needs_no_ref_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = HubSettings::new(dir.path(), "http://unused");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            s.snapshot_dir("org/name", sha).unwrap(),
            dir.path().join("models--org--name/snapshots").join(sha)
        );
        assert_eq!(s.snapshot_dir("org/name", "main"), None);
        let refs = dir.path().join("models--org--name/refs/refs/pr");
        fs::create_dir_all(&refs).unwrap();
        fs::write(refs.join("4"), sha).unwrap();
        assert_eq!(
            s.snapshot_dir("org/name", "refs/pr/4")
                .unwrap()
                .file_name()
                .unwrap(),
            sha
        );
    }

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "hello\n").unwrap();
        assert_eq!(
            hash_file::<sha1::Sha1>(&p, Some(6)).unwrap(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn progress_bridge_restarts_on_resume_and_marks_activity() {
        let task = Reporter::hidden().bytes("t", 0);
        let activity = Arc::new(Activity::new());
        let mut p = HubProgress {
            task: task.clone(),
            activity: activity.clone(),
        };
        use hf_hub::api::Progress;
        p.init(100, "f");
        p.update(40);
        assert_eq!(task.position(), 40);
        // hf-hub's resume: init again, then the bytes already on disk.
        p.init(100, "f");
        p.update(40);
        p.update(60);
        assert_eq!(task.position(), 100);
        assert!(activity.idle() < Duration::from_secs(1));
    }
}
