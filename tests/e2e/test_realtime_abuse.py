"""Real time against clients that abuse it (issue 15): a ping flood from a
client that never reads, floods of unsolicited pongs and of text frames,
connect churn (the per-user connect budget, presence debounce and the resume
ring), access-token expiry on a live WebSocket and event stream, and a
read-only API key that tries to write. Loops are bounded in count and time;
nothing asserts a duration."""
import json
import socket
import threading
import time

import requests
import websocket

from conftest import SANITIZED
from realtime_client import API, Live, Stream, client_frame, raw_handshake, ws_url
from client import WAIT_TIMEOUT, accounts, jwt_claims, wait_expired, wait_past
from test_files import new_channel
from test_files_memory import status_kb


def room(server, *names):
    users = accounts(server, *names)
    first = getattr(users, names[0])
    ch = new_channel(first)
    for n in names[1:]:
        getattr(users, n).ok("POST", "/channels/%s/join" % ch["id"])
    return users, ch


def post(who, ch, content):
    return who.ok("POST", "/channels/%s/messages" % ch["id"], {"content": content}, 201)


def flood_until_reset(sock, frame, seconds=60, batch=500):
    """Sends `frame` over and over, never reading, until the server resets
    the connection (True) or `seconds` pass (False). Returns (reset, sent)."""
    data = frame * batch
    sock.settimeout(10)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        try:
            sock.sendall(data)
            sent += batch
        except (ConnectionResetError, BrokenPipeError):
            return True, sent
        except socket.timeout:
            return False, sent  # the server stopped reading but kept it open
    return False, sent


def test_ping_flood_is_reset_and_memory_stays_bounded(start_server):
    server = start_server()
    u, ch = room(server, "abPf", "abPw", "abPp")
    watcher = Live(server, u.abPw.token)
    try:
        before = status_kb(server.pid(), "VmRSS")
        flooder = raw_handshake(server.port, u.abPf.token, rcvbuf=4096)
        reset, sent = flood_until_reset(flooder, client_frame(0x9, b"p" * 125))
        flooder.close()
        assert reset, "a client sending %d pings and reading nothing was not reset" % sent
        # Reset soon after its budget (20 a second, bursts of 40, a flood
        # closed some 260 frames in): what it got to send is the kernel's
        # buffers' worth, not the 8 million pings (1 GiB) of before.
        assert sent < 200000, sent
        if not SANITIZED:  # ASan's allocator keeps freed memory in quarantine
            # The peak: the queue is freed with the connection.
            grown = status_kb(server.pid(), "VmHWM") - before
            assert grown < 64 << 20, "RSS peaked %d bytes higher under a ping flood" % grown
        # Everyone else is still served.
        m = post(u.abPp, ch, "after the ping flood")
        watcher.wait_type("message.created", id=m["id"])
    finally:
        watcher.close()


def test_unsolicited_pongs_count_against_the_frame_budget(start_server):
    server = start_server()
    u, ch = room(server, "abUa", "abUb", "abUw", "abUp")
    watcher = Live(server, u.abUw.token)
    try:
        socks = [raw_handshake(server.port, who.token) for who in (u.abUa, u.abUb)]
        results = []

        def flood(s):
            results.append(flood_until_reset(s, client_frame(0xA, b"q" * 64)))

        threads = [threading.Thread(target=flood, args=(s,)) for s in socks]
        for t in threads:
            t.start()
        # A third client's messages are delivered while the two flood.
        m = post(u.abUp, ch, "during the pong flood")
        watcher.wait_type("message.created", id=m["id"])
        for t in threads:
            t.join()
        for s in socks:
            s.close()
        assert all(reset for reset, _ in results), results
    finally:
        watcher.close()


