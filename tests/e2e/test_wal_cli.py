"""`parley wal inspect|check|repair` on logs written from docs/wal-format.md
by an independent Python implementation (tests/e2e/walformat.py)."""
import os
import subprocess

from conftest import BIN
from walformat import FileWriter, segment_name, snapshot_name


def run(*args):
    return subprocess.run([BIN, "wal"] + list(args), capture_output=True, text=True, timeout=60)


def make_log(root, frames=((3, True), (2, False), (4, True)), snapshot_at=0, snapshot_records=2):
    """Writes one segment starting after `snapshot_at` (and a snapshot when
    non-zero). Returns (segment path, FileWriter)."""
    os.makedirs(root / "wal", exist_ok=True)
    os.makedirs(root / "snapshots", exist_ok=True)
    if snapshot_at:
        snap = FileWriter(True, snapshot_at)
        snap.add_frame([(9, b"state-%d" % i) for i in range(snapshot_records)])
        snap.end()
        (root / "snapshots" / snapshot_name(snapshot_at)).write_bytes(bytes(snap.data))
    seg = FileWriter(False, snapshot_at + 1)
    n = snapshot_at
    for count, compress in frames:
        recs = []
        for _ in range(count):
            n += 1
            recs.append((n % 250 + 1, b'{"op":"message.put","n":%d,"content":"hello world"}' % n))
        seg.add_frame(recs, compress=compress)
    path = root / "wal" / segment_name(snapshot_at + 1)
    path.write_bytes(bytes(seg.data))
    return path, seg


