"""Encryption at rest (docs/operations.md, "Encryption at rest") against the
real binary: `parley keygen`; a data directory started with
--encryption-key-file keeps messages and files through restarts and SIGKILL
while no file under it holds a posted text or an uploaded file's bytes (the
same run without a key finds them: the search can fail); the wrong key, no
key for an encrypted directory and a key for a plain one each exit 2 with
one line and leave every byte of the directory as it was; `wal check /
inspect` and `files check` take the key (and find an altered blob);
`parley rekey` and `parley encrypt` killed after 1, 2, 3... files leave a
directory that refuses to start until the same command is run again, which
finishes it, and then everything is there under the new key."""
import hashlib
import os
import secrets
import shutil
import signal
import stat
import subprocess

import struct

import requests
import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import walformat
from conftest import BIN
from client import register

KEY_FLAG = "--encryption-key-file"


def parley(*args, env=None):
    return subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **(env or {})))


def keygen(tmp_path, name):
    path = tmp_path / name
    r = parley("keygen", "--out", path)
    assert r.returncode == 0, r.stderr
    return path


def tree(data_dir):
    """Every file under the directory with its SHA-256 (LOCK included)."""
    out = {}
    for root, _, files in os.walk(str(data_dir)):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, str(data_dir))] = hashlib.sha256(fh.read()).hexdigest()
    return out


def holds(data_dir, needle):
    """The files under data_dir whose bytes contain needle, as they are or,
    for a log file the format's Python reader (walformat.py) can decode, in
    its decompressed records: what a thief with the disk and a zstd library
    can read."""
    found = []
    for root, _, files in os.walk(str(data_dir)):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                data = fh.read()
            readable = [data]
            try:
                readable += [rec[2] for rec in walformat.read_file(data)[2]]
            except Exception:  # sealed, or not a log file: only its bytes
                pass
            if any(needle in r for r in readable):
                found.append(os.path.join(root, f))
    return found


def content(tag):
    """A message text no other file can hold by chance."""
    return "%s-%s" % (tag, secrets.token_hex(24))


# ---- an independent reader of sealed files, from docs/wal-format.md ("Sealed
# files") and the format comment of src/files/blob_crypt.c alone ----

def hkdf(key, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32 if info != b"parley key id v1" else 16,
                salt=salt, info=info).derive(key)


def key_bytes(path):
    return bytes.fromhex(path.read_text().strip())


def read_sealed(data, key):
    """(magic, records) of a sealed segment or snapshot; raises on any damage."""
    magic, version, flags, base = struct.unpack("<8sIIQ", data[:24])
    assert flags & 2, "not sealed"
    assert walformat.masked_crc(data[:28]) == struct.unpack("<I", data[28:32])[0]
    block = data[32:64]
    assert walformat.masked_crc(block[:28]) == struct.unpack("<I", block[28:32])[0]
    salt, kid = block[:16], block[16:24]
    assert kid == hkdf(key, None, b"parley key id v1")[:8]
    snapshot = magic == walformat.SNAPSHOT_MAGIC
    fkey = hkdf(key, salt, b"parley wal snapshot v1" if snapshot else b"parley wal segment v1")
    aead = AESGCM(fkey)
    stream = zstandard.ZstdDecompressor().decompressobj()
    records, off = [], 64
    while off < len(data):
        crc, stored, first, count, raw_len, kind, fflags = struct.unpack(
            "<IIQIIBB", data[off:off + 26])
        sealed = data[off + 32:off + 32 + stored]
        assert crc == walformat.masked_crc(data[off + 4:off + 32] + sealed)
        assert fflags & 2
        payload = aead.decrypt(struct.pack("<QI", off, 0), sealed,
                               data[:64] + data[off + 4:off + 32])
        if kind == walformat.KIND_RECORDS:
            raw = stream.decompress(payload) if fflags & 1 else payload
            assert len(raw) == raw_len
            pos = 0
            for _ in range(count):
                rlen, rtype = struct.unpack("<IB", raw[pos:pos + 5])
                records.append((rtype, raw[pos + 8:pos + 8 + rlen]))
                pos += 8 + rlen
        else:
            assert struct.unpack("<QQ", payload)[1] == base
        off += 32 + stored
    return magic, records


