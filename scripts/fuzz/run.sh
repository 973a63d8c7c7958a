#!/bin/sh
# Runs polybrief's property tests (src/pipeline/properties.rs: ingest of every format, the
# brief's escaping, the sentencepiece reader) with many more cases than `cargo test` does,
# for a bounded time. cargo-fuzz needs a nightly toolchain; these run on stable.
#
#   scripts/fuzz/run.sh [CASES] [SECONDS]     # defaults: 20000 cases, 600 s
#
# A failure prints proptest's minimal failing input; add it as a regression test beside the
# code it broke (see the README's "How correctness is checked").
set -eu
cases="${1:-20000}"
seconds="${2:-600}"
cd "$(dirname "$0")/../.."
PROPTEST_CASES="$cases" timeout "$seconds" cargo test --lib pipeline::properties -- --test-threads 2
