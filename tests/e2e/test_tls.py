"""TLS built in (issue 16): HTTPS and WSS on the API's port with a CA and
server certificates made at test time by certtool (gnutls-bin); HSTS; the
certificate reloaded on SIGHUP (a new connection sees the new serial, a kept
connection goes on); a bad new pair refused with the old one kept; every
start-up error (one line, exit 2, nothing written to the data directory);
the plain-HTTP redirect port; hostile clients (plain HTTP to the TLS port,
TLS to the plain port, truncated and stalled handshakes) and weak protocols
and ciphers refused (gnutls-cli)."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess

import pytest
import requests

from client import API, WAIT_TIMEOUT, accounts, read_until_closed, register, wait_until
from conftest import START_TIMEOUT, assert_error, free_port, raw_http
from realtime_client import Live, Stream
from tls_certs import CertAuthority, Pair

pytestmark = pytest.mark.skipif(shutil.which("certtool") is None or
                                shutil.which("gnutls-cli") is None,
                                reason="certtool/gnutls-cli missing: scripts/install-deps.sh --test")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def pair(ca, tmp_path):
    """A fresh pair in this test's own directory (a test may overwrite it)."""
    p = ca.issue(1001)
    d = tmp_path / "tls"
    d.mkdir()
    cert, key = str(d / "server.pem"), str(d / "server.key")
    shutil.copy(p.cert, cert)
    shutil.copy(p.key, key)
    os.chmod(key, 0o600)
    return Pair(cert, key, p.ca, p.serial)


@pytest.fixture
def trusting(monkeypatch, ca):
    """requests (and so client.py's sessions) verify against the test CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca.cert)


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def peer_serial(port, ca):
    """The serial of the certificate a new connection gets (an int)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with tls_context(ca).wrap_socket(s, server_hostname="localhost") as t:
            return int(t.getpeercert()["serialNumber"], 16)


def certifi_bundle():
    """The system's CA bundle (which does not hold the test CA)."""
    return ssl.get_default_verify_paths().openssl_cafile


def health_ok(srv):
    r = requests.get(srv.url("/api/health"), timeout=10, verify=srv.verify)
    return r.status_code == 200


# ---- HTTPS, HSTS, ALPN, WSS -------------------------------------------------


def test_https_serves_the_api_with_hsts_and_alpn_http11(start_server, pair, trusting):
    srv = start_server(tls=pair)
    assert srv.base.startswith("https://")
    # The test certificates expire in 3 days: within the 14 days warned of.
    assert "TLS: certificate serial 03e9 expires at" in srv.log()
    u = register(srv, "tlsAnn")
    ch = u.ok("POST", "/channels", {"name": "tls-room"}, 201)
    m = u.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "over TLS"}, 201)
    page = u.ok("GET", "/channels/%s/messages" % ch["id"])
    assert [x["id"] for x in page["messages"]] == [m["id"]]
    r = u.call("GET", "/users/me")
    assert r.headers["Strict-Transport-Security"] == "max-age=15552000"
    # Error answers carry it too.
    r = requests.get(srv.url(API + "/no-such-route"), timeout=10)
    assert r.status_code == 404 and "max-age=15552000" in r.headers["Strict-Transport-Security"]
    # ALPN: http/1.1 chosen out of h2 + http/1.1; TLS 1.3 by default.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        with tls_context(pair.ca).wrap_socket(s, server_hostname="localhost") as t:
            assert t.selected_alpn_protocol() == "http/1.1"
            assert t.version() == "TLSv1.3"
            assert int(t.getpeercert()["serialNumber"], 16) == 1001
    # A client that does not trust the test CA refuses the server.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.url("/api/health"), timeout=10, verify=certifi_bundle())


def test_hsts_max_age_flag_and_none_on_plain_http(start_server, pair, trusting):
    srv = start_server(tls=pair, args=["--hsts-max-age-seconds", "0"])
    r = requests.get(srv.url("/api/health"), timeout=10)
    assert r.status_code == 200 and "Strict-Transport-Security" not in r.headers
    srv2 = start_server(tls=pair, args=["--hsts-max-age-seconds", "300"])
    r = requests.get(srv2.url("/api/health"), timeout=10)
    assert r.headers["Strict-Transport-Security"] == "max-age=300"
    plain = start_server()
    r = requests.get(plain.url("/api/health"), timeout=10)
    assert "Strict-Transport-Security" not in r.headers


