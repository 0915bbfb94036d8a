"""Messages end to end (docs/api.md, "Messages", "Errors"): posting by
both path forms, the message object with its sender's public profile,
history with before/after cursors (paging through 120 messages both ways
gives the exact sequence), one message, edits (author only), deletes
(author, channel owner/moderator, admin; the message keeps its place),
replies and threads, mentions (ids and @username), reactions and
idempotency keys.

Every refused request is checked for its status and code AND for having
changed nothing. One server and one set of accounts serve the module."""
import itertools
import re
import threading
import urllib.parse

import pytest
import requests

from conftest import assert_error, module_server, parse_raw_response, raw_http
from client import API, register

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MESSAGE_FIELDS = {"id", "channel_id", "user_id", "sender", "content", "content_type",
                  "created_at", "updated_at", "is_edited", "is_deleted", "reply_to",
                  "thread_id", "mentions", "attachments", "reactions"}


# ---- helpers -----------------------------------------------------------------

_names = itertools.count()


def new_channel(who, **fields):
    body = dict({"name": "m-%d" % next(_names)}, **fields)
    return who.ok("POST", "/channels", body, 201)


def post(who, channel, content, status=201, **extra):
    return who.ok("POST", "/channels/%s/messages" % channel["id"],
                  dict({"content": content}, **extra), status)


def history(who, channel, **params):
    r = who.get("/channels/%s/messages" % channel["id"], **params)
    assert r.status_code == 200, r.text
    return r.json()


def all_messages(who, channel):
    """The whole history, oldest first, paging back 100 at a time."""
    out, params = [], {"limit": 100}
    while True:
        page = history(who, channel, **params)
        out = page["messages"] + out
        if not page["has_more"]:
            return out
        params["before"] = page["next_cursor"]


def emoji_path(message_id, emoji):
    return "/messages/%s/reactions/%s" % (message_id, urllib.parse.quote(emoji, safe=""))


# ---- the module's server and accounts -------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "messages")


@pytest.fixture(scope="module")
def u(srv):
    """admin (first account), alice (owns `general`), bob (moderator there),
    carol (member), dave (never joins anything), and the channels."""
    class Users:
        pass
    users = Users()
    users.admin = register(srv, "admin")
    users.alice = register(srv, "alice", display_name="Alice Liddell")
    for name in ("bob", "carol", "dave"):
        setattr(users, name, register(srv, name))
    users.general = new_channel(users.alice)
    for who in (users.bob, users.carol):
        who.ok("POST", "/channels/%s/join" % users.general["id"])
    users.alice.ok("PATCH", "/channels/%s/members/%s" % (users.general["id"], users.bob.id),
                   {"role": "moderator"})
    return users


# ---- posting and the message object ------------------------------------------------

def test_post_both_forms_and_the_message_object(u):
    c = new_channel(u.alice)
    m = post(u.alice, c, "  hello world \n")
    assert set(m) == MESSAGE_FIELDS
    assert m["content"] == "hello world"  # trimmed
    assert m["channel_id"] == c["id"] and m["user_id"] == u.alice.id
    assert m["sender"] == {"id": u.alice.id, "username": "alice", "display_name": "Alice Liddell",
                           "avatar_url": None}
    assert m["content_type"] == "text"
    assert TIME_RE.match(m["created_at"]) and m["updated_at"] == m["created_at"]
    assert m["is_edited"] is False and m["is_deleted"] is False
    assert m["reply_to"] is None and m["thread_id"] is None
    assert m["mentions"] == [] and m["attachments"] == [] and m["reactions"] == []

    r = u.bob.post("/messages", {"channel_id": c["id"], "content": "second"})
    assert r.status_code == 201, r.text
    m2 = r.json()
    assert m2["channel_id"] == c["id"] and m2["sender"]["username"] == "bob"
    assert m2["id"] > m["id"]  # ids sort in creation order

    assert u.carol.ok("GET", "/messages/" + m["id"]) == m
    assert u.carol.ok("GET", "/messages/" + m2["id"]) == m2
    assert history(u.carol, c)["messages"] == [m, m2]
    assert u.carol.ok("GET", "/messages?channel_id=" + c["id"])["messages"] == [m, m2]


