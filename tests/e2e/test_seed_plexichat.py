"""The seed walk (issue 17): every curl example of PlexiChat's API reference
(shared/seeds/001, whose paths are Parley's), run against the real binary
with only the ids substituted, and its documented answer's shape checked.

The document is not read here (tests depend on nothing outside the
repository, and its text is not ours to copy): each example is written down
as data, with the section of the document it comes from, its method, path
and query, headers and body as the document writes them, and the shape of the
answer it documents (the fields, not their values). Its placeholders
(channel_123, msg_456, file_123, your-token, plx_your_api_key_here ...) are
the only things replaced, by real ids and tokens of the server.

Where Parley answers otherwise on purpose (docs/api.md, "Differences from the
seed documents"), the example's `differs` says how, and the test asserts
exactly Parley's answer: an expiry already past, cookies only on request,
MFA_REQUIRED in the error object, the real-time event names, what the admin
system status holds, the backup options, the AI endpoints.
"""
import copy
import json

import pytest

import requests
import websocket

from client import API, register
from conftest import assert_error
from realtime_client import Live
from test_mfa import enable_mfa, now_step, totp

ADMIN_NAME, ADMIN_PASSWORD = "admin", "admin123"  # the document's own credentials
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# ---- the examples, as the document writes them ----------------------------
# path: with its query; headers: as written (the token placeholders are
# substituted); body: as written; answer: the documented answer's shape (a
# JSON value whose keys must all be there: dicts recursively, a list's first
# element against every element).

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."

USER_PROFILE = {
    "id": "user_123", "username": "admin", "email": "admin@example.com",
    "display_name": "Administrator", "avatar_url": "https://example.com/avatar.jpg",
    "roles": ["admin"], "permissions": ["system.manage", "users.create"],
    "created_at": "2025-01-01T00:00:00Z", "last_login": "2025-01-15T10:30:00Z",
    "is_active": True,
    # preferences: what the user has set ({} for a new account), see "Differences".
    "preferences": {},
}

TOKEN_PAIR = {"access_token": JWT, "token_type": "bearer", "expires_in": 1800,
              "refresh_token": JWT}

MESSAGE = {
    "id": "msg_123", "channel_id": "channel_123", "user_id": "user_456",
    "content": "Hello, world!", "content_type": "text", "created_at": "2025-01-15T10:30:00Z",
    "updated_at": None, "attachments": [], "mentions": [], "reactions": [],
    "thread_id": None, "reply_to": None, "is_edited": False, "is_deleted": False,
}

FILE = {
    "id": "file_123", "filename": "document.pdf", "original_filename": "document.pdf",
    "size": 1048576, "content_type": "application/pdf",
    "url": "https://example.com/files/file_123/document.pdf",
    "channel_id": "channel_123", "uploaded_by": "user_456",
    "uploaded_at": "2025-01-15T10:30:00Z", "description": "Important document",
    "is_public": False,
}
# Documented, not given by Parley (it makes no thumbnails and runs no virus
# scanner; "Differences from the seed documents").
FILE_NOT_GIVEN = ("thumbnail_url", "virus_scan_status")

