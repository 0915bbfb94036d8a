"""libmicrohttpd runs in thread-pool mode: the number of threads is fixed by
--threads and does not grow with connections (thread-per-connection would
add one per client)."""
import os
import socket

import requests

from client import wait_until

# Threads that run once at start-up and end by themselves: recovery's
# applier. (The search index's thread builds the index after recovery and
# then stays, keeping it up to date.)
TRANSIENT = {"parley-replay"}


def thread_count(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # ended meanwhile
            pass
    return names


def settled_thread_count(pid):
    """The thread count once the start-up threads have ended."""
    wait_until(lambda: not TRANSIENT & set(thread_names(pid)),
               what="the start-up threads to end")
    return thread_count(pid)


def test_thread_count_is_fixed_under_many_connections(start_server):
    server = start_server(["--threads", "4"])
    before = settled_thread_count(server.pid())
    # 4 pool threads, the main thread, the log's writer, the log lines'
    # writer, the snapshot thread, the search index's thread, the WebSocket
    # loop and its 4 send_message workers, the retention sweep, the gate's
    # connection sweeper, the presence thread; nothing per connection.
    assert before <= 4 + 5 + 5 + 3, before
    conns = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            conns.append(s)
        answered = 0
        for s in conns:
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            answered += data.startswith(b"HTTP/1.1 200")
        assert answered == 200
        during = thread_count(server.pid())
        assert during == before, (before, during)
    finally:
        for s in conns:
            s.close()
    assert requests.get(server.url("/api/health")).status_code == 200