def read_sealed_blob(data, key, sha_hex):
    """The content of an encrypted blob."""
    magic, version, chunk, size, kid = struct.unpack("<8sIIQ8s", data[:32])
    assert magic == b"PRLYBLB\0" and version == 1 and chunk == 65536
    assert kid == hkdf(key, None, b"parley key id v1")[:8]
    wrap = AESGCM(hkdf(key, bytes.fromhex(sha_hex), b"parley blob v1"))
    data_key = wrap.decrypt(data[32:44], data[44:92], data[:44])
    aead, out, i, off = AESGCM(data_key), b"", 0, 96
    n_chunks = max(1, (size + chunk - 1) // chunk)
    while i < n_chunks:
        length = min(chunk, size - i * chunk) + 16
        out += aead.decrypt(struct.pack("<QI", i, 1 if i == n_chunks - 1 else 0),
                            data[off:off + length], None)
        off += length
        i += 1
    assert off == len(data) and len(out) == size
    return out


class Fixture:
    """One data directory's users and what was stored in it."""

    def __init__(self, server):
        self.alice = register(server, "alice")
        self.channel = self.alice.ok("POST", "/channels", {"name": "vault"}, 201)
        self.texts = []
        self.blob = secrets.token_bytes(200000) + b"FILE-MARKER-" + secrets.token_hex(8).encode()
        self.file = self.alice.uploaded("data.bin", self.blob)

    def post(self, who, tag):
        text = content(tag)
        who.ok("POST", "/channels/%s/messages" % self.channel["id"], {"content": text}, 201)
        self.texts.append(text)
        return text

    def verify(self, server):
        who = self.alice.on(server)
        r = who.get("/channels/%s/messages" % self.channel["id"], limit=100)
        assert r.status_code == 200, r.text
        got = [m["content"] for m in r.json()["messages"]]
        for t in self.texts:
            assert t in got
        d = who.download(self.file)
        assert d.status_code == 200 and d.content == self.blob
        part = who.download(self.file, Range="bytes=65530-131080")
        assert part.status_code == 206 and part.content == self.blob[65530:131081]
        tail = who.download(self.file, Range="bytes=-20")
        assert tail.status_code == 206 and tail.content == self.blob[-20:]
        return who


def refused(start_server, data_dir, args, why):
    """Starts a server that must exit 2 at once with `why` in its one line."""
    s = start_server(args, data_dir=data_dir, wait=False)
    code = s.proc.wait(60)
    assert code == 2, (code, s.log())
    assert why in s.log(), s.log()
    return s


def test_keygen_writes_a_private_key_and_never_overwrites(tmp_path):
    path = keygen(tmp_path, "k")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and bytes.fromhex(text.strip())
    r = parley("keygen", "--out", path)
    assert r.returncode == 2 and "never overwrites" in r.stderr
    assert path.read_text() == text
    other = keygen(tmp_path, "k2")
    assert other.read_text() != text
    r = parley("keygen")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64


def test_bad_key_files_exit_2(start_server, tmp_path):
    d = tmp_path / "data"
    loose = keygen(tmp_path, "loose")
    os.chmod(loose, 0o640)
    refused(start_server, d, [KEY_FLAG, loose], "may be read by group or others")
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    os.chmod(short, 0o600)
    refused(start_server, d, [KEY_FLAG, short], "must hold exactly 32 bytes")
    hexbad = tmp_path / "hexbad"
    hexbad.write_text("zz" * 32 + "\n")
    os.chmod(hexbad, 0o600)
    refused(start_server, d, [KEY_FLAG, hexbad], "must hold exactly 32 bytes")
    refused(start_server, d, [KEY_FLAG, tmp_path / "absent"], "cannot open encryption key file")
    raw = tmp_path / "raw"
    raw.write_bytes(secrets.token_bytes(32))
    os.chmod(raw, 0o600)
    s = start_server([KEY_FLAG, raw], data_dir=d)  # 32 raw bytes are a key too
    assert s.stop() == 0


def test_encrypted_directory_round_trip_restart_and_sigkill(start_server, tmp_path):
    key = keygen(tmp_path, "key")
    d = tmp_path / "enc"
    args = [KEY_FLAG, key, "--snapshot-every-records", "4", "--snapshot-every-seconds", "0"]
    s = start_server(args, data_dir=d)
    fx = Fixture(s)
    for i in range(6):
        fx.post(fx.alice, "before-restart-%d" % i)
    assert s.stop() == 0
    s = start_server(args, data_dir=d)
    who = fx.verify(s)
    fx.alice = who
    fx.post(who, "before-kill")
    s.stop(signal.SIGKILL)
    s = start_server(args, data_dir=d)
    fx.verify(s)
    assert s.stop() == 0
    assert os.listdir(str(d / "snapshots")), "a snapshot was written and sealed"
    for t in fx.texts:
        assert holds(d, t.encode()) == []
    assert holds(d, b"FILE-MARKER-") == []
    assert holds(d, b"alice@example.com") == []


def test_a_plain_directory_shows_what_encryption_hides(start_server, tmp_path):
    """The control of the test above: without a key the same search finds
    the text and the file, so that test can fail."""
    d = tmp_path / "plain"
    s = start_server(data_dir=d)
    fx = Fixture(s)
    text = fx.post(fx.alice, "plain")
    assert s.stop() == 0
    assert holds(d, text.encode())
    assert holds(d, b"FILE-MARKER-")


def test_wrong_missing_or_unwanted_key_exits_2_and_changes_nothing(start_server, tmp_path):
    key, other = keygen(tmp_path, "key"), keygen(tmp_path, "other")
    enc, plain = tmp_path / "enc", tmp_path / "plain"
    s = start_server([KEY_FLAG, key], data_dir=enc)
    Fixture(s)
    assert s.stop() == 0
    s = start_server(data_dir=plain)
    Fixture(s)
    assert s.stop() == 0
    before_enc, before_plain = tree(enc), tree(plain)
    refused(start_server, enc, [KEY_FLAG, other], "wrong encryption key")
    refused(start_server, enc, [], "is encrypted")
    refused(start_server, plain, [KEY_FLAG, key], "is not encrypted")
    assert tree(enc) == before_enc
    assert tree(plain) == before_plain
    # The tools say the same.
    r = parley("wal", "check", enc)
    assert r.returncode == 2 and "is encrypted" in r.stderr
    r = parley("wal", "check", KEY_FLAG, other, enc)
    assert r.returncode == 2 and "wrong encryption key" in r.stderr
    r = parley("files", "check", plain, KEY_FLAG, key)
    assert r.returncode == 2 and "is not encrypted" in r.stderr
    assert tree(enc) == before_enc and tree(plain) == before_plain


def test_tools_take_the_key(start_server, tmp_path):
    key = keygen(tmp_path, "key")
    d = tmp_path / "enc"
    s = start_server([KEY_FLAG, key], data_dir=d)
    fx = Fixture(s)
    text = fx.post(fx.alice, "tools")
    assert s.stop() == 0
    r = parley("wal", "check", KEY_FLAG, key, d)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
    r = parley("wal", "inspect", KEY_FLAG, key, d)
    assert r.returncode == 0 and " records" in r.stdout and "BAD" not in r.stdout, r.stdout
    r = parley("wal", "repair", KEY_FLAG, key, d)
    assert r.returncode == 0 and "nothing to repair" in r.stdout, r.stdout + r.stderr
    r = parley("files", "check", KEY_FLAG, key, d)
    assert r.returncode == 0 and "1 blobs" in r.stdout and "ok" in r.stdout, r.stdout
    # An altered byte of the sealed blob is found by files check.
    sha = fx.file["sha256"]
    blob = d / "files" / sha[:2] / sha[2:4] / sha
    data = bytearray(blob.read_bytes())
    data[96 + 70000] ^= 1
    blob.write_bytes(bytes(data))
    r = parley("files", "check", KEY_FLAG, key, d)
    assert r.returncode == 1 and "does not decrypt" in r.stdout, r.stdout
    # And the server refuses to serve it rather than send altered bytes.
    s = start_server([KEY_FLAG, key], data_dir=d)
    who = fx.alice.on(s)
    first = who.download(fx.file, Range="bytes=0-99")
    assert first.status_code == 206 and first.content == fx.blob[:100]
    try:  # the answer is cut where the altered chunk begins, never sent as it is
        r = who.download(fx.file)
        assert r.status_code != 200 or r.content != fx.blob
        assert len(r.content) <= 65536
    except requests.exceptions.RequestException:
        pass
    assert s.stop() == 0
    assert text


def populated(start_server, tmp_path, d, key_args):
    """A directory with several segments, a snapshot and a blob."""
    s = start_server(key_args + ["--snapshot-every-records", "6", "--snapshot-every-seconds",
                                 "0"], data_dir=d)
    fx = Fixture(s)
    for i in range(3):
        fx.post(fx.alice, "first-%d" % i)
    assert s.stop() == 0
    s = start_server(key_args, data_dir=d)
    fx.alice = fx.alice.on(s)
    for i in range(3):
        fx.post(fx.alice, "second-%d" % i)
    assert s.stop() == 0
    return fx


def killed_then_finished(start_server, tmp_path, base, cmd, old_args, new_args, fx):
    """Runs `cmd` on copies of `base` killed after 1, 2, 3... files until a
    run finishes by itself; each killed copy refuses to start, then the same
    command finishes it and the new key opens it with everything in it."""
    n = 0
    while True:
        d = tmp_path / ("copy-%d" % n)
        shutil.copytree(str(base), str(d))
        r = parley(*cmd(d), env={"PARLEY_TEST_REKEY_STOP_AFTER": str(n)})
        if r.returncode == 0:
            break
        assert r.returncode == -signal.SIGKILL, (r.returncode, r.stdout, r.stderr)
        assert os.path.exists(str(d / "ENCRYPTION.next"))
        # What a kill in the middle of a file leaves: a half-written copy.
        seg = sorted(os.listdir(str(d / "wal")))[0]
        (d / "wal" / (seg + ".rekey")).write_bytes(b"PRLYWAL\0 half a copy")
        (d / "files" / "tmp" / "up-killed").write_bytes(b"half a sealed blob")
        before = tree(d)
        refused(start_server, d, old_args, "half way through")
        refused(start_server, d, new_args, "half way through")
        assert tree(d) == before
        r = parley(*cmd(d))
        assert r.returncode == 0, r.stdout + r.stderr
        assert not os.path.exists(str(d / "ENCRYPTION.next"))
        assert not [f for f in os.listdir(str(d / "wal")) if f.endswith(".rekey")]
        s = start_server(new_args, data_dir=d)
        fx.verify(s)
        assert s.stop() == 0
        refused(start_server, d, old_args, "wrong encryption key" if old_args else "is encrypted")
        n += 1
        assert n < 40, "the command never finished by itself"
    assert n > 3, "too few files to kill it in the middle"
    return d


def test_rekey_killed_midway_is_finished_by_running_it_again(start_server, tmp_path):
    old, new = keygen(tmp_path, "old"), keygen(tmp_path, "new")
    base = tmp_path / "base"
    fx = populated(start_server, tmp_path, base, [KEY_FLAG, str(old)])
    d = killed_then_finished(
        start_server, tmp_path, base,
        lambda d: ("rekey", "--data-dir", d, "--old-key", old, "--new-key", new),
        [KEY_FLAG, str(old)], [KEY_FLAG, str(new)], fx)
    s = start_server([KEY_FLAG, str(new)], data_dir=d)
    fx.verify(s)
    assert s.stop() == 0
    r = parley("rekey", "--data-dir", d, "--old-key", old, "--new-key", new)
    assert r.returncode == 0 and "already under the new key" in r.stdout
    r = parley("rekey", "--data-dir", d, "--old-key", old, "--new-key", old)
    assert r.returncode == 2
    r = parley("files", "check", KEY_FLAG, new, d)
    assert r.returncode == 0, r.stdout


def test_encrypt_converts_a_plain_directory_crash_safely(start_server, tmp_path):
    key = keygen(tmp_path, "key")
    base = tmp_path / "base"
    fx = populated(start_server, tmp_path, base, [])
    d = killed_then_finished(
        start_server, tmp_path, base, lambda d: ("encrypt", "--data-dir", d, "--key", key),
        [], [KEY_FLAG, str(key)], fx)
    for t in fx.texts:
        assert holds(d, t.encode()) == []
    assert holds(d, b"FILE-MARKER-") == []
    r = parley("encrypt", "--data-dir", d, "--key", key)
    assert r.returncode == 0 and "already under the new key" in r.stdout


def test_the_documented_format_reads_what_the_server_sealed(start_server, tmp_path):
    """docs/wal-format.md and blob_crypt.c's comment are exact: a reader
    written from them alone (above) opens every sealed segment, snapshot and
    blob and finds the posted texts and the uploaded bytes; the ENCRYPTION
    file's key id is the documented HKDF value."""
    key_file = keygen(tmp_path, "key")
    key = key_bytes(key_file)
    d = tmp_path / "enc"
    args = [KEY_FLAG, key_file, "--snapshot-every-records", "3", "--snapshot-every-seconds", "0"]
    s = start_server(args, data_dir=d)
    fx = Fixture(s)
    for i in range(5):
        fx.post(fx.alice, "spec-%d" % i)
    assert s.stop() == 0
    mark = (d / "ENCRYPTION").read_text()
    assert mark == "parley-encryption 1\nkey-id %s\n" % hkdf(key, None, b"parley key id v1").hex()
    found = b""
    files = [d / "wal" / f for f in os.listdir(str(d / "wal"))] + \
        [d / "snapshots" / f for f in os.listdir(str(d / "snapshots"))]
    assert any(str(f).endswith(".snap") for f in files)
    for f in files:
        _, records = read_sealed(f.read_bytes(), key)
        found += b"".join(r[1] for r in records)
    for t in fx.texts:
        assert t.encode() in found
    sha = fx.file["sha256"]
    blob = (d / "files" / sha[:2] / sha[2:4] / sha).read_bytes()
    assert read_sealed_blob(blob, key, sha) == fx.blob
    assert len(blob) == 96 + len(fx.blob) + 16 * ((len(fx.blob) + 65535) // 65536)


def test_user_commands_take_the_key(start_server, tmp_path):
    key = keygen(tmp_path, "key")
    d = tmp_path / "enc"
    r = subprocess.run([BIN, "user", "create", "--data-dir", str(d), "--username", "root",
                        "--email", "root@example.com", "--admin", KEY_FLAG, str(key)],
                       input="correct horse battery\n", capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "created user root" in r.stdout, r.stdout + r.stderr
    before = tree(d)
    r = subprocess.run([BIN, "user", "promote", "--data-dir", str(d), "root"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "is encrypted" in r.stderr
    assert tree(d) == before
    s = start_server([KEY_FLAG, key], data_dir=d)
    r = requests.post(s.url("/api/v1/auth/login"), timeout=30,
                      json={"username_or_email": "root", "password": "correct horse battery"})
    assert r.status_code == 200 and "admin" in r.json()["user"]["roles"], r.text
    assert s.stop() == 0
    assert holds(d, b"root@example.com") == []


def test_encrypted_files_at_chunk_boundaries(start_server, tmp_path):
    """One byte, one short of a 64 KiB chunk, exactly one, one byte more, and a few
    chunks: each downloads whole and by ranges across chunk edges, before
    and after a restart, deduplicated as before."""
    key = keygen(tmp_path, "key")
    d = tmp_path / "enc"
    s = start_server([KEY_FLAG, key], data_dir=d)
    alice = register(s, "alice")
    sizes = (1, 65535, 65536, 65537, 3 * 65536 + 5)  # empty uploads are refused (422)
    blobs = {n: secrets.token_bytes(n) for n in sizes}
    files = {n: alice.uploaded("f%d.bin" % n, blobs[n]) for n in sizes}
    again = alice.uploaded("again.bin", blobs[65536])
    assert again["deduplicated"] is True
    for restart in (False, True):
        if restart:
            assert s.stop() == 0
            s = start_server([KEY_FLAG, key], data_dir=d)
            alice = alice.on(s)
        for n in sizes:
            r = alice.download(files[n])
            assert r.status_code == 200 and r.content == blobs[n], n
            if n > 2:
                for a, b in ((0, 0), (n - 1, n - 1), (n // 2, n - 1), (1, min(n - 1, 65536))):
                    r = alice.download(files[n], Range="bytes=%d-%d" % (a, b))
                    assert r.status_code == 206 and r.content == blobs[n][a:b + 1], (n, a, b)
    assert s.stop() == 0
    r = parley("files", "check", KEY_FLAG, key, d)
    assert r.returncode == 0 and "%d blobs" % len(sizes) in r.stdout, r.stdout


def test_backup_of_an_encrypted_directory_is_sealed_and_restores_with_the_key(start_server,
                                                                            tmp_path):
    """GET /admin/backup of an encrypted directory: the archive holds the
    sealed files as they are (no posted text, no file bytes, no readable
    settings.json, but the ENCRYPTION mark), `backup verify` passes without
    the key, the restored directory starts with the key and has everything,
    and without the key it is refused (exit 2)."""
    key = keygen(tmp_path, "key")
    d = tmp_path / "enc"
    s = start_server([KEY_FLAG, key], data_dir=d)
    fx = Fixture(s)
    for i in range(3):
        fx.post(fx.alice, "backed-up-%d" % i)
    r = fx.alice.get("/admin/backup", include_files="true")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zstd", r.text
    archive = tmp_path / "enc.tar.zst"
    archive.write_bytes(r.content)
    assert s.stop() == 0

    plain = zstandard.ZstdDecompressor().stream_reader(r.content, read_across_frames=True).read()
    for t in fx.texts:
        assert t.encode() not in plain
    assert b"FILE-MARKER-" not in plain and b"alice@example.com" not in plain
    import io
    import tarfile
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(plain), mode="r:")]
    assert "ENCRYPTION" in names and "manifest.json" in names
    assert "settings.json" not in names

    assert parley("backup", "verify", archive).returncode == 0
    restored = tmp_path / "restored"
    r = parley("restore", archive, "--data-dir", restored)
    assert r.returncode == 0, r.stderr
    refused(start_server, restored, [], "encrypted")
    s = start_server([KEY_FLAG, key], data_dir=restored)
    fx.verify(s)
    assert s.stop() == 0

    # Offline, the stopped directory is backed up with its key only.
    out = tmp_path / "offline.tar.zst"
    r = parley("backup", "--data-dir", restored, "--out", out)
    assert r.returncode == 2 and "encrypted" in r.stderr and not out.exists(), r.stderr
    r = parley("backup", "--data-dir", restored, KEY_FLAG, key, "--out", out)
    assert r.returncode == 0, r.stderr
    again = tmp_path / "again"
    assert parley("restore", out, "--data-dir", again).returncode == 0
    s = start_server([KEY_FLAG, key], data_dir=again)
    fx.verify(s)
    assert s.stop() == 0
