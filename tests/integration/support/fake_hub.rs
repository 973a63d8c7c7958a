//! A fake Hugging Face hub on 127.0.0.1 for tests, reusable by any area.
//!
//! It answers the requests `hf-hub` and the Python client make for a file,
//! `GET {url}/{repo}/resolve/{revision}/{file}` with or without `Range: bytes=a-[b]`, with the
//! headers they need: `X-Repo-Commit`, `ETag` (and for LFS files `X-Linked-Etag` = sha256 and
//! `X-Linked-Size`), `Content-Range` with status 206 for ranges. Unknown repos, revisions and
//! files get 404 with the hub's `X-Error-Code`. Per-file faults simulate broken networks.
//!
//! ```ignore
//! let hub = FakeHub::start();
//! hub.add_file("org/tiny-de-en", "main", "config.json", b"{}".to_vec());
//! std::env::set_var("HF_ENDPOINT", hub.url()); // or HubSettings::new(cache, hub.url())
//! assert_eq!(hub.requests(), 0);
//! ```
//!
//! Every connection gets its own thread (at most [`MAX_CONNECTIONS`] at once; more are
//! answered 503). Dropping the hub stops it and shuts every open connection, so clients
//! blocked on a hanging answer see the connection close.

#![allow(dead_code)] // each test area uses a different part of the API

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::Digest;

pub const MAX_CONNECTIONS: usize = 64;

/// A way for one file to misbehave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 404 with `X-Error-Code: EntryNotFound`.
    NotFound,
    /// 500 Internal Server Error.
    ServerError,
    /// Accept the connection, read the request, never answer.
    Hang,
    /// For the next `times` body requests: headers for the whole range, then only `bytes`
    /// bytes of the body, then close the connection.
    CutAfter { bytes: usize, times: usize },
    /// For body requests: headers and `bytes` bytes, then silence with the connection open.
    StallAfter(usize),
    /// Serve other bytes (same length) than the sha256 and size the headers advertise.
    Corrupt,
}

/// One request the hub received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Clone)]
struct Served {
    bytes: Arc<Vec<u8>>,
    /// sha256 for LFS files, git blob sha1 for small ones (what the hub sends as ETag).
    etag: String,
    lfs: bool,
    commit: String,
}

#[derive(Default)]
struct Shared {
    /// (repo, revision, file name) → content.
    files: Mutex<HashMap<(String, String, String), Served>>,
    /// (repo, file name) → fault, for every revision.
    faults: Mutex<HashMap<(String, String), Fault>>,
    log: Mutex<Vec<Request>>,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    active: AtomicUsize,
}

