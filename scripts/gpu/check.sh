#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU and driver (no Rust), from the folder
# scripts/gpu/build-cuda.sh packs:
#   1. the Marian, Qwen2 (safetensors, GGUF Q8_0 and Q4_K) and BERT parity tests on cuda:0
#      against the committed fixtures (and once on the CPU, through the same binary);
#   2. translation throughput on a random opus-mt-de-en-sized model (scripts/bench's), polybrief
#      and, where PyTorch is installed, HF transformers, both on the GPU;
#   3. LLM prompt/decode speed on a random Qwen2.5-1.5B-shaped GGUF (Q8_0; Q4_K_M too where
#      llama-cpp-python can quantize), polybrief and transformers (dequantized to float16);
# and prints one Markdown table.
#
#   ./check.sh [--no-bench]
#
# Environment: PYTHON (python3): the interpreter with torch/transformers/gguf, if any;
# CUDA_LIBS: a folder with libcublas.so.13 and friends, when they are in none of the usual places;
# WORK (a temp dir): where the random models go (about 4 GB); PP/TG/REPS for the LLM (512/128/3).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench=1
[ "${1:-}" = "--no-bench" ] && bench=0
PYTHON=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d /tmp/polybrief-gpu.XXXXXX)}
PP=${PP:-512} TG=${TG:-128} REPS=${REPS:-3}
mkdir -p "$WORK/bin"
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }
note() { echo "check.sh: $*" >&2; }

# The binaries, unpacked when build-cuda.sh had to xz them under the size limit.
for f in "$here"/bin/*; do
  name=$(basename "$f" .xz)
  if [ "$f" != "${f%.xz}" ]; then
    if command -v xz > /dev/null; then xz -dc "$f" > "$WORK/bin/$name"
    else "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$WORK/bin/$name"
    fi
  else
    cp "$f" "$WORK/bin/$name"
  fi
  chmod +x "$WORK/bin/$name"
done
mkdir -p "$WORK/bin/lib" && cp "$here"/lib/* "$WORK/bin/lib/" 2>/dev/null

# cuBLAS (with cuBLASLt) and cuRAND of CUDA 13 are too big for the folder: find them here. The places
# they are in: a CUDA 13 toolkit, NVIDIA's pip wheels (nvidia-cublas etc., which PyTorch's CUDA
# 13 builds install), or a folder named by CUDA_LIBS.
candidates=("${CUDA_LIBS:-}" /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda/targets/x86_64-linux/lib)
if command -v "$PYTHON" > /dev/null; then
  while IFS= read -r d; do candidates+=("$d"); done < <("$PYTHON" - << 'EOF' 2>/dev/null
import glob, site, sys
for root in site.getsitepackages() + [site.getusersitepackages()]:
    for d in glob.glob(root + "/nvidia/cu13/lib") + glob.glob(root + "/nvidia/*/lib"):
        print(d)
EOF
  )
fi
libpath=""
for d in "${candidates[@]}"; do
  [ -n "$d" ] && [ -d "$d" ] || continue
  for lib in libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
    if [ -e "$d/$lib" ]; then libpath="$libpath${libpath:+:}$d"; break; fi
  done
done
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd "$WORK/bin/polybrief" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
if [ -n "$missing" ]; then
  note "the CUDA 13 libraries $missing are not on this machine. Install them with"
  note "  pip install -r requirements-cuda.txt (nvidia-cublas, nvidia-curand),"
  note "or point CUDA_LIBS at a folder that has them. libcuda.so.1 comes with the NVIDIA driver (>= 580)."
  exit 1
fi
gpu_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
note "GPU: ${gpu_name:-unknown (no nvidia-smi)}; libraries from ${libpath:-the system}"

# 1. Parity.
export POLYBRIEF_TEST_ROOT="$here" POLYBRIEF_TEST_BIN="$WORK/bin/polybrief"
parity() {
  local device=$1 log="$WORK/parity-$1.log"
  note "parity tests on $device"
  POLYBRIEF_TEST_DEVICE=$device "$WORK/bin/polybrief-tests" marian_parity llm_parity embed_parity \
    --test-threads 1 > "$log" 2>&1
  local rc=$? summary
  summary=$(grep -E '^test result:' "$log" | tail -1 | sed 's/^test result: //; s/; finished.*//')
  grep -E '^test .* FAILED$' "$log" >&2
  row "parity: Marian, Qwen2 (safetensors, GGUF Q8_0/Q4_K), BERT vs transformers" "$device" "${summary:-did not run (exit $rc), see $log}" "–"
  return $rc
}
parity cuda; parity_rc=$?
parity cpu

