//! The model store: which catalog files are on disk, fetching the missing ones, and proving
//! every file intact (sha256, or git blob sha1 for small non-LFS files) before it is used.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::Digest;

use crate::models::catalog::{is_commit_sha, is_sha256, FileEntry, ModelEntry};
use crate::progress::Reporter;

use super::{HubError, HubSettings};

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
    pub(super) settings: HubSettings,
    pub(super) reporter: Reporter,
    /// Files already hashed in this process, so each is read once per run.
    pub(super) verified: Mutex<HashSet<PathBuf>>,
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

    pub(super) fn resolved_commit(&self, entry: &ModelEntry) -> String {
        self.settings
            .snapshot_dir(&entry.repo, &entry.revision)
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| entry.revision.clone())
    }

    pub(super) fn not_cached(
        &self,
        entry: &ModelEntry,
        repo: &str,
        rev: &str,
        f: &FileEntry,
    ) -> HubError {
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

    pub(super) fn local_model(
        &self,
        entry: &ModelEntry,
        dir: &Path,
    ) -> Result<LocalModel, HubError> {
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
    pub(super) fn check(
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
    pub(super) fn remove_cached(&self, path: &Path) -> bool {
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
}

/// The hash a file must have.
enum Expected {
    Sha256(String),
    GitSha1(String),
}

/// Hex digest of a file; with `git_len`, hashed as a git blob (`blob <len>\0` + content).
pub(super) fn hash_file<D: Digest>(path: &Path, git_len: Option<u64>) -> Result<String, HubError> {
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

pub(super) fn file_len(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
