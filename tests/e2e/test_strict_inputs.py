"""Unknown query parameters and body fields are refused (docs/api.md,
"Unknown parameters and fields"; issue 17): each route declares what it
reads in its route table row, the router answers 422 VALIDATION_ERROR
naming the first other one (details.field, details.in, details.allowed)
before the handler runs, and nothing changes. For every kind of resource
(accounts, users, channels, members, messages, reactions, search, files,
invites, admin), an unknown query parameter and an unknown body field are
refused and the write they rode on did not happen, also after a restart;
the documented parameters and fields keep working. Callers are known
first: a stranger gets 401, not the list of what a route takes."""
import json
import os

import pytest
import requests

from client import API, PASSWORD, multipart, register, registration, wait_until
from conftest import assert_error, module_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "strict-inputs")


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "strictroot")
    assert "admin" in admin.user["roles"]
    return admin


@pytest.fixture(scope="module")
def alice(srv, root):
    return register(srv, "strictalice")


@pytest.fixture(scope="module")
def bob(srv, root):
    return register(srv, "strictbob")


@pytest.fixture(scope="module")
def room(alice, bob):
    ch = alice.ok("POST", "/channels", {"name": "strict-room"}, 201)
    bob.ok("POST", "/channels/%s/join" % ch["id"])
    return ch


def refused(resp, name, where):
    """The 422 of an unknown `name` in `where` ("query" or "body")."""
    err = assert_error(resp, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == name, err
    assert err["details"]["in"] == where, err
    assert isinstance(err["details"]["allowed"], list), err
    assert name in err["message"], err
    return err["details"]["allowed"]


def stored_blobs(server):
    """The names of the stored blobs (files/, its tmp/ left out)."""
    root = os.path.join(str(server.data_dir), "files")
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d != "tmp"]
        found.update(filenames)
    return found


def tmp_entries(server):
    tmp = os.path.join(str(server.data_dir), "files", "tmp")
    return os.listdir(tmp) if os.path.isdir(tmp) else []


def history(c, channel_id):
    return c.ok("GET", "/channels/%s/messages" % channel_id)["messages"]


def channel_names(c):
    return sorted(ch["name"] for ch in c.ok("GET", "/channels?limit=100")["channels"])


# ---- query parameters -----------------------------------------------------

def test_unknown_query_parameters_are_refused_on_every_kind_of_route(srv, root, alice, room):
    f = alice.uploaded("q.txt", b"query")
    m = alice.ok("POST", "/channels/%s/messages" % room["id"], {"content": "hi"}, 201)
    cases = [
        (alice, "/users/me"), (alice, "/users"), (alice, "/users/" + alice.id),
        (alice, "/channels"), (alice, "/channels/" + room["id"]),
        (alice, "/channels/%s/members" % room["id"]),
        (alice, "/channels/%s/messages" % room["id"]), (alice, "/messages/" + m["id"]),
        (alice, "/messages/%s/thread" % m["id"]), (alice, "/search/users"),
        (alice, "/files"), (alice, "/files/" + f["id"]), (alice, "/auth/api-keys"),
        (root, "/admin/users"), (root, "/admin/audit-log"), (root, "/admin/settings"),
        (root, "/admin/stats"),
    ]
    for who, path in cases:
        refused(who.get(path, bogus="1"), "bogus", "query")
    # a misspelt documented parameter is named as it was sent
    allowed = refused(alice.get("/channels/%s/messages" % room["id"], befor=m["id"]),
                      "befor", "query")
    assert {"before", "after", "limit"} <= set(allowed)
    allowed = refused(alice.get("/files", channel=room["id"]), "channel", "query")
    assert {"channel_id", "page", "limit"} <= set(allowed)
    refused(alice.get("/messages", channel_id=room["id"], cursor="x"), "cursor", "query")
    refused(alice.get("/search/messages", q="hi", sender="x"), "sender", "query")
    # public routes too
    refused(requests.get(srv.url("/api/health"), params={"verbose": "1"}, timeout=30),
            "verbose", "query")
    # HEAD is a GET without its body: the same status
    r = alice.call("HEAD", "/channels", params={"bogus": "1"})
    assert r.status_code == 422 and not r.content


def test_documented_query_parameters_keep_working(root, alice, bob, room):
    ids = [alice.ok("POST", "/channels/%s/messages" % room["id"], {"content": "n%d" % i},
                    201)["id"] for i in range(3)]
    page = alice.ok("GET", "/messages?channel_id=%s&limit=2&before=%s" % (room["id"], ids[2]))
    assert [x["id"] for x in page["messages"]][-1] == ids[1]
    assert alice.ok("GET", "/channels?search=strict&page=1&limit=5")["channels"]
    assert root.ok("GET", "/channels?search=strict&page=1&limit=5&all=true")["channels"]
    assert alice.ok("GET", "/users?q=strict&page=1&limit=5")["users"]
    assert alice.ok("GET", "/search/users?q=strictbob&limit=5")["users"][0]["id"] == bob.id
    r = alice.get("/search/messages", q="n1", channel_id=room["id"], limit="5")
    assert r.status_code == 200, r.text
    assert alice.get("/files", channel_id=room["id"], page="1", limit="5").status_code == 200


