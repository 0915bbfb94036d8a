"""/api/v1/users end to end (docs/api.md, "Users"): the caller's own
profile and its updates, other users' public profiles (email only to self and
admins, preferences only to self), lookup by username, search with
pagination, and account creation by an admin. Every refused request is
checked for its status and code and for having changed nothing."""
import re

import requests

from conftest import assert_error
from client import API, PASSWORD, register

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PUBLIC_FIELDS = {"id", "username", "display_name", "bio", "avatar_url", "roles", "status",
                 "last_seen", "created_at", "is_active"}


def bearer(pair_or_token):
    tok = pair_or_token if isinstance(pair_or_token, str) else pair_or_token["access_token"]
    return {"Authorization": "Bearer " + tok}


def get(server, path, who, **params):
    return requests.get(server.url(API + path), headers=bearer(who), params=params)


def put_me(server, who, body):
    return requests.put(server.url(API + "/users/me"), headers=bearer(who), json=body)


def login_status(server, name, password=PASSWORD):
    return requests.post(server.url(API + "/auth/login"),
                         json={"username_or_email": name, "password": password}).status_code


# ---- /me -----------------------------------------------------------------------

def test_get_me_is_the_full_profile(server):
    pair = register(server, "alice", display_name="Alice").pair
    r = get(server, "/users/me", pair)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    me = r.json()
    assert set(me) == PUBLIC_FIELDS | {"email", "preferences", "mfa_enabled", "last_login",
                                       "permissions"}
    assert me["mfa_enabled"] is False
    assert me["last_login"] is None  # registered, never logged in
    assert "users.manage" in me["permissions"]  # the first account is an admin
    assert me["id"] == pair["user"]["id"]
    assert me["username"] == "alice" and me["email"] == "alice@example.com"
    assert me["display_name"] == "Alice"
    assert me["preferences"] == {}
    assert me["roles"] == ["user", "admin"] and me["is_active"] is True
    assert me["status"] in ("online", "offline")
    assert TIME_RE.match(me["created_at"])
    assert me["bio"] is None and me["avatar_url"] is None