EXAMPLES = {
    # Authentication > Authentication Methods > 1. JWT Bearer Tokens
    "login": dict(
        method="POST", path="/auth/login", headers={"Content-Type": "application/json"},
        body={"username": "admin", "password": "admin123"}, status=200, answer=TOKEN_PAIR),
    "me_bearer": dict(
        method="GET", path="/users/me", headers={"Authorization": "Bearer " + JWT},
        status=200, answer=USER_PROFILE),
    # Authentication > 2. API Keys (the document's expires_at is in the past now)
    "api_key_create": dict(
        method="POST", path="/auth/api-keys",
        headers={"Authorization": "Bearer your-jwt-token", "Content-Type": "application/json"},
        body={"name": "My API Key", "permissions": ["read", "write"],
              "expires_at": "2025-12-31T23:59:59Z"},
        status=422, differs="expires_at is past: Parley refuses a key that is already expired"),
    "me_api_key": dict(
        method="GET", path="/users/me", headers={"X-API-Key": "plx_your_api_key_here"},
        status=200, answer=USER_PROFILE),
    # Authentication > 3. Session Cookies
    "login_cookies": dict(
        method="POST", path="/auth/login", headers={"Content-Type": "application/json"},
        body={"username": "admin", "password": "admin123"}, status=200, answer=TOKEN_PAIR,
        differs="no cookie without \"session\": true"),
    # Authentication > Multi-Factor Authentication
    "login_mfa": dict(
        method="POST", path="/auth/login", headers={"Content-Type": "application/json"},
        body={"username": "admin", "password": "admin123", "mfa_code": "123456"}),
    "mfa_verify": dict(
        method="POST", path="/auth/mfa/verify", headers={"Content-Type": "application/json"},
        body={"temp_token": "temp_token_for_mfa", "mfa_code": "123456", "method": "totp"},
        status=200, answer=TOKEN_PAIR),
    # Core Endpoints > Authentication Endpoints
    "login_remember": dict(
        method="POST", path="/auth/login", headers={"Content-Type": "application/json"},
        body={"username": "admin", "password": "admin123", "remember_me": True},
        status=200, answer=TOKEN_PAIR),
    "logout": dict(
        method="POST", path="/auth/logout", headers={"Authorization": "Bearer your-token"},
        status=204),
    "refresh": dict(
        method="POST", path="/auth/refresh", headers={"Content-Type": "application/json"},
        body={"refresh_token": "your-refresh-token"}, status=200, answer=TOKEN_PAIR),
    # Core Endpoints > User Management
    "me": dict(
        method="GET", path="/users/me", headers={"Authorization": "Bearer your-token"},
        status=200, answer=USER_PROFILE),
    "me_update": dict(
        method="PUT", path="/users/me",
        headers={"Authorization": "Bearer your-token", "Content-Type": "application/json"},
        body={"display_name": "New Display Name", "email": "newemail@example.com",
              "preferences": {"theme": "light", "language": "es"}},
        status=200, answer=dict(USER_PROFILE, preferences={"theme": "light", "language": "es"})),
    "users_list": dict(
        method="GET", path="/users?page=1&limit=20&search=john",
        headers={"Authorization": "Bearer your-admin-token"}, status=200,
        answer={"users": [{"id": "", "username": "", "display_name": "", "avatar_url": "",
                           "created_at": ""}], "total": 0, "page": 1, "pages": 0}),
    "user_create": dict(
        method="POST", path="/users",
        headers={"Authorization": "Bearer your-admin-token", "Content-Type": "application/json"},
        body={"username": "newuser", "email": "newuser@example.com",
              "password": "securepassword123", "display_name": "New User", "roles": ["user"]},
        status=201, answer={"id": "", "username": "newuser", "email": "newuser@example.com",
                            "display_name": "New User", "roles": ["user"]}),
    # Core Endpoints > Messaging
    "history": dict(
        method="GET", path="/messages?channel_id=channel_123&limit=50&before=msg_456",
        headers={"Authorization": "Bearer your-token"}, status=200,
        answer={"messages": [MESSAGE],
                "pagination": {"has_more": True, "next_cursor": "msg_122",
                               "total_count": 1250}}),
    "post": dict(
        method="POST", path="/messages",
        headers={"Authorization": "Bearer your-token", "Content-Type": "application/json"},
        body={"channel_id": "channel_123", "content": "Hello, everyone!",
              "content_type": "text", "mentions": ["user_456"], "reply_to": "msg_789"},
        status=201, answer=MESSAGE),
    "edit": dict(
        method="PUT", path="/messages/msg_123",
        headers={"Authorization": "Bearer your-token", "Content-Type": "application/json"},
        body={"content": "Updated message content"}, status=200, answer=MESSAGE),
    "delete": dict(
        method="DELETE", path="/messages/msg_123",
        headers={"Authorization": "Bearer your-token"}, status=204),
    # Core Endpoints > File Management (-F file=@document.pdf -F channel_id -F description)
    "upload": dict(
        method="POST", path="/files/upload", headers={"Authorization": "Bearer your-token"},
        form={"channel_id": "channel_123", "description": "Important document"},
        file=("document.pdf", PDF), status=201, answer=FILE),
    "file_get": dict(
        method="GET", path="/files/file_123", headers={"Authorization": "Bearer your-token"},
        status=200, answer=FILE),
    "file_download": dict(
        method="GET", path="/files/file_123/download",
        headers={"Authorization": "Bearer your-token"}, status=200),
    # Core Endpoints > AI Integration (not offered: a 404 saying what Parley has)
    "ai_chat": dict(
        method="POST", path="/ai/chat",
        headers={"Authorization": "Bearer your-token", "Content-Type": "application/json"},
        body={"message": "Summarize the latest project updates",
              "context": {"channel_id": "channel_123", "include_files": True,
                          "time_range": "7d"},
              "provider": "openai", "model": "gpt-4"},
        status=404, differs="no AI assistant"),
    "ai_search": dict(
        method="POST", path="/ai/search",
        headers={"Authorization": "Bearer your-token", "Content-Type": "application/json"},
        body={"query": "machine learning tutorials", "content_types": ["messages", "files"],
              "channels": ["channel_123", "channel_456"], "similarity_threshold": 0.7,
              "limit": 10},
        status=404, differs="no semantic search; full-text search instead"),
    # Core Endpoints > System Administration
    "system_status": dict(
        method="GET", path="/admin/system/status",
        headers={"Authorization": "Bearer your-admin-token"}, status=200,
        answer={"status": "healthy", "version": "a.1.1-1", "uptime": 86400},
        differs="database, cache, security, performance: Parley's process, disk, wal, log"),
    "admin_users": dict(
        method="GET", path="/admin/users?include_inactive=true&role=admin",
        headers={"Authorization": "Bearer your-admin-token"}, status=200,
        answer={"users": [{"id": "", "username": "", "roles": [], "is_active": True}],
                "total": 0, "page": 1, "pages": 1}),
    "backup": dict(
        method="POST", path="/admin/backup",
        headers={"Authorization": "Bearer your-admin-token", "Content-Type": "application/json"},
        body={"include_files": True, "include_database": True, "compression": "gzip",
              "encryption": True},
        status=422, differs="backups are zstd tar, encrypted exactly when the data dir is"),
}