def test_a_stranger_is_refused_before_the_parameters_are_judged(srv, room):
    r = requests.get(srv.url(API + "/channels"), params={"bogus": "1"}, timeout=30)
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    assert "allowed" not in r.json()["error"]["details"]


# ---- body fields ------------------------------------------------------------

def test_unknown_body_fields_change_nothing(srv, root, alice, bob, room):
    # channels: nothing created, nothing renamed
    names = channel_names(alice)
    refused(alice.post("/channels", {"name": "strict-new", "topic": "x"}), "topic", "body")
    refused(alice.patch("/channels/" + room["id"], {"name": "strict-renamed", "color": 1}),
            "color", "body")
    assert channel_names(alice) == names
    # messages: nothing posted (both forms), nothing edited, no reaction
    before = history(alice, room["id"])
    refused(alice.post("/channels/%s/messages" % room["id"], {"content": "x", "silent": True}),
            "silent", "body")
    refused(alice.post("/messages", {"channel_id": room["id"], "content": "x", "thread": "t"}),
            "thread", "body")
    m = alice.ok("POST", "/channels/%s/messages" % room["id"], {"content": "keep"}, 201)
    refused(alice.put("/messages/" + m["id"], {"content": "changed", "notify": False}),
            "notify", "body")
    refused(alice.post("/messages/%s/reactions" % m["id"], {"emoji": "👍", "count": 2}),
            "count", "body")
    got = alice.ok("GET", "/messages/" + m["id"])
    assert got["content"] == "keep" and not got.get("reactions")
    assert len(history(alice, room["id"])) == len(before) + 1
    # users: the profile is as it was
    me = alice.ok("GET", "/users/me")
    refused(alice.put("/users/me", {"display_name": "Changed", "nickname": "x"}),
            "nickname", "body")
    assert alice.ok("GET", "/users/me")["display_name"] == me["display_name"]
    # members: a POST that takes no body refuses fields; not joined
    ch = alice.ok("POST", "/channels", {"name": "strict-closed"}, 201)
    refused(bob.post("/channels/%s/join" % ch["id"], {"role": "owner"}), "role", "body")
    members = alice.ok("GET", "/channels/%s/members" % ch["id"])
    assert bob.id not in json.dumps(members)
    # invites: none made
    refused(alice.post("/channels/%s/invites" % ch["id"], {"max_uses": 2, "uses": 1}),
            "uses", "body")
    # search: refused rather than an unfiltered answer
    refused(alice.post("/search/messages", {"q": "keep", "sender": bob.id}), "sender", "body")
    # admin: not banned
    refused(root.post("/admin/users/%s/ban" % bob.id, {"reason": "spam", "days": 3}),
            "days", "body")
    assert bob.ok("GET", "/users/me")["id"] == bob.id


def test_register_and_login_refuse_unknown_fields(srv, root):
    refused(registration(srv, "strictnew", role="admin"), "role", "body")
    r = requests.post(srv.url(API + "/auth/login"),
                      json={"username": "strictnew", "password": PASSWORD}, timeout=30)
    assert r.status_code == 401, r.text  # no account was made
    c = register(srv, "strictnew")
    r = requests.post(srv.url(API + "/auth/login"),
                      json={"username": "strictnew", "password": PASSWORD, "otp": "1"},
                      timeout=30)
    assert refused(r, "otp", "body")
    r = requests.post(srv.url(API + "/auth/login"),
                      json={"username": "strictnew", "password": PASSWORD, "remember_me": True},
                      timeout=30)
    assert r.status_code == 200, r.text
    assert c.ok("GET", "/users/me")["username"] == "strictnew"


def test_upload_form_fields_are_declared_too(srv, alice, room):
    def own_files():
        return alice.ok("GET", "/files?limit=100")["total"]

    n = own_files()
    body = multipart([(b"file", b"a.txt", b"strict upload"), (b"tags", None, b"x")])
    status, _, payload = alice.raw_upload(body)
    assert status == 422, payload
    err = json.loads(payload)["error"]
    assert err["details"]["field"] == "tags" and err["details"]["in"] == "body", err
    assert own_files() == n
    # a file in a part of another name is refused too, not left unread
    before = stored_blobs(srv)
    body = multipart([(b"file", b"c.txt", b"strict main"), (b"thumbnail", b"t.png", b"x")])
    status, _, payload = alice.raw_upload(body)
    assert status == 422, payload
    err = json.loads(payload)["error"]
    assert err["details"]["field"] == "thumbnail", err
    assert own_files() == n
    r = alice.call("PUT", "/users/me/avatar", files={"image": ("t.png", b"x", "image/png")})
    refused(r, "image", "body")
    assert alice.ok("GET", "/users/me").get("avatar_url") in (None, "")
    assert stored_blobs(srv) == before
    wait_until(lambda: not tmp_entries(srv), what="the refused uploads' temporary files gone")
    # the documented form fields work
    f = alice.uploaded("b.txt", b"strict ok", channel_id=room["id"], description="d")
    assert f["channel_id"] == room["id"] and own_files() == n + 1


