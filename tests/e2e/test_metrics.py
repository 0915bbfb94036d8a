"""GET /metrics end to end (docs/operations.md, "Metrics"): the Prometheus
text exposition format 0.0.4 for an admin (token or API key with read), 403
for a non-admin, 401 anonymous; every sample of a family announced by its
HELP and TYPE lines, names and label values well formed, values numeric;
figures that move with what the server does (a message posted, requests
answered); the same numbers as /admin/stats; the store counts kept across a
SIGKILL while the process counters restart; `promtool check metrics` on
the text when promtool is installed.

The module's server also has the separate plain listener (--metrics-bind):
it answers GET /metrics without credentials and nothing else, while the
main port keeps /metrics for admins. The figures by route (counter by
pattern and status, latency histogram, body bytes) move with requests to
that route and never take a raw path as a label; the log's cumulative
histograms agree with its sync counter; bad --metrics-bind / --log-format
values exit 2 with one line."""
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import uuid

import pytest
import requests

from client import API, register, session_from, wait_until
from conftest import BIN, assert_error, free_port, module_server, raw_http

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}


METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "metrics",
                             args=("--rate-limit", "0",
                                   "--metrics-bind", "127.0.0.1:%d" % METRICS_PORT))


def plain(path, method="GET", **kw):
    """A request to the plain metrics listener."""
    return requests.request(method, "http://127.0.0.1:%d%s" % (METRICS_PORT, path),
                            timeout=30, **kw)


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


def test_plain_listener_serves_only_metrics_without_credentials(srv, root):
    r = plain("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"] == CONTENT_TYPE
    m = parse(r.text)
    assert m["parley_users"][""] >= 1 and "parley_http_requests_total" in m
    # credentials are not needed, nor looked at
    r = plain("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 200
    r = plain("/metrics", method="HEAD")
    assert r.status_code == 200 and r.content == b""
    r = plain("/metrics?x=1")
    assert r.status_code == 200
    # nothing but /metrics: the API is not reachable through it
    for path in ("/", "/api/health", "/api/v1/admin/stats", "/api/v1/users/me", "/metrics/",
                 "/metricsx", "/api/v1/openapi.json"):
        assert_error(plain(path), 404, "RESOURCE_NOT_FOUND")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = plain("/metrics", method=method, data=b"x" * 100)
        assert_error(r, 405, "METHOD_NOT_ALLOWED")
        assert r.headers["Allow"] == "GET, HEAD"
    # hostile bytes: not HTTP, a huge declared body, headers cut short; the
    # listener answers or closes, and serves the next scrape
    raw = raw_http(METRICS_PORT, b"\x16\x03\x01\x00\xa5 not http\r\n\r\n")
    assert raw == b"" or raw.startswith(b"HTTP/1.1 400"), raw[:200]
    raw = raw_http(METRICS_PORT, b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 1000000000\r\n\r\nabc")
    assert raw.startswith(b"HTTP/1.1 405"), raw[:200]
    raw = raw_http(METRICS_PORT, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: " +
                   b"a" * 100000 + b"\r\n\r\n")
    assert raw == b"" or raw.split(b" ")[1] in (b"400", b"413", b"431"), raw[:200]
    with socket.create_connection(("127.0.0.1", METRICS_PORT), timeout=30) as half:
        half.sendall(b"GET /metr")
        assert plain("/metrics").status_code == 200  # served beside a stalled one
    assert plain("/metrics").status_code == 200
    # the main port still asks for an admin
    assert_error(scrape(srv, {}), 401, "AUTHENTICATION_REQUIRED")
    # and a scrape there and here show the same families
    assert set(metrics(srv, root)) == set(parse(plain("/metrics").text))


def route_sample(m, name, method, route, extra=""):
    return m.get(name, {}).get('{method="%s",route="%s"%s}' % (method, route, extra), 0)


def test_route_counters_and_histogram_move(srv, root):
    ch = root.ok("POST", "/channels", {"name": "metrics-routes"}, 201)
    route = "/api/v1/channels/{id}/messages"
    before = parse(plain("/metrics").text)
    for i in range(3):
        root.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "r%d" % i}, 201)
    for _ in range(4):
        root.ok("GET", "/channels/%s/messages" % ch["id"])
    assert root.get("/channels/%s/messages" % uuid.uuid4().hex).status_code == 404
    for i in range(5):  # paths no route takes: one label for all
        assert requests.get(srv.url("/nowhere/%d/%s" % (i, uuid.uuid4().hex)),
                            timeout=30).status_code == 404
    after = parse(plain("/metrics").text)
    total = "parley_http_route_requests_total"

    def moved(method, code):
        extra = ',code="%s"' % code
        return route_sample(after, total, method, route, extra) - \
            route_sample(before, total, method, route, extra)
    assert moved("POST", 201) == 3
    assert moved("GET", 200) == 4
    assert moved("GET", 404) == 1
    n = route_sample(after, total, "any", "unmatched", ',code="404"') - \
        route_sample(before, total, "any", "unmatched", ',code="404"')
    assert n >= 5
    # the histogram: +Inf equals the count, buckets never decrease, the count
    # moved by the requests made, the sum grew
    h = "parley_http_request_duration_seconds"
    count = route_sample(after, h + "_count", "GET", route)
    assert count - route_sample(before, h + "_count", "GET", route) == 5
    buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v)
                      for k, v in after[h + "_bucket"].items()
                      if 'route="%s"' % route in k and 'method="GET"' in k))
    assert len(buckets) == 14 and buckets[-1] == (math.inf, count)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert route_sample(after, h + "_sum", "GET", route) > route_sample(before, h + "_sum", "GET",
                                                                        route)
    # bytes: the posts' bodies in, the pages out
    bi = "parley_http_request_body_bytes_total"
    bo = "parley_http_response_body_bytes_total"
    assert route_sample(after, bi, "POST", route) - route_sample(before, bi, "POST", route) >= 3 * 14
    assert route_sample(after, bo, "GET", route) - route_sample(before, bo, "GET", route) > 4 * 10
    # the label set is the route table's: no raw path, no channel id
    for name in (total, h + "_bucket", bi, bo):
        for labels in after[name]:
            assert ch["id"] not in labels and "nowhere" not in labels, labels
            r = re.search(r'route="([^"]*)"', labels).group(1)
            assert r == "unmatched" or r.startswith("/"), labels


