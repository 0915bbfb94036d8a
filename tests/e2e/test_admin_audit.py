"""The audit log end to end (docs/admin.md "Audit log"): security events
(logins and failed logins with the client's address, the lockout of an
account, refresh-token reuse, password and MFA changes, API keys) and admin
actions (accounts created, others' messages, channels and files deleted) are
entries of GET /api/v1/admin/audit-log, filtered by actor, action, target and
time, paged, bounded by --audit-max-entries, and kept across a restart and
a SIGKILL. Also the self view's last_login and permissions and the
MFA_REQUIRED error's mfa_methods."""
import time

import pytest
import requests

from client import API, PASSWORD, Client, register
from conftest import assert_error, module_server
from test_mfa import enable_mfa, totp


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "admin-audit")


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "auditroot")
    assert "admin" in admin.user["roles"]
    return admin


def login(server, name, password=PASSWORD, **extra):
    return requests.post(server.url(API + "/auth/login"),
                         json=dict({"username": name, "password": password}, **extra),
                         timeout=30)


def entries(admin, **params):
    r = admin.get("/admin/audit-log", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"entries", "total", "page", "pages"}
    return body


def newest(admin, action, **params):
    """The newest entry of `action` (exact), or None."""
    found = entries(admin, action=action, limit=1, **params)["entries"]
    return found[0] if found else None


def test_logins_and_failures_are_recorded_with_address_and_actor(srv, root):
    user = register(srv, "aud_login")
    assert login(srv, "aud_login").status_code == 200
    e = newest(root, "auth.login", target=user.id)
    assert e and e["actor"] == {"id": user.id, "username": "aud_login"}
    assert e["ip"] == "127.0.0.1"
    assert e["timestamp"].endswith("Z") and e["id"].startswith("aud_")
    assert e["details"] == {"mfa": False, "session": False}

    assert_error(login(srv, "aud_login", "wrong password"), 401, "INVALID_CREDENTIALS")
    e = newest(root, "auth.login_failed", target=user.id)
    assert e and e["actor"]["id"] == user.id and e["details"] == {"reason": "password"}
    # an unknown name: no actor, the name typed as the target
    assert_error(login(srv, "nobody_at_all", "whatever"), 401, "INVALID_CREDENTIALS")
    e = newest(root, "auth.login_failed", target="nobody_at_all")
    assert e and e["actor"] is None and e["ip"] == "127.0.0.1"
    # registration is an event too
    e = newest(root, "auth.register", target=user.id)
    assert e and e["details"]["username"] == "aud_login" and e["details"]["admin"] is False


def test_lockout_is_recorded_once_when_the_throttle_starts(srv, root):
    user = register(srv, "aud_locked")
    for _ in range(5):  # the free failures of an account
        assert_error(login(srv, "aud_locked", "wrong password"), 401, "INVALID_CREDENTIALS")
    locks = entries(root, action="auth.lockout", target=user.id)
    assert locks["total"] == 1, locks
    assert locks["entries"][0]["details"] == {"failures": 5}
    assert entries(root, action="auth.login_failed", target=user.id)["total"] == 5
    # refused by the throttle (within the 1 s delay the failures started):
    # not counted and not recorded, so a cheap request writes nothing; a slow
    # machine may be past the delay, and then it is one more failure
    r = login(srv, "aud_locked", "wrong password")
    failed = entries(root, action="auth.login_failed", target=user.id)["total"]
    if r.status_code == 429:
        assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
        assert failed == 5
    else:
        assert_error(r, 401, "INVALID_CREDENTIALS")
        assert failed == 6
    assert entries(root, action="auth.lockout", target=user.id)["total"] == 1


