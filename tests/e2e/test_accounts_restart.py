"""Accounts survive restarts exactly: after a clean stop (SIGTERM, snapshot)
and after SIGKILL (recovery from the log), on the same data directory,
accounts, logins (refresh tokens), revocations (logout, reused refresh
token, change-password), profile changes and API keys are as they were, and
the JWT secret persisted in the data directory still verifies the access
tokens issued before."""
import os
import stat

import pytest
import requests

from conftest import assert_error
from client import API, PASSWORD, register

NEW_PASSWORD = "a brand new password"


def post(server, path, body, headers=None):
    return requests.post(server.url(API + path), json=body, headers=headers)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def login(server, username, password=PASSWORD):
    return post(server, "/auth/login", {"username": username, "password": password})


def me(server, headers):
    return requests.get(server.url(API + "/users/me"), headers=headers)


def build_state(server):
    """Makes one of everything that must survive; returns what to check."""
    s = {}
    s["admin"] = register(server, "admin").pair
    s["alice"] = register(server, "alice").pair
    s["bob"] = register(server, "bob").pair
    assert requests.put(server.url(API + "/users/me"), headers=bearer(s["alice"]["access_token"]),
                        json={"display_name": "Alice A", "bio": "persisted",
                              "preferences": {"theme": "dark"}}).status_code == 200

    # A live login that has rotated once: its newest refresh token must work
    # after the restart, its spent one must not.
    first = login(server, "alice").json()
    rotated = post(server, "/auth/refresh", {"refresh_token": first["refresh_token"]}).json()
    s["alice_live"] = rotated
    s["alice_spent_refresh"] = first["refresh_token"]

    # A logged-out login.
    gone = login(server, "alice").json()
    assert post(server, "/auth/logout", {}, bearer(gone["access_token"])).status_code == 204
    s["alice_logged_out"] = gone

    # A login revoked by reuse of its spent refresh token.
    stolen = login(server, "alice").json()
    newer = post(server, "/auth/refresh", {"refresh_token": stolen["refresh_token"]}).json()
    assert post(server, "/auth/refresh",
                {"refresh_token": stolen["refresh_token"]}).status_code == 401
    s["alice_reused"] = newer

    # bob changes his password from one login; his other login is revoked.
    other = login(server, "bob").json()
    r = requests.put(server.url(API + "/auth/change-password"),
                     headers=bearer(s["bob"]["access_token"]),
                     json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 204
    s["bob_other"] = other

    # API keys: one live, one revoked, one read-only.
    h = bearer(s["alice"]["access_token"])
    live = post(server, "/auth/api-keys", {"name": "live", "permissions": ["read", "write"]},
                h).json()
    dead = post(server, "/auth/api-keys", {"name": "dead", "permissions": ["read"]}, h).json()
    ro = post(server, "/auth/api-keys", {"name": "ro", "permissions": ["read"]}, h).json()
    assert requests.delete(server.url(API + "/auth/api-keys/" + dead["id"]),
                           headers=h).status_code == 204
    s["keys"] = {"live": live, "dead": dead, "ro": ro}
    s["users"] = requests.get(server.url(API + "/users"), headers=h).json()
    return s


def check_state(server, s, added=()):
    # Accounts, with their roles and profiles, and nothing more.
    h = bearer(s["alice"]["access_token"])  # issued before the restart
    r = me(server, h)
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Alice A" and r.json()["bio"] == "persisted"
    assert r.json()["preferences"] == {"theme": "dark"}
    users = requests.get(server.url(API + "/users"), headers=h).json()
    assert users["total"] == s["users"]["total"] + len(added)
    # (the caller's own entry has its last_login, which the logins below move)
    def kept(listing):
        return [{k: v for k, v in u.items() if k != "last_login"} for u in listing]
    assert kept(u for u in users["users"] if u["username"] not in added) == kept(
        s["users"]["users"])
    assert me(server, bearer(s["admin"]["access_token"])).json()["roles"] == ["user", "admin"]

    # Passwords, including bob's change.
    assert login(server, "alice").status_code == 200
    assert_error(login(server, "bob"), 401, "INVALID_CREDENTIALS")
    assert login(server, "bob", NEW_PASSWORD).status_code == 200

    # Revocations stay.
    assert_error(me(server, bearer(s["alice_logged_out"]["access_token"])), 401,
                 "TOKEN_INVALID")
    assert_error(post(server, "/auth/refresh",
                      {"refresh_token": s["alice_logged_out"]["refresh_token"]}), 401,
                 "TOKEN_INVALID")
    assert_error(me(server, bearer(s["alice_reused"]["access_token"])), 401, "TOKEN_INVALID")
    assert_error(post(server, "/auth/refresh",
                      {"refresh_token": s["alice_reused"]["refresh_token"]}), 401,
                 "TOKEN_INVALID")
    assert_error(me(server, bearer(s["bob_other"]["access_token"])), 401, "TOKEN_INVALID")
    assert me(server, bearer(s["bob"]["access_token"])).status_code == 200

    # API keys.
    keys = s["keys"]
    assert me(server, {"X-API-Key": keys["live"]["key"]}).status_code == 200
    assert_error(me(server, {"X-API-Key": keys["dead"]["key"]}), 401, "TOKEN_INVALID")
    assert me(server, {"X-API-Key": keys["ro"]["key"]}).status_code == 200
    assert_error(requests.put(server.url(API + "/users/me"),
                              headers={"X-API-Key": keys["ro"]["key"]}, json={"bio": "x"}),
                 403, "INSUFFICIENT_PERMISSIONS")
    listed = requests.get(server.url(API + "/auth/api-keys"), headers=h).json()["api_keys"]
    assert sorted(k["name"] for k in listed) == ["live", "ro"]


def rotate_live_login(server, s):
    """The live login refreshes (its spent token is refused and, being a
    reuse, would revoke it: check that last)."""
    r = post(server, "/auth/refresh", {"refresh_token": s["alice_live"]["refresh_token"]})
    assert r.status_code == 200, r.text
    newer = r.json()
    assert me(server, bearer(s["alice_live"]["access_token"])).status_code == 200
    assert me(server, bearer(newer["access_token"])).status_code == 200
    assert_error(post(server, "/auth/refresh", {"refresh_token": s["alice_spent_refresh"]}),
                 401, "TOKEN_INVALID")
    assert_error(me(server, bearer(newer["access_token"])), 401, "TOKEN_INVALID")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_accounts_survive_a_restart(start_server, tmp_path, how):
    data = tmp_path / "data"
    first = start_server(data_dir=data)
    s = build_state(first)
    if how == "sigterm":
        assert first.stop() == 0
    else:
        first.proc.kill()
        first.proc.wait()
    # The generated secret is in the data directory, private.
    mode = os.stat(data / "secret.key").st_mode
    assert stat.S_IMODE(mode) & 0o077 == 0

    second = start_server(data_dir=data)
    check_state(second, s)
    # And once more, the state made by the second run included.
    extra = register(second, "carol").pair
    second.proc.kill()
    second.proc.wait()
    third = start_server(data_dir=data)
    check_state(third, s, added=("carol",))
    assert me(third, bearer(extra["access_token"])).json()["username"] == "carol"
    rotate_live_login(third, s)


def test_env_secret_wins_and_tokens_survive_with_it(start_server, tmp_path):
    secret = {"PARLEY_JWT_SECRET": "restart-test-secret-0123456789abcdef-xyz"}
    data = tmp_path / "data"
    first = start_server(data_dir=data, env=secret)
    pair = register(first, "dora").pair
    first.proc.kill()
    first.proc.wait()
    assert not (data / "secret.key").exists()
    second = start_server(data_dir=data, env=secret)
    assert me(second, bearer(pair["access_token"])).status_code == 200
    assert post(second, "/auth/refresh",
                {"refresh_token": pair["refresh_token"]}).status_code == 200
    # Another secret: the old tokens are simply not ours any more.
    assert second.stop() == 0
    third = start_server(data_dir=data, env={"PARLEY_JWT_SECRET": "x" * 40})
    assert_error(me(third, bearer(pair["access_token"])), 401, "TOKEN_INVALID")
    assert login(third, "dora").status_code == 200
