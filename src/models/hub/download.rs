//! The network side of the store: a bounded pre-flight request per file, the download on a
//! worker thread under a stall watchdog, and hf-hub's errors turned into precise messages.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::models::catalog::{is_commit_sha, is_sha256, FileEntry, ModelEntry};
use crate::progress::Task;

use super::store::file_len;
use super::{CatalogMismatch, HubError, ModelStore};

impl ModelStore {
    fn url(&self, repo: &str, rev: &str, name: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            self.settings.endpoint,
            repo,
            rev.replace('/', "%2F"),
            name
        )
    }

    pub(super) fn download(
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

/// When the download last made progress, shared with the watchdog.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn idle(&self) -> Duration {
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

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Reporter;

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