def test_put_me_updates_the_profile(server):
    pair = register(server, "bob").pair
    r = put_me(server, pair, {"display_name": "Bobby", "bio": "line one\nline two",
                              "avatar_url": "https://cdn.example.com/bob.png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["display_name"] == "Bobby" and body["bio"] == "line one\nline two"
    assert body["avatar_url"] == "https://cdn.example.com/bob.png"
    assert body["email"] == "bob@example.com" and body["preferences"] == {}
    assert get(server, "/users/me", pair).json() == body
    # Fields not sent are kept; "" clears. (What else avatar_url may be, an
    # https URL or an image of one's own: tests/e2e/test_hardening_rules.py.)
    r = put_me(server, pair, {"avatar_url": "https://example.com/a.png"})
    assert r.json()["display_name"] == "Bobby" and r.json()["bio"] == "line one\nline two"
    assert r.json()["avatar_url"] == "https://example.com/a.png"
    assert put_me(server, pair, {"avatar_url": "http://example.com/a.png"}).status_code == 422
    assert put_me(server, pair, {"avatar_url": "/api/v1/files/fil_123/download"}).status_code == 422
    r = put_me(server, pair, {"avatar_url": "", "bio": ""})
    assert r.json()["avatar_url"] is None and r.json()["bio"] is None
    # An empty PUT changes nothing.
    before = get(server, "/users/me", pair).json()
    assert put_me(server, pair, {}).json() == before


def test_put_me_refuses_bad_values_and_changes_nothing(server):
    pair = register(server, "carol").pair
    assert put_me(server, pair, {"display_name": "Carol", "bio": "hi",
                                 "avatar_url": "https://example.com/c.png"}).status_code == 200
    before = get(server, "/users/me", pair).json()
    cases = [
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "JavaScript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "data:image/png;base64,AAAA"}, "avatar_url"),
        ({"avatar_url": "ftp://example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "//evil.example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "https://example.com/" + "a" * 3000}, "avatar_url"),
        ({"avatar_url": 5}, "avatar_url"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "d" * 65}, "display_name"),
        ({"display_name": "bad\u0007bell"}, "display_name"),
        ({"display_name": 5}, "display_name"),
        ({"bio": "b" * 501}, "bio"),
        ({"bio": ["x"]}, "bio"),
        ({"email": "not-an-email"}, "email"),
        ({"email": 5}, "email"),
        ({"preferences": "dark"}, "preferences"),
        ({"preferences": ["dark"]}, "preferences"),
        ({"preferences": {"blob": "x" * 5000}}, "preferences"),
        # One bad field spoils the whole update: the good one is not applied.
        ({"display_name": "Changed", "avatar_url": "javascript:x"}, "avatar_url"),
        ({"bio": "changed", "email": "nope"}, "email"),
    ]
    for body, field in cases:
        err = assert_error(put_me(server, pair, body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, (body, err)
    assert get(server, "/users/me", pair).json() == before
    assert_error(requests.put(server.url(API + "/users/me"), json={"bio": "x"}), 401,
                 "AUTHENTICATION_REQUIRED")


def test_put_me_email_change_and_conflict(server):
    a = register(server, "dave").pair
    b = register(server, "erin").pair
    r = put_me(server, a, {"email": "Dave.New@Example.com"})
    assert r.status_code == 200 and r.json()["email"] == "Dave.New@Example.com"
    # The new address logs in, the old one no longer does (and is free).
    assert login_status(server, "dave.new@example.com") == 200
    assert login_status(server, "dave@example.com") == 401
    # Taken by another user, in any case: 409, nothing changed.
    for email in ("erin@example.com", "ERIN@EXAMPLE.COM"):
        err = assert_error(put_me(server, a, {"email": email, "bio": "moved"}), 409, "CONFLICT")
        assert err["details"]["field"] == "email"
    me = get(server, "/users/me", a).json()
    assert me["email"] == "Dave.New@Example.com" and me["bio"] is None
    assert login_status(server, "erin@example.com") == 200
    # Changing the case of one's own address is not a conflict.
    assert put_me(server, a, {"email": "dave.new@example.com"}).status_code == 200
    # The freed address can be taken by someone else.
    assert put_me(server, b, {"email": "dave@example.com"}).status_code == 200


def test_put_me_merges_preferences(server):
    pair = register(server, "frank").pair
    r = put_me(server, pair, {"preferences": {"theme": "dark"}})
    assert r.status_code == 200 and r.json()["preferences"] == {"theme": "dark"}
    r = put_me(server, pair, {"preferences": {"language": "de",
                                              "notifications": {"email": False}}})
    assert r.json()["preferences"] == {"theme": "dark", "language": "de",
                                       "notifications": {"email": False}}
    r = put_me(server, pair, {"preferences": {"theme": "light"}, "display_name": "F"})
    assert r.json()["preferences"] == {"theme": "light", "language": "de",
                                       "notifications": {"email": False}}
    assert get(server, "/users/me", pair).json()["preferences"] == r.json()["preferences"]
    # Omitted or null preferences keep them.
    assert put_me(server, pair, {"bio": "x"}).json()["preferences"]["theme"] == "light"
    assert put_me(server, pair, {"preferences": None}).json()["preferences"]["theme"] == "light"


# ---- other users -----------------------------------------------------------------

def test_profiles_hide_email_and_preferences_from_others(server):
    admin = register(server, "admin").pair
    alice = register(server, "alice").pair
    bob = register(server, "bob").pair
    assert put_me(server, alice, {"preferences": {"theme": "dark"}, "bio": "Alice's bio"}
                  ).status_code == 200
    aid = alice["user"]["id"]

    r = get(server, "/users/" + aid, bob)
    assert r.status_code == 200
    public = r.json()
    assert set(public) == PUBLIC_FIELDS
    assert public["username"] == "alice" and public["bio"] == "Alice's bio"
    assert "alice@example.com" not in r.text and "dark" not in r.text

    r = get(server, "/users/" + aid, admin)
    assert set(r.json()) == PUBLIC_FIELDS | {"email"}
    assert r.json()["email"] == "alice@example.com"
    assert "dark" not in r.text

    r = get(server, "/users/" + aid, alice)
    assert r.json()["email"] == "alice@example.com"
    assert r.json()["preferences"] == {"theme": "dark"}

    for path in ("/users/usr_doesnotexist", "/users/" + aid + "x", "/users/%20"):
        assert_error(get(server, path, bob), 404, "RESOURCE_NOT_FOUND")
    assert_error(requests.get(server.url(API + "/users/" + aid)), 401,
                 "AUTHENTICATION_REQUIRED")


def test_by_username_is_case_insensitive(server):
    register(server, "admin").pair
    carol = register(server, "Carol_C").pair
    dave = register(server, "dave").pair
    for name in ("Carol_C", "carol_c", "CAROL_C"):
        r = get(server, "/users/by-username/" + name, dave)
        assert r.status_code == 200, name
        assert r.json()["id"] == carol["user"]["id"] and r.json()["username"] == "Carol_C"
        assert "email" not in r.json() and "preferences" not in r.json()
    assert get(server, "/users/by-username/carol_c", carol).json()["email"] == \
        "carol_c@example.com"
    # Unknown names, invalid names and email addresses are not usernames.
    for name in ("nobody", "carol", "ab", "carol_c@example.com", "x" * 40, "carol%20c"):
        assert_error(get(server, "/users/by-username/" + name, dave), 404,
                     "RESOURCE_NOT_FOUND")


def test_search_with_pages(server):
    admin = register(server, "admin").pair
    names = ["sam1", "sam2", "Sam3", "samuel", "tom"]
    for n in names:
        register(server, n, display_name="Sammy" if n == "tom" else None).pair
    viewer = register(server, "viewer").pair

    r = get(server, "/users", viewer)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"users", "total", "page", "pages"}
    assert body["total"] == 7 and body["page"] == 1 and body["pages"] == 1
    assert [u["username"] for u in body["users"]] == sorted(
        ["admin", "viewer"] + names, key=str.lower)
    # Others' emails are hidden from a non-admin, shown to an admin.
    others = [u for u in body["users"] if u["username"] != "viewer"]
    assert all("email" not in u and "preferences" not in u for u in others)
    assert all("email" in u for u in get(server, "/users", admin).json()["users"])

    # "sam" matches usernames case-insensitively, and tom's display name.
    r = get(server, "/users", viewer, search="SAM", limit=2)
    body = r.json()
    assert body["total"] == 5 and body["pages"] == 3 and body["page"] == 1
    seen = [u["username"] for u in body["users"]]
    for page in (2, 3):
        body = get(server, "/users", viewer, search="sam", limit=2, page=page).json()
        assert body["page"] == page and body["total"] == 5
        seen += [u["username"] for u in body["users"]]
    assert sorted(seen) == sorted(["sam1", "sam2", "Sam3", "samuel", "tom"])
    assert len(seen) == 5
    # Past the end: an empty page, same totals.
    body = get(server, "/users", viewer, search="sam", limit=2, page=4).json()
    assert body["users"] == [] and body["total"] == 5 and body["pages"] == 3
    body = get(server, "/users", viewer, search="zzz").json()
    assert body["users"] == [] and body["total"] == 0
    assert get(server, "/users", viewer, limit=100).json()["total"] == 7


def test_search_follows_renames_display_names_and_deletions(server):
    """GET /users?search= reads the store's name index (P15): it finds parts
    anywhere in a username or a display name, case-insensitively, never
    across the two, follows a rename, a new display name and a deletion at
    once, and answers bytes outside ASCII and strings nobody has."""
    admin = register(server, "admin").pair
    zoe = register(server, "zoe_k", display_name="Zoë Kowalska")
    other = register(server, "otto", display_name="Otto Example")
    viewer = register(server, "viewer").pair

    def names(q):
        body = get(server, "/users", viewer, search=q, limit=100).json()
        assert body["total"] == len(body["users"])
        return sorted(u["username"] for u in body["users"])

    assert names("WALS") == ["zoe_k"]
    assert names("zoë") == ["zoe_k"]
    assert names("ë k") == ["zoe_k"]
    assert names("e_kzo") == [] and names("kotto") == []  # never across the two names
    assert names("t") == ["otto"]  # one byte: every name is read
    assert names("o") == ["otto", "zoe_k"]
    assert names("☃") == [] and names("%") == [] and names("x" * 100) == []
    r = put_me(server, zoe.pair, {"username": "zofia", "display_name": "Zofia K"})
    assert r.status_code == 200, r.text
    assert names("zoe") == [] and names("walska") == []
    assert names("zof") == ["zofia"] and names("IA K") == ["zofia"]
    r = requests.delete(server.url(API + "/admin/users/" + other.id), headers=bearer(admin))
    assert r.status_code == 204, r.text
    assert names("otto") == [] and names("example") == []


def test_search_validation(server):
    pair = register(server, "admin").pair
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                          ({"limit": "abc"}, "limit"), ({"limit": "-1"}, "limit"),
                          ({"limit": ""}, "limit"), ({"limit": "5x"}, "limit"),
                          ({"page": "0"}, "page"), ({"page": "abc"}, "page"),
                          ({"page": "1.5"}, "page"), ({"search": "s" * 101}, "search")):
        err = assert_error(get(server, "/users", pair, **params), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, params


# ---- POST /users (admin) -----------------------------------------------------------

def test_admin_creates_users(server):
    admin = register(server, "admin").pair
    user = register(server, "plain").pair
    body = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD,
            "display_name": "New Bie", "roles": ["user"]}

    err = assert_error(requests.post(server.url(API + "/users"), headers=bearer(user),
                                     json=body), 403, "INSUFFICIENT_PERMISSIONS")
    assert err["message"]
    assert_error(requests.post(server.url(API + "/users"), json=body), 401,
                 "AUTHENTICATION_REQUIRED")
    assert login_status(server, "newbie") == 401  # the refused create made nothing

    for roles in (["superuser"], "admin", [5], ["user", None], {"admin": True}):
        err = assert_error(requests.post(server.url(API + "/users"), headers=bearer(admin),
                                         json=dict(body, roles=roles)), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "roles"
    for change, field in (({"username": "x"}, "username"), ({"email": "bad"}, "email"),
                          ({"password": "short"}, "password")):
        err = assert_error(requests.post(server.url(API + "/users"), headers=bearer(admin),
                                         json=dict(body, **change)), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field
    assert get(server, "/users", admin).json()["total"] == 2

    r = requests.post(server.url(API + "/users"), headers=bearer(admin), json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["username"] == "newbie" and created["roles"] == ["user"]
    assert created["email"] == "newbie@example.com" and created["display_name"] == "New Bie"
    assert login_status(server, "newbie") == 200

    r = requests.post(server.url(API + "/users"), headers=bearer(admin),
                      json=dict(body, username="boss", email="boss@example.com",
                                roles=["user", "admin"]))
    assert r.status_code == 201 and r.json()["roles"] == ["user", "admin"]
    # Duplicates are 409 as for registration.
    err = assert_error(requests.post(server.url(API + "/users"), headers=bearer(admin),
                                     json=dict(body, username="NEWBIE",
                                               email="other@example.com")), 409, "CONFLICT")
    assert err["details"]["field"] == "username"
    # The new admin can create users; the creator's own login is unaffected.
    boss = requests.post(server.url(API + "/auth/login"),
                         json={"username": "boss", "password": PASSWORD}).json()
    r = requests.post(server.url(API + "/users"), headers=bearer(boss),
                      json=dict(body, username="third", email="third@example.com",
                                roles=None))
    assert r.status_code == 201 and r.json()["roles"] == ["user"]
    assert get(server, "/users/me", admin).status_code == 200


def test_methods_not_allowed_on_users(server):
    pair = register(server, "admin").pair
    uid = pair["user"]["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        r = requests.request(method, server.url(API + "/users/" + uid), headers=bearer(pair),
                             json={"bio": "x"})
        assert_error(r, 405, "METHOD_NOT_ALLOWED")
        assert "GET" in r.headers["Allow"]
    assert_error(requests.delete(server.url(API + "/users/me"), headers=bearer(pair)), 405,
                 "METHOD_NOT_ALLOWED")
    assert get(server, "/users/me", pair).json()["bio"] is None
