"""CORS and the security headers end to end (docs/operations.md "Browsers and
other origins"): an Origin in the cors_origins setting gets
Access-Control-Allow-Origin naming it, credentials and the exposed headers on
every answer (successes, 401, 404, 429), an Origin not listed gets no CORS
header at all; a preflight OPTIONS is answered 204 without authentication
with the methods of the path, and 404 for a path that does not exist; an
OPTIONS that is no preflight keeps its 405. The setting changes at once by
PATCH, survives a restart, and refuses paths, wildcards, garbage and too many
origins with 422. Every answer carries the security headers."""
import pytest
import requests

from client import API, register, wait_until
from conftest import Server, assert_error, module_server

LISTED = "https://chat.example.com"
OTHER = "http://localhost:5173"
STRANGER = "https://evil.example.net"
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
                "Access-Control-Expose-Headers", "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers", "Access-Control-Max-Age")


def allowed(r, origin):
    assert r.headers.get("Access-Control-Allow-Origin") == origin, dict(r.headers)
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = [h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")]
    for h in ("X-Request-Id", "X-RateLimit-Remaining", "Retry-After"):
        assert h in exposed
    assert "Origin" in r.headers.get("Vary", "")


def no_cors(r):
    for h in CORS_HEADERS:
        assert h not in r.headers, (h, dict(r.headers))


def secure(r):
    for k, v in SECURITY.items():
        assert r.headers.get(k) == v, (k, dict(r.headers))


def preflight(srv, path, origin=LISTED, method="POST", headers=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(srv.url(path), headers=h, timeout=30)




@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "cors",
                             args=("--rate-limit", "0", "--cors-origins",
                                   LISTED + ", " + OTHER))


@pytest.fixture(scope="module")
def root(srv):
    return register(srv, "corsroot")


@pytest.fixture(autouse=True)
def reset(root):
    yield
    root.ok("PATCH", "/admin/settings", {"cors_origins": None})


def test_the_flag_seeds_the_setting(root):
    s = root.ok("GET", "/admin/settings")
    assert s["cors_origins"] == [LISTED, OTHER]
    assert "cors_origins" not in s["overridden"]


def test_a_listed_origin_gets_the_headers_on_answers_and_errors(srv, root):
    r = root.get("/users/me", headers={"Origin": LISTED})
    assert r.status_code == 200
    allowed(r, LISTED)
    r = root.call("POST", "/channels", {"name": "cors-room"}, headers={"Origin": OTHER})
    assert r.status_code == 201, r.text
    allowed(r, OTHER)
    # Origins compare without case in scheme and host.
    r = root.get("/users/me", headers={"Origin": "HTTPS://Chat.Example.com"})
    assert r.headers["Access-Control-Allow-Origin"] == "HTTPS://Chat.Example.com"
    r = requests.get(srv.url(API + "/users/me"), headers={"Origin": LISTED})
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    allowed(r, LISTED)
    r = root.get("/no/such/thing", headers={"Origin": LISTED})
    assert_error(r, 404, "RESOURCE_NOT_FOUND")
    allowed(r, LISTED)


def test_an_origin_not_listed_gets_no_cors_header(srv, root):
    for origin in (STRANGER, "null", LISTED + ".evil.net", LISTED + ":8443", "http://chat.example.com"):
        r = root.get("/users/me", headers={"Origin": origin})
        assert r.status_code == 200
        no_cors(r)
        assert r.headers.get("Vary") == "Origin"
    r = root.get("/users/me")
    no_cors(r)


def test_a_preflight_is_answered_without_authentication(srv):
    r = preflight(srv, API + "/channels/ch_whatever/messages",
                  headers="content-type, authorization, x-csrf-token, x-evil")
    assert r.status_code == 204, r.text
    assert r.content == b""
    allowed(r, LISTED)
    methods = [m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")]
    assert set(methods) == {"GET", "HEAD", "POST"}, methods
    hdrs = [h.strip() for h in r.headers["Access-Control-Allow-Headers"].split(",")]
    assert "Authorization" in hdrs and "Content-Type" in hdrs and "X-CSRF-Token" in hdrs
    assert "x-evil" not in [h.lower() for h in hdrs]
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in r.headers["Vary"]
    secure(r)
    r = preflight(srv, API + "/admin/settings", method="PATCH")
    assert r.status_code == 204
    assert set(m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")) == {
        "GET", "HEAD", "PATCH"}


def test_a_preflight_from_elsewhere_or_to_nowhere(srv):
    r = preflight(srv, API + "/channels", origin=STRANGER)
    assert r.status_code == 204
    no_cors(r)
    r = preflight(srv, API + "/no/such/path")
    assert_error(r, 404, "RESOURCE_NOT_FOUND")
    assert "Access-Control-Allow-Methods" not in r.headers
    # An OPTIONS that is no preflight stays what it was: no route takes it.
    r = requests.options(srv.url(API + "/channels"), timeout=30)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    r = requests.options(srv.url(API + "/channels"), headers={"Origin": LISTED}, timeout=30)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    allowed(r, LISTED)


def test_the_setting_changes_at_once(srv, root):
    s = root.ok("PATCH", "/admin/settings", {"cors_origins": [STRANGER]})
    assert s["cors_origins"] == [STRANGER] and "cors_origins" in s["overridden"]
    r = root.get("/users/me", headers={"Origin": STRANGER})
    allowed(r, STRANGER)
    no_cors(root.get("/users/me", headers={"Origin": LISTED}))
    assert preflight(srv, API + "/channels", origin=STRANGER).headers[
        "Access-Control-Allow-Origin"] == STRANGER
    root.ok("PATCH", "/admin/settings", {"cors_origins": []})
    r = root.get("/users/me", headers={"Origin": STRANGER})
    no_cors(r)
    assert "Vary" not in r.headers
    root.ok("PATCH", "/admin/settings", {"cors_origins": None})
    allowed(root.get("/users/me", headers={"Origin": LISTED}), LISTED)


@pytest.mark.parametrize("value", [
    "https://chat.example.com",            # not a list
    ["*"],
    ["https://chat.example.com/"],
    ["https://chat.example.com/app"],
    ["https://chat.example.com?x=1"],
    ["chat.example.com"],
    ["ftp://chat.example.com"],
    ["https://user@chat.example.com"],
    ["https://*.example.com"],
    ["https://chat.example.com:0"],
    ["https://chat.example.com:65536"],
    ["https://chat.example.com:443"],
    ["null"],
    [""],
    [7],
    ["https://" + "a" * 250 + ".com"],
    ["https://h%d.example.com" % i for i in range(33)],
])
def test_bad_values_are_refused(root, value):
    before = root.ok("GET", "/admin/settings")
    r = root.patch("/admin/settings", {"cors_origins": value})
    err = assert_error(r, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "cors_origins", err
    assert root.ok("GET", "/admin/settings")["cors_origins"] == before["cors_origins"]


def test_good_values_are_taken(root):
    good = ["http://localhost:5173", "https://[::1]:8443", "http://127.0.0.1:8080",
            "https://chat.example.com"] + ["https://h%d.example.com" % i for i in range(28)]
    assert len(good) == 32
    assert root.ok("PATCH", "/admin/settings", {"cors_origins": good})["cors_origins"] == good


def test_security_headers_everywhere(srv, root):
    secure(root.get("/users/me"))
    secure(root.get("/no/such/thing"))
    secure(requests.get(srv.url(API + "/users/me")))
    secure(requests.get(srv.url(API + "/openapi.json")))
    secure(requests.get(srv.url("/api/health")))
    # The gate's own answers (an oversized body here) carry them too.
    r = requests.post(srv.url(API + "/auth/login"), data=b"x" * (4 << 20),
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    secure(r)


def test_a_429_carries_the_cors_headers(start_server):
    server = start_server(["--rate-limit", "1", "--cors-origins", LISTED], rate_limits=True)
    seen = []

    def limited():
        r = requests.get(server.url(API + "/openapi.json"), headers={"Origin": LISTED})
        seen.append(r.status_code)
        allowed(r, LISTED)
        return r.status_code == 429

    wait_until(limited, what="a 429 of the default category")
    secure(requests.get(server.url(API + "/openapi.json"), headers={"Origin": LISTED}))


def test_the_setting_survives_a_restart_and_bad_flags_stop_the_start(start_server, tmp_path):
    server = start_server(["--cors-origins", LISTED])
    root = register(server, "root")
    root.ok("PATCH", "/admin/settings", {"cors_origins": [OTHER]})
    assert server.stop() == 0
    server.start()
    root = root.on(server)
    assert root.ok("GET", "/admin/settings")["cors_origins"] == [OTHER]
    allowed(root.get("/users/me", headers={"Origin": OTHER}), OTHER)
    no_cors(root.get("/users/me", headers={"Origin": LISTED}))
    for bad in ("*", "https://chat.example.com/path", "garbage"):
        s = Server(tmp_path / "bad", args=["--cors-origins", bad])
        s.start(wait=False)
        assert s.proc.wait(30) == 2, s.log()
        s.log_file.close()
        assert "cors_origins" in s.log(), s.log()


def test_event_streams_carry_the_cors_and_security_headers(srv, root):
    url = srv.url(API + "/events")
    with requests.get(url, headers={"Authorization": "Bearer " + root.token, "Origin": LISTED},
                      stream=True, timeout=30) as r:
        assert r.status_code == 200
        allowed(r, LISTED)
        secure(r)
    with requests.get(url, headers={"Authorization": "Bearer " + root.token,
                                    "Origin": STRANGER}, stream=True, timeout=30) as r:
        assert r.status_code == 200
        no_cors(r)
    r = requests.get(url, headers={"Origin": LISTED}, timeout=30)
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    allowed(r, LISTED)
    secure(r)
