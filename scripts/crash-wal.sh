#!/usr/bin/env bash
# Crash test of the write-ahead log (make crash, make crash-smoke): a writer
# that prints each LSN once wal_wait() has returned is killed with SIGKILL at a
# random moment, ROUNDS times, on ONE data directory, so the log goes through
# many crash/restart cycles (torn tails, rolls, snapshots and trims cut short).
# After every kill `wal_crash_writer verify` recovers the log as a restart does
# and checks that every line acknowledged so far, in any round, is present with
# the same payload hash (tests/crash/wal_writer.c says what else it checks).
#
# Builds nothing: the Makefile builds build/release/wal_crash_writer first.
# WAL_CRASH_WRITER=build/asan/wal_crash_writer runs a sanitizer build instead.
# The work directory is removed after a pass and kept after a failure.
set -euo pipefail
rounds=${1:-25}
bin=${WAL_CRASH_WRITER:-build/release/wal_crash_writer}
[ -n "${WAL_CRASH_WRITER:-}" ] && bin=$(realpath "$bin")
cd "$(dirname "$0")/.."
if [ ! -x "$bin" ]; then
  echo "crash-wal: $bin is missing; run make build/release/wal_crash_writer" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/crash-wal.XXXXXX")
data=$work/data
acked=$work/acked.txt
mkdir -p "$data"
: >"$acked"
passed=0
torn=0
snapshots=0

fail() {
  echo "crash-wal: round $round FAILED: $1"
  echo "---- verify output"
  cat "$work/verify.out" 2>/dev/null || true
  tail -n 20 "$work/verify.err" 2>/dev/null || true
  echo "---- last lines of the writer's stderr (round $round, $threads threads)"
  tail -n 30 "$work/writer.err" 2>/dev/null || true
  echo "---- work directory kept: $work"
  echo "crash-wal: $passed passed, 1 failed"
  exit 1
}

start=$SECONDS
for round in $(seq 1 "$rounds"); do
  threads=$(( (round - 1) % 8 + 1 ))
  "$bin" write "$data" "$threads" "$round" >>"$acked" 2>"$work/writer.err" &
  pid=$!
  sleep "0.$(printf '%03d' $(( 20 + RANDOM % 381 )))"
  if ! kill -9 "$pid" 2>/dev/null; then
    { wait "$pid"; } 2>/dev/null && rc=0 || rc=$?
    fail "the writer exited by itself (status $rc) before the kill"
  fi
  { wait "$pid"; } 2>/dev/null && rc=0 || rc=$?
  if [ "$rc" -ne 137 ]; then
    fail "the writer ended with status $rc, not by SIGKILL"
  fi
  snapshots=$(( snapshots + $(grep -c '^wal info: snapshot ' "$work/writer.err" || true) ))
  if ! "$bin" verify "$data" <"$acked" >"$work/verify.out" 2>"$work/verify.err"; then
    fail "acknowledged records are missing or wrong after the restart"
  fi
  grep -q 'torn tail' "$work/verify.err" && torn=$((torn + 1))
  passed=$((passed + 1))
done

lines=$(wc -l <"$acked")
echo "crash-wal: last round: $(cat "$work/verify.out")"
echo "crash-wal: $lines records acknowledged in total over $rounds kills;" \
  "$snapshots snapshots committed; a torn tail cut after $torn kills; $((SECONDS - start)) s"
echo "crash-wal: $passed passed, 0 failed"
rm -rf "$work"
