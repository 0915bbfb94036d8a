"""/api/v1/files end to end (docs/api.md, "Files"): multipart uploads whose
type comes from the bytes, content-addressed blobs stored once under
<data>/files/ab/cd/<sha256> and removed with their last file, downloads
(type, Content-Disposition, nosniff, ETag/If-None-Match, single byte
ranges), restarts (clean and SIGKILL), who may read, list and delete which
file, and every kind of bad upload.

Every refused upload is checked for its exact status and code AND for having
stored nothing: no new blob under <data>/files, no file record, and no
temporary file left in <data>/files/tmp. Special filenames (control
characters, NUL, invalid UTF-8) travel in multipart bodies built by hand,
since requests percent-escapes them. One server and its accounts serve most
of the module; settings that differ (allowed types, upload limit) and
restarts get their own server."""
import hashlib
import itertools
import json
import threading
import os
import re
import signal
import socket
import struct
import time
import urllib.parse
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import assert_error, module_server, parse_raw_response
from client import (API, BOUNDARY, accounts, multipart, read_until_closed, register,
                    wait_read_by_peer, wait_until)

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FILE_FIELDS = {"id", "filename", "size", "content_type", "sha256", "url", "channel_id",
               "original_filename", "is_public", "width", "height",
               "uploaded_by", "uploaded_at", "description", "deduplicated"}


# ---- content ---------------------------------------------------------------------

