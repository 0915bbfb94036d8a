"""/api/v1/auth end to end (docs/api.md, "Auth", "Errors", "Conventions"):
registration and its validation, login and its throttle, refresh-token
rotation and reuse detection, logout, change-password, access tokens (expired,
forged, malformed) and API keys (the rate limits: test_rate_limits.py).

Every refused request is checked for its exact status and code AND for having
changed nothing (the account was not created, the password not changed, the
login not ended...).

Password hashing is argon2id (~60 ms, two at a time), so each test keeps its
registrations and logins few. Failed logins from 127.0.0.1 count against the
per-IP throttle (20 free per server), so no test fails more than a dozen."""
import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time

import requests

from conftest import SANITIZED, assert_error, parse_raw_response
from client import (PASSWORD, jwt_claims, read_until_closed, register, registration, wait_expired,
                    wait_past, wait_read_by_peer, wait_until)

API = "/api/v1"
JSON = {"Content-Type": "application/json"}
SECRET = "e2e-jwt-secret-0123456789abcdef-0123456789"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# ---- helpers -----------------------------------------------------------------

def login(server, password=PASSWORD, **names):
    body = dict(names, password=password)
    return requests.post(server.url(API + "/auth/login"), json=body)


def refresh(server, token):
    return requests.post(server.url(API + "/auth/refresh"), json={"refresh_token": token})


def bearer(token):
    return {"Authorization": "Bearer " + token}


def me(server, headers):
    return requests.get(server.url(API + "/users/me"), headers=headers)


def new_user(server, username, password=PASSWORD):
    return register(server, username, password=password).pair


