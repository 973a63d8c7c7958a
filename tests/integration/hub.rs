//! The model manager against a fake hub on 127.0.0.1: downloads, the shared cache layout,
//! offline use, integrity checks and every way the network can fail. Library-level tests use
//! explicit `HubSettings` (no process-wide environment); the `polybrief models` tests run the
//! real binary with the environment variables a user would set.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polybrief::models::catalog::{Catalog, ModelEntry};
use polybrief::models::hub::{FileOutcome, HubError, HubSettings, ModelStore};
use polybrief::progress::Reporter;

use crate::support::fake_hub::{sha256_hex, FakeHub, Fault};

const REPO: &str = "test-org/tiny-de-en";
const REV: &str = "1111111111111111111111111111111111111111";
const WEIGHTS: &str = "model.safetensors";

/// Deterministic bytes that do not compress to anything (so ranges and cuts are meaningful).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Fixture {
    hub: FakeHub,
    cache: tempfile::TempDir,
    config: Vec<u8>,
    weights: Vec<u8>,
    weights_sha: String,
}

impl Fixture {
    /// A hub serving a two-file model, and an empty cache.
    fn new(weights_len: usize) -> Fixture {
        let hub = FakeHub::start();
        let config = br#"{"d_model": 8}"#.to_vec();
        let weights = noise(weights_len, 7);
        hub.add_small_file(REPO, REV, "config.json", config.clone());
        let weights_sha = hub.add_file(REPO, REV, WEIGHTS, weights.clone());
        Fixture {
            hub,
            cache: tempfile::tempdir().unwrap(),
            config,
            weights,
            weights_sha,
        }
    }

    fn settings(&self) -> HubSettings {
        let mut s = HubSettings::new(self.cache.path(), self.hub.url());
        s.timeout = Duration::from_secs(2);
        s
    }

    fn store(&self) -> ModelStore {
        ModelStore::new(self.settings(), Reporter::hidden())
    }

    fn offline_store(&self) -> ModelStore {
        let mut s = self.settings();
        s.offline = true;
        ModelStore::new(s, Reporter::hidden())
    }

    /// The catalog entry for the model, pinning the weights' size and sha256.
    fn entry(&self) -> ModelEntry {
        entry_toml(
            REPO,
            REV,
            &format!(
            "{{ name = \"config.json\" }}, {{ name = \"{WEIGHTS}\", size = {}, sha256 = \"{}\" }}",
            self.weights.len(),
            self.weights_sha
        ),
        )
    }

    fn repo_dir(&self) -> PathBuf {
        self.cache.path().join("models--test-org--tiny-de-en")
    }

    fn blob(&self) -> PathBuf {
        self.repo_dir().join("blobs").join(&self.weights_sha)
    }
}

fn entry_toml(repo: &str, revision: &str, files: &str) -> ModelEntry {
    let text = format!(
        "schema = 1\n[[model]]\nid = \"tiny-de-en\"\ntasks = [\"translate\"]\nlangs = [\"de\"]\nformat = \"marian\"\n\
         repo = \"{repo}\"\nrevision = \"{revision}\"\nlicense = \"mit\"\nfiles = [{files}]\n"
    );
    Catalog::parse(&text, "test catalog", None)
        .unwrap()
        .entries()[0]
        .clone()
}

fn body_requests(hub: &FakeHub, file: &str) -> Vec<Option<String>> {
    hub.request_log()
        .into_iter()
        .filter(|r| {
            r.path.ends_with(&format!("/{file}")) && r.range.as_deref() != Some("bytes=0-0")
        })
        .map(|r| r.range)
        .collect()
}

// --- downloads and the cache ----------------------------------------------------------------

