#!/usr/bin/env bash
# Runs every libFuzzer harness in build/fuzz/ for the given number of seconds
# (make fuzz-smoke: a few seconds each, in make test; make fuzz: ten minutes).
# Seeds come from fuzz/corpus/<harness>/ (committed); what the fuzzer finds
# grows build/fuzz/corpus/<harness>/ (not committed); a crashing input is
# saved under fuzz/crashes/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
mkdir -p fuzz/crashes
status=0
for bin in build/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work=build/fuzz/corpus/$name
  mkdir -p "$work" "fuzz/corpus/$name"
  echo "fuzz: $name for ${seconds}s"
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=0 -artifact_prefix="fuzz/crashes/$name-" \
      "$work" "fuzz/corpus/$name" >"build/fuzz/$name.log" 2>&1; then
    echo "fuzz: $name FAILED; see build/fuzz/$name.log and fuzz/crashes/"
    tail -n 40 "build/fuzz/$name.log"
    status=1
  else
    grep -E "^#[0-9]+.*DONE" "build/fuzz/$name.log" | tail -n 1 || true
  fi
done
exit $status
