#!/usr/bin/env python3
"""Turns what run_seeds.sh left under .bench/acceptance/ into the Markdown report: stage times
of the first and second run, wall time and peak memory, the brief's check (every input listed
as a source and cited, or listed as unused with a reason), and the no-network cases.

  report.py --bench .bench/acceptance --input ../shared/seeds [--cores 2 --pinned "taskset -c 0-1"]

Exit status 0 when every acceptance criterion holds, 1 otherwise (the report says which).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import subprocess
import sys

# "stage translate: 24.29s, 40.65s CPU, peak RSS 1.2 GiB (5 articles, ...)"; logs from before the
# CPU and RSS were added lack the part after the seconds.
STAGE = re.compile(r"stage (?P<name>[\w+-]+): (?P<secs>[\d.]+)s(?:, [^()]*)? \((?P<detail>.*)\)\s*$")
DONE = re.compile(r"done in (?P<secs>[\d.]+)s: (?P<rest>.*)$")
STAGE_ORDER = ["ingest", "detect+segment", "translate", "summarize", "synthesize", "render"]
NONET_LIMIT_S = 30.0
# What the model manager says when the hub cannot be reached (src/models/hub.rs, HubError::Unreachable).
NONET_MESSAGE = "cannot reach"


def read(path: pathlib.Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return default


def parse_log(text: str) -> tuple[dict, float | None, str | None]:
    stages: dict[str, tuple[float, str]] = {}
    done = None
    done_rest = None
    for line in text.splitlines():
        m = STAGE.search(line)
        if m:
            stages[m["name"]] = (float(m["secs"]), m["detail"])
        m = DONE.search(line)
        if m:
            done, done_rest = float(m["secs"]), m["rest"]
    return stages, done, done_rest


def parse_time(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Maximum resident set size (kbytes):"):
            out["rss_kb"] = int(line.rsplit(":", 1)[1])
        elif line.startswith("Elapsed (wall clock) time"):
            value = line.rsplit(": ", 1)[1]
            secs = 0.0
            for part in value.split(":"):
                secs = secs * 60 + float(part)
            out["wall"] = secs
        elif line.startswith("User time (seconds):"):
            out["user"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("System time (seconds):"):
            out["sys"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("Exit status:"):
            out["exit"] = int(line.rsplit(":", 1)[1])
    return out


LLM_CALL = re.compile(r"(?P<prompt>\d+) prompt tokens at (?P<pps>[\d.]+)/s, (?P<gen>\d+) generated at (?P<gps>[\d.]+)/s"
                      r"(?:, stopped by (?P<stop>\w+))?")


def parse_cpu(path: pathlib.Path) -> tuple[dict, dict, list[float]]:
    """CPU seconds per stage (difference between consecutive `stage …` lines) and at a few other
    marks, and the load averages sampled during the run, from monitor.py's output."""
    per_stage: dict[str, float] = {}
    marks: dict[str, float] = {}
    loads: list[float] = []
    previous = 0.0
    for line in read(path).splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("end"):
            marks["end"] = entry["cpu"]
            loads = entry.get("load_samples", loads)
            continue
        text = entry.get("line", "")
        m = STAGE.search(text)
        if m:
            per_stage[m["name"]] = entry["cpu"] - previous
            previous = entry["cpu"]
            marks[f"after {m['name']}"] = entry["cpu"]
        elif "translate: started" in text and "translate started" not in marks:
            marks["translate started"] = entry["cpu"]
    return per_stage, marks, loads


def llm_stats(log: str) -> dict:
    calls = [m for m in (LLM_CALL.search(l) for l in log.splitlines()) if m]
    stops: dict[str, int] = {}
    for c in calls:
        stops[c["stop"] or "?"] = stops.get(c["stop"] or "?", 0) + 1
    prompt = sum(int(c["prompt"]) for c in calls)
    gen = sum(int(c["gen"]) for c in calls)
    prompt_s = sum(int(c["prompt"]) / float(c["pps"]) for c in calls if float(c["pps"]) > 0)
    gen_s = sum(int(c["gen"]) / float(c["gps"]) for c in calls if float(c["gps"]) > 0)
    return {
        "calls": len(calls), "prompt": prompt, "gen": gen, "prompt_s": prompt_s, "gen_s": gen_s, "stops": stops,
        "parts": sum(1 for l in log.splitlines() if "summarizing it in" in l),
        "retries": sum(1 for l in log.splitlines() if "asking again with the strict prompt" in l),
    }