def test_documented_body_fields_keep_working(alice, bob, room):
    ch = alice.ok("POST", "/channels", {"name": "strict-full", "description": "d",
                                        "is_private": False}, 201)
    assert ch["description"] == "d"
    alice.ok("PUT", "/users/me", {"bio": "hello", "display_name": "Alice S"})
    m = alice.ok("POST", "/messages", {"channel_id": ch["id"], "content": "a",
                                       "idempotency_key": "k1", "mentions": []}, 201)
    alice.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "b", "reply_to": m["id"]},
             201)
    alice.ok("POST", "/channels/%s/read" % ch["id"], {"message_id": m["id"]})
    # an empty object is no field at all
    bob.ok("POST", "/channels/%s/leave" % room["id"], {}, 204)
    bob.ok("POST", "/channels/%s/join" % room["id"], {})


def test_the_refusals_left_nothing_after_a_restart(start_server):
    s = start_server(args=("--rate-limit", "0"))
    admin = register(s, "strictadmin")
    carol = register(s, "strictcarol")
    refused(carol.post("/channels", {"name": "strict-ghost", "pinned": True}), "pinned", "body")
    refused(admin.post("/admin/users/%s/mute" % carol.id, {"reason": "r", "scope": "all"}),
            "scope", "body")
    refused(carol.put("/users/me", {"bio": "ghost", "theme": "dark"}), "theme", "body")
    s.stop()
    s = start_server(args=("--rate-limit", "0"), data_dir=s.data_dir)
    carol, admin = carol.on(s), admin.on(s)
    names = [ch["name"] for ch in admin.ok("GET", "/channels?all=true")["channels"]]
    assert "strict-ghost" not in names
    assert carol.ok("GET", "/users/me").get("bio") in (None, "")
    view = admin.ok("GET", "/admin/users/" + carol.id)
    assert view["is_muted"] is False, view
    # a mute that names only its fields works, and stays
    admin.ok("POST", "/admin/users/%s/mute" % carol.id, {"reason": "r"})
    assert_error(carol.post("/channels", {"name": "strict-muted"}), 403, "ACCOUNT_MUTED")


# ---- the seed's fields whose one value is what Parley does ----------------

def test_seed_fields_with_one_supported_value(srv, root, alice, room):
    # PlexiChat's POST /messages sends content_type "text"
    before = len(history(alice, room["id"]))
    m = alice.ok("POST", "/messages", {"channel_id": room["id"], "content": "typed",
                                       "content_type": "text"}, 201)
    assert m["content"] == "typed"
    err = assert_error(alice.post("/channels/%s/messages" % room["id"],
                                  {"content": "x", "content_type": "html"}),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "content_type"
    assert len(history(alice, room["id"])) == before + 1
    # its MFA step names the method: totp only
    r = requests.post(srv.url(API + "/auth/mfa/verify"),
                      json={"temp_token": "t", "mfa_code": "123456", "method": "sms"}, timeout=30)
    assert assert_error(r, 422, "VALIDATION_ERROR")["details"]["field"] == "method"
    r = requests.post(srv.url(API + "/auth/mfa/verify"),
                      json={"temp_token": "t", "mfa_code": "123456", "method": "totp"}, timeout=30)
    assert r.status_code == 401, r.text  # judged as the step it is: the token is no token
    # its backup: the database is always in it, the compression is zstd, the
    # encryption is the data directory's (a plain one here)
    listed = root.ok("GET", "/admin/backups")
    for body, field in (({"include_database": False}, "include_database"),
                        ({"compression": "gzip"}, "compression"),
                        ({"encryption": True}, "encryption")):
        r = root.post("/admin/backup", dict(body, include_files=False))
        assert assert_error(r, 422, "VALIDATION_ERROR")["details"]["field"] == field
    assert root.ok("GET", "/admin/backups") == listed
    made = root.ok("POST", "/admin/backup", {"include_files": False, "include_database": True,
                                             "compression": "zstd", "encryption": False}, 201)
    assert made["name"] in [b["name"] for b in root.ok("GET", "/admin/backups")["backups"]]


def test_hostile_names_are_echoed_safely(alice):
    long_name = "x" * 500
    err = assert_error(alice.get("/users/me", **{long_name: "1"}), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "x" * 64
    # not UTF-8, or a control character: refused, named as ""
    for raw in ("%FF%FE=1", "a%01b=1", "%C3=1"):
        r = alice.session.get(alice.server.url(API + "/users/me?" + raw), timeout=30)
        err = assert_error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "" and err["details"]["in"] == "query", err
    # multi-byte names are cut between characters
    name = "é" * 40  # 80 bytes
    err = assert_error(alice.post("/channels", {"name": "strict-utf8", name: 1}), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "é" * 32
    assert "strict-utf8" not in channel_names(alice)
