"""/api/v1/admin/blocked-ips end to end (docs/admin.md, "Blocked addresses
and proxies"): a blocked client address is answered 403 IP_BLOCKED before any
other work (authentication, its body, the WebSocket and event-stream
upgrades) while other addresses are served; live connections from an address
ended when it is blocked; CIDR ranges; expiry by the clock;
unblocking by network or id; every bad input refused with nothing changed;
blocks surviving a clean restart and a SIGKILL; X-Forwarded-For / Forwarded
believed only from --trusted-proxies.

Loopback is 127.0.0.0/8: a client binding 127.0.0.2 as its source address is
"another client" of the server on 127.0.0.1."""
import json
import socket
import time
import urllib.parse

import pytest
import requests

import websocket

from client import API, PASSWORD, register, rfc3339, wait_past, wait_until
from client import session_from as from_addr
from conftest import assert_error, module_server, parse_raw_response
from realtime_client import WAIT, Live, Stream, ws_url


def health(server, addr="127.0.0.1", headers=None):
    return from_addr(addr).get(server.url("/api/health"), headers=headers, timeout=30)


def raw_from(server, addr, data, timeout=10):
    """Sends raw bytes from source `addr` and reads the answer until the
    server closes the connection: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout,
                                  source_address=(addr, 0)) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                piece = s.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            out += piece
    return parse_raw_response(out)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "blocked-ips")


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "root")
    assert "admin" in admin.user["roles"]
    return admin


def block(admin, ip, **extra):
    body = {"ip": ip}
    body.update(extra)
    return admin.ok("POST", "/admin/blocked-ips", body, 201)


def unblock(admin, name):
    admin.ok("DELETE", "/admin/blocked-ips/" + urllib.parse.quote(name, safe=""), status=204)


def listed(admin, **params):
    r = admin.get("/admin/blocked-ips", **params)
    assert r.status_code == 200, r.text
    return r.json()


def assert_blocked(resp_or_tuple):
    err = assert_error(resp_or_tuple, 403, "IP_BLOCKED")
    assert err["details"] == {}
    return err


# ---- blocking ------------------------------------------------------------------

def test_a_blocked_address_is_refused_and_others_are_served(srv, root):
    assert health(srv, "127.0.0.2").status_code == 200
    b = block(root, "127.0.0.2", reason="scraper")
    assert b["ip"] == "127.0.0.2" and b["family"] == "ipv4" and b["prefix_length"] == 32
    assert b["reason"] == "scraper" and b["expires_at"] is None and b["is_active"]
    assert b["created_by"] == root.id and b["id"].startswith("ipb_")
    r = health(srv, "127.0.0.2")
    assert_blocked(r)
    assert r.headers.get("Connection", "").lower() == "close"
    assert "X-RateLimit-Limit" not in r.headers
    assert health(srv, "127.0.0.1").status_code == 200
    assert health(srv, "127.0.0.3").status_code == 200
    # every route, even a missing one or an authenticated one, gets the same
    s = from_addr("127.0.0.2")
    assert_blocked(s.get(srv.url("/no/such/path"), timeout=30))
    assert_blocked(s.get(srv.url(API + "/users/me"), timeout=30,
                         headers={"Authorization": "Bearer " + root.token}))
    body = listed(root)
    assert [x["ip"] for x in body["blocked_ips"]] == ["127.0.0.2"]
    assert body["total"] == 1 and body["page"] == 1 and body["pages"] == 1
    unblock(root, "127.0.0.2")
    assert health(srv, "127.0.0.2").status_code == 200
    assert listed(root)["total"] == 0


def test_a_cidr_range_blocks_every_address_in_it(srv, root):
    b = block(root, "127.0.10.0/24")
    assert b["ip"] == "127.0.10.0/24" and b["prefix_length"] == 24
    assert_blocked(health(srv, "127.0.10.1"))
    assert_blocked(health(srv, "127.0.10.254"))
    assert health(srv, "127.0.11.1").status_code == 200
    # a longer and a shorter block of the same addresses: removing one
    # leaves the other in force
    block(root, "127.0.10.7")
    unblock(root, "127.0.10.0/24")
    assert_blocked(health(srv, "127.0.10.7"))
    assert health(srv, "127.0.10.8").status_code == 200
    unblock(root, "127.0.10.7")
    assert health(srv, "127.0.10.7").status_code == 200


def test_ipv6_and_mapped_forms_are_normalised(srv, root):
    b = block(root, "2001:DB8:0::/48", reason="v6")
    assert b["ip"] == "2001:db8::/48" and b["family"] == "ipv6" and b["prefix_length"] == 48
    m = block(root, "::ffff:127.0.20.1")
    assert m["ip"] == "127.0.20.1" and m["family"] == "ipv4"
    assert_blocked(health(srv, "127.0.20.1"))
    # the same blocks named in other spellings
    assert_error(root.post("/admin/blocked-ips", {"ip": "2001:db8::0/48"}), 409, "CONFLICT")
    assert_error(root.post("/admin/blocked-ips", {"ip": "127.0.20.1/32"}), 409, "CONFLICT")
    unblock(root, "2001:db8:0:0::/48")
    unblock(root, "::ffff:127.0.20.1")
    assert listed(root)["total"] == 0


def test_a_blocked_client_is_refused_before_any_work(srv, root):
    """Login, the WebSocket and event-stream upgrades and a huge body: 403
    from the headers alone."""
    register(srv, "victim")
    block(root, "127.0.0.5")
    s = from_addr("127.0.0.5")
    assert_blocked(s.post(srv.url(API + "/auth/login"),
                          json={"username": "victim", "password": PASSWORD}, timeout=30))
    assert_blocked(s.post(srv.url(API + "/auth/register"),
                          json={"username": "sneaky", "email": "s@example.com",
                                "password": PASSWORD}, timeout=30))
    assert requests.post(srv.url(API + "/auth/login"),
                         json={"username": "sneaky", "password": PASSWORD},
                         timeout=30).status_code == 401  # never registered
    ws = ("GET /api/v1/ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          "Sec-WebSocket-Version: 13\r\n\r\n" % root.token).encode()
    assert_blocked(raw_from(srv, "127.0.0.5", ws))
    sse = ("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
           "Authorization: Bearer %s\r\n\r\n" % root.token).encode()
    assert_blocked(raw_from(srv, "127.0.0.5", sse))
    # headers announcing a body that never comes: the answer comes anyway,
    # and the connection is closed without the body being read; over the
    # body limit too, the block is what answers (it is judged first)
    for length in (1000, 100000000):
        head = ("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length)
        st, headers, body = raw_from(srv, "127.0.0.5", head.encode())
        assert_blocked((st, headers, body))
        assert headers.get("connection", "").lower() == "close"
    unblock(root, "127.0.0.5")
    assert health(srv, "127.0.0.5").status_code == 200


class LiveFrom(Live):
    """A WebSocket from source address `addr`."""

    def __init__(self, server, token, addr):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT,
                                        source_address=(addr, 0))
        self.ws = websocket.create_connection(ws_url(server, token), timeout=WAIT, socket=sock)
        self.kept = []
        self.ready = self.wait(lambda f: f["type"] == "ready")


class StreamFrom(Stream):
    """An event stream from source address `addr`."""

    def __init__(self, server, token, addr):
        self.r = from_addr(addr).get(server.url(API + "/events"), stream=True, timeout=WAIT,
                                     headers={"Authorization": "Bearer " + token,
                                              "Accept": "text/event-stream"})
        assert self.r.status_code == 200, self.r.text
        self.lines = self.r.iter_lines(decode_unicode=True)


def test_a_block_ends_live_connections_from_the_address(srv, root):
    who = register(srv, "live_blocked")
    live = LiveFrom(srv, who.token, "127.0.0.9")
    stream = StreamFrom(srv, who.token, "127.0.0.9")
    other = LiveFrom(srv, who.token, "127.0.0.10")
    try:
        stream.wait("ready")
        block(root, "127.0.0.9")
        live.wait(lambda f: f["type"] == "error" and
                  (f.get("data") or f).get("code") == "IP_BLOCKED")
        assert live.closed_with() == (4003, "address blocked")
        _, data = stream.wait("error")
        assert data["code"] == "IP_BLOCKED"
        # the same account from another address stays connected
        other.send({"type": "ping"})
        other.wait_type("pong")
    finally:
        live.close()
        stream.close()
        other.close()
    unblock(root, "127.0.0.9")


def test_a_timed_block_ends_by_itself(srv, root):
    until = time.time() + 2
    b = block(root, "127.0.0.7", expires_at=rfc3339(until))
    assert b["expires_at"] == rfc3339(until) and b["is_active"]
    assert_blocked(health(srv, "127.0.0.7"))
    assert [x["ip"] for x in listed(root, status="active")["blocked_ips"]] == ["127.0.0.7"]
    wait_past(until)
    wait_until(lambda: health(srv, "127.0.0.7").status_code == 200, what="the block expired")
    body = listed(root)
    assert [(x["ip"], x["is_active"]) for x in body["blocked_ips"]] == [("127.0.0.7", False)]
    assert listed(root, status="active")["total"] == 0
    # an expired block's network may be blocked again: the same block, renewed
    again = block(root, "127.0.0.7")
    assert again["id"] == b["id"] and again["is_active"] and again["expires_at"] is None
    assert_blocked(health(srv, "127.0.0.7"))
    unblock(root, b["id"])
    assert health(srv, "127.0.0.7").status_code == 200


def test_unblock_by_id_by_encoded_slash_and_by_two_segments(srv, root):
    a = block(root, "127.0.30.0/24")
    block(root, "127.0.31.0/24")
    block(root, "127.0.32.0/24")
    root.ok("DELETE", "/admin/blocked-ips/" + a["id"], status=204)
    root.ok("DELETE", "/admin/blocked-ips/127.0.31.0%2F24", status=204)
    root.ok("DELETE", "/admin/blocked-ips/127.0.32.0/24", status=204)
    assert listed(root)["total"] == 0
    for addr in ("127.0.30.1", "127.0.31.1", "127.0.32.1"):
        assert health(srv, addr).status_code == 200


def test_paging(srv, root):
    for i in range(5):
        block(root, "127.0.40.%d" % i)
    everything = [x["ip"] for x in listed(root)["blocked_ips"]]
    assert sorted(everything) == ["127.0.40.%d" % i for i in range(5)]
    body = listed(root, limit=2, page=2)
    assert body["total"] == 5 and body["pages"] == 3 and body["page"] == 2
    assert [x["ip"] for x in body["blocked_ips"]] == everything[2:4]
    assert listed(root, limit=2, page=4)["blocked_ips"] == []
    assert_error(root.get("/admin/blocked-ips", limit=0), 422, "VALIDATION_ERROR")
    assert_error(root.get("/admin/blocked-ips", status="expired"), 422, "VALIDATION_ERROR")
    for i in range(5):
        unblock(root, "127.0.40.%d" % i)


# ---- bad input -------------------------------------------------------------------

@pytest.mark.parametrize("ip,detail", [
    ("10.1.2.3/8", "bits set past"), ("1.2.3.4/33", "prefix length"), ("::/129", "prefix length"),
    ("garbage", "must be"), ("1.2.3", "must be"), ("256.0.0.1", "must be"), ("", "characters"),
    ("10.0.0.0/", "must be"), ("10.0.0.0/08", "must be"), (" 10.0.0.1", "must be"),
    ("[::1]", "must be"), ("fe80::1%eth0", "must be"), ("1.2.3.4:80", "must be"),
    ("x" * 100, "characters"),
])
def test_bad_addresses_are_refused(srv, root, ip, detail):
    before = listed(root)["total"]
    err = assert_error(root.post("/admin/blocked-ips", {"ip": ip}), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "ip" and detail in err["message"], err
    if detail == "bits set past":
        assert err["details"]["suggestion"] == "10.0.0.0/8"
    assert listed(root)["total"] == before


@pytest.mark.parametrize("body,field", [
    ({}, "ip"), ({"ip": 7}, "ip"), ({"ip": None}, "ip"), ({"ip": ["10.0.0.1"]}, "ip"),
    ({"ip": "127.0.50.1", "reason": "x" * 501}, "reason"),
    ({"ip": "127.0.50.1", "reason": 5}, "reason"),
    ({"ip": "127.0.50.1", "expires_at": "tomorrow"}, "expires_at"),
    ({"ip": "127.0.50.1", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"ip": "127.0.50.1", "expires_at": 12345}, "expires_at"),
])
def test_bad_fields_are_refused(srv, root, body, field):
    err = assert_error(root.post("/admin/blocked-ips", body), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field
    assert health(srv, "127.0.50.1").status_code == 200
    assert listed(root)["total"] == 0


def test_conflicts_and_unknown_blocks(srv, root):
    b = block(root, "127.0.60.0/24", reason="x" * 500)
    err = assert_error(root.post("/admin/blocked-ips", {"ip": "127.0.60.0/24"}), 409, "CONFLICT")
    assert err["details"] == {"field": "ip", "id": b["id"]}
    # an admin cannot block the address they call from
    for ip in ("127.0.0.1", "127.0.0.0/8", "0.0.0.0/0", "::ffff:127.0.0.1"):
        err = assert_error(root.post("/admin/blocked-ips", {"ip": ip}), 409, "CONFLICT")
        assert err["details"] == {"field": "ip", "client_ip": "127.0.0.1"}, err
    assert_error(root.delete("/admin/blocked-ips/127.0.61.0%2F24"), 404, "RESOURCE_NOT_FOUND")
    assert_error(root.delete("/admin/blocked-ips/ipb_nothing"), 404, "RESOURCE_NOT_FOUND")
    assert_error(root.delete("/admin/blocked-ips/2001:db8::1"), 404, "RESOURCE_NOT_FOUND")
    err = assert_error(root.delete("/admin/blocked-ips/garbage"), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "ip"
    assert_error(root.delete("/admin/blocked-ips/127.0.60.1%2F24"), 422, "VALIDATION_ERROR")
    assert [x["id"] for x in listed(root)["blocked_ips"]] == [b["id"]]
    unblock(root, b["id"])
    assert_error(root.delete("/admin/blocked-ips/" + b["id"]), 404, "RESOURCE_NOT_FOUND")


def test_non_admins_are_refused(srv, root):
    user = register(srv, "plain")
    assert_error(user.get("/admin/blocked-ips"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(user.post("/admin/blocked-ips", {"ip": "127.0.70.1"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    block(root, "127.0.70.2")
    assert_error(user.delete("/admin/blocked-ips/127.0.70.2"), 403, "INSUFFICIENT_PERMISSIONS")
    anon = requests.get(srv.url(API + "/admin/blocked-ips"), timeout=30)
    assert_error(anon, 401, "AUTHENTICATION_REQUIRED")
    assert_blocked(health(srv, "127.0.70.2"))
    assert health(srv, "127.0.70.1").status_code == 200
    unblock(root, "127.0.70.2")


# ---- durability --------------------------------------------------------------------

def test_blocks_survive_a_clean_restart_and_a_sigkill(start_server, tmp_path):
    data = tmp_path / "data"
    server = start_server(data_dir=data)
    admin = register(server, "boss")
    far = rfc3339(time.time() + 86400)
    block(admin, "127.0.80.1", reason="kept", expires_at=far)
    block(admin, "127.0.81.0/24")
    gone = block(admin, "127.0.82.1")
    unblock(admin, gone["id"])

    def check(srv, boss, extra=()):
        ips = sorted(x["ip"] for x in listed(boss)["blocked_ips"])
        assert ips == sorted(["127.0.80.1", "127.0.81.0/24"] + list(extra))
        one = next(x for x in listed(boss)["blocked_ips"] if x["ip"] == "127.0.80.1")
        assert one["reason"] == "kept" and one["expires_at"] == far
        assert_blocked(health(srv, "127.0.80.1"))
        assert_blocked(health(srv, "127.0.81.9"))
        assert health(srv, "127.0.82.1").status_code == 200
        for addr in extra:
            if "/" not in addr:
                assert_blocked(health(srv, addr))

    assert server.stop() == 0
    server = start_server(data_dir=data)
    boss = admin.on(server)
    check(server, boss)
    # acknowledged, then SIGKILL: the block is there after
    block(boss, "2001:db8::/32")
    block(boss, "127.0.83.1")
    server.proc.kill()
    server.proc.wait()
    server = start_server(data_dir=data)
    boss = admin.on(server)
    check(server, boss, ["127.0.83.1", "2001:db8::/32"])


# ---- trusted proxies -------------------------------------------------------------

def test_forwarded_addresses_are_believed_only_from_trusted_proxies(start_server):
    plain = start_server(args=["--rate-limit", "0"])
    admin = register(plain, "padmin")
    block(admin, "127.0.0.2")
    # not trusted: the headers change nothing
    assert health(plain, headers={"X-Forwarded-For": "127.0.0.2"}).status_code == 200
    assert health(plain, headers={"Forwarded": "for=127.0.0.2"}).status_code == 200
    assert_blocked(health(plain, "127.0.0.2", headers={"X-Forwarded-For": "198.51.100.1"}))

    proxied = start_server(args=["--rate-limit", "0", "--trusted-proxies", "127.0.0.1/32"])
    boss = register(proxied, "proxyadmin")
    block(boss, "127.0.0.2")
    block(boss, "2001:db8::/32")
    assert_blocked(health(proxied, headers={"X-Forwarded-For": "127.0.0.2"}))
    assert_blocked(health(proxied, headers={"X-Forwarded-For": "198.51.100.1, 127.0.0.2"}))
    assert_blocked(health(proxied, headers={"Forwarded": 'for="[2001:db8::5]:4711";proto=http'}))
    assert_blocked(health(proxied, headers={"X-Forwarded-For": "127.0.0.2:5555"}))
    # the client left of an untrusted hop is not believed
    assert health(proxied, headers={"X-Forwarded-For": "127.0.0.2, 198.51.100.1"}).status_code \
        == 200
    # from an address that is no trusted proxy, the headers are ignored
    assert health(proxied, "127.0.0.3", headers={"X-Forwarded-For": "127.0.0.2"}).status_code \
        == 200
    # hostile headers: the peer is the client (not blocked), the server stays up
    hostile = ["garbage", "unknown", "_hidden", "[::1", "1.2.3.4:99999", "," * 5000,
               "127.0.0.1, " * 600 + "x", "\"\"", "127.0.0.2\\", "2001:db8::5%eth0"]
    for value in hostile:
        for name in ("X-Forwarded-For", "Forwarded"):
            v = value if name == "X-Forwarded-For" else "for=" + value
            r = health(proxied, headers={name: v})
            assert r.status_code == 200, (name, value, r.status_code, r.text)
    assert health(proxied, headers={"Forwarded": 'for="unterminated'}).status_code == 200
    # the admin's own-address check sees the forwarded address
    r = boss.call("POST", "/admin/blocked-ips", {"ip": "198.51.100.0/24"},
                  headers={"X-Forwarded-For": "198.51.100.20"})
    err = assert_error(r, 409, "CONFLICT")
    assert err["details"]["client_ip"] == "198.51.100.20"
    # the access log names the client and the proxy
    wait_until(lambda: "ip=127.0.0.2 via=127.0.0.1" in proxied.log(), what="access log line")
    assert json.loads(health(proxied).text)["status"] == "healthy"


def test_trusted_proxies_change_live_through_the_settings_and_blocks_are_audited(start_server,
                                                                                  tmp_path):
    data = tmp_path / "data"
    server = start_server(args=["--rate-limit", "0"], data_dir=data)
    admin = register(server, "liveproxy")
    b = block(admin, "127.0.0.2", reason="scraper")
    e = admin.get("/admin/audit-log", action="ip.block").json()["entries"][0]
    assert e["target"] == "127.0.0.2" and e["actor"]["id"] == admin.id
    assert e["details"] == {"id": b["id"], "reason": "scraper", "expires_at": None}
    # not trusted yet: the forwarded address is ignored
    assert health(server, headers={"X-Forwarded-For": "127.0.0.2"}).status_code == 200
    r = admin.patch("/admin/settings", {"trusted_proxies": ["127.0.0.1"]})
    assert r.status_code == 200 and r.json()["trusted_proxies"] == ["127.0.0.1"], r.text
    assert_blocked(health(server, headers={"X-Forwarded-For": "127.0.0.2"}))
    # bad entries: 422 naming the field, nothing changed
    for bad in (["10.1.2.3/8"], ["not an address"], ["::1/129"], "127.0.0.1", [1]):
        r = admin.patch("/admin/settings", {"trusted_proxies": bad})
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"].startswith("trusted_proxies"), (bad, r.text)
    assert_blocked(health(server, headers={"X-Forwarded-For": "127.0.0.2"}))
    # kept across a SIGKILL
    server.proc.kill()
    server.proc.wait()
    server = start_server(args=["--rate-limit", "0"], data_dir=data)
    admin = admin.on(server)
    assert_blocked(health(server, headers={"X-Forwarded-For": "127.0.0.2"}))
    # back to the configured (none)
    assert admin.patch("/admin/settings", {"trusted_proxies": None}).status_code == 200
    assert health(server, headers={"X-Forwarded-For": "127.0.0.2"}).status_code == 200
    unblock(admin, "127.0.0.2")
    e = admin.get("/admin/audit-log", action="ip.unblock").json()["entries"][0]
    assert e["target"] == "127.0.0.2" and e["details"] == {"id": b["id"]}
