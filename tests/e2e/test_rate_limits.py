"""Rate limits by category end to end (docs/api.md, "Rate limits"): a token
bucket per (category, caller) of `limit` tokens refilled at limit/60 a
second, the caller being the user once authenticated and the client address
otherwise; X-RateLimit-Limit/-Remaining/-Reset/-Window on every answer of a
limited category; 429 RATE_LIMIT_EXCEEDED with Retry-After and
details.retry_after/category.

The servers here are started with rate_limits=True (conftest turns them off
for every other test) and small limits, so that a bucket empties in a few
requests. A limit of L refills one token each 60/L seconds: the checks of a
decreasing Remaining only hold while the requests come faster than that,
which each says (`quick`)."""
import math
import time

import requests

from conftest import assert_error
from client import API, WAIT_TIMEOUT, register, registration, session_from, wait_until

SEARCH_LIMIT = 12  # searches a minute in the refill test

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
           "X-RateLimit-Window")


def limited(r, limit):
    """The answer's Remaining, after checking it carries all four headers of
    a category limited to `limit`."""
    for h in HEADERS:
        assert h in r.headers, (r.status_code, r.text, h, dict(r.headers))
    assert r.headers["X-RateLimit-Limit"] == str(limit), r.headers
    assert r.headers["X-RateLimit-Window"] == "60"
    assert int(r.headers["X-RateLimit-Reset"]) > time.time() - 1
    return int(r.headers["X-RateLimit-Remaining"])


def unlimited(r):
    for h in HEADERS:
        assert h not in r.headers, (r.status_code, h, dict(r.headers))
    return r


def refused(r, category):
    """The retry_after of a 429 of `category`, checked against the contract."""
    err = assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
    retry = err["details"]["retry_after"]
    assert isinstance(retry, int) and retry >= 1, err
    assert r.headers["Retry-After"] == str(retry)
    assert err["details"]["category"] == category, err
    assert r.headers["X-RateLimit-Remaining"] == "0"
    return retry


def quick(start, limit):
    """Whether no token can have come back since `start` (time.time())."""
    return time.time() - start < 60.0 / limit


def search(who, headers=None, session=None):
    s = session or who.session
    return s.get(who.server.url(API + "/search/users"), params={"q": "zz"},
                 headers=headers, timeout=30)


def test_a_category_empties_refuses_and_refills_per_user(start_server):
    # 12 searches a minute: a token comes back every 5 s, so the wait for a
    # refill at the end is short, and 12 quick requests still empty it.
    n = SEARCH_LIMIT
    server = start_server(["--rate-limit", "1000", "--rate-limit-search", str(n),
                           "--rate-limit-messages", "5", "--rate-limit-auth", "50"],
                          rate_limits=True)
    alice, bob = register(server, "alice"), register(server, "bob")
    key = alice.ok("POST", "/auth/api-keys", {"name": "ro", "permissions": ["read"]},
                   status=201)["key"]
    channel = alice.ok("POST", "/channels", {"name": "general"}, status=201)

    # A full bucket of n: Remaining n-1 ... 0; the bucket is full again 60/n s
    # after the first request for each request made (one token per 60/n s).
    start = time.time()
    seen, resets = [], []
    per_token = 60 // n
    for _ in range(n):
        r = search(alice)
        assert r.status_code == 200, r.text
        seen.append(limited(r, n))
        resets.append(int(r.headers["X-RateLimit-Reset"]))
    if quick(start, n):
        assert seen == list(range(n - 1, -1, -1))
    end = time.time()
    for k, reset in enumerate(resets, 1):
        low, high = math.floor(start) + per_token * k, math.ceil(end) + per_token * k
        assert low <= reset <= high, (start, resets)

    sent = time.time()
    r = search(alice)
    fast = quick(start, n)
    if fast:
        retry = refused(r, "search")
        assert retry <= per_token

    # The same user by an API key: the same bucket.
    if fast and quick(start, n):
        refused(search(alice, headers={"X-API-Key": key}, session=requests.Session()), "search")
    # Other categories of the same user are untouched...
    assert limited(alice.get("/users/me"), 1000) >= 990
    r = alice.call("POST", "/channels/%s/messages" % channel["id"], {"content": "hi"})
    assert r.status_code == 201 and limited(r, 5) == 4
    # ...and another user has a bucket of their own.
    r = search(bob)
    assert r.status_code == 200 and limited(r, n) == n - 1

    # Waiting out Retry-After lets the next search through, and not much
    # before: a refused request took nothing, so polling does not delay it.
    if fast:
        r = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(search(alice)),
                       timeout=retry + WAIT_TIMEOUT, interval=0.25,
                       what="a search after Retry-After")
        assert time.time() > sent + retry - 1
        limited(r, n)


