"""/api/v1/admin/settings end to end (docs/admin.md "Settings"): the defaults
come from the flags, each setting changed by PATCH takes effect at once
(registration modes, the upload limit and types, the default channel, MFA for
admins), a PATCH with any bad field changes nothing, settings survive a clean
restart and a SIGKILL, and a setting changed through the API wins over the
flags after a restart until it is reset with null."""
import json
import os
import signal
import time

import pytest
import requests

from client import API, Client, register, registration, wait_until
from conftest import assert_error, module_server
from realtime_client import Live
from walformat import FileWriter, read_file, segment_name

DAY = 86400 * 1000

FLAGS = ("--rate-limit", "0", "--server-name", "Flagged", "--max-upload-bytes", "100000",
         "--allowed-types", "text/plain,image/*", "--retention-sweep-interval", "1")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "admin-settings", args=FLAGS)


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "root")
    assert "admin" in admin.user["roles"]
    return admin


@pytest.fixture(scope="module")
def user(srv, root):
    return register(srv, "plain_user")


def settings(who):
    return who.ok("GET", "/admin/settings")


def patch(who, body, status=200):
    return who.ok("PATCH", "/admin/settings", body, status)


@pytest.fixture(autouse=True)
def reset(root):
    """Every test starts from the configured values."""
    yield
    body = {k: None for k in ("server_name", "server_description", "registration",
                              "require_mfa_for_admins", "max_upload_bytes", "allowed_types",
                              "message_retention_days", "default_channel", "rate_limits",
                              "trusted_proxies")}
    patch(root, body)


def test_defaults_come_from_the_flags(root):
    s = settings(root)
    assert s["server_name"] == "Flagged"
    assert s["server_description"] == ""
    assert s["registration"] == "open"
    assert s["require_mfa_for_admins"] is False
    assert s["max_upload_bytes"] == 100000
    assert s["allowed_types"] == ["text/plain", "image/*"]
    assert s["message_retention_days"] == 0
    assert s["default_channel"] is None
    assert s["rate_limits"] == {k: 0 for k in ("auth", "messages", "uploads", "search",
                                               "admin", "default")}
    assert s["trusted_proxies"] == []
    assert s["overridden"] == []
    assert "last_run_at" in s["retention_sweep"]


