"""Chat state survives restarts exactly: after a clean stop (SIGTERM) and
after SIGKILL (recovery from the log), on the same data directory,
channels (renamed, made private, deleted), memberships and roles, bans,
direct channels, messages with replies, mentions, edits, deletes and
reactions, read markers (unread counts) and idempotency keys are as they
were. Each user's full JSON views (the channel list, every channel, its
members and bans, every history and thread, every message) are compared
before and after, and search finds the same results in the same order.

Run twice: with the default snapshot policy (a clean stop snapshots, a
kill replays the whole log) and with a snapshot every 7 records, so that
recovery also starts from a snapshot holding chat records and replays the
tail after it."""
import os
import signal

import pytest

from conftest import assert_error
from client import register, wait_until

SEARCHES = ("lantern", "harbor", "ünïcödé", "καλη", "edited", "reply", "secret")


class World:
    def __init__(self):
        self.users = {}
        self.channels = {}      # label -> id
        self.keys = []          # (user, channel label, idempotency key, message id)
        self.roots = []         # message ids whose threads are compared

    def use(self, server):
        """The same accounts against the restarted server (their tokens stay
        valid: the JWT secret lives in the data directory)."""
        self.users = {name: c.on(server) for name, c in self.users.items()}

    def __getattr__(self, name):
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]
        raise AttributeError(name)



def say(who, w, label, content, status=201, **extra):
    return who.ok("POST", "/channels/%s/messages" % w.channels[label],
                  dict({"content": content}, **extra), status)


def build(server):
    """Phase one: one of everything."""
    w = World()
    for name in ("admin", "alice", "bob", "carol", "dave"):
        w.users[name] = register(server, name)
    a, b, c, d = w.alice, w.bob, w.carol, w.dave
    w.channels["general"] = a.ok("POST", "/channels", {"name": "General",
                                                       "description": "all"}, 201)["id"]
    w.channels["secret"] = a.ok("POST", "/channels", {"name": "Secret",
                                                      "is_private": True}, 201)["id"]
    w.channels["renamed"] = b.ok("POST", "/channels", {"name": "Old-Name"}, 201)["id"]
    w.channels["gone"] = c.ok("POST", "/channels", {"name": "Doomed"}, 201)["id"]
    w.channels["dm"] = a.ok("POST", "/channels/direct", {"user_ids": [b.id]}, 201)["id"]
    w.channels["group"] = c.ok("POST", "/channels/direct",
                               {"user_ids": [a.id, b.id]}, 201)["id"]
    g, s = w.channels["general"], w.channels["secret"]
    for who in (b, c, d):
        who.ok("POST", "/channels/%s/join" % g)
    a.ok("PATCH", "/channels/%s/members/%s" % (g, b.id), {"role": "moderator"})
    a.ok("POST", "/channels/%s/members" % s, {"user_id": c.id}, 201)
    a.ok("POST", "/channels/%s/members" % s, {"user_id": d.id}, 201)
    b.ok("PATCH", "/channels/" + w.channels["renamed"], {"name": "New-Name",
                                                         "description": "moved"})

    m1 = say(a, w, "general", "the lantern is lit @bob", mentions=[c.id])
    m2 = say(b, w, "general", "a reply about the lantern", reply_to=m1["id"])
    say(c, w, "general", "reply to the reply", reply_to=m2["id"])
    m4 = say(d, w, "general", "harbor lights, Ünïcödé and Καλημέρα")
    m5 = say(c, w, "general", "this will be edited: draft")
    c.ok("PUT", "/messages/" + m5["id"], {"content": "this was edited: final"})
    m6 = say(d, w, "general", "this will be deleted")
    b.ok("DELETE", "/messages/" + m6["id"], status=204)  # by the moderator
    for who, emoji in ((b, "👍"), (c, "👍"), (a, "🎉"), (d, "🎉")):
        who.ok("POST", "/messages/%s/reactions" % m1["id"], {"emoji": emoji}, 201)
    d.ok("DELETE", "/messages/%s/reactions/%%F0%%9F%%8E%%89" % m1["id"])
    k = say(a, w, "general", "sent once", idempotency_key="phase-1")
    w.keys.append(("alice", "general", "phase-1", k["id"]))
    a.ok("POST", "/channels/%s/ban-by-username/dave" % g)
    say(a, w, "secret", "the secret harbor plan")
    say(c, w, "secret", "secret lantern")
    say(b, w, "dm", "psst alice, lantern")
    say(a, w, "group", "group harbor")
    say(b, w, "renamed", "renamed channel lantern")
    say(c, w, "gone", "lantern in a doomed channel")
    c.ok("DELETE", "/channels/" + w.channels["gone"], status=204)
    b.ok("POST", "/channels/%s/read" % g, {"message_id": m4["id"]})
    c.ok("POST", "/channels/%s/read" % g, {"message_id": m2["id"]})
    a.ok("POST", "/channels/%s/read" % w.channels["dm"],
         {"message_id": a.ok("GET", "/channels/%s/messages" % w.channels["dm"])
          ["messages"][-1]["id"]})
    # Content the records must carry exactly: quotes, backslashes, control
    # characters allowed in text, markup, 4-byte characters at the limit,
    # a 128-byte key, a ZWJ emoji, names and descriptions in other scripts.
    odd = a.ok("POST", "/channels", {"name": "é" * 80,
                                     "description": 'quote " back \\ \u2028 Καλη'}, 201)
    w.channels["odd"] = odd["id"]
    say(a, w, "odd", 'a "quoted" \\ back\\slash\nnew\tline <b>&amp;</b> 😀 \u00e9')
    say(a, w, "odd", "😀" * 4000)
    k = say(a, w, "odd", "long key", idempotency_key="é" * 64)
    w.keys.append(("alice", "odd", "é" * 64, k["id"]))
    b.ok("POST", "/channels/%s/join" % odd["id"])
    b.ok("POST", "/messages/%s/reactions" % k["id"], {"emoji": "👨‍👩‍👧"}, 201)
    w.roots = [m1["id"], m2["id"], m4["id"]]
    return w


