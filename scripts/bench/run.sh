#!/usr/bin/env bash
# `make bench`: every benchmark in scripts/bench/, one after the other.
# Results are printed; docs/benchmarks.md records the latest figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== HTTP worker pool size (GET /api/health, wrk -t2 -c64) =="
scripts/bench/pool-size.sh "${BENCH_SECONDS:-5}"
echo
echo "== Write-ahead log (build/release/wal_bench) =="
build/release/wal_bench
echo
echo "== WebSockets: 1,000 idle connections, one message fanned out to all (scripts/bench/ws_fanout.py) =="
/usr/bin/python3 scripts/bench/ws_fanout.py 1000 20
