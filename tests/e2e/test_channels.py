"""/api/v1/channels end to end (docs/api.md, "Channels", "Errors"):
creation (the creator is owner), the list of what the caller can see with
unread_count and last_message, get/update/delete by the owner or an admin,
join/leave, members and roles, invitations and removals, bans by username,
private channels that exist only for their members, direct channels (the
same set of users gives the same channel) and read markers.

Every refused request is checked for its status and code AND for having
changed nothing. One server and one set of accounts serve the whole module
(argon2 makes registrations the slow part); each test makes its own
channels, with names unique to it."""
import itertools
import re
import threading

import pytest
import requests

from conftest import assert_error, module_server, parse_raw_response, raw_http
from client import API, accounts

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CHANNEL_FIELDS = {"id", "name", "description", "type", "is_private", "owner_id",
                  "member_count", "created_at", "updated_at"}


# ---- helpers -----------------------------------------------------------------

_names = itertools.count()


def unique(prefix):
    return "%s-%d" % (prefix, next(_names))


def new_channel(who, name=None, **fields):
    body = dict({"name": name or unique("ch")}, **fields)
    return who.ok("POST", "/channels", body, 201)


def visible_ids(who):
    listing = who.ok("GET", "/channels?limit=100")
    return {c["id"] for c in listing["channels"]}


def listed(who, channel_id):
    listing = who.ok("GET", "/channels?limit=100")
    found = [c for c in listing["channels"] if c["id"] == channel_id]
    return found[0] if found else None


def members(who, channel_id):
    out = who.ok("GET", "/channels/%s/members" % channel_id)
    return {m["username"]: m["role"] for m in out["members"]}


# ---- the module's server and accounts -------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "channels")


@pytest.fixture(scope="module")
def u(srv):
    """admin (the first account), alice, bob, carol, dave."""
    return accounts(srv, "admin", "alice", "bob", "carol", "dave")


# ---- create, get, list -------------------------------------------------------------

def test_create_makes_the_creator_owner_and_member(u):
    name = unique("General")
    c = new_channel(u.alice, name, description="all things")
    assert set(c) == CHANNEL_FIELDS
    assert c["name"] == name and c["description"] == "all things"
    assert c["type"] == "channel" and c["is_private"] is False
    assert c["owner_id"] == u.alice.id and c["member_count"] == 1
    assert TIME_RE.match(c["created_at"]) and c["updated_at"] == c["created_at"]
    assert c["id"] and isinstance(c["id"], str)

    got = u.bob.ok("GET", "/channels/" + c["id"])
    assert {k: got[k] for k in CHANNEL_FIELDS} == c
    assert got["unread_count"] == 0 and got["last_message"] is None

    m = u.alice.ok("GET", "/channels/%s/members" % c["id"])
    assert m["total"] == 1
    assert m["members"][0]["user_id"] == u.alice.id
    assert m["members"][0]["username"] == "alice"
    assert m["members"][0]["role"] == "owner"
    assert TIME_RE.match(m["members"][0]["joined_at"])

    priv = new_channel(u.alice, is_private=True)
    assert priv["is_private"] is True and priv["description"] is None


def test_list_shows_what_the_caller_can_see_with_unread_and_last_message(u):
    pub = new_channel(u.alice)
    priv = new_channel(u.alice, is_private=True)
    assert pub["id"] in visible_ids(u.bob)
    assert priv["id"] not in visible_ids(u.bob)
    assert {pub["id"], priv["id"]} <= visible_ids(u.alice)

    listing = u.bob.ok("GET", "/channels?limit=100")
    assert set(listing) == {"channels", "total", "page", "pages"}
    assert listing["page"] == 1 and listing["total"] == len(listing["channels"])
    for c in listing["channels"]:
        assert CHANNEL_FIELDS | {"unread_count", "last_message"} <= set(c)

    sent = [u.alice.ok("POST", "/channels/%s/messages" % pub["id"], {"content": "m%d" % i}, 201)
            for i in range(3)]
    seen = listed(u.bob, pub["id"])
    assert seen["unread_count"] == 3
    assert seen["last_message"]["id"] == sent[-1]["id"]
    assert seen["last_message"]["content"] == "m2"
    assert seen["last_message"]["sender"]["username"] == "alice"
    assert listed(u.alice, pub["id"])["unread_count"] == 0  # one's own messages are read

    # Paging: limit=1 walks every channel once.
    total = listing["total"]
    ids = []
    for page in range(1, total + 1):
        p = u.bob.ok("GET", "/channels?limit=1&page=%d" % page)
        assert p["pages"] == total and p["total"] == total
        ids += [c["id"] for c in p["channels"]]
    assert len(ids) == total and set(ids) == {c["id"] for c in listing["channels"]}