def check_histograms(m):
    """Every histogram of a scrape: buckets never decrease and +Inf equals
    _count, whatever was being counted while it was read."""
    n = 0
    for name in m:
        if not name.endswith("_count") or name[:-6] + "_bucket" not in m:
            continue
        base = name[:-6]
        for labels, count in m[name].items():
            inner = labels[1:-1] if labels else ""
            rows = []
            for k, v in m[base + "_bucket"].items():
                rest = re.sub(r',?le="[^"]*"', "", k[1:-1])
                if rest == inner:
                    rows.append((float(re.search(r'le="([^"]+)"', k).group(1)), v))
            rows.sort()
            assert rows and rows[-1] == (math.inf, count), (name, labels, rows)
            assert all(a[1] <= b[1] for a, b in zip(rows, rows[1:])), (name, labels)
            n += 1
    return n


def test_counts_exact_under_concurrent_requests(srv, root):
    """8 threads x 40 requests to one route while scrapes run: the route's
    counter moves by exactly 320 (no count lost between threads) and every
    scrape taken meanwhile has consistent histograms."""
    import threading
    ch = root.ok("POST", "/channels", {"name": "metrics-concurrent"}, 201)
    route = "/api/v1/channels/{id}"
    key = ',code="200"'
    before = route_sample(parse(plain("/metrics").text), "parley_http_route_requests_total",
                          "GET", route, key)
    errors = []

    def hammer():
        with requests.Session() as s:
            for _ in range(40):
                r = s.get(srv.url("/api/v1/channels/" + ch["id"]), timeout=30,
                          headers={"Authorization": "Bearer " + root.token})
                if r.status_code != 200:
                    errors.append(r.status_code)
    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    scrapes = 0
    while any(t.is_alive() for t in threads) or scrapes == 0:
        assert check_histograms(parse(plain("/metrics").text)) >= 3
        scrapes += 1
    for t in threads:
        t.join()
    assert not errors, errors
    after = parse(plain("/metrics").text)
    assert route_sample(after, "parley_http_route_requests_total", "GET", route, key) - \
        before == 320
    check_histograms(after)


def test_wal_histograms_and_realtime_counters(srv, root):
    ch = root.ok("POST", "/channels", {"name": "metrics-wal"}, 201)
    before = parse(plain("/metrics").text)
    root.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "synced"}, 201)
    m = parse(plain("/metrics").text)
    f = "parley_wal_fsync_duration_seconds"
    b = "parley_wal_group_commit_batch_records"
    # cumulative since start, like the sync counter beside them
    assert m[f + "_count"][""] == m["parley_wal_syncs_total"][""] == m[b + "_count"][""]
    assert m[f + "_count"][""] > before[f + "_count"][""]
    assert m["parley_wal_appends_total"][""] >= before["parley_wal_appends_total"][""] + 1
    assert m["parley_wal_append_bytes_total"][""] > before["parley_wal_append_bytes_total"][""]
    assert m[f + '_bucket']['{le="+Inf"}'] == m[f + "_count"][""]
    assert m[f + "_sum"][""] > 0
    assert m[b + "_sum"][""] >= m[b + "_count"][""]  # at least one record per sync
    assert m[b + '_bucket']['{le="1024"}'] <= m[b + '_bucket']['{le="+Inf"}']
    # the message was published as an event
    assert m["parley_events_published_total"][""] > before["parley_events_published_total"][""]
    for name in ("parley_events_dropped_total", "parley_realtime_resyncs_total",
                 "parley_websocket_slow_consumers_closed_total",
                 "parley_websocket_frames_dropped_total"):
        assert m[name][""] >= 0, name


