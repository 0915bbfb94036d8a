"""/api/v1/admin/users end to end (docs/api.md "Admin", docs/admin.md): the
account list with its filters, one account in full, bans (until lifted, or
timed and ending by themselves) refusing tokens, refresh tokens, API keys,
logins and live connections, roles and the last admin, deletion freeing the
username, login counts, and all of it surviving a clean restart and a
SIGKILL. Every refused request is checked for its status, its code, the
field it names and for having changed nothing."""
import time

import pytest
import requests

from client import API, PASSWORD, Client, register, rfc3339, wait_past, wait_until
from conftest import assert_error, module_server
from realtime_client import Live, Stream


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "admin-users")


@pytest.fixture(scope="module")
def root(srv):
    """The module's admin: the first account registered on its server."""
    admin = register(srv, "root", display_name="Root")
    assert "admin" in admin.user["roles"]
    return admin


def login(server, name, password=PASSWORD):
    return requests.post(server.url(API + "/auth/login"),
                         json={"username": name, "password": password}, timeout=30)


def signed_in(server, name):
    r = login(server, name)
    assert r.status_code == 200, r.text
    return Client(server, r.json())


def with_key(server, token):
    return requests.get(server.url(API + "/users/me"), headers={"X-API-Key": token}, timeout=30)


def new_key(who, permissions=("read", "write")):
    return who.ok("POST", "/auth/api-keys", {"name": "bot", "permissions": list(permissions)},
                  201)


def refresh(server, pair):
    return requests.post(server.url(API + "/auth/refresh"),
                         json={"refresh_token": pair["refresh_token"]}, timeout=30)


def admin_view(root, user_id):
    return root.ok("GET", "/admin/users/" + user_id)


def listed(root, **params):
    r = root.get("/admin/users", **params)
    assert r.status_code == 200, r.text
    return r.json()


# ---- GET /admin/users ------------------------------------------------------------

def test_list_filters_sorts_and_pages(srv, root):
    a = register(srv, "lst_anna", display_name="Zebra Keeper", email="anna@zoo.example")
    b = register(srv, "lst_bert", display_name="Bert")
    c = register(srv, "lst_carl", email="carl@mail.example")
    body = listed(root, search="lst_", limit=100)
    assert body["total"] == 3 and body["page"] == 1 and body["pages"] == 1
    user = next(u for u in body["users"] if u["id"] == a.id)
    for field in ("id", "username", "email", "display_name", "roles", "is_active",
                  "banned_until", "ban_reason", "last_login", "login_count", "is_banned"):
        assert field in user, field
    assert user["email"] == "anna@zoo.example" and user["login_count"] == 0
    assert user["last_login"] is None and user["banned_until"] is None
    # username, display name and email, case-insensitively
    assert [u["id"] for u in listed(root, search="ZEBRA")["users"]] == [a.id]
    assert [u["id"] for u in listed(root, search="Mail.Example")["users"]] == [c.id]
    # sorting and paging
    names = [u["username"] for u in listed(root, search="lst_", sort="username",
                                           order="desc")["users"]]
    assert names == ["lst_carl", "lst_bert", "lst_anna"]
    created = [u["id"] for u in listed(root, search="lst_", sort="created_at")["users"]]
    assert created == [a.id, b.id, c.id]
    page2 = listed(root, search="lst_", sort="username", limit=2, page=2)
    assert page2["total"] == 3 and page2["pages"] == 2
    assert [u["username"] for u in page2["users"]] == ["lst_carl"]
    signed_in(srv, "lst_bert")
    by_login = listed(root, search="lst_", sort="last_login", order="desc")["users"]
    assert by_login[0]["id"] == b.id and by_login[0]["login_count"] == 1
    # role and status
    assert [u["username"] for u in listed(root, role="admin")["users"]] == ["root"]
    assert root.id not in [u["id"] for u in listed(root, role="user", limit=100)["users"]]
    root.ok("POST", "/admin/users/%s/ban" % b.id, {"reason": "noise"})
    banned = listed(root, status="banned", search="lst_")["users"]
    assert [u["id"] for u in banned] == [b.id] and banned[0]["ban_reason"] == "noise"
    assert b.id not in [u["id"] for u in listed(root, status="active", search="lst_")["users"]]
    root.ok("DELETE", "/admin/users/" + c.id, status=204)
    assert c.id not in [u["id"] for u in listed(root, search="lst_")["users"]]
    assert c.id in [u["id"] for u in listed(root, search="lst_", include_inactive="true")["users"]]
    gone = listed(root, status="deactivated")["users"]
    assert [u["id"] for u in gone] == [c.id] and gone[0]["is_deleted"] is True


