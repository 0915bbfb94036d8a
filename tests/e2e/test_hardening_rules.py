"""Rules a security tester broke (issue 15), end to end: account-security
routes need a login, never an API key; a password change revokes the API
keys; two-factor codes have one throttle per account that a right password
does not reset and that every code-taking route shares; idempotency keys are
scoped to (user, channel); a message in a channel one may not see answers as
a missing one; bidirectional controls are stripped from filenames;
avatar_url resolves to an image of the user's own or is an https URL; a
message attaches only its author's files (a moderator may share the
channel's) and its deletion deletes only what it owns."""
import json
import uuid

import pytest
import requests

from client import API, PASSWORD, multipart, register, session_from, wait_until
from conftest import assert_error, module_server
from test_files import assert_tmp_empty, new_channel, png, text
from test_mfa import enable_mfa, now_step, totp


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "hardening-rules")


@pytest.fixture(scope="module", autouse=True)
def root(srv):
    admin = register(srv, "rules_root")
    assert "admin" in admin.user["roles"]
    return admin


def user(srv, prefix):
    return register(srv, "%s_%s" % (prefix, uuid.uuid4().hex[:8]))


def new_key(who, perms=("read", "write")):
    return who.ok("POST", "/auth/api-keys", {"name": "k", "permissions": list(perms)}, 201)


def by_key(srv, key, method, path, body=None):
    return requests.request(method, srv.url(API + path), headers={"X-API-Key": key["key"]},
                            json=body, timeout=30)


def login(srv, name, password=PASSWORD, net=requests, **extra):
    return net.post(srv.url(API + "/auth/login"),
                    json=dict({"username": name, "password": password}, **extra), timeout=30)


# ---- API keys and account security (items 13, "API keys and password change") --

ACCOUNT_SECURITY = [
    ("POST", "/auth/mfa/setup", {}),
    ("POST", "/auth/mfa/enable", {"code": "123456"}),
    ("POST", "/auth/mfa/disable", {"code": "123456"}),
    ("PUT", "/auth/change-password", {"current_password": PASSWORD,
                                      "new_password": "another long password"}),
    ("POST", "/auth/api-keys", {"name": "successor", "permissions": ["read", "write"]}),
    ("GET", "/auth/api-keys", None),
    ("DELETE", "/auth/api-keys/key_whatever", None),
    ("POST", "/auth/logout", {}),
]


def test_an_api_key_cannot_enroll_two_factor_or_touch_account_security(srv):
    alice = user(srv, "keymfa")
    key = new_key(alice)
    assert by_key(srv, key, "GET", "/users/me").status_code == 200  # the key works
    for method, path, body in ACCOUNT_SECURITY:
        err = assert_error(by_key(srv, key, method, path, body), 403, "INSUFFICIENT_PERMISSIONS")
        assert "login" in err["message"], (method, path, err)
    # Nothing changed: no pending secret was made (setup from the login
    # answers a fresh one and enabling it works), the password is the same,
    # the key is the only one and still live.
    assert login(srv, alice.username).status_code == 200
    assert [k["id"] for k in alice.ok("GET", "/auth/api-keys")["api_keys"]] == [key["id"]]
    secret, _ = enable_mfa(srv, alice.token)
    assert secret
    assert by_key(srv, key, "GET", "/users/me").json()["id"] == alice.id


