#!/usr/bin/env bash
# Measures what the size of the HTTP worker pool costs when handlers do not
# block: GET /api/health under wrk (64 keep-alive connections) for several
# --threads values, with the server's thread count and RSS. The load
# generator shares the machine's cores with the server; both runs of each size
# see the same conditions. Usage: scripts/bench/pool-size.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-4}
command -v wrk >/dev/null || { echo "pool-size: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x bin/parley ] || make bin/parley >/dev/null
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf "%-8s %12s %10s %10s %8s %9s\n" threads "req/s" "p50" "p99" "os-thr" "rss-MiB"
for threads in 2 4 8 16 32 64 128; do
  bin/parley serve --bind 127.0.0.1 --port "$port" --data-dir "$work/d$threads" \
    --threads "$threads" --log-level error &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break
    sleep 0.05
  done
  out=$(wrk -t2 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port/api/health")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  os_threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  printf "%-8s %12s %10s %10s %8s %9s\n" "$threads" "$rps" "$p50" "$p99" "$os_threads" "$rss"
  kill "$pid"; wait "$pid" || true
done
