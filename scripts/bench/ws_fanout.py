#!/usr/bin/python3
"""WebSocket costs (issue 7's goals, issue 8's and issue 19's P3): bin/parley
with N idle WebSockets (default 1,000) — CPU over 10 s and RSS against the
same server before they connected — then one message fanned out to all of
them, M times: latency from the POST being sent to each socket holding the
frame. Beside it, in the same run, the baseline: a plain node `ws`
broadcast server (scripts/bench/node/ws_broadcast.mjs, which persists
nothing) held by the same client with the same N, posted the same M
messages; the posts alternate between the two servers (which one goes first
alternates too), so the neighbours' load on the two shared cores lands on
both alike.

The sockets are held by build/release/bench_ws_client (scripts/bench/
ws_client.c: one thread, epoll, libwslay framing, pings answered), one
process per server, on the same two cores as the servers; this script
starts the servers, measures their CPU and RSS, posts, and subtracts each
POST's send time from the receive times the client reports (both read
CLOCK_REALTIME). Every latency (ms, one a line) goes to
build/bench/fanout_parley_<N>.txt and fanout_ws_<N>.txt, for the plots.

    scripts/bench/ws_fanout.py [connections] [messages] [--no-baseline] [--no-idle]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(ROOT, "build", "release", "bench_ws_client")
NODE_SERVER = os.path.join(HERE, "node", "ws_broadcast.mjs")
DATA_DIR = os.path.join(ROOT, "build", "bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)
from conftest import Server  # noqa: E402
from suite import cpu_seconds, rss_mib  # noqa: E402

import requests  # noqa: E402

IDLE_SECONDS = 10


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Target:
    """One server under test and the client holding its sockets."""

    def __init__(self, name, pid, port, token, post_token, post_path, n):
        self.name, self.pid, self.port, self.token = name, pid, port, token
        self.post_url = "http://127.0.0.1:%d%s" % (port, post_path)
        self.session = requests.Session()
        self.session.headers.update({"Authorization": "Bearer " + post_token})
        self.latencies = []
        self.frame_bytes = 0
        self.cpu = 0.0  # the server's CPU seconds over the fan-outs
        self.post_ms = []  # each POST's answer time
        self.firsts = []   # each message: POST sent -> the first socket holding it
        self.spreads = []  # each message: the first socket -> the last (the fan-out itself)
        self.rss_before = rss_mib(pid)
        self.client = subprocess.Popen([CLIENT, str(port), token, str(n)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        line = self.client.stdout.readline().strip()
        assert line == "ready", "the client of %s did not connect (%r)" % (name, line)
        self.rss_connected = rss_mib(pid)

    def command(self, line):
        self.client.stdin.write(line + "\n")
        self.client.stdin.flush()

    def fan_out(self, i, n):
        """Posts message i and records every socket's latency (ms)."""
        marker = "fanout-%d-" % i
        self.command("expect " + marker)
        assert self.client.stdout.readline().strip() == "armed"
        cpu = cpu_seconds(self.pid)
        sent = time.time()
        r = self.session.post(self.post_url, json={"content": marker + "x" * 80}, timeout=30)
        assert r.status_code == 201, r.text
        self.post_ms.append((time.time() - sent) * 1000)
        got = self.client.stdout.readline().split()
        self.cpu += cpu_seconds(self.pid) - cpu
        assert got[0] == "got" and int(got[1]) == n, \
            "%s: %s of %d received message %d" % (self.name, got[1], n, i)
        self.frame_bytes = int(got[2])
        lat = [(float(t) - sent) * 1000 for t in got[3:]]
        self.latencies.extend(lat)
        self.firsts.append(min(lat))
        self.spreads.append(max(lat) - min(lat))

    def close(self):
        if self.client.poll() is None:
            self.command("quit")
            try:
                self.client.wait(30)
            except subprocess.TimeoutExpired:
                self.client.kill()

    def figures(self, n):
        lat = self.latencies
        path = os.path.join(DATA_DIR, "fanout_%s_%d.txt" % (self.name, n))
        with open(path, "w") as f:
            f.writelines("%.3f\n" % x for x in lat)
        return {
            "delivered": len(lat),
            "frame_bytes": self.frame_bytes,
            "latency_ms_p50": round(percentile(lat, 0.50), 2),
            "latency_ms_p99": round(percentile(lat, 0.99), 2),
            "latency_ms_max": round(max(lat), 2),
            # the POST's answer (Parley's after the fsync), the median of the posts
            "post_ms_p50": round(percentile(self.post_ms, 0.50), 2),
            "first_ms_p50": round(percentile(self.firsts, 0.50), 2),
            "first_ms_max": round(max(self.firsts), 2),
            "spread_ms_p50": round(percentile(self.spreads, 0.50), 2),
            "spread_ms_max": round(max(self.spreads), 2),
            # the POST and the fan-out, over every delivery (1/100 s ticks)
            "server_cpu_us_per_delivery": round(self.cpu / max(len(lat), 1) * 1e6, 2),
            "rss_mib_before": round(self.rss_before, 1),
            "rss_mib_connected": round(self.rss_connected, 1),
            "rss_mib_after": round(rss_mib(self.pid), 1),
            "latencies_file": os.path.relpath(path, ROOT),
        }