have() { "$PYTHON" -c "import $1" > /dev/null 2>&1; }
if [ $bench = 1 ]; then
  # 2. Translation (needs PyTorch + transformers to write the random model, as on the CPU).
  if have torch && have transformers && "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
    note "translation bench (polybrief and transformers on cuda)"
    "$PYTHON" "$here/scripts/bench/translate_bench.py" --polybrief "$WORK/bin/bench_translate" \
      --workdir "$WORK/translate" --tools polybrief,hf --device cuda --threads 4 >&2
    while IFS= read -r line; do rows+=("$line"); done < <("$PYTHON" - "$WORK/translate/results.json" << 'EOF'
import json, sys
for name, batch, r in json.load(open(sys.argv[1])):
    ours, hf = r["polybrief"]["tok_per_s"], r.get("hf", {}).get("tok_per_s")
    print(f"| translate opus-mt-de-en size, {name}, batch {batch}: target tok/s | cuda:0 | {ours:.1f} | "
          + (f"{hf:.1f} (ratio {ours / hf:.2f})" if hf else "–") + " |")
EOF
    )
  else
    row "translate: skipped" "–" "needs PyTorch with CUDA and transformers (to write the random model)" "–"
  fi

  # 3. LLM on random GGUFs at Qwen2.5-1.5B's shapes.
  ggufs=()
  if have gguf && have numpy; then
    q8="$WORK/qwen2.5-1.5b-q8_0.gguf"
    [ -f "$q8" ] || "$PYTHON" "$here/scripts/bench/make_random_gguf.py" --model qwen2.5-1.5b --type q8_0 --out "$q8" >&2
    ggufs+=("$q8")
    if have llama_cpp; then
      f16="$WORK/qwen2.5-1.5b-f16.gguf" q4="$WORK/qwen2.5-1.5b-q4_k_m.gguf"
      [ -f "$f16" ] || "$PYTHON" "$here/scripts/bench/make_random_gguf.py" --model qwen2.5-1.5b --type f16 --out "$f16" >&2
      [ -f "$q4" ] || "$PYTHON" "$here/scripts/bench/quantize_gguf.py" "$f16" "$q4" Q4_K_M >&2
      ggufs+=("$q4")
    fi
  else
    row "LLM: skipped" "–" "needs Python with gguf and numpy (to write the random GGUF)" "–"
  fi
  for g in "${ggufs[@]}"; do
    label=$(basename "$g" .gguf)
    note "LLM bench $label (polybrief)"
    ours=$(POLYBRIEF_TEST_DEVICE=cuda POLYBRIEF_BENCH_GGUF="$g" POLYBRIEF_BENCH_PP=$PP POLYBRIEF_BENCH_TG=$TG \
      POLYBRIEF_BENCH_REPS=$REPS "$WORK/bin/polybrief-tests" bench_llm_tokens_per_second --ignored --nocapture \
      --test-threads 1 2>/dev/null | grep '^{"engine": "polybrief"')
    theirs=""
    if have torch && have transformers; then
      note "LLM bench $label (transformers)"
      theirs=$("$PYTHON" "$here/scripts/gpu/hf_llm_speed.py" "$g" --pp "$PP" --tg "$TG" --reps "$REPS" | tail -1)
    fi
    while IFS= read -r line; do rows+=("$line"); done < <("$PYTHON" - "$label" "$ours" "$theirs" << 'EOF'
import json, sys
label, ours, theirs = sys.argv[1], sys.argv[2], sys.argv[3]
o = json.loads(ours) if ours else None
t = json.loads(theirs) if theirs else None
for key, what in (("pp_tps", "prompt tok/s"), ("tg_tps", "decode tok/s")):
    a = f"{o[key]:.1f}" if o else "failed"
    b = f"{t[key]:.1f} (ratio {o[key] / t[key]:.2f})" if (o and t) else ("–" if not t else f"{t[key]:.1f}")
    print(f"| LLM {label} (random weights): {what} | cuda:0 | {a} | {b} |")
EOF
    )
  done
fi

echo
echo "GPU: ${gpu_name:-unknown}; $(head -1 "$here/BUILD-INFO.txt" 2>/dev/null); $(date -u +%Y-%m-%d)"
echo "LLM: prompt $PP tokens then $TG greedy steps, median of $REPS; transformers at float16 on the dequantized GGUF"
echo
echo "| check | device | polybrief | transformers |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit $parity_rc