def test_non_admins_are_refused(srv, user):
    assert_error(user.get("/admin/settings"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(user.patch("/admin/settings", {"server_name": "Mine"}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    anon = requests.patch(srv.url(API + "/admin/settings"), json={"server_name": "x"},
                          timeout=30)
    assert_error(anon, 401, "AUTHENTICATION_REQUIRED")


def test_patch_changes_what_it_names_and_reports_overrides(root):
    s = patch(root, {"server_name": "Café ☕", "server_description": "line one\nline two",
                     "rate_limits": {"auth": 5}, "trusted_proxies": ["10.0.0.0/8", "::1"]})
    assert s["server_name"] == "Café ☕"
    assert s["server_description"] == "line one\nline two"
    assert s["rate_limits"]["auth"] == 5 and s["rate_limits"]["messages"] == 0
    assert s["trusted_proxies"] == ["10.0.0.0/8", "::1"]
    assert sorted(s["overridden"]) == ["rate_limits", "server_description", "server_name",
                                       "trusted_proxies"]
    # categories merge into the current limits
    s = patch(root, {"rate_limits": {"search": 7}})
    assert s["rate_limits"]["auth"] == 5 and s["rate_limits"]["search"] == 7
    assert settings(root) == s
    # null restores the configured value
    s = patch(root, {"server_name": None, "rate_limits": None})
    assert s["server_name"] == "Flagged" and s["rate_limits"]["auth"] == 0
    assert "server_name" not in s["overridden"]


BAD = [
    ({"nope": 1}, "nope"),
    ({"server_name": ""}, "server_name"),
    ({"server_name": "x" * 65}, "server_name"),
    ({"server_name": 5}, "server_name"),
    ({"server_name": "tab\there"}, "server_name"),
    ({"server_description": "d" * 501}, "server_description"),
    ({"server_description": ["a"]}, "server_description"),
    ({"registration": "sometimes"}, "registration"),
    ({"registration": True}, "registration"),
    ({"require_mfa_for_admins": "yes"}, "require_mfa_for_admins"),
    ({"require_mfa_for_admins": 1}, "require_mfa_for_admins"),
    ({"max_upload_bytes": 0}, "max_upload_bytes"),
    ({"max_upload_bytes": -5}, "max_upload_bytes"),
    ({"max_upload_bytes": 2 ** 41}, "max_upload_bytes"),
    ({"max_upload_bytes": 1.5}, "max_upload_bytes"),
    ({"max_upload_bytes": "100"}, "max_upload_bytes"),
    ({"allowed_types": "image/png"}, "allowed_types"),
    ({"allowed_types": []}, "allowed_types"),
    ({"allowed_types": ["image"]}, "allowed_types"),
    ({"allowed_types": ["image/png", 3]}, "allowed_types"),
    ({"allowed_types": ["a/b;c"]}, "allowed_types"),
    ({"allowed_types": ["image/png"] * 65}, "allowed_types"),
    ({"message_retention_days": -1}, "message_retention_days"),
    ({"message_retention_days": 36501}, "message_retention_days"),
    ({"message_retention_days": False}, "message_retention_days"),
    ({"default_channel": "no such/id"}, "default_channel"),
    ({"default_channel": 12}, "default_channel"),
    ({"default_channel": "c" * 100}, "default_channel"),
    ({"rate_limits": 5}, "rate_limits"),
    ({"rate_limits": {"auth": -1}}, "rate_limits.auth"),
    ({"rate_limits": {"auth": 10 ** 7}}, "rate_limits.auth"),
    ({"rate_limits": {"auth": "10"}}, "rate_limits.auth"),
    ({"rate_limits": {"auth": None}}, "rate_limits.auth"),
    ({"rate_limits": {"bogus": 1}}, "rate_limits.bogus"),
    ({"rate_limits": {"auth": {"deep": [1, 2]}}}, "rate_limits.auth"),
    ({"trusted_proxies": "10.0.0.0/8"}, "trusted_proxies"),
    ({"trusted_proxies": ["not a cidr!"]}, "trusted_proxies"),
    ({"trusted_proxies": ["1" * 60]}, "trusted_proxies"),
    ({"trusted_proxies": ["10.0.0.1"] * 65}, "trusted_proxies"),
    ({"trusted_proxies": [None]}, "trusted_proxies"),
    ({"server_name": "x" * 100000}, "server_name"),
    # a good field beside a bad one: the good one is not applied either
    ({"server_name": "Good", "max_upload_bytes": 0}, "max_upload_bytes"),
]


@pytest.mark.parametrize("body,field", BAD, ids=[f for _, f in BAD])
def test_bad_input_is_refused_whole(root, body, field):
    before = settings(root)
    err = assert_error(root.patch("/admin/settings", body), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field
    assert settings(root) == before


def test_bodies_that_are_not_objects_are_refused(root):
    before = settings(root)
    for raw in (b"[]", b"\"x\"", b"{\"server_name\": ", b"null"):
        r = root.call("PATCH", "/admin/settings", data=raw,
                      headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 422), r.text
    assert settings(root) == before


def test_registration_modes_take_effect_at_once(srv, root):
    patch(root, {"registration": "closed"})
    err = assert_error(registration(srv, "closed_one"), 403, "REGISTRATION_CLOSED")
    assert "closed" in err["message"]
    # the admin still creates accounts
    created = root.ok("POST", "/users", {"username": "made_by_admin",
                                         "email": "mba@example.com",
                                         "password": "password-123"}, 201)
    assert created["username"] == "made_by_admin"
    patch(root, {"registration": "invite"})
    err = assert_error(registration(srv, "no_code"), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "invite_code"
    err = assert_error(registration(srv, "bad_code", invite_code="0" * 32), 403,
                       "INVITE_INVALID")
    assert err["details"]["reason"] == "unknown"
    inv = root.ok("POST", "/admin/invites", {}, 201)
    register(srv, "with_code", invite_code=inv["code"])
    patch(root, {"registration": "open"})
    register(srv, "open_again")


def test_max_upload_bytes_applies_to_the_next_upload(root, user):
    assert user.upload("a.txt", b"a" * 5000, "text/plain").status_code == 201
    patch(root, {"max_upload_bytes": 1000})
    r = user.upload("b.txt", b"b" * 5000, "text/plain")
    err = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["max_bytes"] == 1000
    # a small one still passes
    assert user.upload("c.txt", b"c" * 500, "text/plain").status_code == 201
    patch(root, {"max_upload_bytes": None})
    assert user.upload("d.txt", b"d" * 5000, "text/plain").status_code == 201


def test_allowed_types_apply_to_the_next_upload(root, user):
    assert user.upload("a.txt", b"plain words\n", "text/plain").status_code == 201
    patch(root, {"allowed_types": ["image/*"]})
    assert_error(user.upload("a.txt", b"plain words\n", "text/plain"), 415,
                 "UNSUPPORTED_MEDIA_TYPE")
    patch(root, {"allowed_types": ["*/*"]})
    assert user.upload("a.txt", b"plain words\n", "text/plain").status_code == 201


def test_default_channel_is_joined_by_new_accounts(srv, root, user):
    lobby = root.ok("POST", "/channels", {"name": "lobby"}, 201)
    secret = root.ok("POST", "/channels", {"name": "secret-room", "is_private": True}, 201)
    err = assert_error(root.patch("/admin/settings", {"default_channel": secret["id"]}), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "default_channel"
    err = assert_error(root.patch("/admin/settings", {"default_channel": "ch_missing"}), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "default_channel"
    s = patch(root, {"default_channel": lobby["id"]})
    assert s["default_channel"] == lobby["id"]
    live = Live(srv, root.token)
    newbie = register(srv, "newbie")
    live.wait_type("member.joined", channel_id=lobby["id"], user_id=newbie.id)
    live.close()
    members = root.ok("GET", "/channels/%s/members" % lobby["id"])
    assert newbie.id in [m["user_id"] for m in members["members"]]
    # an existing account is not added
    assert user.id not in [m["user_id"] for m in members["members"]]
    # "" means none
    patch(root, {"default_channel": ""})
    later = register(srv, "later_one")
    members = root.ok("GET", "/channels/%s/members" % lobby["id"])
    assert later.id not in [m["user_id"] for m in members["members"]]


def test_require_mfa_for_admins(srv, root):
    # an admin without MFA may not lock themselves out
    err = assert_error(root.patch("/admin/settings", {"require_mfa_for_admins": True}), 409,
                       "CONFLICT")
    assert err["details"]["field"] == "require_mfa_for_admins"
    assert settings(root)["require_mfa_for_admins"] is False


def test_require_mfa_from_the_flag_refuses_admins_without_mfa(start_server):
    server = start_server(args=["--rate-limit", "0", "--require-mfa-for-admins", "true"])
    admin = register(server, "mfa_root")
    err = assert_error(admin.get("/admin/settings"), 403, "MFA_SETUP_REQUIRED")
    assert err["details"]["mfa_methods"] == ["totp"]
    # the routes to turn MFA on stay open, and so does everything else
    assert admin.post("/auth/mfa/setup").status_code == 200
    assert admin.get("/users/me").status_code == 200


def test_settings_survive_restart_and_sigkill_and_win_over_flags(start_server, tmp_path):
    data = tmp_path / "data"
    args = ["--rate-limit", "0", "--server-name", "First", "--registration", "open",
            "--max-upload-bytes", "5000"]
    server = start_server(args=args, data_dir=data)
    root = register(server, "boss")
    patch(root, {"server_name": "Renamed", "registration": "closed"})
    assert server.stop() == 0
    # restarted with other flags: the API's values win, the others follow the flags
    args2 = ["--rate-limit", "0", "--server-name", "Second", "--registration", "invite",
             "--max-upload-bytes", "7000"]
    server = start_server(args=args2, data_dir=data)
    boss = root.on(server)
    s = settings(boss)
    assert s["server_name"] == "Renamed" and s["registration"] == "closed"
    assert s["max_upload_bytes"] == 7000
    assert_error(registration(server, "nobody"), 403, "REGISTRATION_CLOSED")
    # acknowledged, then SIGKILL
    patch(boss, {"message_retention_days": 30, "server_name": None,
                 "allowed_types": ["text/plain"]})
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server = start_server(args=args2, data_dir=data)
    boss = root.on(server)
    s = settings(boss)
    assert s["server_name"] == "Second"  # reset: the flag again
    assert s["message_retention_days"] == 30
    assert s["allowed_types"] == ["text/plain"]
    assert s["registration"] == "closed"
    assert sorted(s["overridden"]) == ["allowed_types", "message_retention_days",
                                       "registration"]


def test_retention_sweep_keeps_recent_messages(srv, root):
    ch = root.ok("POST", "/channels", {"name": "kept-room"}, 201)
    msg = root.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "recent"}, 201)
    before = settings(root)["retention_sweep"]["last_run_at"]
    patch(root, {"message_retention_days": 1})
    wait_until(lambda: settings(root)["retention_sweep"]["last_run_at"] not in (None, before),
               what="a retention sweep runs")
    got = root.ok("GET", "/messages/%s" % msg["id"])
    assert got["content"] == "recent" and not got.get("is_deleted")


def last_lsn(data):
    """The last LSN of a stopped server's log and snapshots (walformat)."""
    last = 0
    for sub in ("snapshots", "wal"):
        for name in os.listdir(os.path.join(data, sub)):
            _, base, records = read_file(open(os.path.join(data, sub, name), "rb").read())
            last = max([last, base] + [lsn for lsn, _, _ in records])
    return last


def old_message(seq, channel_id, user_id, content, created_ms):
    return json.dumps({"v": 1, "id": "msg_%016d" % seq, "channel_id": channel_id,
                       "user_id": user_id, "content": content, "reply_to": "",
                       "thread_id": "", "mentions": [], "attachments": [], "reactions": [],
                       "idempotency_key": "", "is_edited": False, "is_deleted": False,
                       "created_at": created_ms, "updated_at": created_ms}).encode()


def test_retention_deletes_old_messages_through_the_log(start_server, tmp_path):
    """The test cannot age messages, so it writes them: messages of ten and
    two days ago are appended to a stopped server's log as records of the
    earlier JSON layout (walformat.py, from docs/wal-format.md), then the
    server replays them as any message. A retention of one day deletes
    those and keeps today's, durably."""
    data = tmp_path / "data"
    args = ["--rate-limit", "0", "--retention-sweep-interval", "1"]
    server = start_server(args=args, data_dir=data)
    root = register(server, "keeper")
    room = root.ok("POST", "/channels", {"name": "history"}, 201)
    assert server.stop() == 0
    lsn = last_lsn(str(data))
    now_ms = int(time.time() * 1000)
    seg = FileWriter(False, lsn + 1)
    seg.add_frame([(12, old_message(1, room["id"], root.id, "ancient words", now_ms - 10 * DAY)),
                   (12, old_message(2, room["id"], root.id, "ancient lore", now_ms - 2 * DAY))])
    (data / "wal" / segment_name(lsn + 1)).write_bytes(bytes(seg.data))

    server = start_server(args=args, data_dir=data)
    root = root.on(server)
    history = root.ok("GET", "/channels/%s/messages" % room["id"])["messages"]
    assert [m["content"] for m in history] == ["ancient words", "ancient lore"]
    fresh = root.ok("POST", "/channels/%s/messages" % room["id"], {"content": "fresh lore"}, 201)
    assert fresh["id"] > "msg_%016d" % 2
    live = Live(server, root.token)
    patch(root, {"message_retention_days": 1})
    for seq in (1, 2):
        ev = live.wait_type("message.deleted", id="msg_%016d" % seq)
        assert ev["data"]["reason"] == "retention" and ev["data"]["deleted_by"] is None
    live.close()

    wait_until(lambda: all(m.get("is_deleted") for m in root.ok(
        "GET", "/channels/%s/messages" % room["id"])["messages"][:2]), what="both old ones go")
    history = root.ok("GET", "/channels/%s/messages" % room["id"])["messages"]
    assert [m["is_deleted"] for m in history] == [True, True, False]
    assert history[2]["content"] == "fresh lore"
    assert settings(root)["retention_sweep"]["messages_deleted"] == 2
    # the sweep is in the audit log, done by no one
    sweep = wait_until(lambda: root.get("/admin/audit-log", action="retention.sweep").json()[
        "entries"], what="the sweep's audit entry")
    assert sweep[0]["actor"] is None and sweep[0]["ip"] is None
    assert sweep[0]["details"] == {"deleted": 2, "days": 1}
    # search follows the deletion
    hits = wait_until(lambda: (lambda r: r.status_code == 200 and r.json())(
        root.get("/search/messages", q="lore")), what="search answers")
    assert [h["message_id"] for h in hits["results"]] == [fresh["id"]], hits
    # durable: after a SIGKILL they are still deleted
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server = start_server(args=args, data_dir=data)
    root = root.on(server)
    history = root.ok("GET", "/channels/%s/messages" % room["id"])["messages"]
    assert [m["is_deleted"] for m in history] == [True, True, False]