#[test]
fn first_download_fills_the_shared_cache_layout_and_verifies() {
    let fx = Fixture::new(300_000);
    let model = fx.store().fetch(&fx.entry()).unwrap();

    assert_eq!(model.revision, REV);
    assert_eq!(
        std::fs::read(model.file("config.json").unwrap()).unwrap(),
        fx.config
    );
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
    // The Python client's layout: snapshots/<commit>/<file> -> ../../blobs/<etag>.
    let link = fx.repo_dir().join("snapshots").join(REV).join(WEIGHTS);
    assert_eq!(model.file(WEIGHTS).unwrap(), link);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../../blobs").join(&fx.weights_sha)
    );
    assert!(fx.blob().is_file());
    assert!(matches!(
        model.file("missing.bin"),
        Err(HubError::NoSuchFile { .. })
    ));
    // Each file was downloaded once, in one piece.
    assert_eq!(
        body_requests(&fx.hub, WEIGHTS),
        vec![Some("bytes=0-".to_string())]
    );
}

#[test]
fn second_run_is_served_from_the_cache_even_with_the_hub_gone() {
    let fx = Fixture::new(50_000);
    let entry = fx.entry();
    fx.store().fetch(&entry).unwrap();
    let after_first = fx.hub.requests();

    // Same process, hub alive: no request at all.
    let again = fx.store().fetch(&entry).unwrap();
    assert_eq!(fx.hub.requests(), after_first);

    // A later run with the hub stopped: the cache alone serves (and re-verifies) the model.
    let settings = fx.settings();
    let Fixture { hub, cache, .. } = fx;
    drop(hub);
    let later = ModelStore::new(settings, Reporter::hidden());
    assert_eq!(later.fetch(&entry).unwrap(), again);
    assert_eq!(later.cached(&entry), Some(again));
    drop(cache);
}

#[test]
fn offline_mode_never_touches_the_network() {
    let fx = Fixture::new(10_000);
    let entry = fx.entry();
    let err = fx.offline_store().fetch(&entry).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, HubError::NotCached { offline: true, .. }),
        "{msg}"
    );
    for needle in [
        REPO,
        "config.json",
        "offline",
        "HF_ENDPOINT",
        "--offline",
        "path =",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }
    assert_eq!(fx.hub.requests(), 0);

    fx.store().fetch(&entry).unwrap();
    let online_requests = fx.hub.requests();
    let model = fx.offline_store().fetch(&entry).unwrap();
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
    assert_eq!(fx.hub.requests(), online_requests);
}

#[cfg(unix)]
#[test]
fn a_cache_written_by_the_python_client_is_used() {
    // Python writes no refs/<sha> for a pinned revision, only the snapshot link.
    let cache = tempfile::tempdir().unwrap();
    let content = noise(4096, 3);
    let sha = sha256_hex(&content);
    let repo_dir = cache.path().join("models--test-org--tiny-de-en");
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("snapshots").join(REV)).unwrap();
    std::fs::write(repo_dir.join("blobs").join(&sha), &content).unwrap();
    std::os::unix::fs::symlink(
        Path::new("../../blobs").join(&sha),
        repo_dir.join("snapshots").join(REV).join(WEIGHTS),
    )
    .unwrap();
    let entry = entry_toml(
        REPO,
        REV,
        &format!("{{ name = \"{WEIGHTS}\", sha256 = \"{sha}\" }}"),
    );
    let mut settings = HubSettings::new(cache.path(), "http://127.0.0.1:9");
    settings.offline = true;
    let store = ModelStore::new(settings.clone(), Reporter::hidden());
    assert!(store.fetch(&entry).is_ok());

    // A branch revision is resolved through refs/<branch>.
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), REV).unwrap();
    let on_main = entry_toml(REPO, "main", &format!("{{ name = \"{WEIGHTS}\" }}"));
    let model = ModelStore::new(settings, Reporter::hidden())
        .fetch(&on_main)
        .unwrap();
    assert_eq!(model.revision, REV);
}