def test_list_paging_out_of_range(u):
    for q in ("limit=0", "limit=101", "limit=abc", "page=0", "page=abc"):
        assert_error(u.bob.get("/channels?" + q), 422, "VALIDATION_ERROR")


def test_read_markers_drive_unread_counts(u):
    c = new_channel(u.alice)
    path = "/channels/%s" % c["id"]
    u.bob.ok("POST", path + "/join")
    msgs = [u.alice.ok("POST", path + "/messages", {"content": "n%d" % i}, 201) for i in range(4)]
    assert u.bob.ok("GET", path)["unread_count"] == 4

    r = u.bob.ok("POST", path + "/read", {"message_id": msgs[1]["id"]})
    assert r == {"last_read": msgs[1]["id"], "unread_count": 2}
    assert u.bob.ok("GET", path)["unread_count"] == 2
    assert listed(u.bob, c["id"])["unread_count"] == 2
    # Markers only move forward.
    r = u.bob.ok("POST", path + "/read", {"message_id": msgs[0]["id"]})
    assert r == {"last_read": msgs[1]["id"], "unread_count": 2}
    # bob's own messages never count; a deleted one does not either.
    u.bob.ok("POST", path + "/messages", {"content": "mine"}, 201)
    assert u.bob.ok("GET", path)["unread_count"] == 2
    u.alice.ok("DELETE", "/messages/" + msgs[3]["id"], status=204)
    assert u.bob.ok("GET", path)["unread_count"] == 1
    r = u.bob.ok("POST", path + "/read", {"message_id": msgs[3]["id"]})
    assert r["unread_count"] == 0
    # Each user has its own marker.
    assert u.carol.ok("GET", path)["unread_count"] == 4  # n0-n2 and bob's


def test_read_marker_bad_input_changes_nothing(u):
    c = new_channel(u.alice)
    other = new_channel(u.alice)
    m = u.alice.ok("POST", "/channels/%s/messages" % c["id"], {"content": "x"}, 201)
    elsewhere = u.alice.ok("POST", "/channels/%s/messages" % other["id"], {"content": "y"}, 201)
    path = "/channels/%s/read" % c["id"]
    for body in ({}, {"message_id": 5}, {"message_id": ""}, {"message_id": "msg_9999999999999999"},
                 {"message_id": "not an id"}, {"message_id": elsewhere["id"]}):
        assert_error(u.bob.post(path, body), 422, "VALIDATION_ERROR")
    assert u.bob.ok("GET", "/channels/" + c["id"])["unread_count"] == 1
    assert_error(u.bob.post("/channels/ch_nope/read", {"message_id": m["id"]}), 404,
                 "RESOURCE_NOT_FOUND")


# ---- update and delete ----------------------------------------------------------

def test_owner_and_admin_update_others_cannot(u):
    c = new_channel(u.alice, description="first")
    path = "/channels/" + c["id"]
    u.bob.ok("POST", path + "/join")
    assert_error(u.bob.patch(path, {"name": unique("hijack")}), 403, "INSUFFICIENT_PERMISSIONS")
    assert u.alice.ok("GET", path)["name"] == c["name"]

    new_name = unique("Renamed")
    r = u.alice.ok("PATCH", path, {"name": new_name, "description": "second"})
    assert r["name"] == new_name and r["description"] == "second"
    assert r["created_at"] == c["created_at"] and r["updated_at"] >= c["updated_at"]
    assert r["is_private"] is False  # untouched

    r = u.admin.ok("PATCH", path, {"is_private": True})
    assert r["is_private"] is True and r["name"] == new_name
    assert c["id"] not in visible_ids(u.carol)
    assert_error(u.carol.get(path), 404, "RESOURCE_NOT_FOUND")
    assert u.bob.ok("GET", path)["is_private"] is True  # bob is a member
    r = u.alice.ok("PATCH", path, {"is_private": False, "description": ""})
    assert r["is_private"] is False and r["description"] is None
    assert c["id"] in visible_ids(u.carol)


