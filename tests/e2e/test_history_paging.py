"""Message history as the seed documents' clients page it (issue 17;
docs/api.md, "Messages"):

- Fechatter's names: `chat_id`, `before_id`, `after_id` are aliases of
  `channel_id`, `before`, `after` on GET /messages, GET /channels/{id}/messages
  and (chat_id) POST /messages; both names with different values: 422 naming
  the alias. Before this, before_id was ignored and the newest page answered.
- Chat API's offset paging: `skip=N&limit=M` is the page of the M messages
  just older than the N newest, compared here with cursor pages over a
  250-message channel, with deletions (deleted messages keep their place and
  count) and across a SIGKILL restart and a clean one.
- Chat API's `recipient_id`: the caller's direct conversation with a user.
- PlexiChat's `pagination: {has_more, next_cursor, total_count}` on every
  history answer, beside the flat has_more/next_cursor.

Every refused request is checked for its code and field and for having
changed nothing."""
import signal

import pytest

from conftest import assert_error, module_server
from client import register

N = 250


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "history")


_n = [0]


def users(server, *names):
    _n[0] += 1
    return [register(server, "%s%d" % (name, _n[0])) for name in names]


def channel(who):
    _n[0] += 1
    return who.ok("POST", "/channels", {"name": "hist-%d" % _n[0]}, 201)


def fill(who, ch, count):
    return [who.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "m%d" % i}, 201)["id"]
            for i in range(count)]


