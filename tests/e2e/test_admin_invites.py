"""Invites end to end (docs/admin.md "Invites"): an admin's invites
(/api/v1/admin/invites: create, list, revoke), their limits (uses, expiry),
the channels they put a new account in, a channel owner's invite to a
private channel, an existing account accepting one, two registrations racing
for an invite's last use, bad input changing nothing, and invites surviving
a clean restart and a SIGKILL."""
import concurrent.futures
import datetime
import signal
import time

import pytest
import requests

from client import API, register, registration, wait_past, wait_until
from conftest import assert_error, module_server

INVITE_FIELDS = {"code", "url", "expires_at", "uses", "max_uses", "channel_ids", "created_by",
                 "created_at"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "admin-invites",
                             args=("--rate-limit", "0", "--registration", "invite"))


@pytest.fixture(scope="module")
def root(srv):
    # the first account registers whatever the mode
    admin = register(srv, "root")
    assert "admin" in admin.user["roles"]
    return admin


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def invite(who, status=201, path="/admin/invites", **body):
    return who.ok("POST", path, body, status)


def listed(root):
    return {i["code"]: i for i in root.ok("GET", "/admin/invites", None)["invites"]}


def members(root, channel_id):
    return [m["user_id"] for m in root.ok("GET", "/channels/%s/members" % channel_id)["members"]]


