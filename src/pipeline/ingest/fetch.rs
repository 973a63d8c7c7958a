//! HTTP for feed inputs: feeds (`http(s)://` inputs) and the pages of feed items that carry
//! only a link and a teaser. Built for a nightly run against other people's servers:
//!
//! - every request is bounded by a timeout, and a body by a size cap;
//! - requests to one host are spaced by a delay, so a feed of 50 items is not 50 requests at
//!   once to one newsroom;
//! - a feed is fetched with `If-None-Match` / `If-Modified-Since` from the previous fetch, so
//!   an unchanged feed costs one small request answered `304 Not Modified`;
//! - a page is stored in the stage cache under its URL and the item's date and teaser, so a
//!   nightly run never fetches an item twice (an edited item is fetched again);
//! - `--offline` answers from what was fetched before and never opens a connection.
//!
//! Every failure is a [`FetchError`] naming the URL; ingest reports it for the feed or item
//! and goes on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cache::{CacheKey, StageCache};
use crate::units::human_bytes;

/// Bumped when what is stored for a feed or page changes.
const FETCH_CACHE_VERSION: u32 = 1;

/// How feeds and pages are fetched.
#[derive(Clone, Debug)]
pub struct FetchSettings {
    /// The longest one request may take, connection to last byte.
    pub timeout: Duration,
    /// The least time between two requests to the same host.
    pub host_delay: Duration,
    /// The largest body read; a larger one is a failure of that feed or item.
    pub max_bytes: u64,
    /// Only what was fetched before (from the stage cache); no connection is opened.
    pub offline: bool,
    /// The stage cache for validators and pages; without one every run fetches afresh.
    pub cache_dir: Option<PathBuf>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            timeout: Duration::from_secs(30),
            host_delay: Duration::from_secs(1),
            max_bytes: super::DEFAULT_MAX_FILE_SIZE,
            offline: false,
            cache_dir: None,
        }
    }
}

/// Why a feed or page could not be had. The wording leaves the URL out: ingest reports the
/// failure as a skipped input named by that URL, and the name would be printed twice.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{reason}")]
    Unreachable { url: String, reason: String },
    #[error("larger than the {limit} size limit (raise it with --max-file-mib)")]
    TooLarge { url: String, limit: String },
    #[error("not fetched before, and --offline allows no fetching; run once without --offline")]
    Offline { url: String },
}

/// What the stage cache keeps of a fetched feed or page. Bodies are kept as text (feeds and
/// pages are read as text anyway; invalid UTF-8 is replaced).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    etag: Option<String>,
    last_modified: Option<String>,
    body: String,
}

/// What a run's fetching did, for the log line tests read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Requests sent.
    pub requests: usize,
    /// Of those, conditional ones (with a validator from the previous fetch).
    pub conditional: usize,
    /// Answers `304 Not Modified`.
    pub not_modified: usize,
    /// Pages taken from the cache without a request.
    pub cached_pages: usize,
}

/// The fetcher of one run.
pub(crate) struct Fetcher {
    agent: ureq::Agent,
    settings: FetchSettings,
    cache: Option<StageCache>,
    /// Host → when its last request ended.
    last_request: Mutex<BTreeMap<String, Instant>>,
    stats: Mutex<FetchStats>,
}

/// A response as far as fetching needs it.
struct Answer {
    status: u16,
    etag: Option<String>,
    last_modified: Option<String>,
    body: Vec<u8>,
}

impl Fetcher {
    pub(crate) fn new(settings: FetchSettings) -> Fetcher {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .max_redirects(5)
            .user_agent(concat!("polybrief/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let cache = settings
            .cache_dir
            .as_ref()
            .and_then(|dir| match StageCache::open(dir) {
                Ok(cache) => Some(cache),
                Err(e) => {
                    log::warn!("{e}; feeds and pages are fetched without the cache");
                    None
                }
            });
        Fetcher {
            agent,
            settings,
            cache,
            last_request: Mutex::new(BTreeMap::new()),
            stats: Mutex::new(FetchStats::default()),
        }
    }

    pub(crate) fn stats(&self) -> FetchStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A feed's text: a conditional request when it was fetched before, the stored copy on
    /// `304 Not Modified` or offline.
    pub(crate) fn feed(&self, url: &str) -> Result<String, FetchError> {
        let key = CacheKey::new("feed", url, &FETCH_CACHE_VERSION).ok();
        let stored: Option<Stored> = key.as_ref().and_then(|k| self.cache.as_ref()?.get(k));
        if self.settings.offline {
            return stored.map(|s| s.body).ok_or_else(|| FetchError::Offline {
                url: url.to_string(),
            });
        }
        let validators = stored
            .as_ref()
            .map(|s| (s.etag.clone(), s.last_modified.clone()));
        let answer = self.get(url, validators)?;
        match (answer.status, stored) {
            (304, Some(stored)) => {
                self.count(|s| s.not_modified += 1);
                Ok(stored.body)
            }
            (200..=299, _) => {
                let stored = Stored {
                    etag: answer.etag,
                    last_modified: answer.last_modified,
                    body: String::from_utf8_lossy(&answer.body).into_owned(),
                };
                self.store(key.as_ref(), &stored);
                Ok(stored.body)
            }
            (status, _) => Err(FetchError::Status {
                url: url.to_string(),
                status,
            }),
        }
    }

    /// A page's text, from the cache when this URL with this `stamp` (the item's date and
    /// teaser) was fetched before.
    pub(crate) fn page(&self, url: &str, stamp: &str) -> Result<String, FetchError> {
        let key = CacheKey::new("page", url, &(FETCH_CACHE_VERSION, stamp)).ok();
        if let Some(stored) = key
            .as_ref()
            .and_then(|k| self.cache.as_ref()?.get::<Stored>(k))
        {
            self.count(|s| s.cached_pages += 1);
            return Ok(stored.body);
        }
        if self.settings.offline {
            return Err(FetchError::Offline {
                url: url.to_string(),
            });
        }
        let answer = self.get(url, None)?;
        if !(200..=299).contains(&answer.status) {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: answer.status,
            });
        }
        let stored = Stored {
            etag: None,
            last_modified: None,
            body: String::from_utf8_lossy(&answer.body).into_owned(),
        };
        self.store(key.as_ref(), &stored);
        Ok(stored.body)
    }

