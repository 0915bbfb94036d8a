"""WebSocket fan-out (src/realtime/outq.c, websocket.c's rounds): one post
reaches every member's sockets as the same bytes, in whole frames, and none
of a non-member; a socket resuming from further back gets its own events in
order, with the edited text of a message edited since; and a socket that
stops reading, its frame half written, holds back none of the others.
(Every header size of the frames: tests/unit/test_realtime_outq.c.)"""
import socket
import time

from realtime_client import parse_server_frames, raw_handshake, Live
from client import WAIT_TIMEOUT, accounts
from test_files import new_channel


class RawReader:
    """A raw socket's text frames, parsed strictly (parse_server_frames)."""

    def __init__(self, server, token):
        self.sock = raw_handshake(server.port, token)
        self.sock.settimeout(0.2)
        self.buf = b""
        self.texts = []

    def pump(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        assert chunk, "the server closed the socket"
        frames, self.buf = parse_server_frames(self.buf + chunk)
        self.texts += [payload for op, payload in frames if op == 1]

    def wait_for(self, needle):
        """The first text frame holding needle (bytes)."""
        deadline = time.time() + WAIT_TIMEOUT
        while True:
            for t in self.texts:
                if needle in t:
                    return t
            assert time.time() < deadline, "no frame with %r; got %r" % (needle, self.texts)
            self.pump()

    def close(self):
        self.sock.close()


def test_one_post_reaches_every_member_socket_as_the_same_bytes(start_server):
    server = start_server(["--rate-limit", "0", "--ws-frame-rate", "0",
                           "--max-connections-per-ip", "0"])
    users = accounts(server, "foPoster", "foA", "foB", "foOut")
    ch = new_channel(users.foPoster)
    users.foA.ok("POST", "/channels/%s/join" % ch["id"])
    users.foB.ok("POST", "/channels/%s/join" % ch["id"])
    own = new_channel(users.foOut)  # the non-member's own channel
    members = [RawReader(server, users.foA.token) for _ in range(12)] + \
              [RawReader(server, users.foB.token) for _ in range(4)]
    outsiders = [RawReader(server, users.foOut.token) for _ in range(3)]
    for r in members + outsiders:
        r.wait_for(b'"type":"ready"')
    for size in (10, 3900):
        marker = ("fanout-%d-" % size).encode()
        text = marker.decode() + "y" * size
        users.foPoster.ok("POST", "/channels/%s/messages" % ch["id"], {"content": text}, 201)
        got = [r.wait_for(marker) for r in members]
        assert all(g == got[0] for g in got), "the subscribers got different bytes"
        assert b'"type":"message.created"' in got[0] and text.encode() in got[0]
    # The non-member's next event (its own channel's) comes after the
    # members' ones in the ring: seeing it, it has passed them, unsent.
    users.foOut.ok("POST", "/channels/%s/messages" % own["id"], {"content": "own-marker"}, 201)
    for r in outsiders:
        r.wait_for(b"own-marker")
        assert not any(b"fanout-" in t for t in r.texts), r.texts
    for r in members + outsiders:
        r.close()


def test_a_resumer_in_the_same_wake_gets_its_own_events_in_order(start_server):
    server = start_server(["--rate-limit", "0", "--ws-frame-rate", "0",
                           "--max-connections-per-ip", "0"])
    users = accounts(server, "frPoster", "frReader")
    ch = new_channel(users.frPoster)
    users.frReader.ok("POST", "/channels/%s/join" % ch["id"])
    live = [Live(server, users.frReader.token) for _ in range(5)]
    since = live[0].ready["seq"]
    path = "/channels/%s/messages" % ch["id"]
    posted = [users.frPoster.ok("POST", path, {"content": "resume-%d" % i}, 201)
              for i in range(3)]
    users.frPoster.ok("PUT", "/messages/%s" % posted[1]["id"], {"content": "resume-1 edited"})
    for lv in live:
        for i in range(3):
            lv.wait(lambda f: f["type"] == "message.created" and
                    f["data"]["id"] == posted[i]["id"])
    # Opened from before the posts while the live sockets are caught up: its
    # own fetch, the ring's order, the edited text instead of the old one.
    resumer = Live(server, users.frReader.token, since=since)
    seen = [resumer.wait(lambda f: f["type"] == "message.created" and
                         f["data"]["id"] == posted[i]["id"]) for i in range(3)]
    assert [f["seq"] for f in seen] == sorted(f["seq"] for f in seen)
    assert seen[1]["data"]["content"] == "resume-1 edited"
    # And a post after it reaches the resumer and the live ones alike.
    last = users.frPoster.ok("POST", path, {"content": "after"}, 201)
    for lv in live + [resumer]:
        lv.wait(lambda f: f["type"] == "message.created" and f["data"]["id"] == last["id"])
        lv.close()


def test_a_socket_that_stops_reading_does_not_hold_back_the_others(start_server):
    server = start_server(["--rate-limit", "0", "--ws-frame-rate", "0",
                           "--max-connections-per-ip", "0", "--ws-idle-timeout", "3600"])
    users = accounts(server, "fsPoster", "fsReader", "fsStuck")
    ch = new_channel(users.fsPoster)
    for who in (users.fsReader, users.fsStuck):
        who.ok("POST", "/channels/%s/join" % ch["id"])
    stuck = raw_handshake(server.port, users.fsStuck.token, rcvbuf=4096)  # never read
    readers = [RawReader(server, users.fsReader.token) for _ in range(4)]
    path = "/channels/%s/messages" % ch["id"]
    big = "z" * 3900
    # The stuck socket's 4 KiB buffer is full after the first frames: the
    # rest of its queue waits (a frame half written first), while the
    # readers get every frame, whole, as it is posted.
    for i in range(40):
        users.fsPoster.ok("POST", path, {"content": "slow-%02d-%s" % (i, big)}, 201)
        for r in readers:
            r.wait_for(("slow-%02d-" % i).encode())
    for r in readers:
        assert sum(b"slow-" in t for t in r.texts) == 40
        r.close()
    # The stuck one, reading now, gets its frames whole and in order.
    stuck.settimeout(WAIT_TIMEOUT)
    data, texts = b"", []
    while sum(b"slow-" in t for t in texts) < 40:
        chunk = stuck.recv(1 << 20)
        assert chunk, "the server closed the stuck socket"
        frames, data = parse_server_frames(data + chunk)
        texts += [p for op, p in frames if op == 1]
    assert [t.split(b"slow-")[1][:2] for t in texts if b"slow-" in t] == \
        [b"%02d" % i for i in range(40)]
    stuck.close()
    assert server.proc.poll() is None