def test_hsts_max_age_is_a_live_setting_that_survives_a_restart(start_server, pair, trusting,
                                                                tmp_path):
    data = tmp_path / "hsts-data"
    srv = start_server(tls=pair, data_dir=data)
    root = register(srv, "hstsRoot")
    assert "admin" in root.user["roles"]
    assert root.ok("GET", "/admin/settings")["hsts_max_age_seconds"] == 15552000
    s = root.ok("PATCH", "/admin/settings", {"hsts_max_age_seconds": 60})
    assert s["hsts_max_age_seconds"] == 60 and "hsts_max_age_seconds" in s["overridden"]
    assert requests.get(srv.url("/api/health"), timeout=10).headers[
        "Strict-Transport-Security"] == "max-age=60"
    for bad in (-1, 63072001, "60", 1.5, True, [60]):
        err = assert_error(root.patch("/admin/settings", {"hsts_max_age_seconds": bad}), 422,
                           "VALIDATION_ERROR")
        assert err["details"]["field"] == "hsts_max_age_seconds"
    other = register(srv, "hstsUser")
    assert_error(other.patch("/admin/settings", {"hsts_max_age_seconds": 0}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert srv.stop() == 0
    srv = start_server(tls=pair, data_dir=data)
    assert requests.get(srv.url("/api/health"), timeout=10).headers[
        "Strict-Transport-Security"] == "max-age=60"
    root = root.on(srv)
    s = root.ok("PATCH", "/admin/settings", {"hsts_max_age_seconds": 0})
    assert "Strict-Transport-Security" not in requests.get(srv.url("/api/health"),
                                                           timeout=10).headers
    s = root.ok("PATCH", "/admin/settings", {"hsts_max_age_seconds": None})
    assert s["hsts_max_age_seconds"] == 15552000


def test_websocket_over_tls_gets_events(start_server, pair, trusting):
    srv = start_server(tls=pair)
    u = accounts(srv, "wssAnn", "wssBen")
    ch = u.wssAnn.ok("POST", "/channels", {"name": "wss-room"}, 201)
    u.wssBen.ok("POST", "/channels/%s/join" % ch["id"])
    live = Live(srv, u.wssBen.token)
    try:
        m = u.wssAnn.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "live TLS"}, 201)
        assert live.wait_type("message.created", id=m["id"])["data"]["content"] == "live TLS"
        # And a message sent over the WebSocket itself.
        live.send({"type": "send_message", "ref": 5,
                   "data": {"channel_id": ch["id"], "content": "from wss"}})
        f = live.wait(lambda f: f["type"] == "message.created" and
                      f["data"]["content"] == "from wss")
        assert u.wssBen.id in json.dumps(f["data"])  # its author
    finally:
        live.ws.close()
    page = u.wssAnn.ok("GET", "/channels/%s/messages" % ch["id"])
    assert sorted(x["content"] for x in page["messages"]) == ["from wss", "live TLS"]
    # The event stream over TLS too.
    stream = Stream(srv, u.wssBen.token)
    try:
        m = u.wssAnn.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "sse TLS"}, 201)
        assert stream.wait("message.created", id=m["id"])[1]["content"] == "sse TLS"
    finally:
        stream.close()


# ---- reload on SIGHUP -------------------------------------------------------


