#!/usr/bin/env bash
# Hunts flaky tests: runs the test suites N times back to back while a CPU
# burner keeps one of the machine's cores busy, as other work would, and
# prints "flake-hunt: N passed, M failed" (a run passes when every suite in it passed).
#
#   scripts/flake-hunt.sh N            make test, N times
#   scripts/flake-hunt.sh N e2e        the e2e and asan-e2e suites only, N times
#
# Each run's output is kept in build/flake-hunt/run-K.log; a failed run's
# failing tests are listed at the end. The burner is a busy shell loop that
# dies with this script.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-}
scope=${2:-all}
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]] || { [ "$scope" != all ] && [ "$scope" != e2e ]; }; then
  echo "usage: $0 N [e2e]" >&2
  exit 2
fi

logs=build/flake-hunt
mkdir -p "$logs"

# One core busy for the whole hunt.
( while :; do :; done ) &
burner=$!
trap 'kill "$burner" 2>/dev/null' EXIT

if [ "$scope" = e2e ]; then
  make --no-print-directory bin/parley build/release/wal_crash_writer >/dev/null
  make --no-print-directory asan >/dev/null
fi

passed=0
failed=0
for k in $(seq 1 "$runs"); do
  log="$logs/run-$k.log"
  started=$(date +%s)
  if [ "$scope" = e2e ]; then
    { make --no-print-directory e2e && make --no-print-directory asan-e2e; } >"$log" 2>&1
  else
    scripts/run-tests.sh >"$log" 2>&1
  fi
  rc=$?
  took=$(( $(date +%s) - started ))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "flake-hunt: run $k passed (${took} s)"
  else
    failed=$((failed + 1))
    echo "flake-hunt: run $k FAILED (${took} s; $log):"
    grep -E "^(FAILED|ERROR) |^  .*:[0-9]+: |^FAIL |ran no test" "$log" | head -n 20 | sed 's/^/    /'
  fi
done

echo "flake-hunt: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