@pytest.mark.parametrize("param,value", [
    ("status", "gone"), ("role", "owner"), ("include_inactive", "yes"), ("sort", "email"),
    ("order", "up"), ("page", "0"), ("limit", "101"), ("search", "x" * 101)])
def test_list_refuses_bad_query_values(srv, root, param, value):
    r = root.get("/admin/users", **{param: value})
    assert_error(r, 422, "VALIDATION_ERROR")
    assert r.json()["error"]["details"]["field"] == param


def test_non_admins_are_refused_everywhere_and_nothing_changes(srv, root):
    user = register(srv, "plain_pat")
    other = register(srv, "plain_quin")
    key = new_key(user)["key"]
    calls = [("GET", "/admin/users", None), ("GET", "/admin/users/" + other.id, None),
             ("POST", "/admin/users/%s/ban" % other.id, {}),
             ("POST", "/admin/users/%s/unban" % other.id, {}),
             ("PUT", "/admin/users/%s/roles" % user.id, {"roles": ["user", "admin"]}),
             ("DELETE", "/admin/users/" + other.id, None)]
    for method, path, body in calls:
        assert_error(user.call(method, path, body), 403, "INSUFFICIENT_PERMISSIONS")
        r = requests.request(method, srv.url(API + path), json=body, timeout=30,
                             headers={"X-API-Key": key})
        assert_error(r, 403, "INSUFFICIENT_PERMISSIONS")
        assert_error(requests.request(method, srv.url(API + path), json=body, timeout=30),
                     401, "AUTHENTICATION_REQUIRED")
    view = admin_view(root, other.id)
    assert view["is_active"] and not view["is_banned"]
    assert admin_view(root, user.id)["roles"] == ["user"]


# ---- GET /admin/users/{id} --------------------------------------------------------

