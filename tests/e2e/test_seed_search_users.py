"""Issue 17, what the seed documents' clients expect of search and of users
(docs/api.md "Search", "Users"):

- Fechatter's POST /search/messages {query, filters: {chat_ids, sender_ids,
  date_from, date_to}, page, limit}: the nested filters hold (several ids
  each, OR within a kind, AND across kinds), `page` pages, the answer
  carries page/pages/total; the flat GET form takes the same names; bad ids
  and dates, and unknown keys inside `filters`, are 422 naming the field.
- PUT /users/me {username}: a rename, unique case-insensitively (409), the
  registration's rule (422), durable (restart and SIGKILL), audited
  (user.rename), announced to those who share a channel (user.updated);
  login by the new name works, the old one no longer.
"""
import signal

import pytest
import requests

from conftest import assert_error, module_server
from client import API, PASSWORD, Client, register, wait_until
from realtime_client import Live


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "seed-search")


@pytest.fixture(scope="module")
def w(srv):
    """alice owns `one` and `two` (public; bob and carol joined both)."""
    class World:
        pass
    x = World()
    for name in ("sadmin", "salice", "sbob", "scarol"):
        setattr(x, name[1:], register(srv, name))
    x.one = x.alice.ok("POST", "/channels", {"name": "seed-one"}, 201)
    x.two = x.alice.ok("POST", "/channels", {"name": "seed-two"}, 201)
    x.three = x.alice.ok("POST", "/channels", {"name": "seed-three"}, 201)
    for c in (x.one, x.two, x.three):
        x.bob.ok("POST", "/channels/%s/join" % c["id"])
        x.carol.ok("POST", "/channels/%s/join" % c["id"])
    return x


def post(who, channel, content):
    return who.ok("POST", "/channels/%s/messages" % channel["id"], {"content": content}, 201)


def search_post(who, body, status=200):
    r = who.post("/search/messages", body)
    assert r.status_code == status, r.text
    return r.json()


def ids(out):
    return [h["message_id"] for h in out["results"]]


# ---- Fechatter's nested filters ------------------------------------------------

def test_sender_and_2024_filter_excludes_other_senders_2026_message(w):
    a = post(w.alice, w.one, "quarterly budget draft")
    b = post(w.bob, w.one, "quarterly budget review")
    year = a["created_at"][:4]
    assert year != "2024"
    # The case exactly: one sender (bob) and 2024: alice's (and bob's)
    # messages of this year must not come back.
    out = search_post(w.carol, {"query": "quarterly", "filters": {
        "sender_ids": [w.bob.id], "date_from": "2024-01-01", "date_to": "2024-12-31"}})
    assert ids(out) == [] and out["total"] == 0
    # One sender, no dates: that sender's only.
    out = search_post(w.carol, {"query": "quarterly", "filters": {"sender_ids": [w.bob.id]}})
    assert ids(out) == [b["id"]]
    # Several senders (OR within the kind), and this year (AND across kinds).
    out = search_post(w.carol, {"query": "quarterly", "filters": {
        "sender_ids": [w.bob.id, w.alice.id], "date_from": year + "-01-01",
        "date_to": year + "-12-31"}})
    assert ids(out) == [b["id"], a["id"]]
    # The flat GET form, same names.
    r = w.carol.get("/search/messages", q="quarterly", sender_ids=w.bob.id,
                    date_from="2024-01-01", date_to="2024-12-31")
    assert r.status_code == 200 and r.json()["results"] == []
    r = w.carol.get("/search/messages", q="quarterly",
                    sender_ids="%s,%s" % (w.alice.id, w.bob.id))
    assert [h["message_id"] for h in r.json()["results"]] == [b["id"], a["id"]]


