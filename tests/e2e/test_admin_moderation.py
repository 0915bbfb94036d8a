"""Server-wide mutes and reports of messages end to end (docs/admin.md
"Mutes" and "Reports"): a muted account reads and receives live events but
every write that puts content before others answers 403 ACCOUNT_MUTED with
details.until (HTTP, WebSocket send_message and typing_start); a timed mute
ends by itself; reports are filed by readers, listed by status and resolved
once with each action doing what it says (the message deleted for readers,
the author banned or muted); bad input and non-admins are refused with
nothing changed; all of it survives a clean restart and a SIGKILL."""
import time

import pytest
import requests

from client import API, register, rfc3339, wait_past, wait_until
from conftest import assert_error, module_server
from realtime_client import Live


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "admin-moderation")


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "root", display_name="Root")
    assert "admin" in admin.user["roles"]
    return admin


def admin_view(root, user_id):
    return root.ok("GET", "/admin/users/" + user_id)


def channel(who, name, **fields):
    return who.ok("POST", "/channels", dict({"name": name}, **fields), 201)


def post(who, ch, content):
    return who.ok("POST", "/channels/%s/messages" % ch["id"], {"content": content}, 201)


def muted(r, until=None):
    """r is 403 ACCOUNT_MUTED naming the mute's end."""
    assert_error(r, 403, "ACCOUNT_MUTED")
    assert r.json()["error"]["details"] == {"until": until}, r.text


def content_writes(who, ch, own_channel, msg, other):
    """Every write that puts content before others, as (label, response)."""
    return [
        ("post in channel", who.post("/channels/%s/messages" % ch["id"], {"content": "hi"})),
        ("post", who.post("/messages", {"channel_id": ch["id"], "content": "hi"})),
        ("edit", who.put("/messages/" + msg["id"], {"content": "edited"})),
        ("react", who.post("/messages/%s/reactions" % msg["id"], {"emoji": "+1"})),
        ("upload", who.upload("m.txt", b"muted bytes", "text/plain")),
        ("upload (alias)", who.upload("m.txt", b"muted bytes", "text/plain",
                                      path="/files/upload")),
        ("big upload", who.upload("big.bin", b"\0" * (3 << 20))),  # refused unread
        ("create channel", who.post("/channels", {"name": "muted-new-room"})),
        ("direct", who.post("/channels/direct", {"user_ids": [other.id]})),
        ("rename channel", who.patch("/channels/" + own_channel["id"], {"name": "renamed"})),
    ]


def scene(srv, tag, content):
    """An author, a reader, the author's public channel and a message in it."""
    author = register(srv, tag + "_author")
    reader = register(srv, tag + "_reader")
    ch = channel(author, tag + "-room")
    return author, reader, ch, post(author, ch, content)


def reports(root, **params):
    r = root.get("/admin/reports", **params)
    assert r.status_code == 200, r.text
    return r.json()


def report(who, msg, reason="spam", status=201):
    return who.ok("POST", "/messages/%s/report" % msg["id"], {"reason": reason}, status)


def resolve(root, rep, action, status=200, **fields):
    return root.ok("POST", "/admin/reports/%s/resolve" % rep["id"],
                   dict({"action": action}, **fields), status)


# ---- mutes --------------------------------------------------------------------------