def test_blocked_hits_counted(srv, root):
    before = parse(plain("/metrics").text)["parley_http_blocked_total"][""]
    root.ok("POST", "/admin/blocked-ips", {"ip": "127.0.40.9"}, 201)
    s = session_from("127.0.40.9")
    for _ in range(3):
        assert_error(s.get(srv.url("/api/health"), timeout=30), 403, "IP_BLOCKED")
    m = parse(plain("/metrics").text)
    assert m["parley_http_blocked_total"][""] == before + 3
    assert route_sample(m, "parley_http_route_requests_total", "any", "unmatched",
                        ',code="403"') >= 3
    root.ok("DELETE", "/admin/blocked-ips/127.0.40.9", status=204)


@pytest.mark.parametrize("flag,value", [
    ("--metrics-bind", "127.0.0.1"),
    ("--metrics-bind", "127.0.0.1:0"),
    ("--metrics-bind", "127.0.0.1:65536"),
    ("--metrics-bind", "::1:9100"),
    ("--metrics-bind", "[::1]"),
    ("--metrics-bind", "[::1]9100"),
    ("--metrics-bind", "localhost:9100"),
    ("--metrics-bind", "127.0.0.1:91x"),
    ("--metrics-bind", ":9100"),
    ("--log-format", "xml"),
    ("--log-format", ""),
])
def test_bad_flag_values_exit_2(tmp_path, flag, value):
    done = subprocess.run([BIN, "serve", "--data-dir", str(tmp_path / "d"), "--port",
                           str(free_port()), flag, value], capture_output=True, timeout=60)
    assert done.returncode == 2, done
    err = done.stderr.decode()
    assert err.count("\n") == 1 and flag.lstrip("-").replace("-", "_") in err, err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_metrics_port_in_use_fails_start(start_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        s = start_server(args=["--metrics-bind", "127.0.0.1:%d" % port], wait=False)
        code = s.proc.wait(timeout=60)
        assert code != 0
        assert "cannot listen on metrics_bind 127.0.0.1:%d" % port in s.log()


def test_ipv6_metrics_listener(start_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    port = free_port()
    s = start_server(args=["--metrics-bind", "[::1]:%d" % port])
    r = requests.get("http://[::1]:%d/metrics" % port, timeout=30)
    assert r.status_code == 200
    parse(r.text)
    assert s.url("/")  # the main port is unaffected


# Opens 1,100 inheritable descriptors, then becomes the server: every socket
# the server opens after is numbered above select()'s FD_SETSIZE (1,024).
HOLD_FDS = ["/usr/bin/python3", "-c",
            "import os, sys\n"
            "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(1100)]\n"
            "[os.set_inheritable(f, True) for f in fds]\n"
            "os.execv(sys.argv[1], sys.argv[1:])"]


def test_plain_listener_past_fd_setsize(start_server):
    """A busy server holds thousands of descriptors: the listener must serve
    connections numbered above FD_SETSIZE (it polls with epoll)."""
    port = free_port()
    s = start_server(args=["--metrics-bind", "127.0.0.1:%d" % port], wrapper=HOLD_FDS)
    assert len(os.listdir("/proc/%d/fd" % s.pid())) > 1100
    for _ in range(3):
        r = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=30)
        assert r.status_code == 200
        assert parse(r.text)["process_open_fds"][""] > 1100


def test_promtool_check_metrics(srv, root):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus, about 100 MB: "
                    "not in scripts/install-deps.sh)")
    # with every family present: a route counted, histograms filled
    root.ok("GET", "/users/me")
    for r in (scrape(srv, {"Authorization": "Bearer " + root.token}), plain("/metrics")):
        assert r.status_code == 200
        assert b"parley_http_request_duration_seconds_bucket{" in r.content
        done = subprocess.run([promtool, "check", "metrics"], input=r.content,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, (done.stdout, done.stderr)
        # promtool lints too (names, units, counters' _total): it must be silent
        assert done.stdout.strip() == b"" and done.stderr.strip() == b"", (done.stdout,
                                                                           done.stderr)


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
