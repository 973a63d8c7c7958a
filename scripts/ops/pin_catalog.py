#!/usr/bin/env python3
"""Pin polybrief's model catalog against the live Hugging Face hub.

For every [[model]] of models/catalog.toml (or --catalog FILE) this asks the hub API which
commit the entry's revision is at and what each listed file is, then rewrites the catalog in
place so that:
  * `revision` is the full 40-hex commit (a branch such as "main" becomes the commit it points
    to now; an already pinned commit is kept and checked),
  * every file has its exact `size` in bytes and its `sha256` (LFS files: from the hub's LFS
    metadata; small git files: computed from the file downloaded at that commit),
  * `approx_size` is dropped once the exact size is known.
Comments and layout of the catalog are kept (the rewrite is line-based and relies on the
catalog's one-file-per-line layout).

Needs network and Python >= 3.11 (tomllib); standard library only. Honours HF_ENDPOINT and
HF_TOKEN. Run it on a machine that can reach the hub, review `git diff`, commit.

  python3 scripts/ops/pin_catalog.py                 # pin everything
  python3 scripts/ops/pin_catalog.py --only opus-mt-tc-big-ko-en --dry-run
  python3 scripts/ops/pin_catalog.py --self-test     # offline check of the rewriter
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def api_get(endpoint: str, path: str, token: str | None, timeout: float = 30.0):
    req = urllib.request.Request(endpoint.rstrip("/") + path, headers={"User-Agent": "polybrief-pin-catalog"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def download_sha256(endpoint: str, repo: str, commit: str, name: str, token: str | None) -> tuple[int, str]:
    url = f"{endpoint.rstrip('/')}/{repo}/resolve/{commit}/{urllib.parse.quote(name)}"
    req = urllib.request.Request(url, headers={"User-Agent": "polybrief-pin-catalog"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    h, size = hashlib.sha256(), 0
    with urllib.request.urlopen(req, timeout=60) as resp:
        for chunk in iter(lambda: resp.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


class Hub:
    """Answers (repo, revision) -> (commit, {file: (size, sha256 or None)}) from the hub API."""

    def __init__(self, endpoint: str, token: str | None):
        self.endpoint, self.token, self.cache = endpoint, token, {}

    def revision(self, repo: str, revision: str):
        key = (repo, revision)
        if key not in self.cache:
            quoted = urllib.parse.quote(revision, safe="")
            info = api_get(self.endpoint, f"/api/models/{repo}/revision/{quoted}?blobs=true", self.token)
            files = {}
            for s in info.get("siblings", []):
                lfs = s.get("lfs") or {}
                files[s["rfilename"]] = (lfs.get("size", s.get("size")), lfs.get("sha256"))
            self.cache[key] = (info["sha"], files)
        return self.cache[key]

    def file(self, repo: str, revision: str, name: str):
        commit, files = self.revision(repo, revision)
        if name not in files:
            raise SystemExit(f"{repo}@{revision} ({commit}) has no file {name!r}; fix the catalog entry")
        size, sha = files[name]
        if sha is None:  # a small git file: the API gives only its git sha1, so hash it ourselves
            size, sha = download_sha256(self.endpoint, repo, commit, name, self.token)
        return commit, size, sha


def pin(text: str, hub, only: set[str] | None, keep_branch: bool) -> tuple[str, list[str]]:
    """Returns the rewritten catalog text and a list of human-readable changes."""
    catalog = tomllib.loads(text)
    lines = text.splitlines(keepends=True)
    changes: list[str] = []
    # Line ranges of each [[model]] block.
    starts = [i for i, l in enumerate(lines) if l.strip() == "[[model]]"] + [len(lines)]
    for block, (lo, hi) in enumerate(zip(starts, starts[1:])):
        model = catalog["model"][block]
        if only and model["id"] not in only:
            continue
        if "path" in model:
            continue
        repo, rev = model["repo"], model.get("revision", "main")
        commit = hub.revision(repo, rev)[0]
        new_rev = rev if keep_branch else commit
        for i in range(lo, hi):
            m = re.match(r'^(\s*revision\s*=\s*)"([^"]*)"(.*)$', lines[i].rstrip("\n"))
            if m and not lines[i].lstrip().startswith("{"):
                if m.group(2) != new_rev:
                    changes.append(f"{model['id']}: revision {m.group(2)} -> {new_rev}")
                lines[i] = f'{m.group(1)}"{new_rev}"{m.group(3)}\n'
                break
        else:
            if not keep_branch:
                raise SystemExit(f"{model['id']}: add a `revision = ...` line to the entry first")
        for f in model["files"]:
            frepo = f.get("repo", repo)
            frev = f.get("revision", "main" if "repo" in f else rev)
            fcommit, size, sha = hub.file(frepo, frev, f["name"])
            table = {"name": f["name"], "size": size, "sha256": sha}
            if "repo" in f:
                table["repo"] = frepo
                table["revision"] = frev if keep_branch else fcommit
            rendered = "{ " + ", ".join(
                f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in table.items()
            ) + " }"
            pattern = re.compile(r'^(\s*)\{\s*name\s*=\s*"' + re.escape(f["name"]) + r'"[^}]*\}(,?)(.*)$')
            for i in range(lo, hi):
                m = pattern.match(lines[i].rstrip("\n"))
                if m:
                    new = f"{m.group(1)}{rendered}{m.group(2)}{m.group(3)}\n"
                    if new != lines[i]:
                        changes.append(f"{model['id']}/{f['name']}: size {size}, sha256 {sha[:12]}…")
                    lines[i] = new
                    break
            else:
                raise SystemExit(f"{model['id']}: file {f['name']!r} is not on a line of its own")
    out = "".join(lines)
    tomllib.loads(out)  # never write a catalog that does not parse
    return out, changes


def self_test() -> None:
    sample = '''schema = 1
[[model]]
id = "a"
tasks = ["translate"]
langs = ["de"]
format = "marian"
repo = "o/a"
# a comment that must survive
revision = "main"
license = "mit"
files = [
  { name = "config.json", approx_size = "1 kB" },
  { name = "w.bin" },
  { name = "tokenizer.json", repo = "o/b", revision = "main" },
]
'''

    class FakeHub:
        def revision(self, repo, rev):
            return ({"o/a": "a" * 40, "o/b": "b" * 40}[repo], {})

        def file(self, repo, rev, name):
            return self.revision(repo, rev)[0], len(name), hashlib.sha256(name.encode()).hexdigest()

    out, changes = pin(sample, FakeHub(), None, False)
    data = tomllib.loads(out)["model"][0]
    assert data["revision"] == "a" * 40, out
    assert "# a comment that must survive" in out
    assert data["files"][0] == {"name": "config.json", "size": 11, "sha256": hashlib.sha256(b"config.json").hexdigest()}
    assert data["files"][2]["revision"] == "b" * 40 and data["files"][2]["repo"] == "o/b"
    assert len(changes) == 4, changes
    print("pin_catalog self-test: ok")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", type=Path, default=ROOT / "models" / "catalog.toml")
    p.add_argument("--endpoint", default=os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    p.add_argument("--only", nargs="*", help="model ids to pin (default: all)")
    p.add_argument("--keep-branch", action="store_true", help="fill sizes and hashes but keep branch revisions")
    p.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    p.add_argument("--self-test", action="store_true", help="check the rewriter offline and exit")
    args = p.parse_args(argv)
    if args.self_test:
        self_test()
        return 0
    text = args.catalog.read_text(encoding="utf-8")
    out, changes = pin(text, Hub(args.endpoint, os.environ.get("HF_TOKEN")), set(args.only or []) or None, args.keep_branch)
    for c in changes:
        print(c)
    if not args.dry_run and out != text:
        args.catalog.write_text(out, encoding="utf-8")
        print(f"wrote {args.catalog}; review with `git diff` and run `cargo test catalog`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