def test_a_profile_change_shows_in_old_messages(u):
    c = new_channel(u.carol)
    m = post(u.carol, c, "before")
    u.carol.ok("PUT", "/users/me", {"display_name": "Carol C"})
    assert u.alice.ok("GET", "/messages/" + m["id"])["sender"]["display_name"] == "Carol C"


def test_history_pages_both_ways_without_gap_or_duplicate(u):
    c = new_channel(u.alice)
    sent = [post(u.alice if i % 3 else u.bob, c, "message %d" % i)["id"] for i in range(120)]
    assert sent == sorted(sent) and len(set(sent)) == 120

    newest = history(u.carol, c)
    assert [m["id"] for m in newest["messages"]] == sent[-50:]  # default limit 50
    assert newest["has_more"] is True and newest["next_cursor"] == sent[-50]
    full = history(u.carol, c, limit=100)
    assert [m["id"] for m in full["messages"]] == sent[-100:]

    for limit in (1, 7, 50, 100):
        # Backwards from the newest with before=next_cursor.
        got, params = [], {"limit": limit}
        while True:
            page = history(u.carol, c, **params)
            assert 0 < len(page["messages"]) <= limit
            got = [m["id"] for m in page["messages"]] + got
            if not page["has_more"]:
                assert page["next_cursor"] is None
                break
            assert page["next_cursor"] == page["messages"][0]["id"]
            params["before"] = page["next_cursor"]
        assert got == sent, limit
        # Forwards from the oldest with after=next_cursor.
        got, params = [sent[0]], {"limit": limit, "after": sent[0]}
        while True:
            page = history(u.carol, c, **params)
            got += [m["id"] for m in page["messages"]]
            if not page["has_more"]:
                assert page["next_cursor"] is None
                break
            assert page["next_cursor"] == page["messages"][-1]["id"]
            params["after"] = page["next_cursor"]
        assert got == sent, limit

    mid = history(u.carol, c, before=sent[60], limit=5)
    assert [m["id"] for m in mid["messages"]] == sent[55:60] and mid["has_more"] is True
    mid = history(u.carol, c, after=sent[60], limit=5)
    assert [m["id"] for m in mid["messages"]] == sent[61:66] and mid["has_more"] is True
    # The flat fields and PlexiChat's pagination object (total_count: the
    # channel's whole history).
    empty = {"messages": [], "has_more": False, "next_cursor": None,
             "pagination": {"has_more": False, "next_cursor": None, "total_count": 120}}
    edge = history(u.carol, c, before=sent[0])
    assert edge == empty
    edge = history(u.carol, c, after=sent[-1])
    assert edge == empty
    tail = history(u.carol, c, after=sent[-4])
    assert [m["id"] for m in tail["messages"]] == sent[-3:] and tail["has_more"] is False
    # The other path form agrees.
    alt = u.carol.ok("GET", "/messages?channel_id=%s&limit=9&before=%s" % (c["id"], sent[30]))
    assert [m["id"] for m in alt["messages"]] == sent[21:30] and alt["has_more"] is True
    assert [m["content"] for m in all_messages(u.carol, c)] == \
        ["message %d" % i for i in range(120)]


def test_empty_channel_history(u):
    c = new_channel(u.alice)
    assert history(u.alice, c) == {
        "messages": [], "has_more": False, "next_cursor": None,
        "pagination": {"has_more": False, "next_cursor": None, "total_count": 0}}


def test_history_bad_limits_and_cursors(u):
    c = new_channel(u.alice)
    other = new_channel(u.alice)
    m = post(u.alice, c, "one")
    foreign = post(u.alice, other, "elsewhere")
    for q in ("limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "limit=1.5",
              "limit=%2B5"):
        assert_error(u.bob.get("/channels/%s/messages?%s" % (c["id"], q)), 422,
                     "VALIDATION_ERROR")
        assert_error(u.bob.get("/messages?channel_id=%s&%s" % (c["id"], q)), 422,
                     "VALIDATION_ERROR")
    for cursor in ("msg_9999999999999999", "garbage", "", foreign["id"], "x" * 200,
                   "msg_00000000000000001"):
        for name in ("before", "after"):
            err = assert_error(u.bob.get("/channels/%s/messages" % c["id"], **{name: cursor}),
                               422, "VALIDATION_ERROR")
            assert err["details"]["field"] == name
    assert_error(u.bob.get("/channels/%s/messages" % c["id"], before=m["id"], after=m["id"]),
                 422, "VALIDATION_ERROR")
    assert_error(u.bob.get("/messages"), 422, "VALIDATION_ERROR")
    assert_error(u.bob.get("/messages", channel_id="ch_nope"), 404, "RESOURCE_NOT_FOUND")