def test_chat_ids_several_channels_and_and_across_kinds(w):
    m1 = post(w.alice, w.one, "heliotrope one")
    m2 = post(w.bob, w.two, "heliotrope two")
    m3 = post(w.alice, w.three, "heliotrope three")
    out = search_post(w.carol, {"query": "heliotrope",
                                "filters": {"chat_ids": [w.one["id"], w.two["id"]]}})
    assert ids(out) == [m2["id"], m1["id"]]
    out = search_post(w.carol, {"query": "heliotrope", "filters": {
        "chat_ids": [w.one["id"], w.two["id"]], "sender_ids": [w.alice.id]}})
    assert ids(out) == [m1["id"]]
    out = search_post(w.carol, {"query": "heliotrope", "filters": {"chat_ids": [w.three["id"]]}})
    assert ids(out) == [m3["id"]]
    r = w.carol.get("/search/messages", q="heliotrope",
                    chat_ids="%s,%s" % (w.three["id"], w.two["id"]))
    assert [h["message_id"] for h in r.json()["results"]] == [m3["id"], m2["id"]]


def test_page_pages_and_total(w):
    posted = [post(w.alice, w.one, "marigold number %d" % i) for i in range(5)]
    newest_first = [m["id"] for m in reversed(posted)]
    seen = []
    for page in (1, 2, 3):
        out = search_post(w.bob, {"query": "marigold", "page": page, "limit": 2})
        assert out["page"] == page and out["pages"] == 3 and out["total"] == 5
        seen += ids(out)
    assert seen == newest_first
    out = search_post(w.bob, {"query": "marigold", "page": 4, "limit": 2})
    assert out["results"] == [] and out["total"] == 5
    r = w.bob.get("/search/messages", q="marigold", page="2", limit="2")
    body = r.json()
    assert [h["message_id"] for h in body["results"]] == newest_first[2:4]
    assert body["page"] == 2 and body["pages"] == 3


