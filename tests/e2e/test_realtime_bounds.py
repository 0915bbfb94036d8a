"""What the real-time service can be made to hold, and what a resume may
replay (issue 15, items 2 and 7; docs/realtime.md, docs/api.md "Reactions").

- Reactions: at most 50 distinct emoji on one message and 20 per user per
  message (409 CONFLICT, details.limit); a reaction event carries the change
  and that emoji's new count, not the message's whole list; RSS stays small
  while ten users fill a message to the caps.
- Resume: a replay shows messages as they are now (an edited one's current
  text, nothing of a deleted one), and a member who joined a private channel
  later gets nothing from before they joined. An admin outside a private
  channel gets none of its events."""
import datetime
import json
import re
import time

import pytest
import requests

from conftest import SANITIZED, module_server
from client import accounts, wait_until
from realtime_client import Live, Stream
from test_files import new_channel
from test_realtime_load import rss_kib

EMOJI_MAX, PER_USER_MAX = 50, 20


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "rtbounds", ("--rate-limit", "0",
                                                            "--rate-limit-messages", "0"))


@pytest.fixture(scope="module")
def root(srv):
    """The server's admin: its first account."""
    return accounts(srv, "rbroot").rbroot


def react(who, mid, emoji):
    return who.call("POST", "/messages/%s/reactions" % mid, json={"emoji": emoji})


def test_reaction_caps_refuse_more_and_events_carry_only_the_change(srv, root):
    names = ["rb%d" % i for i in range(10)]
    users = accounts(srv, *names)
    people = [getattr(users, n) for n in names]
    ch = new_channel(people[0])
    for p in people[1:]:
        p.ok("POST", "/channels/%s/join" % ch["id"])
    m = people[0].ok("POST", "/channels/%s/messages" % ch["id"], {"content": "react"}, 201)
    mid = m["id"]
    live = Live(srv, people[0].token)
    before = rss_kib(srv.pid())
    try:
        # Each user adds 20 long emoji of its own until the message has 50.
        added = 0
        refused = {}
        for i, p in enumerate(people):
            for k in range(PER_USER_MAX + 2):
                r = react(p, mid, "e%02d-%02d-%s" % (i, k, "x" * 24))
                if r.status_code == 201:
                    added += 1
                else:
                    assert r.status_code == 409, r.text
                    err = r.json()["error"]
                    assert err["code"] == "CONFLICT"
                    refused[err["details"]["limit"]] = err["details"]["max"]
        assert added == EMOJI_MAX
        assert refused == {"reactions_per_user": PER_USER_MAX, "emoji_per_message": EMOJI_MAX}
        now = people[0].ok("GET", "/messages/" + mid)
        assert len(now["reactions"]) == EMOJI_MAX
        # An emoji already there may still be joined by others (no new emoji).
        existing = now["reactions"][-1]["emoji"]
        r = react(people[9], mid, existing)
        assert r.status_code == 201, r.text
        # A user at its own cap is refused even on an existing emoji.
        r = react(people[0], mid, existing)
        assert r.status_code == 409 and \
            r.json()["error"]["details"]["limit"] == "reactions_per_user"
        # Removing one makes room again.
        mine = [x["emoji"] for x in now["reactions"] if people[0].id in x["users"]]
        people[0].ok("DELETE", "/messages/%s/reactions/%s" % (mid, mine[0]))
        assert react(people[0], mid, existing).status_code == 201
        # The events: the change and the count, not the list.
        f = live.wait_type("reaction.added", emoji=existing, user_id=people[0].id)
        assert set(f["data"]) == {"message_id", "channel_id", "user_id", "emoji", "count"}
        assert f["data"]["count"] == 3 and f["data"]["message_id"] == mid  # its adder, rb9, rb0
        f = live.wait_type("reaction.removed", emoji=mine[0])
        assert f["data"]["count"] == 0 and "reactions" not in f["data"]
        assert len(json.dumps(f)) < 400
    finally:
        live.close()
    grown_mib = (rss_kib(srv.pid()) - before) / 1024
    if not SANITIZED:  # ASan's allocator keeps freed memory in quarantine
        assert grown_mib < 64, grown_mib
    # The emoji removed had only its adder: one place is free, and a new emoji fits.
    assert len(people[1].ok("GET", "/messages/" + mid)["reactions"]) == EMOJI_MAX - 1
    assert react(people[1], mid, "fresh").status_code == 409  # people[1] is at its own cap
    assert react(people[9], mid, "fresh").status_code == 201
    assert react(root, mid, "fresher").status_code == 409


