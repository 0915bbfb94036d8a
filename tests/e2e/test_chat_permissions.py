"""The permission matrix of chat (src/access/channel_access.c, docs/api.md):
roles owner, moderator, member, non-member, banned and admin, in public,
private and direct channels, for read, post, edit (someone else's message),
edit_own, delete (someone else's message), react and search, one
parametrized case each with its expected status.

The rules: a public channel is read by everyone and posted in by everyone
not banned from it; private and direct channels exist only for their
members (404 for everyone else, the same as a channel that does not exist);
an admin who is not a member is no reader of them either: it gets the
channel's object (GET /channels/{id}, without its last message, and may
delete the channel) but 404 for its messages, members and search, like any
non-member; only authors edit, and only while they may still
post there; the owner, moderators and the admin delete others' messages in
named channels; direct channels have no moderation, so there only authors
(and the admin) delete. Every refused request is checked to have changed
nothing.

"non-member" of the private channel is a former member (it posted while
invited, then was removed), "banned" a member who posted and was then
banned: their own messages are what edit_own tries."""
import pytest

from conftest import assert_error, module_server
from client import register

ROLES = ("owner", "moderator", "member", "nonmember", "banned", "admin")
ACTIONS = ("read", "post", "edit", "edit_own", "delete", "react", "search")
T, F = True, False

# kind -> role -> expected outcome of each action, in ACTIONS order (None: no such case).
EXPECTED = {
    "public": {
        "owner":     (200, 201, 403, 200, 204, 201, T),
        "moderator": (200, 201, 403, 200, 204, 201, T),
        "member":    (200, 201, 403, 200, 403, 201, T),
        "nonmember": (200, 201, 403, 200, 403, 201, T),
        "banned":    (200, 403, 403, 403, 403, 403, T),
        "admin":     (200, 201, 403, 200, 204, 201, T),
    },
    "private": {
        "owner":     (200, 201, 403, 200, 204, 201, T),
        "moderator": (200, 201, 403, 200, 204, 201, T),
        "member":    (200, 201, 403, 200, 403, 201, T),
        "nonmember": (404, 404, 404, 404, 404, 404, F),
        "banned":    (404, 404, 404, 404, 404, 404, F),
        "admin":     (404, 404, 404, None, 404, 404, F),
    },
    "direct": {  # the creator is the "owner"; no moderators, no bans
        "owner":     (200, 201, 403, 200, 403, 201, T),
        "member":    (200, 201, 403, 200, 403, 201, T),
        "nonmember": (404, 404, 404, None, 404, 404, F),
        "admin":     (404, 404, 404, None, 404, 404, F),
    },
}
CODES = {200: None, 201: None, 204: None, 403: "INSUFFICIENT_PERMISSIONS",
         404: "RESOURCE_NOT_FOUND"}


def cases():
    for kind, rows in EXPECTED.items():
        for role, row in rows.items():
            for action, expected in zip(ACTIONS, row):
                if expected is not None:
                    yield pytest.param(kind, role, action, expected,
                                       id="%s-%s-%s" % (kind, role, action))


# ---- helpers -----------------------------------------------------------------

def expect(resp, status):
    if CODES[status] is None:
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None
    assert_error(resp, status, CODES[status])
    return None


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "perms")


@pytest.fixture(scope="module")
def world(srv):
    """The users, the three channels, everyone's own messages and the
    poster's searchable message in each channel."""
    users = {name: register(srv, name) for name in
             ("admin", "owner", "moderator", "member", "nonmember", "banned", "poster")}
    owner = users["owner"]
    chans = {
        "public": owner.ok("POST", "/channels", {"name": "perm-public"}, 201),
        "private": owner.ok("POST", "/channels", {"name": "perm-private", "is_private": True},
                            201),
        "direct": owner.ok("POST", "/channels/direct",
                           {"user_ids": [users["member"].id, users["poster"].id]}, 201),
    }
    pub, priv = chans["public"]["id"], chans["private"]["id"]
    for name in ("moderator", "member", "banned", "poster"):
        users[name].ok("POST", "/channels/%s/join" % pub)
    for name in ("moderator", "member", "banned", "poster", "nonmember"):
        owner.ok("POST", "/channels/%s/members" % priv, {"user_id": users[name].id}, 201)
    for cid in (pub, priv):
        owner.ok("PATCH", "/channels/%s/members/%s" % (cid, users["moderator"].id),
                 {"role": "moderator"})

    own = {}  # (kind, role) -> id of that role's own message there
    for kind, rows in EXPECTED.items():
        for role, row in rows.items():
            if row[ACTIONS.index("edit_own")] is not None:
                m = users[role].ok("POST", "/channels/%s/messages" % chans[kind]["id"],
                                   {"content": "own message of %s" % role}, 201)
                own[kind, role] = m["id"]
    for cid in (pub, priv):
        owner.ok("POST", "/channels/%s/ban-by-username/banned" % cid)
    owner.ok("DELETE", "/channels/%s/members/%s" % (priv, users["nonmember"].id), status=204)

    found = {}  # kind -> the poster's message with a word only it has
    for kind, c in chans.items():
        found[kind] = users["poster"].ok("POST", "/channels/%s/messages" % c["id"],
                                         {"content": "findme%s here" % kind}, 201)
    return {"users": users, "chans": chans, "own": own, "found": found}


