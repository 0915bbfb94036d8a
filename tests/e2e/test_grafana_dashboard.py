"""docs/grafana/parley-dashboard.json cannot rot: it is valid JSON of a
Grafana dashboard (panels with unique ids, a grid position and Prometheus
targets), and every metric name its queries use is one that GET /metrics of
the real binary exports (after requests that fill the families by route),
so a renamed metric fails here. It also covers what docs/operations.md
promises a dashboard shows: requests by route and status, latency
quantiles from the histograms, in-flight, the log's fsync latency and
batch size, snapshots, connections, events dropped, RSS, CPU and fds."""
import json
import os
import re

import pytest
import requests

from client import register
from conftest import ROOT, module_server

DASHBOARD = os.path.join(ROOT, "docs", "grafana", "parley-dashboard.json")

# PromQL words that are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "grafana")


def exported_names(srv):
    root = register(srv, "grafanaroot")
    ch = root.ok("POST", "/channels", {"name": "grafana"}, 201)
    root.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "x"}, 201)
    r = requests.get(srv.url("/metrics"), headers={"Authorization": "Bearer " + root.token},
                     timeout=30)
    assert r.status_code == 200
    names = set()
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split(" ")[2])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def metric_names(expr):
    """The metric names an expression uses: identifiers left once label
    matchers, ranges, strings and by/without lists are taken out, that are
    not functions or keywords."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    out = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue
        out.add(word)
    return out


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def targets(dash):
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield p, t


def test_dashboard_is_a_grafana_dashboard():
    dash = load()
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] < 24 and 0 < g["w"] <= 24 - g["x"] and g["h"] > 0, p["title"]
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["type"] == "prometheus", p["title"]
    refs = set()
    for p, t in targets(dash):
        assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
        assert (p["id"], t["refId"]) not in refs
        refs.add((p["id"], t["refId"]))
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "job"} <= names


def test_every_metric_the_dashboard_uses_is_exported(srv):
    exported = exported_names(srv)
    used = set()
    for _, t in targets(load()):
        used |= metric_names(t["expr"])
    missing = sorted(n for n in used if n not in exported)
    assert not missing, missing
    # the parser finds names (a parser that finds none would pass the check)
    assert len(used) >= 30
    for name in ("parley_http_route_requests_total", "parley_http_request_duration_seconds_bucket",
                 "parley_http_requests_in_flight", "parley_wal_fsync_duration_seconds_bucket",
                 "parley_wal_group_commit_batch_records_bucket",
                 "parley_snapshot_duration_seconds", "parley_websocket_connections",
                 "parley_sse_connections", "parley_events_dropped_total",
                 "process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds"):
        assert name in used, name


def test_latency_panels_use_histogram_quantile():
    exprs = [t["expr"] for _, t in targets(load())]
    for q in ("0.5", "0.99"):
        assert any(e.startswith("histogram_quantile(%s," % q) and
                   "parley_http_request_duration_seconds_bucket" in e and "route" in e
                   for e in exprs), q


def test_the_name_parser():
    assert metric_names('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{job=~"x"}'
                        '[5m])))') == {"a_bucket"}
    assert metric_names('sum(rate(a_total[1m])) / (b + c{x="y{z}"})') == {"a_total", "b", "c"}
    assert metric_names("time() - max(d > 0)") == {"d"}