def translation_stats(stage_cache: pathlib.Path, models: pathlib.Path) -> list[list[str]]:
    """Per translated article: source tokens (the model's own sentencepiece), output tokens
    (greedy longest match over vocab.json: about what was generated) and how many sentences
    ran to the engine's cap of 3 × source + 16 tokens."""
    try:
        import sentencepiece as spm
    except ImportError:
        return []
    segments = {}
    for f in stage_cache.glob("v1/segment/*/*.entry"):
        d = json.loads(read(f).split("\n", 1)[1])
        segments[d["detected"]["article"]["origin"]] = d["segments"]
    rows = []
    for f in sorted(stage_cache.glob("v1/translate/*/*.entry")):
        d = json.loads(read(f).split("\n", 1)[1])
        origin = d["article"]["origin"]
        for lang, label in d.get("translations", []):
            repo = label.split("@")[0]
            directory = models / repo
            if not directory.exists():
                continue
            sp = spm.SentencePieceProcessor(model_file=str(directory / "source.spm"))
            vocab = json.loads(read(directory / "vocab.json"))
            longest = max(len(k) for k in vocab)
            src = out = capped = n = 0
            for sentence in d["sentences"]:
                if sentence.get("translated_by") != label:
                    continue
                segment = segments.get(origin, [])[sentence["segment"]] if isinstance(sentence.get("segment"), int) else None
                if segment is None:
                    continue
                a = len(sp.encode(segment["text"])) + 1
                text = "\u2581" + sentence["text"].replace(" ", "\u2581")
                b, i = 0, 0
                while i < len(text):
                    for j in range(min(len(text), i + longest), i, -1):
                        if text[i:j] in vocab:
                            break
                    i = j
                    b += 1
                n += 1
                src += a
                out += b
                capped += b + 1 >= 3 * a + 16
            if n:
                rows.append([origin, f"{lang} ({repo.split('/')[-1]})", str(n), str(src), f"≈{out}",
                             f"{out / src:.1f}", f"{capped}/{n}"])
    return rows


