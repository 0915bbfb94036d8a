"""Message attachments end to end (docs/api.md, "Messages" and "Files"): a
message posted with `attachments: [file_id]` answers and lists full file
objects; a file uploaded outside channels moves into the channel it is
attached in (so the channel's members may read it); only one's own uploads or
files of the same channel may be attached, each to one message; a refused
post changes nothing, neither the message list nor where any file lives; and
deleting a message deletes its files (and their blobs when nothing else
refers to them), also after a restart."""
import os

import pytest

from conftest import assert_error, module_server
from client import accounts, register
from test_files import FILE_FIELDS, blob_path, blobs, new_channel, png, sha, text


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "attachments")


@pytest.fixture(scope="module")
def u(srv):
    return accounts(srv, "admin", "alice", "bob")


def messages(who, channel):
    return who.ok("GET", "/channels/%s/messages?limit=100" % channel["id"])["messages"]


def test_attachment_becomes_a_file_object_readable_by_members(srv, u):
    channel = new_channel(u.alice)
    u.bob.ok("POST", "/channels/%s/join" % channel["id"])
    data = png()
    f = u.alice.uploaded("cat.png", data)
    assert f["channel_id"] is None
    assert u.bob.download(f).status_code == 404
    m = u.alice.ok("POST", "/channels/%s/messages" % channel["id"],
                   {"content": "look", "attachments": [f["id"], f["id"]]}, 201)
    assert len(m["attachments"]) == 1
    att = m["attachments"][0]
    assert FILE_FIELDS - {"deduplicated"} <= set(att)
    assert att["id"] == f["id"] and att["sha256"] == f["sha256"]
    assert att["channel_id"] == channel["id"] and att["content_type"] == "image/png"
    listed = [x for x in messages(u.bob, channel) if x["id"] == m["id"]][0]
    assert [a["id"] for a in listed["attachments"]] == [f["id"]]
    r = u.bob.download(att)
    assert r.status_code == 200 and r.content == data


