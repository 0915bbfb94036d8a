#!/usr/bin/env bash
# Runs every suite of `make test` in turn, even after one fails, keeps each
# suite's output in build/test-logs/, and ends with one line that adds them
# up: "total: N passed, N failed". Exit status 1 when any suite failed.
#
# Suites: the layer check of the include graph (scripts/check-layers.py);
# unit, wal and e2e on the release build; the same on the ASan/UBSan
# build; the wal and unit tests under ThreadSanitizer; a short crash test of the log
# and one of the whole server (each kill-and-verify round counts as one test); a short run of every fuzz
# harness (each harness counts as one test).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3
logs=build/test-logs
mkdir -p "$logs"
passed=0
failed=0
summary=()

count() { grep -Eo "[0-9]+ $1" "$2" | tail -n 1 | grep -Eo '^[0-9]+' || echo 0; }

run_suite() {
  local name=$1
  shift
  echo "==== $name"
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  local p f
  case "$name" in
    fuzz*)
      p=$(grep -c "DONE" "$logs/$name.log")
      f=$(grep -c "FAILED" "$logs/$name.log")
      ;;
    *)
      p=$(count passed "$logs/$name.log")
      f=$(( $(count failed "$logs/$name.log") + $(count error "$logs/$name.log") ))
      ;;
  esac
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 # the suite failed before it could count (a build error, a crash)
  fi
  if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ]; then
    f=$((f + 1)) # a suite that ran nothing is a failure, not a pass
    echo "$name ran no test"
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  summary+=("$(printf '%-10s %5d passed, %d failed' "$name" "$p" "$f")")
}

run_suite layers $PYTHON scripts/check-layers.py
run_suite unit make --no-print-directory unit
run_suite wal make --no-print-directory wal-test
run_suite e2e make --no-print-directory e2e
run_suite asan-unit make --no-print-directory asan-unit
run_suite asan-wal make --no-print-directory asan-wal
run_suite tsan-wal make --no-print-directory tsan-wal
run_suite tsan-unit make --no-print-directory tsan-unit
run_suite asan-e2e make --no-print-directory asan-e2e
run_suite crash make --no-print-directory crash-smoke
run_suite crash-server make --no-print-directory crash-server-smoke
run_suite fuzz make --no-print-directory fuzz-smoke

echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
