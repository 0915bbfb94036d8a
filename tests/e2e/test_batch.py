"""POST /api/v1/batch end to end (docs/api.md, "Batch"; Fechatter 003's
"Batch Operations"): up to 50 operations run in order as the caller, each
answered with its own status and body; a failing operation neither stops the
batch nor is hidden; every operation meets the checks it would meet on its
own (permissions, its rate-limit category's bucket); a bad batch (51
operations, a bad method, a path outside /api/v1 or with dot segments, a
body that is no object, an upload, a stream, a real-time upgrade, a batch
inside a batch) is refused whole with 422 naming operations[i].field and
changes nothing; what a batch wrote survives a SIGKILL."""
import signal

import pytest
import requests

from client import API, register
from conftest import assert_error
from test_files import new_channel

BATCH = "/batch"


def messages(who, channel):
    return who.ok("GET", "/channels/%s/messages?limit=100" % channel["id"])["messages"]


@pytest.fixture
def trio(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    admin, alice, bob = (register(server, n) for n in ("batchadmin", "batchalice", "batchbob"))
    return server, admin, alice, bob


def test_fechatter_example_posts_in_order_and_survives_a_kill(trio):
    server, admin, alice, bob = trio
    c = new_channel(alice)
    r = alice.ok("POST", BATCH, {"operations": [
        {"method": "POST", "path": "/api/v1/messages",
         "body": {"channel_id": c["id"], "content": "Message 1"}},
        {"method": "POST", "path": "/api/v1/messages",
         "body": {"channel_id": c["id"], "content": "Message 2"}},
        {"method": "GET", "path": "/api/v1/channels/%s/messages?limit=1" % c["id"]},
    ]})
    assert [x["status"] for x in r["results"]] == [201, 201, 200]
    assert r["succeeded"] == 3 and r["failed"] == 0 and r["skipped"] == 0
    first, second = r["results"][0]["body"], r["results"][1]["body"]
    assert first["content"] == "Message 1" and first["user_id"] == alice.id
    # The query string is the operation's: one message, the newest.
    assert [m["id"] for m in r["results"][2]["body"]["messages"]] == [second["id"]]
    assert [m["content"] for m in messages(alice, c)][-2:] == ["Message 1", "Message 2"]
    server.stop(sig=signal.SIGKILL)
    server.start()
    alice = alice.on(server)
    assert [m["content"] for m in messages(alice, c)][-2:] == ["Message 1", "Message 2"]


def test_each_operation_runs_as_the_caller_and_failures_do_not_stop_it(trio):
    server, admin, alice, bob = trio
    private = new_channel(bob, is_private=True)
    mine = new_channel(alice)
    r = alice.ok("POST", BATCH, {"operations": [
        {"method": "POST", "path": "/api/v1/messages",
         "body": {"channel_id": private["id"], "content": "sneak"}},
        {"method": "GET", "path": "/api/v1/admin/users"},
        {"method": "DELETE", "path": "/api/v1/channels/" + private["id"]},
        {"method": "GET", "path": "/api/v1/nothing/here"},
        {"method": "POST", "path": "/api/v1/messages", "body": {"channel_id": mine["id"]}},
        {"method": "POST", "path": "/api/v1/messages",
         "body": {"channel_id": mine["id"], "content": "after the failures"}},
    ]})
    st = [x["status"] for x in r["results"]]
    assert st[0] in (403, 404) and st[1] == 403 and st[2] in (403, 404) and st[3] == 404
    assert st[4] == 422 and st[5] == 201
    assert r["results"][1]["body"]["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert r["results"][4]["body"]["error"]["details"]["field"] == "content"
    assert r["succeeded"] == 1 and r["failed"] == 5
    assert all(m["content"] != "sneak" for m in messages(bob, private))
    assert bob.ok("GET", "/channels/" + private["id"])["id"] == private["id"]
    # The admin may batch admin routes, and what it does is audited as on its own.
    r = admin.ok("POST", BATCH, {"operations": [
        {"method": "GET", "path": "/api/v1/admin/users"},
        {"method": "DELETE", "path": "/api/v1/channels/" + private["id"]}]})
    assert [x["status"] for x in r["results"]] == [200, 204]
    audit = admin.ok("GET", "/admin/audit-log?action=channel.delete&target=%s" % private["id"])
    assert [e["actor"]["id"] for e in audit["entries"]] == [admin.id]
    assert_error(bob.get("/channels/" + private["id"]), 404, "RESOURCE_NOT_FOUND")
    # Without credentials there is no batch at all.
    assert requests.post(server.url(API + BATCH), json={"operations": []}).status_code == 401


def bad(who, ops, field):
    err = assert_error(who.call("POST", BATCH, json=ops), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field, err
    return err


def test_a_bad_batch_is_refused_whole_and_changes_nothing(trio):
    server, admin, alice, bob = trio
    c = new_channel(alice)
    before = messages(alice, c)
    post = {"method": "POST", "path": "/api/v1/messages",
            "body": {"channel_id": c["id"], "content": "must not land"}}
    bad(alice, {"operations": [post] * 51}, "operations")
    bad(alice, {"operations": []}, "operations")
    bad(alice, {"operations": {"0": post}}, "operations")
    bad(alice, {"operations": [post], "atomic": True}, "atomic")
    bad(alice, {"operations": [post, "GET /api/v1/users/me"]}, "operations[1]")
    bad(alice, {"operations": [post, dict(post, extra=1)]}, "operations[1].extra")
    for method in ("HEAD", "OPTIONS", "CONNECT", "get", "", 7, None):
        bad(alice, {"operations": [post, dict(post, method=method)]}, "operations[1].method")
    for path in ("/api/v1/../api/v1/messages", "/api/v1/./messages", "/api/v1/files/%2e%2e/x",
                 "/api/v1/files/%2E%2E/x", "/api/v1/files%2f..%2fadmin", "/api/v1//messages",
                 "/api/health", "/metrics", "http://evil/api/v1/messages", "api/v1/messages",
                 "/api/v1/messages\\..", "/api/v1/mes sages", "/api/v1/messages#x",
                 "/api/v1/" + "a" * 2100, 5, None):
        bad(alice, {"operations": [post, post, post, dict(post, path=path)]},
            "operations[3].path")
    for body in ([1, 2], "text", 3, True):
        bad(alice, {"operations": [post, post, post, dict(post, body=body)]},
            "operations[3].body")
    # Routes that cannot be batched: a batch, an upload, a download, the
    # real-time upgrades, public routes.
    f = alice.uploaded("a.txt", b"hello")
    for method, path in (("POST", "/api/v1/batch"), ("POST", "/api/v1/files"),
                         ("POST", "/api/v1/files/upload"),
                         ("GET", "/api/v1/files/%s/download" % f["id"]),
                         ("GET", "/api/v1/ws"), ("GET", "/api/v1/events"),
                         ("POST", "/api/v1/auth/login"), ("GET", "/api/v1/admin/backup")):
        bad(alice, {"operations": [post, {"method": method, "path": path}]},
            "operations[1].path")
    assert messages(alice, c) == before


def test_each_operation_takes_from_its_own_rate_limit_bucket(start_server, tmp_path):
    # A messages limit of 2 a minute: a token comes back each 30 s, far more
    # than the few operations below take.
    server = start_server(data_dir=tmp_path / "d", rate_limits=True,
                          args=("--rate-limit-messages", "2", "--rate-limit-auth", "0"))
    alice = register(server, "batchlimited")
    c = new_channel(alice)
    post = {"method": "POST", "path": "/api/v1/messages",
            "body": {"channel_id": c["id"], "content": "x"}}
    resp = alice.call("POST", BATCH, json={"operations": [
        post, post, post, {"method": "GET", "path": "/api/v1/users/me"}]})
    assert resp.status_code == 200, resp.text
    # The batch request itself is counted (default) and says so, window included (PlexiChat).
    assert resp.headers["X-RateLimit-Window"] == "60" and "X-RateLimit-Limit" in resp.headers
    r = resp.json()
    st = [x["status"] for x in r["results"]]
    assert st == [201, 201, 429, 200], st
    err = r["results"][2]["body"]["error"]
    assert err["code"] == "RATE_LIMIT_EXCEEDED" and err["details"]["category"] == "messages"
    # The bucket the batch spent is the caller's own: a direct post is refused too.
    assert_error(alice.post("/channels/%s/messages" % c["id"], {"content": "y"}), 429,
                 "RATE_LIMIT_EXCEEDED")


def test_the_answers_held_are_bounded_and_the_rest_say_they_were_not_run(trio):
    server, admin, alice, bob = trio
    c = new_channel(alice)
    for i in range(100):  # ~400 kB a page of 100
        alice.ok("POST", "/channels/%s/messages" % c["id"], {"content": "%03d" % i + "x" * 3990},
                 201)
    page = {"method": "GET", "path": "/api/v1/channels/%s/messages?limit=100" % c["id"]}
    r = alice.ok("POST", BATCH, {"operations": [page] * 50})
    st = [x["status"] for x in r["results"]]
    ran = st.index(None)
    # 8 MiB of answers hold some 20 pages: the rest are not run, and say so.
    assert 10 <= ran < 50 and st[:ran] == [200] * ran and st[ran:] == [None] * (50 - ran)
    assert all(x["body"] is None and x["skipped"] for x in r["results"][ran:])
    assert r["succeeded"] == ran and r["skipped"] == 50 - ran and r["failed"] == 0