def fmt(x, digits=1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def downloads(bench: pathlib.Path, manifest: dict) -> list[tuple[str, int, float]]:
    """(file, bytes, seconds) of each body download in the first run, from the hub's log."""
    log = bench / "hub-requests.jsonl"
    if not log.exists():
        return []
    rows = []
    for line in read(log).splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("method") == "GET" and entry.get("range") != "bytes=0-0" and entry.get("bytes", 0) > 0:
            rows.append((entry["path"], entry["bytes"], entry.get("secs", 0.0)))
    return rows


def seed_check(brief: dict, inputs: list[pathlib.Path]) -> tuple[list[list[str]], bool]:
    cited: dict[int, int] = {}
    for story in brief.get("stories", []):
        for point in story.get("points", []):
            for n in point.get("citations", []):
                cited[n] = cited.get(n, 0) + 1
    unused = {u["source"]: u["reason"] for u in brief.get("unused", [])}
    skipped = {pathlib.Path(s["path"]).name: s["reason"] for s in brief.get("skipped", [])}
    rows = []
    ok = True
    for path in inputs:
        name = path.name
        source = None
        for s in brief.get("sources", []):
            places = [s.get("origin", "")] + list(s.get("also_at", []))
            if any(pathlib.Path(p).name == name or p.endswith(name) for p in places):
                source = s
                break
        if source is None:
            status = f"skipped: {skipped[name]}" if name in skipped else "NOT LISTED"
            rows.append([name, "—", "—", "—", "—", status])
            ok = False
            continue
        n = source["number"]
        lang = source.get("language") or "—"
        if isinstance(lang, dict):
            lang = lang.get("code", str(lang))
        translated = ", ".join(f"{t['from'] if isinstance(t['from'], str) else t['from']} by {t['model']}"
                               for t in source.get("translated", [])) or "not translated"
        count = cited.get(n, 0)
        if count:
            status = "cited"
        elif n in unused:
            status = f"listed, not cited: {unused[n]}"
        else:
            status = "listed, NOT cited and no reason given"
            ok = False
        summary = source.get("summary") or {}
        method = summary.get("method", "—") if isinstance(summary, dict) else "—"
        if isinstance(method, dict):
            method = json.dumps(method)
        rows.append([name, f"[{n}]", str(lang), translated, f"{count} points; summary: {method}", status])
    return rows, ok


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def cpu_model() -> str:
    for line in read(pathlib.Path("/proc/cpuinfo")).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=pathlib.Path, required=True)
    parser.add_argument("--input", type=pathlib.Path, required=True)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--pinned", default="no")
    args = parser.parse_args()
    bench = args.bench
    run = bench / "run"
    root = pathlib.Path(__file__).resolve().parent.parent.parent
    inputs = sorted(p for p in args.input.iterdir() if p.is_file() and not p.name.startswith("."))
    manifest = json.loads(read(bench / "manifest.json", "{}") or "{}")
    verdicts: list[tuple[str, bool]] = []

    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    print(f"## Acceptance run (issue #4): `polybrief run` on {args.input.name}/ ({len(inputs)} files)\n")
    print(f"- polybrief {commit}{' (with uncommitted changes)' if dirty else ''}, release build, CPU")
    print(f"- machine: {cpu_model()}, {os.cpu_count()} cores online; run on {args.cores} cores "
          f"(RAYON_NUM_THREADS={args.cores}; pinned: {args.pinned})")
    print(f"- command (first and second run): `{read(run / 'run1.cmd').strip()}`")
    print()

    print("### Models (random weights at the real sizes, served by scripts/acceptance/local_hub.py)\n")
    rows = []
    for f in manifest.get("files", []):
        if f["size"] > 10_000_000:
            rows.append([f["repo"], f["revision"][:12], f["file"], f"{f['size'] / 1e6:.1f} MB"])
    print(table(["repo", "revision", "file", "size"], rows))
    print()

    runs = {}
    for name in ("run1", "run2"):
        stages, done, done_rest = parse_log(read(run / f"{name}.log"))
        cpu, marks, loads = parse_cpu(run / f"{name}.cpu.jsonl")
        runs[name] = dict(stages=stages, done=done, done_rest=done_rest, time=parse_time(read(run / f"{name}.time")),
                          rc=read(run / f"{name}.rc", "?").strip(), hub=read(run / f"{name}.hub-requests", "?").strip(),
                          cpu=cpu, marks=marks, loads=loads)
    r1, r2 = runs["run1"], runs["run2"]

    print(f"### Time on {args.cores} cores, stage by stage (seconds, from polybrief's `stage …` log lines)\n")
    print("Wall seconds are what the log says; CPU seconds (user+system of the polybrief process, sampled "
          "from /proc when each stage line appears) do not depend on other jobs on the machine.\n")
    rows = []
    names = STAGE_ORDER + [s for s in r1["stages"] if s not in STAGE_ORDER] + \
        [s for s in r2["stages"] if s not in STAGE_ORDER and s not in r1["stages"]]
    for s in names:
        a = r1["stages"].get(s)
        b = r2["stages"].get(s)
        if a is None and b is None:
            continue
        rows.append([s, fmt(a and a[0], 2), fmt(r1["cpu"].get(s), 1), fmt(b and b[0], 2), fmt(r2["cpu"].get(s), 1),
                     a[1] if a else ""])
    sum1 = sum(v[0] for v in r1["stages"].values()) if r1["stages"] else None
    sum2 = sum(v[0] for v in r2["stages"].values()) if r2["stages"] else None
    w1, w2 = r1["time"].get("wall"), r2["time"].get("wall")
    cpu1 = (r1["time"].get("user") or 0) + (r1["time"].get("sys") or 0)
    cpu2 = (r2["time"].get("user") or 0) + (r2["time"].get("sys") or 0)
    out_cpu1 = cpu1 - sum(r1["cpu"].values()) if r1["cpu"] else None
    out_cpu2 = cpu2 - sum(r2["cpu"].values()) if r2["cpu"] else None
    rows.append(["outside stages (start-up; download and check of the translators, before `translate`)",
                 fmt(w1 - sum1 if w1 is not None and sum1 is not None else None, 2), fmt(out_cpu1),
                 fmt(w2 - sum2 if w2 is not None and sum2 is not None else None, 2), fmt(out_cpu2), ""])
    rows.append(["**total** (/usr/bin/time)", f"**{fmt(w1, 1)}**", f"**{fmt(cpu1, 1)}**", f"**{fmt(w2, 1)}**",
                 f"**{fmt(cpu2, 1)}**", f"polybrief: done in {fmt(r1['done'])} s" if r1["done"] else ""])
    rss1, rss2 = r1["time"].get("rss_kb"), r2["time"].get("rss_kb")
    rows.append(["**peak RSS**", f"**{fmt(rss1 / 1024 / 1024 if rss1 else None, 2)} GiB**", "",
                 f"**{fmt(rss2 / 1024 / 1024 if rss2 else None, 2)} GiB**", "", ""])
    rows.append(["exit code", r1["rc"], "", r2["rc"], "", ""])
    rows.append(["requests to the hub", r1["hub"], "", r2["hub"], "", ""])
    print(table(["stage", "run 1 wall s", "run 1 CPU s", "run 2 wall s", "run 2 CPU s", "run 1 detail"], rows))
    print()
    for name, r in (("run 1", r1), ("run 2", r2)):
        if r["loads"]:
            loads = sorted(r["loads"])
            print(f"Load average during {name} (1-minute, sampled every 5 s): median {loads[len(loads) // 2]:.1f}, "
                  f"max {loads[-1]:.1f} — above {args.cores} means other jobs competed for the cores and wall "
                  f"times are longer than on an idle machine.  ")
    print()
    stats = llm_stats(read(run / "run1.log"))
    if stats["calls"]:
        print(f"Language model in run 1: {stats['calls']} calls ({stats['parts']} articles summarized in parts, "
              f"{stats['retries']} strict re-asks), {stats['prompt']} prompt tokens in {stats['prompt_s']:.0f} s "
              f"({stats['prompt'] / max(stats['prompt_s'], 1e-9):.1f}/s), {stats['gen']} generated in "
              f"{stats['gen_s']:.0f} s ({stats['gen'] / max(stats['gen_s'], 1e-9):.2f}/s); replies ended by: "
              + ", ".join(f"{k} {v}" for k, v in sorted(stats["stops"].items())) + ".\n")
    rows = translation_stats(run / "stage-cache", bench / "models")
    if rows:
        print("Translations in run 1 (random weights rarely choose `</s>`, so outputs run to the engine's cap "
              "of 3 × source + 16 tokens):\n")
        print(table(["article", "translated from", "sentences", "source tokens", "output tokens", "ratio",
                     "at the cap"], rows))
        print()
    dl = downloads(bench, manifest)
    if dl:
        total_bytes = sum(b for _, b, _ in dl)
        total_secs = sum(s for _, _, s in dl)
        print(f"Downloads from the local hub in run 1: {len(dl)} files, {total_bytes / 1e6:.0f} MB, "
              f"{total_secs:.1f} s of transfer (serial; loopback, so this is polybrief's write-and-verify "
              f"cost, not a network's).\n")
    if r1["done_rest"]:
        print(f"Run 1 summary line: `{r1['done_rest']}`  ")
    if r2["done_rest"]:
        print(f"Run 2 summary line: `{r2['done_rest']}`\n")
    verdicts.append(("first run completes (exit 0)", r1["rc"] == "0"))
    verdicts.append(("second run completes (exit 0) and asks the hub nothing", r2["rc"] == "0" and r2["hub"] == "0"))

    print("### The brief: every input listed as a source and cited (or listed as unused with a reason)\n")
    brief_path = run / "run1.brief.json"
    if brief_path.exists():
        brief = json.loads(read(brief_path))
        rows, ok = seed_check(brief, inputs)
        print(table(["input", "source", "language", "translation", "citations", "status"], rows))
        print()
        cited_all = all(r[-1] == "cited" for r in rows)
        verdicts.append(("brief lists every input and cites it or says why not", ok))
        verdicts.append(("brief cites all inputs", cited_all))
        for note in brief.get("notes", []):
            print(f"- note in the brief: {note}")
        print()
    else:
        print("No brief was written by run 1.\n")
        verdicts.append(("brief written", False))

    print(f"### No network: must stop within {NONET_LIMIT_S:.0f} s with the model manager's message and write nothing\n")
    rows = []
    for case, what in (("nonet-closed", "HF_ENDPOINT on a closed port"),
                       ("nonet-silent", "HF_ENDPOINT on a server that accepts and never answers")):
        d = bench / case
        if not d.exists():
            continue
        rc = read(d / "rc", "?").strip()
        secs = float(read(d / "seconds", "nan").strip() or "nan")
        stderr = read(d / "stderr")
        message = next((l for l in stderr.splitlines() if l.startswith("error:")), stderr.strip().splitlines()[-1]
                       if stderr.strip() else "")
        out_files = [l for l in read(d / "out-files").splitlines() if l.strip()]
        partial = [l for l in read(d / "hf-cache-files").splitlines() if l.strip()]
        ok = rc not in ("0", "?") and secs < NONET_LIMIT_S and NONET_MESSAGE in stderr and not out_files
        verdicts.append((f"no network ({what})", ok))
        rows.append([what, rc, f"{secs:.1f}", message[:200], ", ".join(out_files) or "none",
                     ", ".join(partial) or "none"])
    print(table(["case", "exit code", "seconds", "message (first line)", "output files", "files in the hub cache"],
                rows))
    print()

    print("### Verdict\n")
    for what, ok in verdicts:
        print(f"- {'PASS' if ok else 'FAIL'}: {what}")
    sys.exit(0 if all(ok for _, ok in verdicts) else 1)


if __name__ == "__main__":
    main()