def test_text_floods_from_two_sockets_do_not_starve_a_third(start_server):
    # The frame budget off: the two flooders are never closed, so only the
    # bound on bytes read per wake-up keeps the loop serving the others.
    server = start_server(["--ws-frame-rate", "0", "--ws-queue-bytes", str(64 << 20)])
    u, ch = room(server, "abTa", "abTb", "abTw", "abTp")
    watcher = Live(server, u.abTw.token)
    stop = threading.Event()
    errors = []

    def flood(who):
        try:
            ws = websocket.create_connection(ws_url(server, who.token), timeout=30)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
            return
        drain = threading.Thread(target=lambda: _drain(ws, stop), daemon=True)
        drain.start()
        frame = json.dumps({"type": "nonsense", "pad": "x" * 2000})
        try:
            for _ in range(20000):
                if stop.is_set():
                    break
                ws.send(frame)
        except Exception:  # noqa: BLE001 (closed at the end)
            pass
        stop.wait(WAIT_TIMEOUT * 3)
        ws.close()

    threads = [threading.Thread(target=flood, args=(who,)) for who in (u.abTa, u.abTb)]
    try:
        for t in threads:
            t.start()
        for i in range(3):
            m = post(u.abTp, ch, "delivered during the flood %d" % i)
            watcher.wait_type("message.created", id=m["id"])
        assert not errors, errors
    finally:
        stop.set()
        for t in threads:
            t.join()
        watcher.close()


