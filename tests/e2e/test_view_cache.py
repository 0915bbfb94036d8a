"""History and thread pages are put together from cached message views
(src/http/view_cache.c); these tests hold them to the views GET
/messages/{id} renders afresh. Every change a view shows (an edit, a
reaction, a delete, the sender's display name or avatar, an attachment
deleted) must appear in the very next page; so must the last of many edits
racing with readers; a tiny cache and no cache at all must answer the same;
and the cache must really be used (the server's closing log line counts its
hits)."""
import re
import threading

import pytest

from conftest import module_server
from client import accounts
from test_files import new_channel, png, text


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "view-cache")


@pytest.fixture(scope="module")
def u(srv):
    return accounts(srv, "alice", "bob")


def page(who, channel_id, query="limit=100"):
    return who.ok("GET", "/channels/%s/messages?%s" % (channel_id, query))["messages"]


def assert_current(who, messages):
    """Each message of a page equals its view rendered afresh."""
    assert messages
    for m in messages:
        assert m == who.ok("GET", "/messages/" + m["id"])


def by_id(messages, mid):
    return [m for m in messages if m["id"] == mid][0]


def test_every_change_shows_in_the_next_page(srv, u):
    ch = new_channel(u.alice)["id"]
    u.bob.ok("POST", "/channels/%s/join" % ch)
    f = u.alice.uploaded("notes.txt", text())
    m1 = u.alice.ok("POST", "/channels/%s/messages" % ch,
                    {"content": "first", "attachments": [f["id"]]}, 201)["id"]
    m2 = u.bob.ok("POST", "/channels/%s/messages" % ch, {"content": "second"}, 201)["id"]
    m3 = u.alice.ok("POST", "/channels/%s/messages" % ch,
                    {"content": "a reply", "reply_to": m1}, 201)["id"]
    for _ in range(3):  # rendered once, then answered from the cache
        assert_current(u.bob, page(u.bob, ch))

    def step():
        got = page(u.bob, ch)
        assert_current(u.bob, got)
        return got

    u.alice.ok("PUT", "/messages/" + m1, {"content": "first, edited"})
    got = by_id(step(), m1)
    assert got["content"] == "first, edited" and got["is_edited"]
    u.alice.ok("POST", "/messages/%s/reactions" % m2, {"emoji": "👍"}, 201)
    assert [r["emoji"] for r in by_id(step(), m2)["reactions"]] == ["👍"]
    u.alice.ok("DELETE", "/messages/%s/reactions/%s" % (m2, "👍"))
    assert by_id(step(), m2)["reactions"] == []
    u.bob.ok("PUT", "/users/me", {"display_name": "Bob the Builder"})
    got = step()
    assert by_id(got, m2)["sender"]["display_name"] == "Bob the Builder"
    assert by_id(got, m1)["sender"]["display_name"] != "Bob the Builder"
    u.alice.ok("PUT", "/users/me", {"avatar_url": "https://example.com/a.png"})
    got = step()
    assert by_id(got, m1)["sender"]["avatar_url"] == "https://example.com/a.png"
    assert by_id(got, m3)["sender"]["avatar_url"] == "https://example.com/a.png"
    r = u.alice.call("PUT", "/users/me/avatar", files={"file": ("me.png", png(), "image/png")})
    assert r.status_code == 200, r.text
    assert by_id(step(), m1)["sender"]["avatar_url"] == r.json()["avatar_url"]
    assert [a["id"] for a in by_id(step(), m1)["attachments"]] == [f["id"]]
    u.alice.ok("DELETE", "/files/" + f["id"], status=204)
    assert by_id(step(), m1)["attachments"] == []
    u.bob.ok("DELETE", "/messages/" + m2, status=204)
    got = by_id(step(), m2)
    assert got["is_deleted"] and got["content"] is None

    # Thread pages come from the same views.
    thread = u.bob.ok("GET", "/messages/%s/thread" % m1)
    assert [m["id"] for m in thread["messages"]] == [m3] and thread["total"] == 1
    assert thread["thread_id"] == m1
    assert_current(u.bob, thread["messages"])
    u.alice.ok("PUT", "/messages/" + m3, {"content": "a reply, edited"})
    thread = u.bob.ok("GET", "/messages/%s/thread" % m1)
    assert thread["messages"][0]["content"] == "a reply, edited"
    assert_current(u.bob, thread["messages"])


def test_the_last_of_racing_edits_is_what_pages_show(srv, u):
    ch = new_channel(u.alice)["id"]
    ids = [u.alice.ok("POST", "/channels/%s/messages" % ch, {"content": "m%d" % i}, 201)["id"]
           for i in range(20)]
    stop = threading.Event()
    errors = []

    def read():
        try:
            while not stop.is_set():
                page(u.alice, ch, "limit=50")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for n in range(40):
            u.alice.ok("PUT", "/messages/" + ids[n % 5], {"content": "edit %d" % n})
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors
    got = page(u.alice, ch, "limit=50")
    assert_current(u.alice, got)
    for i in range(5):
        assert by_id(got, ids[i])["content"] == "edit %d" % (35 + i)


@pytest.mark.parametrize("budget", ["0", "65536"])
def test_no_cache_and_a_tiny_cache_answer_the_same(start_server, budget):
    s = start_server(args=["--rate-limit", "0", "--view-cache-bytes", budget])
    people = accounts(s, "carol", "dave")
    ch = new_channel(people.carol)["id"]
    ids = []
    for i in range(150):
        who = people.carol if i % 3 else people.dave
        ids.append(who.ok("POST", "/channels/%s/messages" % ch,
                          {"content": "message %d %s" % (i, "é" * (i % 7))}, 201)["id"])
    for i in range(0, 150, 10):
        people.carol.ok("POST", "/messages/%s/reactions" % ids[i], {"emoji": "🎉"}, 201)
    seen = []
    for _ in range(2):
        cursor, seen = None, []
        while True:
            q = "limit=40" + ("&before=" + cursor if cursor else "")
            r = people.dave.ok("GET", "/channels/%s/messages?%s" % (ch, q))
            assert_current(people.dave, r["messages"])
            seen = r["messages"] + seen
            if not r["has_more"]:
                break
            cursor = r["next_cursor"]
    assert [m["id"] for m in seen] == ids
    assert s.stop() == 0
    hits = int(re.search(r"message view cache: (\d+) hits", s.log()).group(1))
    if budget == "0":
        assert hits == 0
    else:
        assert hits > 0  # the second pass found views of the first


def test_the_cache_serves_repeated_pages(start_server):
    s = start_server(args=["--rate-limit", "0"])
    people = accounts(s, "erin")
    ch = new_channel(people.erin)["id"]
    for i in range(30):
        people.erin.ok("POST", "/channels/%s/messages" % ch, {"content": "hello %d" % i}, 201)
    for _ in range(5):
        page(people.erin, ch)
    assert s.stop() == 0
    m = re.search(r"message view cache: (\d+) hits, (\d+) misses, (\d+) views", s.log())
    hits, misses, views = map(int, m.groups())
    assert misses == 30 and hits == 4 * 30 and views == 30