@pytest.mark.parametrize("mid", ["msg_9999999999999999", "msg_0000000000000000", "nope",
                                 "x" * 300, "ch_general", "msg_%2E%2E"])
def test_unknown_or_malformed_message_ids_are_404(u, mid):
    for method, sub, body in (("GET", "", None), ("PUT", "", {"content": "x"}),
                              ("DELETE", "", None), ("GET", "/thread", None),
                              ("POST", "/reactions", {"emoji": "👍"}),
                              ("DELETE", "/reactions/x", None)):
        assert_error(u.admin.call(method, "/messages/" + mid + sub, json=body), 404,
                     "RESOURCE_NOT_FOUND")


# ---- content rules ---------------------------------------------------------------

def test_content_limits_count_characters(u):
    c = new_channel(u.alice)
    assert len(post(u.alice, c, "a" * 4000)["content"]) == 4000
    assert post(u.alice, c, "é" * 4000)["content"] == "é" * 4000       # 8000 bytes
    assert post(u.alice, c, "😀" * 4000)["content"] == "😀" * 4000     # 16000 bytes
    assert post(u.alice, c, "  " + "b" * 4000 + "\n\n")["content"] == "b" * 4000  # trimmed first
    assert post(u.alice, c, "line one\nline\ttwo")["content"] == "line one\nline\ttwo"
    before = all_messages(u.alice, c)
    path = "/channels/%s/messages" % c["id"]
    for body in ({"content": ""}, {"content": "   "}, {"content": " \n\t\r "},
                 {"content": "a" * 4001}, {"content": "é" * 4001}, {"content": "😀" * 4001},
                 {}, {"content": None}, {"content": 5}, {"content": ["x"]}, {"content": True},
                 {"content": {"text": "x"}}, {"content": "bell\x07"},
                 {"content": "ok", "reply_to": 5}, {"content": "ok", "idempotency_key": 7},
                 {"content": "ok", "mentions": "bob"}, {"content": "ok", "mentions": [1]},
                 {"content": "ok", "mentions": ["usr_nobody"]},
                 {"content": "ok", "attachments": ["file_nope"]},
                 {"content": "ok", "attachments": "x"},
                 {"content": "ok", "idempotency_key": "k" * 129},
                 {"content": "ok", "idempotency_key": ""}):
        err = assert_error(u.alice.post(path, body), 422, "VALIDATION_ERROR")
        assert err["details"].get("field"), body
    assert_error(u.alice.post("/messages", {"content": "no channel"}), 422, "VALIDATION_ERROR")
    assert_error(u.alice.post("/messages", {"channel_id": 5, "content": "x"}), 422,
                 "VALIDATION_ERROR")
    assert all_messages(u.alice, c) == before