def test_errors_after_authentication_carry_the_headers_too(start_server):
    server = start_server(["--rate-limit", "5"], rate_limits=True)
    mia = register(server, "mia")
    key = mia.ok("POST", "/auth/api-keys", {"name": "ro", "permissions": ["read"]},
                 status=201)["key"]
    ro = requests.Session()
    ro.headers["X-API-Key"] = key
    start = time.time()
    answers = [mia.get("/users/me"), mia.get("/users/usr_unknown"),
               mia.put("/users/me", {"avatar_url": "javascript:alert(1)"}),
               ro.put(server.url(API + "/users/me"), json={"bio": "x"}),
               ro.get(server.url(API + "/users/me"))]
    assert [r.status_code for r in answers] == [200, 404, 422, 403, 200]
    remaining = [limited(r, 5) for r in answers]
    if quick(start, 5):
        assert remaining == [4, 3, 2, 1, 0]  # the key is its user: one bucket


def test_messages_category_counts_posts_edits_and_reactions(start_server):
    server = start_server(["--rate-limit-messages", "3"], rate_limits=True)
    carol = register(server, "carol")
    channel = carol.ok("POST", "/channels", {"name": "c"}, status=201)
    start = time.time()
    m = carol.call("POST", "/channels/%s/messages" % channel["id"], {"content": "one"})
    assert m.status_code == 201 and limited(m, 3) == 2
    r = carol.put("/messages/" + m.json()["id"], {"content": "one, edited"})
    assert r.status_code == 200 and limited(r, 3) <= 1
    r = carol.post("/messages/%s/reactions" % m.json()["id"], {"emoji": "👍"})
    assert r.status_code in (200, 201), r.text
    limited(r, 3)
    if quick(start, 3):
        refused(carol.call("POST", "/channels/%s/messages" % channel["id"], {"content": "4"}),
                "messages")
        # Reading messages is the default category, not limited by this one.
        r = carol.get("/channels/%s/messages" % channel["id"])
        assert r.status_code == 200 and int(r.headers["X-RateLimit-Limit"]) == 600