def user_count(server, token):
    r = requests.get(server.url(API + "/users"), headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["total"]


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_encode(payload, key, alg="HS256", header=None):
    """A tiny JWS encoder: HS256/HS512 with `key`, or alg none (no signature)."""
    head = header or {"alg": alg, "typ": "JWT"}
    signing = b64url(json.dumps(head, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")).encode())
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    return signing + "." + b64url(hmac.new(key, signing.encode(), digest).digest())


def hkdf_sha256(ikm, salt, info, length=32):
    """RFC 5869, as src/auth/secret.c derives the signing key from the secret."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, i = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
        i += 1
    return okm[:length]


DERIVED_JWT_KEY = hkdf_sha256(SECRET.encode(), b"parley-hkdf-salt-v1",
                              b"parley access-token HS256 key v1")


def assert_pair(body, username):
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["access_token"].count(".") == 2
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    assert body["user"]["username"] == username
    return body


def when(status, r):
    """r if it has that status, else None (a condition for wait_until)."""
    return r if r.status_code == status else None


# How long the login throttle must hold for the checks made under it (a few
# requests that hash nothing): the delay doubles with each failure past five.
THROTTLE_WINDOW = 8 if SANITIZED else 4


def throttle_until(server, name, window):
    """Guesses wrong for `name` until a guess is refused with a delay of at
    least `window` s; returns that 429 answer and its retry_after. The first
    five failures are free; from then on each guess must come 1, 2, 4 ... s
    after the last failure: a refused guess is followed by a wait for its
    Retry-After, and a guess let through must have owed no more delay."""
    for _ in range(5):
        last = time.time()
        assert_error(login(server, username=name, password="guess guess"), 401,
                     "INVALID_CREDENTIALS")
    failures = 5
    for _ in range(30):
        owed = 2 ** (failures - 5)
        sent = time.time()
        r = login(server, username=name, password="guess guess")
        if r.status_code == 401:
            # The server dates a failure in whole seconds, no earlier than
            # its request was sent: the delay owed had passed.
            assert int(time.time()) >= int(last) + owed, (failures, owed, last, r.text)
            failures, last = failures + 1, sent
            continue
        err = assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
        retry = err["details"]["retry_after"]
        assert isinstance(retry, int) and 1 <= retry <= owed, (retry, owed)
        if owed >= window:
            return r, retry
        wait_past(int(time.time()) + retry)
    raise AssertionError("the throttle never reached a %d s delay" % window)


# ---- register ------------------------------------------------------------------

def test_register_answers_201_with_a_token_pair_and_the_first_user_is_admin(server):
    r = registration(server, "alice", "Alice@Example.com", display_name="Alice A.")
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Request-Id"]
    body = assert_pair(r.json(), "alice")
    assert body["expires_in"] == 900
    user = body["user"]
    assert user["id"] and isinstance(user["id"], str)
    assert user["email"] == "Alice@Example.com"
    assert user["display_name"] == "Alice A."
    assert user["roles"] == ["user", "admin"]
    assert user["is_active"] is True
    assert user["preferences"] == {}
    assert user["status"] in ("online", "offline")
    assert TIME_RE.match(user["created_at"])
    for field in ("bio", "avatar_url", "last_seen"):
        assert field in user
    assert "password" not in json.dumps(user) and "argon2" not in json.dumps(user)

    # The tokens work, and the account can log in.
    r = me(server, bearer(body["access_token"]))
    assert r.status_code == 200 and r.json()["id"] == user["id"]
    assert login(server, username="alice").status_code == 200

    second = registration(server, "bob")
    assert second.status_code == 201, second.text
    assert second.json()["user"]["roles"] == ["user"]
    assert second.json()["user"]["display_name"] == "bob"  # defaults to the username
    assert second.json()["user"]["id"] != user["id"]


def test_duplicate_username_or_email_is_409_case_insensitively(server):
    admin = new_user(server, "carol")
    for username, email, field in (("CAROL", "other@example.com", "username"),
                                   ("Carol", "other2@example.com", "username"),
                                   ("dave", "CAROL@EXAMPLE.COM", "email")):
        r = registration(server, username, email, password="another password")
        err = assert_error(r, 409, "CONFLICT")
        assert err["details"]["field"] == field
    assert user_count(server, admin["access_token"]) == 1
    # The refused registrations changed nothing: carol's password is hers,
    # and "dave" is still free.
    assert_error(login(server, username="carol", password="another password"), 401,
                 "INVALID_CREDENTIALS")
    assert login(server, username="carol").status_code == 200
    assert registration(server, "dave").status_code == 201


def test_bad_usernames_are_422(server):
    admin = new_user(server, "admin_1")
    bad = ["ab", "a" * 33, "", "bad name", "bad@name", "na\u00efve", "a/b", "semi;colon",
           " padded", "tab\tbed", "x" * 5000]
    for name in bad:
        err = assert_error(registration(server, name, "ok%d@example.com" % len(name)), 422,
                           "VALIDATION_ERROR")
        assert err["details"]["field"] == "username", name
    assert user_count(server, admin["access_token"]) == 1
    # The edges are accepted: 3 and 32 characters of [A-Za-z0-9_.-].
    assert registration(server, "a.b").status_code == 201
    assert registration(server, "Z_" + "9" * 28 + ".-").status_code == 201


def test_bad_emails_are_422(server):
    admin = new_user(server, "admin_2")
    bad = ["plain", "a@b", "@example.com", "a@@example.com", "a@b@example.com",
           "a b@example.com", "a@example.", "a@.com", "", "<a>@example.com",
           "x" * 250 + "@example.com"]
    for i, email in enumerate(bad):
        err = assert_error(registration(server, "user%d" % i, email), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "email", email
    assert user_count(server, admin["access_token"]) == 1
    assert registration(server, "user0", "user0@mail.example.org").status_code == 201


def test_password_must_be_8_to_128_characters(server):
    admin = new_user(server, "admin_3")
    for pw in ("1234567", "x" * 129, "\u00e9" * 129, "", "tab\tin password"):
        err = assert_error(registration(server, "erin", password=pw), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "password"
    assert user_count(server, admin["access_token"]) == 1
    # Characters, not bytes: 8 two-byte characters and 128 four-byte ones pass.
    assert registration(server, "erin", password="\u00e9" * 8).status_code == 201
    assert login(server, username="erin", password="\u00e9" * 8).status_code == 200
    assert registration(server, "frank", password="\U0001f511" * 128).status_code == 201
    assert registration(server, "gina", password="y" * 128).status_code == 201
    assert login(server, username="gina", password="y" * 128).status_code == 200


def test_wrong_json_types_and_missing_fields_are_422_naming_the_field(server):
    admin = new_user(server, "admin_4")
    good = {"username": "henry", "email": "henry@example.com", "password": PASSWORD}
    cases = [
        ({"username": 5}, "username"),
        ({"username": ["henry"]}, "username"),
        ({"username": {"a": 1}}, "username"),
        ({"email": True}, "email"),
        ({"email": 1.5}, "email"),
        ({"password": None}, "password"),
        ({"password": 12345678}, "password"),
        ({"display_name": 5}, "display_name"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "d" * 65}, "display_name"),
    ]
    for change, field in cases:
        body = dict(good, **change)
        r = requests.post(server.url(API + "/auth/register"), json=body)
        err = assert_error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, (change, err)
    for missing in ("username", "email", "password"):
        body = {k: v for k, v in good.items() if k != missing}
        r = requests.post(server.url(API + "/auth/register"), json=body)
        err = assert_error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == missing
    assert_error(requests.post(server.url(API + "/auth/register"), json={}), 422,
                 "VALIDATION_ERROR")
    # Not a JSON object at all.
    for raw in (b"[]", b'"henry"', b"null"):
        r = requests.post(server.url(API + "/auth/register"), data=raw, headers=JSON)
        assert_error(r, 422, "VALIDATION_ERROR")
    assert user_count(server, admin["access_token"]) == 1
    assert requests.post(server.url(API + "/auth/register"), json=good).status_code == 201


def test_register_refuses_unknown_fields_including_privilege_ones(server):
    new_user(server, "admin_5")
    r = registration(server, "ivan", roles=["admin"], is_admin=True, id="usr_chosen",
                     is_active=False, favourite_colour="green")
    err = assert_error(r, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] in ("roles", "is_admin", "id", "is_active",
                                       "favourite_colour"), err
    assert login(server, username="ivan").status_code == 401  # no account was made
    r = registration(server, "ivan")
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert user["roles"] == ["user"]
    assert user["is_active"] is True
    assert login(server, username="ivan").status_code == 200


def test_malformed_bodies_are_400_and_create_nothing(server):
    admin = new_user(server, "admin_6")
    url = server.url(API + "/auth/register")
    bad_utf8 = b'{"username":"jack\xff","email":"jack@example.com","password":"%s"}' % \
        PASSWORD.encode()
    assert_error(requests.post(url, data=bad_utf8, headers=JSON), 400, "BAD_REQUEST")
    lone_surrogate = b'{"username":"jack","email":"jack@example.com","password":"ab\\ud800cdefgh"}'
    assert_error(requests.post(url, data=lone_surrogate, headers=JSON), 400, "BAD_REQUEST")
    assert_error(requests.post(url, data=b'{"username":"jack",', headers=JSON), 400,
                 "BAD_REQUEST")
    form = "username=jack&email=jack@example.com&password=" + PASSWORD
    assert_error(requests.post(url, data=form, headers={
        "Content-Type": "application/x-www-form-urlencoded"}), 400, "BAD_REQUEST")
    dup = b'{"username":"jack","username":"jill","email":"j@example.com","password":"%s"}' % \
        PASSWORD.encode()
    assert_error(requests.post(url, data=dup, headers=JSON), 400, "BAD_REQUEST")
    assert user_count(server, admin["access_token"]) == 1
    assert registration(server, "jack").status_code == 201


def test_huge_strings_are_422_or_413_by_size(server):
    admin = new_user(server, "admin_7")
    url = server.url(API + "/auth/register")
    # Within the body limit of a public route (--public-body-bytes, 16 KiB):
    # a value check (422) naming the field.
    for field, value in (("username", "k" * 10000), ("email", "k" * 10000 + "@example.com"),
                         ("password", "k" * 15000), ("display_name", "k" * 10000)):
        body = {"username": "kate", "email": "kate@example.com", "password": PASSWORD}
        body[field] = value
        err = assert_error(requests.post(url, json=body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field
    # Over the limit: 413 before the body is parsed.
    body = {"username": "kate", "email": "kate@example.com", "password": "k" * 20000}
    err = assert_error(requests.post(url, json=body), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["max_bytes"] == 16384
    assert user_count(server, admin["access_token"]) == 1
    assert registration(server, "kate").status_code == 201


# ---- login ---------------------------------------------------------------------

def test_login_by_username_email_or_either_case_insensitively(server):
    uid = new_user(server, "Laura")["user"]["id"]
    for names in ({"username": "Laura"}, {"username": "laura"}, {"username": "LAURA"},
                  {"email": "laura@example.com"}, {"email": "LAURA@Example.COM"},
                  {"username_or_email": "lAuRa"}, {"username_or_email": "laura@EXAMPLE.com"}):
        r = login(server, **names)
        assert r.status_code == 200, (names, r.text)
        body = assert_pair(r.json(), "Laura")
        assert body["user"]["id"] == uid
        assert body["user"]["email"] == "laura@example.com"
        assert me(server, bearer(body["access_token"])).json()["id"] == uid
    # remember_me is accepted.
    assert login(server, username="laura", remember_me=True).status_code == 200


def test_wrong_password_and_unknown_user_are_the_same_401(server):
    new_user(server, "mike")
    wrong = assert_error(login(server, username="mike", password="not the password"), 401,
                         "INVALID_CREDENTIALS")
    unknown = assert_error(login(server, username="nobody_here"), 401, "INVALID_CREDENTIALS")
    by_email = assert_error(login(server, email="nobody@example.com"), 401,
                            "INVALID_CREDENTIALS")
    assert wrong["message"] == unknown["message"] == by_email["message"]
    # A prefix or a case variant of the password is wrong too.
    assert_error(login(server, username="mike", password=PASSWORD.upper()), 401,
                 "INVALID_CREDENTIALS")
    assert login(server, username="mike").status_code == 200


def test_login_validation_is_422(server):
    url = server.url(API + "/auth/login")
    for body, field in (({"password": PASSWORD}, "username"),
                        ({"username": "x"}, "password"),
                        ({"username": 5, "password": PASSWORD}, "username"),
                        ({"username": "x", "password": 5}, "password"),
                        ({"username": "x", "password": PASSWORD, "remember_me": "yes"},
                         "remember_me")):
        err = assert_error(requests.post(url, json=body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, body
    assert_error(requests.post(url, data=b"{", headers=JSON), 400, "BAD_REQUEST")


def test_brute_force_is_throttled_per_account_with_retry_after(server):
    new_user(server, "nina")
    new_user(server, "oscar")
    r, retry = throttle_until(server, "nina", THROTTLE_WINDOW)
    free_at = int(time.time()) + retry
    assert r.headers["Retry-After"] == str(retry)
    # The right password is refused too while the account is throttled, by
    # any spelling of the account.
    for names in ({"username": "nina"}, {"username": "NINA"}, {"email": "nina@example.com"},
                  {"username_or_email": "Nina@Example.com"}):
        assert_error(login(server, **names), 429, "RATE_LIMIT_EXCEEDED")
    # Another account from the same address is not blocked.
    assert login(server, username="oscar").status_code == 200
    # After Retry-After the right password works (and clears the failures).
    wait_past(free_at)
    wait_until(lambda: when(200, login(server, username="nina")),
               what="the login after Retry-After", interval=0.2)
    assert login(server, email="nina@example.com").status_code == 200


def test_parallel_guesses_cannot_slip_past_the_throttle(server):
    new_user(server, "paula")
    results = []
    barrier = threading.Barrier(11)

    def guess():
        barrier.wait()
        results.append(login(server, username="paula", password="parallel guess").status_code)

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for t in threads:
        t.start()
    # The throttle counts whole seconds: a burst that straddles a second
    # boundary may let a sixth guess through (a seventh only 2 s later...),
    # so start at the top of one, and allow what the seconds passed allow.
    wait_past(int(time.time()) + 1, margin=0.05)
    started = time.time()
    barrier.wait()
    for t in threads:
        t.join()
    passed = int(time.time()) - int(started)  # second boundaries crossed
    extra = 0
    while 2 ** (extra + 1) - 1 <= passed:     # delays 1, 2, 4 ... s after the fifth
        extra += 1
    assert set(results) <= {401, 429} and len(results) == 10, results
    assert 5 <= results.count(401) <= 5 + extra, (results, passed)


# ---- refresh, logout, change-password ---------------------------------------------

def test_refresh_rotates_and_reuse_revokes_the_whole_login(server):
    first = new_user(server, "quinn")
    other = login(server, username="quinn").json()  # a second, independent login
    r = refresh(server, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = assert_pair(r.json(), "quinn")
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert me(server, bearer(second["access_token"])).status_code == 200
    r = refresh(server, second["refresh_token"])
    assert r.status_code == 200
    third = r.json()
    assert me(server, bearer(third["access_token"])).status_code == 200

    # The spent token comes back: refused, and the whole login is revoked.
    assert_error(refresh(server, first["refresh_token"]), 401, "TOKEN_INVALID")
    assert_error(refresh(server, third["refresh_token"]), 401, "TOKEN_INVALID")
    for pair in (first, second, third):
        assert_error(me(server, bearer(pair["access_token"])), 401, "TOKEN_INVALID")
    # The other login of the same user is untouched.
    assert me(server, bearer(other["access_token"])).status_code == 200
    assert refresh(server, other["refresh_token"]).status_code == 200


def test_bad_refresh_tokens_are_refused_without_harming_the_login(server):
    pair = new_user(server, "rita")
    tok = pair["refresh_token"]
    sid, gen, mac = tok.split(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    for bad in ("garbage", pair["access_token"], "%s.%s.%s" % (sid, gen, flipped),
                "%s.%d.%s" % (sid, int(gen) + 1, mac), "%s.0%s.%s" % (sid, gen, mac),
                "ses_unknown.1." + "a" * 64, tok + "x", tok.upper(), "." * 3):
        assert_error(refresh(server, bad), 401, "TOKEN_INVALID")
    for body in ({}, {"refresh_token": 5}, {"refresh_token": ""}):
        r = requests.post(server.url(API + "/auth/refresh"), json=body)
        err = assert_error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "refresh_token"
    # None of that revoked anything: the real token still rotates once.
    assert me(server, bearer(pair["access_token"])).status_code == 200
    r = refresh(server, tok)
    assert r.status_code == 200, r.text


def test_concurrent_refreshes_of_one_token_give_one_new_pair(server):
    """A guard more than a probe: the window between reading the session and
    writing it back is microseconds wide, so this rarely catches a missing
    lock; store_session_modify (the check and the rotation under the store's
    write lock) is what closes it, and its unit test races it directly."""
    pair = new_user(server, "rob")
    results = []
    barrier = threading.Barrier(6)

    def go():
        barrier.wait()
        r = refresh(server, pair["refresh_token"])
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [body for status, body in results if status == 200]
    # Only one presentation of a refresh token can rotate it; the others are
    # a reuse, which revokes the login (a thief raced the owner).
    assert len(ok) <= 1, results
    assert all(status in (200, 401) for status, _ in results)


def test_logout_ends_the_access_and_refresh_token_at_once(server):
    a = new_user(server, "sam")
    b = login(server, username="sam").json()
    r = requests.post(server.url(API + "/auth/logout"), headers=bearer(a["access_token"]))
    assert r.status_code == 204 and r.content == b""
    assert_error(me(server, bearer(a["access_token"])), 401, "TOKEN_INVALID")
    assert_error(refresh(server, a["refresh_token"]), 401, "TOKEN_INVALID")
    assert_error(requests.post(server.url(API + "/auth/logout"),
                               headers=bearer(a["access_token"])), 401, "TOKEN_INVALID")
    # The other login goes on.
    assert me(server, bearer(b["access_token"])).status_code == 200
    assert refresh(server, b["refresh_token"]).status_code == 200
    assert_error(requests.post(server.url(API + "/auth/logout")), 401, "AUTHENTICATION_REQUIRED")


def test_logout_racing_a_refresh_stays_logged_out(server):
    """A refresh that read the session before a logout must not write it back
    un-revoked. (A guard, like the test above: the window is microseconds.)"""
    pairs = [new_user(server, "race%d" % i) for i in range(3)]
    pairs += [login(server, username="race%d" % (i % 3)).json() for i in range(5)]
    barrier = threading.Barrier(2 * len(pairs))
    refreshed = {}

    def do_refresh(i, pair):
        barrier.wait()
        refreshed[i] = refresh(server, pair["refresh_token"])

    def do_logout(pair):
        barrier.wait()
        r = requests.post(server.url(API + "/auth/logout"), headers=bearer(pair["access_token"]))
        assert r.status_code in (204, 401)

    threads = []
    for i, pair in enumerate(pairs):
        threads.append(threading.Thread(target=do_refresh, args=(i, pair)))
        threads.append(threading.Thread(target=do_logout, args=(pair,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, pair in enumerate(pairs):
        r = refreshed[i]
        if r.status_code == 200:
            new = r.json()
            # Whatever the order, the login ended: none of its tokens works.
            assert_error(me(server, bearer(new["access_token"])), 401, "TOKEN_INVALID")
            assert_error(refresh(server, new["refresh_token"]), 401, "TOKEN_INVALID")
        assert_error(me(server, bearer(pair["access_token"])), 401, "TOKEN_INVALID")


def test_change_password(server):
    cur = new_user(server, "tina")
    other = login(server, username="tina").json()
    url = server.url(API + "/auth/change-password")
    h = bearer(cur["access_token"])

    err = assert_error(requests.put(url, headers=h, json={
        "current_password": "wrong password", "new_password": "brand new password"}), 401,
        "INVALID_CREDENTIALS")
    for body, field in (({"current_password": PASSWORD, "new_password": "1234567"},
                         "new_password"),
                        ({"current_password": PASSWORD, "new_password": "n" * 129},
                         "new_password"),
                        ({"current_password": PASSWORD}, "new_password"),
                        ({"new_password": "brand new password"}, "current_password"),
                        ({"current_password": 5, "new_password": "brand new password"},
                         "current_password")):
        err = assert_error(requests.put(url, headers=h, json=body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field
    assert_error(requests.put(url, json={"current_password": PASSWORD,
                                         "new_password": "brand new password"}),
                 401, "AUTHENTICATION_REQUIRED")
    # Nothing changed so far: the other login works, the old password too.
    assert me(server, bearer(other["access_token"])).status_code == 200
    assert login(server, username="tina").status_code == 200

    # The logins made just above are "other" logins too.
    r = requests.put(url, headers=h, json={"current_password": PASSWORD,
                                           "new_password": "brand new password"})
    assert r.status_code == 204, r.text
    assert_error(login(server, username="tina"), 401, "INVALID_CREDENTIALS")
    assert login(server, username="tina", password="brand new password").status_code == 200
    assert_error(me(server, bearer(other["access_token"])), 401, "TOKEN_INVALID")
    assert_error(refresh(server, other["refresh_token"]), 401, "TOKEN_INVALID")
    # The login that changed it goes on, access and refresh.
    assert me(server, h).status_code == 200
    assert refresh(server, cur["refresh_token"]).status_code == 200


def test_change_password_keeps_a_profile_change_made_meanwhile(server):
    """change-password hashes for ~100 ms; a PUT /users/me landing meanwhile
    must not be undone by it."""
    pair = new_user(server, "ulla")
    h = bearer(pair["access_token"])
    body = json.dumps({"current_password": PASSWORD,
                       "new_password": "brand new password"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as change:
        change.sendall(("PUT %s/auth/change-password HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: %s\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\nContent-Length: %d\r\n\r\n"
                        % (API, h["Authorization"], len(body))).encode() + body)
        # The server has the whole request: it is hashing now.
        wait_read_by_peer(change)
        r = requests.put(server.url(API + "/users/me"), headers=h,
                         json={"display_name": "Ulla Updated", "bio": "hello"})
        assert r.status_code == 200, r.text
        answer = read_until_closed(change)
    status, _, payload = parse_raw_response(answer)
    assert status == 204, payload
    body = me(server, h).json()
    assert body["display_name"] == "Ulla Updated"
    assert body["bio"] == "hello"
    assert login(server, username="ulla", password="brand new password").status_code == 200


# ---- access tokens ---------------------------------------------------------------

def test_no_credentials_is_401_authentication_required(server):
    for path in ("/users/me", "/users", "/auth/api-keys"):
        assert_error(requests.get(server.url(API + path)), 401, "AUTHENTICATION_REQUIRED")
    assert_error(requests.put(server.url(API + "/users/me"), json={"bio": "x"}), 401,
                 "AUTHENTICATION_REQUIRED")


def test_malformed_authorization_headers_are_401_token_invalid(server):
    pair = new_user(server, "victor")
    tok = pair["access_token"]
    for value in ("Bearer abc", "Bearer a.b.c", tok, "Basic " + tok, "Token " + tok, "Bearer",
                  "Bearer ", "", "Bearer " + tok + "x", "Bearer " + tok[:-2],
                  "Bearer " + tok + " extra", "Bearer x" + tok):
        assert_error(me(server, {"Authorization": value}), 401, "TOKEN_INVALID")
    # The scheme is case-insensitive (RFC 7235).
    assert me(server, {"Authorization": "bearer " + tok}).status_code == 200
    assert me(server, {"Authorization": "BEARER " + tok}).status_code == 200


def test_expired_access_token_is_token_expired_and_refresh_still_works(start_server):
    server = start_server(["--access-token-ttl", "1"])
    pair = new_user(server, "wanda")
    assert pair["expires_in"] == 1
    wait_expired(pair["access_token"])
    r = wait_until(lambda: when(401, me(server, bearer(pair["access_token"]))),
                   what="the access token expires", interval=0.1)
    assert_error(r, 401, "TOKEN_EXPIRED")
    r = refresh(server, pair["refresh_token"])
    assert r.status_code == 200, r.text
    assert me(server, bearer(r.json()["access_token"])).status_code == 200


def test_forged_tokens_are_token_invalid(start_server):
    server = start_server(env={"PARLEY_JWT_SECRET": SECRET})
    pair = new_user(server, "xena")
    other = new_user(server, "yuri")
    tok = pair["access_token"]
    claims = jwt_claims(tok)
    assert claims["sub"] == pair["user"]["id"] and claims["iss"] == "parley"
    now = int(time.time())
    fresh = dict(claims, iat=now, exp=now + 600, jti="f" * 32)

    # Positive control: HS256 under the key the server derives (HKDF) is
    # accepted, so the refusals below are about what was changed, nothing else.
    assert me(server, bearer(jwt_encode(fresh, DERIVED_JWT_KEY))).status_code == 200

    forged = {
        "raw secret HS256": jwt_encode(fresh, SECRET.encode()),
        "raw secret HS512": jwt_encode(fresh, SECRET.encode(), "HS512"),
        "other secret": jwt_encode(fresh, b"some-other-secret-0123456789abcdef"),
        "right key, HS512": jwt_encode(fresh, DERIVED_JWT_KEY, "HS512"),
        "alg none": jwt_encode(fresh, b"", "none"),
        "alg none, signature kept": jwt_encode(fresh, b"", "none") + tok.split(".")[2],
        "alg NONE": jwt_encode(fresh, b"", "none", header={"alg": "NONE", "typ": "JWT"}),
        "sub changed, old signature": ".".join(
            [tok.split(".")[0], b64url(json.dumps(dict(claims, sub=other["user"]["id"]))
                                       .encode()), tok.split(".")[2]]),
        "exp changed, old signature": ".".join(
            [tok.split(".")[0], b64url(json.dumps(dict(claims, exp=claims["exp"] + 9999))
                                       .encode()), tok.split(".")[2]]),
        # Properly signed, but the claims do not hold together.
        "sub of another user on my session": jwt_encode(dict(fresh, sub=other["user"]["id"]),
                                                        DERIVED_JWT_KEY),
        "unknown session": jwt_encode(dict(fresh, sid="ses_0000000000000000aaaa"),
                                      DERIVED_JWT_KEY),
        "wrong issuer": jwt_encode(dict(fresh, iss="evil"), DERIVED_JWT_KEY),
        "iat far ahead": jwt_encode(dict(fresh, iat=now + 3600, exp=now + 7200),
                                    DERIVED_JWT_KEY),
        "exp before iat": jwt_encode(dict(fresh, iat=now, exp=now - 1), DERIVED_JWT_KEY),
        "exp a string": jwt_encode(dict(fresh, exp=str(now + 600)), DERIVED_JWT_KEY),
        "no sid": jwt_encode({k: v for k, v in fresh.items() if k != "sid"}, DERIVED_JWT_KEY),
        "expired and forged": jwt_encode(dict(fresh, iat=now - 100, exp=now - 50),
                                         b"some-other-secret-0123456789abcdef"),
        "5000 bytes": jwt_encode(dict(fresh, pad="p" * 5000), DERIVED_JWT_KEY),
        "two parts": ".".join(tok.split(".")[:2]),
    }
    for name, bad in forged.items():
        r = me(server, bearer(bad))
        assert r.status_code == 401, name
        assert_error(r, 401, "TOKEN_INVALID")
    r = me(server, bearer("a" * 5000))
    assert_error(r, 401, "TOKEN_INVALID")
    # Only an authentic token past its exp is TOKEN_EXPIRED.
    expired = jwt_encode(dict(fresh, iat=now - 100, exp=now - 50), DERIVED_JWT_KEY)
    assert_error(me(server, bearer(expired)), 401, "TOKEN_EXPIRED")
    # The real tokens still work.
    assert me(server, bearer(tok)).json()["id"] == pair["user"]["id"]
    assert me(server, bearer(other["access_token"])).json()["id"] == other["user"]["id"]


# ---- API keys ------------------------------------------------------------------

def create_key(server, token, **body):
    return requests.post(server.url(API + "/auth/api-keys"), headers=bearer(token), json=body)


def test_api_key_lifecycle(server):
    pair = new_user(server, "zara")
    tok = pair["access_token"]
    r = create_key(server, tok, name="ci bot", permissions=["read", "write"])
    assert r.status_code == 201, r.text
    key = r.json()
    assert re.match(r"^plx_[0-9a-f]{64}$", key["key"])
    assert key["name"] == "ci bot" and sorted(key["permissions"]) == ["read", "write"]
    assert key["expires_at"] is None and TIME_RE.match(key["created_at"])
    assert key["id"]

    r = requests.get(server.url(API + "/auth/api-keys"), headers=bearer(tok))
    assert r.status_code == 200
    listed = r.json()["api_keys"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0] and key["key"] not in r.text
    assert listed[0]["name"] == "ci bot"

    h = {"X-API-Key": key["key"]}
    r = me(server, h)
    assert r.status_code == 200 and r.json()["id"] == pair["user"]["id"]
    r = requests.put(server.url(API + "/users/me"), headers=h, json={"bio": "by key"})
    assert r.status_code == 200 and r.json()["bio"] == "by key"

    r = requests.delete(server.url(API + "/auth/api-keys/" + key["id"]), headers=bearer(tok))
    assert r.status_code == 204
    assert_error(me(server, h), 401, "TOKEN_INVALID")
    assert_error(requests.delete(server.url(API + "/auth/api-keys/" + key["id"]),
                                 headers=bearer(tok)), 404, "RESOURCE_NOT_FOUND")
    assert requests.get(server.url(API + "/auth/api-keys"),
                        headers=bearer(tok)).json()["api_keys"] == []
    # Keys that were never issued.
    for bad in ("plx_" + "0" * 64, "plx_nothex", "", key["key"].upper(), "Bearer " + key["key"]):
        assert_error(me(server, {"X-API-Key": bad}), 401, "TOKEN_INVALID")


def test_api_key_permissions(server):
    tok = new_user(server, "abel")["access_token"]
    ro = create_key(server, tok, name="reader", permissions=["read"]).json()
    wo = create_key(server, tok, name="writer", permissions=["write"]).json()
    assert ro["permissions"] == ["read"] and wo["permissions"] == ["write"]
    assert me(server, {"X-API-Key": ro["key"]}).status_code == 200
    r = requests.put(server.url(API + "/users/me"), headers={"X-API-Key": ro["key"]},
                     json={"bio": "nope"})
    assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
    assert me(server, bearer(tok)).json()["bio"] is None
    r = requests.post(server.url(API + "/auth/api-keys"), headers={"X-API-Key": ro["key"]},
                      json={"name": "k2", "permissions": ["read", "write"]})
    assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(me(server, {"X-API-Key": wo["key"]}), 403, "INSUFFICIENT_PERMISSIONS")
    r = requests.put(server.url(API + "/users/me"), headers={"X-API-Key": wo["key"]},
                     json={"bio": "written"})
    assert r.status_code == 200, r.text
    assert me(server, bearer(tok)).json()["bio"] == "written"
    keys = requests.get(server.url(API + "/auth/api-keys"), headers=bearer(tok)).json()
    assert sorted(k["name"] for k in keys["api_keys"]) == ["reader", "writer"]


def test_an_api_key_cannot_mint_api_keys_or_log_out(server):
    """A write-only key must not give itself read access (or a fresh key that
    outlives its own revocation) by creating another key."""
    tok = new_user(server, "boris")["access_token"]
    wo = create_key(server, tok, name="writer", permissions=["write"]).json()
    rw = create_key(server, tok, name="both", permissions=["read", "write"]).json()
    for key in (wo, rw):
        r = requests.post(server.url(API + "/auth/api-keys"), headers={"X-API-Key": key["key"]},
                          json={"name": "minted", "permissions": ["read", "write"]})
        assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
        r = requests.post(server.url(API + "/auth/logout"), headers={"X-API-Key": key["key"]})
        assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")  # logout needs a login
        assert requests.put(server.url(API + "/users/me"), headers={"X-API-Key": key["key"]},
                            json={"bio": "still works"}).status_code == 200
    keys = requests.get(server.url(API + "/auth/api-keys"), headers=bearer(tok)).json()
    assert sorted(k["name"] for k in keys["api_keys"]) == ["both", "writer"]


def test_api_key_validation(server):
    tok = new_user(server, "bella")["access_token"]
    for body, field in (({"name": "k", "permissions": []}, "permissions"),
                        ({"name": "k", "permissions": ["admin"]}, "permissions"),
                        ({"name": "k", "permissions": "read"}, "permissions"),
                        ({"name": "k", "permissions": ["read", 5]}, "permissions"),
                        ({"name": "k"}, "permissions"),
                        ({"permissions": ["read"]}, "name"),
                        ({"name": "", "permissions": ["read"]}, "name"),
                        ({"name": "n" * 101, "permissions": ["read"]}, "name"),
                        ({"name": "k", "permissions": ["read"],
                          "expires_at": "2001-01-01T00:00:00.000Z"}, "expires_at"),
                        ({"name": "k", "permissions": ["read"], "expires_at": "tomorrow"},
                         "expires_at"),
                        ({"name": "k", "permissions": ["read"], "expires_at": 12345},
                         "expires_at")):
        err = assert_error(create_key(server, tok, **body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, body
    assert requests.get(server.url(API + "/auth/api-keys"),
                        headers=bearer(tok)).json()["api_keys"] == []
    assert_error(requests.post(server.url(API + "/auth/api-keys"),
                               json={"name": "k", "permissions": ["read"]}), 401,
                 "AUTHENTICATION_REQUIRED")


def test_api_key_expires(server):
    tok = new_user(server, "cora")["access_token"]
    soon = time.time() + 4   # time enough to see it work first, on a busy machine
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(soon)) + ".%03dZ" % (
        int(soon * 1000) % 1000)
    r = create_key(server, tok, name="short", permissions=["read"], expires_at=stamp)
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["expires_at"] == stamp
    assert me(server, {"X-API-Key": key["key"]}).status_code == 200
    wait_past(soon)
    r = wait_until(lambda: when(401, me(server, {"X-API-Key": key["key"]})),
                   what="the API key expires", interval=0.1)
    assert_error(r, 401, "TOKEN_INVALID")


def test_another_users_api_key_cannot_be_deleted(server):
    a = new_user(server, "dina")["access_token"]
    b = new_user(server, "egon")["access_token"]
    key = create_key(server, a, name="mine", permissions=["read"]).json()
    assert_error(requests.delete(server.url(API + "/auth/api-keys/" + key["id"]),
                                 headers=bearer(b)), 404, "RESOURCE_NOT_FOUND")
    assert_error(requests.delete(server.url(API + "/auth/api-keys/key_000000000000"),
                                 headers=bearer(a)), 404, "RESOURCE_NOT_FOUND")
    assert requests.get(server.url(API + "/auth/api-keys"),
                        headers=bearer(b)).json()["api_keys"] == []
    # Still alive for its owner.
    assert me(server, {"X-API-Key": key["key"]}).status_code == 200
