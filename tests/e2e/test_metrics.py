"""GET /metrics end to end (docs/operations.md, "Metrics"): the Prometheus
text exposition format 0.0.4 for an admin (token or API key with read), 403
for a non-admin, 401 anonymous; every sample of a family announced by its
HELP and TYPE lines, names and label values well formed, values numeric;
figures that move with what the server does (a message posted, requests
answered); the same numbers as /admin/stats; the store counts kept across a
SIGKILL while the process counters restart; `promtool check metrics` on
the text when promtool is installed."""
import math
import re
import shutil
import signal
import subprocess

import pytest
import requests

from client import API, register, wait_until
from conftest import assert_error, module_server

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "metrics")


@pytest.fixture(scope="module")
def root(srv):
    admin = register(srv, "metricsroot")
    assert "admin" in admin.user["roles"]
    return admin


def scrape(srv, headers):
    return requests.get(srv.url("/metrics"), headers=headers, timeout=30)


def parse(text):
    """{name: {labels_text: value}} after checking the format line by line;
    every sample's family must have had its HELP and TYPE first."""
    assert text.endswith("\n")
    helped, typed, out = set(), {}, {}
    for line in text.splitlines():
        assert line, "an empty line"
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert re.fullmatch(NAME, name) and name not in helped, line
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in TYPES and name not in typed, line
            typed[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name
        for suffix in ("_sum", "_count", "_bucket"):
            if name.endswith(suffix) and name[:-len(suffix)] in typed:
                family = name[:-len(suffix)]
        assert family in helped and family in typed, "no HELP/TYPE before %r" % line
        v = float(value)
        assert not math.isnan(v), line
        if typed[family] == "counter":
            assert name.endswith("_total") and v >= 0, line
        assert labels not in out.setdefault(name, {}), "a sample twice: %r" % line
        out[name][labels] = v
    return out


def metrics(srv, who):
    r = scrape(srv, {"Authorization": "Bearer " + who.token})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == CONTENT_TYPE
    return parse(r.text)


def test_admins_only(srv, root):
    assert_error(scrape(srv, {}), 401, "AUTHENTICATION_REQUIRED")
    user = register(srv, "metrics_user")
    assert_error(scrape(srv, {"Authorization": "Bearer " + user.token}), 403,
                 "INSUFFICIENT_PERMISSIONS")
    key = user.ok("POST", "/auth/api-keys", {"name": "scraper", "permissions": ["read"]},
                  201)["key"]
    assert_error(scrape(srv, {"X-API-Key": key}), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(scrape(srv, {"Authorization": "Bearer not-a-token"}), 401, "TOKEN_INVALID")
    # an admin's API key with read is what a Prometheus job is given
    key = root.ok("POST", "/auth/api-keys", {"name": "prometheus", "permissions": ["read"]},
                  201)["key"]
    r = scrape(srv, {"X-API-Key": key})
    assert r.status_code == 200 and r.headers["Content-Type"] == CONTENT_TYPE
    parse(r.text)
    # only GET
    r = requests.post(srv.url("/metrics"), headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 405


def test_families_present_and_sane(srv, root):
    m = metrics(srv, root)
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "process_start_time_seconds", "parley_http_requests_total",
                 "parley_http_requests_in_flight", "parley_http_rate_limited_total",
                 "parley_wal_bytes", "parley_wal_segments", "parley_wal_last_lsn",
                 "parley_wal_fsync_p99_seconds", "parley_wal_group_commit_batch_mean",
                 "parley_snapshot_last_lsn", "parley_snapshot_bytes", "parley_users",
                 "parley_channels", "parley_messages", "parley_files", "parley_blob_bytes",
                 "parley_websocket_connections", "parley_sse_connections",
                 "parley_event_ring_events", "parley_view_cache_hits_total",
                 "parley_view_cache_misses_total", "parley_log_state", "parley_build_info"):
        assert name in m, name
    assert m["process_resident_memory_bytes"][""] > 1 << 20
    assert m["process_open_fds"][""] >= 3
    assert m["parley_http_requests_in_flight"][""] >= 1  # this scrape
    assert m["parley_log_state"] == {'{state="ok"}': 1, '{state="no_space"}': 0,
                                     '{state="read_only"}': 0}
    assert m["parley_users"][""] >= 1
    assert set(m["parley_http_requests_total"]) >= {'{code="2xx"}', '{code="4xx"}',
                                                    '{code="5xx"}'}
    assert 0 <= m["parley_wal_fsync_p50_seconds"][""] <= m["parley_wal_fsync_p99_seconds"][""] \
        <= m["parley_wal_fsync_max_seconds"][""]
    assert m["parley_wal_fsync_max_seconds"][""] > 0  # registering synced the log
    stats = root.ok("GET", "/admin/stats")
    assert m["parley_wal_segments"][""] >= 1
    assert m["parley_users"][""] == stats["users"]["total"]


def test_figures_move(srv, root):
    before = metrics(srv, root)
    ch = root.ok("POST", "/channels", {"name": "metrics-room"}, 201)
    for i in range(3):
        root.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "m%d" % i}, 201)
    assert root.get("/channels/does-not-exist").status_code == 404
    after = metrics(srv, root)
    assert after["parley_messages"][""] == before["parley_messages"][""] + 3
    assert after['parley_channels']['{kind="public"}'] == \
        before['parley_channels']['{kind="public"}'] + 1
    assert after["parley_wal_last_lsn"][""] >= before["parley_wal_last_lsn"][""] + 4
    ok = '{code="2xx"}'
    assert after["parley_http_requests_total"][ok] >= \
        before["parley_http_requests_total"][ok] + 5  # the writes and the first scrape
    bad = '{code="4xx"}'
    assert after["parley_http_requests_total"][bad] >= \
        before["parley_http_requests_total"][bad] + 1
    assert after["parley_wal_syncs_total"][""] > before["parley_wal_syncs_total"][""]
    # a snapshot shows
    snap = root.ok("POST", "/admin/snapshot")
    m = metrics(srv, root)
    assert m["parley_snapshot_last_lsn"][""] == snap["lsn"]
    assert m["parley_snapshot_bytes"][""] == snap["bytes"]
    assert m["parley_snapshot_time_seconds"][""] > 0


