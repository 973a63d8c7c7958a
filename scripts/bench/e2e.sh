#!/usr/bin/env bash
# The end-to-end forced-length benchmark (issue 13): `polybrief run` over ARTICLES_DIR on random
# weights at the default catalog's sizes (scripts/acceptance/make_models.py), every model's
# output length forced to published behaviour and no grounding re-asks (examples/bench_run.rs),
# then the same work, token for token, by CTranslate2 int8 and llama.cpp
# (scripts/bench/e2e_peers.py). Prints both tables with the CPU and the load.
#
#   scripts/bench/e2e.sh [ARTICLES_DIR]          (default: ../shared/seeds)
#
# Environment: PYTHON (scripts/acceptance/requirements.txt, gguf included, plus ctranslate2;
# default .bench/venv/bin/python, as translate.sh makes it), LLAMA_PYTHON
# (llama-cpp-python, gguf; default /tmp/polybrief-bench/venv/bin/python, as summarize.sh makes
# it), THREADS (2), SKIP_BUILD=1. Models are made once under .bench/e2e/models (several GB).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
INPUT=${1:-"$ROOT/../shared/seeds"}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-"$ROOT/.bench/venv/bin/python"}
LLAMA_PYTHON=${LLAMA_PYTHON:-/tmp/polybrief-bench/venv/bin/python}
BENCH="$ROOT/.bench/e2e"
mkdir -p "$BENCH"

echo "== random-weight models (cached under $BENCH/models)" >&2
QUANT_PYTHON="$LLAMA_PYTHON" "$PYTHON" scripts/acceptance/make_models.py --out "$BENCH/models" \
  --manifest "$BENCH/manifest.json" --catalog "$BENCH/catalog.toml" --local-catalog "$BENCH/local-catalog.toml" >&2

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
  echo "== release build of examples/bench_run" >&2
  cargo build --release --example bench_run >&2
fi

cpu=$("$PYTHON" -c 'import sys; sys.path.insert(0, "scripts/bench"); import translate_bench; print(translate_bench.cpu_line())')
name=$(basename "$INPUT")
rm -rf "$BENCH/cache-$name"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== polybrief over $INPUT ($(find "$INPUT" -type f | wc -l) files), $THREADS threads" >&2
RAYON_NUM_THREADS=$THREADS target/release/examples/bench_run --models "$BENCH/local-catalog.toml" \
  --cache-dir "$BENCH/cache-$name" --json "$BENCH/run-$name.json" "$INPUT" | tee "$BENCH/run-$name.md"
load_mid=$(cut -d' ' -f1-3 /proc/loadavg)
gguf=$(find "$BENCH/models/local" -name '*.gguf' | head -1)
echo "== the same work by CTranslate2 int8 and llama.cpp, $THREADS threads" >&2
"$PYTHON" scripts/bench/e2e_peers.py "$BENCH/run-$name.json" --models "$BENCH/models" --gguf "$gguf" \
  --ct2-dir "$BENCH/ct2" --threads "$THREADS" --ct2-python "$PYTHON" --llama-python "$LLAMA_PYTHON" \
  | tee "$BENCH/peers-$name.md"
echo
echo "$cpu; $THREADS threads; load average $load_before before polybrief, $load_mid before the peers, $(cut -d' ' -f1-3 /proc/loadavg) after"
