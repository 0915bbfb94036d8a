"""The admin dashboard end to end (docs/admin.md, "Dashboard: stats, series,
system status, snapshots"): GET /admin/stats counts moving as accounts
register, post, upload and log in; GET /admin/stats/timeseries with every
bucket present and sums matching the counts, kept across a restart and a
SIGKILL after a snapshot (no record counted twice); bad parameters 422 with
the field named; non-admins 403; GET /admin/system/status fields present
and sane; POST /admin/snapshot answering an lsn at least the last write's,
two at once, and a restart from it."""
import datetime
import os
import signal
import threading

import pytest
import requests

from client import API, PASSWORD, Client, register, wait_until
from conftest import assert_error, module_server
from realtime_client import Live, Stream

ROUTES = [("GET", "/admin/stats"), ("GET", "/admin/stats/timeseries?metric=messages"),
          ("GET", "/admin/system/status"), ("POST", "/admin/snapshot")]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "admin-stats")


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "statroot")
    assert "admin" in admin.user["roles"]
    return admin


def parse(t):
    assert t.endswith("Z") and len(t) == 24, t  # RFC 3339, milliseconds, UTC
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def series(who, metric, bucket="minute", **params):
    s = who.ok("GET", "/admin/stats/timeseries?" + "&".join(
        ["metric=" + metric, "bucket=" + bucket] + ["%s=%s" % kv for kv in params.items()]))
    assert s["metric"] == metric and s["bucket"] == bucket
    return s


def total(who, metric):
    """The sum of a metric over the last day, by minute (1,440 buckets)."""
    return sum(p["value"] for p in series(who, metric, "minute", **{
        "from": rfc3339(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)),
        "to": rfc3339(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)),
    })["points"])


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_counts_move_as_accounts_register_post_upload_and_log_in(srv, root):
    before = root.ok("GET", "/admin/stats")
    signups0, messages0, uploads0, logins0 = (total(root, m) for m in
                                              ("signups", "messages", "uploads", "logins"))
    ann, ben = register(srv, "stat_ann"), register(srv, "stat_ben")
    pub = ann.ok("POST", "/channels", {"name": "stat-pub"}, 201)
    ann.ok("POST", "/channels", {"name": "stat-priv", "is_private": True}, 201)
    ann.ok("POST", "/channels/direct", {"user_ids": [ben.id]}, 201)
    for i in range(7):
        ann.ok("POST", "/channels/%s/messages" % pub["id"], {"content": "m%d" % i}, 201)
    gone = ann.ok("POST", "/channels/%s/messages" % pub["id"], {"content": "deleted"}, 201)
    ann.ok("DELETE", "/messages/%s" % gone["id"], status=204)  # was sent: still counted
    data = os.urandom(3000)
    ann.uploaded("a.bin", data)
    ben.uploaded("b.bin", data)  # the same bytes: stored once
    ann.uploaded("c.bin", os.urandom(500))
    r = requests.post(srv.url(API + "/auth/login"),
                      json={"username": "stat_ben", "password": PASSWORD}, timeout=30)
    assert r.status_code == 200

    after = root.ok("GET", "/admin/stats")
    assert after["users"]["total"] == before["users"]["total"] + 2
    assert after["users"]["active_24h"] >= 3 and after["users"]["active_7d"] >= 3
    assert after["channels"]["public"] == before["channels"]["public"] + 1
    assert after["channels"]["private"] == before["channels"]["private"] + 1
    assert after["channels"]["direct"] == before["channels"]["direct"] + 1
    assert after["channels"]["total"] == sum(after["channels"][k]
                                             for k in ("public", "private", "direct"))
    assert after["messages"]["total"] == before["messages"]["total"] + 8
    f0, f1 = before["files"], after["files"]
    assert f1["total"] == f0["total"] + 3 and f1["live"] == f0["live"] + 3
    assert f1["bytes"] == f0["bytes"] + 6500
    assert f1["blob_bytes"] == f0["blob_bytes"] + 3500
    assert f1["dedup_saved_bytes"] == f0["dedup_saved_bytes"] + 3000
    assert after["wal"]["last_lsn"] > before["wal"]["last_lsn"]
    assert after["wal"]["bytes"] > 0 and after["wal"]["segments"] >= 1
    assert after["requests_per_second"] > 0
    assert after["uptime_seconds"] >= 0

    # The series add up to the same moves (the module's server is fresh, so
    # everything it counted falls in the last day).
    assert total(root, "signups") == signups0 + 2
    assert total(root, "messages") == messages0 + 8
    assert total(root, "uploads") == uploads0 + 3
    assert total(root, "logins") == logins0 + 1
    assert total(root, "messages") == after["messages"]["total"]
    assert total(root, "uploads") == after["files"]["total"]
    assert total(root, "signups") == after["users"]["total"] + after["users"]["deactivated"]
    # ann, ben and root were active in this minute or the one before.
    last = series(root, "active_users", "minute")["points"][-2:]
    assert max(p["value"] for p in last) >= 1
    assert series(root, "active_users", "day")["points"][-1]["value"] >= 3