def test_promtool_check_metrics(srv, root):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus, about 100 MB: "
                    "not in scripts/install-deps.sh)")
    r = scrape(srv, {"Authorization": "Bearer " + root.token})
    assert r.status_code == 200
    done = subprocess.run([promtool, "check", "metrics"], input=r.content,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    # promtool lints too (names, units, counters' _total): it must be silent
    assert done.stdout.strip() == b"" and done.stderr.strip() == b"", (done.stdout, done.stderr)


def test_counts_survive_a_sigkill_and_counters_restart(srv, root):
    """Last in the module: it restarts the server. The store's counts and
    LSNs are the data's (replayed from the log after a SIGKILL); the
    process's counters begin again."""
    ch = root.ok("POST", "/channels", {"name": "metrics-kill"}, 201)
    root.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "acknowledged"}, 201)
    before = metrics(srv, root)
    assert srv.stop(signal.SIGKILL) == -signal.SIGKILL
    srv.start()
    after = metrics(srv, root)
    for name in ("parley_messages", "parley_users"):
        assert after[name][""] == before[name][""], name
    assert after["parley_wal_last_lsn"][""] >= before["parley_wal_last_lsn"][""]
    assert after["parley_channels"] == before["parley_channels"]
    ok = '{code="2xx"}'
    assert after["parley_http_requests_total"][ok] < before["parley_http_requests_total"][ok]
    assert after["process_start_time_seconds"][""] >= before["process_start_time_seconds"][""]
