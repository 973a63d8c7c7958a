#!/usr/bin/env bash
# How long a run takes to exit after SIGTERM, per stage: for each stage, a fresh offline
# extractive run over ARTICLE_DIR is sent SIGTERM 0.3 s after the stage before it logged its
# end (so the signal lands inside the stage), and the time from the signal to the exit is
# printed with the exit code. Usage: stop_latency.sh BINARY ARTICLE_DIR
set -u
bin=$1
dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
level=scalar
for flag in avx2 avx_vnni avx512f avx512vnni; do
  grep -qw "$flag" /proc/cpuinfo && level=$flag
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); CPU's highest vector extension: $level"
# stage signalled  <-  the log line that ends the stage before it
for pair in "detect+segment:stage ingest:" "summarize:stage translate:" "synthesize:stage summarize:"; do
  stage=${pair%%:*}
  marker=${pair#*:}
  log="$work/$stage.log"
  rm -rf "$work/cache" "$work/brief.md"
  "$bin" --offline --cache-dir "$work/cache" run "$dir" --summarizer extractive \
    -o "$work/brief.md" 2>"$log" &
  pid=$!
  until grep -q "$marker" "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.02
  done
  sleep 0.3
  sent=$(date +%s.%N)
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  code=$?
  done_at=$(date +%s.%N)
  brief=$([ -e "$work/brief.md" ] && echo "brief written" || echo "no brief")
  lock=$([ -e "$work/brief.md.lock" ] && echo "lock left" || echo "lock removed")
  grace=$(grep -c "did not stop within" "$log")
  printf '%-15s exit %s after %.2f s (%s, %s, grace timer fired: %s)\n' \
    "$stage" "$code" "$(echo "$done_at - $sent" | bc)" "$brief" "$lock" "$grace"
done