def test_invite_mode_needs_a_code(srv, root):
    err = assert_error(registration(srv, "nocode"), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "invite_code"
    for bad in ("x" * 40, 12, ""):
        assert registration(srv, "badcode", invite_code=bad).status_code == 422


def test_create_list_and_use(srv, root):
    inv = invite(root, max_uses=2)
    assert set(inv) == INVITE_FIELDS
    assert len(inv["code"]) == 32 and inv["code"].isalnum()
    assert inv["url"].endswith("/register?invite=" + inv["code"])
    assert inv["url"].startswith("http://127.0.0.1:%d" % srv.port)
    assert inv["uses"] == 0 and inv["max_uses"] == 2 and inv["expires_at"] is None
    assert inv["created_by"] == root.id and inv["channel_ids"] == []
    assert listed(root)[inv["code"]] == inv
    register(srv, "inv_one", invite_code=inv["code"])
    assert listed(root)[inv["code"]]["uses"] == 1
    register(srv, "inv_two", invite_code=inv["code"])
    err = assert_error(registration(srv, "inv_three", invite_code=inv["code"]), 403,
                       "INVITE_INVALID")
    assert err["details"]["reason"] == "used_up"
    assert listed(root)[inv["code"]]["uses"] == 2
    # the refused registration made no account
    assert root.get("/admin/users", search="inv_three").json()["total"] == 0


def test_unlimited_invite_and_revoke(srv, root):
    inv = invite(root)
    assert inv["max_uses"] is None
    register(srv, "unl_a", invite_code=inv["code"])
    assert root.ok("DELETE", "/admin/invites/" + inv["code"], None, 204) is None
    err = assert_error(registration(srv, "unl_b", invite_code=inv["code"]), 403,
                       "INVITE_INVALID")
    assert err["details"]["reason"] == "unknown"
    assert inv["code"] not in listed(root)
    assert_error(root.delete("/admin/invites/" + inv["code"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(root.delete("/admin/invites/" + "z" * 80), 404, "RESOURCE_NOT_FOUND")


def test_expired_invite_is_refused(srv, root):
    ends = time.time() + 1.5
    inv = invite(root, expires_at=rfc3339(ends))
    assert inv["expires_at"] == rfc3339(ends)
    wait_past(ends)
    err = wait_until(lambda: (lambda r: r.status_code == 403 and r)(
        registration(srv, "too_late", invite_code=inv["code"])), what="the invite expires")
    assert err.json()["error"]["code"] == "INVITE_INVALID"
    assert err.json()["error"]["details"]["reason"] == "expired"


def test_invite_channels_are_joined(srv, root):
    pub = root.ok("POST", "/channels", {"name": "inv-public"}, 201)
    priv = root.ok("POST", "/channels", {"name": "inv-private", "is_private": True}, 201)
    inv = invite(root, channel_ids=[pub["id"], priv["id"], pub["id"]])
    assert inv["channel_ids"] == [pub["id"], priv["id"]]
    joiner = register(srv, "joiner", invite_code=inv["code"])
    assert joiner.id in members(root, pub["id"])
    assert joiner.id in members(root, priv["id"])
    assert joiner.get("/channels/%s" % priv["id"]).status_code == 200


BAD = [
    ({"max_uses": 0}, 422, "max_uses"),
    ({"max_uses": -3}, 422, "max_uses"),
    ({"max_uses": 10 ** 9}, 422, "max_uses"),
    ({"max_uses": "5"}, 422, "max_uses"),
    ({"expires_at": "tomorrow"}, 422, "expires_at"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, 422, "expires_at"),
    ({"expires_at": 12345}, 422, "expires_at"),
    ({"channel_ids": "ch_x"}, 422, "channel_ids"),
    ({"channel_ids": [1]}, 422, "channel_ids"),
    ({"channel_ids": ["ch_%d" % i for i in range(21)]}, 422, "channel_ids"),
    ({"channel_ids": [{"deep": ["x"]}]}, 422, "channel_ids"),
    ({"channel_ids": ["ch_nonexistent"]}, 404, "channel_ids"),
]


@pytest.mark.parametrize("body,status,field", BAD, ids=["%s-%d" % (f, i) for i, (_, _, f)
                                                          in enumerate(BAD)])
def test_bad_input_creates_nothing(root, body, status, field):
    before = listed(root)
    r = root.post("/admin/invites", body)
    err = assert_error(r, status, "VALIDATION_ERROR" if status == 422 else "RESOURCE_NOT_FOUND")
    assert err["details"]["field"] == field
    assert listed(root) == before


def test_non_admins_are_refused(srv, root):
    inv = invite(root)
    plain = register(srv, "inv_plain", invite_code=inv["code"])
    assert_error(plain.post("/admin/invites", {}), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(plain.get("/admin/invites"), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(plain.delete("/admin/invites/" + inv["code"]), 403, "INSUFFICIENT_PERMISSIONS")
    assert inv["code"] in listed(root)


def test_channel_owner_invites_to_a_private_channel(srv, root):
    inv = invite(root)
    owner = register(srv, "ch_owner", invite_code=inv["code"])
    other = register(srv, "ch_other", invite_code=inv["code"])
    room = owner.ok("POST", "/channels", {"name": "owners-room", "is_private": True}, 201)
    public = owner.ok("POST", "/channels", {"name": "owners-public"}, 201)
    path = "/channels/%s/invites" % room["id"]
    # not the owner: a private channel one cannot see is not found; one it can, 403
    assert_error(other.post(path, {}), 404, "RESOURCE_NOT_FOUND")
    added = owner.post("/channels/%s/members" % room["id"], {"user_id": other.id})
    assert added.status_code in (200, 201), added.text
    assert_error(other.post(path, {}), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(other.post("/channels/%s/invites" % public["id"], {}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    err = assert_error(owner.post("/channels/%s/invites" % public["id"], {}), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "id"
    assert_error(owner.post(path, {"max_uses": 0}), 422, "VALIDATION_ERROR")
    ci = invite(owner, path=path, max_uses=1)
    assert ci["channel_ids"] == [room["id"]] and ci["created_by"] == owner.id
    guest = register(srv, "ch_guest", invite_code=ci["code"])
    assert guest.id in members(owner, room["id"])
    assert_error(registration(srv, "ch_guest2", invite_code=ci["code"]), 403, "INVITE_INVALID")
    # an admin not in the private channel is no reader of it, so cannot open it
    # to others either: the channel is not found, by either route
    assert_error(root.post(path, {}), 404, "RESOURCE_NOT_FOUND")
    err = assert_error(root.post("/admin/invites", {"channel_ids": [room["id"]]}), 404,
                       "RESOURCE_NOT_FOUND")
    assert err["details"]["field"] == "channel_ids"
    # once a member, it may
    owner.ok("POST", "/channels/%s/members" % room["id"], {"user_id": root.id}, 201)
    ai = invite(root, path=path)
    assert ai["created_by"] == root.id
    assert invite(root, channel_ids=[room["id"]])["channel_ids"] == [room["id"]]


def test_existing_account_accepts_an_invite(srv, root):
    priv = root.ok("POST", "/channels", {"name": "accept-room", "is_private": True}, 201)
    inv = invite(root, channel_ids=[priv["id"]], max_uses=2)
    first = invite(root)
    someone = register(srv, "accepter", invite_code=first["code"])
    assert someone.get("/channels/%s" % priv["id"]).status_code == 404
    body = someone.ok("POST", "/invites/%s/accept" % inv["code"], {})
    assert body["joined"] == [priv["id"]]
    assert someone.get("/channels/%s" % priv["id"]).status_code == 200
    assert listed(root)[inv["code"]]["uses"] == 1
    assert_error(someone.post("/invites/%s/accept" % ("0" * 32), {}), 403, "INVITE_INVALID")
    assert_error(someone.post("/invites/%s/accept" % ("0" * 90), {}), 403, "INVITE_INVALID")
    anon = requests.post(srv.url(API + "/invites/%s/accept" % inv["code"]), json={}, timeout=30)
    assert_error(anon, 401, "AUTHENTICATION_REQUIRED")


def test_racing_for_the_last_use_one_wins(srv, root):
    inv = invite(root, max_uses=1)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: registration(srv, "racer%d" % i,
                                                       invite_code=inv["code"]), range(8)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 1, [r.text for r in answers]
    assert codes.count(403) == 7
    assert listed(root)[inv["code"]]["uses"] == 1
    assert root.get("/admin/users", search="racer").json()["total"] == 1


def test_invites_survive_restart_and_sigkill(start_server, tmp_path):
    data = tmp_path / "data"
    args = ["--rate-limit", "0", "--registration", "invite"]
    server = start_server(args=args, data_dir=data)
    root = register(server, "boss")
    kept = invite(root, max_uses=3)
    gone = invite(root)
    register(server, "dur_a", invite_code=kept["code"])
    root.ok("DELETE", "/admin/invites/" + gone["code"], None, 204)
    assert server.stop() == 0
    server = start_server(args=args, data_dir=data)
    boss = root.on(server)
    got = listed(boss)
    assert got[kept["code"]]["uses"] == 1 and gone["code"] not in got
    # acknowledged, then SIGKILL
    register(server, "dur_b", invite_code=kept["code"])
    late = invite(boss, max_uses=5)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server = start_server(args=args, data_dir=data)
    boss = root.on(server)
    got = listed(boss)
    assert got[kept["code"]]["uses"] == 2 and got[late["code"]]["max_uses"] == 5
    assert_error(registration(server, "dur_c", invite_code=gone["code"]), 403, "INVITE_INVALID")
    register(server, "dur_d", invite_code=kept["code"])
    assert_error(registration(server, "dur_e", invite_code=kept["code"]), 403, "INVITE_INVALID")
