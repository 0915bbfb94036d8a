#!/usr/bin/python3
"""Draws the plots of docs/benchmarks.md, docs/bench/*.svg, with gnuplot
(Debian's gnuplot-nox) from the data `make bench` leaves in build/bench/:

- p1_throughput.svg, p1_p99.svg, p2_throughput.svg, p2_p99.svg: the
  connection sweeps of P1 and P2 beside their baselines
  (build/bench/sweep_p1.dat, sweep_p2.dat, written by suite.py's sweeps(),
  whose "# columns:" line names the columns this script looks up);
- fanout_cdf.svg: the latency CDF of P3's fan-out to 1,000 subscribers,
  Parley beside a plain node `ws` broadcast server
  (fanout_parley_1000.txt, fanout_ws_1000.txt);
- search_cdf.svg: the latency CDF of P14's searches, Parley beside SQLite
  FTS5, end to end (search_parley_e2e.txt, search_fts5_e2e.txt) and, when
  present, in process time (search_parley_cpu.txt, search_fts5_cpu.txt).

A latency file holds one latency in milliseconds per line. A plot whose
data is missing is skipped with a message, so that a partial run (one
BENCH_ONLY figure) redraws what it measured and leaves the other SVGs as
they were. This script computes the CDFs itself (sorted latencies, at most
CDF_POINTS quantiles a series, so that an SVG of 200,000 deliveries stays
small enough to commit) and hands gnuplot inline data blocks: one gnuplot
script a plot, fed on stdin, and no temporary files.

    scripts/bench/plots.py [--data build/bench] [--out docs/bench]
"""
import argparse
import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CDF_POINTS = 500

TERMINAL = ("set terminal svg size 820,560 dynamic noenhanced "
            "font 'DejaVu Sans,13' background rgb 'white'")
# Parley first, then its baselines, in the same colours on every plot.
COLOURS = ("#1f5fbf", "#e07b00", "#2c9c3c")
COMMON = """
set grid back lc rgb '#dddddd'
set border lc rgb '#555555'
set key outside below center vertical Left reverse maxcols 1 box lc rgb '#bbbbbb' spacing 1.2
"""

SWEEPS = (
    ("p1", "sweep_p1.dat", "P1 durable POST (fsync always, JWT)",
     (("parley", "Parley POST /channels/{id}/messages"),
      ("echo", "bare ulfius POST /echo of the same bodies"),
      ("redis", "Redis 7 XADD, appendfsync always"))),
    ("p2", "sweep_p2.dat", "P2 GET of a 50-message history page",
     (("parley", "Parley GET /channels/{id}/messages?limit=50"),
      ("floor", "bare ulfius answering the same page bytes from memory"),
      ("hello", "bare ulfius GET /hello"))),
)

# (file of the plot, title, series: (data file, legend, colour, dash type,
# required)). A plot is drawn when every required series has data.
CDFS = (
    ("fanout_cdf.svg",
     "P3: one message to 1,000 WebSocket subscribers, delivery latency",
     "latency from the post to each subscriber's frame (ms, log scale)",
     (("fanout_parley_1000.txt", "Parley", 0, 1, True),
      ("fanout_ws_1000.txt", "plain node ws broadcast server", 1, 1, True))),
    ("search_cdf.svg",
     "P14: search latency, Parley beside SQLite FTS5 over the same corpus and queries",
     "latency of a query (ms, log scale)",
     (("search_parley_e2e.txt", "Parley GET /search/messages, end to end", 0, 1, True),
      ("search_fts5_e2e.txt", "SQLite FTS5 MATCH, bm25() order, LIMIT 20, end to end",
       1, 1, True),
      ("search_parley_cpu.txt", "Parley, process time per query", 0, 2, False),
      ("search_fts5_cpu.txt", "SQLite FTS5, process time per query", 1, 2, False))),
)


def skip(what, why):
    print("plots: skipping %s: %s" % (what, why), file=sys.stderr)


def gp_string(text):
    """A gnuplot double-quoted string (backslash escapes: a newline breaks
    the line of a title)."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(script, out):
    """Runs one gnuplot script that writes the SVG `out`."""
    subprocess.run(["gnuplot"], input="%s\nset output %s\n%s" % (TERMINAL, gp_string(out),
                                                                    script),
                   text=True, check=True)
    print("plots: wrote %s" % os.path.relpath(out, ROOT), file=sys.stderr)


def sweep_file(path):
    """(comment lines, {column name: gnuplot column number}) of a sweep
    data file, or None when it is missing or names no columns."""
    if not os.path.exists(path):
        return None
    comments, columns = [], {}
    with open(path) as f:
        for line in f:
            if not line.startswith("#"):
                continue
            text = line[1:].strip()
            if text.startswith("columns:"):
                columns = {name: i + 1 for i, name in enumerate(text.split(":", 1)[1].split())}
            else:
                comments.append(text)
    return (comments, columns) if columns else None


def sweep_plots(data, out):
    for name, filename, title, series in SWEEPS:
        path = os.path.join(data, filename)
        parsed = sweep_file(path)
        if parsed is None:
            for measure in ("throughput", "p99"):
                skip("%s_%s.svg" % (name, measure), "no sweep data in %s" % path)
            continue
        comments, columns = parsed
        # The second comment line says when: "make bench sweep, <date>, 3 s a point".
        provenance = comments[1] if len(comments) > 1 else ""
        for measure, column, ylabel, ylog in (
                ("throughput", "rps", "throughput (requests/s)", False),
                ("p99", "p99_ms", "p99 latency (ms, log scale)", True)):
            plots = []
            for i, (who, legend) in enumerate(series):
                col = columns.get("%s_%s" % (who, column))
                if col is None:
                    skip("%s in %s_%s.svg" % (who, name, measure), "no column %s_%s in %s"
                         % (who, column, path))
                    continue
                plots.append("%s using 1:%d with linespoints lw 2 pt 7 ps 0.8 lc rgb '%s' "
                             "title %s" % (gp_string(path), col, COLOURS[i], gp_string(legend)))
            if not plots:
                skip("%s_%s.svg" % (name, measure), "none of its columns in %s" % path)
                continue
            render(COMMON + """
