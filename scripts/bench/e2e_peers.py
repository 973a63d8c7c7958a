#!/usr/bin/env python3
"""The work of one forced-length `bench_run` (examples/bench_run.rs), done by the best peers
assembled: CTranslate2 int8 for every translation batch, llama.cpp (llama-cpp-python) for every
prompt and reply. Same models (the same random-weight stand-ins, converted for CTranslate2; the
same GGUF file for llama.cpp), same token counts, same threads.

  e2e_peers.py RUN.json --models MODELS_DIR --gguf FILE.gguf --ct2-dir DIR [--threads 2]
               [--ct2-python PY] [--llama-python PY]
(each stage runs in its own process, under the Python that has its engine: ctranslate2 +
transformers for --ct2-python, llama-cpp-python + numpy for --llama-python).

Per stage (translate, summarize, synthesize), one fresh process, model loads included as they
are in polybrief's stages; wall time, its user+system CPU time and its peak RSS (wait4's
rusage of that process). Prints a Markdown table and one JSON line per stage on stderr.

- translate: each of polybrief's batches, in its order, with the same sentences' source
  lengths (random pieces of the model's vocabulary) and beam size, every sentence decoded to
  exactly its recorded target length: one `translate_batch` call per distinct target length in
  the batch (min = max decoding length), since CTranslate2 takes one length bound per call and
  random weights would otherwise run every sentence to the batch's longest. A real run's one
  call per batch, whose sentences leave it as they end, would do the same tokens in fewer,
  larger steps: this favours polybrief somewhat. So CTranslate2's best case is measured too
  ("bucketed"): every sentence of a model pooled by target length, in calls of up to 32
  sentences (polybrief's batch cap), the same tokens in the largest calls it could have.
- summarize / synthesize: llama.cpp one sequence at a time: each prompt of the recorded length
  evaluated in batches of 512 (polybrief's prefill chunk), then as many greedy decode steps as
  polybrief generated, never stopping early (the measure of scripts/bench/llamacpp_speed.py).
  Where polybrief took a prompt's first tokens from another sequence's cache
  (`reused_prompt_tokens`: the prompts of one template begin alike), llama.cpp keeps as many
  of the prompt before it in its context, as llama-cpp-python's `generate` does itself.
  polybrief decodes up to 8 sequences together; llama.cpp's own parallel decoding is not used
  here (scripts/bench/llamacpp_parallel.py measures it on its own).
"""

import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import time

STAGES = ("translate", "summarize", "synthesize")
# polybrief's most sentences per translation batch (TranslateSettings::max_batch_sentences).
MAX_BATCH = 32


def model_dir(models: pathlib.Path, label: str) -> pathlib.Path:
    """polybrief names a translator `repo@revision`; make_models.py lays repos out as folders."""
    return models / label.split("@", 1)[0]