def png(pad=0):
    """A valid 1x1 PNG, unique (a random tEXt comment), padded by `pad` bytes."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    comment = b"Comment\x00" + uuid.uuid4().hex.encode() + b"x" * pad
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"tEXt", comment) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) +
            chunk(b"IEND", b""))


def script():
    return b"#!/bin/sh\nrm -rf \"$HOME\"  # " + uuid.uuid4().hex.encode() + b"\n"


def text():
    return b"plain words, nothing else " + uuid.uuid4().hex.encode() + b"\n"


def elf():
    with open("/bin/true", "rb") as f:
        return f.read() + uuid.uuid4().hex.encode()


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---- the data directory ----------------------------------------------------------

def blobs(data_dir):
    """{sha256: path} of every file in the blob tree (tmp/ excluded)."""
    root = os.path.join(str(data_dir), "files")
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.relpath(dirpath, root) == ".":
            dirnames[:] = [d for d in dirnames if d != "tmp"]
        for name in filenames:
            found[name] = os.path.relpath(os.path.join(dirpath, name), root)
    return found


def blob_path(data_dir, digest):
    return os.path.join(str(data_dir), "files", digest[:2], digest[2:4], digest)


def tmp_entries(data_dir):
    return os.listdir(os.path.join(str(data_dir), "files", "tmp"))


def assert_tmp_empty(data_dir):
    """tmp/ empties (the server tidies up when a request ends, which may be
    just after the client has its answer)."""
    wait_until(lambda: not tmp_entries(data_dir),
               what=lambda: "files/tmp empty: %r" % tmp_entries(data_dir))


_names = itertools.count()


def new_channel(who, **fields):
    return who.ok("POST", "/channels", dict({"name": "files-%d" % next(_names)}, **fields), 201)


def own_total(who):
    return who.ok("GET", "/files")["total"]


def assert_file_object(f, data, filename, content_type, owner, channel_id=None,
                       description=None, deduplicated=False):
    assert set(f) == FILE_FIELDS, f
    assert f["id"].startswith("file_")
    assert f["filename"] == filename
    assert f["size"] == len(data)
    assert f["content_type"] == content_type
    assert f["sha256"] == sha(data)
    assert f["url"] == "/api/v1/files/%s/download" % f["id"]
    assert f["channel_id"] == channel_id
    assert f["uploaded_by"] == owner.id
    assert TIME_RE.match(f["uploaded_at"])
    assert f["description"] == description
    assert f["deduplicated"] is deduplicated


def assert_nothing_stored(who, data_dir, blobs_before, total_before):
    assert blobs(data_dir) == blobs_before
    assert own_total(who) == total_before
    assert_tmp_empty(data_dir)


def disposition_parts(value):
    """(kind, ASCII fallback, decoded filename*) of a Content-Disposition."""
    m = re.fullmatch(r'(inline|attachment); filename="([^"\\]*)"; '
                     r"filename\*=UTF-8''([A-Za-z0-9.\-_%]*)", value)
    assert m, value
    return m.group(1), m.group(2), urllib.parse.unquote(m.group(3), errors="strict")


# ---- the module's server and accounts ---------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "files")


@pytest.fixture(scope="module")
def u(srv):
    """admin (the first account), alice, bob, carol."""
    return accounts(srv, "admin", "alice", "bob", "carol")


# ---- uploads and the file object -------------------------------------------------------

def test_upload_answers_the_file_object_typed_from_the_bytes(srv, u):
    data = png()
    f = u.alice.uploaded("x.txt", data, "text/plain", description="a picture")
    assert_file_object(f, data, "x.txt", "image/png", u.alice, description="a picture")
    assert os.path.isfile(blob_path(srv.data_dir, f["sha256"]))

    # The alias, and a script that claims to be a PNG by name and header.
    code = script()
    r = u.alice.upload("run.png", code, "image/png", path="/files/upload")
    assert r.status_code == 201, r.text
    g = r.json()
    assert_file_object(g, code, "run.png", "text/x-shellscript", u.alice)

    # GET answers the same object (deduplicated is a property of an upload).
    for one in (f, g):
        got = u.alice.ok("GET", "/files/" + one["id"])
        assert got == {k: v for k, v in one.items() if k != "deduplicated"}
    assert_error(u.alice.get("/files/file_nope"), 404, "RESOURCE_NOT_FOUND")
    assert_tmp_empty(srv.data_dir)


def test_download_is_byte_identical_with_safe_headers(srv, u):
    data = png(pad=3000)
    f = u.alice.uploaded("photo.png", data, "application/octet-stream")
    r = u.alice.download(f)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["ETag"] == '"%s"' % sha(data)
    assert int(r.headers["Content-Length"]) == len(data)
    assert disposition_parts(r.headers["Content-Disposition"]) == ("inline", "photo.png",
                                                                   "photo.png")
    # A cached copy is still good: 304 without a body.
    r = u.alice.download(f, **{"If-None-Match": '"%s"' % sha(data)})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == '"%s"' % sha(data)
    for listed in ('W/"%s"' % sha(data), '"%s", "%s"' % ("0" * 64, sha(data)), "*"):
        r = u.alice.download(f, **{"If-None-Match": listed})
        assert r.status_code == 304 and r.content == b"", listed
    for other in ('"%s"' % ("0" * 64), sha(data), '"%s' % sha(data), ""):
        r = u.alice.download(f, **{"If-None-Match": other})
        assert r.status_code == 200 and r.content == data, other

    # Anything that is not an image is an attachment.
    words = text()
    t = u.alice.uploaded("notes.png", words, "image/png")
    r = u.alice.download(t)
    assert r.content == words and r.headers["Content-Type"] == "text/plain"
    assert disposition_parts(r.headers["Content-Disposition"])[0] == "attachment"


@pytest.mark.parametrize("name", [
    "résumé 2024 ü.txt",
    "日本語のファイル.txt",
    "é" * 120 + ".txt",               # 244 bytes: its filename* is 700+ characters
    'quote" back\\slash;semi,comma.txt',
], ids=["latin", "japanese", "long", "punctuation"])
def test_download_disposition_for_unusual_names(srv, u, name):
    data = text()
    # Hand-made multipart: the name travels as raw UTF-8 (a backslash would
    # otherwise be taken for a path separator).
    status, _, body = u.alice.raw_upload(multipart([(b"file", name.encode().replace(b'"', b"%22"),
                                                     data)]))
    assert status == 201, body
    f = json.loads(body)
    stored = name.replace('"', "%22")
    if "\\" in stored:
        stored = stored.rsplit("\\", 1)[1]
    assert f["filename"] == stored
    r = u.alice.download(f)
    assert r.status_code == 200 and r.content == data
    kind, fallback, full = disposition_parts(r.headers["Content-Disposition"])
    assert kind == "attachment"
    assert full == stored
    assert all(0x20 <= ord(c) < 0x7F for c in fallback) and '"' not in fallback
    assert len(fallback) >= 1


@pytest.mark.parametrize("split", [0, 1, 2, 4, 7])
def test_body_arriving_in_pieces_is_stored_whole(srv, u, split):
    """The body's first read may end anywhere, even a few bytes into the
    file's content (libmicrohttpd then announces the part twice at offset 0)."""
    data = png(pad=2000)
    body = multipart([(b"file", b"pieces.png", data)])
    cut = body.index(b"\r\n\r\n") + 4 + split
    head = ("POST %s/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Connection: close\r\nContent-Type: multipart/form-data; boundary=%s\r\n"
            "Content-Length: %d\r\n\r\n" % (API, u.alice.token, BOUNDARY, len(body))).encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(head + body[:cut])
        wait_read_by_peer(sock)
        sock.sendall(body[cut:])
        answer = read_until_closed(sock)
    status, _, payload = parse_raw_response(answer)
    assert status == 201, payload
    f = json.loads(payload)
    assert f["size"] == len(data) and f["sha256"] == sha(data)
    assert u.alice.download(f).content == data