# ---- running them ----------------------------------------------------------

def substitute(value, ids):
    """`value` (a string, or JSON made of them) with every placeholder of
    `ids` replaced: whole strings and the parts of paths, queries and
    headers that name them."""
    if isinstance(value, dict):
        return {k: substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, ids) for v in value]
    if isinstance(value, str):
        for placeholder in sorted(ids, key=len, reverse=True):
            value = value.replace(placeholder, ids[placeholder])
        return value
    return value


def run(server, name, ids, session=None, **changes):
    """Runs example `name` with its placeholders substituted (and `changes`
    to its fields, for the variants a difference calls for); returns the
    answer after checking its status."""
    ex = dict(copy.deepcopy(EXAMPLES[name]), **changes)
    headers = substitute(ex.get("headers", {}), ids)
    kw = {}
    if "file" in ex:
        kw["files"] = {"file": ex["file"]}
        kw["data"] = substitute(ex["form"], ids)
        headers.pop("Content-Type", None)
    elif "body" in ex:
        kw["data"] = json.dumps(substitute(ex["body"], ids))
    r = (session or requests).request(ex["method"], server.url(API + substitute(ex["path"], ids)),
                                      headers=headers, timeout=30, **kw)
    if ex.get("status") is not None:
        assert r.status_code == ex["status"], (name, r.status_code, r.text)
    return r


def missing(shape, got, where="answer"):
    """The paths of the fields `shape` documents that `got` lacks."""
    out = []
    if isinstance(shape, dict):
        if not isinstance(got, dict):
            return [where + " (not an object)"]
        for k, v in shape.items():
            if k not in got:
                out.append(where + "." + k)
            else:
                out += missing(v, got[k], where + "." + k)
    elif isinstance(shape, list) and shape:
        if not isinstance(got, list):
            return [where + " (not a list)"]
        for i, item in enumerate(got):
            out += missing(shape[0], item, "%s[%d]" % (where, i))
    return out


def shaped(name, r):
    """The answer's JSON, which must have every field the example documents."""
    body = r.json()
    gaps = missing(EXAMPLES[name]["answer"], body)
    assert not gaps, (name, gaps, body)
    return body


