#!/usr/bin/python3
"""WebSocket stress: many simultaneous connections, and clients connecting and
disconnecting in a loop (some cleanly, some cut mid-frame), against a running
server; then every connection must still work.

    scripts/stress_ws.py --port P --token T --channel C [--connections 1000]
                         [--churners 64] [--seconds 60]

The server's --ws-idle-timeout must be longer than --seconds (these raw
clients never answer pings). T is an access token of a member of channel C (the script posts to C and
expects every connection to receive the message). Exits 0 when every
connection received it and the server still answers; prints one line of
figures. tests/e2e/test_realtime_load.py runs a small burst of it;
`make stress` runs the full one against the ASan build.
"""
import argparse
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from realtime_client import client_frame, parse_server_frames, raw_handshake  # noqa: E402

import requests  # noqa: E402


def read_until(sock, want, deadline):
    """Reads frames until a text frame containing `want`; True when found."""
    data = b""
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return False
        data += chunk
        frames, data = parse_server_frames(data)
        for op, payload in frames:
            if op == 1 and want in payload:
                return True
    return False


def churn(port, token, stop, counts):
    rng = random.Random()
    while not stop.is_set():
        try:
            s = raw_handshake(port, token)
            how = rng.randrange(3)
            if how == 0:
                s.sendall(client_frame(1, b'{"type":"ping"}'))
                s.sendall(client_frame(8, b"\x03\xe8"))
            elif how == 1:
                s.sendall(client_frame(1, b'{"type":"ping","pad":"xxxxxxxx"}')[:rng.randrange(1, 12)])
            s.close()
            counts["churned"] += 1
        except OSError:
            counts["errors"] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--channel", required=True)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--churners", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    stop = threading.Event()
    counts = {"churned": 0, "errors": 0}
    churners = [threading.Thread(target=churn, args=(a.port, a.token, stop, counts), daemon=True)
                for _ in range(a.churners)]
    for t in churners:
        t.start()

    socks, lock = [], threading.Lock()

    def opener(n):
        for _ in range(n):
            s = raw_handshake(a.port, a.token)
            with lock:
                socks.append(s)

    per = 25
    openers = [threading.Thread(target=opener, args=(min(per, a.connections - i),))
               for i in range(0, a.connections, per)]
    started = time.time()
    for t in openers:
        t.start()
    for t in openers:
        t.join()
    opened = time.time() - started
    time.sleep(max(0.0, a.seconds - opened))
    stop.set()
    for t in churners:
        t.join(30)

    marker = "stress-%d" % random.randrange(1 << 30)
    r = requests.post("http://127.0.0.1:%d/api/v1/channels/%s/messages" % (a.port, a.channel),
                      json={"content": marker}, timeout=30,
                      headers={"Authorization": "Bearer " + a.token})
    assert r.status_code == 201, r.text
    deadline = time.time() + 60
    got = sum(read_until(s, marker.encode(), deadline) for s in socks)
    for s in socks:
        s.close()
    health = requests.get("http://127.0.0.1:%d/api/health" % a.port, timeout=30).status_code
    print(json.dumps({"connections": len(socks), "received": got, "open_seconds": round(opened, 2),
                      "churned": counts["churned"], "churn_errors": counts["errors"],
                      "health": health}))
    return 0 if got == len(socks) == a.connections and health == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