def test_a_message_may_be_only_attachments(srv, u):
    channel = new_channel(u.alice)
    f = u.alice.uploaded("notes.txt", text())
    m = u.alice.ok("POST", "/channels/%s/messages" % channel["id"], {"attachments": [f["id"]]},
                   201)
    assert m["content"] == "" or m["content"] is None
    assert [a["id"] for a in m["attachments"]] == [f["id"]]
    assert_error(u.alice.call("POST", "/channels/%s/messages" % channel["id"],
                              json={"attachments": []}), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("attachments", [
    "fil_x", {"id": "x"}, [1], [None], ["fil_nope"], ["x" * 5000], ["a"] * 11,
])
def test_bad_attachments_are_refused(srv, u, attachments):
    channel = new_channel(u.alice)
    before = messages(u.alice, channel)
    err = assert_error(u.alice.call("POST", "/channels/%s/messages" % channel["id"],
                                    json={"content": "x", "attachments": attachments}),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "attachments"
    assert messages(u.alice, channel) == before


def test_someone_elses_upload_or_another_channels_file_is_refused(srv, u):
    here, there = new_channel(u.alice), new_channel(u.alice)
    u.bob.ok("POST", "/channels/%s/join" % here["id"])
    bobs = u.bob.uploaded("bob.png", png())
    elsewhere = u.alice.uploaded("there.png", png(), channel_id=there["id"])
    for f in (bobs, elsewhere):
        err = assert_error(u.alice.call("POST", "/channels/%s/messages" % here["id"],
                                        json={"content": "x", "attachments": [f["id"]]}),
                           422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "attachments"
    assert u.bob.ok("GET", "/files/" + bobs["id"])["channel_id"] is None
    assert u.alice.ok("GET", "/files/" + elsewhere["id"])["channel_id"] == there["id"]
    assert messages(u.alice, here) == []


def test_a_refused_post_moves_no_file(srv, u):
    channel = new_channel(u.alice)
    mine = u.alice.uploaded("mine.png", png())
    err = assert_error(u.alice.call("POST", "/channels/%s/messages" % channel["id"],
                                    json={"content": "x", "attachments": [mine["id"], "fil_no"]}),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "attachments"
    err = assert_error(u.alice.call("POST", "/channels/%s/messages" % channel["id"],
                                    json={"content": "x", "attachments": [mine["id"]],
                                          "mentions": ["usr_nobody"]}),
                       422, "VALIDATION_ERROR")
    assert u.alice.ok("GET", "/files/" + mine["id"])["channel_id"] is None


def test_deleted_file_drops_out_of_the_message(srv, u):
    channel = new_channel(u.alice)
    f = u.alice.uploaded("gone.png", png())
    m = u.alice.ok("POST", "/channels/%s/messages" % channel["id"],
                   {"content": "soon gone", "attachments": [f["id"]]}, 201)
    u.alice.ok("DELETE", "/files/" + f["id"], status=204)
    listed = [x for x in messages(u.alice, channel) if x["id"] == m["id"]][0]
    assert listed["attachments"] == []
    assert_error(u.alice.call("POST", "/channels/%s/messages" % channel["id"],
                              json={"content": "x", "attachments": [f["id"]]}),
                 422, "VALIDATION_ERROR")


def post(who, channel, **body):
    return who.call("POST", "/channels/%s/messages" % channel["id"], json=body)


def test_a_file_is_attached_to_one_message_only(srv, u):
    channel = new_channel(u.alice)
    f = u.alice.uploaded("once.png", png())
    first = post(u.alice, channel, content="first", attachments=[f["id"]])
    assert first.status_code == 201, first.text
    before = messages(u.alice, channel)
    err = assert_error(post(u.alice, channel, content="again", attachments=[f["id"]]),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "attachments"
    assert messages(u.alice, channel) == before


def test_a_retried_post_with_attachments_answers_the_first_message(srv, u):
    channel = new_channel(u.alice)
    f = u.alice.uploaded("retry.png", png())
    body = dict(content="retry", attachments=[f["id"]], idempotency_key="k-%s" % f["id"])
    first = post(u.alice, channel, **body)
    assert first.status_code == 201, first.text
    again = post(u.alice, channel, **body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # The key is the author's: another user's retry is no retry.
    u.bob.ok("POST", "/channels/%s/join" % channel["id"])
    assert_error(post(u.bob, channel, **body), 422, "VALIDATION_ERROR")


def test_deleting_a_message_deletes_its_files_and_unshared_blobs(srv, u):
    channel = new_channel(u.alice)
    u.bob.ok("POST", "/channels/%s/join" % channel["id"])
    only, shared = png(), png()
    f1 = u.bob.uploaded("only.png", only)
    f2 = u.bob.uploaded("shared.png", shared)
    kept = u.alice.uploaded("kept.png", shared)      # the same bytes, not attached
    loose = u.bob.uploaded("loose.txt", text(), channel_id=channel["id"])
    m = post(u.bob, channel, content="two files", attachments=[f1["id"], f2["id"]]).json()
    assert {sha(only), sha(shared)} <= set(blobs(srv.data_dir))
    # A moderator (the owner) deletes the message: its files go with it.
    u.alice.ok("DELETE", "/messages/" + m["id"], status=204)
    for f in (f1, f2):
        assert_error(u.bob.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(srv.data_dir, sha(only)))
    assert os.path.isfile(blob_path(srv.data_dir, sha(shared)))
    assert u.alice.download(kept).content == shared
    assert u.bob.ok("GET", "/files/" + loose["id"])["id"] == loose["id"]
    listed = [x for x in messages(u.bob, channel) if x["id"] == m["id"]][0]
    assert listed["is_deleted"] is True and listed["attachments"] == []


def test_attachments_survive_a_restart(start_server):
    srv = start_server()
    alice = register(srv, "alice")
    channel = new_channel(alice)
    data = png()
    f = alice.uploaded("kept.png", data)
    m = alice.ok("POST", "/channels/%s/messages" % channel["id"],
                 {"content": "kept", "attachments": [f["id"]]}, 201)
    assert srv.stop() == 0
    srv = start_server(data_dir=srv.data_dir)
    alice = alice.on(srv)
    listed = [x for x in messages(alice, channel) if x["id"] == m["id"]][0]
    assert [a["id"] for a in listed["attachments"]] == [f["id"]]
    assert listed["attachments"][0]["channel_id"] == channel["id"]
    assert alice.download(listed["attachments"][0]).content == data
    # The tie to the message survives too: deleting it deletes the file.
    alice.ok("DELETE", "/messages/" + m["id"], status=204)
    assert_error(alice.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(srv.data_dir, sha(data)))


def test_deleting_a_channel_deletes_its_files(srv, u):
    channel = new_channel(u.alice)
    elsewhere = new_channel(u.alice)
    data, other = png(), png()
    uploads = [u.alice.uploaded("c%d.png" % i, data, channel_id=channel["id"]) for i in range(70)]
    attached = u.alice.uploaded("att.png", png())
    post(u.alice, channel, content="with file", attachments=[attached["id"]])
    survivor = u.alice.uploaded("other.png", other, channel_id=elsewhere["id"])
    u.alice.ok("DELETE", "/channels/" + channel["id"], status=204)
    for f in uploads[:3] + uploads[-3:] + [attached]:
        assert_error(u.alice.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert not os.path.exists(blob_path(srv.data_dir, sha(data)))
    assert u.alice.download(survivor).content == other