def login(server, name=ADMIN_NAME, password=ADMIN_PASSWORD):
    """A token pair of a login that must succeed."""
    r = requests.post(server.url(API + "/auth/login"),
                      json={"username": name, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def live_at(server, path_and_query):
    """A Live WebSocket opened at a path of the document's (not
    realtime_client's /api/v1/ws), credentials in the query; its ready frame
    waited for."""
    live = Live.__new__(Live)
    live.ws = websocket.create_connection("ws://127.0.0.1:%d%s" % (server.port, path_and_query),
                                          timeout=30)
    live.kept = []
    live.ready = live.wait(lambda f: f["type"] == "ready")
    return live


class World:
    """The document's cast on one server: the admin (the document's
    credentials, the first account), user_456, channels channel_123 and
    channel_456, messages msg_456, msg_789 and msg_123, file_123."""

    def __init__(self, server):
        self.server = server
        self.admin = register(server, ADMIN_NAME, password=ADMIN_PASSWORD)
        self.john = register(server, "john")
        self.general = self.admin.ok("POST", "/channels", {"name": "general"}, 201)
        self.random = self.admin.ok("POST", "/channels", {"name": "random"}, 201)
        for ch in (self.general, self.random):
            self.john.ok("POST", "/channels/%s/join" % ch["id"])
        self.older = [self.post("older message %d" % i) for i in range(3)]
        self.msg_789 = self.post("the message replied to")
        self.msg_456 = self.post("the message history starts before")
        self.msg_123 = self.post("Hello, world!")
        self.file = self.admin.uploaded("document.pdf", PDF, channel_id=self.general["id"])

    def post(self, content, who=None):
        return (who or self.admin).ok("POST", "/messages", {"channel_id": self.general["id"],
                                                            "content": content}, 201)

    def login(self):
        return login(self.server)

    def ids(self, pair=None):
        """The placeholders of the document and what stands for them: a
        fresh login of the admin unless `pair` is given."""
        pair = pair or self.login()
        token = pair["access_token"]
        return {
            "channel_123": self.general["id"], "channel_456": self.random["id"],
            "msg_456": self.msg_456["id"], "msg_789": self.msg_789["id"],
            "msg_123": self.msg_123["id"], "user_456": self.john.id,
            "file_123": self.file["id"],
            JWT: token, "your-jwt-token": token, "your-admin-token": token,
            "your-token": token, "your-refresh-token": pair["refresh_token"],
        }


@pytest.fixture
def world(server):
    return World(server)


# ---- Authentication --------------------------------------------------------

def test_jwt_login_and_profile(world):
    """Authentication > 1. JWT Bearer Tokens; Core Endpoints > GET /users/me."""
    pair = shaped("login", run(world.server, "login", {}))
    assert pair["token_type"] == "bearer" and pair["expires_in"] > 0
    me = shaped("me_bearer", run(world.server, "me_bearer", world.ids(pair)))
    assert me["username"] == "admin" and "admin" in me["roles"] and me["is_active"] is True
    assert isinstance(me["permissions"], list) and "system.manage" in me["permissions"]
    assert me["preferences"] == {}  # nothing set yet ("Differences")


def test_api_keys(world):
    """Authentication > 2. API Keys: the document's expires_at (2025-12-31) is
    past, so Parley refuses it as written (422 expires_at, no key made); a year
    ahead of now the same body makes a key that works as X-API-Key."""
    ids = world.ids()
    err = assert_error(run(world.server, "api_key_create", ids), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "expires_at"
    assert world.admin.ok("GET", "/auth/api-keys")["api_keys"] == []
    ahead = dict(EXAMPLES["api_key_create"]["body"], expires_at="2099-12-31T23:59:59Z")
    key = run(world.server, "api_key_create", ids, body=ahead, status=201).json()
    assert key["key"].startswith("plx_") and key["permissions"] == ["read", "write"]
    me = shaped("me_api_key", run(world.server, "me_api_key",
                                  dict(ids, plx_your_api_key_here=key["key"])))
    assert me["id"] == world.admin.id


def test_session_cookies(world):
    """Authentication > 3. Session Cookies: a login as written sets no cookie
    (Parley's tokens are for clients that keep them; a browser asks with
    "session": true), so the cookie jar alone is refused; with "session": true
    the cookies of the jar authenticate GET /users/me."""
    jar = requests.Session()
    shaped("login_cookies", run(world.server, "login_cookies", {}, session=jar))
    assert not jar.cookies
    r = jar.get(world.server.url(API + "/users/me"), timeout=30)
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    body = dict(EXAMPLES["login_cookies"]["body"], session=True)
    r = run(world.server, "login_cookies", {}, session=jar, body=body)
    assert r.json()["token_type"] == "cookie" and jar.cookies.get("parley_session")
    r = jar.get(world.server.url(API + "/users/me"), timeout=30)
    assert r.status_code == 200 and r.json()["id"] == world.admin.id, r.text


def test_mfa_login_and_verify(world):
    """Authentication > Multi-Factor Authentication: a wrong code is refused;
    without a code the answer is MFA_REQUIRED with temp_token and mfa_methods
    in error.details (the contract's error object, not the document's
    top-level fields); /mfa/verify with method "totp" completes the login, any
    other method is 422 (field method)."""
    secret, used = enable_mfa(world.server, world.admin.token)
    wrong = "123456" if totp(secret, now_step()) != "123456" else "654321"
    body = dict(EXAMPLES["login_mfa"]["body"], mfa_code=wrong)
    assert_error(run(world.server, "login_mfa", {}, body=body), 401, "INVALID_CREDENTIALS")
    no_code = {"username": "admin", "password": "admin123"}
    err = assert_error(run(world.server, "login_mfa", {}, body=no_code), 401, "MFA_REQUIRED")
    assert err["message"] and err["details"]["mfa_methods"] == ["totp"]
    ids = {"temp_token_for_mfa": err["details"]["temp_token"]}
    sms = dict(EXAMPLES["mfa_verify"]["body"], method="sms")
    err2 = assert_error(run(world.server, "mfa_verify", ids, body=sms, status=None), 422,
                        "VALIDATION_ERROR")
    assert err2["details"]["field"] == "method"
    for bad in (5, "", ["totp"], "TOTP"):
        err2 = assert_error(run(world.server, "mfa_verify", ids, status=None,
                                body=dict(sms, method=bad)), 422, "VALIDATION_ERROR")
        assert err2["details"]["field"] == "method", bad
    code = dict(EXAMPLES["mfa_verify"]["body"], mfa_code=totp(secret, used + 1))
    pair = shaped("mfa_verify", run(world.server, "mfa_verify", ids, body=code))
    assert pair["user"]["id"] == world.admin.id
    # The login with the right code in it (the document's first MFA example).
    body = dict(EXAMPLES["login_mfa"]["body"], mfa_code=totp(secret, used + 2))
    pair = shaped("login", run(world.server, "login_mfa", {}, body=body, status=200))
    assert pair["user"]["id"] == world.admin.id


def test_login_remember_logout_refresh(world):
    """Core Endpoints > Authentication Endpoints."""
    pair = shaped("login_remember", run(world.server, "login_remember", {}))
    fresh = shaped("refresh", run(world.server, "refresh", world.ids(pair)))
    assert fresh["access_token"] != pair["access_token"]
    ids = world.ids(fresh)
    run(world.server, "logout", ids)
    assert_error(run(world.server, "me", ids, status=401), 401, "TOKEN_INVALID")


# ---- Users -----------------------------------------------------------------

def test_user_management(world, start_server):
    """Core Endpoints > User Management: the profile, its update, the list
    with search, and an admin's new user, which a restart keeps."""
    ids = world.ids()
    shaped("me", run(world.server, "me", ids))
    me = shaped("me_update", run(world.server, "me_update", ids))
    assert me["display_name"] == "New Display Name" and me["email"] == "newemail@example.com"
    assert me["preferences"]["theme"] == "light" and me["preferences"]["language"] == "es"
    found = shaped("users_list", run(world.server, "users_list", ids))
    assert [u["username"] for u in found["users"]] == ["john"] and found["page"] == 1
    made = shaped("user_create", run(world.server, "user_create", ids))
    assert made["roles"] == ["user"]
    # Durable: the new user and the profile change survive a restart.
    assert world.server.stop() == 0
    again = start_server(data_dir=world.server.data_dir)
    assert login(again, "newuser", "securepassword123")["user"]["display_name"] == "New User"
    me = run(again, "me", dict(ids, **{"your-token": login(again)["access_token"]})).json()
    assert me["display_name"] == "New Display Name" and me["preferences"]["language"] == "es"


# ---- Messages --------------------------------------------------------------

def test_history_before(world):
    """Core Endpoints > GET /api/v1/messages: the page before msg_456, with
    the message fields and the pagination object."""
    page = shaped("history", run(world.server, "history", world.ids()))
    assert [m["id"] for m in page["messages"]] == [m["id"] for m in world.older + [world.msg_789]]
    assert page["pagination"]["has_more"] is False
    assert page["pagination"]["total_count"] >= len(page["messages"])


def test_post_edit_delete(world):
    """Core Endpoints > POST, PUT, DELETE /api/v1/messages."""
    ids = world.ids()
    posted = shaped("post", run(world.server, "post", ids))
    assert posted["content"] == "Hello, everyone!" and posted["content_type"] == "text"
    assert posted["mentions"] == [world.john.id] and posted["reply_to"] == world.msg_789["id"]
    edited = shaped("edit", run(world.server, "edit", ids))
    assert edited["content"] == "Updated message content" and edited["is_edited"] is True
    run(world.server, "delete", ids)
    gone = world.admin.ok("GET", "/messages/%s" % world.msg_123["id"])
    assert gone["is_deleted"] is True and not gone["content"]


# ---- Files -----------------------------------------------------------------

def test_files(world):
    """Core Endpoints > File Management: upload (multipart, with channel_id and
    description), its object, its download."""
    ids = world.ids()
    up = shaped("upload", run(world.server, "upload", ids))
    assert up["filename"] == up["original_filename"] == "document.pdf"
    assert up["content_type"] == "application/pdf" and up["size"] == len(PDF)
    assert up["channel_id"] == world.general["id"] and up["description"] == "Important document"
    assert isinstance(up["is_public"], bool)
    assert not [k for k in FILE_NOT_GIVEN if k in up], up
    got = shaped("file_get", run(world.server, "file_get", dict(ids, file_123=up["id"])))
    assert got["id"] == up["id"]
    r = run(world.server, "file_download", dict(ids, file_123=up["id"]))
    assert r.content == PDF and r.headers["Content-Type"].startswith("application/pdf")


# ---- AI and administration -------------------------------------------------

def test_ai_endpoints_answer_what_parley_offers(world):
    """Core Endpoints > AI Integration: not offered; a 404 whose message says
    so and whose details name what Parley has instead (full-text search)."""
    ids = world.ids()
    err = assert_error(run(world.server, "ai_chat", ids), 404, "RESOURCE_NOT_FOUND")
    assert "AI" in err["message"] and err["details"] == {"instead": None}
    err = assert_error(run(world.server, "ai_search", ids), 404, "RESOURCE_NOT_FOUND")
    assert err["details"] == {"instead": "/api/v1/search/messages"}
    r = requests.post(world.server.url(API + "/ai/chat"), json={"message": "x"}, timeout=30)
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")


def test_system_administration(world):
    """Core Endpoints > System Administration: the status (healthy, version,
    uptime; Parley's own sections instead of database/cache/...), the admin
    user list filtered to admins, and a backup: the document's body asks for
    gzip and encryption of a plain data directory, which Parley refuses (422
    naming the field) rather than ignore; asking for what a backup is works."""
    ids = world.ids()
    st = shaped("system_status", run(world.server, "system_status", ids))
    assert st["status"] == "healthy" and st["uptime"] == st["uptime_seconds"] >= 0
    assert {"process", "disk", "wal", "log"} <= set(st)
    users = shaped("admin_users", run(world.server, "admin_users", ids))
    assert [u["username"] for u in users["users"]] == ["admin"]
    err = assert_error(run(world.server, "backup", ids), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "compression"
    body = dict(EXAMPLES["backup"]["body"], compression="zstd")
    err = assert_error(run(world.server, "backup", ids, body=body), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "encryption"
    body["include_database"] = False
    body["encryption"] = False
    err = assert_error(run(world.server, "backup", ids, body=body), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "include_database"
    assert world.admin.ok("GET", "/admin/backups")["backups"] == []  # nothing written
    for field, bad in (("include_database", "yes"), ("compression", 7), ("compression", ""),
                       ("encryption", "no")):
        err = assert_error(run(world.server, "backup", ids, body=dict(body, **{field: bad})),
                           422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, (field, bad)
    body["include_database"] = True
    made = run(world.server, "backup", ids, body=body, status=201).json()
    assert made["include_files"] is True and made["name"].endswith(".tar.zst")


# ---- WebSocket API ---------------------------------------------------------

def test_websocket_walk(world):
    """WebSocket API: connect at /ws (the document's path; /api/v1/ws is the
    same), with ?token= or an auth frame; subscribe to two channels; an
    incoming message (Parley's type: message.created); send_message; typing
    start and stop; presence."""
    server = world.server
    me = live_at(server, "/ws?token=" + world.admin.token)
    assert me.ready["data"]["user_id"] == world.admin.id
    me.send({"type": "subscribe", "channels": [world.general["id"], world.random["id"]]})
    me.wait(lambda f: f["type"] == "subscribed")
    # The document's plain connection, then authenticated by a frame.
    plain = Live(server, auth_frame="Bearer " + world.john.token)
    assert plain.ready["data"]["user_id"] == world.john.id
    # Presence (Message Types > Presence Updates): john is online.
    seen = me.wait(lambda f: f["type"] == "presence" and f["data"]["user_id"] == world.john.id)
    assert seen["data"]["status"] == "online" and "last_seen" in seen["data"]
    # Real-time Messages: incoming.
    sent = world.post("Hello, world!", who=world.john)
    got = me.wait(lambda f: f["type"] == "message.created" and f["data"]["id"] == sent["id"])
    assert not missing({"id": "", "channel_id": "", "user_id": "", "content": "",
                        "created_at": ""}, got["data"])
    # Send message via WebSocket.
    me.send({"type": "send_message",
             "data": {"channel_id": world.general["id"], "content": "Hello from WebSocket!"}})
    ack = me.wait(lambda f: f["type"] == "ack")
    assert ack["data"]["status"] == 201
    heard = plain.wait(lambda f: f["type"] == "message.created"
                       and f["data"]["content"] == "Hello from WebSocket!")
    assert heard["data"]["user_id"] == world.admin.id
    # Typing Indicators.
    me.send({"type": "typing_start", "channel_id": world.general["id"]})
    t = plain.wait(lambda f: f["type"] == "typing" and f["data"]["is_typing"] is True)
    assert t["data"] == {"channel_id": world.general["id"], "user_id": world.admin.id,
                         "is_typing": True}
    me.send({"type": "typing_stop", "channel_id": world.general["id"]})
    plain.wait(lambda f: f["type"] == "typing" and f["data"]["is_typing"] is False)
    plain.close()
    me.close()
    # Bad credentials at /ws are refused before the upgrade, as at /api/v1/ws.
    r = requests.get(server.url("/ws"), params={"token": "not-a-token"}, timeout=30,
                     headers={"Upgrade": "websocket", "Connection": "Upgrade",
                              "Sec-WebSocket-Version": "13",
                              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert_error(r, 401, "TOKEN_INVALID")


def test_complete_chat_application(world):
    """Examples > Complete Chat Application: the WebSocket opened with the
    client's API key as ?token=, subscribed to "general" by name, and a
    send_message naming the channel "general"."""
    key = world.admin.ok("POST", "/auth/api-keys",
                         {"name": "chat app", "permissions": ["read", "write"]}, 201)["key"]
    live = live_at(world.server, "/ws?token=" + key)
    live.send({"type": "subscribe", "channels": ["general"]})
    got = live.wait(lambda f: f["type"] in ("subscribed", "error"))
    assert got["type"] == "subscribed", got
    live.send({"type": "send_message", "data": {"channel_id": "general", "content": "hi"}})
    ack = live.wait(lambda f: f["type"] in ("ack", "error"))
    assert ack["type"] == "ack" and ack["data"]["message"]["channel_id"] == world.general["id"], ack
    live.close()


# ---- Error Handling and Rate Limiting --------------------------------------

def test_error_response_format(world):
    """Error Handling > Error Response Format: a bad email is 422
    VALIDATION_ERROR with details.field, request_id and timestamp."""
    r = world.admin.put("/users/me", {"email": "not an email"})
    err = assert_error(r, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "email"


def test_rate_limit_headers_and_exceeded(start_server):
    """Rate Limiting: the four headers on a limited category's answers, and
    the exceeded answer (429 RATE_LIMIT_EXCEEDED; retry_after in
    error.details, as the contract says, and in Retry-After)."""
    server = start_server(args=("--rate-limit-messages", "2"), rate_limits=True)
    user = register(server, "limited")
    ch = user.ok("POST", "/channels", {"name": "limits"}, 201)
    answers = [user.post("/messages", {"channel_id": ch["id"], "content": "m%d" % i})
               for i in range(3)]
    assert [r.status_code for r in answers] == [201, 201, 429]
    for r in answers:
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                "X-RateLimit-Window"} <= set(r.headers), r.headers
        assert r.headers["X-RateLimit-Window"] == "60" and r.headers["X-RateLimit-Limit"] == "2"
    err = assert_error(answers[2], 429, "RATE_LIMIT_EXCEEDED")
    assert err["details"]["retry_after"] >= 1 and int(answers[2].headers["Retry-After"]) >= 1