def convert(src: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    import ctranslate2

    if not (out / "model.bin").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        ctranslate2.converters.TransformersConverter(str(src)).convert(str(out), quantization="int8", force=True)
    return out


def exact_length_calls(work, bucketed: bool):
    """(model, beams, target length, source lengths) per CTranslate2 call. CTranslate2 takes
    one length bound per call, and random weights would run every sentence to the longest, so
    each call holds sentences of one target length: those of one polybrief batch, or with
    `bucketed`, those of every batch of the model, in calls of at most MAX_BATCH sentences."""
    calls = []
    if not bucketed:
        for w in work:
            by_length = {}
            for source, target in zip(w["source_tokens"], w["target_tokens"]):
                by_length.setdefault(target, []).append(source)
            calls += [(w["model"], w["beams"], t, s) for t, s in sorted(by_length.items(), reverse=True)]
        return calls
    pooled = {}
    for w in work:
        for source, target in zip(w["source_tokens"], w["target_tokens"]):
            pooled.setdefault((w["model"], w["beams"]), {}).setdefault(target, []).append(source)
    for (model, beams), by_length in pooled.items():
        for target, sources in sorted(by_length.items(), reverse=True):
            calls += [(model, beams, target, sources[i:i + MAX_BATCH]) for i in range(0, len(sources), MAX_BATCH)]
    return calls


def run_translate(args, work, bucketed: bool) -> dict:
    import ctranslate2

    rng = random.Random(0)
    generated = 0
    translators = {}
    vocabularies = {}
    calls = exact_length_calls(work, bucketed)
    for model, beams, target, sources in calls:
        if model not in translators:
            src = model_dir(args.models, model)
            # Converted by the parent beforehand: importing the converter costs time and memory.
            ct2 = args.ct2_dir / src.name
            translators[model] = ctranslate2.Translator(str(ct2), device="cpu", compute_type="int8",
                                                        inter_threads=1, intra_threads=args.threads)
            vocab = json.loads((src / "vocab.json").read_text())
            # Ordinary pieces only: not EOS, pad or unknown.
            vocabularies[model] = [p for p, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i > 1][:-1]
        pieces = vocabularies[model]
        # CTranslate2 appends the source's EOS itself. polybrief's recorded target length counts
        # its forced EOS, one decoder step like any other: CTranslate2 decodes as many steps
        # (min = max), without an EOS.
        batch = [[rng.choice(pieces) for _ in range(n - 1)] for n in sources]
        results = translators[model].translate_batch(
            batch, beam_size=beams, min_decoding_length=target, max_decoding_length=target,
            max_batch_size=len(batch), length_penalty=1.0, return_scores=False)
        generated += sum(len(r.hypotheses[0]) for r in results)
    return {"generated_tokens": generated, "calls": len(calls)}


def run_llm(args, work) -> dict:
    import llama_cpp
    import numpy as np

    longest = max((p + g for w in work for p, g in zip(w["prompt_tokens"], w["generated_tokens"])), default=0)
    llm = llama_cpp.Llama(model_path=str(args.gguf), n_ctx=longest + 8, n_batch=512,
                          n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    n_vocab = llm.n_vocab()
    prompt_tokens = generated = kept_tokens = 0
    for w in work:
        prompts = w["prompt_tokens"]
        reused = w.get("reused_prompt_tokens") or [0] * len(prompts)
        # Prompt s begins with one common stretch for as many tokens as polybrief reused in it
        # or in the prompt after it, then tokens of its own: so it shares with the prompt
        # before it at least what polybrief took from a cache, and llama.cpp keeps those
        # positions of its context instead of evaluating them again (what llama-cpp-python's
        # own `generate` does with a prompt that begins like the last one).
        common = [(i * 7919 + 13) % 600 for i in range(max(prompts, default=0))]
        before = 0
        for s, (pp, tg) in enumerate(zip(prompts, w["generated_tokens"])):
            shared = min(pp, max(reused[s], reused[s + 1] if s + 1 < len(prompts) else 0))
            own = [(i * 7919 + 13 + (s + 1) * 101) % 600 for i in range(shared, pp)]
            tokens = common[:shared] + own
            keep = min(reused[s], before)
            if keep:
                llm.n_tokens = keep
            else:
                llm.reset()
            llm.eval(tokens[keep:])
            before = shared
            prompt_tokens += pp
            kept_tokens += keep
            for step in range(tg):
                logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
                next_id = int(np.ctypeslib.as_array(logits, shape=(n_vocab,)).argmax())
                generated += 1
                # The last token is not fed, as in polybrief.
                if step + 1 < tg:
                    llm.eval([next_id])
    return {"prompt_tokens": prompt_tokens, "kept_prompt_tokens": kept_tokens, "generated_tokens": generated}


def child(args, stage: str, out: pathlib.Path):
    record = json.loads(args.run_json.read_text())
    bucketed = stage == "translate-bucketed"
    stage = "translate" if bucketed else stage
    work = [w for w in record["work"] if w["stage"] == stage]
    kind = "translation" if stage == "translate" else "generation"
    work = [w for w in work if w["kind"] == kind]
    result = run_translate(args, work, bucketed) if kind == "translation" else run_llm(args, work)
    out.write_text(json.dumps(result))


def measure(args, stage: str) -> dict:
    out = args.ct2_dir.parent / f"peers-{stage}.json"
    out.unlink(missing_ok=True)
    python = args.ct2_python if stage.startswith("translate") else args.llama_python
    command = [python, __file__, str(args.run_json), "--models", str(args.models), "--gguf", str(args.gguf),
               "--ct2-dir", str(args.ct2_dir), "--threads", str(args.threads), "--child", stage, "--out", str(out)]
    started = time.perf_counter()
    pid = subprocess.Popen(command).pid
    # wait4 gives this process's own CPU time and peak RSS.
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"e2e_peers.py: the {stage} process failed")
    result = json.loads(out.read_text())
    return {"stage": stage, "wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_bytes": usage.ru_maxrss * 1024, **result}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_json", type=pathlib.Path)
    parser.add_argument("--models", type=pathlib.Path, required=True, help="make_models.py's --out folder")
    parser.add_argument("--gguf", type=pathlib.Path, required=True)
    parser.add_argument("--ct2-dir", type=pathlib.Path, required=True, help="where CTranslate2 conversions are kept")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ct2-python", default=sys.executable)
    parser.add_argument("--llama-python", default=sys.executable)
    parser.add_argument("--child", choices=STAGES + ("translate-bucketed",), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.ct2_dir.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args, args.child, args.out)
        return

    record = json.loads(args.run_json.read_text())
    # Conversions first, untimed (this Python must then have ctranslate2 and transformers).
    for model in sorted({w["model"] for w in record["work"] if w["kind"] == "translation"}):
        src = model_dir(args.models, model)
        convert(src, args.ct2_dir / src.name)
    rows = []
    for stage in STAGES:
        if not any(w["stage"] == stage for w in record["work"]):
            continue
        row = measure(args, stage)
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    # CTranslate2's best case beside it: the same sentences bucketed by target length across
    # batches, so that its calls are as large as polybrief's batches allow.
    best = measure(args, "translate-bucketed") if any(r["stage"] == "translate" for r in rows) else None
    if best:
        print(json.dumps(best), file=sys.stderr, flush=True)
    ours = {s["stage"]: s for s in record["stages"]}
    print("| stage | peer, same work | peer wall s | peer CPU s | peer peak RSS GiB | polybrief wall s | "
          "polybrief CPU s | polybrief peak RSS GiB | polybrief / peer (wall) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows + ([best] if best else []):
        stage = "translate" if row["stage"] == "translate-bucketed" else row["stage"]
        print(f"| {stage} | {engine(row)} | {row['wall_seconds']:.1f} | {row['cpu_seconds']:.1f} | "
              f"{gib(row['peak_rss_bytes'])} | {cell(ours, stage, 'wall_seconds')} | {cell(ours, stage, 'cpu_seconds')} | "
              f"{gib(ours.get(stage, {}).get('peak_rss_bytes'))} | "
              f"{ours.get(stage, {}).get('wall_seconds', float('nan')) / row['wall_seconds']:.2f} |")
    mine = sum(ours[r["stage"]]["wall_seconds"] for r in rows if r["stage"] in ours)
    for label, peer_rows in [("model stages", rows)] + (
            [("model stages, CTranslate2 bucketed", [best] + [r for r in rows if r["stage"] != "translate"])]
            if best else []):
        peers = sum(r["wall_seconds"] for r in peer_rows)
        print(f"| **{label}** | | **{peers:.1f}** | {sum(r['cpu_seconds'] for r in peer_rows):.1f} | | "
              f"**{mine:.1f}** | | | **{mine / peers:.2f}** |")
    total = record["total"]
    print(f"\npolybrief's whole run (every stage, start-up included): {total['wall_seconds']:.1f} s wall, "
          f"{total['cpu_seconds']:.1f} s CPU, peak RSS {gib(total.get('peak_rss_bytes'))} GiB")


def engine(row) -> str:
    if row["stage"] == "translate":
        return f"CTranslate2 int8, polybrief's batches ({row['calls']} calls, {row['generated_tokens']} tokens)"
    if row["stage"] == "translate-bucketed":
        return f"CTranslate2 int8, bucketed by length ({row['calls']} calls, {row['generated_tokens']} tokens)"
    kept = row.get("kept_prompt_tokens", 0)
    kept = f", {kept} kept from the prompt before" if kept else ""
    return (f"llama.cpp, one sequence at a time ({row['prompt_tokens']} prompt{kept} + "
            f"{row['generated_tokens']} generated tokens)")


def cell(ours, stage: str, key: str) -> str:
    value = ours.get(stage, {}).get(key)
    return "–" if value is None else f"{value:.1f}"


def gib(value) -> str:
    return "–" if value is None else f"{value / 2**30:.2f}"


if __name__ == "__main__":
    main()
