"""PUT /api/v1/users/me/avatar end to end (docs/api.md, "Users"): a
multipart `file` that libmagic finds to be an image (SVG excepted, since it
can carry scripts) becomes the user's avatar: a file every signed-in user may
download, named by avatar_url. Replacing an avatar deletes the old file and
its blob (unless other files hold the same bytes); anything but an image is
refused with nothing stored and the avatar unchanged; all of it survives a
restart."""
import os
import uuid

import pytest
import requests

from conftest import assert_error, module_server
from client import accounts, register
from test_files import (assert_nothing_stored, assert_tmp_empty, blob_path, blobs, elf, own_total,
                        png, script, sha, text)

AVATAR = "/users/me/avatar"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "avatars")


@pytest.fixture(scope="module")
def u(srv):
    return accounts(srv, "admin", "alice", "bob")


def put_avatar(who, data, name="me.png", ctype="image/png"):
    return who.call("PUT", AVATAR, files={"file": (name, data, ctype)})


def file_id(avatar_url):
    assert avatar_url.startswith("/api/v1/files/") and avatar_url.endswith("/download")
    return avatar_url[len("/api/v1/files/"):-len("/download")]


def test_an_image_becomes_the_avatar_everyone_may_see(srv, u):
    data = png()
    r = put_avatar(u.alice, data)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == u.alice.id and "preferences" in me
    fid = file_id(me["avatar_url"])
    assert u.alice.ok("GET", "/users/me")["avatar_url"] == me["avatar_url"]
    assert u.bob.ok("GET", "/users/" + u.alice.id)["avatar_url"] == me["avatar_url"]
    got = u.bob.call("GET", me["avatar_url"][len("/api/v1"):])
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("inline")
    assert u.bob.ok("GET", "/files/" + fid)["sha256"] == sha(data)
    assert os.path.isfile(blob_path(srv.data_dir, sha(data)))
    # Another user may see it, not delete it.
    assert_error(u.bob.call("DELETE", "/files/" + fid), 403, "INSUFFICIENT_PERMISSIONS")


def test_replacing_the_avatar_deletes_the_old_file_and_blob(srv, u):
    first, second = png(), png()
    old = file_id(put_avatar(u.bob, first).json()["avatar_url"])
    new_url = put_avatar(u.bob, second).json()["avatar_url"]
    assert file_id(new_url) != old
    assert_error(u.bob.get("/files/" + old), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(srv.data_dir, sha(first)))
    assert u.alice.call("GET", new_url[len("/api/v1"):]).content == second
    # Bytes another file also holds stay when the avatar moves on.
    shared = png()
    kept = u.bob.uploaded("kept.png", shared)
    put_avatar(u.bob, shared)
    put_avatar(u.bob, png())
    assert u.bob.download(kept).content == shared


@pytest.mark.parametrize("make,name,ctype", [
    (text, "notes.png", "image/png"),
    (script, "evil.png", "image/png"),
    (elf, "evil.png", "image/png"),
    (lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
     b"<script>alert(1)</script></svg><!--" + uuid.uuid4().hex.encode() + b"-->",
     "pic.svg", "image/svg+xml"),
])
def test_anything_but_an_image_is_refused(srv, u, make, name, ctype):
    before_url = u.alice.ok("GET", "/users/me")["avatar_url"]
    before, total = blobs(srv.data_dir), own_total(u.alice)
    err = assert_error(put_avatar(u.alice, make(), name, ctype), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert not err["details"]["content_type"].startswith("image/png")
    assert_nothing_stored(u.alice, srv.data_dir, before, total)
    assert u.alice.ok("GET", "/users/me")["avatar_url"] == before_url


def test_bad_avatar_requests(srv, u):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    assert_error(u.alice.call("PUT", AVATAR, files={"other": ("x.png", png(), "image/png")}),
                 422, "VALIDATION_ERROR")
    err = assert_error(u.alice.call("PUT", AVATAR, json={"avatar_url": "x"}), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "avatar_url"  # the route's only field is file
    err = assert_error(u.alice.call("PUT", AVATAR, json={}), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "file"
    assert_error(put_avatar(u.alice, b""), 422, "VALIDATION_ERROR")
    r = requests.put(srv.url("/api/v1" + AVATAR), files={"file": ("a.png", png())}, timeout=30)
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    assert_nothing_stored(u.alice, srv.data_dir, before, total)


def test_avatar_survives_a_restart(start_server):
    s = start_server()
    alice, bob = register(s, "alice"), register(s, "bob")
    data = png()
    url = put_avatar(alice, data).json()["avatar_url"]
    assert s.stop() == 0
    s = start_server(data_dir=s.data_dir)
    bob = bob.on(s)
    assert bob.ok("GET", "/users/" + alice.id)["avatar_url"] == url
    assert bob.call("GET", url[len("/api/v1"):]).content == data
    assert_tmp_empty(s.data_dir)


def test_setting_another_avatar_url_deletes_the_uploaded_avatar(srv, u):
    data = png()
    fid = file_id(put_avatar(u.admin, data).json()["avatar_url"])
    # A PUT /users/me that leaves avatar_url alone keeps the file.
    u.admin.ok("PUT", "/users/me", {"bio": "still here"})
    assert u.admin.ok("GET", "/files/" + fid)["id"] == fid
    me = u.admin.ok("PUT", "/users/me", {"avatar_url": "https://example.com/me.png"})
    assert me["avatar_url"] == "https://example.com/me.png"
    assert_error(u.admin.get("/files/" + fid), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(srv.data_dir, sha(data)))
