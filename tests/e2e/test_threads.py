"""libmicrohttpd runs in thread-pool mode: the number of threads is fixed by
--threads and does not grow with connections (thread-per-connection would
add one per client)."""
import socket
import time

import requests


def thread_count(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_thread_count_is_fixed_under_many_connections(start_server):
    server = start_server(["--threads", "4"])
    before = thread_count(server.pid())
    # 4 pool threads, the main thread, the log's writer, the snapshot
    # thread, the WebSocket loop and its 4 send_message workers, the
    # retention sweep; nothing per connection.
    assert before <= 4 + 3 + 5 + 1, before
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
