#!/usr/bin/env bash
# `make bench`: Parley's figures P1-P15, C1, C2, W1, W2 against baselines measured in the same
# run (scripts/bench/suite.py), printed as one table, then the plots of
# docs/bench/*.svg drawn with gnuplot from what the run left in build/bench/
# (scripts/bench/plots.py; `make bench-plots` redraws them alone).
# docs/benchmarks.md records the latest figures. The finer benchmarks run on their own:
# `make bench-wal` (the log) and scripts/bench/pool-size.sh (the HTTP pool).
#   BENCH_SECONDS   seconds per throughput run (default 10)
#   BENCH_SWEEP_SECONDS  seconds per point of the P1/P2 connection sweeps (default 3)
#   BENCH_MESSAGES  messages in the big store of P4/P7/P9 (default 1000000)
#   BENCH_ONLY      ipblock: only P8 (the blocked-address check); timeseries:
#                   only P9 (the admin's time series); search: only P10 (posts
#                   while 16 connections run the costliest search); search-fts:
#                   only P14 (search against SQLite FTS5, 1,000,000 messages); tls: only
#                   P11 (P1/P2 over HTTPS beside plain HTTP); cookies: only
#                   C1/C2 (session cookies beside Bearer tokens); backup:
#                   only P12 (P1's posts while streamed backups run); metrics:
#                   only P13 (the access log's cost per --log-format, a scrape's);
#                   web: only W1/W2 (the web client's bundle size, first paint);
#                   sweep: only the P1/P2 sweeps over 1-256 connections and
#                   their plots; fanout: only P3 (WebSocket fan-out beside a
#                   node `ws` server); width: only
#                   P15 (GET /channels, login, user search and subscribe with
#                   100,000 users / 10,000 channels beside 100 / 10); default all
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
/usr/bin/python3 scripts/bench/suite.py --seconds "${BENCH_SECONDS:-10}" \
  --messages "${BENCH_MESSAGES:-1000000}" --sweep-seconds "${BENCH_SWEEP_SECONDS:-3}" \
  --only "${BENCH_ONLY:-all}" || status=$?
# The plots of what was measured, even when a later figure failed; a plot
# whose data this run did not write keeps its last SVG.
/usr/bin/python3 scripts/bench/plots.py
exit "$status"