def test_check_and_inspect_read_a_log_written_from_the_spec(tmp_path):
    make_log(tmp_path, snapshot_at=5)
    r = run("check", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "snapshot at lsn 5 with 2 records" in r.stdout
    assert "9 records after the snapshot in 1 segments; last lsn 14" in r.stdout
    r = run("inspect", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if "lsn=" in l]
    assert len(lines) == 2 + 9
    log_lines = [l for l in lines if l.startswith("wal/")]
    assert [int(l.split("lsn=")[1].split()[0]) for l in log_lines] == list(range(6, 15))
    assert all("checksum=ok" in l for l in lines)
    assert "type=%d " % (6 % 250 + 1) in log_lines[0]
    assert r.stdout.strip().endswith("11 records")


def test_torn_tail_is_reported_not_an_error(tmp_path):
    path, seg = make_log(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 7])
    r = run("check", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torn tail" in r.stdout and "offset %d" % seg.frame_offsets[-1] in r.stdout
    assert "last lsn 5" in r.stdout
    # check changed nothing.
    assert path.stat().st_size == len(data) - 7


def test_middle_corruption_fails_check_and_repair_cuts_it(tmp_path):
    path, seg = make_log(tmp_path)
    data = bytearray(path.read_bytes())
    bad = seg.frame_offsets[1]
    data[bad + 40] ^= 0x10
    path.write_bytes(bytes(data))
    r = run("check", str(tmp_path))
    assert r.returncode == 1
    assert "damaged: %s at offset %d" % (path, bad) in r.stdout
    r = run("inspect", str(tmp_path))
    assert "BAD frame" in r.stdout and "@%d" % bad in r.stdout
    r = run("repair", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cut %s at offset %d" % (path, bad) in r.stdout
    assert "bytes dropped" in r.stdout
    r = run("check", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "last lsn 3" in r.stdout


def test_newer_format_version_is_refused(tmp_path):
    os.makedirs(tmp_path / "wal")
    seg = FileWriter(False, 1, version=2)
    seg.add_frame([(1, b"x")])
    (tmp_path / "wal" / segment_name(1)).write_bytes(bytes(seg.data))
    r = run("check", str(tmp_path))
    assert r.returncode == 1
    assert "newer format version" in r.stdout + r.stderr


def test_repair_refuses_while_a_server_holds_the_directory(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    r = run("repair", str(tmp_path / "d"))
    assert r.returncode == 1
    assert "in use by another parley process (pid %d)" % server.pid() in r.stderr


def test_wal_commands_refuse_bad_arguments(tmp_path):
    assert run("check", str(tmp_path / "missing")).returncode == 1
    assert run("frobnicate", str(tmp_path)).returncode == 2
    assert run("check").returncode == 2


def test_the_spec_reader_reads_what_the_c_writer_wrote(tmp_path):
    """The other direction: files written by the C library (the crash test's
    writer, killed mid-flight) are read strictly by the Python reader built
    from docs/wal-format.md, after a restart has cut any torn tail."""
    import signal
    from conftest import ROOT
    from client import wait_until
    from walformat import read_file, SNAPSHOT_MAGIC

    writer = os.path.join(ROOT, os.environ.get("PARLEY_WAL_WRITER",
                                               "build/release/wal_crash_writer"))
    acked = tmp_path / "acked.txt"
    os.makedirs(tmp_path / "d")
    with open(acked, "ab") as out:
        proc = subprocess.Popen([writer, "write", str(tmp_path / "d"), "4", "7"], stdout=out,
                                stderr=subprocess.PIPE)
        wait_until(lambda: proc.poll() is not None or acked.stat().st_size >= 200000,
                   what="200 kB of acknowledged writes")
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with open(acked, "rb") as f:
        v = subprocess.run([writer, "verify", str(tmp_path / "d")], stdin=f,
                           capture_output=True, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr

    snaps = sorted(os.listdir(tmp_path / "d" / "snapshots"))
    segs = sorted(os.listdir(tmp_path / "d" / "wal"))
    assert segs, "no segments"
    snapshot_lsn = 0
    for name in snaps:
        magic, base, records = read_file((tmp_path / "d" / "snapshots" / name).read_bytes())
        assert magic == SNAPSHOT_MAGIC and base == int(name[:20]) and records
        snapshot_lsn = max(snapshot_lsn, base)
    expected = None
    total = 0
    for name in segs:
        magic, base, records = read_file((tmp_path / "d" / "wal" / name).read_bytes())
        assert base == int(name[:20])
        if expected is not None:
            assert base == expected, (name, expected)
        lsns = [r[0] for r in records]
        assert lsns == list(range(base, base + len(records)))
        expected = base + len(records)
        total += len(records)
    assert total > 0
    # parley's own check agrees.
    r = run("check", str(tmp_path / "d"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_inspect_gives_the_json_length_of_binary_message_records(start_server):
    """Message records are binary; inspect renders each as the JSON record of
    earlier versions (json=), which make bench's P6 measures against."""
    import re

    import requests

    s = start_server(args=["--rate-limit", "0"])
    r = requests.post(s.url("/api/v1/auth/register"), timeout=30,
                      json={"username": "walter", "password": "correct horse battery",
                            "email": "walter@example.com"})
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    ch = requests.post(s.url("/api/v1/channels"), json={"name": "wal-json"}, headers=h,
                       timeout=30).json()["id"]
    content = "hello \u00e9 \"quoted\" " + "x" * 50
    m = requests.post(s.url("/api/v1/channels/%s/messages" % ch), json={"content": content},
                      headers=h, timeout=30)
    assert m.status_code == 201, m.text
    assert s.stop() == 0
    out = run("inspect", s.data_dir).stdout
    # The log's record and the final snapshot's, alike.
    msgs = [l for l in out.splitlines() if " type=12 " in l]
    assert [l.split()[0].split("/")[0] for l in msgs] == ["snapshots", "wal"]
    for line in msgs:
        size, json_size = map(int, re.search(r" len=(\d+) json=(\d+) ", line).groups())
        # The binary record holds the content's bytes once; its JSON form is
        # longer by the keys, the quoting and the escapes.
        assert len(content.encode()) < size < json_size
    users = [l for l in out.splitlines() if " type=1 " in l]
    assert users and all(re.search(r" len=(\d+) json=\1 ", l) for l in users)
