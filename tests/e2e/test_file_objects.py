"""File objects as PlexiChat 001 shows them (docs/api.md, "Files"):
original_filename (the name as sent, sanitised), is_public (set at upload
with the multipart field is_public, or by PATCH /files/{id} {is_public}, by
the uploader only; a public file is readable by every signed-in user), and
width/height of images read from their header bytes (PNG, GIF, JPEG, WebP;
null for anything else or a header that does not parse). All of it
durable: after a restart (snapshot) and a SIGKILL (replay)."""
import signal
import struct
import uuid
import zlib

import pytest
import requests

from client import API, register
from conftest import assert_error
from test_files import png, text


def chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body +
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_of(w, h):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"tEXt", b"Comment\x00" + uuid.uuid4().hex.encode()) +
            chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + chunk(b"IEND", b""))


def gif_of(w, h):
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) +
            b"!\xfe" + bytes([32]) + uuid.uuid4().hex.encode() + b"\x00" +
            b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def jpeg_of(w, h, exif=0):
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    com = uuid.uuid4().hex.encode()
    com = b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
    pad = b""
    while exif > 0:  # APP1 segments of up to 65,533 bytes each
        n = min(exif, 65000)
        pad += b"\xff\xe1" + struct.pack(">H", n + 2) + b"\x00" * n
        exif -= n
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + com + pad + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + \
        b"\x00" * 16 + b"\xff\xd9"


def webp_vp8x(w, h):
    body = b"\x00" * 4 + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    rest = b"VP8X" + struct.pack("<I", len(body)) + body
    tail = uuid.uuid4().hex.encode()
    rest += b"XTRA" + struct.pack("<I", len(tail)) + tail
    return b"RIFF" + struct.pack("<I", 4 + len(rest)) + b"WEBP" + rest


def webp_vp8l(w, h):
    bits = (w - 1) | ((h - 1) << 14)
    body = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 11
    tail = uuid.uuid4().hex.encode()
    rest = b"VP8L" + struct.pack("<I", len(body)) + body + b"XTRA" + struct.pack("<I", 32) + tail
    return b"RIFF" + struct.pack("<I", 4 + len(rest)) + b"WEBP" + rest


@pytest.fixture
def pair(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    return server, register(server, "objalice"), register(server, "objbob")


def restarted(server, how, *who):
    server.stop(sig=signal.SIGKILL if how == "kill" else signal.SIGTERM)
    server.start()
    return [w.on(server) for w in who]


@pytest.mark.parametrize("make,w,h,ctype", [
    (png_of, 640, 480, "image/png"),
    (gif_of, 320, 200, "image/gif"),
    (jpeg_of, 360, 240, "image/jpeg"),
    (webp_vp8x, 1000, 2000, "image/webp"),
    (webp_vp8l, 99, 77, "image/webp"),
])
def test_images_carry_their_width_and_height(pair, make, w, h, ctype):
    server, alice, bob = pair
    f = alice.uploaded("pic.img", make(w, h))
    assert f["content_type"] == ctype, f
    assert (f["width"], f["height"]) == (w, h)
    assert alice.ok("GET", "/files/" + f["id"])["width"] == w
    (alice,) = restarted(server, "kill", alice)
    got = alice.ok("GET", "/files/" + f["id"])
    assert (got["width"], got["height"]) == (w, h)


def test_non_images_and_unreadable_headers_have_no_size(pair):
    server, alice, bob = pair
    f = alice.uploaded("notes.txt", text())
    assert f["width"] is None and f["height"] is None
    # A JPEG whose frame header lies past the 16 KiB head that is read.
    big = alice.uploaded("big.jpg", jpeg_of(50, 60, exif=40000))
    assert big["content_type"] == "image/jpeg"
    assert big["width"] is None and big["height"] is None
    # A PNG whose IHDR says 0 x 0.
    zero = alice.uploaded("zero.png", png_of(0, 0))
    assert zero["width"] is None and zero["height"] is None


def test_original_filename_is_the_name_as_sent_sanitised(pair):
    server, alice, bob = pair
    f = alice.uploaded("../../etc/photo\u202egpj.exe", b"MZ" + uuid.uuid4().bytes)
    assert f["original_filename"] == f["filename"] == "photogpj.exe"


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_a_public_file_is_readable_by_every_user_and_stays_so(pair, how):
    server, alice, bob = pair
    data = png()
    private = alice.uploaded("private.png", png())
    assert private["is_public"] is False
    assert_error(bob.get("/files/" + private["id"]), 404, "RESOURCE_NOT_FOUND")
    pub = alice.uploaded("public.png", data, is_public="true")
    assert pub["is_public"] is True
    assert bob.ok("GET", "/files/" + pub["id"])["is_public"] is True
    assert bob.download(pub).content == data
    # PATCH by the uploader makes one public, and another private again.
    assert alice.ok("PATCH", "/files/" + private["id"], {"is_public": True})["is_public"] is True
    assert alice.ok("PATCH", "/files/" + pub["id"], {"is_public": False})["is_public"] is False
    alice, bob = restarted(server, how, alice, bob)
    assert bob.ok("GET", "/files/" + private["id"])["is_public"] is True
    assert_error(bob.get("/files/" + pub["id"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(bob.download(pub), 404, "RESOURCE_NOT_FOUND")
    # Anonymous callers read nothing, public or not.
    r = requests.get(server.url(API + "/files/%s/download" % private["id"]))
    assert r.status_code == 401


def test_only_the_uploader_changes_is_public_and_bad_values_change_nothing(pair):
    server, alice, bob = pair
    f = alice.uploaded("mine.png", png(), is_public="1")
    assert_error(bob.patch("/files/" + f["id"], {"is_public": False}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    hidden = alice.uploaded("hidden.png", png())
    assert_error(bob.patch("/files/" + hidden["id"], {"is_public": True}), 404,
                 "RESOURCE_NOT_FOUND")
    for body in ({}, {"is_public": "true"}, {"is_public": 1}, {"is_public": None}):
        err = assert_error(alice.patch("/files/" + f["id"], body), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "is_public"
    assert_error(alice.patch("/files/file_nope", {"is_public": True}), 404, "RESOURCE_NOT_FOUND")
    assert alice.ok("GET", "/files/" + f["id"])["is_public"] is True
    before = alice.ok("GET", "/files")["total"]
    for v in ("yes", "TRUE", "2", "true "):
        err = assert_error(alice.upload("x.png", png(), is_public=v), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "is_public"
    assert alice.ok("GET", "/files")["total"] == before