#[test]
fn a_local_directory_entry_needs_no_network_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let content = noise(1000, 5);
    std::fs::write(dir.path().join("model.safetensors"), &content).unwrap();
    let text = format!(
        "schema = 1\n[[model]]\nid = \"local-de\"\ntasks = [\"translate\"]\nlangs = [\"de\"]\nformat = \"marian\"\n\
         repo = \"x/y\"\nlicense = \"mit\"\npath = \"{}\"\nfiles = [{{ name = \"model.safetensors\", sha256 = \"{}\" }}]\n",
        dir.path().display(),
        sha256_hex(&content)
    );
    let entry = Catalog::parse(&text, "t", None).unwrap().entries()[0].clone();
    let store = ModelStore::new(
        HubSettings::new(dir.path(), "http://127.0.0.1:9"),
        Reporter::hidden(),
    );
    let model = store.fetch(&entry).unwrap();
    assert_eq!(model.revision, "local");
    assert_eq!(
        model.file("model.safetensors").unwrap(),
        dir.path().join("model.safetensors")
    );

    // A corrupt file in the user's own directory is reported but never deleted.
    std::fs::write(dir.path().join("model.safetensors"), noise(1000, 6)).unwrap();
    let fresh = ModelStore::new(
        HubSettings::new(dir.path(), "http://127.0.0.1:9"),
        Reporter::hidden(),
    );
    let err = fresh.fetch(&entry).unwrap_err();
    assert!(
        matches!(err, HubError::HashMismatch { removed: false, .. }),
        "{err}"
    );
    assert!(dir.path().join("model.safetensors").exists());

    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = fresh.fetch(&entry).unwrap_err();
    assert!(matches!(err, HubError::LocalMissing { .. }), "{err}");
}

#[test]
fn the_token_is_sent_on_every_request() {
    let fx = Fixture::new(1000);
    let mut settings = fx.settings();
    settings.token = Some("hf_test_token".into());
    ModelStore::new(settings, Reporter::hidden())
        .fetch(&fx.entry())
        .unwrap();
    let log = fx.hub.request_log();
    assert!(!log.is_empty());
    assert!(
        log.iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer hf_test_token")),
        "{log:?}"
    );
}

// --- integrity ----------------------------------------------------------------------------

#[test]
fn corrupted_bytes_are_detected_removed_and_never_returned() {
    let fx = Fixture::new(100_000);
    let entry = fx.entry();
    fx.hub.set_fault(REPO, WEIGHTS, Some(Fault::Corrupt));
    let store = fx.store();
    let err = store.fetch(&entry).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, HubError::HashMismatch { removed: true, .. }),
        "{msg}"
    );
    assert!(
        msg.contains(WEIGHTS) && msg.contains(REPO) && msg.contains(&fx.weights_sha),
        "{msg}"
    );
    assert!(!fx.blob().exists(), "the corrupt blob must be deleted");
    assert!(!fx
        .repo_dir()
        .join("snapshots")
        .join(REV)
        .join(WEIGHTS)
        .exists());
    assert_eq!(store.cached(&entry), None);

    // Healed hub: the next fetch downloads it again and succeeds.
    fx.hub.set_fault(REPO, WEIGHTS, None);
    let model = store.fetch(&entry).unwrap();
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
}

#[test]
fn a_hub_serving_other_bytes_than_the_pin_downloads_nothing() {
    let fx = Fixture::new(100_000);
    let pinned = "ab".repeat(32);
    let entry = entry_toml(
        REPO,
        REV,
        &format!("{{ name = \"{WEIGHTS}\", sha256 = \"{pinned}\" }}"),
    );
    let err = fx.store().fetch(&entry).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::CatalogMismatch(_)), "{msg}");
    assert!(
        msg.contains(&pinned) && msg.contains(&fx.weights_sha) && msg.contains("test catalog"),
        "{msg}"
    );
    assert!(
        body_requests(&fx.hub, WEIGHTS).is_empty(),
        "only the pre-flight may have run"
    );
}