def test_every_bucket_is_present_with_its_start(srv, root):
    day = series(root, "messages", "hour", **{"from": "2026-01-01T00:00:00Z",
                                              "to": "2026-01-02T00:00:00Z"})
    assert [p["t"] for p in day["points"]] == [
        "2026-01-01T%02d:00:00.000Z" % h for h in range(24)]
    assert all(p["value"] == 0 for p in day["points"])
    # A range that starts and ends inside buckets: both are in, each at its start.
    part = series(root, "signups", "day", **{"from": "2026-01-01T13:00:00Z",
                                             "to": "2026-01-03T00:00:01Z"})
    assert [p["t"] for p in part["points"]] == [
        "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]
    epoch = series(root, "messages", "hour", **{"from": "1970-01-01T00:00:00Z",
                                                "to": "1970-01-01T02:00:00Z"})
    assert epoch["from"] == "1970-01-01T00:00:00.000Z"
    assert [p["t"] for p in epoch["points"]] == ["1970-01-01T00:00:00.000Z",
                                                 "1970-01-01T01:00:00.000Z"]
    empty = series(root, "uploads", "minute", **{"from": "2026-01-01T00:00:00Z",
                                                 "to": "2026-01-01T00:00:00Z"})
    assert empty["points"] == []
    # Defaults: up to now, an hour of minutes, a day of hours, 30 days.
    for bucket, lo, width in (("minute", 60, 60), ("hour", 24, 3600), ("day", 30, 86400)):
        s = root.ok("GET", "/admin/stats/timeseries?metric=logins&bucket=" + bucket)
        pts = s["points"]
        assert lo <= len(pts) <= lo + 1, (bucket, len(pts))
        ts = [parse(p["t"]) for p in pts]
        assert all((b - a).total_seconds() == width for a, b in zip(ts, ts[1:]))
        assert all(t.timestamp() % width == 0 for t in ts)
        assert ts[0] <= parse(s["from"]) < ts[0] + datetime.timedelta(seconds=width)
    assert root.ok("GET", "/admin/stats/timeseries?metric=messages")["bucket"] == "hour"
    # 10,000 buckets is the most.
    ok = series(root, "messages", "minute", **{"from": "2026-01-01T00:00:00Z",
                                               "to": "2026-01-07T22:40:00Z"})
    assert len(ok["points"]) == 10000


@pytest.mark.parametrize("query,field", [
    ("", "metric"),
    ("metric=bogus", "metric"),
    ("metric=messages&bucket=week", "bucket"),
    ("metric=messages&from=yesterday", "from"),
    ("metric=messages&to=2026-13-01T00:00:00Z", "to"),
    ("metric=messages&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
    ("metric=messages&bucket=minute&from=2026-01-01T00:00:00Z&to=2026-01-07T22:40:00.001Z",
     "from"),
    ("metric=messages&bucket=minute&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z", "from"),
])
def test_bad_parameters_are_422_naming_the_field(srv, root, query, field):
    err = assert_error(root.get("/admin/stats/timeseries?" + query), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field


def test_non_admins_are_refused(srv, root):
    who = register(srv, "stat_pleb")
    for method, path in ROUTES:
        assert_error(who.call(method, path), 403, "INSUFFICIENT_PERMISSIONS")
        assert_error(requests.request(method, srv.url(API + path), timeout=30), 401,
                     "AUTHENTICATION_REQUIRED")


def nonneg(obj, where=""):
    """Every number in obj is >= 0."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            nonneg(v, where + "." + k)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        assert obj >= 0, where


def test_system_status_is_complete_and_sane(srv, root):
    # Some durable writes so the log has syncs to report.
    c = root.ok("POST", "/channels", {"name": "status-room"}, 201)
    for i in range(5):
        root.ok("POST", "/channels/%s/messages" % c["id"], {"content": "s%d" % i}, 201)
    live = Live(srv, root.token)
    stream = Stream(srv, root.token)
    try:
        stream.wait("ready")
        st = wait_until(lambda: (lambda s: s if s["connections"]["websockets"] >= 1 and
                                 s["connections"]["event_streams"] >= 1 else None)(
            root.ok("GET", "/admin/system/status")), what="the connections counted")
    finally:
        live.close()
        stream.close()
    nonneg(st)
    assert st["status"] == "healthy" and st["uptime"] == st["uptime_seconds"] and st["version"]
    p = st["process"]
    assert p["rss_bytes"] > 0 and p["open_fds"] > 0
    assert p["cpu_user_seconds"] + p["cpu_system_seconds"] > 0
    d = st["disk"]
    assert d["used_bytes"] + d["free_bytes"] > 0 and d["total_bytes"] >= d["free_bytes"]
    assert d["path"] == srv.data_dir
    w = st["wal"]
    assert w["segment"] >= 1 and w["segments"] >= 1 and w["bytes"] >= w["segment_bytes"]
    assert w["durable_lsn"] <= w["last_lsn"]
    assert w["fsync"]["count"] >= 1 and w["fsync"]["total"] >= w["fsync"]["count"]
    assert w["fsync"]["p99_us"] >= w["fsync"]["p50_us"]
    assert w["fsync"]["max_us"] >= w["fsync"]["p99_us"]
    assert w["batch"]["max"] >= 1 and w["batch"]["mean"] >= 1
    assert st["connections"]["http_in_flight"] >= 1
    ring = st["event_ring"]
    assert ring["capacity"] > 0 and ring["events"] >= 5 and 0 < ring["fill"] <= 1
    vc = st["view_cache"]
    assert 0 <= vc["hit_rate"] <= 1
    assert isinstance(st["snapshot"]["in_progress"], bool)
    assert st["requests_per_second"] > 0


def test_two_snapshots_at_once_both_succeed(srv, root):
    answers = []

    def snap():
        answers.append(root.call("POST", "/admin/snapshot"))

    threads = [threading.Thread(target=snap) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200]
    for a in answers:
        body = a.json()
        assert body["lsn"] >= 1 and body["bytes"] > 0
    newest = max(a.json()["lsn"] for a in answers)
    path = os.path.join(srv.data_dir, "snapshots", "%020d.snap" % newest)
    assert os.path.exists(path)


def test_snapshot_then_restart_and_sigkill_keep_the_series(start_server, tmp_path):
    s = start_server(args=("--rate-limit", "0"))
    admin = register(s, "snaproot")
    ann = register(s, "snap_ann")
    c = ann.ok("POST", "/channels", {"name": "snap-room"}, 201)
    for i in range(12):
        ann.ok("POST", "/channels/%s/messages" % c["id"], {"content": "before %d" % i}, 201)
    ann.uploaded("x.bin", b"x" * 100)
    last_write = admin.ok("GET", "/admin/stats")["wal"]["last_lsn"]
    snap = admin.ok("POST", "/admin/snapshot")
    assert snap["lsn"] >= last_write
    path = os.path.join(s.data_dir, "snapshots", "%020d.snap" % snap["lsn"])
    assert os.path.getsize(path) == snap["bytes"]
    assert snap["duration_ms"] >= 0 and snap["segments_trimmed"] >= 0
    parse(snap["time"])
    # Writes after the snapshot: replayed over it at start, each counted once.
    for i in range(5):
        ann.ok("POST", "/channels/%s/messages" % c["id"], {"content": "after %d" % i}, 201)
    want = {m: total(admin, m) for m in ("messages", "signups", "uploads", "logins")}
    assert want["messages"] == 17 and want["signups"] == 2 and want["uploads"] == 1
    hourly = series(admin, "messages", "hour")["points"]

    assert s.stop() == 0  # a clean stop writes another snapshot
    s2 = start_server(args=("--rate-limit", "0"), data_dir=s.data_dir)
    admin2 = admin.on(s2)
    assert {m: total(admin2, m) for m in want} == want
    assert series(admin2, "messages", "hour", **{"from": hourly[0]["t"], "to": rfc3339(
        parse(hourly[-1]["t"]) + datetime.timedelta(hours=1))})["points"] == hourly
    st = admin2.ok("GET", "/admin/stats")
    assert st["messages"]["total"] == 17
    assert st["snapshot"]["lsn"] >= snap["lsn"] and st["snapshot"]["bytes"] > 0
    parse(st["snapshot"]["time"])

    # A snapshot, more writes, then SIGKILL: the snapshot and the log after it
    # are replayed, and nothing is counted twice.
    snap2 = admin2.ok("POST", "/admin/snapshot")
    assert snap2["lsn"] >= st["wal"]["last_lsn"]
    ann2 = ann.on(s2)
    for i in range(3):
        ann2.ok("POST", "/channels/%s/messages" % c["id"], {"content": "late %d" % i}, 201)
    s2.stop(sig=signal.SIGKILL)
    s3 = start_server(args=("--rate-limit", "0"), data_dir=s.data_dir)
    admin3 = admin.on(s3)
    assert total(admin3, "messages") == 20
    assert admin3.ok("GET", "/admin/stats")["messages"]["total"] == 20
    assert total(admin3, "signups") == 2
    status = admin3.ok("GET", "/admin/system/status")
    assert status["snapshot"]["lsn"] >= snap2["lsn"]
    assert status["snapshot"]["in_progress"] is False


def test_a_snapshot_is_audited(srv, root):
    body = root.ok("POST", "/admin/snapshot")
    entries = root.get("/admin/audit-log", action="system.snapshot").json()["entries"]
    assert entries and entries[0]["actor"]["id"] == root.id
    assert entries[0]["details"] == {"lsn": body["lsn"], "bytes": body["bytes"]}
