#!/usr/bin/env bash
# Builds `polybrief --features cuda` (release) on a machine with no GPU and no CUDA from its OS
# packages, and packs what a GPU machine needs to check it (the binary, the integration-test
# binary with the GPU parity tests and benches, the bench harness, the fixtures, check.sh) into
# one folder with no Rust in it.
#
#   scripts/gpu/build-cuda.sh [--compute-cap 90] [--out DIR]
#
# --compute-cap: the GPU's compute capability without the dot: 90 for H100/H200 (the default),
#   80 for A100, 89 for L4/L40. candle-kernels compiles its PTX for exactly this one.
# --out: the folder to write (default .gpu/dist/polybrief-cuda-sm<CAP>).
#
# Where CUDA comes from: NVIDIA's CUDA 13.0 wheels on PyPI, pinned in
# scripts/gpu/requirements-cuda.txt, in a venv under .gpu/ (git-ignored). CUDA 12's wheels
# (`nvidia-cuda-nvcc-cu12`) ship ptxas but no nvcc; the CUDA 13 wheels ship a complete nvcc,
# cicc, the headers and the CCCL under one prefix (site-packages/nvidia/cu13), which is what
# candle-kernels' build (cudaforge: nvcc from PATH, headers from nvcc's own prefix) and cudarc's
# (CUDA_ROOT, `nvcc --version`, `-lcuda -lcublas ...`) expect.
#
# What the wheels lack for linking: libcuda.so, which only a driver install provides. The link
# uses a stub libcuda.so.1 made here from cudarc's own list of driver functions (every one
# returns CUDA_ERROR_UNKNOWN); the GPU machine's real libcuda.so.1 replaces it at run time.
#
# Everything heavy runs under `nice -n 19` (shared build machine); cargo's output goes to
# .gpu/target so a CPU build's target/ is left alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cap=90
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --compute-cap) cap="${2:?--compute-cap needs a value such as 90}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build-cuda.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$cap" in
  [0-9][0-9]|[0-9][0-9][0-9]) ;;
  *) echo "build-cuda.sh: --compute-cap $cap: expected digits such as 90 (H100/H200) or 80 (A100)" >&2; exit 2 ;;
esac
gpu="$root/.gpu"
out="${out:-$gpu/dist/polybrief-cuda-sm$cap}"
mkdir -p "$gpu"
started=$(date +%s)
say() { echo "build-cuda: $* ($(( $(date +%s) - started )) s)" >&2; }

# 1. The CUDA toolkit from PyPI.
venv="$gpu/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$root/scripts/gpu/requirements-cuda.txt" "$gpu/requirements-installed.txt"; then
  say "installing the CUDA wheels (about 1.2 GB unpacked)"
  nice -n 19 "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/gpu/requirements-cuda.txt"
  cp "$root/scripts/gpu/requirements-cuda.txt" "$gpu/requirements-installed.txt"
fi
cuda="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -x "$cuda/bin/nvcc" ] || { echo "build-cuda.sh: no nvcc at $cuda/bin/nvcc after installing the wheels" >&2; exit 1; }

# 2. A link folder: the unversioned names the linker looks for, and the libcuda stub.
link="$gpu/link"
mkdir -p "$link"
for lib in cublas cublasLt curand nvrtc cudart; do
  real=$(cd "$cuda/lib" && ls "lib$lib.so."* | grep -v '\.alt\.' | head -1)
  ln -sfn "$cuda/lib/$real" "$link/lib$lib.so"
done
cudarc_src=$(cd "$root" && cargo metadata --locked --format-version 1 --features cuda 2>/dev/null |
  "$venv/bin/python" -c 'import json, os, sys
pkgs = json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in pkgs if p["name"] == "cudarc"))')
if [ ! -f "$link/libcuda.so.1" ] || [ "$cudarc_src/src/driver/sys/mod.rs" -nt "$link/libcuda.so.1" ]; then
  say "making the libcuda stub from $cudarc_src"
  grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc_src/src/driver/sys/mod.rs" | sed 's/^pub unsafe fn //' | sort -u |
    sed 's/.*/int &(void) { return 999; }/' > "$link/libcuda-stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so.1" "$link/libcuda-stub.c"
fi
ln -sfn libcuda.so.1 "$link/libcuda.so"

# 3. cargo, as candle-kernels and cudarc expect to find CUDA.
export CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_HOME="$cuda"
export PATH="$cuda/bin:$PATH"
export CUDA_COMPUTE_CAP="$cap"
export CUDARC_CUDA_VERSION=13000
export CARGO_TARGET_DIR="$gpu/target"
export LD_LIBRARY_PATH="$cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The binaries look for the CUDA libraries beside themselves (lib/) before the system's.
export RUSTFLAGS="-L native=$link -C link-arg=-Wl,-rpath,\$ORIGIN/lib"
cd "$root"
say "cargo build --release --features cuda (compute capability $cap)"
nice -n 19 cargo build --locked --release --features cuda --bin polybrief --example bench_translate
say "cargo test --release --features cuda --no-run (the parity tests and benches)"
tests_bin=$(nice -n 19 cargo test --locked --release --features cuda --test integration --no-run --message-format=json |
  "$venv/bin/python" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "integration" and m.get("executable"):
        print(m["executable"])')
[ -x "$tests_bin" ] || { echo "build-cuda.sh: cargo built no integration test binary" >&2; exit 1; }

# 4. The folder.
say "packing $out"
rm -rf "$out"
mkdir -p "$out/bin" "$out/tests" "$out/scripts/bench" "$out/scripts/gpu" "$out/lib"
cp "$CARGO_TARGET_DIR/release/polybrief" "$out/bin/polybrief"
cp "$CARGO_TARGET_DIR/release/examples/bench_translate" "$out/bin/bench_translate"
cp "$tests_bin" "$out/bin/polybrief-tests"
strip "$out/bin/"*
cp -a tests/fixtures "$out/tests/fixtures"
cp scripts/gpu/check.sh scripts/gpu/README.md scripts/gpu/requirements-cuda.txt "$out/"
cp scripts/gpu/hf_llm_speed.py "$out/scripts/gpu/"
cp scripts/bench/translate_bench.py scripts/bench/make_random_gguf.py scripts/bench/quantize_gguf.py "$out/scripts/bench/"
# The CUDA runtime is small; cuBLAS (52 MB, and the 515 MB cuBLASLt it loads) and cuRAND (127 MB) are not,
# and check.sh finds them on the GPU machine instead (see scripts/gpu/README.md).
cp "$cuda/lib/libcudart.so.13" "$out/lib/"
{
  echo "polybrief $(git describe --always --dirty), built $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -m)"
  echo "features: cuda; compute capability: $cap; CUDA: $("$cuda/bin/nvcc" --version | sed -n 4p)"
  echo "wheels:"; "$venv/bin/pip" freeze --disable-pip-version-check | grep '^nvidia' | sed 's/^/  /'
  echo "shared libraries the binaries need (check.sh finds those not in lib/):"
  readelf -d "$out/bin/polybrief" "$out/bin/polybrief-tests" | grep NEEDED | sed 's/.*\[\(.*\)\]/  \1/' | sort -u
} > "$out/BUILD-INFO.txt"
# Under the 64 MiB a copy to the GPU machine may carry: xz the binaries when the folder is over.
if [ "$(du -sm "$out" | cut -f1)" -ge 60 ]; then
  say "compressing the binaries (xz)"
  nice -n 19 xz -T2 -6 "$out/bin/"*
fi
say "done: $out, $(du -sh "$out" | cut -f1)"
cat "$out/BUILD-INFO.txt" >&2