def page(who, path="/messages", **params):
    r = who.get(path, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    # PlexiChat's object repeats the flat fields, on every history answer.
    assert body["pagination"]["has_more"] == body["has_more"], body["pagination"]
    assert body["pagination"]["next_cursor"] == body["next_cursor"], body["pagination"]
    assert isinstance(body["pagination"]["total_count"], int)
    return body


def ids(body):
    return [m["id"] for m in body["messages"]]


def cursor_history(who, ch, limit):
    """The whole history by before-cursor pages, newest page first."""
    pages, params = [], {"channel_id": ch["id"], "limit": limit}
    while True:
        body = page(who, **params)
        pages.append(ids(body))
        if not body["has_more"]:
            return pages
        params["before"] = body["next_cursor"]


def refused(who, field, path="/messages", status=422, code="VALIDATION_ERROR", **params):
    err = assert_error(who.get(path, **params), status, code)
    if field:
        assert err["details"]["field"] == field, err
    return err


# ---- aliases ---------------------------------------------------------------------


def test_before_id_after_id_chat_id_are_aliases(srv):
    alice, = users(srv, "alias")
    ch = channel(alice)
    made = fill(alice, ch, 30)
    cut = made[9]
    want_before = made[:9][-5:]
    want_after = made[10:15]
    for path, chan in (("/messages", {"chat_id": ch["id"]}),
                       ("/messages", {"channel_id": ch["id"]}),
                       ("/channels/%s/messages" % ch["id"], {})):
        body = page(alice, path, limit=5, before_id=cut, **chan)
        assert ids(body) == want_before  # not the newest page
        assert body["has_more"] and body["next_cursor"] == made[4]
        assert body["pagination"]["total_count"] == 30
        assert ids(page(alice, path, limit=5, after_id=cut, **chan)) == want_after
        # The same value under both names is one parameter.
        assert ids(page(alice, path, limit=5, before=cut, before_id=cut, **chan)) == want_before
    body = page(alice, limit=5, channel_id=ch["id"], chat_id=ch["id"])
    assert ids(body) == made[-5:]


def test_alias_conflicts_and_bad_cursors_are_refused(srv):
    alice, = users(srv, "aliasbad")
    ch, other = channel(alice), channel(alice)
    made = fill(alice, ch, 6)
    theirs = fill(alice, other, 1)[0]
    base = {"channel_id": ch["id"]}
    refused(alice, "before_id", before=made[2], before_id=made[3], **base)
    refused(alice, "after_id", after=made[2], after_id=made[3], **base)
    refused(alice, "chat_id", channel_id=ch["id"], chat_id=other["id"])
    refused(alice, "before_id", before_id=made[2], after_id=made[1], **base)
    refused(alice, "before", before=made[2], after_id=made[1], **base)
    # A cursor that is no message of the channel: named as the caller sent it.
    refused(alice, "before_id", before_id=theirs, **base)
    refused(alice, "before", before=theirs, **base)
    refused(alice, "after_id", after_id="msg_9999999999999999", **base)
    refused(alice, "before_id", "/channels/%s/messages" % ch["id"], before=made[1],
            before_id=made[2])
    refused(alice, "channel_id")
    refused(alice, None, status=404, code="RESOURCE_NOT_FOUND", chat_id="ch_nope")


def test_post_messages_takes_chat_id(srv):
    alice, = users(srv, "postalias")
    ch, other = channel(alice), channel(alice)
    m = alice.ok("POST", "/messages", {"chat_id": ch["id"], "content": "by chat_id"}, 201)
    assert m["channel_id"] == ch["id"]
    m2 = alice.ok("POST", "/messages",
                  {"chat_id": ch["id"], "channel_id": ch["id"], "content": "both"}, 201)
    assert m2["channel_id"] == ch["id"]
    for body, field in (({"chat_id": other["id"], "channel_id": ch["id"], "content": "x"},
                         "chat_id"),
                        ({"chat_id": 1, "content": "x"}, "chat_id"),
                        ({"chat_id": "", "content": "x"}, "chat_id"),
                        ({"content": "x"}, "channel_id")):
        err = assert_error(alice.post("/messages", body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, (body, err)
    assert ids(page(alice, channel_id=ch["id"])) == [m["id"], m2["id"]]
    assert ids(page(alice, channel_id=other["id"])) == []
    r = alice.post("/messages", {"chat_id": "ch_nope", "content": "x"})
    assert_error(r, 404, "RESOURCE_NOT_FOUND")


# ---- offset paging ----------------------------------------------------------------


def skip_page(who, ch, skip, limit):
    return page(who, channel_id=ch["id"], skip=skip, limit=limit)


def check_skip_pages(who, ch, made):
    """skip pages match the cursor pages and the list of ids made."""
    n = len(made)
    cursor = cursor_history(who, ch, 25)
    for k, want in enumerate(cursor):
        body = skip_page(who, ch, 25 * k, 25)
        assert ids(body) == want, k
        assert body["has_more"] == (k + 1 < len(cursor))
        assert body["pagination"]["total_count"] == n
    for skip, limit in ((0, 50), (1, 1), (7, 13), (240, 25), (249, 1), (249, 100), (0, 100)):
        body = skip_page(who, ch, skip, limit)
        want = made[max(0, n - skip - limit):n - skip]
        assert ids(body) == want, (skip, limit)
        assert body["has_more"] == (n - skip - limit > 0), (skip, limit)
        assert body["next_cursor"] == (want[0] if body["has_more"] else None)
    for skip in (n, n + 1, 10 ** 6, 10 ** 15 - 1):
        body = skip_page(who, ch, skip, 10)
        assert body["messages"] == [] and not body["has_more"], skip
        assert body["next_cursor"] is None and body["pagination"]["total_count"] == n
    # The cursor a skip page gives continues where it ends.
    body = skip_page(who, ch, 30, 20)
    nxt = page(who, channel_id=ch["id"], before=body["next_cursor"], limit=20)
    assert ids(nxt) == made[n - 70:n - 50]


def test_skip_pages_match_cursor_pages_across_deletes_and_a_kill(start_server, tmp_path):
    data = tmp_path / "data"
    s1 = start_server(data_dir=data)
    alice, = users(s1, "skip")
    ch = channel(alice)
    made = fill(alice, ch, N)
    check_skip_pages(alice, ch, made)
    # Deleted messages keep their place: the same pages, the same total.
    gone = [made[0], made[100], made[200], made[248], made[249]]
    for mid in gone:
        assert alice.delete("/messages/%s" % mid).status_code == 204
    check_skip_pages(alice, ch, made)
    newest = skip_page(alice, ch, 0, 3)["messages"]
    assert [m["is_deleted"] for m in newest] == [False, True, True]
    # Durable: the same after SIGKILL and recovery from the log.
    before = [ids(skip_page(alice, ch, k, 40)) for k in range(0, N + 40, 40)]
    s1.stop(signal.SIGKILL)
    s2 = start_server(data_dir=data)
    alice = alice.on(s2)
    assert [ids(skip_page(alice, ch, k, 40)) for k in range(0, N + 40, 40)] == before
    check_skip_pages(alice, ch, made)
    assert skip_page(alice, ch, 0, 1)["pagination"]["total_count"] == N
    # And after a clean stop, from the snapshot it writes.
    assert s2.stop() == 0
    s3 = start_server(data_dir=data)
    alice = alice.on(s3)
    assert [ids(skip_page(alice, ch, k, 40)) for k in range(0, N + 40, 40)] == before
    assert skip_page(alice, ch, 0, 1)["pagination"]["total_count"] == N


def test_bad_skip_is_refused(srv):
    alice, = users(srv, "skipbad")
    ch = channel(alice)
    made = fill(alice, ch, 3)
    base = {"channel_id": ch["id"]}
    for bad in ("-1", "abc", "1.5", "", " 1", "+1", "0x10", "1e3", "9" * 16):
        refused(alice, "skip", skip=bad, **base)
    refused(alice, "skip", skip=0, before=made[2], **base)
    refused(alice, "skip", skip=0, after_id=made[0], **base)
    refused(alice, "skip", "/channels/%s/messages" % ch["id"], skip=1, before_id=made[1])
    refused(alice, "limit", skip=0, limit=0, **base)
    refused(alice, "limit", skip=0, limit=101, **base)
    # The path form pages the same way.
    body = page(alice, "/channels/%s/messages" % ch["id"], skip=1, limit=1)
    assert ids(body) == [made[1]] and body["has_more"]


# ---- recipient_id -----------------------------------------------------------------


def test_recipient_id_reads_the_direct_conversation(srv):
    alice, bob, carol = users(srv, "ra", "rb", "rc")
    # No conversation yet: an empty page, as for a new chat.
    body = page(alice, recipient_id=bob.id)
    assert body["messages"] == [] and body["channel_id"] is None
    assert body["pagination"] == {"has_more": False, "next_cursor": None, "total_count": 0}
    assert page(alice, recipient_id=bob.id, skip=5)["messages"] == []
    dm = alice.ok("POST", "/channels/direct", {"user_ids": [bob.id]}, 201)
    group = alice.ok("POST", "/channels/direct", {"user_ids": [bob.id, carol.id]}, 201)
    made = fill(alice, dm, 3) + fill(bob, dm, 2)
    fill(alice, group, 2)
    for who, other in ((alice, bob), (bob, alice)):
        body = page(who, recipient_id=other.id)
        assert ids(body) == made and body["channel_id"] == dm["id"]
        assert body["pagination"]["total_count"] == 5
        assert ids(page(who, recipient_id=other.id, skip=1, limit=2)) == made[2:4]
        assert ids(page(who, recipient_id=other.id, before_id=made[2])) == made[:2]
    # Carol's conversation with alice is not alice's with bob (nor the group).
    body = page(carol, recipient_id=alice.id)
    assert body["messages"] == [] and body["channel_id"] is None
    # Refusals.
    refused(alice, None, status=404, code="RESOURCE_NOT_FOUND", recipient_id="usr_nope")
    refused(alice, None, status=404, code="RESOURCE_NOT_FOUND", recipient_id="x" * 200)
    refused(alice, "recipient_id", recipient_id=alice.id)
    refused(alice, "recipient_id", recipient_id=bob.id, channel_id=dm["id"])
    refused(alice, "recipient_id", recipient_id=bob.id, chat_id=dm["id"])
    refused(carol, "before", recipient_id=alice.id, before=made[0])
    refused(alice, "before", recipient_id=bob.id, before=made[0], after=made[1])
    refused(alice, "skip", recipient_id=bob.id, skip=-1)