set title %s
set xlabel 'concurrent connections (log scale)'
set ylabel %s
set logscale x 2
set xtics (1, 4, 16, 64, 256)
set xrange [0.8:320]
%s
set format y %s
plot %s
""" % (gp_string("%s: %s by connections\n%s" % (title, "throughput" if measure == "throughput"
                                                else "p99 latency", provenance)),
       gp_string(ylabel), "set logscale y 10" if ylog else "set yrange [0:*]",
       gp_string("%g" if ylog else "%.0f"), ", \\\n     ".join(plots)),
                   os.path.join(out, "%s_%s.svg" % (name, measure)))


def latencies(path):
    """The latencies (ms) of a file of one a line, sorted; None when the
    file is missing or holds none. Values of 0 or less (a clock's
    resolution) are raised to 1 ns so that the log axis keeps them."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        try:
            values = sorted(max(float(x), 1e-6) for x in f.read().split())
        except ValueError as e:
            print("plots: %s is not one latency a line (%s)" % (path, e), file=sys.stderr)
            return None
    return values or None


def percentile(values, p):
    """The nearest-rank p-th percentile of sorted values."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def cdf_block(name, values):
    """A gnuplot data block of (latency, fraction of latencies <= it): every
    value, or CDF_POINTS quantiles and the maximum when there are more."""
    n = len(values)
    if n <= CDF_POINTS:
        points = [(v, (i + 1) / n) for i, v in enumerate(values)]
    else:
        points = [(values[max(0, math.ceil(k / CDF_POINTS * n) - 1)], k / CDF_POINTS)
                  for k in range(1, CDF_POINTS + 1)]
        points.insert(0, (values[0], 1 / n))
    return "$%s << EOD\n%s\nEOD\n" % (name, "\n".join("%.6g %.6g" % p for p in points))


def cdf_plots(data, out):
    for filename, title, xlabel, series in CDFS:
        loaded, blocks, plots = [], [], []
        missing = [f for f, _, _, _, required in series
                   if required and latencies(os.path.join(data, f)) is None]
        if missing:
            skip(filename, "no latencies in %s" % ", ".join(os.path.join(data, f)
                                                            for f in missing))
            continue
        for i, (f, legend, colour, dash, _) in enumerate(series):
            values = latencies(os.path.join(data, f))
            if values is None:
                print("plots: %s: no %s, drawn without it" % (filename, f), file=sys.stderr)
                continue
            loaded.append(values)
            blocks.append(cdf_block("s%d" % i, values))
            plots.append("$s%d using 1:2 with steps lw 2 dt %d lc rgb '%s' title %s" % (
                i, dash, COLOURS[colour], gp_string("%s (n=%d; p50 %.3g ms, p99 %.3g ms)" % (
                    legend, len(values), percentile(values, 50), percentile(values, 99)))))
        low = min(v[0] for v in loaded)
        high = max(v[-1] for v in loaded)
        render("".join(blocks) + COMMON + """
set title %s
set xlabel %s
set ylabel 'fraction of latencies at most x'
set logscale x 10
set format x '%%g'
set xrange [%g:%g]
set yrange [0:1.02]
set ytics 0.1
set arrow from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 3 lc rgb '#888888'
set arrow from graph 0, first 0.99 to graph 1, first 0.99 nohead dt 3 lc rgb '#888888'
set label 'p50' at graph 0.01, first 0.475 tc rgb '#666666'
set label 'p99' at graph 0.01, first 0.965 tc rgb '#666666'
plot %s
""" % (gp_string(title), gp_string(xlabel), low / 1.5, high * 1.5,
       ", \\\n     ".join(plots)), os.path.join(out, filename))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench"))
    a = ap.parse_args()
    if shutil.which("gnuplot") is None:
        sys.exit("plots: no gnuplot on PATH (scripts/install-deps.sh --bench installs "
                 "Debian's gnuplot-nox)")
    os.makedirs(a.out, exist_ok=True)
    sweep_plots(a.data, a.out)
    cdf_plots(a.data, a.out)


if __name__ == "__main__":
    main()
