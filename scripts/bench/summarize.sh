#!/usr/bin/env bash
# Speed of polybrief's summarizer LLM against llama.cpp on the same GGUF, 2 threads, one run.
#
#   scripts/bench/summarize.sh [MODEL:QUANT ...]     default: qwen2.5-1.5b:Q4_K_M
#
# MODEL is one of scripts/bench/make_random_gguf.py's (qwen2.5-0.5b, qwen2.5-1.5b, qwen3-0.6b,
# qwen3-1.7b); QUANT is Q4_K_M or Q8_0. Weights are random at the real shapes (speed does not
# depend on weight values), quantized by llama.cpp's own quantizer. Each engine processes the
# same PP-token prompt (in batches of 512) and then decodes TG tokens greedily; REPS rounds,
# each running llama.cpp and then polybrief once (each after one unmeasured warm-up run in its
# own process); the table shows each engine's medians and the median of the rounds' ratios.
# Environment: PP (512), TG (128), REPS (3), THREADS (2), BENCH_DIR (/tmp/polybrief-bench:
# venv and GGUFs, several GB).
# Then batched generation, polybrief beside llama.cpp's own parallel decoding (several
# sequences in one context, scripts/bench/llamacpp_parallel.py): SEQUENCES (1,4,8) prompts of
# BATCH_PP (128) tokens decoded together for TG tokens each; tokens/s over all sequences, and
# each engine's gain over its own single sequence. Each engine runs every count in turn within
# a round, REPS rounds: a gain is the median of the rounds' own ratios, since one sequence's
# memory-bound rate and several sequences' compute-bound rate swing apart from one minute to
# the next on a shared machine.
# BENCH_BIN: run that release test binary (target/release/deps/integration-*) instead of
# building the working tree's.
# Both engines' AVX2 path on a CPU with AVX-512: POLYBRIEF_CPU_LEVEL=avx2 MISTRALRS_FORCE_AVX2=1
# (polybrief's and candle's kernels) and BENCH_VENV=a venv whose llama.cpp was built without
# AVX-512: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON
# -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF" pip install -r
# scripts/bench/requirements-summarize.txt. The table prints llama.cpp's own feature list.
set -euo pipefail
cd "$(dirname "$0")/../.."
PP=${PP:-512} TG=${TG:-128} REPS=${REPS:-3} THREADS=${THREADS:-2}
BENCH_DIR=${BENCH_DIR:-/tmp/polybrief-bench}
VENV=${BENCH_VENV:-$BENCH_DIR/venv}
[ $# -gt 0 ] || set -- qwen2.5-1.5b:Q4_K_M
mkdir -p "$BENCH_DIR"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp, gguf" 2>/dev/null; then
  echo "setting up $VENV (llama-cpp-python compiles llama.cpp: ~20 min on 2 cores)" >&2
  python3 -m venv "$VENV"
  CMAKE_BUILD_PARALLEL_LEVEL=$THREADS "$VENV/bin/pip" install -q -r scripts/bench/requirements-summarize.txt
fi
PY="$VENV/bin/python"

bench() {
  if [ -n "${BENCH_BIN:-}" ]; then "$BENCH_BIN" "$1" --ignored --nocapture --test-threads 1
  else cargo test --release -q --test integration "$1" -- --ignored --nocapture --test-threads 1; fi
}
if [ -z "${BENCH_BIN:-}" ]; then
  echo "building polybrief's benchmark (release)" >&2
  cargo test --release --test integration --no-run -q 2>/dev/null || cargo test --release --test integration --no-run
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# What one sequence's decode is bound by: reading every weight once per token.
echo "== bare memory read rate" >&2
read_rate=$(RAYON_NUM_THREADS=$THREADS bench bench_memory_read_rate 2>/dev/null | grep -o '"read_gb_per_s": [0-9.]*' | cut -d' ' -f2)
results=() batched=()
for spec in "$@"; do
  model=${spec%%:*} quant=${spec##*:}
  lower=$(echo "$quant" | tr 'A-Z' 'a-z')
  f16="$BENCH_DIR/$model-f16.gguf" gguf="$BENCH_DIR/$model-$lower.gguf"
  [ -f "$f16" ] || "$PY" scripts/bench/make_random_gguf.py --model "$model" --type f16 --out "$f16" >&2
  [ -f "$gguf" ] || "$PY" scripts/bench/quantize_gguf.py "$f16" "$gguf" "$quant" 2>/dev/null
  # The engines take turns, so that each round's ratio compares the same minutes: one
  # sequence's decode runs at the machine's read rate of the minute, which swings on a VM.
  llama=() ours=()
  for round in $(seq "$REPS"); do
    echo "== $model $quant: round $round of $REPS, llama.cpp then polybrief" >&2
    llama+=("$("$PY" scripts/bench/llamacpp_speed.py "$gguf" --pp "$PP" --tg "$TG" --reps 1 --warmup 1 --threads "$THREADS")")
    ours+=("$(RAYON_NUM_THREADS=$THREADS POLYBRIEF_BENCH_GGUF="$gguf" POLYBRIEF_BENCH_PP=$PP POLYBRIEF_BENCH_TG=$TG \
      POLYBRIEF_BENCH_REPS=1 POLYBRIEF_BENCH_WARMUP=1 bench bench_llm_tokens_per_second 2>/dev/null \
      | grep -o '{"engine": "polybrief".*}')")
  done
  results+=("$model|$quant|$(du -mL "$gguf" | cut -f1)|$(IFS=';'; echo "${llama[*]}")|$(IFS=';'; echo "${ours[*]}")")
  echo "== $model $quant: llama.cpp, parallel sequences" >&2
  llama_batched=$("$PY" scripts/bench/llamacpp_parallel.py "$gguf" --pp "${BATCH_PP:-128}" --tg "$TG" \
    --reps "$REPS" --threads "$THREADS" --sequences "${SEQUENCES:-1,4,8}" 2>/dev/null | paste -sd';')
  echo "== $model $quant: polybrief, batched" >&2
  # With --nocapture the first JSON line follows libtest's "test name ... " on the same line.
  batched+=("$model|$quant|$llama_batched|$(RAYON_NUM_THREADS=$THREADS POLYBRIEF_BENCH_GGUF="$gguf" \
    POLYBRIEF_BENCH_BATCH_PP=${BATCH_PP:-128} POLYBRIEF_BENCH_TG=$TG POLYBRIEF_BENCH_REPS=$REPS \
    POLYBRIEF_BENCH_SEQUENCES=${SEQUENCES:-1,4,8} bench bench_llm_batched_tokens_per_second 2>/dev/null \
    | grep -o '{"engine": "polybrief".*}' | paste -sd';')")
done

echo
vector="$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|avx_vnni|avx512f|avx512bw|avx512_vnni|amx_tile' | sort -u | tr '\n' ' ')"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') (${vector% }; polybrief's kernel level: ${POLYBRIEF_CPU_LEVEL:-the best of these}), $THREADS threads; load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "llama.cpp's CPU features ($VENV): $("$PY" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode().strip())' 2>/dev/null)"
echo "bare memory read rate (bench_memory_read_rate, $THREADS threads): ${read_rate:-?} GB/s"
echo "prompt $PP tokens, then $TG generated; medians of $REPS rounds (the engines in turn); ratios: median of the rounds' own ratios (each round's in brackets); 'MB × tg' is the GGUF's size times polybrief's tokens/s, about the GB/s one sequence's decode reads"
echo
echo "| model (random weights) | quant | MB | llama.cpp pp tok/s | polybrief pp tok/s | pp ratio | llama.cpp tg tok/s | polybrief tg tok/s | tg ratio | MB × tg, GB/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for r in "${results[@]}"; do
  IFS='|' read -r model quant mb llama ours <<< "$r"
  "$PY" - "$model" "$quant" "$mb" "$llama" "$ours" << 'PYEOF'
import json, statistics, sys
model, quant, mb, llama, ours = sys.argv[1:]
l = [json.loads(r) for r in llama.split(";")]
o = [json.loads(r) for r in ours.split(";")]
def median(runs, key):
    return statistics.median(r[key] for r in runs)
def ratio(key):
    each = [b[key] / a[key] for a, b in zip(l, o)]
    return f"{statistics.median(each):.2f} [{' '.join(f'{r:.2f}' for r in each)}]"
print(f"| {model} | {quant} | {mb} | {median(l, 'pp_tps'):.1f} | {median(o, 'pp_tps'):.1f} | {ratio('pp_tps')} "
      f"| {median(l, 'tg_tps'):.1f} | {median(o, 'tg_tps'):.1f} | {ratio('tg_tps')} | {int(mb) * median(o, 'tg_tps') / 1000:.1f} |")
PYEOF
done

echo
echo "batched generation: prompts of ${BATCH_PP:-128} tokens, $TG generated each, tokens/s over all sequences; median of $REPS rounds, each running every count in turn; '× its one': median of the rounds' ratios (each round's ratios in brackets)"
echo
echo "| model (random weights) | quant | sequences | llama.cpp tok/s | × its one | polybrief tok/s | × its one | polybrief / llama.cpp |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${batched[@]}"; do
  IFS='|' read -r model quant llama ours <<< "$r"
  "$PY" - "$model" "$quant" "$llama" "$ours" << 'PYEOF'
import json, statistics, sys
model, quant, llama, ours = sys.argv[1:]
def runs(lines):
    return {r["sequences"]: r for r in (json.loads(l) for l in lines.split(";") if l)}
l, o = runs(llama), runs(ours)
def fmt(v):
    return "–" if v is None else f"{v:.2f}"
def rate(d, n):
    return d[n]["tg_tps"] if n in d else None
def gain(d, n):
    """Median of the rounds' own n-to-one ratios, and those ratios."""
    if n not in d or 1 not in d:
        return "–"
    each = [a / b for a, b in zip(d[n].get("rounds", [d[n]["tg_tps"]]), d[1].get("rounds", [d[1]["tg_tps"]]))]
    return f"{statistics.median(each):.2f} [{' '.join(f'{r:.2f}' for r in each)}]"
for n in sorted(set(l) | set(o)):
    ratio = fmt(o[n]["tg_tps"] / l[n]["tg_tps"]) if n in o and n in l else "–"
    print(f"| {model} | {quant} | {n} | {fmt(rate(l, n))} | {gain(l, n)} | {fmt(rate(o, n))} | {gain(o, n)} | {ratio} |")
PYEOF
done
