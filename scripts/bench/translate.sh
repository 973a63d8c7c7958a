#!/usr/bin/env bash
# Translation throughput of polybrief vs HF transformers vs CTranslate2 (float32 and int8) on a
# random-weight model of opus-mt-de-en's size. One command: creates the Python environment from
# the pinned requirements (unless BENCH_PYTHON names an interpreter that already has them),
# builds polybrief's bench harness in release mode, builds and converts the model, runs every
# configuration once and prints a Markdown table.
#
#   scripts/bench/translate.sh [--threads 2] [--sentences 64] [--new-tokens 24] [...]
#   scripts/bench/translate.sh --isa avx2     # AVX-512 off in polybrief (int8 kernels, and a build
#                                             # without gemm's AVX-512 f32 kernels) and in CT2
#
# Extra arguments go to scripts/bench/translate_bench.py (see its --help).
set -euo pipefail
prev=""
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$root/.bench"
mkdir -p "$work"

python="${BENCH_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ ! -x "$work/venv/bin/python" ]]; then
        python3 -m venv "$work/venv"
        "$work/venv/bin/pip" install --quiet -r "$root/scripts/bench/requirements-translate.txt"
    fi
    python="$work/venv/bin/python"
fi

# With --isa avx2 the harness is built without gemm's AVX-512 kernels (the `avx512-gemm`
# feature; gemm has no run-time switch), so that the f32 rows are an AVX2 measurement too.
features=()
for arg in "$@"; do
    [[ "$prev" == "--isa" && "$arg" == "avx2" ]] && features=(--no-default-features)
    [[ "$arg" == "--isa=avx2" ]] && features=(--no-default-features)
    prev="$arg"
done
cargo build --release --quiet --example bench_translate "${features[@]}" --manifest-path "$root/Cargo.toml"
target="${CARGO_TARGET_DIR:-$root/target}"
# A copy per build, so that the other build does not overwrite it.
harness="$work/bench_translate${features:+-no-avx512-gemm}"
cp "$target/release/examples/bench_translate" "$harness"
exec "$python" "$root/scripts/bench/translate_bench.py" \
    --polybrief "$harness" --workdir "$work/translate" "$@"
