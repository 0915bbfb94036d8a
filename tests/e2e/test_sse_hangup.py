"""Event streams whose client hung up are closed without waiting for the
next ping (the soak's finding: libmicrohttpd does not watch a suspended
stream, so SSE churn held thousands of sockets and their memory until each
stream's next ping).

With the ping interval set far beyond the test (--sse-ping-interval 3600)
and nothing published, 40 streams are opened, each reads its opening, and
the client closes them all. The server's descriptor count must come back to
where it was before they opened (within a generous deadline: the server
looks at suspended streams every few seconds); a fresh stream is then
still served. Before the fix the descriptors stayed up for the hour."""
import os

from client import API, register, wait_until
from realtime_client import Stream

STREAMS = 40


def fds(server):
    return len(os.listdir("/proc/%d/fd" % server.pid()))


def test_hung_up_streams_release_their_sockets(start_server):
    server = start_server(args=["--sse-ping-interval", "3600"])
    alice = register(server, "alice")
    # A stream that opened and closed, so that lazily made descriptors exist.
    first = Stream(server, alice.token)
    first.next_event()
    first.close()
    wait_until(lambda: fds(server) <= 200, what="descriptors settle")
    baseline = fds(server)
    streams = []
    for _ in range(STREAMS):
        s = Stream(server, alice.token)
        s.next_event()  # the opening: the stream is set up and then suspended
        streams.append(s)
    assert fds(server) >= baseline + STREAMS // 2, (fds(server), baseline)
    for s in streams:
        s.close()  # an unfinished stream: its connection is closed
    wait_until(lambda: fds(server) <= baseline + 2,
               what=lambda: "descriptors %d, baseline %d" % (fds(server), baseline))
    again = Stream(server, alice.token)
    again.next_event()
    again.close()