def test_sighup_reloads_the_pair_and_keeps_connections(start_server, ca, pair, trusting):
    srv = start_server(tls=pair)
    root = register(srv, "tlsRoot")
    kept = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=30,
                                       context=tls_context(pair.ca))
    kept.request("GET", "/api/health")
    assert kept.getresponse().read() and kept.sock is not None
    first_sock = kept.sock
    assert int(first_sock.getpeercert()["serialNumber"], 16) == 1001

    new = ca.issue(2002)
    shutil.copy(new.cert, pair.cert)
    shutil.copy(new.key, pair.key)
    os.chmod(pair.key, 0o600)
    os.kill(srv.pid(), signal.SIGHUP)
    wait_until(lambda: peer_serial(srv.port, pair.ca) == 2002, timeout=WAIT_TIMEOUT,
               what="a new connection gets the reloaded certificate")
    assert "new handshakes get certificate serial 07d2" in srv.log()
    # The connection made before the reload goes on, on the same socket.
    kept.request("GET", "/api/health")
    resp = kept.getresponse()
    assert resp.status == 200 and resp.read()
    assert kept.sock is first_sock
    kept.close()

    # A bad new pair (a key of another certificate) is refused: the log says
    # so in one line and the last good pair stays.
    other = ca.issue(3003)
    shutil.copy(other.key, pair.key)
    os.chmod(pair.key, 0o600)
    os.kill(srv.pid(), signal.SIGHUP)
    wait_until(lambda: "TLS reload refused" in srv.log(), timeout=WAIT_TIMEOUT,
               what="the refused reload logged")
    line = [x for x in srv.log().splitlines() if "TLS reload refused" in x]
    assert len(line) == 1 and "does not match the certificate" in line[0]
    assert peer_serial(srv.port, pair.ca) == 2002
    # A key file others may read is refused the same way.
    shutil.copy(new.key, pair.key)
    os.chmod(pair.key, 0o644)
    os.kill(srv.pid(), signal.SIGHUP)
    wait_until(lambda: srv.log().count("TLS reload refused") == 2, timeout=WAIT_TIMEOUT,
               what="the second refused reload logged")
    assert "readable or writable by group or others" in srv.log()
    assert health_ok(srv) and peer_serial(srv.port, pair.ca) == 2002
    # Each reload is in the audit log, durable (a restart keeps them).
    assert srv.stop() == 0
    srv = start_server(tls=new, data_dir=srv.data_dir)
    root = root.on(srv)
    done = root.get("/admin/audit-log", action="tls.reload").json()["entries"]
    assert [(e["target"], e["details"]) for e in done] == [("07d2", {"serial": "07d2"})]
    refused = root.get("/admin/audit-log", action="tls.reload_refused").json()["entries"]
    assert len(refused) == 2 and {e["target"] for e in refused} == {"07d2"}
    assert "readable or writable" in refused[0]["details"]["error"]
    assert "does not match" in refused[1]["details"]["error"]


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))


def test_many_reloads_keep_memory_bounded_and_serving(start_server, ca, pair, trusting):
    srv = start_server(tls=pair)
    assert health_ok(srv)
    before = rss_kib(srv.pid())
    n = 100
    for i in range(n):
        os.kill(srv.pid(), signal.SIGHUP)
        wait_until(lambda: srv.log().count("TLS reload: new handshakes") == i + 1,
                   timeout=WAIT_TIMEOUT, what="reload %d" % (i + 1))
    assert health_ok(srv) and peer_serial(srv.port, pair.ca) == 1001
    # Each pair once in use is kept (a few KiB): 100 reloads stay far below
    # 32 MiB (the sanitizers' allocator keeps more, so a bound there too).
    assert rss_kib(srv.pid()) - before < 32 * 1024


def test_sighup_on_a_plain_server_changes_nothing(start_server):
    srv = start_server()
    os.kill(srv.pid(), signal.SIGHUP)
    wait_until(lambda: "no TLS certificate to reload" in srv.log(), timeout=WAIT_TIMEOUT)
    assert requests.get(srv.url("/api/health"), timeout=10).status_code == 200


# ---- start-up errors ------------------------------------------------------------


def start_fails(start_server, tmp_path, args, expect):
    """The server given `args` exits 2 with one error line containing
    `expect`, and has written nothing where its data directory would be."""
    data = tmp_path / "never"
    srv = start_server(args=args, data_dir=data, wait=False)
    code = srv.proc.wait(START_TIMEOUT * 3)
    out = srv.log()
    errors = [x for x in out.splitlines() if x.strip()]
    assert code == 2, out
    assert len(errors) == 1 and expect in errors[0], out
    assert not data.exists()