def test_a_mute_blocks_content_but_not_reading_live_delivery_or_housekeeping(srv, root):
    who = register(srv, "mu_max")
    reader = register(srv, "mu_reader")
    ch = channel(reader, "mute-room")
    who.ok("POST", "/channels/%s/join" % ch["id"], {})
    own = channel(who, "max-own-room")
    msg = post(who, ch, "before the mute")
    spare = post(who, ch, "to be deleted")
    who.ok("POST", "/messages/%s/reactions" % msg["id"], {"emoji": "ok"}, 201)
    key = who.ok("POST", "/auth/api-keys", {"name": "bot", "permissions": ["read", "write"]},
                 201)["key"]
    view = root.ok("POST", "/admin/users/%s/mute" % who.id, {"reason": "cool off"})
    assert view["is_muted"] and view["mute_reason"] == "cool off"
    assert view["muted_until"] is None and not view["is_banned"]
    live = Live(srv, who.token)
    try:
        for label, r in content_writes(who, ch, own, msg, reader):
            assert r.status_code == 403, label
            muted(r)
        # an API key of the account too
        r = requests.post(srv.url(API + "/channels/%s/messages" % ch["id"]), timeout=30,
                          json={"content": "by key"}, headers={"X-API-Key": key})
        muted(r)
        # over the WebSocket: send_message runs the same route; typing_start is refused
        live.send({"type": "send_message", "ref": "m1",
                   "data": {"channel_id": ch["id"], "content": "over ws"}})
        err = live.wait_type("error")
        assert err["data"]["code"] == "ACCOUNT_MUTED" and err["data"]["ref"] == "m1"
        assert err["data"]["details"] == {"until": None}
        live.send({"type": "typing_start", "channel_id": ch["id"], "ref": "t1"})
        err = live.wait_type("error")
        assert err["data"]["code"] == "ACCOUNT_MUTED" and err["data"]["ref"] == "t1"
        # nothing was written
        history = reader.ok("GET", "/channels/%s/messages" % ch["id"])["messages"]
        assert sorted(m["content"] for m in history) == ["before the mute", "to be deleted"]
        assert reader.ok("GET", "/messages/" + msg["id"])["content"] == "before the mute"
        assert reader.ok("GET", "/channels/" + own["id"])["name"] == "max-own-room"
        assert who.ok("GET", "/files")["files"] == []
        # reading, live delivery and housekeeping go on
        assert who.get("/users/me").status_code == 200
        assert who.get("/channels/%s/messages" % ch["id"]).status_code == 200
        live_msg = post(reader, ch, "you can still read this")
        got = live.wait_type("message.created", id=live_msg["id"])
        assert got["data"]["content"] == "you can still read this"
        who.ok("DELETE", "/messages/%s/reactions/ok" % msg["id"])
        who.ok("DELETE", "/messages/" + spare["id"], status=204)
        assert who.ok("PUT", "/users/me", {"display_name": "Quiet Max"})["display_name"] == \
            "Quiet Max"
        report(who, live_msg, "a muted reader may still report")
    finally:
        live.close()
    # the unmute gives it all back at once
    view = root.ok("POST", "/admin/users/%s/unmute" % who.id)
    assert not view["is_muted"] and view["mute_reason"] is None
    post(who, ch, "after the unmute")
    who.ok("POST", "/messages/%s/reactions" % msg["id"], {"emoji": "+1"}, 201)


def test_a_timed_mute_ends_by_itself(srv, root):
    who = register(srv, "mu_timed")
    ch = channel(who, "timed-room")
    until = time.time() + 3
    view = root.ok("POST", "/admin/users/%s/mute" % who.id, {"until": rfc3339(until)})
    assert view["is_muted"] and view["muted_until"] == rfc3339(until)
    muted(who.post("/channels/%s/messages" % ch["id"], {"content": "too soon"}), rfc3339(until))
    wait_past(until)
    wait_until(lambda: who.post("/channels/%s/messages" % ch["id"],
                                {"content": "free again"}).status_code == 201,
               what="the mute to end")
    view = admin_view(root, who.id)
    assert not view["is_muted"] and view["muted_until"] is None


