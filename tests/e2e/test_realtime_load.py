"""Real time under load and against clients that do not read: a burst of
simultaneous connections with churn beside it (the full run is `make stress`),
a slow reader that must get whole frames and a clean close, and consumers
that never read, which are dropped while the server's memory stays bounded."""
import os
import socket
import subprocess
import sys
import threading
import time

import requests

from conftest import SANITIZED
from realtime_client import parse_server_frames, raw_handshake
from client import WAIT_TIMEOUT, accounts
from test_files import new_channel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG = "x" * 3900


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def flood(who, channel, n):
    for i in range(n):
        who.ok("POST", "/channels/%s/messages" % channel["id"], {"content": "%d %s" % (i, BIG)},
               201)


# `make stress` sets PARLEY_STRESS=full: 1,000 connections and 64 churners for
# a minute (against the ASan build); make test runs a small burst.
FULL = os.environ.get("PARLEY_STRESS") == "full"
BURST = ("1000", "64", "60") if FULL else ("200", "16", "5")


def test_connection_burst_with_churn(start_server):
    # Every client comes from 127.0.0.1: no limit per address here.
    server = start_server(["--rate-limit", "0", "--ws-idle-timeout", "600",
                           "--max-connections", "4096", "--max-connections-per-ip", "0"])
    who = accounts(server, "ldBurst").ldBurst
    ch = new_channel(who)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "stress_ws.py"),
                          "--port", str(server.port), "--token", who.token, "--channel", ch["id"],
                          "--connections", BURST[0], "--churners", BURST[1],
                          "--seconds", BURST[2]],
                         capture_output=True, text=True, timeout=900)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"received": %s' % BURST[0] in out.stdout, out.stdout


def test_slow_reader_gets_whole_frames_then_a_clean_close(start_server):
    # The reader sends no frame at all: the idle timeout must not be what
    # ends it, however long the flood takes on a busy machine; nor the close
    # grace (a reader starved by a busy machine for 5 s would be reset, and
    # a reset may cut a frame).
    server = start_server(["--rate-limit", "0", "--ws-queue-bytes", "65536",
                           "--ws-idle-timeout", "3600", "--ws-close-grace", "600"])
    users = accounts(server, "ldPoster", "ldSlow")
    ch = new_channel(users.ldPoster)
    users.ldSlow.ok("POST", "/channels/%s/join" % ch["id"])
    sock = raw_handshake(server.port, users.ldSlow.token, rcvbuf=4096)
    data = bytearray()
    done = threading.Event()
    flooded = threading.Event()

    def slow_read():
        # While the flood goes on, 512 bytes every 0.1 s: progress well
        # within the server's 5 s grace, yet slower than any flood of
        # ~4 KB messages at more than one post a second, so the queue
        # fills whatever the machine's speed. Then read the rest at once.
        sock.settimeout(WAIT_TIMEOUT)
        while not done.is_set():
            try:
                chunk = sock.recv(512 if not flooded.is_set() else 65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            data.extend(chunk)
            if not flooded.is_set():
                flooded.wait(0.1)
            elif b"slow consumer" in data[-160:]:
                # The close frame may have come whole: it is the last thing
                # the server sends until the client answers it, so stop
                # reading then (else this waits out the socket timeout).
                got, rest = parse_server_frames(bytes(data))
                if rest == b"" and got and got[-1][0] == 8:
                    break
        done.set()

    reader = threading.Thread(target=slow_read)
    reader.start()
    flood(users.ldPoster, ch, 1500)
    flooded.set()
    reader.join(WAIT_TIMEOUT + 60)
    done.set()
    sock.close()
    frames, rest = parse_server_frames(bytes(data))
    assert rest == b"", "the stream ended inside a frame (%d bytes)" % len(rest)
    texts = [p for op, p in frames if op == 1]
    assert texts and all(p.startswith(b"{") and p.endswith(b"}") for p in texts)
    close = [p for op, p in frames if op == 8]
    # More was published than the queue and the kernel can hold: it was
    # closed as a slow consumer, after whole frames.
    assert close and close[0][:2] == (1008).to_bytes(2, "big"), close
    assert frames[-1][0] == 8
    assert b"slow consumer" in close[0]
    # /metrics counts it (the poster, the first account, is the admin)
    text = requests.get(server.url("/metrics"), timeout=30,
                        headers={"Authorization": "Bearer " + users.ldPoster.token}).text
    assert "\nparley_websocket_slow_consumers_closed_total 1\n" in text, text[-2000:]


def test_consumers_that_never_read_are_dropped_and_memory_stays_bounded(start_server):
    # Durability is not what is looked at here (--fsync none makes the
    # flood quick), nor the grace's length (1 s instead of 5).
    server = start_server(["--rate-limit", "0", "--ws-queue-bytes", "65536", "--fsync", "none",
                           "--ws-close-grace", "1"])
    users = accounts(server, "ldPost2", "ldDeaf")
    ch = new_channel(users.ldPost2)
    users.ldDeaf.ok("POST", "/channels/%s/join" % ch["id"])
    deaf = [raw_handshake(server.port, users.ldDeaf.token, rcvbuf=4096) for _ in range(8)]
    before = rss_kib(server.pid())
    flood(users.ldPost2, ch, 1500)  # ~6 MB to each of the 8 = ~47 MB if kept
    grown_mib = (rss_kib(server.pid()) - before) / 1024
    # ASan keeps freed memory in quarantine (256 MB): RSS says nothing there.
    if not SANITIZED:
        assert grown_mib < 24, grown_mib
    # After the grace period (1 s here) without progress they are reset or closed:
    # each is read until it ends, within a generous deadline.
    for s in deaf:
        s.settimeout(5 + WAIT_TIMEOUT)
        ended = False
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    ended = True
                    break
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            pass
        s.close()
        assert ended, "a consumer that never read is still connected"
