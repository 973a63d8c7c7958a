#!/usr/bin/env bash
# The acceptance run of issue #4, end to end:
#   1. random-weight models at the default catalog's real sizes (make_models.py; cached),
#   2. served by a local hub under the catalog's repo names and revisions (local_hub.py),
#   3. a catalog override pinning them (--models),
#   4. a release build, then `polybrief run INPUT` on 2 cores with fresh caches, timed, and a
#      second run over the same caches,
#   5. the no-network cases: HF_ENDPOINT on a closed port, and on a server that never answers;
#      each must fail within 30 s with the model manager's message and write no output,
#   6. a Markdown report (report.py) on stdout and in .bench/acceptance/report.md.
#
# Usage: scripts/acceptance/run_seeds.sh [INPUT_DIR]      (default: ../shared/seeds from the repo root)
#
# Environment:
#   PYTHON        Python with torch, transformers, sentencepiece, tokenizers, safetensors, gguf,
#                 numpy (scripts/acceptance/requirements.txt); default python3
#   QUANT_PYTHON  Python with llama-cpp-python, for the Q4_K_M step; default $PYTHON
#   CORES         CPU cores to run on (taskset + RAYON_NUM_THREADS); default 2
#   SKIP_BUILD=1  use target/release/polybrief as it is
#
# Everything it writes is under .bench/acceptance/ (git-ignored). The models are reused from one
# run to the next; the hub cache, stage cache and outputs are always fresh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/scripts/acceptance"
INPUT=${1:-"$ROOT/../shared/seeds"}
BENCH="$ROOT/.bench/acceptance"
PYTHON=${PYTHON:-python3}
export QUANT_PYTHON=${QUANT_PYTHON:-$PYTHON}
CORES=${CORES:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-"$ROOT/target"}
BIN="$CARGO_TARGET_DIR/release/polybrief"

if [[ ! -d "$INPUT" ]]; then
  echo "run_seeds.sh: input folder $INPUT does not exist (pass one as the first argument)" >&2
  exit 2
fi
INPUT=$(cd "$INPUT" && pwd)
mkdir -p "$BENCH"
say() { printf '\n== %s\n' "$*" >&2; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# Starts a local_hub.py (args passed through) and sets HUB_URL once its port file appears.
start_hub() {
  local port_file=$1
  shift
  rm -f "$port_file"
  "$PYTHON" "$HERE/local_hub.py" --port-file "$port_file" "$@" 2>>"$BENCH/hub.stderr" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    [[ -s "$port_file" ]] && break
    sleep 0.1
  done
  [[ -s "$port_file" ]] || { echo "run_seeds.sh: local hub did not start (see $BENCH/hub.stderr)" >&2; exit 1; }
  HUB_URL="http://127.0.0.1:$(cat "$port_file")"
}

# Pins the run to CORES cores when the machine has more.
PIN=()
if command -v taskset >/dev/null && (($(nproc) > CORES)); then
  PIN=(taskset -c "0-$((CORES - 1))")
fi

# A clean environment for polybrief: only what the case sets. HF_HOME points into the case's
# folder so no token or cache of the user's is read.
polybrief_env() {
  local case_dir=$1 endpoint=$2
  env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN -u HF_HUB_OFFLINE -u POLYBRIEF_MODELS -u POLYBRIEF_CACHE_DIR \
    -u POLYBRIEF_HUB_TIMEOUT_SECS -u HF_HUB_CACHE -u HUGGINGFACE_HUB_CACHE \
    HF_ENDPOINT="$endpoint" HF_HOME="$case_dir/hf-home" HF_HUB_CACHE="$case_dir/hf-cache" \
    RAYON_NUM_THREADS="$CORES" "${@:3}"
}

say "1. random-weight models (cached under $BENCH/models)"
"$PYTHON" "$HERE/make_models.py" --out "$BENCH/models" --manifest "$BENCH/manifest.json" --catalog "$BENCH/catalog.toml"

say "2. release build"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin polybrief)
fi
[[ -x "$BIN" ]] || { echo "run_seeds.sh: $BIN is missing" >&2; exit 1; }

