"""Faults of the disk under the real binary (issue 15, "Faults";
docs/architecture.md "Durability under faults", docs/admin.md "When the disk
fails").

Disk full: the data directory is a small tmpfs mount (skipped where mounting
is not permitted); a filler file takes every page. Writes then answer 503
SERVICE_UNAVAILABLE, reads and live delivery go on, /api/health and the
system status say "no_space", a failed upload leaves no temporary file, a
failed snapshot is retried, and once the filler is gone writes resume by
themselves, without a restart; after a SIGKILL every acknowledged post is
there.

fsync failure: the binary runs under `strace -e inject=fdatasync:error=EIO`
(skipped without strace). The post whose sync failed is not acknowledged,
the log goes read-only (a log line, "read_only" in /api/health and the
system status), later writes are refused although fdatasync would work again
(no sync is retried: the strace log shows none after the failure), reads go
on, and after a restart every acknowledged post is there.
"""
import errno
import os
import shutil
import signal
import subprocess

import pytest
import requests

from client import register, wait_until
from conftest import assert_error
from realtime_client import Live

FILLER_CHUNK = 64 << 10


def health(srv):
    return requests.get(srv.url("/api/health"), timeout=10).json()


def texts(c, ch):
    """The contents of the whole history of channel `ch`, as `c` reads it."""
    out, params = set(), {"limit": 100}
    while True:
        r = c.get("/channels/%s/messages" % ch["id"], **params)
        assert r.status_code == 200, r.text
        page = r.json()
        out |= {m["content"] for m in page["messages"]}
        if not page["has_more"]:
            return out
        params["before"] = page["next_cursor"]


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs mounted on tmp_path/disk, unmounted after the test. It
    is the data directory itself: the server's log file (beside the data
    directory) stays on the roomy disk, and the filler goes inside."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (not root here)")
    if shutil.which("mount") is None:
        pytest.skip("no mount command (scripts/install-deps.sh --test installs it)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:  # a container without CAP_SYS_ADMIN, say
        pytest.skip("mounting a small tmpfs is not permitted here: %s" % r.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def post_until_refused(c, ch, prefix, limit, acked):
    """Posts "<prefix> <i>" until one is refused (at most `limit`); adds
    each acknowledged text to `acked` and returns the refusal."""
    for i in range(limit):
        r = c.post("/channels/%s/messages" % ch["id"], {"content": "%s %d" % (prefix, i)})
        if r.status_code != 201:
            return r
        acked.add("%s %d" % (prefix, i))
    raise AssertionError("%d posts were all accepted" % limit)


def fill(path):
    """Writes `path` until the filesystem says ENOSPC; returns the bytes."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        chunk = b"\xa5" * FILLER_CHUNK
        while True:
            try:
                n += f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
            assert n < (64 << 20), "the small disk never filled"
    return n


def test_disk_full_refuses_writes_keeps_reads_and_resumes_by_itself(small_disk, start_server):
    # (small_disk first: it is unmounted after the servers have stopped)
    data = small_disk
    srv = start_server(args=["--snapshot-every-seconds", "1"], data_dir=data)
    admin = register(srv, "fullroot")
    ann = register(srv, "fullann")
    ben = register(srv, "fullben")
    ch = ann.ok("POST", "/channels", {"name": "full-room"}, 201)
    ben.ok("POST", "/channels/%s/join" % ch["id"])
    acked = set()
    for i in range(5):
        ann.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "before %d" % i}, 201)
        acked.add("before %d" % i)
    live = Live(srv, ann.token)  # live connections made before the disk fills
    watcher = Live(srv, ben.token)
    snap_before = admin.ok("GET", "/admin/system/status")["snapshot"]["lsn"]

    fill(small_disk / "filler")
    # The log's last page may have room for a few more frames: post until
    # one is refused (bounded); every 201 is acknowledged and must survive.
    assert_error(post_until_refused(ann, ch, "during", 300, acked), 503, "SERVICE_UNAVAILABLE")
    h = health(srv)
    assert h["status"] == "degraded" and h["log"]["state"] == "no_space", h
    assert "ENOSPC" in h["log"]["error"] and h["log"]["since"], h
    st = admin.ok("GET", "/admin/system/status")
    assert st["status"] == "degraded" and st["log"]["state"] == "no_space", st["log"]
    assert st["log"]["space_stalls"] >= 1
    assert "writes are refused until space returns" in srv.log()

    # Writes of every kind are refused; nothing of them shows.
    assert_error(ann.post("/channels/%s/messages" % ch["id"], {"content": "refused"}), 503,
                 "SERVICE_UNAVAILABLE")
    assert_error(ann.post("/channels", {"name": "refused-room"}), 503, "SERVICE_UNAVAILABLE")
    assert "refused" not in texts(ann, ch)
    rooms = ann.ok("GET", "/channels?limit=100")["channels"]
    assert "refused-room" not in {c["name"] for c in rooms}
    # An upload is refused and leaves no temporary file behind.
    up = ann.upload("big.bin", os.urandom(256 << 10))
    assert up.status_code == 503, up.text
    wait_until(lambda: os.listdir(data / "files" / "tmp") == [],
               what="no temporary upload file left")
    # A snapshot fails (and leaves no temporary file).
    r = admin.post("/admin/snapshot")
    assert_error(r, 503, "SERVICE_UNAVAILABLE")
    st = admin.ok("GET", "/admin/system/status")
    assert st["snapshot"]["failures"] >= 1 and st["snapshot"]["last_failure"], st["snapshot"]
    assert not [f for f in os.listdir(data / "snapshots") if f.endswith(".tmp")]

    # Reads keep working, and so does live delivery (typing is not logged).
    assert acked <= texts(ben, ch)
    assert ben.ok("GET", "/users/me")["id"] == ben.id
    live.send({"type": "typing_start", "channel_id": ch["id"]})
    watcher.wait_type("typing", user_id=ann.id)

    # Space returns: writes resume by themselves, no restart.
    os.unlink(small_disk / "filler")
    wait_until(lambda: health(srv)["log"]["state"] == "ok", timeout=60,
               what="the log to take writes again")
    h = health(srv)
    assert h["status"] == "healthy" and h["log"]["error"] is None and h["log"]["since"] is None, h
    m = ann.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "after"}, 201)
    acked.add("after")
    live.wait_type("message.created", id=m["id"])
    watcher.wait_type("message.created", id=m["id"])
    # The failed snapshot is retried by itself.
    wait_until(lambda: admin.ok("GET", "/admin/system/status")["snapshot"]["lsn"] > snap_before,
               timeout=90, what="a snapshot after space returned")
    assert acked <= texts(ben, ch)
    live.close()
    watcher.close()

    # SIGKILL: everything acknowledged is in the log.
    srv.stop(signal.SIGKILL)
    again = start_server(data_dir=data)
    assert acked <= texts(ann.on(again), ch)
    ann.on(again).ok("POST", "/channels/%s/messages" % ch["id"], {"content": "restarted"}, 201)
    assert "log" in health(again) and health(again)["log"]["state"] == "ok"


def strace_children(pid):
    """The process strace runs (its first child)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
    except FileNotFoundError:
        return None
    return int(kids[0]) if kids else None


def strace_usable():
    """None when strace can trace here, else why not."""
    if shutil.which("strace") is None:
        return "strace is not installed (scripts/install-deps.sh --test installs it)"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=none", "--", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:  # a container that forbids ptrace, say
        return "strace cannot trace here: %s" % r.stderr.strip()
    return None


def test_fsync_failure_makes_the_log_read_only(start_server, tmp_path):
    why = strace_usable()
    if why:
        pytest.skip(why)
    data = tmp_path / "data"
    srv = start_server(data_dir=data)
    ann = register(srv, "syncann")
    ch = ann.ok("POST", "/channels", {"name": "sync-room"}, 201)
    acked = set()
    for i in range(3):
        ann.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "before %d" % i}, 201)
        acked.add("before %d" % i)
    assert srv.stop() == 0

    # Under strace: the 2nd fdatasync (the first after the log's new segment
    # header) fails with EIO; later ones would succeed.
    trace = tmp_path / "strace.log"
    srv = start_server(data_dir=data, wrapper=[
        "strace", "-f", "-qq", "-o", str(trace), "-e", "trace=fdatasync",
        "-e", "inject=fdatasync:error=EIO:when=2", "--"])
    ann = ann.on(srv)
    # (the first write after the start is the one whose sync fails)
    assert_error(post_until_refused(ann, ch, "sync", 20, acked), 503, "SERVICE_UNAVAILABLE")
    wait_until(lambda: "the log is read-only until restart" in srv.log(),
               what="the read-only log line")
    assert "fdatasync of the log failed: Input/output error" in srv.log()
    h = health(srv)
    assert h["status"] == "degraded" and h["log"]["state"] == "read_only", h
    assert h["log"]["error"].startswith("fdatasync failed: EIO"), h
    assert h["log"]["since"], h
    # Refused for good, although fdatasync would work now: never retried.
    for _ in range(3):
        assert_error(ann.post("/channels/%s/messages" % ch["id"], {"content": "later"}), 503,
                     "SERVICE_UNAVAILABLE")
    assert ann.ok("GET", "/users/me")["id"] == ann.id  # reads go on
    assert acked <= texts(ann, ch)
    lines = trace.read_text().splitlines()
    at = [i for i, line in enumerate(lines) if "(INJECTED)" in line]
    assert len(at) == 1, lines
    assert not [line for line in lines[at[0] + 1:] if "fdatasync(" in line], lines

    # SIGKILL the traced server (strace then exits), restart without faults.
    child = strace_children(srv.pid())
    assert child, "no traced server process"
    os.kill(child, signal.SIGKILL)
    srv.proc.wait(timeout=60)
    again = start_server(data_dir=data)
    assert health(again)["log"]["state"] == "ok"
    assert acked <= texts(ann.on(again), ch)
    ann.on(again).ok("POST", "/channels/%s/messages" % ch["id"], {"content": "healed"}, 201)