def test_anonymous_calls_are_limited_per_client_address(start_server):
    server = start_server(["--rate-limit-auth", "3"], rate_limits=True)
    here, there = requests.Session(), session_from("127.0.0.2")
    url = server.url(API + "/auth/login")
    wrong = {"username": "nobody", "password": "not the password"}

    start = time.time()
    seen = []
    for _ in range(3):
        r = here.post(url, json=wrong, timeout=30)
        assert_error(r, 401, "INVALID_CREDENTIALS")
        seen.append(limited(r, 3))
    if quick(start, 3):
        assert seen == [2, 1, 0]
        # A fourth try from the same address is refused before any password check.
        refused(here.post(url, json=wrong, timeout=30), "auth")
        # Registration is in the same category: refused from here too...
        refused(here.post(server.url(API + "/auth/register"), timeout=30,
                          json={"username": "dave", "email": "dave@example.com",
                                "password": "correct horse battery"}), "auth")
    # ...but another address has its own bucket.
    r = there.post(url, json=wrong, timeout=30)
    assert_error(r, 401, "INVALID_CREDENTIALS")
    assert limited(r, 3) == 2
    r = there.post(server.url(API + "/auth/register"), timeout=30,
                   json={"username": "dave", "email": "dave@example.com",
                         "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    assert limited(r, 3) <= 1


def test_failed_credentials_count_against_the_address_not_a_user(start_server):
    server = start_server(["--rate-limit", "2"], rate_limits=True)
    erin = register(server, "erin")
    forged = {"Authorization": "Bearer not-a-token"}
    start = time.time()
    r = requests.get(server.url(API + "/users/me"), headers=forged)
    assert_error(r, 401, "TOKEN_INVALID")
    assert limited(r, 2) == 1
    r = requests.get(server.url(API + "/users/me"))
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    limited(r, 2)
    if quick(start, 2):
        refused(requests.get(server.url(API + "/users/me"), headers=forged), "default")
    # A signed-in user on the same address counts in their own bucket.
    r = erin.get("/users/me")
    assert r.status_code == 200 and limited(r, 2) == 1


def test_health_is_never_limited_and_the_openapi_document_is_default(start_server):
    server = start_server(["--rate-limit", "1"], rate_limits=True)
    for _ in range(5):
        r = unlimited(requests.get(server.url("/api/health")))
        assert r.status_code == 200
    start = time.time()
    r = requests.get(server.url(API + "/openapi.json"))
    assert r.status_code == 200 and limited(r, 1) == 0
    if quick(start, 1):
        refused(requests.get(server.url(API + "/openapi.json")), "default")
    assert requests.get(server.url("/api/health")).status_code == 200


def test_default_limits_of_every_category(start_server, tmp_path):
    server = start_server(rate_limits=True)
    r = registration(server, "frank")  # the first account: the admin
    assert r.status_code == 201 and limited(r, 10) == 9
    admin_token = r.json()["access_token"]
    grace = register(server, "grace")
    assert limited(grace.get("/users/me"), 600) == 599
    assert limited(search(grace), 50) == 49
    channel = grace.ok("POST", "/channels", {"name": "d"}, status=201)
    r = grace.call("POST", "/channels/%s/messages" % channel["id"], {"content": "x"})
    assert r.status_code == 201 and limited(r, 100) == 99
    r = grace.upload("a.txt", b"hello")
    assert r.status_code == 201 and limited(r, 20) == 19
    assert limited(grace.get("/auth/api-keys"), 10) == 9
    r = requests.get(server.url(API + "/admin/users"),
                     headers={"Authorization": "Bearer " + admin_token})
    assert r.status_code == 200 and limited(r, 200) == 199
    # A non-admin on an admin route is counted in admin too, and refused.
    r = grace.get("/admin/users")
    assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
    assert limited(r, 200) == 199


def test_rate_limit_0_turns_off_every_category_without_a_value_of_its_own(start_server):
    off = start_server(["--rate-limit", "0"], rate_limits=True)
    henry = register(off, "henry")
    unlimited(henry.get("/users/me"))
    unlimited(search(henry))
    unlimited(registration(off, "ida"))
    some = start_server(["--rate-limit", "0", "--rate-limit-search", "4"], rate_limits=True)
    jack = register(some, "jack")
    unlimited(jack.get("/users/me"))
    assert limited(search(jack), 4) == 3


def test_limits_from_the_environment_and_a_config_file(start_server, tmp_path):
    cfg = tmp_path / "parley.json"
    cfg.write_text('{"rate_limit_search": 7, "rate_limit_uploads": 9}')
    server = start_server(["--config", str(cfg)], rate_limits=True,
                          env={"PARLEY_RATE_LIMIT_UPLOADS": "2"})
    kate = register(server, "kate")
    assert limited(search(kate), 7) == 6
    r = kate.upload("b.txt", b"bytes")
    assert r.status_code == 201 and limited(r, 2) == 1


def test_a_restart_forgets_the_buckets(start_server):
    server = start_server(["--rate-limit-search", "1"], rate_limits=True)
    liam = register(server, "liam")
    start = time.time()
    assert search(liam).status_code == 200
    if quick(start, 1):
        refused(search(liam), "search")
    assert server.stop() == 0
    again = start_server(["--rate-limit-search", "1"], rate_limits=True,
                         data_dir=server.data_dir, port=server.port)
    r = search(liam.on(again))
    assert r.status_code == 200 and limited(r, 1) == 0


def test_a_limit_changed_in_the_live_settings_applies_at_once_and_stays(start_server,
                                                                         tmp_path):
    data = tmp_path / "data"
    args = ["--rate-limit-search", "50"]
    server = start_server(args, data_dir=data, rate_limits=True)
    admin = register(server, "liverate")
    assert limited(search(admin), 50) == 49
    r = admin.patch("/admin/settings", {"rate_limits": {"search": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["rate_limits"]["search"] == 2
    # the bucket kept what it used (1 of 50): with a limit of 2, one is left
    start = time.time()
    remaining = limited(search(admin), 2)
    if quick(start, 2):
        assert remaining == 0
        refused(search(admin), "search")
    # kept across a restart: the stored value wins over --rate-limit-search
    assert server.stop() == 0
    server = start_server(args, data_dir=data, rate_limits=True)
    admin = admin.on(server)
    start = time.time()
    assert limited(search(admin), 2) == 1
    if quick(start, 2):
        assert limited(search(admin), 2) == 0
        refused(search(admin), "search")
    # null gives the configured values back
    r = admin.patch("/admin/settings", {"rate_limits": None})
    assert r.status_code == 200 and r.json()["rate_limits"]["search"] == 50, r.text
    assert limited(search(admin), 50) >= 40
    # 0 turns the category off
    assert admin.patch("/admin/settings", {"rate_limits": {"search": 0}}).status_code == 200
    unlimited(search(admin))