@pytest.mark.parametrize("body, field", [
    ({"filters": {"date_from": "yesterday"}}, "filters.date_from"),
    ({"filters": {"date_to": "2024-13-45"}}, "filters.date_to"),
    ({"filters": {"date_from": 2024}}, "filters.date_from"),
    ({"filters": {"sender_ids": "usr_x"}}, "filters.sender_ids"),
    ({"filters": {"sender_ids": [7]}}, "filters.sender_ids"),
    ({"filters": {"chat_ids": ["../etc"]}}, "filters.chat_ids"),
    ({"filters": {"chat_ids": ["ch_%d" % i for i in range(21)]}}, "filters.chat_ids"),
    ({"filters": {"channel": "x"}}, "filters.channel"),
    ({"filters": {"chat_ids": [], "sort": "new"}}, "filters.sort"),
    ({"filters": []}, "filters"),
    ({"page": 0}, "page"),
    ({"page": "2"}, "page"),
    ({"page": 1001}, "page"),
])
def test_bad_filters_are_refused_naming_the_field(w, body, field):
    body = dict(body, query="anything")
    err = assert_error(w.bob.post("/search/messages", body), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field


@pytest.mark.parametrize("params, field", [
    ({"sender_ids": "usr_a,,"}, "sender_ids"),
    ({"sender_ids": ","}, "sender_ids"),
    ({"chat_ids": "a b"}, "chat_ids"),
    ({"page": "x"}, "page"),
    ({"date_from": "nope"}, "date_from"),
])
def test_bad_get_filters_are_refused(w, params, field):
    r = w.bob.get("/search/messages", q="anything", **params)
    err = assert_error(r, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field


def test_unreadable_chat_id_is_not_found(w):
    priv = w.alice.ok("POST", "/channels", {"name": "seed-private", "is_private": True}, 201)
    post(w.alice, priv, "saffron secret")
    r = w.carol.post("/search/messages", {"query": "saffron",
                                          "filters": {"chat_ids": [w.one["id"], priv["id"]]}})
    assert_error(r, 404, "RESOURCE_NOT_FOUND")


# ---- renaming ------------------------------------------------------------------

def login(server, username):
    return requests.post(server.url(API + "/auth/login"),
                         json={"username": username, "password": PASSWORD}, timeout=30)


def test_rename_conflicts_and_validation(srv, w):
    dave = register(srv, "sdave")
    err = assert_error(dave.put("/users/me", {"username": "SBOB"}), 409, "CONFLICT")
    assert err["details"]["field"] == "username"
    for bad in ("ab", "x" * 33, "has space", "<b>", ""):
        err = assert_error(dave.put("/users/me", {"username": bad}), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "username"
    err = assert_error(dave.put("/users/me", {"username": 12}), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "username"
    assert dave.ok("GET", "/users/me")["username"] == "sdave"
    # Its own name in another case is allowed (a rename of case).
    assert dave.ok("PUT", "/users/me", {"username": "SDave"})["username"] == "SDave"


def test_rename_is_announced_audited_and_login_follows(srv, w):
    erin = register(srv, "serin")
    erin.ok("POST", "/channels/%s/join" % w.one["id"])
    before = post(erin, w.one, "posted under the old name")
    assert w.bob.ok("GET", "/messages/%s" % before["id"])["sender"]["username"] == "serin"
    outsider = register(srv, "soutsider")
    live_peer = Live(srv, w.carol.token)
    live_out = Live(srv, outsider.token)
    try:
        me = erin.ok("PUT", "/users/me", {"username": "serin2"})
        assert me["username"] == "serin2"
        ev = live_peer.wait_type("user.updated")
        assert ev["data"]["user"]["id"] == erin.id
        assert ev["data"]["user"]["username"] == "serin2"
        assert ev["data"]["previous_username"] == "serin"
        # One who shares no channel hears nothing of it: a later event to
        # both (a message in a channel it joins) comes first.
        outsider.ok("POST", "/channels/%s/join" % w.two["id"])
        m = post(w.alice, w.two, "after the rename")
        f = live_out.wait(lambda f: f["type"] in ("user.updated", "message.created") and
                          (f["type"] == "user.updated" or f["data"].get("id") == m["id"]))
        assert f["type"] == "message.created"
    finally:
        live_peer.close()
        live_out.close()
    assert login(srv, "serin2").status_code == 200
    assert_error(login(srv, "serin"), 401, "INVALID_CREDENTIALS")
    # Views of its messages (cached ones too) show the new name.
    assert w.bob.ok("GET", "/messages/%s" % before["id"])["sender"]["username"] == "serin2"
    page = w.bob.ok("GET", "/channels/%s/messages?limit=100" % w.one["id"])["messages"]
    assert [m["sender"]["username"] for m in page if m["id"] == before["id"]] == ["serin2"]
    assert w.bob.ok("GET", "/users/by-username/serin2")["id"] == erin.id
    assert_error(w.bob.get("/users/by-username/serin"), 404, "RESOURCE_NOT_FOUND")
    # The old name is free again.
    register(srv, "serin", email="serin-again@example.com")
    entries = w.admin.ok("GET", "/admin/audit-log?action=user.rename")["entries"]
    hit = [e for e in entries if e["target"] == erin.id and e["action"] == "user.rename"]
    assert hit and hit[0]["details"] == {"from": "serin", "to": "serin2"}
    assert hit[0]["actor"]["id"] == erin.id


def test_rename_survives_restart_and_sigkill(start_server, tmp_path):
    data = tmp_path / "data"
    server = start_server(data_dir=data)
    a = register(server, "renamer")
    a.ok("PUT", "/users/me", {"username": "renamed1"})
    server.stop()
    server = start_server(data_dir=data)
    assert login(server, "renamed1").status_code == 200
    assert login(server, "renamer").status_code == 401
    a = a.on(server)
    a.ok("PUT", "/users/me", {"username": "renamed2"})
    server.stop(sig=signal.SIGKILL)
    server = start_server(data_dir=data)
    r = login(server, "renamed2")
    assert r.status_code == 200 and r.json()["user"]["username"] == "renamed2"
    assert login(server, "renamed1").status_code == 401
    b = register(server, "other-user")
    assert_error(b.put("/users/me", {"username": "RENAMED2"}), 409, "CONFLICT")


# ---- sort and order ------------------------------------------------------------

def test_users_sort_and_order(srv, w):
    out = w.bob.ok("GET", "/users?sort=created_at&order=asc&limit=100")["users"]
    created = [u["created_at"] for u in out]
    assert created == sorted(created) and out[0]["id"] == w.admin.id
    out = w.bob.ok("GET", "/users?sort=created_at&limit=100")["users"]  # times: newest first
    assert [u["created_at"] for u in out] == sorted(created, reverse=True)
    names = [u["username"] for u in w.bob.ok("GET", "/users?sort=username&order=desc&limit=100")
             ["users"]]
    assert names == sorted(names, key=str.lower, reverse=True)
    # Paging follows the order: pages of 2 put together are the whole list.
    whole = [u["id"] for u in w.bob.ok("GET", "/users?sort=created_at&order=asc&limit=100")
             ["users"]]
    paged = []
    for page in range(1, (len(whole) + 1) // 2 + 1):
        paged += [u["id"] for u in w.bob.ok(
            "GET", "/users?sort=created_at&order=asc&limit=2&page=%d" % page)["users"]]
    assert paged == whole
    seen = w.bob.ok("GET", "/users?sort=last_seen&limit=100")["users"]
    assert len(seen) == len(whole)


def test_channels_sort_by_name_created_and_activity(srv, w):
    owner = register(srv, "sowner")
    a = owner.ok("POST", "/channels", {"name": "zz-sort-a"}, 201)
    b = owner.ok("POST", "/channels", {"name": "aa-sort-b"}, 201)
    mine = {a["id"], b["id"]}

    def order(query):
        return [c["id"] for c in owner.ok("GET", "/channels?" + query)["channels"]
                if c["id"] in mine]
    assert order("sort=name") == [b["id"], a["id"]]
    assert order("sort=name&order=desc") == [a["id"], b["id"]]
    assert order("sort=created_at") == [b["id"], a["id"]]  # newest first
    assert order("sort=created_at&order=asc") == [a["id"], b["id"]]
    post(owner, a, "activity in the older one")
    assert order("sort=last_activity") == [a["id"], b["id"]]
    post(owner, b, "and now in the newer one")
    assert order("sort=last_activity") == [b["id"], a["id"]]
    assert order("sort=last_activity&order=asc") == [a["id"], b["id"]]


def test_files_sort_by_size_and_uploaded_at(srv, w):
    u = register(srv, "sfiler")
    small = u.uploaded("small.txt", b"x" * 10, "text/plain")
    big = u.uploaded("big.txt", b"y" * 3000, "text/plain")
    mid = u.uploaded("mid.txt", b"z" * 500, "text/plain")

    def order(query):
        return [f["id"] for f in u.ok("GET", "/files?" + query)["files"]]
    assert order("sort=size") == [big["id"], mid["id"], small["id"]]
    assert order("sort=size&order=asc") == [small["id"], mid["id"], big["id"]]
    assert order("sort=uploaded_at&order=asc") == [small["id"], big["id"], mid["id"]]
    assert order("") == [mid["id"], big["id"], small["id"]]
    assert order("sort=size&limit=1&page=2") == [mid["id"]]


@pytest.mark.parametrize("path, allowed", [
    ("/users", ["username", "created_at", "last_seen"]),
    ("/channels", ["name", "created_at", "last_activity"]),
    ("/files", ["uploaded_at", "size"]),
])
def test_unknown_sort_or_order_is_refused(w, path, allowed):
    err = assert_error(w.bob.get(path, sort="popularity"), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "sort" and err["details"]["allowed"] == allowed
    for name in allowed:
        assert name in err["message"]
    err = assert_error(w.bob.get(path, order="up"), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "order"
    err = assert_error(w.bob.get(path, sort=""), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "sort"


# ---- sparse fieldsets ----------------------------------------------------------

def test_fields_on_users_single_and_lists(w):
    assert w.bob.ok("GET", "/users/me?fields=username") == {"id": w.bob.id, "username": "sbob"}
    assert w.bob.ok("GET", "/users/%s?fields=username,created_at" % w.alice.id).keys() == \
        {"id", "username", "created_at"}
    assert w.bob.ok("GET", "/users/by-username/salice?fields=id") == {"id": w.alice.id}
    out = w.bob.ok("GET", "/users?fields=id,username&sort=created_at&order=asc")
    assert {"users", "total", "page", "pages"} <= out.keys()
    assert out["users"][0] == {"id": w.admin.id, "username": "sadmin"}
    assert all(u.keys() == {"id", "username"} for u in out["users"])
    out = w.bob.ok("GET", "/search/users?q=salice&fields=username")
    assert out["users"] == [{"id": w.alice.id, "username": "salice"}] and out["total"] == 1
    out = w.bob.ok("GET", "/search/channels?q=seed-one&fields=name")
    assert out["channels"] == [{"id": w.one["id"], "name": "seed-one"}]
    assert_error(w.bob.get("/search/users", q="x", fields="nope"), 422, "VALIDATION_ERROR")
    # A field the view does not show to this caller stays away (email of another).
    assert w.bob.ok("GET", "/users/%s?fields=email" % w.alice.id) == {"id": w.alice.id}


def test_fields_on_channels_messages_and_files(w):
    c = w.bob.ok("GET", "/channels/%s?fields=name,member_count" % w.one["id"])
    assert c == {"id": w.one["id"], "name": "seed-one", "member_count": c["member_count"]}
    lst = w.bob.ok("GET", "/channels?fields=name")["channels"]
    assert lst and all(x.keys() == {"id", "name"} for x in lst)
    m = post(w.alice, w.one, "sparse fieldsets here")
    assert w.bob.ok("GET", "/messages/%s?fields=content" % m["id"]) == \
        {"id": m["id"], "content": "sparse fieldsets here"}
    page = w.bob.ok("GET", "/channels/%s/messages?fields=content,sender&limit=2" % w.one["id"])
    assert "has_more" in page and "next_cursor" in page
    assert all(x.keys() == {"id", "content", "sender"} for x in page["messages"])
    page = w.bob.ok("GET", "/messages?channel_id=%s&fields=user_id&limit=1" % w.one["id"])
    assert page["messages"] == [{"id": m["id"], "user_id": w.alice.id}]
    f = w.bob.uploaded("f.txt", b"hello", "text/plain")
    assert w.bob.ok("GET", "/files/%s?fields=size" % f["id"]) == {"id": f["id"], "size": 5}
    files = w.bob.ok("GET", "/files?fields=filename")["files"]
    assert files == [{"id": f["id"], "filename": "f.txt"}]


@pytest.mark.parametrize("path", ["/users/me", "/users", "/channels", "/files",
                                  "/messages/{m}", "/channels/{c}/messages", "/channels/{c}",
                                  "/files/{f}"])
@pytest.mark.parametrize("fields, bad", [("id,passwd", "passwd"), ("", ""),
                                         ("id,,name", ""), ("password_hash", "password_hash")])
def test_unknown_field_names_are_refused(w, path, fields, bad):
    if not hasattr(w, "sparse_ids"):
        w.sparse_ids = {"m": post(w.alice, w.one, "for the refusals")["id"], "c": w.one["id"],
                        "f": w.bob.uploaded("g.txt", b"x", "text/plain")["id"]}
    r = w.bob.get(path.format(**w.sparse_ids), fields=fields)
    err = assert_error(r, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "fields" and err["details"]["unknown"] == bad
    assert "id" in err["details"]["allowed"]
