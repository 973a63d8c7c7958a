//! A small web server on 127.0.0.1 for feed tests: serves fixed pages whose content the test
//! changes between "nights", answers `If-None-Match` / `If-Modified-Since` with 304 when they
//! match, can be slow on a path, and logs every request (with its validators and time) so a
//! test can assert what a run asked for.
//!
//! One thread per connection, `Connection: close` on every answer: simple, and enough for a
//! client that sends one request at a time.

#![allow(dead_code)] // each test uses a different part of the API

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one path answers.
#[derive(Clone, Debug)]
pub struct Page {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    /// Sent as `ETag`, and compared with `If-None-Match`.
    pub etag: Option<String>,
    /// Sent as `Last-Modified`, and compared with `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// Waits this long before answering.
    pub delay: Duration,
}

impl Page {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Page {
        Page {
            status: 200,
            body: body.into(),
            content_type: content_type.into(),
            etag: None,
            last_modified: None,
            delay: Duration::ZERO,
        }
    }

    /// A page with an ETag derived from its content and a fixed Last-Modified.
    pub fn validated(content_type: &str, body: impl Into<Vec<u8>>) -> Page {
        let body = body.into();
        let etag = format!("\"{:016x}\"", fnv(&body));
        Page {
            etag: Some(etag),
            last_modified: Some("Mon, 30 Nov 2026 02:00:00 GMT".into()),
            ..Page::ok(content_type, body)
        }
    }

    pub fn slow(mut self, delay: Duration) -> Page {
        self.delay = delay;
        self
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub at: Instant,
    /// The status answered.
    pub status: u16,
}

impl Request {
    pub fn is_conditional(&self) -> bool {
        self.if_none_match.is_some() || self.if_modified_since.is_some()
    }
}

#[derive(Default)]
struct Shared {
    pages: Mutex<HashMap<String, Page>>,
    log: Mutex<Vec<Request>>,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

pub struct FeedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FeedServer {
    /// Starts serving on a free port of 127.0.0.1.
    pub fn start() -> FeedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, shared))
        };
        FeedServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, page: Page) {
        self.shared
            .pages
            .lock()
            .unwrap()
            .insert(path.to_string(), page);
    }

    pub fn remove(&self, path: &str) {
        self.shared.pages.lock().unwrap().remove(path);
    }

    /// Every request so far, in order.
    pub fn log(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
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
        let Ok(stream) = stream else { continue };
        if let Ok(clone) = stream.try_clone() {
            shared.open.lock().unwrap().push(clone);
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &shared);
        });
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let at = Instant::now();
    let page = shared.pages.lock().unwrap().get(&path).cloned();
    let if_none_match = headers.get("if-none-match").cloned();
    let if_modified_since = headers.get("if-modified-since").cloned();
    let status = match &page {
        None => 404,
        Some(p) if p.status == 200 => {
            let etag_matches = if_none_match.is_some() && if_none_match == p.etag;
            let date_matches = if_none_match.is_none()
                && if_modified_since.is_some()
                && if_modified_since == p.last_modified;
            if etag_matches || date_matches {
                304
            } else {
                200
            }
        }
        Some(p) => p.status,
    };
    shared.log.lock().unwrap().push(Request {
        method,
        path,
        if_none_match,
        if_modified_since,
        at,
        status,
    });
    if let Some(p) = &page {
        std::thread::sleep(p.delay);
    }
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n",
        reason(status)
    );
    let body: &[u8] = match (&page, status) {
        (Some(p), 200) => {
            head.push_str(&format!("Content-Type: {}\r\n", p.content_type));
            if let Some(etag) = &p.etag {
                head.push_str(&format!("ETag: {etag}\r\n"));
            }
            if let Some(modified) = &p.last_modified {
                head.push_str(&format!("Last-Modified: {modified}\r\n"));
            }
            &p.body
        }
        (Some(p), 304) => {
            if let Some(etag) = &p.etag {
                head.push_str(&format!("ETag: {etag}\r\n"));
            }
            b""
        }
        (Some(p), _) => &p.body,
        (None, _) => b"not found",
    };
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()?;
    let _ = out.shutdown(Shutdown::Write);
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// FNV-1a: a stable content hash for ETags, without a dependency.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
