"""Backups end to end (docs/admin.md "Backups", docs/operations.md "Backups"):
an archive streamed by GET /admin/backup while a thread keeps posting, with
snapshots taken while it streams (the held snapshot and segments must stay),
verified and restored by the CLI into a new directory, and a server started
on it: the messages present are exactly a prefix of the writer's sequence,
holding every write acknowledged before the backup began and none sent after
its answer began; the uploaded file downloads byte-identical. Stored
archives (POST, list, download, delete) and their audit entries; one backup
at a time (409); hostile names and parameters; non-admins 403; truncated,
bit-flipped and hostile archives refused naming the member; a non-empty
target refused; the offline backup of a stopped directory and the online
one through the API (`parley backup --url`)."""
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import tarfile
import threading
import time

import pytest
import requests
import zstandard

from client import API, Client, register, wait_until
from conftest import BIN, assert_error

ROUTES = [("GET", "/admin/backup"), ("POST", "/admin/backup"), ("GET", "/admin/backups"),
          ("GET", "/admin/backups/parley-20260101T000000Z-1.tar.zst"),
          ("DELETE", "/admin/backups/parley-20260101T000000Z-1.tar.zst")]


def slow_get(who, path):
    """GET `path` on a connection with a tiny receive buffer, so the server
    cannot run ahead of the reader by more than its own send buffer (4 MiB
    at most): an archive larger than that stays in progress until read.
    Returns the http.client response (headers read, body not)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(120)
    sock.connect(("127.0.0.1", who.server.port))
    conn = http.client.HTTPConnection("127.0.0.1", who.server.port, timeout=120)
    conn.sock = sock
    conn.request("GET", API + path, headers={"Authorization": "Bearer " + who.token})
    resp = conn.getresponse()
    resp.conn = conn
    return resp


def cli(*args, env=None):
    return subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, **(env or {})))


def post(who, cid, text):
    r = who.post("/channels/%s/messages" % cid, {"content": text})
    assert r.status_code == 201, r.text
    return r.json()


def contents(who, cid):
    """Every message of the channel, oldest first."""
    out, before = [], None
    while True:
        params = {"limit": 100}
        if before:
            params["before"] = before
        body = who.ok("GET", "/channels/%s/messages?" % cid + "&".join(
            "%s=%s" % kv for kv in params.items()))
        out = [m["content"] for m in body["messages"]] + out
        if not body["has_more"]:
            return out
        before = body["messages"][0]["id"]


class Writer(threading.Thread):
    """Posts "w<n>" in order until stopped, noting when each was sent and
    acknowledged (time.monotonic)."""

    def __init__(self, who, cid):
        super().__init__(daemon=True)
        self.who = Client(who.server, who.pair)
        self.cid = cid
        self.stop = threading.Event()
        self.sent, self.acked = [], []
        self.errors = []

    def run(self):
        n = 0
        while not self.stop.is_set():
            self.sent.append(time.monotonic())
            r = self.who.post("/channels/%s/messages" % self.cid, {"content": "w%d" % n})
            if r.status_code != 201:
                self.errors.append(r.text)
                return
            self.acked.append(time.monotonic())
            n += 1


def test_backup_under_load_restores_exactly_up_to_its_lsn(start_server, tmp_path):
    srv = start_server()
    root = register(srv, "bkroot")
    cid = root.ok("POST", "/channels", {"name": "backup-load"}, 201)["id"]
    for i in range(30):
        post(root, cid, "early%d" % i)
    # Incompressible and large, so the stream is still sending it when the
    # snapshots below run: the held snapshot and log are read after it.
    blob = os.urandom(12 << 20)
    f = root.uploaded("big.bin", blob)
    snap = root.ok("POST", "/admin/snapshot")
    for i in range(30):
        post(root, cid, "after-snap%d" % i)
    # A restart starts a new segment: the first one then holds only records
    # that later snapshots cover, which the cleaner would remove unheld.
    srv.stop()
    srv = start_server(data_dir=srv.data_dir)
    root = root.on(srv)
    for i in range(10):
        post(root, cid, "after-restart%d" % i)

    writer = Writer(root, cid)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 20, what="the writer going")
    began = time.monotonic()
    r = slow_get(root, "/admin/backup")
    assert r.status == 200, r.read()
    headers_at = time.monotonic()
    assert r.getheader("Content-Type") == "application/zstd"
    lsn = int(r.getheader("X-Backup-Lsn"))
    disposition = r.getheader("Content-Disposition")
    assert disposition.startswith('attachment; filename="parley-') and \
        disposition.endswith('-%d.tar.zst"' % lsn)
    data = bytearray(r.read(64 * 1024))
    # While the archive streams (held up in the blob by the unread stream):
    # two snapshots (each trims what the previous one covers, so the
    # snapshot and first segment of the backup would go unheld) and the
    # writer still going.
    n = len(writer.acked)
    wait_until(lambda: len(writer.acked) >= n + 10, what="writes during the backup")
    s1 = root.ok("POST", "/admin/snapshot")
    n = len(writer.acked)
    wait_until(lambda: len(writer.acked) >= n + 10, what="writes during the backup")
    s2 = root.ok("POST", "/admin/snapshot")
    assert s2["lsn"] > s1["lsn"] > lsn
    data += r.read()
    r.conn.close()
    n = len(writer.acked)
    wait_until(lambda: len(writer.acked) >= n + 10, what="writes after the backup")
    writer.stop.set()
    writer.join(60)
    assert not writer.errors, writer.errors
    archive = tmp_path / "load.tar.zst"
    archive.write_bytes(bytes(data))

    v = cli("backup", "verify", archive)
    assert v.returncode == 0, v.stderr
    assert "lsn %d," % lsn in v.stdout
    manifest = read_manifest(bytes(data))
    assert manifest["lsn"] == lsn and manifest["snapshot_lsn"] >= snap["lsn"]
    assert manifest["counts"]["blobs"] == 1 and manifest["include_files"] is True

    target = tmp_path / "restored"
    rs = cli("restore", archive, "--data-dir", target)
    assert rs.returncode == 0, rs.stderr
    assert "\r" not in rs.stderr  # no progress line when stderr is not a terminal
    assert not (target / "backups").exists()
    new = start_server(data_dir=target)
    again = root.on(new)
    got = contents(again, cid)
    fixed = ["early%d" % i for i in range(30)] + ["after-snap%d" % i for i in range(30)] + \
        ["after-restart%d" % i for i in range(10)]
    assert got[:len(fixed)] == fixed
    tail = got[len(fixed):]
    assert tail == ["w%d" % i for i in range(len(tail))], "not a prefix of the writes"
    before = sum(1 for t in writer.acked if t < began)
    after = next(i for i, t in enumerate(writer.sent) if t > headers_at)
    assert before <= len(tail) <= after, (before, len(tail), after)
    d = again.download(f)
    assert d.status_code == 200 and hashlib.sha256(d.content).digest() == \
        hashlib.sha256(blob).digest()
    # The source server went on: it has every write.
    assert len(contents(root, cid)) == len(fixed) + len(writer.acked)


def read_manifest(data):
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) \
            as z, tarfile.open(fileobj=z, mode="r|") as t:
        for m in t:
            if m.name == "manifest.json":
                return json.loads(t.extractfile(m).read())
    raise AssertionError("no manifest")


@pytest.fixture
def stored(start_server):
    srv = start_server()
    root = register(srv, "storeroot")
    cid = root.ok("POST", "/channels", {"name": "stored"}, 201)["id"]
    for i in range(20):
        post(root, cid, "s%d" % i)
    blob = os.urandom(3 << 20)
    f = root.uploaded("data.bin", blob)
    return srv, root, cid, f, blob


def test_stored_backups_list_download_delete_and_audit(stored, tmp_path):
    srv, root, cid, f, blob = stored
    made = root.ok("POST", "/admin/backup", {"include_files": True}, 201)
    assert set(made) >= {"name", "size", "lsn", "created_at"}
    name = made["name"]
    assert name.startswith("parley-") and name.endswith("-%d.tar.zst" % made["lsn"])
    assert os.path.getsize(os.path.join(srv.data_dir, "backups", name)) == made["size"]
    small = root.ok("POST", "/admin/backup", {"include_files": False}, 201)
    assert small["size"] < made["size"] - len(blob) // 2
    listed = root.ok("GET", "/admin/backups")["backups"]
    assert {b["name"] for b in listed} == {name, small["name"]}
    entry = next(b for b in listed if b["name"] == name)
    assert entry["size"] == made["size"] and entry["lsn"] == made["lsn"]

    d = root.get("/admin/backups/" + name)
    assert d.status_code == 200 and d.headers["Content-Type"] == "application/zstd"
    assert len(d.content) == made["size"]
    path = tmp_path / name
    path.write_bytes(d.content)
    assert cli("backup", "verify", path).returncode == 0
    assert read_manifest(d.content)["include_files"] is True
    assert read_manifest(root.get("/admin/backups/" + small["name"]).content)[
        "counts"]["blobs"] == 0

    # A backup of the directory never holds the backups folder.
    assert not any(m.startswith("backups") for m in member_names(d.content))

    assert root.call("DELETE", "/admin/backups/" + small["name"]).status_code == 204
    assert_error(root.get("/admin/backups/" + small["name"]), 404, "RESOURCE_NOT_FOUND")
    assert_error(root.delete("/admin/backups/" + small["name"]), 404, "RESOURCE_NOT_FOUND")
    assert [b["name"] for b in root.ok("GET", "/admin/backups")["backups"]] == [name]

    # A HEAD of the streamed backup answers its type without taking one.
    h = root.call("HEAD", "/admin/backup?include_files=true")
    assert h.status_code == 200 and h.headers["Content-Type"] == "application/zstd"
    assert h.content == b"" and "X-Backup-Lsn" not in h.headers

    log = root.ok("GET", "/admin/audit-log?limit=100")["entries"]
    assert [e for e in log if e["action"] == "backup.create"
            and e["details"]["stored"] is False] == []
    actions = [(e["action"], e["target"]) for e in log]
    assert ("backup.create", name) in actions
    assert ("backup.download", name) in actions
    assert ("backup.delete", small["name"]) in actions


def member_names(data):
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) \
            as z, tarfile.open(fileobj=z, mode="r|") as t:
        return [m.name for m in t]


def test_hostile_names_parameters_and_non_admins(stored):
    srv, root, cid, f, blob = stored
    name = root.ok("POST", "/admin/backup", {}, 201)["name"]
    for bad in ["..%2f..%2fsecret.key", "%2e%2e", "..", ".hidden.tar.zst",
                "parley-..-1.tar.zst", "secret.key", "parley-x%2f..%2f..%2fsecret.key",
                "parley-20260101T000000Z-1.tar.zst", name + ".tmp", "." + name + ".tmp"]:
        assert_error(root.get("/admin/backups/" + bad), 404, "RESOURCE_NOT_FOUND")
        assert_error(root.delete("/admin/backups/" + bad), 404, "RESOURCE_NOT_FOUND")
    assert os.path.exists(os.path.join(srv.data_dir, "secret.key"))
    assert_error(root.get("/admin/backup?include_files=maybe"), 422, "VALIDATION_ERROR")
    r = root.post("/admin/backup", {"include_files": "yes"})
    assert_error(r, 422, "VALIDATION_ERROR")
    assert r.json()["error"]["details"]["field"] == "include_files"

    user = register(srv, "plainuser")
    for method, path in ROUTES:
        assert_error(user.call(method, path, {} if method == "POST" else None), 403,
                     "INSUFFICIENT_PERMISSIONS")
        assert_error(requests.request(method, srv.url(API + path), timeout=30), 401,
                     "AUTHENTICATION_REQUIRED")
    assert [b["name"] for b in root.ok("GET", "/admin/backups")["backups"]] == [name]


def test_one_backup_at_a_time(stored):
    srv, root, cid, f, blob = stored
    big = root.uploaded("big.bin", os.urandom(12 << 20))
    r = slow_get(root, "/admin/backup")
    assert r.status == 200
    r.read(1024)  # running, held up by the unread stream
    assert_error(root.post("/admin/backup", {}), 409, "CONFLICT")
    assert_error(root.get("/admin/backup"), 409, "CONFLICT")
    r.conn.close()  # the client goes away: the backup ends
    r.close()
    wait_until(lambda: root.post("/admin/backup", {}).status_code == 201,
               what="a backup after the first one's client went away")
    assert root.call("DELETE", "/files/" + big["id"]).status_code == 204
    post(root, cid, "still writing")


def flip(data, at):
    b = bytearray(data)
    b[at] ^= 0x10
    return bytes(b)


def test_damaged_archives_are_refused_naming_the_member(stored, tmp_path):
    srv, root, cid, f, blob = stored
    made = root.ok("POST", "/admin/backup", {}, 201)
    data = root.get("/admin/backups/" + made["name"]).content
    sha = hashlib.sha256(blob).hexdigest()
    member = "member files/%s/%s/%s" % (sha[:2], sha[2:4], sha)
    cases = {"truncated": data[:len(data) // 2], "bitflip": flip(data, len(data) // 2),
             "short-end": data[:-3]}
    for label, damaged in cases.items():
        path = tmp_path / (label + ".tar.zst")
        path.write_bytes(damaged)
        v = cli("backup", "verify", path)
        assert v.returncode == 1, (label, v.stdout)
        if label != "short-end":
            assert member in v.stderr, (label, v.stderr)
        target = tmp_path / ("into-" + label)
        rs = cli("restore", path, "--data-dir", target)
        assert rs.returncode == 1 and "refused" in rs.stderr, (label, rs.stderr)
        assert not target.exists()
        assert not [p for p in os.listdir(tmp_path) if ".restore-" in p]

    good = tmp_path / "good.tar.zst"
    good.write_bytes(data)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("x")
    rs = cli("restore", good, "--data-dir", busy)
    assert rs.returncode == 1 and "not an empty directory" in rs.stderr
    assert os.listdir(busy) == ["keep"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("restore", good, "--data-dir", empty).returncode == 0
    assert (empty / "secret.key").exists()
    # On a terminal (script(1) gives it one) the restore shows its progress.
    tty = subprocess.run(["script", "-qec", "%s restore %s --data-dir %s" % (
        BIN, good, tmp_path / "on-a-tty"), "/dev/null"], capture_output=True, timeout=300)
    assert tty.returncode == 0 and re.search(rb"\rrestoring: (\d+)/\1 members", tty.stdout), \
        tty.stdout
    assert (tmp_path / "on-a-tty" / "secret.key").exists()


def hostile_archive(name, data=b"x", kind=tarfile.REGTYPE, linkname="", size=None):
    """An archive of the writer's shape (each member its own zstd frame)
    whose one member is hostile."""
    buf = io.BytesIO()
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    header = info.tobuf(tarfile.USTAR_FORMAT)
    if size is not None:  # GNU's base-256 size field, for sizes octal cannot hold
        header = bytearray(header)
        header[124:136] = b"\x80" + size.to_bytes(11, "big")
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        header = bytes(header)
    body = data + b"\0" * ((512 - len(data) % 512) % 512) if kind == tarfile.REGTYPE else b""
    c = zstandard.ZstdCompressor(write_checksum=True)
    buf.write(c.compress(header + body))
    buf.write(c.compress(b"\0" * 1024))
    return buf.getvalue()


def test_hostile_members_are_refused(tmp_path):
    cases = {
        "dotdot": hostile_archive("../escape"),
        "absolute": hostile_archive("/tmp/escape"),
        "nested-dotdot": hostile_archive("wal/../../escape"),
        "symlink": hostile_archive("secret.key", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
        "hardlink": hostile_archive("secret.key", kind=tarfile.LNKTYPE, linkname="/etc/passwd"),
        "directory": hostile_archive("wal", kind=tarfile.DIRTYPE),
        "huge": hostile_archive("secret.key", size=1 << 50),
        "unknown": hostile_archive("files/zz/yy/notahash"),
    }
    why = {"dotdot": "a name a backup never holds", "absolute": "a name a backup never holds",
           "nested-dotdot": "a name a backup never holds", "symlink": "not a regular file",
           "hardlink": "not a regular file", "directory": "not a regular file",
           "huge": "a malformed size", "unknown": "a name a backup never holds"}
    for label, data in cases.items():
        path = tmp_path / (label + ".tar.zst")
        path.write_bytes(data)
        v = cli("backup", "verify", path)
        assert v.returncode == 1 and "refused" in v.stderr, (label, v.stderr)
        assert why[label] in v.stderr, (label, v.stderr)
        target = tmp_path / ("t-" + label)
        assert cli("restore", path, "--data-dir", target).returncode == 1
        assert not target.exists()
    assert not (tmp_path.parent / "escape").exists() and not os.path.exists("/tmp/escape")
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(b"not an archive at all" * 10)
    assert cli("backup", "verify", junk).returncode == 1


def test_offline_backup_of_a_stopped_directory(start_server, tmp_path):
    srv = start_server()
    root = register(srv, "offroot")
    cid = root.ok("POST", "/channels", {"name": "offline"}, 201)["id"]
    for i in range(15):
        post(root, cid, "o%d" % i)
    out = tmp_path / "offline.tar.zst"
    locked = cli("backup", "--data-dir", srv.data_dir, "--out", out)
    assert locked.returncode == 1 and "admin/backup" in locked.stderr
    assert not out.exists()
    srv.stop()
    b = cli("backup", "--data-dir", srv.data_dir, "--out", out)
    assert b.returncode == 0, b.stderr
    again = cli("backup", "--data-dir", srv.data_dir, "--out", out)
    assert again.returncode == 1 and "exists" in again.stderr
    assert cli("backup", "verify", out).returncode == 0
    target = tmp_path / "offline-restored"
    assert cli("restore", out, "--data-dir", target).returncode == 0
    new = start_server(data_dir=target)
    assert contents(root.on(new), cid) == ["o%d" % i for i in range(15)]
    assert cli("backup").returncode == 2


def blob_path(srv, sha):
    return os.path.join(srv.data_dir, "files", sha[:2], sha[2:4], sha)


def test_a_file_deleted_during_a_backup_is_in_it(start_server, tmp_path):
    srv = start_server()
    root = register(srv, "pinroot")
    big = os.urandom(12 << 20)
    root.uploaded("big.bin", big)
    big_sha = hashlib.sha256(big).hexdigest()
    # Bytes whose blob the backup reaches after the big one (blobs go in
    # hash order), so the deletion below happens before it is read.
    while True:
        small = os.urandom(50000)
        sha = hashlib.sha256(small).hexdigest()
        if sha > big_sha:
            break
    f = root.uploaded("small.bin", small)
    r = slow_get(root, "/admin/backup")
    assert r.status == 200
    data = bytearray(r.read(64 * 1024))
    assert root.call("DELETE", "/files/" + f["id"]).status_code == 204
    assert os.path.exists(blob_path(srv, sha))  # pinned while the backup runs
    data += r.read()
    r.conn.close()
    # The removal the pin deferred runs once the backup ends.
    wait_until(lambda: not os.path.exists(blob_path(srv, sha)),
               what="the deleted file's blob removed after the backup")
    archive = tmp_path / "pin.tar.zst"
    archive.write_bytes(bytes(data))
    target = tmp_path / "pin-restored"
    assert cli("restore", archive, "--data-dir", target).returncode == 0
    new = start_server(data_dir=target)
    d = root.on(new).download(f)
    assert d.status_code == 200 and d.content == small


def test_online_backup_through_the_api(stored, start_server, tmp_path):
    srv, root, cid, f, blob = stored
    key = root.ok("POST", "/auth/api-keys", {"name": "backups", "permissions": ["read"]},
                  201)["key"]
    out = tmp_path / "online.tar.zst"
    b = cli("backup", "--url", srv.base, "--out", out, env={"PARLEY_API_KEY": key})
    assert b.returncode == 0, b.stderr
    assert cli("backup", "verify", out).returncode == 0
    assert read_manifest(out.read_bytes())["counts"]["blobs"] == 1
    wrong = tmp_path / "wrong.tar.zst"
    w = cli("backup", "--url", srv.base, "--out", wrong, "--api-key", "plx_" + "0" * 64)
    assert w.returncode == 1 and "refused" in w.stderr, w.stderr
    assert not wrong.exists() and not (tmp_path / "wrong.tar.zst.part").exists()
    user = register(srv, "notadmin")
    ukey = user.ok("POST", "/auth/api-keys", {"name": "k", "permissions": ["read"]}, 201)["key"]
    n = cli("backup", "--url", srv.base, "--out", wrong, "--api-key", ukey)
    assert n.returncode == 1 and "INSUFFICIENT_PERMISSIONS" in n.stderr, n.stderr
    assert cli("backup", "--url", srv.base, "--out", wrong).returncode == 2  # no key
    target = tmp_path / "online-restored"
    assert cli("restore", out, "--data-dir", target).returncode == 0
    new = start_server(data_dir=target)
    assert contents(root.on(new), cid) == ["s%d" % i for i in range(20)]
    assert root.on(new).download(f).content == blob


def test_sigkill_during_a_backup_loses_nothing(start_server, tmp_path):
    srv = start_server()
    root = register(srv, "killroot")
    cid = root.ok("POST", "/channels", {"name": "kill"}, 201)["id"]
    root.uploaded("big.bin", os.urandom(12 << 20))
    for i in range(10):
        post(root, cid, "k%d" % i)
    r = slow_get(root, "/admin/backup")
    assert r.status == 200
    r.read(64 * 1024)
    for i in range(10, 20):
        post(root, cid, "k%d" % i)
    root.ok("POST", "/admin/snapshot")
    srv.stop(signal.SIGKILL)
    r.conn.close()
    srv = start_server(data_dir=srv.data_dir)
    root = root.on(srv)
    assert contents(root, cid) == ["k%d" % i for i in range(20)]
    assert root.ok("GET", "/admin/backups")["backups"] == []
    # The temporary file of a stored backup that a kill cut short goes with
    # the next one.
    backups = os.path.join(srv.data_dir, "backups")
    os.makedirs(backups, exist_ok=True)
    leftover = os.path.join(backups, ".parley-20260101T000000Z-1.tar.zst.tmp")
    with open(leftover, "wb") as f:
        f.write(b"half an archive")
    made = root.ok("POST", "/admin/backup", {}, 201)
    assert not os.path.exists(leftover)
    assert sorted(os.listdir(backups)) == [made["name"]]
    path = tmp_path / made["name"]
    path.write_bytes(root.get("/admin/backups/" + made["name"]).content)
    assert cli("backup", "verify", path).returncode == 0