def test_update_bad_input_changes_nothing(u):
    c = new_channel(u.alice, description="kept")
    path = "/channels/" + c["id"]
    for body in ({"name": ""}, {"name": "   "}, {"name": "x" * 81}, {"name": 7},
                 {"name": "tab\there"}, {"is_private": "yes"}, {"description": 3},
                 {"description": "d" * 501}):
        assert_error(u.alice.patch(path, body), 422, "VALIDATION_ERROR")
    now = u.alice.ok("GET", path)
    assert {k: now[k] for k in CHANNEL_FIELDS} == c


def test_delete_by_owner_or_admin_only(u):
    c = new_channel(u.alice)
    path = "/channels/" + c["id"]
    u.bob.ok("POST", path + "/join")
    assert_error(u.bob.delete(path), 403, "INSUFFICIENT_PERMISSIONS")
    assert u.bob.ok("GET", path)["id"] == c["id"]
    u.alice.ok("DELETE", path, status=204)
    for who in (u.alice, u.bob, u.admin):
        assert_error(who.get(path), 404, "RESOURCE_NOT_FOUND")
        assert c["id"] not in visible_ids(who)
    assert_error(u.alice.delete(path), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.alice.post(path + "/messages", {"content": "into the void"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(u.alice.get(path + "/messages"), 404, "RESOURCE_NOT_FOUND")

    d = new_channel(u.bob)
    u.admin.ok("DELETE", "/channels/" + d["id"], status=204)
    assert_error(u.bob.get("/channels/" + d["id"]), 404, "RESOURCE_NOT_FOUND")


def test_duplicate_names_conflict_case_insensitively(u):
    name = unique("Dup-Name")
    c = new_channel(u.alice, name)
    before = u.admin.ok("GET", "/channels?limit=100")["total"]
    err = assert_error(u.bob.post("/channels", {"name": name.lower()}), 409, "CONFLICT")
    assert err["details"].get("field") == "name"
    assert_error(u.bob.post("/channels", {"name": name.upper(), "is_private": True}), 409,
                 "CONFLICT")
    other = new_channel(u.bob)
    assert_error(u.bob.patch("/channels/" + other["id"], {"name": name.upper()}), 409,
                 "CONFLICT")
    assert u.bob.ok("GET", "/channels/" + other["id"])["name"] == other["name"]
    assert u.admin.ok("GET", "/channels?limit=100")["total"] == before + 1  # only `other`
    # Renaming a channel to its own name in another case is no conflict.
    assert u.alice.ok("PATCH", "/channels/" + c["id"], {"name": name.upper()})["name"] == \
        name.upper()
    # A deleted channel frees its name; a renamed one too.
    u.alice.ok("DELETE", "/channels/" + c["id"], status=204)
    again = new_channel(u.bob, name.lower())
    assert again["id"] != c["id"]
    old = other["name"]
    u.bob.ok("PATCH", "/channels/" + other["id"], {"name": unique("moved")})
    assert new_channel(u.carol, old)["name"] == old


def test_create_bad_input_creates_nothing(u, srv):
    before = u.admin.ok("GET", "/channels?limit=100")["total"]
    for body in ({}, {"name": ""}, {"name": "  "}, {"name": "n" * 81}, {"name": None},
                 {"name": 12}, {"name": ["a"]}, {"name": "ok", "is_private": 1},
                 {"name": "ok", "description": {"a": 1}}, {"name": "bad\x01name"}):
        assert_error(u.alice.post("/channels", body), 422, "VALIDATION_ERROR")
    # 80 characters is fine, counted as characters.
    assert_error(u.alice.post("/channels", {"name": "é" * 81}), 422, "VALIDATION_ERROR")
    assert new_channel(u.alice, "é" * 80)["name"] == "é" * 80
    # Not JSON, not UTF-8, not an object.
    raw = (b"POST /api/v1/channels HTTP/1.1\r\nHost: x\r\nAuthorization: "
           + u.alice.session.headers["Authorization"].encode()
           + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
           b"Connection: close\r\n\r\n")
    for body in (b'{"name": "bad\xff\xfe"}', b'{"name": "x"', b"name=x"):
        assert_error(parse_raw_response(raw_http(srv.port, raw % len(body) + body)), 400,
                     "BAD_REQUEST")
    assert_error(u.alice.call("POST", "/channels", data="[1]",
                              headers={"Content-Type": "application/json"}), 422,
                 "VALIDATION_ERROR")
    assert_error(u.alice.call("POST", "/channels", data='{"name":"x"}',
                              headers={"Content-Type": "text/plain"}), 400, "BAD_REQUEST")
    assert_error(requests.post(srv.url(API + "/channels"), json={"name": unique("anon")}),
                 401, "AUTHENTICATION_REQUIRED")
    assert u.admin.ok("GET", "/channels?limit=100")["total"] == before + 1


@pytest.mark.parametrize("cid", ["ch_doesnotexist", "nope", "x" * 300, "msg_0000000000000001",
                                 "ch_...", "ch_%2F..%2F", "%C3%A9t%C3%A9", "%00"])
def test_unknown_or_malformed_channel_ids_are_404(u, cid):
    # A NUL in a path segment is refused by the router for every route (400).
    status, code = (400, "BAD_REQUEST") if cid == "%00" else (404, "RESOURCE_NOT_FOUND")
    for method, sub, body in (("GET", "", None), ("PATCH", "", {"name": "zzz"}),
                              ("DELETE", "", None), ("POST", "/join", {}),
                              ("POST", "/leave", {}), ("GET", "/members", None),
                              ("POST", "/members", {"user_id": u.bob.id}),
                              ("GET", "/banned-users", None),
                              ("POST", "/ban-by-username/bob", {}),
                              ("GET", "/messages", None),
                              ("POST", "/messages", {"content": "hi"})):
        r = u.admin.call(method, "/channels/" + cid + sub, json=body)
        assert_error(r, status, code)


# ---- join, leave, members ----------------------------------------------------------

def test_join_and_leave(u):
    c = new_channel(u.alice)
    path = "/channels/" + c["id"]
    r = u.bob.ok("POST", path + "/join")
    assert r["id"] == c["id"]
    assert u.bob.ok("GET", path)["member_count"] == 2
    assert members(u.alice, c["id"]) == {"alice": "owner", "bob": "member"}
    u.bob.ok("POST", path + "/join")  # already a member: fine, nothing changes
    assert u.alice.ok("GET", path + "/members")["total"] == 2

    u.bob.ok("POST", path + "/leave", status=204)
    assert members(u.alice, c["id"]) == {"alice": "owner"}
    assert_error(u.bob.post(path + "/leave"), 409, "CONFLICT")
    assert_error(u.carol.post(path + "/leave"), 409, "CONFLICT")
    # The owner cannot walk away from its channel.
    assert_error(u.alice.post(path + "/leave"), 409, "CONFLICT")
    assert members(u.alice, c["id"]) == {"alice": "owner"}
    u.bob.ok("POST", path + "/join")
    assert members(u.alice, c["id"]) == {"alice": "owner", "bob": "member"}


def test_private_channel_is_joined_by_invitation_only(u):
    c = new_channel(u.alice, is_private=True)
    path = "/channels/" + c["id"]
    # Uninvited, the channel does not exist for bob.
    assert_error(u.bob.post(path + "/join"), 404, "RESOURCE_NOT_FOUND")
    assert members(u.alice, c["id"]) == {"alice": "owner"}
    r = u.alice.post(path + "/members", {"user_id": u.bob.id})
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == u.bob.id and r.json()["role"] == "member"
    assert c["id"] in visible_ids(u.bob)
    u.bob.ok("POST", path + "/join")  # already invited
    u.bob.ok("POST", path + "/leave", status=204)
    assert_error(u.bob.get(path), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.post(path + "/join"), 404, "RESOURCE_NOT_FOUND")
    assert c["id"] not in visible_ids(u.bob)


def test_private_channels_exist_only_for_members(u):
    c = new_channel(u.alice, is_private=True)
    path = "/channels/" + c["id"]
    m = u.alice.ok("POST", path + "/messages", {"content": "secret"}, 201)
    for method, sub, body in (("GET", "", None), ("GET", "/messages", None),
                              ("POST", "/messages", {"content": "hi"}),
                              ("GET", "/members", None), ("POST", "/join", {}),
                              ("POST", "/read", {"message_id": m["id"]}),
                              ("PATCH", "", {"name": "mine"}), ("DELETE", "", None),
                              ("POST", "/members", {"user_id": u.carol.id})):
        assert_error(u.bob.call(method, path + sub, json=body), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.get("/messages/" + m["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.get("/messages", channel_id=c["id"]), 404, "RESOURCE_NOT_FOUND")
    assert c["id"] not in visible_ids(u.bob)
    assert c["name"] not in [x["name"] for x in
                             u.bob.ok("GET", "/search/channels?q=" + c["name"])["channels"]]
    # The admin knows the channel (its object, without its last message),
    # and reads none of it: no reader of a private channel it is not in.
    known = u.admin.ok("GET", path)
    assert known["id"] == c["id"] and "last_message" not in known
    for sub in ("/messages", "/members"):
        assert_error(u.admin.get(path + sub), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.admin.get("/messages/" + m["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.admin.call("POST", path + "/join", json={}), 404, "RESOURCE_NOT_FOUND")
    # Nothing changed.
    assert u.alice.ok("GET", path)["name"] == c["name"]
    assert members(u.alice, c["id"]) == {"alice": "owner"}
    assert len(u.alice.ok("GET", path + "/messages")["messages"]) == 1


def test_admins_list_and_delete_private_conversations_without_reading_them(u):
    c = new_channel(u.alice, is_private=True)
    u.alice.ok("POST", "/channels/%s/messages" % c["id"], {"content": "between us"}, 201)
    r = u.alice.call("POST", "/channels/direct", json={"user_ids": [u.bob.id]})
    assert r.status_code in (200, 201), r.text
    dm = r.json()
    # The admins' listing names every channel; the ones it is not in, unread.
    seen, page = {}, 1
    while True:
        listing = u.admin.ok("GET", "/channels?all=true&limit=100&page=%d" % page)
        seen.update({x["id"]: x for x in listing["channels"]})
        if page >= listing["pages"]:
            break
        page += 1
    for ch in (c, dm):
        assert ch["id"] in seen
        assert "last_message" not in seen[ch["id"]] and "unread_count" not in seen[ch["id"]]
    assert c["id"] not in visible_ids(u.admin)  # its own list: public ones and its own
    assert "between us" not in str(seen)
    # Not for others; a bad value is refused.
    assert_error(u.bob.get("/channels", all="true"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.admin.get("/channels", all="yes"), 422, "VALIDATION_ERROR")
    assert u.admin.ok("GET", "/channels?all=false&limit=100")["total"] == \
        u.admin.ok("GET", "/channels?limit=100")["total"]
    # It may delete them, still without reading them.
    assert_error(u.admin.get("/channels/%s/messages" % dm["id"]), 404, "RESOURCE_NOT_FOUND")
    for ch in (c, dm):
        u.admin.ok("DELETE", "/channels/" + ch["id"], status=204)
        assert_error(u.alice.get("/channels/" + ch["id"]), 404, "RESOURCE_NOT_FOUND")


def test_roles_invitations_and_removals(u):
    c = new_channel(u.alice, is_private=True)
    path = "/channels/" + c["id"]
    for who in (u.bob, u.carol):
        u.alice.ok("POST", path + "/members", {"user_id": who.id}, 201)
    # Inviting again answers the membership as it is.
    again = u.alice.ok("POST", path + "/members", {"user_id": u.bob.id}, 200)
    assert again["role"] == "member"

    # A plain member neither invites nor removes.
    assert_error(u.carol.post(path + "/members", {"user_id": u.dave.id}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(u.carol.delete(path + "/members/" + u.bob.id), 403, "INSUFFICIENT_PERMISSIONS")
    assert members(u.alice, c["id"]) == {"alice": "owner", "bob": "member", "carol": "member"}

    r = u.alice.ok("PATCH", path + "/members/" + u.bob.id, {"role": "moderator"})
    assert r["role"] == "moderator"
    assert_error(u.bob.patch(path + "/members/" + u.carol.id, {"role": "moderator"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(u.alice.patch(path + "/members/" + u.carol.id, {"role": "owner"}), 422,
                 "VALIDATION_ERROR")

    # The moderator invites and removes members, not the owner.
    u.bob.ok("POST", path + "/members", {"user_id": u.dave.id}, 201)
    assert members(u.alice, c["id"]) == {"alice": "owner", "bob": "moderator",
                                         "carol": "member", "dave": "member"}
    assert c["id"] in visible_ids(u.dave)
    u.bob.ok("DELETE", path + "/members/" + u.dave.id, status=204)
    assert_error(u.dave.get(path), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.delete(path + "/members/" + u.alice.id), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.alice.delete(path + "/members/" + u.dave.id), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.alice.post(path + "/members", {"user_id": "usr_nobody"}), 422,
                 "VALIDATION_ERROR")
    assert_error(u.alice.post(path + "/members", {}), 422, "VALIDATION_ERROR")
    assert_error(u.alice.post(path + "/members", {"user_id": 42}), 422, "VALIDATION_ERROR")

    listing = u.carol.ok("GET", path + "/members")
    assert listing["total"] == 3
    got = {m["user_id"]: m for m in listing["members"]}
    assert got[u.alice.id]["role"] == "owner" and got[u.bob.id]["role"] == "moderator"
    assert got[u.carol.id]["username"] == "carol" and TIME_RE.match(got[u.carol.id]["joined_at"])
    assert u.carol.ok("GET", path)["member_count"] == 3


# ---- bans ------------------------------------------------------------------------

def test_ban_and_unban_by_username(u):
    c = new_channel(u.alice)
    path = "/channels/" + c["id"]
    for who in (u.bob, u.carol, u.dave):
        who.ok("POST", path + "/join")
    u.alice.ok("PATCH", path + "/members/" + u.carol.id, {"role": "moderator"})

    r = u.alice.ok("POST", path + "/ban-by-username/BOB")  # usernames are case-insensitive
    assert {k: r[k] for k in CHANNEL_FIELDS} == {**{k: c[k] for k in CHANNEL_FIELDS},
                                               "member_count": 3}
    assert [e["user_id"] for e in r["member_exceptions"]] == [u.bob.id]
    assert TIME_RE.match(r["member_exceptions"][0]["created_at"])
    assert "bob" not in members(u.alice, c["id"])
    banned = u.carol.ok("GET", path + "/banned-users")
    assert banned == {"users": [{"id": u.bob.id, "username": "bob", "display_name": "bob"}],
                      "total": 1}

    # bob still reads the public channel, but neither posts nor rejoins.
    assert u.bob.ok("GET", path + "/messages")["messages"] == []
    assert_error(u.bob.post(path + "/messages", {"content": "let me in"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(u.bob.post(path + "/join"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.alice.post(path + "/members", {"user_id": u.bob.id}), 409, "CONFLICT")
    assert u.alice.ok("GET", path + "/messages")["messages"] == []

    # Who may ban whom.
    assert_error(u.dave.post(path + "/ban-by-username/carol"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.carol.post(path + "/ban-by-username/alice"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.carol.post(path + "/ban-by-username/carol"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.alice.post(path + "/ban-by-username/nobody_here"), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.alice.post(path + "/ban-by-username/a"), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.dave.get(path + "/banned-users"), 403, "INSUFFICIENT_PERMISSIONS")
    r = u.carol.ok("POST", path + "/ban-by-username/dave")  # a moderator bans a member
    assert {e["user_id"] for e in r["member_exceptions"]} == {u.bob.id, u.dave.id}
    r = u.admin.ok("POST", path + "/ban-by-username/dave")  # again: no change
    assert {e["user_id"] for e in r["member_exceptions"]} == {u.bob.id, u.dave.id}
    assert u.alice.ok("GET", path + "/banned-users")["total"] == 2

    r = u.admin.ok("POST", path + "/unban-by-username/bob")
    assert [e["user_id"] for e in r["member_exceptions"]] == [u.dave.id]
    r = u.carol.ok("POST", path + "/unban-by-username/Dave")
    assert r["member_exceptions"] == []
    assert u.alice.ok("GET", path + "/banned-users") == {"users": [], "total": 0}
    # Unbanned is not rejoined: bob posts (public) and joins again himself.
    assert "bob" not in members(u.alice, c["id"])
    u.bob.ok("POST", path + "/messages", {"content": "back"}, 201)
    u.bob.ok("POST", path + "/join")
    assert members(u.alice, c["id"])["bob"] == "member"


def test_ban_in_a_private_channel_hides_it(u):
    c = new_channel(u.alice, is_private=True)
    path = "/channels/" + c["id"]
    u.alice.ok("POST", path + "/members", {"user_id": u.bob.id}, 201)
    u.alice.ok("POST", path + "/ban-by-username/bob")
    assert_error(u.bob.get(path), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.post(path + "/messages", {"content": "x"}), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.alice.post(path + "/members", {"user_id": u.bob.id}), 409, "CONFLICT")
    u.alice.ok("POST", path + "/unban-by-username/bob")
    assert_error(u.bob.get(path), 404, "RESOURCE_NOT_FOUND")  # unban is not a re-invite
    u.alice.ok("POST", path + "/members", {"user_id": u.bob.id}, 201)
    assert u.bob.ok("GET", path)["id"] == c["id"]


# ---- direct channels ------------------------------------------------------------

def test_direct_channels_one_per_set_of_users(u):
    r = u.alice.post("/channels/direct", {"user_ids": [u.bob.id]})
    assert r.status_code in (200, 201), r.text
    d = r.json()
    assert d["type"] == "direct" and d["is_private"] is True and d["member_count"] == 2
    assert set(d) == CHANNEL_FIELDS
    # The same set, however named, is the same channel.
    for who, ids in ((u.alice, [u.bob.id]), (u.bob, [u.alice.id]),
                     (u.bob, [u.alice.id, u.alice.id, u.bob.id])):
        r = who.post("/channels/direct", {"user_ids": ids})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == d["id"]
    trio = u.alice.post("/channels/direct", {"user_ids": [u.carol.id, u.bob.id]})
    assert trio.status_code == 201 and trio.json()["id"] != d["id"]
    assert trio.json()["member_count"] == 3
    assert u.carol.post("/channels/direct",
                        {"user_ids": [u.alice.id, u.bob.id]}).json()["id"] == trio.json()["id"]

    path = "/channels/" + d["id"]
    assert members(u.bob, d["id"]).keys() == {"alice", "bob"}
    assert d["id"] in visible_ids(u.alice) and d["id"] in visible_ids(u.bob)
    assert d["id"] not in visible_ids(u.carol)
    m = u.bob.ok("POST", path + "/messages", {"content": "psst"}, 201)
    assert u.alice.ok("GET", path)["unread_count"] == 1
    for method, sub, body in (("GET", "", None), ("GET", "/messages", None),
                              ("POST", "/messages", {"content": "hi"}),
                              ("POST", "/join", {})):
        assert_error(u.carol.call(method, path + sub, json=body), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.get("/messages/" + m["id"]), 404, "RESOURCE_NOT_FOUND")
    # No moderation, no renaming into a named channel.
    assert_error(u.alice.post(path + "/ban-by-username/bob"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(u.alice.post(path + "/members", {"user_id": u.carol.id}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(u.alice.patch(path, {"name": unique("dm")}), 422, "VALIDATION_ERROR")
    assert_error(u.alice.patch(path, {"is_private": False}), 422, "VALIDATION_ERROR")
    assert members(u.bob, d["id"]).keys() == {"alice", "bob"}
    assert u.alice.ok("GET", path)["is_private"] is True


def test_direct_channel_bad_input(u):
    before = len(visible_ids(u.dave))
    for body in ({}, {"user_ids": []}, {"user_ids": [u.dave.id]}, {"user_ids": [u.dave.id] * 3},
                 {"user_ids": ["usr_nobody"]}, {"user_ids": [u.alice.id, "usr_nobody"]},
                 {"user_ids": u.alice.id}, {"user_ids": [7]}, {"user_ids": [None]},
                 {"user_ids": ["x" * 200]},
                 {"user_ids": [u.alice.id] * 10}):
        assert_error(u.dave.post("/channels/direct", body), 422, "VALIDATION_ERROR")
    assert len(visible_ids(u.dave)) == before


def test_a_direct_channel_left_is_brought_back_by_opening_it(u):
    d = u.carol.ok("POST", "/channels/direct", {"user_ids": [u.dave.id]}, 201)
    path = "/channels/" + d["id"]
    u.carol.ok("POST", path + "/messages", {"content": "before leaving"}, 201)
    u.dave.ok("POST", path + "/leave", status=204)
    assert_error(u.dave.get(path), 404, "RESOURCE_NOT_FOUND")
    assert u.carol.ok("GET", path)["member_count"] == 1
    # Opening the same set again answers the same channel, and dave is back in it.
    again = u.dave.ok("POST", "/channels/direct", {"user_ids": [u.carol.id]})
    assert again["id"] == d["id"] and again["member_count"] == 2
    assert [m["content"] for m in u.dave.ok("GET", path + "/messages")["messages"]] == \
        ["before leaving"]
    # The opener left too: opening it from the other side brings it back as owner.
    u.carol.ok("POST", path + "/leave", status=204)
    assert u.dave.ok("POST", "/channels/direct", {"user_ids": [u.carol.id]})["id"] == d["id"]
    assert members(u.carol, d["id"]) == {"carol": "owner", "dave": "member"}
    # A deleted direct channel is not reused: the set gets a new one.
    u.carol.ok("DELETE", path, status=204)
    fresh = u.dave.ok("POST", "/channels/direct", {"user_ids": [u.carol.id]}, 201)
    assert fresh["id"] != d["id"] and fresh["owner_id"] == u.dave.id
    assert u.carol.ok("GET", "/channels/%s/messages" % fresh["id"])["messages"] == []


def _concurrently(n, fn):
    results, lock = [], threading.Lock()

    def run(i):
        out = fn(i)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_creations_of_one_name_make_one_channel(u, srv):
    name = unique("Racy")
    tokens = [c.session.headers["Authorization"] for c in (u.alice, u.bob, u.carol, u.dave)] * 2

    def create(i):
        r = requests.post(srv.url(API + "/channels"), timeout=30,
                          json={"name": name.upper() if i % 2 else name.lower()},
                          headers={"Authorization": tokens[i]})
        return r.status_code
    assert sorted(_concurrently(8, create)) == [201] + [409] * 7
    found = [c for c in u.admin.ok("GET", "/channels?limit=100")["channels"]
             if c["name"].lower() == name.lower()]
    assert len(found) == 1


def test_concurrent_opening_of_one_direct_set_makes_one_channel(u, srv):
    people = [u.alice, u.bob, u.dave]

    def open_dm(i):
        me = people[i % 3]
        others = [p.id for p in people if p is not me]
        r = requests.post(srv.url(API + "/channels/direct"), json={"user_ids": others},
                          headers={"Authorization": me.session.headers["Authorization"]},
                          timeout=30)
        return r.status_code, r.json()["id"]
    got = _concurrently(9, open_dm)
    assert sorted(s for s, _ in got) == [200] * 8 + [201]
    assert len({i for _, i in got}) == 1
    assert members(u.alice, got[0][1]).keys() == {"alice", "bob", "dave"}


def test_concurrent_joins_all_count(u, srv):
    c = new_channel(u.admin)
    who = [u.alice, u.bob, u.carol, u.dave] * 2

    def join(i):
        return requests.post(srv.url(API + "/channels/%s/join" % c["id"]), json={},
                             headers={"Authorization": who[i].session.headers["Authorization"]},
                             timeout=30).status_code
    assert _concurrently(8, join) == [200] * 8
    assert u.admin.ok("GET", "/channels/" + c["id"])["member_count"] == 5
    assert members(u.admin, c["id"]) == {"admin": "owner", "alice": "member", "bob": "member",
                                         "carol": "member", "dave": "member"}


def test_names_are_unique_case_insensitively_in_any_script(u):
    base = unique("x")[2:]
    for first, second in (("École-" + base, "éCOLE-" + base),
                          ("Привет-" + base, "ПРИВЕТ-" + base),
                          ("Οδός-" + base, "ΟΔΌΣ-" + base)):
        new_channel(u.alice, first)
        assert_error(u.bob.post("/channels", {"name": second}), 409, "CONFLICT")
        found = u.bob.ok("GET", "/channels?search=" + second.lower())["channels"]
        assert [c["name"] for c in found] == [first]
        found = u.bob.ok("GET", "/search/channels?q=" + second.upper())["channels"]
        assert [c["name"] for c in found] == [first]
    # Different letters are different names.
    new_channel(u.alice, "Ecole-" + base)


def test_is_member_tells_joined_channels_from_those_one_may_join(u):
    """The list and the channel object say whether the caller is a member
    (a public channel is listed to everyone): the web client's sidebar shows
    the joined ones and offers the others to join."""
    pub = new_channel(u.alice)
    priv = new_channel(u.alice, is_private=True)
    assert listed(u.alice, pub["id"])["is_member"] is True
    assert listed(u.alice, priv["id"])["is_member"] is True
    assert listed(u.bob, pub["id"])["is_member"] is False
    assert u.bob.ok("GET", "/channels/" + pub["id"])["is_member"] is False
    u.bob.ok("POST", "/channels/%s/join" % pub["id"])
    assert listed(u.bob, pub["id"])["is_member"] is True
    assert u.bob.ok("GET", "/channels/" + pub["id"])["is_member"] is True
    u.bob.ok("POST", "/channels/%s/leave" % pub["id"], None, 204)
    assert listed(u.bob, pub["id"])["is_member"] is False
    direct = u.alice.ok("POST", "/channels/direct", {"user_ids": [u.bob.id]})
    assert direct["id"] in visible_ids(u.bob)
    assert listed(u.bob, direct["id"])["is_member"] is True
    only = u.bob.ok("GET", "/channels?limit=100&fields=is_member")
    assert all(set(c) == {"id", "is_member"} for c in only["channels"])
