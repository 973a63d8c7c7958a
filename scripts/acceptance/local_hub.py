#!/usr/bin/env python3
"""A local stand-in for the Hugging Face hub on 127.0.0.1, serving the files of a manifest
(make_models.py writes one) under their repo names and revisions, for HF_ENDPOINT.

It answers what polybrief's model manager and the hf-hub crate ask, as the Rust test hub
(tests/integration/support/fake_hub.rs) does:

  GET|HEAD /{repo}/resolve/{revision}/{file}   with or without `Range: bytes=a-[b]`
    200, or 206 with `Content-Range: bytes a-b/SIZE` for ranges;
    `X-Repo-Commit` (a 40-hex revision is its own commit, a branch gets a stable made-up one),
    `ETag` (quoted; sha256 for LFS files, git blob sha1 for small ones) and, for LFS files,
    `X-Linked-Etag` / `X-Linked-Size`; 404 with the hub's `X-Error-Code` otherwise.

  local_hub.py --manifest M.json --port-file P [--log L]   serve; the chosen port goes to P
  local_hub.py --hang --port-file P                         accept connections, never answer
                                                            (a network that swallows requests)

Each request is logged (method, path, range, status) to --log, one JSON object per line.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import pathlib
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse


def commit_of(repo: str, revision: str) -> str:
    """Same rule as FakeHub::commit_of."""
    if re.fullmatch(r"[0-9a-fA-F]{40}", revision):
        return revision.lower()
    return hashlib.sha256(f"{repo}@{revision}".encode()).hexdigest()[:40]


class Files:
    def __init__(self, manifest: pathlib.Path):
        data = json.loads(manifest.read_text())
        self.by_key = {}
        for f in data["files"]:
            self.by_key[(f["repo"], f["revision"], f["file"])] = f

    def lookup(self, repo: str, revision: str, name: str):
        f = self.by_key.get((repo, revision, name))
        if f is not None:
            return f, None
        if not any(r == repo for r, _, _ in self.by_key):
            return None, "RepoNotFound"
        if not any(r == repo and v == revision for r, v, _ in self.by_key):
            return None, "RevisionNotFound"
        return None, "EntryNotFound"


RESOLVE = re.compile(r"^/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    files: Files = None
    log_file = None
    log_lock = threading.Lock()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def record(self, status: int, started: float | None = None, sent: int = 0):
        if self.log_file is None:
            return
        now = time.time()
        entry = {"t": round(now, 3), "method": self.command, "path": self.path,
                 "range": self.headers.get("Range"), "status": status, "bytes": sent,
                 "secs": round(now - started, 3) if started else 0.0}
        with self.log_lock:
            self.log_file.write(json.dumps(entry) + "\n")
            self.log_file.flush()

    def simple(self, status: int, reason: str, headers: dict | None = None):
        body = f"{status} {reason}".encode()
        self.send_response(status, reason)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(status)

    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        self.serve()

    def serve(self):
        path = urllib.parse.urlsplit(self.path).path
        m = RESOLVE.match(path)
        if not m:
            return self.simple(404, "Not Found", {"X-Error-Code": "EntryNotFound"})
        repo = m["repo"]
        revision = urllib.parse.unquote(m["rev"])
        name = urllib.parse.unquote(m["file"])
        f, error = self.files.lookup(repo, revision, name)
        if f is None:
            return self.simple(404, "Not Found", {"X-Error-Code": error})
        total = f["size"]
        rng = self.headers.get("Range")
        start, end = 0, total - 1
        if rng:
            r = RANGE.match(rng.strip())
            if not r:
                return self.simple(416, "Range Not Satisfiable", {"Content-Range": f"bytes */{total}"})
            start = int(r[1])
            end = min(int(r[2]) if r[2] else total - 1, total - 1)
            if total > 0 and start >= total:
                return self.simple(416, "Range Not Satisfiable", {"Content-Range": f"bytes */{total}"})
        length = max(0, end - start + 1) if total > 0 else 0
        status = 206 if rng else 200
        self.send_response(status, "Partial Content" if rng else "OK")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Repo-Commit", commit_of(repo, revision))
        self.send_header("ETag", f"\"{f['etag']}\"")
        if f["lfs"]:
            self.send_header("X-Linked-Etag", f"\"{f['etag']}\"")
            self.send_header("X-Linked-Size", str(total))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        started = time.time()
        sent = 0
        if self.command != "HEAD" and length > 0:
            with open(f["path"], "rb") as fh:
                fh.seek(start)
                while sent < length:
                    chunk = fh.read(min(length - sent, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
        # Logged when the body is out, so the log times downloads.
        self.record(status, started, sent)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gives up mid-download (a timeout test) is not the hub's error.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def write_port(port_file: pathlib.Path, port: int):
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, port_file)


def hang(port_file: pathlib.Path):
    """Accept, read the request, answer nothing, keep the socket open: like a black-holed route."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    write_port(port_file, listener.getsockname()[1])
    held = []
    while True:
        conn, _ = listener.accept()
        held.append(conn)
        threading.Thread(target=lambda c=conn: c.recv(65536), daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=pathlib.Path)
    parser.add_argument("--port-file", type=pathlib.Path, required=True)
    parser.add_argument("--log", type=pathlib.Path)
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    if args.hang:
        return hang(args.port_file)
    if not args.manifest:
        parser.error("--manifest is required unless --hang")
    Handler.files = Files(args.manifest)
    if args.log:
        Handler.log_file = open(args.log, "a", buffering=1)
    server = Server(("127.0.0.1", 0), Handler)
    write_port(args.port_file, server.server_address[1])
    print(f"local hub on http://127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