def test_one_account_with_sessions_keys_and_message_count(srv, root):
    who = register(srv, "one_olga")
    second = signed_in(srv, "one_olga")
    revoked = signed_in(srv, "one_olga")
    revoked.ok("POST", "/auth/logout", {}, 204)
    key = new_key(who, ["read"])
    channel = who.ok("POST", "/channels", {"name": "olga-room"}, 201)
    posted = [who.ok("POST", "/channels/%s/messages" % channel["id"], {"content": "m%d" % i}, 201)
              for i in range(3)]
    who.ok("DELETE", "/messages/" + posted[0]["id"], status=204)
    view = admin_view(root, who.id)
    assert view["username"] == "one_olga" and view["email"] == "one_olga@example.com"
    assert view["message_count"] == 2
    assert view["login_count"] == 2 and view["last_login"]
    sessions = {s["id"] for s in view["sessions"]}
    assert len(sessions) == 2  # registration's and the second login's; not the ended one
    for s in view["sessions"]:
        assert set(s) == {"id", "created_at", "expires_at"}
    assert second.pair["access_token"] != who.token
    assert len(view["api_keys"]) == 1
    k = view["api_keys"][0]
    assert set(k) == {"id", "name", "permissions", "created_at", "expires_at"}
    assert k["id"] == key["id"] and k["permissions"] == ["read"] and k["expires_at"] is None
    assert key["key"] not in str(view)
    for path in ("/admin/users/usr_nosuch", "/admin/users/usr_nosuch/ban",
                 "/admin/users/usr_nosuch/unban"):
        method = "GET" if path.count("/") == 3 else "POST"
        assert_error(root.call(method, path, {} if method == "POST" else None), 404,
                     "RESOURCE_NOT_FOUND")
    assert_error(root.put("/admin/users/usr_nosuch/roles", {"roles": ["user"]}), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(root.delete("/admin/users/usr_nosuch"), 404, "RESOURCE_NOT_FOUND")


# ---- bans -------------------------------------------------------------------------

def test_a_ban_stops_tokens_keys_refreshes_and_logins_and_an_unban_restores_them(srv, root):
    who = register(srv, "ban_bea")
    key = new_key(who)["key"]
    assert who.get("/users/me").status_code == 200
    view = root.ok("POST", "/admin/users/%s/ban" % who.id, {"reason": "spam links"})
    assert view["is_banned"] and view["ban_reason"] == "spam links"
    assert view["banned_until"] is None
    r = who.get("/users/me")
    assert_error(r, 403, "ACCOUNT_BANNED")
    assert r.json()["error"]["details"] == {"until": None}  # until lifted
    assert_error(who.post("/channels", {"name": "bea-room"}), 403, "ACCOUNT_BANNED")
    assert_error(with_key(srv, key), 403, "ACCOUNT_BANNED")
    assert_error(refresh(srv, who.pair), 403, "ACCOUNT_BANNED")
    # only the right password learns of the ban
    assert_error(login(srv, "ban_bea", "wrong password!"), 401, "INVALID_CREDENTIALS")
    r = login(srv, "ban_bea")
    assert_error(r, 403, "ACCOUNT_BANNED")
    assert r.json()["error"]["details"] == {"reason": "spam links"}
    assert admin_view(root, who.id)["login_count"] == 0
    view = root.ok("POST", "/admin/users/%s/unban" % who.id)
    assert not view["is_banned"] and view["ban_reason"] is None
    assert who.get("/users/me").status_code == 200
    assert with_key(srv, key).status_code == 200
    assert refresh(srv, who.pair).status_code == 200
    assert login(srv, "ban_bea").status_code == 200


def test_ban_refuses_bad_input_and_changes_nothing(srv, root):
    who = register(srv, "ban_bad")
    path = "/admin/users/%s/ban" % who.id
    soon = rfc3339(time.time() + 3600)
    for body, field in [({"reason": 7}, "reason"), ({"reason": "x" * 501}, "reason"),
                        ({"until": "tomorrow"}, "until"), ({"until": 5}, "until"),
                        ({"until": "2020-01-01T00:00:00Z"}, "until"),
                        ({"reason": 1, "until": soon}, "reason")]:
        r = root.post(path, body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == field, body
    r = root.call("POST", path, data="[1]", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert_error(root.post("/admin/users/%s/ban" % root.id, {}), 403, "INSUFFICIENT_PERMISSIONS")
    assert who.get("/users/me").status_code == 200
    view = admin_view(root, who.id)
    assert not view["is_banned"] and view["ban_reason"] is None
    assert root.get("/users/me").status_code == 200


def test_another_admin_may_be_banned(srv, root):
    other = register(srv, "ban_admin")
    root.ok("PUT", "/admin/users/%s/roles" % other.id, {"roles": ["user", "admin"]})
    root.ok("POST", "/admin/users/%s/ban" % other.id, {})
    assert_error(other.get("/admin/users"), 403, "ACCOUNT_BANNED")
    root.ok("POST", "/admin/users/%s/unban" % other.id)
    assert other.get("/admin/users").status_code == 200
    root.ok("PUT", "/admin/users/%s/roles" % other.id, {"roles": ["user"]})


def test_a_ban_closes_live_websockets_and_event_streams(srv, root):
    who = register(srv, "ban_live")
    live = Live(srv, who.token)
    stream = Stream(srv, who.token)
    try:
        stream.wait("ready")
        root.ok("POST", "/admin/users/%s/ban" % who.id, {"reason": "raid"})
        live.wait(lambda f: f["type"] == "error" and
                  (f.get("data") or f).get("code") == "ACCOUNT_BANNED")
        assert live.closed_with() == (4001, "account banned")
        _, data = stream.wait("error")
        assert data["code"] == "ACCOUNT_BANNED"
    finally:
        live.close()
        stream.close()
    root.ok("POST", "/admin/users/%s/unban" % who.id)
    again = Live(srv, who.token)
    again.close()


def test_a_timed_ban_ends_by_itself(srv, root):
    who = register(srv, "ban_timed")
    until = time.time() + 4
    view = root.ok("POST", "/admin/users/%s/ban" % who.id, {"until": rfc3339(until)})
    assert view["is_banned"] and view["banned_until"] == rfc3339(until)
    # Answers that came back before `until` must be refusals naming the end
    # (a machine slow enough to pass it first has nothing to check).
    r = login(srv, "ban_timed")
    if time.time() < until:
        assert_error(r, 403, "ACCOUNT_BANNED")
        assert r.json()["error"]["details"]["until"] == rfc3339(until)
    r = who.get("/users/me")
    if time.time() < until:
        assert_error(r, 403, "ACCOUNT_BANNED")
        assert r.json()["error"]["details"] == {"until": rfc3339(until)}
    wait_past(until)
    wait_until(lambda: who.get("/users/me").status_code == 200, what="the ban to end")
    assert login(srv, "ban_timed").status_code == 200
    view = admin_view(root, who.id)
    assert not view["is_banned"] and view["banned_until"] is None
    assert who.id in [u["id"] for u in listed(root, status="active", search="ban_timed")["users"]]


# ---- roles ------------------------------------------------------------------------

def test_roles_make_and_unmake_admins(srv, root):
    who = register(srv, "role_rita")
    assert_error(who.get("/admin/users"), 403, "INSUFFICIENT_PERMISSIONS")
    view = root.ok("PUT", "/admin/users/%s/roles" % who.id, {"roles": ["user", "admin"]})
    assert view["roles"] == ["user", "admin"]
    assert who.get("/admin/users").status_code == 200
    assert root.id in [u["id"] for u in listed(root, role="admin")["users"]]
    # with two admins, one may step down
    view = who.ok("PUT", "/admin/users/%s/roles" % who.id, {"roles": ["user"]})
    assert view["roles"] == ["user"]
    assert_error(who.get("/admin/users"), 403, "INSUFFICIENT_PERMISSIONS")


def test_roles_refuse_bad_values_and_the_last_admin_keeps_the_role(srv, root):
    who = register(srv, "role_bad")
    path = "/admin/users/%s/roles" % who.id
    for body in [{}, {"roles": "admin"}, {"roles": []}, {"roles": ["admin"]},
                 {"roles": ["user", "owner"]}, {"roles": ["user", "user"]}, {"roles": [1]}]:
        r = root.put(path, body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert r.json()["error"]["details"]["field"] == "roles", body
    assert admin_view(root, who.id)["roles"] == ["user"]
    admins = [u["id"] for u in listed(root, role="admin")["users"]]
    assert admins == [root.id]
    assert_error(root.put("/admin/users/%s/roles" % root.id, {"roles": ["user"]}), 409,
                 "CONFLICT")
    assert admin_view(root, root.id)["roles"] == ["user", "admin"]
    assert root.ok("PUT", "/admin/users/%s/roles" % root.id, {"roles": ["user", "admin"]})


# ---- deletion ---------------------------------------------------------------------

def test_delete_deactivates_frees_the_name_and_keeps_the_messages(srv, root):
    who = register(srv, "del_dora", email="dora@del.example")
    key = new_key(who)["key"]
    reader = register(srv, "del_reader")
    channel = who.ok("POST", "/channels", {"name": "dora-room"}, 201)
    msg = who.ok("POST", "/channels/%s/messages" % channel["id"], {"content": "still here"}, 201)
    live = Live(srv, who.token)
    try:
        root.ok("DELETE", "/admin/users/" + who.id, status=204)
        assert live.closed_with()[0] == 4001
    finally:
        live.close()
    assert_error(who.get("/users/me"), 401, "TOKEN_INVALID")
    assert_error(with_key(srv, key), 401, "TOKEN_INVALID")
    assert_error(refresh(srv, who.pair), 401, "TOKEN_INVALID")
    assert_error(login(srv, "del_dora"), 401, "INVALID_CREDENTIALS")
    view = admin_view(root, who.id)
    assert view["is_deleted"] and not view["is_active"] and view["sessions"] == []
    # the message stays, from a deleted user
    got = reader.ok("GET", "/messages/" + msg["id"])
    assert got["content"] == "still here"
    assert got["sender"] == {"id": who.id, "username": None, "display_name": "Deleted user",
                             "avatar_url": None, "is_deleted": True}
    # the username and the email are free
    again = register(srv, "DEL_dora", email="dora@del.example")
    assert again.id != who.id
    assert login(srv, "del_dora").json()["user"]["id"] == again.id
    assert_error(root.delete("/admin/users/" + who.id), 409, "CONFLICT")
    assert_error(root.post("/admin/users/%s/ban" % who.id, {}), 409, "CONFLICT")
    assert_error(root.delete("/admin/users/" + root.id), 403, "INSUFFICIENT_PERMISSIONS")
    assert root.get("/users/me").status_code == 200


# ---- logins -----------------------------------------------------------------------

def test_logins_are_counted_and_failures_are_not(srv, root):
    register(srv, "cnt_carla")
    assert login(srv, "cnt_carla", "not the password").status_code == 401
    first = signed_in(srv, "cnt_carla")
    view = admin_view(root, first.id)
    assert view["login_count"] == 1 and view["last_login"]
    seen = view["last_login"]
    signed_in(srv, "cnt_carla")
    view = admin_view(root, first.id)
    assert view["login_count"] == 2 and view["last_login"] >= seen


# ---- durability -------------------------------------------------------------------

def test_moderation_survives_a_clean_restart_and_a_sigkill(start_server, tmp_path):
    data = tmp_path / "data"
    server = start_server(data_dir=data)
    admin = register(server, "boss")
    banned = register(server, "dur_banned")
    timed = register(server, "dur_timed")
    promoted = register(server, "dur_promoted")
    deleted = register(server, "dur_deleted")
    late = register(server, "dur_late")
    far = rfc3339(time.time() + 86400)
    admin.ok("POST", "/admin/users/%s/ban" % banned.id, {"reason": "for good"})
    admin.ok("POST", "/admin/users/%s/ban" % timed.id, {"until": far})
    admin.ok("PUT", "/admin/users/%s/roles" % promoted.id, {"roles": ["user", "admin"]})
    admin.ok("DELETE", "/admin/users/" + deleted.id, status=204)
    signed_in(server, "dur_late")

    def check(srv, boss):
        v = admin_view(boss, banned.id)
        assert v["is_banned"] and v["ban_reason"] == "for good" and v["banned_until"] is None
        v = admin_view(boss, timed.id)
        assert v["is_banned"] and v["banned_until"] == far
        assert admin_view(boss, promoted.id)["roles"] == ["user", "admin"]
        v = admin_view(boss, deleted.id)
        assert v["is_deleted"] and not v["is_active"]
        assert admin_view(boss, late.id)["login_count"] == 1
        assert_error(banned.on(srv).get("/users/me"), 403, "ACCOUNT_BANNED")
        assert_error(login(srv, "dur_timed"), 403, "ACCOUNT_BANNED")
        assert_error(login(srv, "dur_deleted"), 401, "INVALID_CREDENTIALS")

    assert server.stop() == 0
    server = start_server(data_dir=data)
    boss = admin.on(server)
    check(server, boss)
    # acknowledged, then SIGKILL: the ban is there after
    boss.ok("POST", "/admin/users/%s/ban" % late.id, {"reason": "last words"})
    server.proc.kill()
    server.proc.wait()
    server = start_server(data_dir=data)
    boss = admin.on(server)
    check(server, boss)
    v = admin_view(boss, late.id)
    assert v["is_banned"] and v["ban_reason"] == "last words"
    assert_error(late.on(server).get("/users/me"), 403, "ACCOUNT_BANNED")