def snapshots(data):
    d = data / "snapshots"
    return sorted(os.listdir(d)) if d.exists() else []


def mutate(w, wait_for_snapshot=None):
    """Phase two, between the clean restart and the kill; with
    wait_for_snapshot (the data directory), half of it before a snapshot
    the server takes by itself (every 7 records, looked at each second)
    and half after, in the log's tail."""
    a, b, c, d = w.alice, w.bob, w.carol, w.dave
    g = w.channels["general"]
    had = snapshots(wait_for_snapshot) if wait_for_snapshot else None
    a.ok("POST", "/channels/%s/unban-by-username/dave" % g)
    a.ok("POST", "/channels/%s/ban-by-username/carol" % g)
    d.ok("POST", "/channels/%s/join" % g)
    c.ok("POST", "/channels/%s/leave" % w.channels["secret"], status=204)
    b.ok("PATCH", "/channels/" + w.channels["renamed"], {"is_private": True})
    say(c, w, "group", "carol before the snapshot")
    say(d, w, "general", "dave before the snapshot")
    say(a, w, "secret", "alice before the snapshot")
    if wait_for_snapshot:
        wait_until(lambda: snapshots(wait_for_snapshot) != had,
                   what="a snapshot taken by the server itself (every 7 records)")
    k = say(b, w, "general", "bob once", idempotency_key="phase-2")
    w.keys.append(("bob", "general", "phase-2", k["id"]))
    n = say(d, w, "general", "harbor again, edited soon", reply_to=w.roots[0])
    d.ok("PUT", "/messages/" + n["id"], {"content": "harbor again, edited twice"})
    first = a.ok("GET", "/channels/%s/messages" % g)["messages"][0]
    a.ok("DELETE", "/messages/" + first["id"], status=204)   # the thread root, by its author
    b.ok("POST", "/messages/%s/reactions" % n["id"], {"emoji": "🔥"}, 201)
    b.ok("POST", "/channels/%s/read" % g, {"message_id": n["id"]})
    say(a, w, "dm", "answer in the dm")
    a.ok("POST", "/channels", {"name": "Doomed"}, 201)  # the deleted channel's name is free


def fetch_all_history(who, cid):
    out, path = [], "/channels/%s/messages?limit=100" % cid
    while True:
        page = who.ok("GET", path)
        out = page["messages"] + out
        if not page["has_more"]:
            return out
        path = "/channels/%s/messages?limit=100&before=%s" % (cid, page["next_cursor"])