def test_same_bytes_are_stored_once_and_removed_with_the_last_file(srv, u):
    data = png()
    digest = sha(data)
    before = blobs(srv.data_dir)
    first = u.alice.uploaded("a.png", data)
    second = u.bob.uploaded("b.png", data, description="the same")
    assert first["deduplicated"] is False and second["deduplicated"] is True
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"] == digest
    after = blobs(srv.data_dir)
    assert set(after) - set(before) == {digest}
    assert len(after) == len(before) + 1
    assert after[digest] == os.path.join(digest[:2], digest[2:4], digest)
    with open(blob_path(srv.data_dir, digest), "rb") as fh:
        assert fh.read() == data
    assert_tmp_empty(srv.data_dir)

    # The first file goes: the blob stays for the second.
    u.alice.ok("DELETE", "/files/" + first["id"], status=204)
    assert_error(u.alice.get("/files/" + first["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.alice.download(first), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.alice.call("DELETE", "/files/" + first["id"]), 404, "RESOURCE_NOT_FOUND")
    # A delete removes the blob before it is answered: what is on disk now stays.
    assert os.path.isfile(blob_path(srv.data_dir, digest))
    assert u.bob.download(second).content == data

    # The last one goes: so does the blob.
    u.bob.ok("DELETE", "/files/" + second["id"], status=204)
    wait_until(lambda: not os.path.exists(blob_path(srv.data_dir, digest)), what="blob removed")
    assert blobs(srv.data_dir) == before

    # Uploaded again, the bytes are new again.
    third = u.carol.uploaded("c.png", data)
    assert third["deduplicated"] is False
    assert u.carol.download(third).content == data


def test_concurrent_uploads_and_deletes_of_the_same_bytes(srv, u):
    auth = {"Authorization": "Bearer " + u.alice.token}

    def post(data, name="same.png"):
        r = requests.post(srv.url(API + "/files"), files={"file": (name, data)}, headers=auth,
                          timeout=30)
        assert r.status_code == 201, r.text
        return r.json()

    # Eight at once: one blob, made by exactly one of them.
    data = png()
    before = blobs(srv.data_dir)
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: post(data), range(8)))
    assert sorted(f["deduplicated"] for f in made) == [False] + [True] * 7
    assert set(blobs(srv.data_dir)) - set(before) == {sha(data)}

    # The last file of a blob deleted while the same bytes are uploaded again:
    # whichever comes first, the new file's bytes must stay.
    for _ in range(12):
        data = png()
        old = post(data)
        start, out = threading.Barrier(2), {}

        def delete():
            start.wait()
            out["deleted"] = requests.delete(srv.url(API + "/files/" + old["id"]),
                                             headers=auth, timeout=30).status_code

        def upload():
            start.wait()
            out["new"] = post(data, "again.png")
        workers = [threading.Thread(target=delete), threading.Thread(target=upload)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert out["deleted"] == 204
        assert u.alice.download(out["new"]).content == data
    assert_tmp_empty(srv.data_dir)


# ---- ranges ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ranged(srv, u):
    data = png(pad=200)
    return data, u.alice.uploaded("range.png", data)


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-9", 0, 9),
    ("bytes=-5", -5, -1),
    ("bytes=5-", 5, -1),
    ("bytes=10-100000", 10, -1),      # the end is clamped to the file
    ("bytes=-100000", 0, -1),         # a suffix longer than the file: all of it
    ("bytes=7-7", 7, 7),
])
def test_single_range_answers_206(u, ranged, header, start, end):
    data, f = ranged
    size = len(data)
    first, last = start % size, end % size
    r = u.alice.download(f, Range=header)
    assert r.status_code == 206, r.text
    assert r.content == data[first:last + 1]
    assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (first, last, size)
    assert int(r.headers["Content-Length"]) == last - first + 1
    assert r.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("header", ["bytes=%d-", "bytes=%d-99999999", "bytes=-0",
                                    "bytes=99999999999999999999999999-"])
def test_unsatisfiable_range_answers_416(u, ranged, header):
    data, f = ranged
    if "%d" in header:
        header = header % len(data)
    r = u.alice.download(f, Range=header)
    err = assert_error(r, 416, "RANGE_NOT_SATISFIABLE")
    assert r.headers["Content-Range"] == "bytes */%d" % len(data)
    assert err["details"]["size"] == len(data)