say "3. local hub"
: >"$BENCH/hub-requests.jsonl"
start_hub "$BENCH/hub.port" --manifest "$BENCH/manifest.json" --log "$BENCH/hub-requests.jsonl"
echo "serving on $HUB_URL" >&2

RUN="$BENCH/run"
rm -rf "$RUN"
mkdir -p "$RUN/out"
run_case() {
  local name=$1
  local before
  before=$(wc -l <"$BENCH/hub-requests.jsonl")
  local cmd=("$BIN" --models "$BENCH/catalog.toml" --cache-dir "$RUN/stage-cache" run "$INPUT"
    -o "$RUN/out/brief.md" --json "$RUN/out/brief.json" -v)
  echo "${PIN[*]} RAYON_NUM_THREADS=$CORES HF_ENDPOINT=$HUB_URL ${cmd[*]}" >"$RUN/$name.cmd"
  local rc=0 pid
  polybrief_env "$RUN" "$HUB_URL" "${PIN[@]}" /usr/bin/time -v -o "$RUN/$name.time" "${cmd[@]}" \
    2>"$RUN/$name.log" &
  pid=$!
  # CPU seconds and load average at each log line (env execs taskset/time: $! is time's pid).
  "$PYTHON" "$HERE/monitor.py" --parent "$pid" --log "$RUN/$name.log" --out "$RUN/$name.cpu.jsonl" &
  local monitor=$!
  wait "$pid" || rc=$?
  wait "$monitor" || true
  echo "$rc" >"$RUN/$name.rc"
  echo $(($(wc -l <"$BENCH/hub-requests.jsonl") - before)) >"$RUN/$name.hub-requests"
  tail -n 3 "$RUN/$name.log" >&2
  echo "exit code $rc" >&2
  [[ -f "$RUN/out/brief.md" ]] && cp "$RUN/out/brief.md" "$RUN/$name.brief.md"
  [[ -f "$RUN/out/brief.json" ]] && cp "$RUN/out/brief.json" "$RUN/$name.brief.json"
  return 0
}

say "4a. first run: fresh hub cache and stage cache, $CORES cores"
run_case run1
say "4b. second run: same caches"
run_case run2

say "5. no network"
nonet_case() {
  local name=$1 endpoint=$2
  local dir="$BENCH/$name"
  rm -rf "$dir"
  mkdir -p "$dir/out"
  local cmd=("$BIN" --models "$BENCH/catalog.toml" --cache-dir "$dir/stage-cache" run "$INPUT"
    -o "$dir/out/brief.md" --json "$dir/out/brief.json")
  echo "HF_ENDPOINT=$endpoint ${cmd[*]}" >"$dir/cmd"
  local rc=0 start end
  start=$(date +%s.%N)
  polybrief_env "$dir" "$endpoint" "${PIN[@]}" "${cmd[@]}" 2>"$dir/stderr" || rc=$?
  end=$(date +%s.%N)
  echo "$rc" >"$dir/rc"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }' >"$dir/seconds"
  (cd "$dir/out" && find . -mindepth 1 | sort) >"$dir/out-files"
  (cd "$dir" && find hf-cache -type f 2>/dev/null | sort) >"$dir/hf-cache-files" || true
  echo "exit code $rc after $(cat "$dir/seconds") s; output files: $(wc -l <"$dir/out-files")" >&2
}
# A port nothing listens on: bind one, then let it go.
CLOSED_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
nonet_case nonet-closed "http://127.0.0.1:$CLOSED_PORT"
start_hub "$BENCH/hang.port" --hang
nonet_case nonet-silent "$HUB_URL"

say "6. report"
"$PYTHON" "$HERE/report.py" --bench "$BENCH" --input "$INPUT" --cores "$CORES" --pinned "${PIN[*]:-no}" | tee "$BENCH/report.md"