def seen(r):
    """An answer as compared: the status and the body, or the error code."""
    body = r.json()
    return r.status_code, body["error"]["code"] if r.status_code >= 400 else body


def capture(w):
    """Everything each user sees, as JSON."""
    view = {}
    for name, who in w.users.items():
        listing = who.ok("GET", "/channels?limit=100")
        view[name, "list"] = listing
        for label, cid in w.channels.items():
            r = who.call("GET", "/channels/" + cid)
            view[name, label] = seen(r)
            if r.status_code != 200 or "last_message" not in r.json():
                continue  # unknown, or known to an admin outside it: nothing to read
            view[name, label, "members"] = who.ok("GET", "/channels/%s/members" % cid)
            rb = who.call("GET", "/channels/%s/banned-users" % cid)
            view[name, label, "banned"] = seen(rb)
            hist = fetch_all_history(who, cid)
            view[name, label, "history"] = hist
            for m in hist:
                assert who.ok("GET", "/messages/" + m["id"]) == m
        for root in w.roots:
            r = who.call("GET", "/messages/%s/thread" % root)
            view[name, root, "thread"] = seen(r)
        for q in SEARCHES:
            out = who.ok("GET", "/search/messages?q=" + q)
            view[name, q, "search"] = (
                out["total"],
                [{k: v for k, v in h.items() if k != "score"} for h in out["results"]],
                [h["score"] for h in out["results"]])
    return view


def assert_same(before, after):
    assert before.keys() == after.keys()
    for key in before:
        if key[-1] == "search":
            b, a = before[key], after[key]
            assert a[:2] == b[:2], key
            # Scores carry a recency term (1 / (1 + age in days)): nearly equal.
            assert all(abs(x - y) < 1e-3 for x, y in zip(a[2], b[2])), key
        else:
            assert after[key] == before[key], key


def check_keys(w):
    """Idempotency keys still answer their first message; another user's
    same key is a new message."""
    for name, label, key, mid in w.keys:
        r = say(w.users[name], w, label, "again", status=200, idempotency_key=key)
        assert r["id"] == mid


@pytest.mark.parametrize("policy", [[], ["--snapshot-every-records", "7"]],
                         ids=["log-replay", "snapshot-and-tail"])
def test_chat_state_survives_clean_and_killed_restarts(start_server, tmp_path, policy):
    args = ["--rate-limit", "0"] + policy
    data = tmp_path / "data"
    s1 = start_server(args=args, data_dir=data)
    w = build(s1)
    before = capture(w)
    check_keys(w)
    assert_same(before, capture(w))  # the retries changed nothing

    # Clean stop.
    assert s1.stop() == 0
    s2 = start_server(args=args, data_dir=data)
    w.use(s2)
    assert_same(before, capture(w))
    check_keys(w)

    mutate(w, data if policy else None)
    before = capture(w)
    # SIGKILL: no snapshot, no flush beyond what was acknowledged.
    s2.stop(signal.SIGKILL)
    s3 = start_server(args=args, data_dir=data)
    w.use(s3)
    after = capture(w)
    assert_same(before, after)
    check_keys(w)

    # The id sequence continues after every message ever made, and a key
    # used by alice is new for carol.
    newest = max(m["id"] for k, v in after.items() if k[-1] == "history" for m in v)
    fresh = say(w.bob, w, "group", "after the restarts", idempotency_key="phase-1")
    assert fresh["id"] > newest
    assert say(w.bob, w, "group", "again", status=200, idempotency_key="phase-1") == fresh
    # Names stay taken (case-insensitively) and freed as before.
    assert_error(w.carol.call("POST", "/channels", {"name": "general"}), 409, "CONFLICT")
    assert_error(w.carol.call("POST", "/channels", {"name": "NEW-name"}), 409, "CONFLICT")
    assert w.carol.ok("POST", "/channels", {"name": "Old-Name"}, 201)["name"] == "Old-Name"
    # The direct channels are found again by their sets of users.
    assert w.bob.ok("POST", "/channels/direct", {"user_ids": [w.alice.id]})["id"] == \
        w.channels["dm"]
    assert w.alice.ok("POST", "/channels/direct", {"user_ids": [w.carol.id, w.bob.id]})["id"] \
        == w.channels["group"]