def test_a_password_change_revokes_every_api_key_durably(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    bob = register(server, "pwkeys")
    keys = [new_key(bob), new_key(bob, ("read",))]
    for k in keys:
        assert by_key(server, k, "GET", "/users/me").status_code == 200
    r = bob.put("/auth/change-password", {"current_password": PASSWORD,
                                          "new_password": "a new long password"})
    assert r.status_code == 204, r.text
    for k in keys:
        assert_error(by_key(server, k, "GET", "/users/me"), 401, "TOKEN_INVALID")
    # The login that changed it stays, and lists no live key; a new key works.
    assert bob.ok("GET", "/auth/api-keys")["api_keys"] == []
    fresh = new_key(bob)
    assert by_key(server, fresh, "GET", "/users/me").status_code == 200
    audit = bob.get("/admin/audit-log", action="auth.password_change", target=bob.id).json()
    assert audit["entries"][0]["details"] == {"api_keys_revoked": 2}
    # After a restart the old keys stay revoked, the new one works.
    assert server.stop() == 0
    again = start_server(data_dir=tmp_path / "d")
    for k in keys:
        assert_error(by_key(again, k, "GET", "/users/me"), 401, "TOKEN_INVALID")
    assert by_key(again, fresh, "GET", "/users/me").status_code == 200


# ---- two-factor code throttle (item 6) ------------------------------------------

def wrong_code(secret):
    good = {totp(secret, now_step() + d) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in good)


def mfa_user(srv, prefix, address):
    """A user with two-factor on whose calls (its session's, and those given
    `net`) come from `address`: the code failures also count against the
    client address (20 free), which each test keeps to itself."""
    name = "%s_%s" % (prefix, uuid.uuid4().hex[:8])
    who = register(srv, name)
    secret, _ = enable_mfa(srv, who.token)
    net = session_from(address)
    who.session = session_from(address)
    who.session.headers["Authorization"] = "Bearer " + who.token
    return who, name, secret, net


def temp_token(srv, name, net):
    err = assert_error(login(srv, name, net=net), 401, "MFA_REQUIRED")
    return err["details"]["temp_token"]


def verify(srv, temp, code, net):
    return net.post(srv.url(API + "/auth/mfa/verify"),
                    json={"temp_token": temp, "mfa_code": code}, timeout=30)


def until_throttled(attempt, rounds):
    """Calls attempt() up to `rounds` times until it answers 429 (each other
    answer must be a wrong code's 401); fails when none did. The 429."""
    seen = []
    for _ in range(rounds):
        r = attempt()
        seen.append(r.status_code)
        if r.status_code == 429:
            return r
        assert_error(r, 401, "INVALID_CREDENTIALS")
    raise AssertionError("no 429 in %d attempts: %s" % (rounds, seen))


def test_a_right_password_does_not_reset_the_code_failures(srv):
    who, name, secret, net = mfa_user(srv, "mfathrottle", "127.0.0.2")
    # The attack: a password-only login before each guess. 5 failures are
    # free, then each waits 1, 2, 4 ... s after the last: within 9 rounds a
    # guess must meet the throttle (on the old build every right password
    # cleared the count and no round ever did).
    def guess():
        return verify(srv, temp_token(srv, name, net), wrong_code(secret), net)
    r = until_throttled(guess, 9)
    err = r.json()["error"]
    assert err["code"] == "RATE_LIMIT_EXCEEDED" and err["details"]["retry_after"] >= 1
    assert int(r.headers["Retry-After"]) >= 1
    # A login giving the code at once meets the same throttle, even with the
    # right password and the right code.
    limited = login(srv, name, net=net, mfa_code=totp(secret, now_step()))
    if limited.status_code != 200:  # (the delay may have passed meanwhile)
        assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
        # Only a completed second factor clears the count: once the delay
        # has passed the right code is taken, and the next wrong one is a
        # plain 401 again (the count starts over).
        temp = temp_token(srv, name, net)
        def taken():
            r = verify(srv, temp, totp(secret, now_step()), net)
            return None if r.status_code == 429 else r
        ok = wait_until(taken, interval=0.5, what="the code accepted once the delay passed")
        assert ok.status_code == 200, ok.text
    assert_error(verify(srv, temp_token(srv, name, net), wrong_code(secret), net), 401,
                 "INVALID_CREDENTIALS")


def test_disable_is_throttled_and_shares_the_count_with_the_login(srv, root):
    who, name, secret, net = mfa_user(srv, "mfadisable", "127.0.0.3")
    # Five wrong codes on disable use up the free allowance (the old build
    # did not count them at all)...
    for _ in range(5):
        assert_error(who.post("/auth/mfa/disable", {"code": wrong_code(secret)}), 401,
                     "INVALID_CREDENTIALS")
    # ... so the login's code step meets the throttle within a few rounds,
    # not after five free ones of its own.
    until_throttled(lambda: verify(srv, temp_token(srv, name, net), wrong_code(secret), net),
                    4)
    # And disable itself answers 429 while the delay holds (or counts on).
    until_throttled(lambda: who.post("/auth/mfa/disable", {"code": wrong_code(secret)}), 6)
    assert who.ok("GET", "/users/me")["mfa_enabled"] is True
    e = root.get("/admin/audit-log", action="mfa.code_failed", target=who.id).json()
    assert e["total"] >= 5 and e["entries"][0]["details"] == {"step": "disable"}
    lock = root.get("/admin/audit-log", action="auth.lockout", target=who.id).json()
    assert lock["total"] >= 1


# ---- idempotency keys per (user, channel) (item 17) -----------------------------

def test_an_idempotency_key_is_scoped_to_its_channel(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    alice = register(server, "idemscope")
    one, two = new_channel(alice), new_channel(alice)
    first = alice.ok("POST", "/channels/%s/messages" % one["id"],
                     {"content": "in one", "idempotency_key": "same-key"}, 201)
    second = alice.ok("POST", "/channels/%s/messages" % two["id"],
                      {"content": "in two", "idempotency_key": "same-key"}, 201)
    assert second["channel_id"] == two["id"] and second["id"] != first["id"]
    assert second["content"] == "in two"
    # A retry in either channel answers that channel's message.
    assert alice.ok("POST", "/messages", {"channel_id": two["id"], "content": "x",
                                          "idempotency_key": "same-key"}, 200) == second
    assert alice.ok("POST", "/channels/%s/messages" % one["id"],
                    {"content": "x", "idempotency_key": "same-key"}, 200) == first
    # The index is rebuilt the same way from the log.
    assert server.stop() == 0
    again = start_server(data_dir=tmp_path / "d")
    a2 = alice.on(again)
    assert a2.ok("POST", "/channels/%s/messages" % two["id"],
                 {"content": "y", "idempotency_key": "same-key"}, 200)["id"] == second["id"]
    assert a2.ok("POST", "/channels/%s/messages" % one["id"],
                 {"content": "y", "idempotency_key": "same-key"}, 200)["id"] == first["id"]
    third = new_channel(a2)
    assert a2.ok("POST", "/channels/%s/messages" % third["id"],
                 {"content": "z", "idempotency_key": "same-key"}, 201)["channel_id"] == third["id"]


# ---- hidden and missing messages (item 15) ---------------------------------------

def error_of(r):
    body = r.json()
    assert set(body) == {"error"}, body
    e = dict(body["error"])
    e.pop("request_id", None)
    e.pop("timestamp", None)
    return r.status_code, e


def test_a_message_one_may_not_see_answers_as_a_missing_one(srv):
    alice, eve = user(srv, "hideowner"), user(srv, "hideeve")
    private = new_channel(alice, is_private=True)
    m = alice.ok("POST", "/channels/%s/messages" % private["id"], {"content": "secret"}, 201)
    missing = "msg_" + "0" * 20
    calls = [
        ("GET", "/messages/%s", None),
        ("GET", "/messages/%s/thread", None),
        ("PUT", "/messages/%s", {"content": "changed"}),
        ("DELETE", "/messages/%s", None),
        ("POST", "/messages/%s/reactions", {"emoji": "x"}),
        ("DELETE", "/messages/%s/reactions/x", None),
        ("POST", "/messages/%s/report", {"reason": "spam"}),
    ]
    for method, path, body in calls:
        hidden = eve.call(method, path % m["id"], body)
        absent = eve.call(method, path % missing, body)
        assert error_of(hidden) == error_of(absent), (method, path, hidden.text, absent.text)
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert alice.ok("GET", "/messages/" + m["id"])["content"] == "secret"


# ---- filenames (item 19) ---------------------------------------------------------

@pytest.mark.parametrize("raw, stored", [
    ("photo\u202egpj.exe", "photogpj.exe"),
    ("\u2066a\u2069\u200e\u200fb\u202a\u202b\u202c\u202d.png", "ab.png"),
    ("line\u2028para\u2029\u061c.txt", "linepara.txt"),
    ("caf\u00e9 \u05e9\u05dc\u05d5\u05dd.png", "caf\u00e9 \u05e9\u05dc\u05d5\u05dd.png"),
])
def test_bidi_controls_are_stripped_from_filenames(srv, raw, stored):
    alice = user(srv, "bidi")
    body = multipart([(b"file", raw.encode(), png())])
    status, _, payload = alice.raw_upload(body)
    assert status == 201, payload
    f = json.loads(payload)
    assert f["filename"] == stored
    assert alice.ok("GET", "/files/" + f["id"])["filename"] == stored
    disposition = alice.download(f).headers["Content-Disposition"]
    for bad in ("%E2%80%AE", "%E2%81%A6", "%E2%80%8E", "%E2%80%A8", "%D8%9C"):
        assert bad not in disposition.upper(), disposition


@pytest.mark.parametrize("raw", ["\u202e", "\u2066\u2069", "\u202e.", "..\u200e"])
def test_a_filename_of_controls_only_is_refused(srv, raw):
    alice = user(srv, "bidinone")
    before = alice.ok("GET", "/files")["total"]
    status, _, payload = alice.raw_upload(multipart([(b"file", raw.encode(), png())]))
    assert status == 422, payload
    err = json.loads(payload)["error"]
    assert err["code"] == "VALIDATION_ERROR" and err["details"]["field"] == "filename"
    assert alice.ok("GET", "/files")["total"] == before


# ---- avatar_url (item 20) --------------------------------------------------------

def test_avatar_url_must_be_an_image_of_ones_own_or_https(srv):
    alice, bob = user(srv, "avurl"), user(srv, "avother")
    mine = alice.uploaded("me.png", png())
    notes = alice.uploaded("notes.txt", text())
    bobs = bob.uploaded("bob.png", png())
    gone = alice.uploaded("gone.png", png())
    alice.ok("DELETE", "/files/" + gone["id"], status=204)
    url = "/api/v1/files/%s/download"
    refused = [
        "/api/v1/files/../../../etc/passwd",
        "/api/v1/files/../../admin/users",
        (url % mine["id"]) + "/../../x",
        url % ("%2e%2e"),
        url % ("..%2f" + mine["id"]),
        url % bobs["id"],
        url % notes["id"],
        url % gone["id"],
        url % "file_doesnotexist",
        "/api/v1/files/%s" % mine["id"],
        "http://example.com/a.png",
        "https://user:secret@example.com/a.png",
        "https://@example.com/a.png",
        "https://",
        "https:///a.png",
        "https://exa mple.com/a.png",
        "https://example.com/a\\b.png",
        "https://example.com/\u00e9.png",
        "javascript:alert(1)",
        "//example.com/a.png",
    ]
    before = alice.ok("GET", "/users/me")["avatar_url"]
    for value in refused:
        err = assert_error(alice.put("/users/me", {"avatar_url": value}), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "avatar_url", value
    assert alice.ok("GET", "/users/me")["avatar_url"] == before
    for value in (url % mine["id"], "https://cdn.example.com/a.png?s=64#x", "https://example.com"):
        assert alice.ok("PUT", "/users/me", {"avatar_url": value})["avatar_url"] == value
    assert alice.ok("PUT", "/users/me", {"avatar_url": ""})["avatar_url"] is None
    # An image of one's own stays when the avatar moves on (only uploaded
    # avatars are deleted when replaced).
    alice.ok("PUT", "/users/me", {"avatar_url": url % mine["id"]})
    alice.ok("PUT", "/users/me", {"avatar_url": "https://example.com/b.png"})
    assert alice.ok("GET", "/files/" + mine["id"])["id"] == mine["id"]


# ---- attachments (item 5) --------------------------------------------------------

def test_a_member_cannot_attach_and_delete_another_members_file(srv):
    owner, alice, bob = user(srv, "attowner"), user(srv, "attalice"), user(srv, "attbob")
    c = new_channel(owner)
    for who in (alice, bob):
        who.ok("POST", "/channels/%s/join" % c["id"])
    bobs = bob.uploaded("bob.txt", text(), channel_id=c["id"])
    err = assert_error(alice.post("/channels/%s/messages" % c["id"],
                                  {"content": "mine now", "attachments": [bobs["id"]]}),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "attachments"
    assert alice.ok("GET", "/channels/%s/messages" % c["id"])["messages"] == []
    # A moderator (the owner) may share it; deleting that message leaves the
    # file, which is still bob's and in no message.
    m = owner.ok("POST", "/channels/%s/messages" % c["id"],
                 {"content": "see bob's", "attachments": [bobs["id"]]}, 201)
    assert [a["id"] for a in m["attachments"]] == [bobs["id"]]
    owner.ok("DELETE", "/messages/" + m["id"], status=204)
    assert bob.ok("GET", "/files/" + bobs["id"])["id"] == bobs["id"]
    assert bob.download(bobs).status_code == 200
    # Bob may still attach his own file to a message of his, which then owns it.
    mb = bob.ok("POST", "/channels/%s/messages" % c["id"],
                {"content": "mine", "attachments": [bobs["id"]]}, 201)
    bob.ok("DELETE", "/messages/" + mb["id"], status=204)
    assert_error(bob.get("/files/" + bobs["id"]), 404, "RESOURCE_NOT_FOUND")


def test_an_avatar_does_not_die_with_a_message(srv):
    owner, alice = user(srv, "avmsgowner"), user(srv, "avmsg")
    c = new_channel(owner)
    alice.ok("POST", "/channels/%s/join" % c["id"])
    # An uploaded avatar may be attached by its owner only (its life then
    # follows both references: test_file_life_refs.py).
    avatar = alice.call("PUT", "/users/me/avatar", files={"file": ("a.png", png(), "image/png")})
    assert avatar.status_code == 200, avatar.text
    avatar_url = avatar.json()["avatar_url"]
    avatar_id = avatar_url[len("/api/v1/files/"):-len("/download")]
    err = assert_error(owner.post("/channels/%s/messages" % c["id"],
                                  {"content": "x", "attachments": [avatar_id]}),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "attachments"
    mine = alice.ok("POST", "/channels/%s/messages" % c["id"],
                    {"content": "me", "attachments": [avatar_id]}, 201)
    owner.ok("DELETE", "/messages/" + mine["id"], status=204)
    assert owner.call("GET", avatar_url[len(API):]).status_code == 200
    # An image of hers that her avatar_url names, attached and then deleted
    # with the message: the avatar keeps its file.
    pic = alice.uploaded("pic.png", png())
    named = "/api/v1/files/%s/download" % pic["id"]
    alice.ok("PUT", "/users/me", {"avatar_url": named})
    m = alice.ok("POST", "/channels/%s/messages" % c["id"],
                 {"content": "my face", "attachments": [pic["id"]]}, 201)
    owner.ok("DELETE", "/messages/" + m["id"], status=204)
    assert alice.ok("GET", "/users/me")["avatar_url"] == named
    assert owner.call("GET", named[len(API):]).status_code == 200


# ---- storage quota (item 12) -----------------------------------------------------

def test_the_storage_quota_bounds_a_users_live_uploads(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d", args=("--storage-quota-bytes", "6000"))
    root_ = register(server, "quotaroot")
    alice = register(server, "quotaalice")
    a, b = png(pad=2500), png(pad=2500)
    fa = alice.uploaded("a.png", a)
    # The same bytes again count again (each file at its size, deduplicated
    # or not): 2 x ~2.6 kB fit, a third does not.
    fb = alice.uploaded("b.png", b)
    total = fa["size"] + fb["size"]
    before = alice.ok("GET", "/files")["total"]
    r = alice.upload("c.png", a)
    err = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["reason"] == "quota" and err["details"]["quota_bytes"] == 6000
    assert err["details"]["used_bytes"] == total
    assert alice.ok("GET", "/files")["total"] == before
    assert_tmp_empty(server.data_dir)
    # An avatar is an upload too.
    assert_error(alice.call("PUT", "/users/me/avatar", files={"file": ("x.png", png(pad=2500),
                                                                      "image/png")}),
                 413, "PAYLOAD_TOO_LARGE")
    # Another user has a quota of their own.
    bob = register(server, "quotabob")
    assert bob.upload("c.png", a).status_code == 201
    # The admin sees each user's usage.
    view = root_.ok("GET", "/admin/users/" + alice.id)
    assert view["storage_bytes"] == total
    listed = {u["id"]: u for u in root_.ok("GET", "/admin/users?limit=100")["users"]}
    assert listed[alice.id]["storage_bytes"] == total
    # Deleting frees room.
    alice.ok("DELETE", "/files/" + fa["id"], status=204)
    fc = alice.uploaded("c.png", a)
    assert root_.ok("GET", "/admin/users/" + alice.id)["storage_bytes"] == fb["size"] + fc["size"]
    # The live setting: 0 lifts the quota, a lower one bites at once.
    s = root_.ok("PATCH", "/admin/settings", {"storage_quota_bytes": 0})
    assert s["storage_quota_bytes"] == 0
    alice.uploaded("d.png", png(pad=2500))
    root_.ok("PATCH", "/admin/settings", {"storage_quota_bytes": 100})
    assert_error(alice.upload("e.png", text()), 413, "PAYLOAD_TOO_LARGE")
    for bad in (-1, "big", 1.5, 2 ** 60):
        err = assert_error(root_.patch("/admin/settings", {"storage_quota_bytes": bad}), 422,
                           "VALIDATION_ERROR")
        assert err["details"]["field"] == "storage_quota_bytes"
    used = root_.ok("GET", "/admin/users/" + alice.id)["storage_bytes"]
    # Usage is derived from the file records: the same after a restart, and
    # the setting (an override) holds.
    assert server.stop() == 0
    again = start_server(data_dir=tmp_path / "d", args=("--storage-quota-bytes", "6000"))
    r2 = root_.on(again)
    assert r2.ok("GET", "/admin/users/" + alice.id)["storage_bytes"] == used
    assert r2.ok("GET", "/admin/settings")["storage_quota_bytes"] == 100
    assert_error(alice.on(again).upload("e.png", text()), 413, "PAYLOAD_TOO_LARGE")


def test_the_upload_budget_bounds_a_users_bytes_a_minute(start_server, tmp_path):
    server = start_server(args=("--upload-bytes-per-minute", "6000",
                                "--storage-quota-bytes", "0"))
    root_ = register(server, "budgetroot")
    alice, bob = register(server, "budgetalice"), register(server, "budgetbob")
    alice.uploaded("a.png", png(pad=2500))
    alice.uploaded("b.png", png(pad=2500))
    before = alice.ok("GET", "/files")["total"]
    r = alice.upload("c.png", png(pad=2500))
    err = assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
    assert err["details"]["category"] == "upload_bytes" and err["details"]["retry_after"] >= 1
    assert int(r.headers["Retry-After"]) >= 1
    assert alice.ok("GET", "/files")["total"] == before
    assert_tmp_empty(server.data_dir)
    # Per user: bob has his own budget; one file larger than the whole
    # budget passes on a full bucket, and then nothing more does.
    bob.uploaded("big.png", png(pad=9000))
    assert_error(bob.upload("small.txt", text()), 429, "RATE_LIMIT_EXCEEDED")
    # The live setting: 0 lifts it at once.
    s = root_.ok("PATCH", "/admin/settings", {"upload_bytes_per_minute": 0})
    assert s["upload_bytes_per_minute"] == 0
    alice.uploaded("c.png", png(pad=2500))
    for bad in (-1, "x", 2 ** 41):
        err = assert_error(root_.patch("/admin/settings", {"upload_bytes_per_minute": bad}), 422,
                           "VALIDATION_ERROR")
        assert err["details"]["field"] == "upload_bytes_per_minute"
    assert root_.ok("GET", "/admin/settings")["upload_bytes_per_minute"] == 0