    fn store(&self, key: Option<&CacheKey>, stored: &Stored) {
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            if let Err(e) = cache.put(key, stored) {
                log::warn!("{e}; the next run fetches it again");
            }
        }
    }

    fn count(&self, update: impl FnOnce(&mut FetchStats)) {
        update(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One GET, after the host's delay, bounded in time and size.
    fn get(
        &self,
        url: &str,
        validators: Option<(Option<String>, Option<String>)>,
    ) -> Result<Answer, FetchError> {
        let host = host_of(url).to_string();
        self.wait_for_host(&host);
        let conditional = validators
            .as_ref()
            .is_some_and(|(e, m)| e.is_some() || m.is_some());
        self.count(|s| {
            s.requests += 1;
            s.conditional += usize::from(conditional);
        });
        let (tx, rx) = mpsc::channel();
        let agent = self.agent.clone();
        let target = url.to_string();
        let max_bytes = self.settings.max_bytes;
        // On a thread, so that a stalled DNS lookup is bounded too; the agent's own timeout
        // normally fires first.
        std::thread::spawn(move || {
            let mut request = agent.get(&target);
            if let Some((etag, modified)) = validators {
                if let Some(etag) = etag {
                    request = request.header("If-None-Match", etag);
                }
                if let Some(modified) = modified {
                    request = request.header("If-Modified-Since", modified);
                }
            }
            let result = request.call().and_then(|mut response| {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let (etag, last_modified) = (header("etag"), header("last-modified"));
                let status = response.status().as_u16();
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(max_bytes)
                    .read_to_vec()?;
                Ok(Answer {
                    status,
                    etag,
                    last_modified,
                    body,
                })
            });
            let _ = tx.send(result);
        });
        let timeout = self.settings.timeout;
        let result = rx.recv_timeout(timeout + Duration::from_secs(2));
        self.last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host, Instant::now());
        match result {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(ureq::Error::BodyExceedsLimit(limit))) => Err(FetchError::TooLarge {
                url: url.to_string(),
                limit: human_bytes(limit),
            }),
            Ok(Err(e)) => Err(FetchError::Unreachable {
                url: url.to_string(),
                reason: describe(&e, timeout),
            }),
            Err(_) => Err(FetchError::Unreachable {
                url: url.to_string(),
                reason: no_answer(timeout),
            }),
        }
    }

    fn wait_for_host(&self, host: &str) {
        let last = self
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .copied();
        if let Some(wait) = last
            .and_then(|at| (at + self.settings.host_delay).checked_duration_since(Instant::now()))
        {
            std::thread::sleep(wait);
        }
    }
}

fn no_answer(timeout: Duration) -> String {
    format!("no answer within {:.1} s", timeout.as_secs_f64())
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => no_answer(timeout),
        ureq::Error::HostNotFound => "host not found (DNS)".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        other => other.to_string(),
    }
}

/// `host:port` of an http(s) URL ("" when it has none).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// Whether an input names an http(s) URL rather than a path.
pub(crate) fn is_url(input: &str) -> bool {
    let lower = input.get(..8).unwrap_or(input).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_urls_are_told_apart() {
        assert_eq!(
            host_of("https://news.example:8080/feed.xml?x=1"),
            "news.example:8080"
        );
        assert_eq!(host_of("http://127.0.0.1:9/"), "127.0.0.1:9");
        assert!(is_url("HTTPS://news.example/feed"));
        assert!(!is_url("news/http-notes.txt"));
    }

    #[test]
    fn offline_without_a_stored_copy_says_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(FetchSettings {
            offline: true,
            cache_dir: Some(dir.path().into()),
            ..FetchSettings::default()
        });
        let err = fetcher.feed("https://news.example/feed.xml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not fetched before, and --offline allows no fetching; run once without --offline"
        );
        assert_eq!(fetcher.stats().requests, 0);
    }
}