#[test]
fn verify_finds_corruption_on_disk_and_removes_it() {
    let fx = Fixture::new(20_000);
    let entry = fx.entry();
    let store = fx.store();
    store.fetch(&entry).unwrap();
    let report = store.verify(&entry).unwrap();
    assert!(report.is_ok());
    let outcome = |name: &str| {
        report
            .files
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(
        outcome(WEIGHTS),
        FileOutcome::Verified {
            algorithm: "sha256"
        }
    );
    // The small file has no pin; its blob name is its git sha1, which is checked.
    assert_eq!(
        outcome("config.json"),
        FileOutcome::Verified {
            algorithm: "git-sha1"
        }
    );

    // Bit rot: same length, different bytes.
    std::fs::write(fx.blob(), noise(20_000, 99)).unwrap();
    let report = store.verify(&entry).unwrap();
    assert!(!report.is_ok());
    let bad = report.files.iter().find(|f| f.name == WEIGHTS).unwrap();
    assert!(
        matches!(&bad.outcome, FileOutcome::Corrupt { removed: true, .. }),
        "{:?}",
        bad.outcome
    );
    assert!(!fx.blob().exists());

    // Fetch repairs it.
    let model = store.fetch(&entry).unwrap();
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
}

#[test]
fn a_truncated_cache_file_is_replaced_on_fetch() {
    let fx = Fixture::new(20_000);
    let entry = fx.entry();
    fx.store().fetch(&entry).unwrap();
    std::fs::write(fx.blob(), &fx.weights[..1000]).unwrap();
    let store = fx.store();
    assert_eq!(
        store.cached(&entry),
        None,
        "the size pin shows it is incomplete"
    );
    let model = store.fetch(&entry).unwrap();
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
}

// --- broken networks -------------------------------------------------------------------------

#[test]
fn a_transfer_cut_off_midway_resumes_from_the_partial_file() {
    let fx = Fixture::new(300_000);
    fx.hub.set_fault(
        REPO,
        WEIGHTS,
        Some(Fault::CutAfter {
            bytes: 100_000,
            times: 1,
        }),
    );
    let model = fx.store().fetch(&fx.entry()).unwrap();
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
    assert_eq!(
        body_requests(&fx.hub, WEIGHTS),
        vec![
            Some("bytes=0-".to_string()),
            Some("bytes=100000-".to_string())
        ]
    );
}

#[test]
fn a_transfer_that_keeps_breaking_fails_clearly_and_keeps_the_partial_file() {
    let fx = Fixture::new(1_000_000);
    fx.hub.set_fault(
        REPO,
        WEIGHTS,
        Some(Fault::CutAfter {
            bytes: 100_000,
            times: usize::MAX,
        }),
    );
    let store = fx.store();
    let err = store.fetch(&fx.entry()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::Transfer { .. }), "{msg}");
    assert!(
        msg.contains(WEIGHTS) && msg.contains(REPO) && msg.contains("resumes"),
        "{msg}"
    );
    // One attempt and two resumed retries, each 100 kB further.
    assert_eq!(body_requests(&fx.hub, WEIGHTS).len(), 3);
    let part = fx
        .repo_dir()
        .join("blobs")
        .join(format!("{}.part", fx.weights_sha));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 300_000);
    assert!(!fx.blob().exists());

    fx.hub.set_fault(REPO, WEIGHTS, None);
    let model = store.fetch(&fx.entry()).unwrap();
    assert_eq!(
        std::fs::read(model.file(WEIGHTS).unwrap()).unwrap(),
        fx.weights
    );
    assert_eq!(
        body_requests(&fx.hub, WEIGHTS).last().unwrap().as_deref(),
        Some("bytes=300000-")
    );
}

#[test]
fn a_missing_repo_is_a_404_naming_repo_and_file() {
    let fx = Fixture::new(1000);
    let entry = entry_toml("test-org/no-such-model", REV, "{ name = \"config.json\" }");
    let err = fx.store().fetch(&entry).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::NotFound { .. }), "{msg}");
    assert!(
        msg.contains("test-org/no-such-model") && msg.contains("config.json"),
        "{msg}"
    );
    assert!(
        msg.contains("repository not found") && msg.contains("404"),
        "{msg}"
    );
    assert_eq!(
        polybrief::error::Error::from(err).exit_code(),
        polybrief::error::ExitCode::Fatal
    );
}

#[test]
fn a_missing_file_is_a_404_naming_it() {
    let fx = Fixture::new(1000);
    fx.hub.set_fault(REPO, WEIGHTS, Some(Fault::NotFound));
    let msg = fx.store().fetch(&fx.entry()).unwrap_err().to_string();
    assert!(
        msg.contains("file not found") && msg.contains(WEIGHTS) && msg.contains(REV),
        "{msg}"
    );
}