def idle_cost(pid):
    """The server's CPU (% of a core) over IDLE_SECONDS and its RSS after."""
    cpu0, t0 = cpu_seconds(pid), time.time()
    time.sleep(IDLE_SECONDS)  # idle: only pings (every 25 s by default)
    return (cpu_seconds(pid) - cpu0) / (time.time() - t0) * 100, rss_mib(pid)


def settle(pid, timeout=60):
    """Waits until the server has gone quiet (under 2% of a core over 0.2 s:
    the sockets' ready and presence frames sent), or the deadline."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        cpu0, t0 = cpu_seconds(pid), time.time()
        time.sleep(0.2)  # the measuring window, not a guess at readiness
        if (cpu_seconds(pid) - cpu0) / (time.time() - t0) < 0.02:
            return


def register(server, name):
    r = requests.post(server.url("/api/v1/auth/register"), timeout=30,
                      json={"username": name, "password": "correct horse battery",
                            "email": name + "@example.com"})
    return r.json()["access_token"]


def add_poster(server, channel_path):
    """Another member of the channel, who posts (as in a channel, where the
    author is one of many). Registered after the idle figures: a password
    hash's memory stays in the heap (glibc's growing mmap threshold), which
    the sockets would then reuse and look cheaper than they are."""
    poster = register(server, "poster")
    r = requests.post(server.url(channel_path + "/join"), timeout=30,
                      headers={"Authorization": "Bearer " + poster})
    assert r.status_code in (200, 201, 204), r.text
    return poster


def parley_server(tmp, n):
    server = Server(os.path.join(tmp, "data"),
                    args=["--rate-limit", "0", "--log-level", "error",
                          "--max-connections-per-ip", "0",
                          "--max-connections", str(max(4096, n + 1024)),
                          "--ws-idle-timeout", "600", "--ws-frame-rate", "0"]).start()
    # The sockets are one member's (add_poster: another member posts).
    token = register(server, "bencher")
    ch = requests.post(server.url("/api/v1/channels"), json={"name": "bench"},
                       headers={"Authorization": "Bearer " + token}, timeout=30).json()
    return server, token, "/api/v1/channels/%s" % ch["id"]


def node_server():
    proc = subprocess.Popen(["node", NODE_SERVER, "node-bench-token"], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline().split()
    assert line and line[0] == "listening", "the node baseline did not start"
    return proc, int(line[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("connections", type=int, nargs="?", default=1000)
    ap.add_argument("messages", type=int, nargs="?", default=20)
    ap.add_argument("--no-baseline", action="store_true", help="Parley only")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle CPU/RSS figure")
    a = ap.parse_args()
    n, messages = a.connections, a.messages
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(DATA_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="parley-bench-")
    server, token, channel_path = parley_server(tmp, n)
    node = None
    targets = []
    out = {"connections": n, "fanout_messages": messages}
    try:
        settle(server.pid())
        parley = Target("parley", server.pid(), server.port, token, "-",
                        channel_path + "/messages", n)
        targets.append(parley)
        settle(server.pid())  # ready and presence frames
        if not a.no_idle:
            idle_cpu, rss_idle = idle_cost(server.pid())
            out.update({
                "idle_cpu_percent_of_a_core": round(idle_cpu, 2),
                "rss_mib_before": round(parley.rss_before, 1),
                "rss_mib_with_idle_connections": round(rss_idle, 1),
                "rss_mib_per_1000_connections":
                    round((rss_idle - parley.rss_before) * 1000 / n, 1),
            })
        parley.session.headers["Authorization"] = "Bearer " + add_poster(server, channel_path)
        if not a.no_baseline:
            node, node_port = node_server()  # answers once it printed "listening"
            targets.append(Target("ws", node.pid, node_port, "node-bench-token", "-",
                                  "/api/v1/channels/ch_0000000000000000c0c0/messages", n))
        for i in range(messages):
            order = targets if i % 2 == 0 else targets[::-1]
            for t in order:
                t.fan_out(i, n)
                time.sleep(0.1)
        for t in targets:
            t.close()
        out["parley"] = parley.figures(n)
        if not a.no_baseline:
            out["ws"] = targets[1].figures(n)
            out["p99_ratio"] = round(out["parley"]["latency_ms_p99"] /
                                     out["ws"]["latency_ms_p99"], 2)
        # The figures of before issue 19 (suite.py reads these names).
        out.update({k: out["parley"][k] for k in ("delivered", "latency_ms_p50",
                                                  "latency_ms_p99", "latency_ms_max")})
        print(json.dumps(out, indent=1))
    finally:
        for t in targets:
            if t.client.poll() is None:
                t.client.kill()
        if node is not None:
            node.terminate()
            node.wait(30)
        server.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
