#!/usr/bin/env bash
# Runs every suite of `make test` in turn, even after one fails, keeps each
# suite's output in build/test-logs/, and ends with one line that adds them
# up: "total: N passed, N failed". Exit status 1 when any suite failed.
#
# Suites: the layer check of the include graph (scripts/check-layers.py);
# unit, wal and e2e on the release build; the same on the ASan/UBSan
# build; the wal and unit tests under ThreadSanitizer; a short crash test of the log
# and one of the whole server (each kill-and-verify round counts as one test); a short run of every fuzz
# harness (each harness counts as one test); the browser smoke set of the web
# client (tests/web/smoke.test.mjs: node's test runner, chromium).
# The release and ASan e2e suites run side by side (each into its own log,
# printed when both are done): they do not share a port or a directory.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3
logs=build/test-logs
mkdir -p "$logs"
passed=0
failed=0
summary=()

count() { grep -Eo "[0-9]+ $1" "$2" | tail -n 1 | grep -Eo '^[0-9]+' || echo 0; }

# Adds a finished suite to the counts: its name, its exit status, its log.
record_suite() {
  local name=$1 rc=$2 log=$3
  local p f
  case "$name" in
    fuzz*)
      p=$(grep -c "DONE" "$log")
      f=$(grep -c "FAILED" "$log")
      ;;
    web*)
      # node --test ends with "# pass N" and "# fail N"
      p=$(grep -Eo '^# pass [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+$' || echo 0)
      f=$(grep -Eo '^# fail [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+$' || echo 0)
      ;;
    *)
      p=$(count passed "$log")
      f=$(( $(count failed "$log") + $(count error "$log") ))
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

run_suite() {
  local name=$1
  shift
  echo "==== $name"
  "$@" 2>&1 | tee "$logs/$name.log"
  record_suite "$name" "${PIPESTATUS[0]}" "$logs/$name.log"
}

# Two suites at the same time: run_pair name1 'cmd1' name2 'cmd2'. Each
# writes its own log; both logs are printed once both are done.
run_pair() {
  local n1=$1 c1=$2 n2=$3 c2=$4
  echo "==== $n1 and $n2 (side by side)"
  bash -c "$c1" >"$logs/$n1.log" 2>&1 &
  local pid1=$!
  bash -c "$c2" >"$logs/$n2.log" 2>&1 &
  local pid2=$!
  local rc1=0 rc2=0
  wait "$pid1" || rc1=$?
  wait "$pid2" || rc2=$?
  echo "==== $n1"
  cat "$logs/$n1.log"
  record_suite "$n1" "$rc1" "$logs/$n1.log"
  echo "==== $n2"
  cat "$logs/$n2.log"
  record_suite "$n2" "$rc2" "$logs/$n2.log"
}

run_suite layers $PYTHON scripts/check-layers.py
run_suite unit make --no-print-directory unit
run_suite wal make --no-print-directory wal-test
# Both e2e suites' binaries first (one make each), so that the two suites
# running side by side build nothing; a build error shows in a suite's log.
echo "==== building the release and ASan binaries of the e2e suites"
make --no-print-directory bin/parley build/release/wal_crash_writer
make --no-print-directory asan
run_pair e2e "make --no-print-directory e2e" asan-e2e "make --no-print-directory asan-e2e"
run_suite asan-unit make --no-print-directory asan-unit
run_suite asan-wal make --no-print-directory asan-wal
run_suite tsan-wal make --no-print-directory tsan-wal
run_suite tsan-unit make --no-print-directory tsan-unit
run_suite crash make --no-print-directory crash-smoke
run_suite crash-server make --no-print-directory crash-server-smoke
run_suite fuzz make --no-print-directory fuzz-smoke
run_suite web-smoke make --no-print-directory test-web WEB_TESTS=tests/web/smoke.test.mjs

echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