def test_mute_refuses_bad_input_and_non_admins_and_changes_nothing(srv, root):
    who = register(srv, "mu_bad")
    plain = register(srv, "mu_plain")
    path = "/admin/users/%s/mute" % who.id
    for body, field in [({"reason": 7}, "reason"), ({"reason": "x" * 501}, "reason"),
                        ({"until": "tomorrow"}, "until"), ({"until": 5}, "until"),
                        ({"until": "2020-01-01T00:00:00Z"}, "until")]:
        r = root.post(path, body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == field, body
    assert_error(root.post("/admin/users/%s/mute" % root.id, {}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_error(root.post("/admin/users/usr_nosuch/mute", {}), 404, "RESOURCE_NOT_FOUND")
    assert_error(root.post("/admin/users/usr_nosuch/unmute", {}), 404, "RESOURCE_NOT_FOUND")
    for p in (path, "/admin/users/%s/unmute" % who.id):
        assert_error(plain.post(p, {}), 403, "INSUFFICIENT_PERMISSIONS")
        assert_error(requests.post(srv.url(API + p), json={}, timeout=30), 401,
                     "AUTHENTICATION_REQUIRED")
    assert not admin_view(root, who.id)["is_muted"]
    assert not admin_view(root, root.id)["is_muted"]
    gone = register(srv, "mu_gone")
    root.ok("DELETE", "/admin/users/" + gone.id, status=204)
    assert_error(root.post("/admin/users/%s/mute" % gone.id, {}), 409, "CONFLICT")
    # a mute and a ban are apart: unbanning does not unmute
    root.ok("POST", path, {"reason": "both"})
    root.ok("POST", "/admin/users/%s/ban" % who.id, {})
    view = root.ok("POST", "/admin/users/%s/unban" % who.id)
    assert view["is_muted"] and not view["is_banned"]
    root.ok("POST", "/admin/users/%s/unmute" % who.id)


# ---- reports ------------------------------------------------------------------------

def test_a_report_is_filed_listed_and_dismissed_once(srv, root):
    author, reader, ch, msg = scene(srv, "rp", "buy cheap watches")
    rep = report(reader, msg, "spam links")
    assert rep["status"] == "open" and rep["action"] is None and rep["resolved_at"] is None
    assert rep["message_id"] == msg["id"] and rep["channel_id"] == ch["id"]
    assert rep["reporter_id"] == reader.id and rep["reason"] == "spam links"
    assert rep["message"]["content"] == "buy cheap watches"
    assert rep["message"]["author"] == {"id": author.id, "username": "rp_author"}
    assert rep["message"]["content_truncated"] is False and rep["created_at"]
    # the same reader cannot report the same message twice; another may
    assert_error(reader.post("/messages/%s/report" % msg["id"], {"reason": "again"}), 409,
                 "CONFLICT")
    other = report(register(srv, "rp_other"), msg, "me too")
    listed = reports(root, status="open", limit=100)["reports"]
    assert {rep["id"], other["id"]} <= {r["id"] for r in listed}
    assert [r for r in listed if r["id"] == rep["id"]][0] == rep
    done = resolve(root, rep, "dismiss")
    assert done["status"] == "dismissed" and done["action"] == "dismiss"
    assert done["resolved_by"] == root.id and done["resolved_at"]
    assert_error(root.post("/admin/reports/%s/resolve" % rep["id"], {"action": "dismiss"}),
                 409, "CONFLICT")
    assert_error(root.post("/admin/reports/%s/resolve" % rep["id"],
                           {"action": "delete_message"}), 409, "CONFLICT")
    assert reader.ok("GET", "/messages/" + msg["id"])["content"] == "buy cheap watches"
    assert rep["id"] in [r["id"] for r in reports(root, status="dismissed")["reports"]]
    assert rep["id"] not in [r["id"] for r in reports(root, status="open", limit=100)["reports"]]
    everything = reports(root, limit=100)
    assert everything["total"] >= 2 and everything["page"] == 1
    assert {rep["id"], other["id"]} <= {r["id"] for r in everything["reports"]}
    page = reports(root, limit=1, page=2)
    assert len(page["reports"]) == 1 and page["pages"] == everything["total"]


def test_resolving_with_delete_message_deletes_it_for_readers_and_keeps_the_evidence(srv, root):
    author, reader, ch, msg = scene(srv, "rd", "something awful")
    reader.ok("POST", "/channels/%s/join" % ch["id"], {})
    rep = report(reader, msg, "abuse")
    live = Live(srv, reader.token)
    try:
        done = resolve(root, rep, "delete_message")
        gone = live.wait_type("message.deleted", id=msg["id"])
        assert gone["data"]["deleted_by"] == root.id
    finally:
        live.close()
    assert done["status"] == "resolved" and done["action"] == "delete_message"
    got = reader.ok("GET", "/messages/" + msg["id"])
    assert got["is_deleted"] is True and not got.get("content")
    history = reader.ok("GET", "/channels/%s/messages" % ch["id"])["messages"]
    assert [m for m in history if m["id"] == msg["id"] and m.get("content")] == []
    assert done["message"]["content"] == "something awful"  # the evidence stays
    assert_error(reader.post("/messages/%s/report" % msg["id"], {"reason": "late"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert author.get("/users/me").status_code == 200


def test_resolving_with_ban_author_bans_the_author(srv, root):
    author, reader, ch, msg = scene(srv, "rb", "raid incoming")
    rep = report(reader, msg, "raid")
    done = resolve(root, rep, "ban_author", reason="raiding")
    assert done["status"] == "resolved" and done["action"] == "ban_author"
    assert_error(author.get("/users/me"), 403, "ACCOUNT_BANNED")
    view = admin_view(root, author.id)
    assert view["is_banned"] and view["ban_reason"] == "raiding" and view["banned_until"] is None
    assert reader.ok("GET", "/messages/" + msg["id"])["content"] == "raid incoming"


def test_resolving_with_mute_author_mutes_the_author(srv, root):
    author, reader, ch, msg = scene(srv, "rm", "flood flood flood")
    rep = report(reader, msg, "flooding")
    until = rfc3339(time.time() + 86400)
    done = resolve(root, rep, "mute_author", until=until, reason="flood")
    assert done["status"] == "resolved" and done["action"] == "mute_author"
    muted(author.post("/channels/%s/messages" % ch["id"], {"content": "more"}), until)
    view = admin_view(root, author.id)
    assert view["is_muted"] and view["muted_until"] == until and view["mute_reason"] == "flood"
    assert author.get("/channels/%s/messages" % ch["id"]).status_code == 200
    root.ok("POST", "/admin/users/%s/unmute" % author.id)


def test_reports_refuse_bad_input_and_change_nothing(srv, root):
    author, reader, ch, msg = scene(srv, "rx", "a fine message")
    secret = channel(author, "secret-room", is_private=True)
    hidden = post(author, secret, "members only")
    dropped = post(author, ch, "soon gone")
    author.ok("DELETE", "/messages/" + dropped["id"], status=204)
    path = "/messages/%s/report" % msg["id"]
    for body in [{}, {"reason": ""}, {"reason": "   \n "}, {"reason": 7}, {"reason": None},
                 {"reason": "x" * 1001}, {"reason": "bad\u0001char"}]:
        r = reader.post(path, body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == "reason", body
    assert report(reader, msg, "é" * 1000)["reason"] == "é" * 1000  # 1000 characters fit
    for mid in ("msg_0000000000000000", hidden["id"], dropped["id"]):
        assert_error(reader.post("/messages/%s/report" % mid, {"reason": "x"}), 404,
                     "RESOURCE_NOT_FOUND")
    assert_error(requests.post(srv.url(API + path), json={"reason": "x"}, timeout=30), 401,
                 "AUTHENTICATION_REQUIRED")
    # the admin is no reader of a private channel it is not in, so reports
    # nothing there; a member does, and the admin sees the message in the report
    assert_error(root.post("/messages/%s/report" % hidden["id"], {"reason": "x"}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(root.get("/messages/" + hidden["id"]), 404, "RESOURCE_NOT_FOUND")
    insider = register(srv, "rx_insider")
    author.ok("POST", "/channels/%s/members" % secret["id"], {"user_id": insider.id}, 201)
    rep = report(insider, hidden, "checking")
    listed = [r for r in reports(root, status="open", limit=100)["reports"]
              if r["id"] == rep["id"]]
    assert listed and listed[0]["message"]["content"] == "members only"
    rpath = "/admin/reports/%s/resolve" % rep["id"]
    soon = rfc3339(time.time() + 3600)
    for body, field in [({}, "action"), ({"action": "explode"}, "action"),
                        ({"action": 3}, "action"), ({"action": "none"}, "action"),
                        ({"action": "mute_author", "until": "2020-01-01T00:00:00Z"}, "until"),
                        ({"action": "ban_author", "until": "never"}, "until"),
                        ({"action": "ban_author", "reason": 5, "until": soon}, "reason")]:
        r = root.post(rpath, body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == field, body
    assert_error(root.post("/admin/reports/rep_nosuch/resolve", {"action": "dismiss"}), 404,
                 "RESOURCE_NOT_FOUND")
    for status in ("closed", "OPEN", ""):
        r = root.get("/admin/reports", status=status)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == "status"
    for params in ({"page": "0"}, {"limit": "101"}):
        assert_error(root.get("/admin/reports", **params), 422, "VALIDATION_ERROR")
    # an admin's own message: banning or muting themselves is refused
    own = report(reader, post(root, ch, "admin speaking"), "the admin is rude")
    for action in ("ban_author", "mute_author"):
        assert_error(root.post("/admin/reports/%s/resolve" % own["id"], {"action": action}),
                     403, "INSUFFICIENT_PERMISSIONS")
    assert not admin_view(root, root.id)["is_banned"]
    assert not admin_view(root, root.id)["is_muted"]
    # nothing was resolved, deleted, banned or muted
    still = {r["id"]: r for r in reports(root, status="open", limit=100)["reports"]}
    assert rep["id"] in still and own["id"] in still
    assert author.ok("GET", "/messages/" + hidden["id"])["content"] == "members only"
    view = admin_view(root, author.id)
    assert not view["is_banned"] and not view["is_muted"]


def test_non_admins_are_refused_on_the_report_routes(srv, root):
    user = register(srv, "rn_user")
    author = register(srv, "rn_author")
    msg = post(author, channel(author, "nonadmin-room"), "hello")
    rep = report(user, msg, "testing")
    key = user.ok("POST", "/auth/api-keys", {"name": "k", "permissions": ["read", "write"]},
                  201)["key"]
    calls = [("GET", "/admin/reports", None),
             ("POST", "/admin/reports/%s/resolve" % rep["id"], {"action": "delete_message"})]
    for method, p, body in calls:
        assert_error(user.call(method, p, body), 403, "INSUFFICIENT_PERMISSIONS")
        r = requests.request(method, srv.url(API + p), json=body, timeout=30,
                             headers={"X-API-Key": key})
        assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
        assert_error(requests.request(method, srv.url(API + p), json=body, timeout=30), 401,
                     "AUTHENTICATION_REQUIRED")
    assert author.ok("GET", "/messages/" + msg["id"])["content"] == "hello"
    assert [r for r in reports(root, status="open", limit=100)["reports"]
            if r["id"] == rep["id"]]


def test_a_long_message_is_kept_capped_in_the_report(srv, root):
    author, reader, ch, msg = scene(srv, "rl", "\U0001F600" * 4000)  # 16000 bytes of UTF-8
    rep = report(reader, msg, "too many smileys")
    kept = rep["message"]["content"]
    assert rep["message"]["content_truncated"] is True
    assert kept == "\U0001F600" * 1024 and len(kept.encode()) == 4096


def test_open_reports_are_capped_per_reporter(srv, root):
    author = register(srv, "rc_author")
    reader = register(srv, "rc_reader")
    ch = channel(author, "cap-room")
    msgs = [post(author, ch, "m%d" % i) for i in range(101)]
    filed = [report(reader, m, "r") for m in msgs[:100]]
    r = reader.post("/messages/%s/report" % msgs[100]["id"], {"reason": "one too many"})
    assert_error(r, 409, "CONFLICT")
    assert r.json()["error"]["details"] == {"open_reports_max": 100}
    resolve(root, filed[0], "dismiss")  # a closed one makes room for one more
    report(reader, msgs[100], "room again")
    extra = post(author, ch, "one more")
    assert_error(reader.post("/messages/%s/report" % extra["id"], {"reason": "x"}), 409,
                 "CONFLICT")
    # the cap is the reporter's: another reader is not held back
    report(register(srv, "rc_other"), extra, "mine")


# ---- durability ---------------------------------------------------------------------

def test_mutes_and_reports_survive_a_clean_restart_and_a_sigkill(start_server, tmp_path):
    data = tmp_path / "data"
    server = start_server(data_dir=data)
    admin = register(server, "boss")
    quiet = register(server, "dur_quiet")
    late = register(server, "dur_late")
    reader = register(server, "dur_reader")
    ch = channel(reader, "dur-room")
    msg = post(reader, ch, "reported content")
    doomed = post(reader, ch, "deleted after a report")
    far = rfc3339(time.time() + 86400)
    admin.ok("POST", "/admin/users/%s/mute" % quiet.id, {"until": far, "reason": "quiet"})
    kept = report(quiet, msg, "kept open")
    closed = report(late, msg, "to be dismissed")
    resolve(admin, closed, "dismiss")

    def check(srv, boss):
        v = admin_view(boss, quiet.id)
        assert v["is_muted"] and v["muted_until"] == far and v["mute_reason"] == "quiet"
        muted(quiet.on(srv).post("/channels/%s/messages" % ch["id"], {"content": "x"}), far)
        open_ = {r["id"]: r for r in reports(boss, status="open")["reports"]}
        assert open_[kept["id"]] == kept
        shut = {r["id"]: r for r in reports(boss, status="dismissed")["reports"]}
        assert shut[closed["id"]]["resolved_by"] == admin.id
        assert_error(quiet.on(srv).post("/messages/%s/report" % msg["id"], {"reason": "dup"}),
                     409, "CONFLICT")

    assert server.stop() == 0
    server = start_server(data_dir=data)
    boss = admin.on(server)
    check(server, boss)
    # acknowledged, then SIGKILL: the mute, the report and its resolution are there after
    boss.ok("POST", "/admin/users/%s/mute" % late.id, {"reason": "last words"})
    last = report(reader.on(server), doomed, "filed before the kill")
    gone = resolve(boss, last, "delete_message")
    server.proc.kill()
    server.proc.wait()
    server = start_server(data_dir=data)
    boss = admin.on(server)
    check(server, boss)
    v = admin_view(boss, late.id)
    assert v["is_muted"] and v["mute_reason"] == "last words" and v["muted_until"] is None
    muted(late.on(server).post("/channels/%s/messages" % ch["id"], {"content": "x"}))
    after = {r["id"]: r for r in reports(boss, status="resolved")["reports"]}
    assert after[last["id"]] == gone
    assert reader.on(server).ok("GET", "/messages/" + doomed["id"])["is_deleted"] is True
    assert after[last["id"]]["message"]["content"] == "deleted after a report"
