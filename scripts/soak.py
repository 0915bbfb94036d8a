#!/usr/bin/python3
"""Soak (`make soak`): SOAK_SECONDS (default 600) of mixed load against one
server, sampling its RSS and open descriptors every few seconds; prints the
curve (one row per tenth of the run: a minute of the default run) and fails
when the server leaks or errs.

Load: REST writers over a bounded working set (edits, reaction toggles,
a post a second each, history reads, searches, an upload and its delete now
and then), so that the data the server must keep grows little; WebSocket
churn (connect, wait for ready, subscribe, close) from several threads; SSE
churn (open the stream, read its first bytes, close); one long-lived
WebSocket that must keep receiving the writers' events. SOAK_LOAD=sse runs
the SSE churn alone (for allocator measurements).

Fails when: any request answers 5xx or fails unexpectedly; the median RSS of
the last tenth is above 1.3x the median of the second tenth (the first is
warm-up); the descriptors are not back to their baseline (+2) once the load
stops; the long-lived WebSocket stopped receiving events.

    scripts/soak.py [seconds]   (PARLEY_BIN: the binary, default bin/parley;
                                 the server inherits the environment, e.g.
                                 MALLOC_ARENA_MAX)
"""
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests
import websocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, os.environ.get("PARLEY_BIN", "bin/parley"))
API = "/api/v1"
PASSWORD = "correct horse battery"
SAMPLE_EVERY = 2.0
RSS_FACTOR = 1.3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_sample(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss / 1024.0, len(os.listdir("/proc/%d/fd" % pid))


class Load:
    def __init__(self, base, port):
        self.base, self.port = base, port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.counts = {}
        self.events_seen = 0

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def error(self, text):
        with self.lock:
            self.errors.append(text)

    def call(self, s, token, method, path, ok=(200, 201, 204), **kw):
        try:
            r = s.request(method, self.base + API + path, timeout=30,
                          headers={"Authorization": "Bearer " + token}, **kw)
        except requests.RequestException as e:
            self.error("%s %s: %s" % (method, path, e))
            return None
        if r.status_code not in ok:
            self.error("%s %s: %s %s" % (method, path, r.status_code, r.text[:200]))
            return None
        self.count(method)
        return r


def writer(load, token, channel, mids, seed):
    rng = random.Random(seed)
    s = requests.Session()
    n = 0
    last_post = time.time()
    while not load.stop.is_set():
        n += 1
        op = rng.random()
        mid = rng.choice(mids)
        if time.time() - last_post > 1.0:
            last_post = time.time()
            load.call(s, token, "POST", "/channels/%s/messages" % channel,
                      json={"content": "soak post %d %s" % (n, seed)})
        elif op < 0.4:
            load.call(s, token, "PUT", "/messages/%s" % mid,
                      json={"content": "soak edit %d of %s" % (n % 7, mid)})
        elif op < 0.6:
            emoji = rng.choice(("👍", "ok"))
            if load.call(s, token, "POST", "/messages/%s/reactions" % mid, ok=(200, 201, 409),
                         json={"emoji": emoji}) is not None:
                load.call(s, token, "DELETE", "/messages/%s/reactions/%s"
                          % (mid, requests.utils.quote(emoji, safe="")), ok=(200, 204, 404))
        elif op < 0.8:
            load.call(s, token, "GET", "/channels/%s/messages?limit=50" % channel)
        elif op < 0.95:
            load.call(s, token, "GET", "/search/messages?q=soak%%20edit&limit=20")
        else:
            r = load.call(s, token, "POST", "/files", data={"channel_id": channel},
                          files={"file": ("soak.txt", b"soak file %d\n" % (n % 5), "text/plain")})
            if r is not None:
                load.call(s, token, "DELETE", "/files/%s" % r.json()["id"])
        load.stop.wait(0.01)  # pacing (not a wait on anything): ends at once on stop


def ws_url(load, token):
    return "ws://127.0.0.1:%d%s/ws?token=%s" % (load.port, API, token)


def ws_churn(load, token, channel):
    while not load.stop.is_set():
        try:
            ws = websocket.create_connection(ws_url(load, token), timeout=30)
            try:
                while json.loads(ws.recv())["type"] != "ready":
                    pass
                ws.send(json.dumps({"type": "subscribe", "channels": [channel]}))
                ws.send(json.dumps({"type": "ping"}))
            finally:
                ws.close()
            load.count("ws")
        except Exception as e:  # noqa: BLE001 - every failure is an error of the soak
            load.error("ws churn: %r" % e)
        load.stop.wait(0.02)  # pacing


def sse_churn(load, token):
    s = requests.Session()
    while not load.stop.is_set():
        try:
            with s.get(load.base + API + "/events", stream=True, timeout=30,
                       headers={"Authorization": "Bearer " + token,
                                "Accept": "text/event-stream"}) as r:
                if r.status_code != 200:
                    load.error("sse: %s" % r.status_code)
                else:
                    next(r.iter_content(1))
                    load.count("sse")
        except Exception as e:  # noqa: BLE001
            load.error("sse churn: %r" % e)
        load.stop.wait(0.02)  # pacing


def listener(load, token, channel):
    try:
        ws = websocket.create_connection(ws_url(load, token), timeout=5)
        ws.send(json.dumps({"type": "subscribe", "channels": [channel]}))
        while not load.stop.is_set():
            try:
                frame = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if frame.get("type", "").startswith("message."):
                with load.lock:
                    load.events_seen += 1
        ws.close()
    except Exception as e:  # noqa: BLE001
        load.error("listener: %r" % e)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else float(os.environ.get("SOAK_SECONDS",
                                                                                600))
    mode = os.environ.get("SOAK_LOAD", "mixed")
    work = tempfile.mkdtemp(prefix="parley-soak-")
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    log_path = os.path.join(work, "server.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1", "--port", str(port),
                             "--data-dir", os.path.join(work, "data"), "--rate-limit", "0",
                             "--access-token-ttl", str(86400)],
                            stdout=log, stderr=subprocess.STDOUT)
    print("soak: %s for %.0f s (%s load), MALLOC_ARENA_MAX=%s, server pid %d"
          % (BIN, seconds, mode, os.environ.get("MALLOC_ARENA_MAX", "unset"), proc.pid),
          flush=True)
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(base + "/api/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.time() > deadline or proc.poll() is not None:
            sys.exit("soak: server did not start (log %s)" % log_path)
        time.sleep(0.05)
    load = Load(base, port)
    tokens = []
    for n in range(6):
        r = requests.post(base + API + "/auth/register", timeout=30,
                          json={"username": "soak%d" % n, "email": "soak%d@example.org" % n,
                                "password": PASSWORD})
        assert r.status_code == 201, r.text
        tokens.append(r.json()["access_token"])
    s = requests.Session()
    r = load.call(s, tokens[0], "POST", "/channels", json={"name": "soak"})
    channel = r.json()["id"]
    for t in tokens[1:]:
        load.call(s, t, "POST", "/channels/%s/join" % channel)
    threads = []
    if mode == "sse":
        threads += [threading.Thread(target=sse_churn, args=(load, tokens[n])) for n in range(4)]
    else:
        mids = {}
        for n in range(3):
            mids[n] = [load.call(s, tokens[n], "POST", "/channels/%s/messages" % channel,
                                 json={"content": "soak seed %d %d" % (n, i)}).json()["id"]
                       for i in range(30)]
        threads += [threading.Thread(target=writer, args=(load, tokens[n], channel, mids[n], n))
                    for n in range(3)]
        threads += [threading.Thread(target=ws_churn, args=(load, tokens[3 + n % 2], channel))
                    for n in range(3)]
        threads += [threading.Thread(target=sse_churn, args=(load, tokens[5])) for _ in range(2)]
        threads.append(threading.Thread(target=listener, args=(load, tokens[5], channel)))
    _, fd_base = proc_sample(proc.pid)
    samples = []  # (t, rss MiB, fds)
    start = time.time()
    for t in threads:
        t.start()
    while time.time() - start < seconds:
        if proc.poll() is not None:
            load.error("the server exited %s" % proc.returncode)
            break
        samples.append((time.time() - start,) + proc_sample(proc.pid))
        load.stop.wait(SAMPLE_EVERY)  # the sampling period
    events_before = load.events_seen
    load.stop.set()
    for t in threads:
        t.join()
    # Descriptors back to the baseline once the churn is over.
    fds_end = None
    deadline = time.time() + 30
    while proc.poll() is None and time.time() < deadline:
        _, fds_end = proc_sample(proc.pid)
        if fds_end <= fd_base + 2:
            break
        time.sleep(0.2)
    # The curve, in tenths of the run.
    tenth = seconds / 10
    rows = []
    print("soak: %-12s %8s %8s %8s %6s %6s" % ("window", "rss min", "rss med", "rss max",
                                            "fd med", "fd max"))
    for k in range(10):
        part = [x for x in samples if k * tenth <= x[0] < (k + 1) * tenth]
        if not part:
            continue
        rss = [x[1] for x in part]
        fds = [x[2] for x in part]
        rows.append(statistics.median(rss))
        print("soak: %5.0f-%-5.0fs %7.1fM %7.1fM %7.1fM %6.0f %6d"
              % (k * tenth, (k + 1) * tenth, min(rss), statistics.median(rss), max(rss),
                 statistics.median(fds), max(fds)))
    print("soak: requests %s; listener saw %d message events"
          % (", ".join("%s %d" % kv for kv in sorted(load.counts.items())), events_before))
    problems = list(load.errors[:20])
    if len(load.errors) > 20:
        problems.append("... %d errors in all" % len(load.errors))
    if len(rows) >= 3 and rows[-1] > RSS_FACTOR * rows[1]:
        problems.append("RSS grew: last tenth median %.1f MiB > %.1fx second tenth %.1f MiB"
                        % (rows[-1], RSS_FACTOR, rows[1]))
    if fds_end is None or fds_end > fd_base + 2:
        problems.append("descriptors not back to baseline: %s, baseline %d" % (fds_end, fd_base))
    if mode != "sse" and events_before == 0:
        problems.append("the long-lived WebSocket received no event")
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    log.close()
    if code != 0:
        problems.append("server exited %s after SIGTERM" % code)
    print("soak: fds baseline %d, after the load %s; %d errors" % (fd_base, fds_end,
                                                                 len(load.errors)))
    for p in problems:
        print("soak: " + p)
    if problems:
        print("soak: FAILED (server log %s)" % log_path)
        print("soak: 0 passed, 1 failed")
        sys.exit(1)
    print("soak: 1 passed, 0 failed")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