def test_refused_logins_refresh_reuse_password_and_keys(srv, root):
    user = register(srv, "aud_sec")
    first = user.pair["refresh_token"]
    r = requests.post(srv.url(API + "/auth/refresh"), json={"refresh_token": first}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(srv.url(API + "/auth/refresh"), json={"refresh_token": first}, timeout=30)
    assert_error(r, 401, "TOKEN_INVALID")
    e = newest(root, "auth.refresh_reuse")
    assert e and e["actor"]["id"] == user.id and e["target"].startswith("ses_")

    again = Client(srv, login(srv, "aud_sec").json())
    key = again.ok("POST", "/auth/api-keys", {"name": "ci bot", "permissions": ["read"]}, 201)
    e = newest(root, "api_key.create", target=key["id"])
    assert e and e["actor"]["id"] == user.id
    assert e["details"] == {"name": "ci bot", "read": True, "write": False}
    assert again.delete("/auth/api-keys/" + key["id"]).status_code == 204
    assert newest(root, "api_key.delete", target=key["id"])["details"] == {"name": "ci bot"}

    r = again.put("/auth/change-password", {"current_password": PASSWORD,
                                            "new_password": "a brand new password"})
    assert r.status_code == 204, r.text
    assert newest(root, "auth.password_change", target=user.id)["actor"]["id"] == user.id

    root.ok("POST", "/admin/users/%s/ban" % user.id, {})
    assert_error(login(srv, "aud_sec", "a brand new password"), 403, "ACCOUNT_BANNED")
    e = newest(root, "auth.login_refused", target=user.id)
    assert e and e["details"] == {"reason": "banned"}
    root.ok("POST", "/admin/users/%s/unban" % user.id, {})


def test_mfa_changes_and_the_mfa_required_error(srv, root):
    user = register(srv, "aud_mfa", password="password of aud_mfa")
    secret, step = enable_mfa(srv, user.token)
    assert newest(root, "mfa.enable", target=user.id)["actor"]["id"] == user.id
    r = login(srv, "aud_mfa", "password of aud_mfa")
    assert_error(r, 401, "MFA_REQUIRED")
    details = r.json()["error"]["details"]
    assert details["mfa_methods"] == ["totp"] and details["temp_token"]
    # a wrong code at login is a failed login
    valid = {totp(secret, step + d) for d in range(0, 4)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in valid)
    r = login(srv, "aud_mfa", "password of aud_mfa", mfa_code=wrong)
    assert_error(r, 401, "INVALID_CREDENTIALS")
    assert newest(root, "auth.login_failed", target=user.id)["details"] == {"reason": "mfa_code"}


def test_admin_deletions_of_others_content_are_recorded(srv, root):
    author = register(srv, "aud_author")
    ch = author.ok("POST", "/channels", {"name": "aud-room"}, 201)
    root.ok("POST", "/channels/%s/join" % ch["id"], {})
    mine = author.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "own"}, 201)
    theirs = author.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "spam"}, 201)
    # the author's own delete is no moderation: not recorded
    assert author.delete("/messages/" + mine["id"]).status_code == 204
    assert newest(root, "message.delete", target=mine["id"]) is None
    assert root.delete("/messages/" + theirs["id"]).status_code == 204
    e = newest(root, "message.delete", target=theirs["id"])
    assert e and e["actor"]["id"] == root.id
    assert e["details"] == {"channel_id": ch["id"], "author_id": author.id}

    f = author.uploaded("notes.txt", b"some notes", "text/plain")
    assert root.delete("/files/" + f["id"]).status_code == 204
    assert newest(root, "file.delete", target=f["id"])["details"] == {
        "filename": "notes.txt", "uploaded_by": author.id}

    assert root.delete("/channels/" + ch["id"]).status_code == 204
    e = newest(root, "channel.delete", target=ch["id"])
    assert e and e["details"] == {"name": "aud-room", "owner_id": author.id}

    made = root.ok("POST", "/users", {"username": "aud_made", "email": "aud_made@example.com",
                                      "password": PASSWORD}, 201)
    e = newest(root, "user.create", target=made["id"])
    assert e and e["actor"]["id"] == root.id and e["details"]["username"] == "aud_made"