#[test]
fn a_server_error_is_reported_with_status_and_url() {
    let fx = Fixture::new(1000);
    fx.hub.set_fault(REPO, WEIGHTS, Some(Fault::ServerError));
    let err = fx.store().fetch(&fx.entry()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::Server { status: 500, .. }), "{msg}");
    assert!(
        msg.contains(&format!("{}/{REPO}/resolve/{REV}/{WEIGHTS}", fx.hub.url())),
        "{msg}"
    );
    assert!(msg.contains("HF_ENDPOINT"), "{msg}");
}

#[test]
fn a_hub_that_accepts_and_never_answers_fails_within_the_timeout() {
    let fx = Fixture::new(1000);
    fx.hub.set_fault(REPO, "config.json", Some(Fault::Hang));
    let started = Instant::now();
    let err = fx.store().fetch(&fx.entry()).unwrap_err();
    let elapsed = started.elapsed();
    let msg = err.to_string();
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(1),
        "gave up before the 2 s timeout: {elapsed:?}"
    );
    assert!(matches!(err, HubError::Unreachable { .. }), "{msg}");
    assert!(
        msg.contains("no answer within 2 s") && msg.contains(REPO) && msg.contains("config.json"),
        "{msg}"
    );
    assert!(
        msg.contains("HF_ENDPOINT") && msg.contains("--offline"),
        "{msg}"
    );
}

#[test]
fn a_download_that_stalls_midway_is_abandoned_within_the_timeout() {
    let fx = Fixture::new(500_000);
    fx.hub
        .set_fault(REPO, WEIGHTS, Some(Fault::StallAfter(50_000)));
    let started = Instant::now();
    let err = fx.store().fetch(&fx.entry()).unwrap_err();
    let elapsed = started.elapsed();
    let msg = err.to_string();
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(
        matches!(
            err,
            HubError::Stalled {
                received: 50_000,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains(WEIGHTS) && msg.contains("stalled"), "{msg}");
}

// --- the command line --------------------------------------------------------------------------

fn polybrief(cache: &Path, endpoint: &str) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("polybrief").unwrap();
    cmd.env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("hf-home"))
        .env("HF_ENDPOINT", endpoint)
        .env("POLYBRIEF_HUB_TIMEOUT_SECS", "2")
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .timeout(Duration::from_secs(60));
    cmd
}

/// A port on 127.0.0.1 with nothing listening.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn models_list_shows_what_a_run_needs() {
    let cache = tempfile::tempdir().unwrap();
    let out = polybrief(cache.path(), &closed_port_url())
        .args(["models", "list", "--lang", "de,vi,ko"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for id in [
        "opus-mt-de-en",
        "opus-mt-vi-en",
        "opus-mt-tc-big-ko-en",
        "qwen2.5-1.5b-instruct-q4_k_m",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} missing:\n{stdout}"));
        assert!(line.ends_with("not cached"), "{line}");
    }
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("opus-mt")).count(),
        3,
        "{stdout}"
    );
}

#[test]
fn models_fetch_without_network_fails_fast_naming_repo_file_and_ways_out() {
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut cmd = polybrief(cache.path(), &closed_port_url());
    // The real default timeout, as a user without network would have it.
    cmd.env_remove("POLYBRIEF_HUB_TIMEOUT_SECS");
    let out = cmd
        .args(["models", "fetch", "--lang", "de"])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "Helsinki-NLP/opus-mt-de-en",
        "config.json",
        "HF_ENDPOINT",
        "--offline",
        "path =",
    ] {
        assert!(
            stderr.contains(needle),
            "`{needle}` missing from:\n{stderr}"
        );
    }
}

