//! How to reach the hub and where its cache is, read from the environment the way the Python
//! client reads it.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::models::catalog::is_commit_sha;

pub(super) const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Bound on every network wait; with no network a fetch fails within about this long.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Extra resumed attempts after a transfer breaks off midway.
pub(super) const DEFAULT_RETRIES: u32 = 2;

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

    pub(super) fn ways_out(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

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
}