def test_resume_shows_messages_as_they_are_now(srv, root):
    users = accounts(srv, "rsAuthor", "rsReader")
    ch = new_channel(users.rsAuthor)
    users.rsReader.ok("POST", "/channels/%s/join" % ch["id"])
    live = Live(srv, users.rsReader.token)
    start = live.ready["seq"]
    live.close()
    path = "/channels/%s/messages" % ch["id"]
    edited = users.rsAuthor.ok("POST", path, {"content": "original words"}, 201)
    gone = users.rsAuthor.ok("POST", path, {"content": "deleted words"}, 201)
    kept = users.rsAuthor.ok("POST", path, {"content": "plain words"}, 201)
    users.rsAuthor.ok("PUT", "/messages/" + edited["id"], {"content": "current words"})
    users.rsAuthor.ok("DELETE", "/messages/" + gone["id"], status=204)
    marker = users.rsAuthor.ok("POST", path, {"content": "the end"}, 201)

    # WebSocket resume
    live = Live(srv, users.rsReader.token, since=start)
    try:
        live.wait_type("message.created", id=marker["id"])
        frames = live.kept
    finally:
        live.close()
    # Event-stream resume
    st = Stream(srv, users.rsReader.token, last_event_id=start)
    sse = []
    try:
        while True:
            e, i, d = st.next_event()
            if e == "ping":
                continue
            sse.append({"type": e, "seq": i, "data": d})
            if e == "message.created" and d["id"] == marker["id"]:
                break
    finally:
        st.close()
    for got in (frames, sse):
        text = json.dumps(got)
        assert "original words" not in text and "deleted words" not in text
        created = {f["data"]["id"]: f["data"] for f in got if f["type"] == "message.created"}
        assert gone["id"] not in created
        assert created[edited["id"]]["content"] == "current words"
        assert created[kept["id"]]["content"] == "plain words"
        updated = [f["data"] for f in got if f["type"] == "message.updated"]
        assert [u["content"] for u in updated] == ["current words"]
        assert [f["data"]["id"] for f in got if f["type"] == "message.deleted"] == [gone["id"]]
        seqs = [f["seq"] for f in got if f["seq"] is not None and f["type"] != "ready"]
        assert seqs == sorted(seqs)


def test_a_later_member_gets_nothing_from_before_it_joined(srv, root):
    users = accounts(srv, "ljOwner", "ljLate")
    ch = new_channel(users.ljOwner, is_private=True)
    live = Live(srv, users.ljLate.token)
    start = live.ready["seq"]
    live.close()
    path = "/channels/%s/messages" % ch["id"]
    before = users.ljOwner.ok("POST", path, {"content": "before you came"}, 201)
    # Times are milliseconds and an event of the join's own millisecond counts
    # as after it (docs/realtime.md): the join must fall in a later one. The
    # server's clock is this machine's, so wait for it to pass the post's.
    posted = datetime.datetime.strptime(before["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    wait_until(lambda: time.time() > posted + 0.002, what="the clock to pass the post")
    users.ljOwner.ok("POST", "/channels/%s/members" % ch["id"], {"user_id": users.ljLate.id}, 201)
    after = users.ljOwner.ok("POST", path, {"content": "after you came"}, 201)
    live = Live(srv, users.ljLate.token, since=start)
    try:
        live.wait_type("message.created", id=after["id"])
        text = json.dumps(live.kept)
        assert "before you came" not in text
    finally:
        live.close()
    # It may read the history over HTTP now, as a member: only delivery is bounded.
    assert users.ljLate.ok("GET", path)["messages"]


def test_an_admin_outside_a_private_channel_gets_none_of_its_events(srv, root):
    users = accounts(srv, "adOwner")
    ch = new_channel(users.adOwner, is_private=True)
    pub = new_channel(users.adOwner)
    live = Live(srv, root.token)
    try:
        # Subscribing to it is refused like for any non-member.
        live.send({"type": "subscribe", "channels": [ch["id"]]})
        err = live.wait_type("error")
        assert err["data"]["code"] == "RESOURCE_NOT_FOUND"
        users.adOwner.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "inner"}, 201)
        root.ok("POST", "/channels/%s/join" % pub["id"])
        m = users.adOwner.ok("POST", "/channels/%s/messages" % pub["id"], {"content": "outer"},
                             201)
        live.wait_type("message.created", id=m["id"])
        assert "inner" not in json.dumps(live.kept)
    finally:
        live.close()
    # It may still delete the channel.
    root.ok("DELETE", "/channels/" + ch["id"], status=204)


def test_the_event_ring_is_bounded_in_bytes(start_server):
    """64 KiB of kept events: 40 posts of 4,000 characters push the oldest
    out (a resume from before them is told to reload), while a resume within
    what is kept still replays, and the admin dashboard shows the bound."""
    server = start_server(["--rate-limit", "0", "--event-ring-bytes", "65536"])
    users = accounts(server, "brRoot", "brPoster")
    ch = new_channel(users.brPoster)
    watch = Live(server, users.brPoster.token)
    start = watch.ready["seq"]
    path = "/channels/%s/messages" % ch["id"]
    seqs = []
    try:
        for i in range(40):
            m = users.brPoster.ok("POST", path, {"content": "%02d" % i + "w" * 3998}, 201)
            seqs.append(watch.wait_type("message.created", id=m["id"])["seq"])
    finally:
        watch.close()
    live = Live(server, users.brPoster.token, since=start)
    try:
        assert live.wait_type("error")["data"]["code"] == "RESYNC_REQUIRED"
    finally:
        live.close()
    ring = users.brRoot.ok("GET", "/admin/system/status")["event_ring"]
    assert ring["max_bytes"] == 65536 and 0 < ring["bytes"] <= 65536, ring
    assert 5 <= ring["events"] < 40, ring
    # /metrics counts what happened: the events published, those dropped
    # early for the byte bound, the resume told to reload
    r = requests.get(server.url("/metrics"), timeout=30,
                     headers={"Authorization": "Bearer " + users.brRoot.token})
    m = {k: float(v) for k, v in re.findall(r"^(parley_\w+_total) (\S+)$", r.text, re.M)}
    assert m["parley_events_published_total"] >= 40
    assert m["parley_events_dropped_total"] >= 40 - ring["events"]
    assert m["parley_realtime_resyncs_total"] >= 1
    # The newest events are still there to resume from.
    live = Live(server, users.brPoster.token, since=seqs[-4])
    try:
        got = [live.wait_type("message.created")["seq"] for _ in range(3)]
        assert got == seqs[-3:]
        assert not [f for f in live.kept if f["type"] == "error"]
    finally:
        live.close()