def test_filters_paging_and_bad_queries(srv, root):
    user = register(srv, "aud_filter")
    for _ in range(3):
        assert login(srv, "aud_filter").status_code == 200
    by_id = entries(root, actor=user.id, action="auth.login")
    by_name = entries(root, actor="aud_filter", action="auth.login")
    assert by_id["total"] == by_name["total"] == 3
    assert [e["id"] for e in by_id["entries"]] == [e["id"] for e in by_name["entries"]]
    stamps = [e["timestamp"] for e in by_id["entries"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    everything = entries(root, actor=user.id, action="auth.")
    assert everything["total"] == 4  # the logins and the registration
    assert {e["action"] for e in everything["entries"]} == {"auth.login", "auth.register"}
    page2 = entries(root, actor=user.id, action="auth.login", limit=2, page=2)
    assert page2["total"] == 3 and page2["pages"] == 2 and len(page2["entries"]) == 1
    assert page2["entries"][0]["id"] == by_id["entries"][2]["id"]
    # from is inclusive, to exclusive
    oldest = by_id["entries"][2]["timestamp"]
    assert entries(root, actor=user.id, action="auth.login", to=oldest)["total"] == 0
    assert entries(root, actor=user.id, action="auth.login", **{"from": oldest})["total"] == 3
    assert entries(root, actor="no_such_account")["total"] == 0

    for params, field in [({"from": "yesterday"}, "from"), ({"to": "2026-13-01T00:00:00Z"}, "to"),
                          ({"from": "2026-06-02T00:00:00Z", "to": "2026-06-01T00:00:00Z"}, "to"),
                          ({"action": ""}, "action"), ({"actor": "x" * 129}, "actor"),
                          ({"target": "t" * 200}, "target"), ({"limit": "0"}, "limit"),
                          ({"limit": "101"}, "limit"), ({"page": "zero"}, "page")]:
        r = root.get("/admin/audit-log", **params)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == field, params

    assert_error(user.get("/admin/audit-log"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(requests.get(srv.url(API + "/admin/audit-log"), timeout=30), 401,
                 "AUTHENTICATION_REQUIRED")


def test_self_view_has_last_login_and_permissions(srv, root):
    user = register(srv, "aud_me")
    me = user.ok("GET", "/users/me")
    assert me["last_login"] is None
    assert "messages.write" in me["permissions"] and "users.manage" not in me["permissions"]
    before = time.time()
    pair = login(srv, "aud_me").json()
    assert pair["user"]["last_login"] is not None
    me = Client(srv, pair).ok("GET", "/users/me")
    assert me["last_login"] == pair["user"]["last_login"]
    assert root.ok("GET", "/users/me")["permissions"][-1] == "system.manage"
    assert "users.manage" in root.ok("GET", "/users/me")["permissions"]
    # others never see them
    other = root.ok("GET", "/users/" + user.id)
    assert "last_login" not in other and "permissions" not in other
    assert before > 0


def test_bounded_and_durable_across_restart_and_sigkill(start_server, tmp_path):
    data = tmp_path / "data"
    server = start_server(args=["--rate-limit", "0", "--audit-max-entries", "5"], data_dir=data)
    admin = register(server, "boundroot")
    for _ in range(6):
        assert login(server, "boundroot").status_code == 200
    body = entries(admin, limit=100)
    assert body["total"] == 5  # the registration and the first login are gone
    kept = [e["id"] for e in body["entries"]]
    assert all(e["action"] == "auth.login" for e in body["entries"])

    assert server.stop() == 0
    server = start_server(args=["--rate-limit", "0", "--audit-max-entries", "5"], data_dir=data)
    admin = admin.on(server)
    assert [e["id"] for e in entries(admin, limit=100)["entries"]] == kept

    # acknowledged, then SIGKILL: the entry is there after
    made = admin.ok("POST", "/users", {"username": "killed_made", "email": "km@example.com",
                                       "password": PASSWORD}, 201)
    server.proc.kill()
    server.proc.wait()
    server = start_server(args=["--rate-limit", "0", "--audit-max-entries", "5"], data_dir=data)
    admin = admin.on(server)
    after = entries(admin, limit=100)["entries"]
    assert after[0]["action"] == "user.create" and after[0]["target"] == made["id"]
    assert after[0]["details"]["username"] == "killed_made"
    assert [e["id"] for e in after[1:]] == kept[:4]  # the oldest went to make room


def test_moderation_of_accounts_and_reports_is_recorded(srv, root):
    user = register(srv, "aud_mod")
    other = register(srv, "aud_mod2")
    root.ok("POST", "/admin/users/%s/ban" % user.id,
            {"reason": "spam", "until": "2099-01-01T00:00:00.000Z"})
    e = newest(root, "user.ban", target=user.id)
    assert e and e["actor"]["id"] == root.id and e["ip"] == "127.0.0.1"
    assert e["details"] == {"reason": "spam", "until": "2099-01-01T00:00:00.000Z"}
    root.ok("POST", "/admin/users/%s/unban" % user.id, {})
    assert newest(root, "user.unban", target=user.id)
    root.ok("POST", "/admin/users/%s/mute" % user.id, {})
    assert newest(root, "user.mute", target=user.id)["details"] == {"reason": None, "until": None}
    root.ok("POST", "/admin/users/%s/unmute" % user.id, {})
    assert newest(root, "user.unmute", target=user.id)
    root.ok("PUT", "/admin/users/%s/roles" % user.id, {"roles": ["user", "admin"]})
    assert newest(root, "user.roles", target=user.id)["details"] == {"admin": True}
    root.ok("PUT", "/admin/users/%s/roles" % user.id, {"roles": ["user"]})
    assert newest(root, "user.roles", target=user.id)["details"] == {"admin": False}
    # a refused change writes nothing
    before = entries(root, target=root.id, action="user.")["total"]
    assert_error(root.post("/admin/users/%s/ban" % root.id, {}), 403, "INSUFFICIENT_PERMISSIONS")
    assert entries(root, target=root.id, action="user.")["total"] == before

    # a report resolved by banning its author: the ban and the resolution
    ch = other.ok("POST", "/channels", {"name": "aud-reports"}, 201)
    user.ok("POST", "/channels/%s/join" % ch["id"], {})
    msg = other.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "buy now"}, 201)
    rep = user.ok("POST", "/messages/%s/report" % msg["id"], {"reason": "spam"}, 201)
    root.ok("POST", "/admin/reports/%s/resolve" % rep["id"], {"action": "ban_author"})
    e = newest(root, "report.resolve", target=rep["id"])
    assert e and e["details"] == {"action": "ban_author", "message_id": msg["id"],
                                  "author_id": other.id}
    assert newest(root, "user.ban", target=other.id)

    assert root.delete("/admin/users/" + user.id).status_code == 204
    e = newest(root, "user.delete", target=user.id)
    assert e and e["actor"]["id"] == root.id
    # the deleted account's older entries keep its id; its username is gone
    assert newest(root, "auth.register", target=user.id)["actor"] == {"id": user.id,
                                                                       "username": None}


def test_settings_and_invites_are_recorded(srv, root):
    root.ok("PATCH", "/admin/settings", {"server_name": "Audited", "message_retention_days": 30})
    e = newest(root, "settings.update")
    assert e and e["target"] == "settings" and e["actor"]["id"] == root.id
    assert e["details"] == {"server_name": "Audited", "message_retention_days": 30}
    root.ok("PATCH", "/admin/settings", {"server_name": None, "message_retention_days": None})
    assert newest(root, "settings.update")["details"] == {"server_name": None,
                                                          "message_retention_days": None}
    # a refused PATCH writes nothing
    before = entries(root, action="settings.update")["total"]
    r = root.patch("/admin/settings", {"registration": "sometimes"})
    assert_error(r, 422, "VALIDATION_ERROR")
    assert entries(root, action="settings.update")["total"] == before

    inv = root.ok("POST", "/admin/invites", {"max_uses": 3}, 201)
    e = newest(root, "invite.create", target=inv["code"])
    assert e and e["details"] == {"max_uses": 3, "expires_at": None, "channel_ids": []}
    assert root.delete("/admin/invites/" + inv["code"]).status_code == 204
    assert newest(root, "invite.revoke", target=inv["code"])["details"] == {"uses": 0}


def test_the_bounds_are_live_settings_that_outlive_the_flags(start_server, tmp_path):
    data = tmp_path / "data"
    args = ["--rate-limit", "0", "--audit-max-entries", "5"]
    server = start_server(args=args, data_dir=data)
    admin = register(server, "liveroot")
    view = admin.ok("GET", "/admin/settings")
    assert view["audit_max_entries"] == 5 and view["audit_max_days"] == 0
    r = admin.patch("/admin/settings", {"audit_max_entries": 8})
    assert r.status_code == 200 and r.json()["audit_max_entries"] == 8, r.text
    for _ in range(10):
        assert login(server, "liveroot").status_code == 200
    kept = [e["id"] for e in entries(admin, limit=100)["entries"]]
    assert len(kept) == 8
    # the stored setting wins over the flag after a restart, and a SIGKILL
    # (replay of the log tail) keeps them all
    server.proc.kill()
    server.proc.wait()
    server = start_server(args=args, data_dir=data)
    admin = admin.on(server)
    assert [e["id"] for e in entries(admin, limit=100)["entries"]] == kept
    # lowering it takes effect at once
    assert admin.patch("/admin/settings", {"audit_max_entries": 3}).status_code == 200
    now = entries(admin, limit=100)
    assert now["total"] == 3 and now["entries"][0]["action"] == "settings.update"
    for bad, value in [("audit_max_entries", 0), ("audit_max_entries", -1),
                       ("audit_max_entries", "many"), ("audit_max_days", 36501),
                       ("audit_max_days", 1.5)]:
        r = admin.patch("/admin/settings", {bad: value})
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == bad
