#!/usr/bin/env bash
# What a nightly re-run costs when one article changed, against a fresh run, model-free
# (--offline --summarizer extractive), over N generated English articles:
#
#   scripts/bench/run_delta.sh [N=3000]
#
# Prints each run's wall time and stage timings (from the log) and the ratio re-run/fresh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
n="${1:-3000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/polybrief"
python3 "$root/scripts/bench/make_english_articles.py" "$work/articles" --articles "$n" >/dev/null

vector="$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx512f|avx512_vnni|avx2' | sort -u | tr '\n' ' ')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') (${vector% }); load: $(cut -d' ' -f1-3 /proc/loadavg)"
run() {
    local label="$1"
    local started ended
    started=$(date +%s.%N)
    "$bin" --cache-dir "$work/cache" run --offline --summarizer extractive "$work/articles" \
        -o "$work/brief.md" 2>"$work/$label.log" || true
    ended=$(date +%s.%N)
    printf '%s: %.1f s\n' "$label" "$(echo "$ended - $started" | bc)"
    grep -o 'stage [a-z+]*: [0-9.]*s.*' "$work/$label.log" | sed 's/^/    /'
    echo "$ended - $started" | bc > "$work/$label.secs"
}
run fresh
# One article changes overnight: its outlet corrected a figure.
articles=("$work"/articles/*.txt)
echo "Officials later corrected the figure to 12345." >> "${articles[0]}"
run "one-changed"
printf 'one changed / fresh: %.1f%%\n' "$(echo "100 * $(cat "$work/one-changed.secs") / $(cat "$work/fresh.secs")" | bc -l)"