/// A catalog file laying a tiny model for `de` (and tiny stand-ins for the summarizer and the
/// embedder, which `models fetch` also fetches) over the built-in one.
fn write_override(dir: &Path, fx: &Fixture) -> PathBuf {
    let path = dir.join("models.toml");
    let text = format!(
        "schema = 1\n[[model]]\nid = \"tiny-de-en\"\ntasks = [\"translate\"]\nlangs = [\"de\"]\nformat = \"marian\"\n\
         repo = \"{REPO}\"\nrevision = \"{REV}\"\nlicense = \"mit\"\n\
         files = [{{ name = \"config.json\" }}, {{ name = \"{WEIGHTS}\", sha256 = \"{}\" }}]\n\n\
         [[model]]\nid = \"tiny-llm\"\ntasks = [\"summarize\", \"synthesize\"]\nformat = \"gguf\"\n\
         repo = \"{REPO}\"\nrevision = \"{REV}\"\nlicense = \"mit\"\nfiles = [{{ name = \"config.json\" }}]\n\n\
         [[model]]\nid = \"tiny-embed\"\ntasks = [\"embed\"]\nformat = \"transformers\"\n\
         repo = \"{REPO}\"\nrevision = \"{REV}\"\nlicense = \"mit\"\nfiles = [{{ name = \"config.json\" }}]\n",
        fx.weights_sha
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn models_fetch_shows_progress_then_runs_from_cache_and_offline() {
    let fx = Fixture::new(204_800);
    let catalog = write_override(fx.cache.path(), &fx);
    let cat = catalog.to_str().unwrap();
    let out = polybrief(fx.cache.path(), &fx.hub.url())
        .args(["--models", cat, "models", "fetch", "--lang", "de"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // stderr is not a terminal here, so progress comes as log lines: start and end per file.
    assert!(
        stderr.contains(&format!("tiny-de-en/{WEIGHTS}: started (200.00 KiB)")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("tiny-de-en/{WEIGHTS}: done: 200.00 KiB")),
        "{stderr}"
    );
    assert!(stderr.contains("sha256 verified"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tiny-de-en: 2 files"), "{stdout}");

    let requests = fx.hub.requests();
    let out = polybrief(fx.cache.path(), &fx.hub.url())
        .env("HF_HUB_OFFLINE", "1")
        .args(["--models", cat, "models", "fetch", "--lang", "de"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fx.hub.requests(), requests, "offline run used the network");

    let list = polybrief(fx.cache.path(), &fx.hub.url())
        .args(["--models", cat, "models", "list", "--lang", "de"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&list.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("tiny-de-en"))
        .unwrap();
    assert!(line.contains("cached (200.0 KiB)"), "{stdout}");
}

#[test]
fn models_fetch_offline_with_an_empty_cache_names_the_missing_file() {
    let fx = Fixture::new(1000);
    let catalog = write_override(fx.cache.path(), &fx);
    let out = polybrief(fx.cache.path(), &fx.hub.url())
        .env("HF_HUB_OFFLINE", "1")
        .args([
            "--models",
            catalog.to_str().unwrap(),
            "models",
            "fetch",
            "--lang",
            "de",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("offline mode is on") && stderr.contains("config.json"),
        "{stderr}"
    );
    assert_eq!(fx.hub.requests(), 0);
}

#[test]
fn models_verify_reports_and_removes_a_corrupt_file() {
    let fx = Fixture::new(5000);
    let catalog = write_override(fx.cache.path(), &fx);
    let cat = catalog.to_str().unwrap();
    let ok = polybrief(fx.cache.path(), &fx.hub.url())
        .args(["--models", cat, "models", "fetch", "--lang", "de"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let clean = polybrief(fx.cache.path(), &fx.hub.url())
        .args(["--models", cat, "models", "verify"])
        .output()
        .unwrap();
    assert!(clean.status.success());
    assert!(String::from_utf8_lossy(&clean.stdout).contains("tiny-de-en: ok (2 verified)"));

    std::fs::write(fx.blob(), noise(5000, 1)).unwrap();
    let out = polybrief(fx.cache.path(), &fx.hub.url())
        .args(["--models", cat, "models", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("tiny-de-en/{WEIGHTS}: CORRUPT")),
        "{stdout}"
    );
    assert!(stdout.contains("1 corrupt files removed"), "{stdout}");
    assert!(!fx.blob().exists());
}

#[test]
fn a_malformed_catalog_file_is_a_usage_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "schema = 1\n[[model]]\nid = \n").unwrap();
    let out = polybrief(dir.path(), &closed_port_url())
        .args(["--models", path.to_str().unwrap(), "models", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", path.display())),
        "{stderr}"
    );
}
