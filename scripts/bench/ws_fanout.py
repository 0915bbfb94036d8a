#!/usr/bin/python3
"""WebSocket costs (issue 7's goals, issue 8's P3): bin/parley with N idle
WebSockets (default 1,000) — CPU over 10 s and RSS against the same server
before they connected — then one message fanned out to all of them, M times:
latency from the POST being sent to each socket holding the frame.

The sockets are held by build/release/bench_ws_client (scripts/bench/
ws_client.c: one thread, epoll, libwslay framing, pings answered) on the
same two cores as the server; this script starts the server, measures its
CPU and RSS, posts, and subtracts each POST's send time from the receive
times the client reports (both read CLOCK_REALTIME).

    scripts/bench/ws_fanout.py [connections] [messages]
"""
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
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)
from conftest import Server  # noqa: E402
from suite import cpu_seconds, rss_mib  # noqa: E402

import requests  # noqa: E402


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    messages = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="parley-bench-")
    server = Server(os.path.join(tmp, "data"),
                    args=["--rate-limit", "0", "--log-level", "error", "--ws-idle-timeout",
                          "600", "--ws-frame-rate", "0"]).start()
    try:
        r = requests.post(server.url("/api/v1/auth/register"), timeout=30,
                          json={"username": "bencher", "password": "correct horse battery",
                                "email": "bencher@example.com"})
        token = r.json()["access_token"]
        auth = {"Authorization": "Bearer " + token}
        ch = requests.post(server.url("/api/v1/channels"), json={"name": "bench"},
                           headers=auth, timeout=30).json()
        time.sleep(1)
        rss_before = rss_mib(server.pid())
        client = subprocess.Popen([CLIENT, str(server.port), token, str(n)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert client.stdout.readline().strip() == "ready", "the client did not connect"
            time.sleep(2)  # ready and presence frames
            cpu0, t0 = cpu_seconds(server.pid()), time.time()
            time.sleep(10)  # idle: only pings (every 25 s by default)
            idle_cpu = (cpu_seconds(server.pid()) - cpu0) / (time.time() - t0) * 100
            rss_idle = rss_mib(server.pid())

            latencies = []
            session = requests.Session()
            session.headers.update(auth)
            for i in range(messages):
                marker = "fanout-%d-" % i
                client.stdin.write("expect %s\n" % marker)
                client.stdin.flush()
                assert client.stdout.readline().strip() == "armed"
                sent = time.time()
                r = session.post(server.url("/api/v1/channels/%s/messages" % ch["id"]),
                                 json={"content": marker + "x" * 80}, timeout=30)
                assert r.status_code == 201, r.text
                got = client.stdout.readline().split()
                assert got[0] == "got" and int(got[1]) == n, \
                    "%s of %d received message %d" % (got[1], n, i)
                latencies.extend((float(t) - sent) * 1000 for t in got[2:])
                time.sleep(0.1)
            client.stdin.write("quit\n")
            client.stdin.flush()
            client.wait(30)
        finally:
            if client.poll() is None:
                client.kill()
        print(json.dumps({
            "connections": n,
            "idle_cpu_percent_of_a_core": round(idle_cpu, 2),
            "rss_mib_before": round(rss_before, 1),
            "rss_mib_with_idle_connections": round(rss_idle, 1),
            "rss_mib_per_1000_connections": round((rss_idle - rss_before) * 1000 / n, 1),
            "fanout_messages": messages,
            "delivered": len(latencies),
            "latency_ms_p50": round(percentile(latencies, 0.50), 2),
            "latency_ms_p99": round(percentile(latencies, 0.99), 2),
            "latency_ms_max": round(max(latencies), 2),
        }, indent=1))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