def test_malformed_bodies_are_400_and_change_nothing(u, srv):
    c = new_channel(u.alice)
    before = all_messages(u.alice, c)
    head = ("POST /api/v1/channels/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %%d\r\nConnection: close\r\n\r\n"
            % (c["id"], u.alice.token)).encode()
    for body in (b'{"content": "caf\xe9"}', b'{"content": "\xed\xa0\x80"}',
                 b'{"content": "\xc0\xaf"}', b'{"content": "x"', b'{"content": "\\u0000"}',
                 b'{"content": "a", "content": "b"}'):
        assert_error(parse_raw_response(raw_http(srv.port, head % len(body) + body)), 400,
                     "BAD_REQUEST")
    assert_error(u.alice.call("POST", "/channels/%s/messages" % c["id"], data="content=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}),
                 400, "BAD_REQUEST")
    assert_error(u.alice.call("POST", "/channels/%s/messages" % c["id"], data='"just a string"',
                              headers={"Content-Type": "application/json"}), 422,
                 "VALIDATION_ERROR")
    assert_error(requests.post(srv.url(API + "/channels/%s/messages" % c["id"]),
                               json={"content": "anon"}), 401, "AUTHENTICATION_REQUIRED")
    assert all_messages(u.alice, c) == before


def test_non_members_and_banned_users_cannot_post(u):
    priv = new_channel(u.alice, is_private=True)
    post(u.alice, priv, "inside")
    before = all_messages(u.alice, priv)
    assert_error(u.dave.post("/channels/%s/messages" % priv["id"], {"content": "x"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(u.dave.post("/messages", {"channel_id": priv["id"], "content": "x"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(u.dave.get("/channels/%s/messages" % priv["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.dave.get("/messages", channel_id=priv["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.dave.get("/messages/" + before[0]["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.dave.get("/messages/%s/thread" % before[0]["id"]), 404, "RESOURCE_NOT_FOUND")

    d = u.alice.ok("POST", "/channels/direct", {"user_ids": [u.carol.id]}, 201)
    dm = post(u.carol, d, "just us")
    assert_error(u.dave.post("/channels/%s/messages" % d["id"], {"content": "x"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(u.dave.get("/messages/" + dm["id"]), 404, "RESOURCE_NOT_FOUND")

    pub = new_channel(u.alice)
    post(u.dave, pub, "anyone may post in a public channel")
    u.alice.ok("POST", "/channels/%s/ban-by-username/dave" % pub["id"])
    pub_before = all_messages(u.alice, pub)
    assert_error(u.dave.post("/channels/%s/messages" % pub["id"], {"content": "x"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(u.dave.post("/messages", {"channel_id": pub["id"], "content": "x"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(u.dave.post("/channels/%s/messages" % pub["id"],
                             {"content": "x", "idempotency_key": "banned"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert all_messages(u.alice, priv) == before
    assert all_messages(u.alice, pub) == pub_before
    assert [m["content"] for m in all_messages(u.alice, d)] == ["just us"]


# ---- edit ---------------------------------------------------------------------

def test_edit_by_the_author_only(u):
    g = u.general
    m = post(u.carol, g, "first draft")
    for who in (u.alice, u.bob, u.admin, u.dave):  # owner, moderator, admin, outsider
        assert_error(who.put("/messages/" + m["id"], {"content": "hijacked"}), 403,
                     "INSUFFICIENT_PERMISSIONS")
    assert u.carol.ok("GET", "/messages/" + m["id"]) == m
    for body in ({"content": ""}, {"content": "  "}, {"content": "x" * 4001}, {},
                 {"content": 3}):
        assert_error(u.carol.put("/messages/" + m["id"], body), 422, "VALIDATION_ERROR")
    assert u.carol.ok("GET", "/messages/" + m["id"]) == m

    e = u.carol.ok("PUT", "/messages/" + m["id"], {"content": " final text "})
    assert e["content"] == "final text" and e["is_edited"] is True
    assert e["created_at"] == m["created_at"] and e["updated_at"] >= m["updated_at"]
    assert TIME_RE.match(e["updated_at"])
    assert {k: e[k] for k in MESSAGE_FIELDS - {"content", "is_edited", "updated_at"}} == \
        {k: m[k] for k in MESSAGE_FIELDS - {"content", "is_edited", "updated_at"}}
    assert u.alice.ok("GET", "/messages/" + m["id"]) == e
    assert [x for x in history(u.alice, g, limit=100)["messages"] if x["id"] == m["id"]] == [e]
    e2 = u.carol.ok("PUT", "/messages/" + m["id"], {"content": "é" * 4000})
    assert e2["content"] == "é" * 4000


# ---- delete -------------------------------------------------------------------

def test_delete_keeps_the_place_and_drops_the_content(u):
    c = new_channel(u.alice)
    u.carol.ok("POST", "/channels/%s/join" % c["id"])
    ms = [post(u.carol, c, "c%d" % i) for i in range(3)]
    u.carol.ok("DELETE", "/messages/" + ms[1]["id"], status=204)
    gone = u.alice.ok("GET", "/messages/" + ms[1]["id"])
    assert gone["is_deleted"] is True and gone["content"] is None
    assert gone["id"] == ms[1]["id"] and gone["created_at"] == ms[1]["created_at"]
    assert [(m["id"], m["is_deleted"], m["content"]) for m in all_messages(u.alice, c)] == \
        [(ms[0]["id"], False, "c0"), (ms[1]["id"], True, None), (ms[2]["id"], False, "c2")]
    # A deleted message stays deleted: no second delete, no edit, no reaction.
    assert_error(u.carol.delete("/messages/" + ms[1]["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.put("/messages/" + ms[1]["id"], {"content": "back"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(u.carol.post("/messages/%s/reactions" % ms[1]["id"], {"emoji": "x"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert u.alice.ok("GET", "/messages/" + ms[1]["id"]) == gone
    # A cursor may be a deleted message.
    page = history(u.alice, c, before=ms[2]["id"])
    assert [m["id"] for m in page["messages"]] == [ms[0]["id"], ms[1]["id"]]


def test_who_may_delete_others_messages(u):
    g = u.general
    # Owner (alice), moderator (bob) and admin may; a member and an outsider may not.
    for who, status in ((u.carol, 403), (u.dave, 403), (u.alice, 204), (u.bob, 204),
                        (u.admin, 204)):
        author = u.carol if who is not u.carol else u.bob
        m = post(author, g, "delete me?")
        r = who.delete("/messages/" + m["id"])
        if status == 204:
            assert r.status_code == 204, r.text
            assert u.carol.ok("GET", "/messages/" + m["id"])["is_deleted"] is True
        else:
            assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
            assert u.carol.ok("GET", "/messages/" + m["id"]) == m
    # A message the caller cannot see does not exist.
    priv = new_channel(u.alice, is_private=True)
    m = post(u.alice, priv, "hidden")
    assert_error(u.dave.delete("/messages/" + m["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.dave.put("/messages/" + m["id"], {"content": "x"}), 404, "RESOURCE_NOT_FOUND")
    assert u.alice.ok("GET", "/messages/" + m["id"]) == m


# ---- replies and threads ----------------------------------------------------------

def test_replies_and_threads(u):
    c = new_channel(u.alice)
    root = post(u.alice, c, "root")
    r1 = post(u.bob, c, "reply one", reply_to=root["id"])
    assert r1["reply_to"] == root["id"] and r1["thread_id"] == root["id"]
    r2 = post(u.carol, c, "reply to the reply", reply_to=r1["id"])
    assert r2["reply_to"] == r1["id"] and r2["thread_id"] == root["id"]
    other = post(u.alice, c, "not in the thread")
    r3 = u.bob.ok("POST", "/messages", {"channel_id": c["id"], "content": "three",
                                        "reply_to": root["id"]}, 201)
    for start in (root, r1, r2):
        t = u.dave.ok("GET", "/messages/%s/thread" % start["id"])
        assert t["thread_id"] == root["id"] and t["total"] == 3
        assert [m["id"] for m in t["messages"]] == [r1["id"], r2["id"], r3["id"]]
        assert t["messages"][0] == u.dave.ok("GET", "/messages/" + r1["id"])
    assert u.dave.ok("GET", "/messages/%s/thread" % other["id"]) == \
        {"thread_id": other["id"], "messages": [], "total": 0}
    # A deleted reply stays in the thread, marked.
    u.carol.ok("DELETE", "/messages/" + r2["id"], status=204)
    t = u.dave.ok("GET", "/messages/%s/thread" % root["id"])
    assert [m["is_deleted"] for m in t["messages"]] == [False, True, False]

    elsewhere = post(u.alice, new_channel(u.alice), "elsewhere")
    before = all_messages(u.alice, c)
    for bad in (elsewhere["id"], "msg_9999999999999999", "garbage", "x" * 39):
        err = assert_error(u.alice.post("/channels/%s/messages" % c["id"],
                                        {"content": "x", "reply_to": bad}), 422,
                           "VALIDATION_ERROR")
        assert err["details"]["field"] == "reply_to"
    assert all_messages(u.alice, c) == before


# ---- mentions -----------------------------------------------------------------

def test_mentions_by_id_and_by_username(u):
    c = new_channel(u.alice)
    m = post(u.alice, c, "hey @Carol and @dave. mail x@bob, @nobody_here, (@admin)",
             mentions=[u.bob.id, u.bob.id])
    assert set(m["mentions"]) == {u.bob.id, u.carol.id, u.dave.id, u.admin.id}
    assert len(m["mentions"]) == 4
    assert post(u.alice, c, "no one here @")["mentions"] == []
    assert post(u.alice, c, "ids only", mentions=[u.carol.id])["mentions"] == [u.carol.id]
    assert u.bob.ok("GET", "/messages/" + m["id"])["mentions"] == m["mentions"]


# ---- reactions ----------------------------------------------------------------

def test_reactions_add_and_remove_with_counts_and_users(u):
    g = u.general
    m = post(u.alice, g, "react to me")
    path = "/messages/%s/reactions" % m["id"]
    r = u.bob.ok("POST", path, {"emoji": "👍"}, 201)
    assert r["reactions"] == [{"emoji": "👍", "count": 1, "users": [u.bob.id]}]
    r = u.carol.ok("POST", path, {"emoji": "👍"}, 201)
    assert r["reactions"] == [{"emoji": "👍", "count": 2, "users": [u.bob.id, u.carol.id]}]
    r = u.bob.ok("POST", path, {"emoji": "👍"}, 200)  # again: nothing changes
    assert r["reactions"] == [{"emoji": "👍", "count": 2, "users": [u.bob.id, u.carol.id]}]
    r = u.dave.ok("POST", path, {"emoji": ":tada:"}, 201)  # public: anyone not banned
    r = u.alice.ok("POST", path, {"emoji": "👨‍👩‍👧"}, 201)  # a ZWJ sequence is one emoji
    assert [(x["emoji"], x["count"]) for x in r["reactions"]] == \
        [("👍", 2), (":tada:", 1), ("👨‍👩‍👧", 1)]
    assert u.carol.ok("GET", "/messages/" + m["id"])["reactions"] == r["reactions"]

    r = u.bob.ok("DELETE", emoji_path(m["id"], "👍"))
    assert r["reactions"][0] == {"emoji": "👍", "count": 1, "users": [u.carol.id]}
    assert_error(u.bob.delete(emoji_path(m["id"], "👍")), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.delete(emoji_path(m["id"], "🙈")), 404, "RESOURCE_NOT_FOUND")
    r = u.carol.ok("DELETE", emoji_path(m["id"], "👍"))
    assert [x["emoji"] for x in r["reactions"]] == [":tada:", "👨‍👩‍👧"]
    r = u.dave.ok("DELETE", emoji_path(m["id"], ":tada:"))
    assert r["reactions"] == [{"emoji": "👨‍👩‍👧", "count": 1, "users": [u.alice.id]}]
    assert u.bob.ok("GET", "/messages/" + m["id"]) == r


def test_bad_reactions_change_nothing(u):
    g = u.general
    m = post(u.alice, g, "no bad reactions")
    u.bob.ok("POST", "/messages/%s/reactions" % m["id"], {"emoji": "ok"}, 201)
    before = u.alice.ok("GET", "/messages/" + m["id"])
    path = "/messages/%s/reactions" % m["id"]
    for body in ({"emoji": ""}, {"emoji": "x" * 33}, {"emoji": "😀" * 17}, {"emoji": "a b"},
                 {"emoji": "a/b"}, {"emoji": "\t"}, {"emoji": 5}, {"emoji": None}, {},
                 {"emoji": ["👍"]}):
        assert_error(u.carol.post(path, body), 422, "VALIDATION_ERROR")
    assert_error(u.carol.delete(emoji_path(m["id"], "x" * 33)), 422, "VALIDATION_ERROR")
    assert u.alice.ok("GET", "/messages/" + m["id"]) == before
    # Banned: no reactions; outsiders of a private channel: no such message.
    pub = new_channel(u.alice)
    pm = post(u.alice, pub, "banned?")
    u.alice.ok("POST", "/channels/%s/ban-by-username/dave" % pub["id"])
    assert_error(u.dave.post("/messages/%s/reactions" % pm["id"], {"emoji": "x"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    priv = new_channel(u.alice, is_private=True)
    hm = post(u.alice, priv, "hidden")
    assert_error(u.dave.post("/messages/%s/reactions" % hm["id"], {"emoji": "x"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert u.alice.ok("GET", "/messages/" + pm["id"])["reactions"] == []
    assert u.alice.ok("GET", "/messages/" + hm["id"])["reactions"] == []


# ---- idempotency keys --------------------------------------------------------------

def test_idempotency_key_returns_the_first_message(u):
    c = new_channel(u.alice)
    u.bob.ok("POST", "/channels/%s/join" % c["id"])
    first = post(u.alice, c, "only once", idempotency_key="key-1")
    again = post(u.alice, c, "only once", status=200, idempotency_key="key-1")
    assert again == first
    # Even with another body, or by the other path form, the key wins.
    other = u.alice.ok("POST", "/messages", {"channel_id": c["id"], "content": "changed",
                                             "idempotency_key": "key-1"}, 200)
    assert other == first
    # Another user with the same key makes its own message.
    bobs = post(u.bob, c, "only once", idempotency_key="key-1")
    assert bobs["id"] != first["id"] and bobs["user_id"] == u.bob.id
    assert post(u.bob, c, "x", status=200, idempotency_key="key-1") == bobs
    # Another key, or none, is a new message.
    assert post(u.alice, c, "only once", idempotency_key="key-2")["id"] != first["id"]
    assert post(u.alice, c, "only once")["id"] != first["id"]
    assert [m["content"] for m in all_messages(u.alice, c)] == \
        ["only once", "only once", "only once", "only once"]
    # The key keeps answering the first message after it is edited or deleted.
    u.alice.ok("PUT", "/messages/" + first["id"], {"content": "edited"})
    assert post(u.alice, c, "only once", status=200, idempotency_key="key-1")["id"] == first["id"]
    u.alice.ok("DELETE", "/messages/" + first["id"], status=204)
    assert post(u.alice, c, "only once", status=200, idempotency_key="key-1")["id"] == first["id"]
    assert len(all_messages(u.alice, c)) == 4


def test_idempotency_keys_are_limited_in_bytes(u):
    # 128 bytes at most: a longer key would be cut and could meet another.
    c = new_channel(u.alice)
    first = post(u.alice, c, "x", idempotency_key="é" * 64)  # 128 bytes
    assert post(u.alice, c, "x", status=200, idempotency_key="é" * 64)["id"] == first["id"]
    for key in ("é" * 64 + "x", "é" * 100, "k" * 129):
        err = assert_error(u.alice.post("/channels/%s/messages" % c["id"],
                                        {"content": "x", "idempotency_key": key}), 422,
                           "VALIDATION_ERROR")
        assert err["details"]["field"] == "idempotency_key"
    assert len(all_messages(u.alice, c)) == 1


def test_concurrent_posts_with_one_key_make_one_message(u):
    c = new_channel(u.alice)
    url = u.alice.server.url(API + "/channels/%s/messages" % c["id"])
    results, lock = [], threading.Lock()

    def send(i):
        r = requests.post(url, json={"content": "racing %d" % i, "idempotency_key": "race"},
                          headers={"Authorization": "Bearer " + u.alice.token}, timeout=30)
        with lock:
            results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * 7 + [201], results
    assert len({m["id"] for _, m in results}) == 1
    assert len({m["content"] for _, m in results}) == 1
    assert [m["id"] for m in all_messages(u.alice, c)] == [results[0][1]["id"]]


def test_concurrent_reactions_all_count(u):
    m = post(u.alice, u.general, "pile on")
    url = u.alice.server.url(API + "/messages/%s/reactions" % m["id"])
    who = [u.alice, u.bob, u.carol, u.dave, u.admin] * 3  # each user three times
    codes, lock = [], threading.Lock()

    def react(client):
        r = requests.post(url, json={"emoji": "🔥"}, timeout=30,
                          headers={"Authorization": "Bearer " + client.token})
        with lock:
            codes.append(r.status_code)

    threads = [threading.Thread(target=react, args=(c,)) for c in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 10 + [201] * 5
    got = u.bob.ok("GET", "/messages/" + m["id"])["reactions"]
    assert len(got) == 1 and got[0]["count"] == 5
    assert sorted(got[0]["users"]) == sorted(c.id for c in who[:5])