@pytest.mark.parametrize("header", ["bytes=x-y", "items=1-2", "bytes=5-1", "bytes=0-1,4-5",
                                    "bytes=", "bytes=-", "bytes=1-2-3", "bytes= 1-2",
                                    "bytes=+1-2", "bytes=1--2"])
def test_malformed_range_answers_the_whole_file(u, ranged, header):
    data, f = ranged
    r = u.alice.download(f, Range=header)
    assert r.status_code == 200
    assert r.content == data
    assert "Content-Range" not in r.headers


# ---- who may do what ----------------------------------------------------------------------

def test_private_channel_files_are_for_its_members(srv, u):
    c = new_channel(u.alice, is_private=True)
    u.alice.ok("POST", "/channels/%s/members" % c["id"], {"user_id": u.bob.id}, 201)
    data = png()
    f = u.alice.uploaded("secret.png", data, channel_id=c["id"])
    assert f["channel_id"] == c["id"]
    mine = u.bob.uploaded("bobs.png", png(), channel_id=c["id"])

    for who in (u.alice, u.bob):
        assert who.ok("GET", "/files/" + f["id"])["id"] == f["id"]
        assert who.download(f).content == data
        listing = who.ok("GET", "/files?channel_id=" + c["id"])
        assert {x["id"] for x in listing["files"]} == {f["id"], mine["id"]}
        assert listing["total"] == 2
    # An admin outside the channel reads none of its files (it may delete them: below).
    assert_error(u.admin.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.admin.download(f), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.admin.get("/files?channel_id=" + c["id"]), 404, "RESOURCE_NOT_FOUND")
    # An outsider: the file and the channel do not exist.
    assert_error(u.carol.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.download(f), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.download(f, Range="bytes=0-3"), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.get("/files?channel_id=" + c["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.call("DELETE", "/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    # A member who did not upload it may read it, not delete it.
    assert_error(u.bob.call("DELETE", "/files/" + f["id"]), 403, "INSUFFICIENT_PERMISSIONS")
    # Nor may the channel's owner delete someone else's file.
    assert_error(u.alice.call("DELETE", "/files/" + mine["id"]), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert u.alice.download(f).content == data

    # Removed from the channel, bob keeps his own upload and loses alice's.
    u.alice.ok("DELETE", "/channels/%s/members/%s" % (c["id"], u.bob.id), status=204)
    assert u.bob.ok("GET", "/files/" + mine["id"])["id"] == mine["id"]
    assert u.bob.download(mine).status_code == 200
    assert_error(u.bob.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.download(f), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.bob.get("/files?channel_id=" + c["id"]), 404, "RESOURCE_NOT_FOUND")

    # An admin deletes anyone's file; the uploader its own.
    u.admin.ok("DELETE", "/files/" + f["id"], status=204)
    u.bob.ok("DELETE", "/files/" + mine["id"], status=204)
    assert u.alice.ok("GET", "/files?channel_id=" + c["id"])["total"] == 0


def test_download_of_someone_elses_private_file_is_404(srv, u):
    c = new_channel(u.bob, is_private=True)
    f = u.bob.uploaded("private.txt", text(), channel_id=c["id"])
    r = u.carol.download(f)
    assert_error(r, 404, "RESOURCE_NOT_FOUND")
    assert "Content-Disposition" not in r.headers
    assert_error(requests.get(srv.url(API + "/files/%s/download" % f["id"])), 401,
                 "AUTHENTICATION_REQUIRED")


def test_files_outside_channels_are_read_by_the_uploader_deleted_by_admins(srv, u):
    data = text()
    f = u.carol.uploaded("mine.txt", data, "text/plain")
    assert f["channel_id"] is None
    for who in (u.alice, u.bob):
        assert_error(who.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
        assert_error(who.download(f), 404, "RESOURCE_NOT_FOUND")
        assert_error(who.call("DELETE", "/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
        assert f["id"] not in {x["id"] for x in who.ok("GET", "/files?limit=100")["files"]}
    # An admin reads no one else's file, but may delete it.
    assert_error(u.admin.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.admin.download(f), 404, "RESOURCE_NOT_FOUND")
    assert u.carol.download(f).content == data
    u.admin.ok("DELETE", "/files/" + f["id"], status=204)
    assert_error(u.carol.download(f), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.admin.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")


def test_listing_own_uploads_and_a_channels_files(srv, u):
    dave = register(srv, "dave")
    ids = [dave.uploaded("n%d.txt" % i, text())["id"] for i in range(3)]
    listing = dave.ok("GET", "/files")
    assert listing["total"] == 3 and listing["page"] == 1 and listing["pages"] == 1
    assert [x["id"] for x in listing["files"]] == ids[::-1]  # newest first
    page = dave.ok("GET", "/files?limit=2&page=2")
    assert page["total"] == 3 and page["pages"] == 2
    assert [x["id"] for x in page["files"]] == [ids[0]]
    assert not {x["id"] for x in u.alice.ok("GET", "/files?limit=100")["files"]} & set(ids)

    public = new_channel(u.alice)
    shared = dave.uploaded("shared.txt", text(), channel_id=public["id"])
    listing = u.bob.ok("GET", "/files?channel_id=" + public["id"])  # readable, not a member
    assert [x["id"] for x in listing["files"]] == [shared["id"]]
    assert_error(dave.get("/files?channel_id=chn_nope"), 404, "RESOURCE_NOT_FOUND")
    assert_error(dave.get("/files?limit=0"), 422, "VALIDATION_ERROR")


def test_listing_own_uploads_includes_those_in_channels(srv, u):
    public = new_channel(u.bob)
    f = u.bob.uploaded("in-channel.txt", text(), channel_id=public["id"])
    assert f["id"] in {x["id"] for x in u.bob.ok("GET", "/files?limit=100")["files"]}


def test_uploading_into_a_channel_one_may_not_post_in_is_refused(srv, u):
    private = new_channel(u.alice, is_private=True)
    public = new_channel(u.alice)
    u.alice.ok("POST", "/channels/%s/ban-by-username/%s" % (public["id"], u.carol.username))
    before, total = blobs(srv.data_dir), own_total(u.carol)
    data = png()
    assert_error(u.carol.upload("a.png", data, channel_id=private["id"]), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(u.carol.upload("a.png", data, channel_id="chn_nope"), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.upload("a.png", data, channel_id=public["id"]), 403,
                 "INSUFFICIENT_PERMISSIONS")
    assert_nothing_stored(u.carol, srv.data_dir, before, total)
    assert u.alice.ok("GET", "/files?channel_id=" + public["id"])["total"] == 0
    # Without a token nothing is stored either.
    r = requests.post(srv.url(API + "/files"), files={"file": ("a.png", data, "image/png")})
    assert_error(r, 401, "AUTHENTICATION_REQUIRED")
    assert blobs(srv.data_dir) == before
    assert_tmp_empty(srv.data_dir)


# ---- restarts ---------------------------------------------------------------------------

def test_files_survive_clean_and_killed_restarts(start_server):
    s = start_server()
    admin, alice = register(s, "admin"), register(s, "alice")
    a, b = png(pad=5000), elf()
    fa1 = alice.uploaded("a1.png", a)
    fa2 = admin.uploaded("a2.png", a)
    fb = alice.uploaded("b.bin", b)
    assert fa2["deduplicated"] is True
    expected = {sha(a), sha(b)}

    def check(server):
        al, ad = alice.on(server), admin.on(server)
        assert set(blobs(server.data_dir)) == expected
        for who, f, data in ((al, fa1, a), (ad, fa2, a), (al, fb, b)):
            assert who.ok("GET", "/files/" + f["id"]) == {k: v for k, v in f.items()
                                                          if k != "deduplicated"}
            r = who.download(f)
            assert r.content == data and r.headers["ETag"] == '"%s"' % sha(data)
        return al, ad

    assert s.stop() == 0
    s = start_server(data_dir=s.data_dir)
    al, ad = check(s)
    # Two files name blob a: deleting one keeps it.
    al.ok("DELETE", "/files/" + fa1["id"], status=204)
    assert os.path.isfile(blob_path(s.data_dir, sha(a)))

    # An upload acknowledged just before a SIGKILL is there after it.
    c = text()
    fc = al.uploaded("c.txt", c)
    expected.add(sha(c))
    s.stop(signal.SIGKILL)
    s = start_server(data_dir=s.data_dir)
    al, ad = alice.on(s), admin.on(s)
    assert_error(al.get("/files/" + fa1["id"]), 404, "RESOURCE_NOT_FOUND")
    assert al.download(fc).content == c
    assert ad.download(fa2).content == a
    assert {x["id"] for x in al.ok("GET", "/files")["files"]} == {fb["id"], fc["id"]}
    assert set(blobs(s.data_dir)) == expected
    # The count survived the kill: the last file of blob a takes it along.
    ad.ok("DELETE", "/files/" + fa2["id"], status=204)
    wait_until(lambda: not os.path.exists(blob_path(s.data_dir, sha(a))), what="blob a removed")
    assert al.uploaded("again.png", a)["deduplicated"] is False

    s.stop(signal.SIGKILL)
    s = start_server(data_dir=s.data_dir)
    assert set(blobs(s.data_dir)) == expected
    assert alice.on(s).download(fb).content == b
    assert tmp_entries(s.data_dir) == []


# ---- bad input ------------------------------------------------------------------------------

def test_executables_and_scripts_refused_when_only_images_are_allowed(start_server):
    s = start_server(args=["--allowed-types", "image/*"])
    alice = register(s, "alice")
    before, total = blobs(s.data_dir), own_total(alice)
    err = assert_error(alice.upload("evil.png", script(), "image/png"), 415,
                       "UNSUPPORTED_MEDIA_TYPE")
    assert err["details"]["content_type"] == "text/x-shellscript"
    err = assert_error(alice.upload("evil.png", elf(), "image/png"), 415,
                       "UNSUPPORTED_MEDIA_TYPE")
    assert err["details"]["content_type"].startswith("application/x-")
    assert "executable" in err["details"]["content_type"] or \
        "sharedlib" in err["details"]["content_type"]
    assert_error(alice.upload("notes.txt", text(), "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_nothing_stored(alice, s.data_dir, before, total)
    assert alice.uploaded("ok.png", png())["content_type"] == "image/png"


@pytest.mark.parametrize("make, name, expected", [
    (script, "evil.png", "text/x-shellscript"),
    (elf, "evil.png", None),
    (lambda: b"<!DOCTYPE html><html><script>alert(1)</script></html>" +
     uuid.uuid4().hex.encode(), "page.png", "text/html"),
    (lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
     b"<script>alert(1)</script></svg><!--" + uuid.uuid4().hex.encode() + b"-->",
     "pic.svg", "image/svg+xml"),
])
def test_disguised_files_are_served_as_attachments(srv, u, make, name, expected):
    data = make()
    f = u.alice.uploaded(name, data, "image/png")
    if expected is None:
        assert f["content_type"].startswith("application/x-"), f
    else:
        assert f["content_type"] == expected
    r = u.alice.download(f)
    assert r.content == data
    assert r.headers["Content-Type"] == f["content_type"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert disposition_parts(r.headers["Content-Disposition"])[0] == "attachment"


@pytest.mark.parametrize("sent, kept", [
    ("../../etc/x.png", "x.png"),
    ("/etc/passwd.png", "passwd.png"),
    ("a/b/c.txt", "c.txt"),
    ("..\\..\\windows\\x.png", "x.png"),
    ("./.hidden.png", ".hidden.png"),
    ("d/" * 300 + "x.png", "x.png"),   # the path is long, the name is not
], ids=["dotdot", "absolute", "relative", "backslashes", "dot", "long-path"])
def test_path_in_the_filename_is_dropped(srv, u, sent, kept):
    data = png()
    status, _, body = u.alice.raw_upload(multipart([(b"file", sent.encode(), data)]))
    assert status == 201, body
    f = json.loads(body)
    assert f["filename"] == kept
    assert u.alice.download(f).content == data
    assert not os.path.exists(os.path.join(os.path.dirname(srv.data_dir), "etc"))
    assert not os.path.exists(os.path.join(srv.data_dir, "etc"))


@pytest.mark.parametrize("name", [b"a\x01b.png", b"tab\there.png", b"esc\x1b[31m.png",
                                  b"del\x7f.png", b"bell\x07.png", b"..", b"a/..", b"dir/",
                                  b"caf\xe9.png", b"bad\xc3.png", b"\xff\xfe.png",
                                  b"over\xc0\xaflong.png"],
                         ids=lambda n: repr(n)[2:-1])
def test_unsafe_filenames_are_refused(srv, u, name):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    st = u.alice.raw_upload(multipart([(b"file", name, png())]))
    err = assert_error(st, 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "filename"
    assert_nothing_stored(u.alice, srv.data_dir, before, total)


def test_filename_length_limits(srv, u):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    for n in (1000, 256):
        err = assert_error(u.alice.upload("n" * (n - 4) + ".png", png()), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "filename"
    # 128 two-byte characters are 256 bytes: too long as well.
    err = assert_error(u.alice.upload("é" * 128, png()), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "filename"
    assert_nothing_stored(u.alice, srv.data_dir, before, total)
    name = "n" * 251 + ".png"
    assert u.alice.uploaded(name, png())["filename"] == name


@pytest.mark.parametrize("name", [b"evil.sh\x00.png", b"\x00.png", b"x.png\x00"],
                         ids=["middle", "first", "last"])
def test_filename_with_nul_has_a_safe_outcome(srv, u, name):
    """libmicrohttpd's multipart parser may refuse the part or cut the name at
    the NUL: either way nothing unsafe may be stored or answered."""
    before, total = blobs(srv.data_dir), own_total(u.alice)
    data = png()
    status, headers, body = u.alice.raw_upload(multipart([(b"file", name, data)]))
    if status == 201:
        f = json.loads(body)
        assert f["filename"] == name.split(b"\x00")[0].decode()
        r = u.alice.download(f)
        assert r.content == data
        assert "\x00" not in r.headers["Content-Disposition"]
        u.alice.ok("DELETE", "/files/" + f["id"], status=204)
        wait_until(lambda: blobs(srv.data_dir) == before,
                   what=lambda: "blobs as before: %r" % blobs(srv.data_dir))
    else:
        err = assert_error((status, headers, body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] in ("filename", "file")
    assert_nothing_stored(u.alice, srv.data_dir, before, total)
    assert requests.get(srv.url("/api/health")).status_code == 200


def test_description_is_limited(srv, u):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    err = assert_error(u.alice.upload("d.png", png(), description="é" * 501), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "description"
    assert_nothing_stored(u.alice, srv.data_dir, before, total)
    assert u.alice.uploaded("d.png", png(), description="é" * 500)["description"] == "é" * 500


@pytest.mark.parametrize("parts", [
    [(b"channel_id", None, b""), (b"description", None, b"no file here")],
    [(b"upload", b"x.png", b"\x89PNG\r\n\x1a\n...")],   # a file, in another field
    [(b"file", None, b"\x89PNG\r\n\x1a\n...")],         # a field named file, not a file
])
def test_missing_file_field_is_refused(srv, u, parts):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    err = assert_error(u.alice.raw_upload(multipart(parts)), 422, "VALIDATION_ERROR")
    # a file in another part is refused naming that part (docs/api.md, "Unknown parameters")
    assert err["details"]["field"] == ("upload" if parts[0][0] == b"upload" else "file")
    assert_nothing_stored(u.alice, srv.data_dir, before, total)
    err = assert_error(u.alice.call("POST", "/files", json={"file": "x"}), 422,
                       "VALIDATION_ERROR")
    assert err["details"]["field"] == "file"


def test_extra_file_parts_are_ignored(srv, u):
    before = blobs(srv.data_dir)
    first, second = text(), text()
    status, _, body = u.alice.raw_upload(multipart([(b"file", b"one.txt", first),
                                                    (b"file", b"two.txt", second)]))
    assert status == 201, body
    f = json.loads(body)
    assert f["filename"] == "one.txt" and f["sha256"] == sha(first)
    assert set(blobs(srv.data_dir)) - set(before) == {sha(first)}
    assert_tmp_empty(srv.data_dir)


def test_multipart_without_a_boundary_is_refused(srv, u):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    body = multipart([(b"file", b"x.png", png())])
    assert_error(u.alice.raw_upload(body, content_type="multipart/form-data"), 400,
                 "BAD_REQUEST")
    err = assert_error(u.alice.raw_upload(body, content_type="multipart/form-data; boundary=no"),
                       422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "file"
    assert_nothing_stored(u.alice, srv.data_dir, before, total)


def test_multipart_body_without_its_closing_boundary_is_refused(srv, u):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    body = multipart([(b"file", b"cut.bin", os.urandom(5000))])
    body = body[:-len(b"\r\n--%s--\r\n" % BOUNDARY.encode())]
    status, _, payload = u.alice.raw_upload(body)
    assert status in (400, 422), payload
    assert_nothing_stored(u.alice, srv.data_dir, before, total)


def test_zero_byte_file_is_refused(srv, u):
    before, total = blobs(srv.data_dir), own_total(u.alice)
    err = assert_error(u.alice.upload("empty.png", b"", "image/png"), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == "file"
    assert_nothing_stored(u.alice, srv.data_dir, before, total)
    assert not os.path.exists(blob_path(srv.data_dir, sha(b"")))


def half_an_upload(server, who):
    """A socket that has sent the headers and half the body of a 200 KB
    upload (the caller closes it, or not)."""
    body = multipart([(b"file", b"cut.bin", os.urandom(200000))])
    head = ("POST %s/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n"
            % (API, who.token, BOUNDARY, len(body))).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(head + body[:len(body) // 2])
    # The server holds a temporary file for the upload meanwhile.
    wait_until(lambda: len(tmp_entries(server.data_dir)) == 1, what="the upload's temporary file")
    return sock


def test_truncated_multipart_body_stores_nothing(start_server):
    # libmicrohttpd 0.9.75 now and then misses the close of a connection whose
    # body stopped half-way and holds the request until the idle timeout
    # (docs/architecture.md, "Known limits"); a short one bounds the wait.
    s = start_server(args=["--rate-limit", "0", "--idle-timeout", "2"])
    alice = register(s, "alice")
    for _ in range(5):
        before, total = blobs(s.data_dir), own_total(alice)
        half_an_upload(s, alice).close()
        # The half upload can take the whole idle timeout: alice's kept-alive
        # connection may be closed by the server just as it is reused.
        alice.session.close()
        assert_tmp_empty(s.data_dir)
        assert_nothing_stored(alice, s.data_dir, before, total)
    assert requests.get(s.url("/api/health")).status_code == 200
    assert alice.uploaded("after.png", png())["size"] > 0


def test_shutdown_does_not_wait_for_an_upload_whose_client_left(start_server):
    """A client that sent half its upload and closed the connection can never
    finish it: a graceful stop does not wait for it, even with a drain timeout
    far longer than this test's deadline, and the temporary file goes."""
    s = start_server(args=["--rate-limit", "0", "--drain-timeout", "3600"])
    alice = register(s, "alice")
    sock = half_an_upload(s, alice)
    sock.shutdown(socket.SHUT_WR)
    try:
        assert s.stop(timeout=120) == 0
        assert not tmp_entries(s.data_dir)
    finally:
        sock.close()


def test_shutdown_waits_for_a_connected_upload_up_to_the_drain_timeout(start_server):
    """A client still connected is waited for; one that sends nothing more
    holds the stop only for drain_timeout, and its temporary file goes."""
    s = start_server(args=["--rate-limit", "0", "--drain-timeout", "1"])
    alice = register(s, "alice")
    sock = half_an_upload(s, alice)
    try:
        assert s.stop(timeout=120) == 0
        assert "stopping with 1 requests still in flight" in s.log()
        assert not tmp_entries(s.data_dir)
    finally:
        sock.close()


def _chunked_multipart(size, chunk=16384):
    yield ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n" % BOUNDARY).encode()
    left = size
    while left > 0:
        n = min(chunk, left)
        yield b"\xab" * n
        left -= n
    yield ("\r\n--%s--\r\n" % BOUNDARY).encode()


def test_upload_over_the_limit_is_413(start_server):
    s = start_server(args=["--max-upload-bytes", "100000"])
    alice = register(s, "alice")
    before, total = blobs(s.data_dir), own_total(alice)
    ctype = {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY}

    # With a Content-Length.
    err = assert_error(alice.upload("big.bin", b"\xab" * 100001), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["max_bytes"] == 100000
    assert_nothing_stored(alice, s.data_dir, before, total)
    # Chunked (no Content-Length: the size is only known as it comes).
    r = alice.call("POST", "/files", data=_chunked_multipart(300000), headers=ctype)
    err = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["max_bytes"] == 100000
    assert_nothing_stored(alice, s.data_dir, before, total)
    # Declared far too large: refused from the headers.
    raw = ("POST %s/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n"
           % (API, alice.token, BOUNDARY, 50 << 20)).encode()
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(raw)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert_nothing_stored(alice, s.data_dir, before, total)

    # Exactly the limit is fine, chunked too.
    data = b"\xab" * 100000
    f = alice.uploaded("limit.bin", data)
    assert f["size"] == 100000 and alice.download(f).content == data
    r = alice.call("POST", "/files", data=_chunked_multipart(100000), headers=ctype)
    assert r.status_code == 201 and r.json()["deduplicated"] is True
    assert_tmp_empty(s.data_dir)


def test_direct_channel_files_are_for_its_two_members(srv, u):
    r = u.alice.call("POST", "/channels/direct", json={"user_ids": [u.bob.id]})
    assert r.status_code in (200, 201), r.text
    direct = r.json()
    data = png()
    f = u.bob.uploaded("dm.png", data, channel_id=direct["id"])
    assert u.alice.download(f).content == data
    assert_error(u.admin.download(f), 404, "RESOURCE_NOT_FOUND")  # no reader of others' DMs
    assert_error(u.carol.get("/files/" + f["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(u.carol.download(f), 404, "RESOURCE_NOT_FOUND")
    assert f["id"] not in {x["id"] for x in u.carol.ok("GET", "/files?limit=100")["files"]}
    assert_error(u.carol.get("/files?channel_id=" + direct["id"]), 404, "RESOURCE_NOT_FOUND")
    before, total = blobs(srv.data_dir), own_total(u.carol)
    assert_error(u.carol.upload("x.png", png(), channel_id=direct["id"]), 404,
                 "RESOURCE_NOT_FOUND")
    assert_nothing_stored(u.carol, srv.data_dir, before, total)
