"""A file's life follows every reference to it (docs/api.md, "Files"): a
user may attach their own avatar picture to a message, or make an attached
picture their avatar; deleting the message or its channel then leaves the
avatar (its file and blob) in place, and replacing the avatar leaves the
attachment. Only when the last reference goes is the file (and its blob,
when no other file holds the bytes) deleted. Both orders, across a restart
and a SIGKILL: the references are rebuilt by replay and by a snapshot."""
import os
import signal

import pytest

from client import API, register
from conftest import assert_error
from test_files import blob_path, new_channel, png, sha

AVATAR = "/users/me/avatar"


def avatar_id(url):
    return url[len("/api/v1/files/"):-len("/download")]


def set_avatar(who, data):
    r = who.call("PUT", AVATAR, files={"file": ("me.png", data, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()["avatar_url"]


def post(who, channel, fid):
    return who.ok("POST", "/channels/%s/messages" % channel["id"],
                  {"content": "my face", "attachments": [fid]}, 201)


def readable(who, url):
    return who.call("GET", url[len(API):]).status_code == 200


@pytest.fixture
def pair(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    alice, bob = register(server, "reflalice"), register(server, "reflbob")
    return server, alice, bob


def restarted(server, how, *who):
    """Restarts the server: "restart" stops it (the stop writes a snapshot,
    which the start loads), "kill" SIGKILLs it (the start replays the log).
    Returns the clients on the new process."""
    server.stop(sig=signal.SIGKILL if how == "kill" else signal.SIGTERM)
    server.start()
    return [w.on(server) for w in who]


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_avatar_then_attach_then_delete_message_and_channel(pair, how):
    server, alice, bob = pair
    data = png()
    url = set_avatar(alice, data)
    fid = avatar_id(url)
    c = new_channel(alice)
    bob.ok("POST", "/channels/%s/join" % c["id"])
    m = post(alice, c, fid)
    assert [a["id"] for a in m["attachments"]] == [fid]
    alice.ok("DELETE", "/messages/" + m["id"], status=204)
    assert readable(bob, url) and readable(alice, url)
    alice, bob = restarted(server, how, alice, bob)
    assert alice.ok("GET", "/users/me")["avatar_url"] == url
    assert readable(bob, url)
    assert os.path.isfile(blob_path(server.data_dir, sha(data)))
    # Attached again in another channel, which is then deleted.
    c2 = new_channel(alice)
    post(alice, c2, fid)
    alice.ok("DELETE", "/channels/" + c2["id"], status=204)
    alice, bob = restarted(server, how, alice, bob)
    assert readable(bob, url)
    assert bob.call("GET", url[len(API):]).content == data
    # The last reference goes: the file and its blob with it.
    set_avatar(alice, png())
    assert_error(alice.get("/files/" + fid), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(server.data_dir, sha(data)))


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_attach_then_avatar_then_delete_message_and_channel(pair, how):
    server, alice, bob = pair
    data = png()
    c = new_channel(alice)
    bob.ok("POST", "/channels/%s/join" % c["id"])
    f = alice.uploaded("pic.png", data, "image/png")
    m = post(alice, c, f["id"])
    url = "/api/v1/files/%s/download" % f["id"]
    assert alice.ok("PUT", "/users/me", {"avatar_url": url})["avatar_url"] == url
    alice.ok("DELETE", "/messages/" + m["id"], status=204)
    alice, bob = restarted(server, how, alice, bob)
    assert alice.ok("GET", "/users/me")["avatar_url"] == url
    assert readable(bob, url)
    # Its channel goes too: the avatar stays (and any user may read it).
    carol = register(server, "reflcarol")
    alice.ok("DELETE", "/channels/" + c["id"], status=204)
    alice, bob, carol = restarted(server, how, alice, bob, carol)
    assert readable(carol, url) and readable(bob, url)
    assert alice.ok("GET", "/files/" + f["id"])["channel_id"] is None
    assert os.path.isfile(blob_path(server.data_dir, sha(data)))


def test_replacing_an_attached_avatar_keeps_the_attachment(pair):
    server, alice, bob = pair
    data = png()
    url = set_avatar(alice, data)
    fid = avatar_id(url)
    c = new_channel(alice, is_private=True)
    alice.ok("POST", "/channels/%s/members" % c["id"], {"user_id": bob.id}, 201)
    m = post(alice, c, fid)
    set_avatar(alice, png())
    # Still the message's attachment, read as the message is.
    assert readable(bob, url)
    outsider = register(server, "refloutsider")
    assert outsider.call("GET", url[len(API):]).status_code == 404
    alice, bob, outsider = restarted(server, "kill", alice, bob, outsider)
    assert readable(bob, url)
    assert outsider.call("GET", url[len(API):]).status_code == 404
    # Deleting the message now deletes the file and its blob.
    alice.ok("DELETE", "/messages/" + m["id"], status=204)
    assert_error(alice.get("/files/" + fid), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(server.data_dir, sha(data)))


def test_someone_elses_avatar_is_not_attachable(pair):
    server, alice, bob = pair
    url = set_avatar(alice, png())
    c = new_channel(bob)
    before = bob.ok("GET", "/channels/%s/messages" % c["id"])["messages"]
    err = assert_error(bob.post("/channels/%s/messages" % c["id"],
                                {"content": "x", "attachments": [avatar_id(url)]}),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "attachments"
    assert bob.ok("GET", "/channels/%s/messages" % c["id"])["messages"] == before
    assert readable(bob, url)