def _drain(ws, stop):
    while not stop.is_set():
        try:
            ws.settimeout(1)
            ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        except Exception:  # noqa: BLE001
            return


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_connect_budget_refuses_the_next_connect_of_a_user(start_server):
    # 2 a minute: the next token comes 30 s after one is taken.
    server = start_server(["--realtime-connect-rate", "2"])
    u = accounts(server, "abCa", "abCb")
    for _ in range(2):
        Live(server, u.abCa.token).close()
    # The third in the minute: a handshake with credentials gets 429 ...
    r = requests.get(server.url(API + "/ws"), params={"token": u.abCa.token}, headers=UPGRADE,
                     timeout=10)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    # ... an auth frame an error and close 4029, an event stream 429.
    ws = Live(server)
    ws.send({"type": "auth", "token": "Bearer " + u.abCa.token})
    assert ws.wait_type("error")["data"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert ws.closed_with()[0] == 4029
    r = requests.get(server.url(API + "/events"),
                     headers={"Authorization": "Bearer " + u.abCa.token}, timeout=10)
    assert r.status_code == 429, r.text
    # Another user is not affected.
    Live(server, u.abCb.token).close()


def test_connect_churn_neither_floods_the_ring_nor_writes_each_close(start_server):
    server = start_server(["--event-ring", "64"])
    u, ch = room(server, "abRa", "abRb")
    first = Live(server, u.abRa.token)
    m = post(u.abRb, ch, "before the churn")
    seen = first.wait_type("message.created", id=m["id"])
    first.close()
    # 100 connect/close cycles of a peer: without a debounce, 200 presence
    # events, three times the ring.
    for _ in range(100):
        Live(server, u.abRb.token).close()
    resumed = Live(server, u.abRa.token, since=seen["seq"])
    try:
        assert resumed.ready["data"]["resumed"] is True
        frames = resumed.drain(1.0)
        assert not [f for f in frames if f["type"] == "error"], frames
        presence = [f for f in frames if f["type"] == "presence" and
                    f["data"]["user_id"] == u.abRb.id]
        assert len(presence) <= 2, presence
        # Once the churn stops, one offline (after the debounce), last_seen set.
        f = resumed.wait_type("presence", user_id=u.abRb.id, status="offline")
        assert f["data"]["last_seen"]
        prof = u.abRa.ok("GET", "/users/%s" % u.abRb.id)
        assert prof["status"] == "offline" and prof["last_seen"]
    finally:
        resumed.close()


def test_presence_reconnect_within_the_debounce_publishes_nothing(start_server):
    server = start_server()
    u, ch = room(server, "abDa", "abDb")
    watch = Live(server, u.abDa.token)
    try:
        b = Live(server, u.abDb.token)
        watch.wait_type("presence", user_id=u.abDb.id, status="online")
        b.close()
        b = Live(server, u.abDb.token)  # back well within the debounce
        m = post(u.abDb, ch, "marker")
        watch.wait_type("message.created", id=m["id"])
        b.close()
        f = watch.wait_type("presence", user_id=u.abDb.id)
        assert f["data"]["status"] == "offline"
        # Neither an offline nor an online was told for the quick reconnect.
        assert not [x for x in watch.kept if x["type"] == "presence" and
                    x["data"]["user_id"] == u.abDb.id], watch.kept
    finally:
        watch.close()


def fresh_pair(server, who):
    r = requests.post(server.url(API + "/auth/refresh"),
                      json={"refresh_token": who.pair["refresh_token"]}, timeout=30)
    assert r.status_code == 200, r.text
    who.pair = r.json()
    return who.pair["access_token"]


def test_websocket_and_stream_end_at_token_expiry_unless_reauthenticated(start_server):
    server = start_server(["--access-token-ttl", "4"])
    u, ch = room(server, "abEa", "abEb")
    token = fresh_pair(server, u.abEa)
    first_b = fresh_pair(server, u.abEb)
    expiring = Live(server, token)
    renewed = Live(server, first_b)
    stream = Stream(server, token)
    try:
        assert stream.next_event()[0] == "ready"
        # Renewed 2 s before expiry (exp is in whole seconds: a token made
        # at once would expire with the first).
        wait_past(jwt_claims(first_b)["exp"] - 2, margin=0)
        renewed.send({"type": "auth", "token": "Bearer " + fresh_pair(server, u.abEb), "ref": 1})
        renewed.wait_type("authenticated")
        wait_expired(token)
        f = expiring.wait_type("error")
        assert f["data"]["code"] == "TOKEN_EXPIRED"
        assert expiring.closed_with() == (4001, "token expired")
        _, data = stream.wait("error")
        assert data["code"] == "TOKEN_EXPIRED"
        # The connection that sent a fresh token before expiry goes on; the
        # old token's expiry is past for it too.
        wait_expired(first_b)
        renewed.send({"type": "ping", "ref": "still"})
        renewed.wait_type("pong")
    finally:
        stream.close()
        expiring.close()
        renewed.close()


def test_read_only_api_key_cannot_type_or_post(start_server):
    server = start_server()
    u, ch = room(server, "abKa", "abKw")
    ro = u.abKa.ok("POST", "/auth/api-keys", {"name": "ro", "permissions": ["read"]}, 201)
    rw = u.abKa.ok("POST", "/auth/api-keys", {"name": "rw", "permissions": ["read", "write"]},
                   201)
    watch = Live(server, u.abKw.token)
    reader = Live(server, ro["key"])
    writer = Live(server, rw["key"])
    try:
        reader.send({"type": "typing_start", "channel_id": ch["id"], "ref": "t"})
        f = reader.wait_type("error")
        assert f["data"]["code"] == "INSUFFICIENT_PERMISSIONS" and f["data"]["ref"] == "t"
        reader.send({"type": "send_message", "ref": "m",
                     "data": {"channel_id": ch["id"], "content": "from a read-only key"}})
        f = reader.wait_type("error")
        assert f["data"]["code"] == "INSUFFICIENT_PERMISSIONS" and f["data"]["ref"] == "m"
        # The key with write may (the control that the check is not blanket).
        writer.send({"type": "typing_start", "channel_id": ch["id"]})
        f = watch.wait_type("typing", user_id=u.abKa.id)
        assert f["data"]["is_typing"] is True
        # Nothing was posted by the read-only key.
        msgs = u.abKw.ok("GET", "/channels/%s/messages" % ch["id"])
        assert "from a read-only key" not in json.dumps(msgs)
    finally:
        watch.close()
        reader.close()
        writer.close()