def history_ids(poster, cid):
    page = poster.ok("GET", "/channels/%s/messages?limit=100" % cid)
    return [m["id"] for m in page["messages"]]


@pytest.mark.parametrize("kind,role,action,expected", list(cases()))
def test_permission(world, kind, role, action, expected):
    who = world["users"][role]
    poster = world["users"]["poster"]
    cid = world["chans"][kind]["id"]
    target = world["found"][kind]

    if action == "read":
        expect(who.call("GET", "/channels/%s/messages" % cid), expected)
        if role == "admin" and kind != "public":
            # Known to the admin (it may delete it), but none of its content.
            c = who.ok("GET", "/channels/" + cid)
            assert c["id"] == cid and "last_message" not in c and "unread_count" not in c
        else:
            expect(who.call("GET", "/channels/" + cid), expected)
        got = expect(who.call("GET", "/messages/" + target["id"]), expected)
        if got is not None:
            assert got["id"] == target["id"]
        expect(who.call("GET", "/messages/%s/thread" % target["id"]), expected)
        expect(who.call("GET", "/channels/%s/members" % cid), expected)

    elif action == "post":
        before = history_ids(poster, cid)
        m = expect(who.call("POST", "/channels/%s/messages" % cid,
                            {"content": "post by %s" % role}), expected)
        after = history_ids(poster, cid)
        if m is None:
            assert after == before
            expect(who.call("POST", "/messages", {"channel_id": cid, "content": "again"}),
                   expected)
            assert history_ids(poster, cid) == before
        else:
            assert after == before + [m["id"]] and m["user_id"] == who.id

    elif action in ("edit", "edit_own"):
        if action == "edit":
            mid = poster.ok("POST", "/channels/%s/messages" % cid, {"content": "edit me"},
                            201)["id"]
            author = poster
        else:
            mid = world["own"][kind, role]
            author = world["users"]["owner"]  # a member of all three: reads them as they are
        before = author.ok("GET", "/messages/" + mid)
        m = expect(who.call("PUT", "/messages/" + mid, {"content": "edited by %s" % role}),
                   expected)
        now = author.ok("GET", "/messages/" + mid)
        if m is None:
            assert now == before
        else:
            assert now == m and m["content"] == "edited by %s" % role and m["is_edited"]

    elif action == "delete":
        mid = poster.ok("POST", "/channels/%s/messages" % cid, {"content": "delete me"},
                        201)["id"]
        before = poster.ok("GET", "/messages/" + mid)
        expect(who.call("DELETE", "/messages/" + mid), expected)
        now = poster.ok("GET", "/messages/" + mid)
        if expected == 204:
            assert now["is_deleted"] is True and now["content"] is None
        else:
            assert now == before

    elif action == "react":
        emoji = "r-%s" % role
        m = expect(who.call("POST", "/messages/%s/reactions" % target["id"], {"emoji": emoji}),
                   expected)
        now = poster.ok("GET", "/messages/" + target["id"])
        mine = [r for r in now["reactions"] if r["emoji"] == emoji]
        if m is None:
            assert mine == []
        else:
            assert mine == [{"emoji": emoji, "count": 1, "users": [who.id]}]
            assert m["reactions"] == now["reactions"]
            assert who.call("DELETE", "/messages/%s/reactions/%s"
                            % (target["id"], emoji)).status_code == 200

    elif action == "search":
        word = "findme%s" % kind
        r = who.call("GET", "/search/messages?q=" + word)
        assert r.status_code == 200, r.text
        ids = [h["message_id"] for h in r.json()["results"]]
        assert ids == ([target["id"]] if expected else [])
        r = who.call("POST", "/search/messages", {"q": word, "channel_id": cid})
        if expected:
            assert r.status_code == 200, r.text
            assert [h["message_id"] for h in r.json()["results"]] == [target["id"]]
        else:
            assert_error(r, 404, "RESOURCE_NOT_FOUND")
        listed = {c["id"] for c in
                  who.ok("GET", "/channels?limit=100")["channels"]}
        # The list holds public channels and the caller's own (not all the admin sees).
        member_of = role in ("owner", "moderator", "member")
        assert (cid in listed) == (kind == "public" or member_of)