pub struct FakeHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Starts serving on a free port of 127.0.0.1.
    pub fn start() -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, shared))
        };
        FakeHub {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, for `HF_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `bytes` as an LFS file (ETag = sha256); returns its sha256.
    pub fn add_file(
        &self,
        repo: &str,
        revision: &str,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> String {
        let bytes = bytes.into();
        let sha = sha256_hex(&bytes);
        self.insert(repo, revision, name, bytes, sha.clone(), true);
        sha
    }

    /// Serves `bytes` as a small git file (ETag = git blob sha1, no X-Linked-*); returns
    /// that sha1.
    pub fn add_small_file(
        &self,
        repo: &str,
        revision: &str,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> String {
        let bytes = bytes.into();
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {}\0", bytes.len()).as_bytes());
        h.update(&bytes);
        let etag = hex::encode(h.finalize());
        self.insert(repo, revision, name, bytes, etag.clone(), false);
        etag
    }

    fn insert(
        &self,
        repo: &str,
        revision: &str,
        name: &str,
        bytes: Vec<u8>,
        etag: String,
        lfs: bool,
    ) {
        let served = Served {
            bytes: Arc::new(bytes),
            etag,
            lfs,
            commit: FakeHub::commit_of(repo, revision),
        };
        self.shared
            .files
            .lock()
            .unwrap()
            .insert((repo.into(), revision.into(), name.into()), served);
    }

    /// The commit a revision resolves to: a 40-hex revision is itself, a branch gets a
    /// stable made-up commit.
    pub fn commit_of(repo: &str, revision: &str) -> String {
        if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            revision.to_ascii_lowercase()
        } else {
            sha256_hex(format!("{repo}@{revision}").as_bytes())[..40].to_string()
        }
    }

    /// Makes one file misbehave (all revisions); `None` heals it.
    pub fn set_fault(&self, repo: &str, name: &str, fault: Option<Fault>) {
        let mut faults = self.shared.faults.lock().unwrap();
        match fault {
            Some(f) => faults.insert((repo.into(), name.into()), f),
            None => faults.remove(&(repo.to_string(), name.to_string())),
        };
    }

    /// How many requests arrived so far (to assert that no network was used).
    pub fn requests(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    pub fn request_log(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wake the acceptor so it sees the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        if shared.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            continue;
        }
        if let Ok(clone) = stream.try_clone() {
            shared.open.lock().unwrap().push(clone);
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &shared);
            shared.active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Answers requests on one keep-alive connection until it closes or a fault ends it.
fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let path = target.split('?').next().unwrap_or_default().to_string();
        shared.log.lock().unwrap().push(Request {
            method: method.clone(),
            path: path.clone(),
            range: headers.get("range").cloned(),
            authorization: headers.get("authorization").cloned(),
        });
        if !respond(
            &mut out,
            shared,
            &method,
            &path,
            headers.get("range").map(String::as_str),
        )? {
            return Ok(());
        }
    }
}

/// Writes one answer; returns whether the connection may serve another request.
fn respond(
    out: &mut TcpStream,
    shared: &Shared,
    method: &str,
    path: &str,
    range: Option<&str>,
) -> std::io::Result<bool> {
    let Some((repo, revision, name)) = parse_resolve(path) else {
        return simple(out, 404, "Not Found", &[("X-Error-Code", "EntryNotFound")]);
    };
    let (served, any_repo, any_rev) = {
        let files = shared.files.lock().unwrap();
        let served = files
            .get(&(repo.clone(), revision.clone(), name.clone()))
            .cloned();
        let any_repo = files.keys().any(|(r, _, _)| *r == repo);
        let any_rev = files.keys().any(|(r, v, _)| *r == repo && *v == revision);
        (served, any_repo, any_rev)
    };
    let Some(served) = served else {
        let code = if !any_repo {
            "RepoNotFound"
        } else if !any_rev {
            "RevisionNotFound"
        } else {
            "EntryNotFound"
        };
        return simple(out, 404, "Not Found", &[("X-Error-Code", code)]);
    };
    let is_body_request = range != Some("bytes=0-0");
    let fault = {
        let mut faults = shared.faults.lock().unwrap();
        let key = (repo.clone(), name.clone());
        let fault = faults.get(&key).cloned();
        // Count down a limited cut-off on the requests it applies to.
        if let Some(Fault::CutAfter { bytes, times }) = &fault {
            if is_body_request {
                if *times <= 1 {
                    faults.remove(&key);
                } else if *times != usize::MAX {
                    faults.insert(
                        key,
                        Fault::CutAfter {
                            bytes: *bytes,
                            times: times - 1,
                        },
                    );
                }
            }
        }
        fault
    };
    match &fault {
        Some(Fault::NotFound) => {
            return simple(out, 404, "Not Found", &[("X-Error-Code", "EntryNotFound")])
        }
        Some(Fault::ServerError) => return simple(out, 500, "Internal Server Error", &[]),
        Some(Fault::Hang) => {
            wait_for_stop(shared);
            return Ok(false);
        }
        _ => {}
    }

    let total = served.bytes.len();
    let (start, end) = match range.and_then(parse_range) {
        Some((start, end)) => (
            start,
            end.unwrap_or(total.saturating_sub(1))
                .min(total.saturating_sub(1)),
        ),
        None => (0, total.saturating_sub(1)),
    };
    if total > 0 && start >= total {
        let content_range = format!("bytes */{total}");
        return simple(
            out,
            416,
            "Range Not Satisfiable",
            &[("Content-Range", &content_range)],
        );
    }
    let body: Vec<u8> = if total == 0 {
        Vec::new()
    } else if fault == Some(Fault::Corrupt) {
        served.bytes[start..=end].iter().map(|b| b ^ 0xff).collect()
    } else {
        served.bytes[start..=end].to_vec()
    };
    let (status, reason) = if range.is_some() {
        (206, "Partial Content")
    } else {
        (200, "OK")
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nX-Repo-Commit: {}\r\nETag: \"{}\"\r\n",
        body.len(),
        served.commit,
        served.etag
    );
    if served.lfs {
        head.push_str(&format!(
            "X-Linked-Etag: \"{}\"\r\nX-Linked-Size: {total}\r\n",
            served.etag
        ));
    }
    if range.is_some() {
        head.push_str(&format!("Content-Range: bytes {start}-{end}/{total}\r\n"));
    }
    head.push_str("Content-Type: application/octet-stream\r\n\r\n");
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(true);
    }
    match (&fault, is_body_request) {
        (Some(Fault::CutAfter { bytes, .. }), true) => {
            out.write_all(&body[..(*bytes).min(body.len())])?;
            out.flush()?;
            let _ = out.shutdown(Shutdown::Both);
            Ok(false)
        }
        (Some(Fault::StallAfter(bytes)), true) => {
            out.write_all(&body[..(*bytes).min(body.len())])?;
            out.flush()?;
            wait_for_stop(shared);
            Ok(false)
        }
        _ => {
            out.write_all(&body)?;
            out.flush()?;
            Ok(true)
        }
    }
}

fn simple(
    out: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<bool> {
    let body = format!("{status} {reason}");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()?;
    Ok(true)
}

fn wait_for_stop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/{repo}/resolve/{revision}/{file}` → (repo, revision, file), percent-decoded.
fn parse_resolve(path: &str) -> Option<(String, String, String)> {
    let idx = path.find("/resolve/")?;
    let repo = path.get(1..idx)?.to_string();
    let rest = &path[idx + "/resolve/".len()..];
    let (revision, file) = rest.split_once('/')?;
    Some((repo, percent_decode(revision), percent_decode(file)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `bytes=a-b` or `bytes=a-` → (a, Some(b) / None).
fn parse_range(range: &str) -> Option<(usize, Option<usize>)> {
    let spec = range.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = if b.trim().is_empty() {
        None
    } else {
        Some(b.trim().parse().ok()?)
    };
    Some((start, end))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}