def test_startup_errors_exit_2_before_touching_the_data_dir(start_server, ca, pair, tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    missing = str(d / "missing.pem")
    expired = ca.issue(4004, dates=("2020-01-01", "2021-01-01"))
    future = ca.issue(5005, dates=("2098-01-01", "2099-01-01"))
    other = ca.issue(6006)
    garbage = str(d / "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    loose_key = str(d / "loose.key")
    shutil.copy(pair.key, loose_key)
    os.chmod(loose_key, 0o640)
    cert_as_key = str(d / "cert-as-key.pem")
    shutil.copy(pair.cert, cert_as_key)
    os.chmod(cert_as_key, 0o600)
    cases = [
        (["--tls-cert", pair.cert], "tls_cert without tls_key"),
        (["--tls-key", pair.key], "tls_key without tls_cert"),
        (["--tls-cert", missing, "--tls-key", pair.key], "cannot read --tls-cert"),
        (["--tls-cert", pair.cert, "--tls-key", missing], "cannot read --tls-key"),
        (["--tls-cert", str(d), "--tls-key", pair.key], "is not a regular file"),
        (["--tls-cert", pair.cert, "--tls-key", other.key], "does not match the certificate"),
        (["--tls-cert", expired.cert, "--tls-key", expired.key], "has expired"),
        (["--tls-cert", future.cert, "--tls-key", future.key], "is not valid yet"),
        (["--tls-cert", pair.cert, "--tls-key", loose_key], "readable or writable by group"),
        (["--tls-cert", garbage, "--tls-key", pair.key], "is not a PEM certificate chain"),
        (["--tls-cert", pair.cert, "--tls-key", cert_as_key], "is not a PEM private key"),
        (["--tls-redirect-port", str(free_port())], "needs --tls-cert"),
        (["--hsts-max-age-seconds", "-1"], "hsts_max_age_seconds"),
    ]
    for args, expect in cases:
        start_fails(start_server, tmp_path, args, expect)


# ---- the redirect port --------------------------------------------------------


def test_redirect_port_answers_308_and_serves_health(start_server, pair, trusting):
    plain = free_port()
    srv = start_server(tls=pair, args=["--tls-redirect-port", str(plain)])
    base = "http://127.0.0.1:%d" % plain
    r = requests.get(base + API + "/channels?limit=5&x=%20y", allow_redirects=False, timeout=10)
    assert r.status_code == 308
    assert r.headers["Location"] == "https://127.0.0.1:%d%s/channels?limit=5&x=%%20y" % (
        srv.port, API)
    r = requests.post(base + API + "/auth/login", json={"a": 1}, allow_redirects=False,
                      timeout=10, headers={"Host": "chat.example.com:8080"})
    assert r.status_code == 308
    assert r.headers["Location"] == "https://chat.example.com:%d%s/auth/login" % (srv.port, API)
    # Followed, the redirect reaches the API over TLS.
    r = requests.get(base + "/api/health", timeout=10)
    assert r.status_code == 200 and r.url.startswith("http://")  # health is served right there
    assert r.json()["status"] == "healthy"
    r = requests.get(base + API + "/users/nobody", timeout=10)
    assert r.url.startswith("https://") and r.status_code == 401
    # A Host that is not a name or an address is refused in JSON.
    raw = raw_http(plain, b"GET / HTTP/1.1\r\nHost: evil.com/path@x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400") and b'"BAD_REQUEST"' in raw
    raw = raw_http(plain, b"GET / HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400") and b'"BAD_REQUEST"' in raw
    # Nothing of the API is served in clear text.
    raw = raw_http(plain, b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 308")


# ---- hostile clients and weak protocols ----------------------------------------


def test_plain_http_to_the_tls_port_and_tls_to_the_plain_port(start_server, pair, trusting):
    srv = start_server(tls=pair)
    for _ in range(5):
        out = raw_http(srv.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
        assert b"200 OK" not in out and b'"status":"healthy"' not in out
    assert health_ok(srv)
    # What a client does wrong is not logged above debug (no log flooding).
    assert "WARN libmicrohttpd" not in srv.log(), srv.log()
    # A ClientHello sent to a plain port is not HTTP: a JSON 400 and the close
    # (or only the close: the 400 is lost when the reset for the unread rest
    # of the hello arrives first).
    plain = start_server()
    for _ in range(5):
        out = raw_http(plain.port, hello_bytes(), timeout=10)
        assert out == b"" or (out.startswith(b"HTTP/1.1 400") and b'"BAD_REQUEST"' in out), out
    assert requests.get(plain.url("/api/health"), timeout=10).status_code == 200


def hello_bytes():
    """The first bytes a TLS client sends (its ClientHello)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def test_truncated_and_stalled_handshakes_leave_workers_free(start_server, pair, trusting):
    srv = start_server(tls=pair, args=["--threads", "2", "--max-connections", "64",
                                       "--header-timeout", "2"])
    hello = hello_bytes()
    assert len(hello) > 100
    assert health_ok(srv)
    fds_idle = open_fds(srv.pid()) + 1  # + the health check's kept-alive connection, at most
    # Truncated: half a ClientHello, then the connection closed.
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(hello[:len(hello) // 2])
    # Stalled: more connections than workers, each with half a hello and
    # nothing more; a client with a full handshake is still served.
    stalled = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(hello[:40])
        stalled.append(s)
    silent = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(4)]
    try:
        assert health_ok(srv)
        u = register(srv, "tlsStall")
        assert u.ok("GET", "/users/me")["id"] == u.id
        # The header timeout ends a handshake that never finishes: the
        # server closes (a stalled TLS alert at most, no answer).
        for s in stalled + silent:
            s.settimeout(WAIT_TIMEOUT)
            try:
                assert b"HTTP/1.1" not in read_until_closed(s)
            except ConnectionResetError:
                pass
    finally:
        for s in stalled + silent:
            s.close()
    assert health_ok(srv)
    assert "WARN libmicrohttpd" not in srv.log(), srv.log()
    # Every hostile connection's descriptor is given back.
    u.session.close()
    wait_until(lambda: open_fds(srv.pid()) <= fds_idle, timeout=WAIT_TIMEOUT,
               what="the descriptors of the hostile connections closed")


def gnutls_cli(port, ca, priority):
    """Whether gnutls-cli completes a handshake with `priority`."""
    p = subprocess.run(["gnutls-cli", "--x509cafile", ca, "--priority", priority, "-p",
                        str(port), "--sni-hostname", "localhost",
                        "127.0.0.1"], input=b"", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode == 0, p.stdout.decode("utf-8", "replace")


def test_weak_protocols_and_ciphers_are_refused(start_server, ca, tmp_path):
    # An RSA certificate, so that RSA key exchange could be chosen if allowed.
    rsa = ca.issue(7007, key_type="rsa", days=400)
    srv = start_server(tls=rsa)
    assert "expires at" not in srv.log()  # more than 14 days left: no warning
    ok, out = gnutls_cli(srv.port, ca.cert, "NORMAL")
    assert ok, out
    ok, out = gnutls_cli(srv.port, ca.cert, "NORMAL:-VERS-ALL:+VERS-TLS1.2")
    assert ok and "TLS1.2" in out, out
    refused = [
        "NORMAL:-VERS-ALL:+VERS-TLS1.1",
        "NORMAL:-VERS-ALL:+VERS-TLS1.0",
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA",
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:+MAC-ALL",
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+3DES-CBC:+MAC-ALL",
    ]
    for priority in refused:
        ok, out = gnutls_cli(srv.port, ca.cert, priority)
        assert not ok, (priority, out)
    assert health_ok(srv)


def test_session_cookies_are_secure_under_tls_by_default(start_server, pair, trusting):
    """--cookie-secure auto: a login over HTTPS sets both cookies Secure; the
    same login over plain HTTP (another server) does not."""
    from test_session_cookies import login, set_cookies
    srv = start_server(tls=pair)
    register(srv, "tlsCookie")
    cookies = set_cookies(login(srv, "tlsCookie"))
    assert set(cookies) == {"parley_session", "parley_csrf"}
    assert all(c.get("secure") is True for c in cookies.values()), cookies
    plain = start_server()
    register(plain, "plainCookie")
    cookies = set_cookies(login(plain, "plainCookie"))
    assert set(cookies) == {"parley_session", "parley_csrf"}
    assert not any("secure" in c for c in cookies.values()), cookies
