"""--log-format end to end (docs/operations.md, "Logs"): with json every line
the server writes is one JSON object with time, level and msg; an access
line also carries the request id, the user id, the route pattern, the
method, the status, the duration, the bytes and the client's address, and a
client's bytes (control characters, bytes that are not UTF-8, a forged line
in a path) stay inside their string; text stays the default, with the same
access line as before."""
import json
import re

import requests

from client import register, wait_until
from conftest import raw_http

ROUTE = "/api/v1/channels/{id}/messages"


def json_lines(server):
    """Every whole line of the log, parsed (a line being written while the
    file is read, without its newline yet, is left for the next read)."""
    text = server.log()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    out = []
    for line in text.splitlines():
        obj = json.loads(line)  # every line, not only the access lines
        assert isinstance(obj, dict), line
        assert {"time", "level", "msg"} <= set(obj), line
        assert obj["level"] in ("error", "warning", "info", "debug"), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]), line
        out.append(obj)
    return out


def access_lines(lines, request_id=None):
    return [o for o in lines if o.get("type") == "access" and
            (request_id is None or o.get("request_id") == request_id)]


def test_json_log_lines_and_access_fields(start_server):
    s = start_server(args=["--log-format", "json"])
    me = register(s, "jsonlogger")
    ch = me.ok("POST", "/channels", {"name": "json-logs"}, 201)
    me.ok("POST", "/channels/%s/messages" % ch["id"], {"content": "hello"}, 201)
    r = requests.get(s.url("/api/v1/channels/%s/messages" % ch["id"]), timeout=30,
                     headers={"Authorization": "Bearer " + me.token,
                              "X-Request-Id": "log-test-1"})
    assert r.status_code == 200
    # an anonymous 404 with a hostile path: a newline, a quote, a byte that is not UTF-8
    raw_http(s.port, b'GET /nowhere%0a"x\xff\x01?token=secret HTTP/1.1\r\nHost: x\r\n'
             b'X-Request-Id: log-test-2\r\nConnection: close\r\n\r\n')
    wait_until(lambda: access_lines(json_lines(s), "log-test-2"), what="the access lines")
    lines = json_lines(s)
    [a] = access_lines(lines, "log-test-1")
    assert a["user_id"] == me.user["id"]
    assert a["route"] == ROUTE and a["method"] == "GET" and a["status"] == 200
    assert a["path"] == "/api/v1/channels/%s/messages" % ch["id"]
    assert isinstance(a["duration_ms"], (int, float)) and a["duration_ms"] >= 0
    assert a["bytes_out"] == len(r.content) and a["bytes_in"] == 0
    assert a["ip"] == "127.0.0.1"
    assert a["level"] == "info" and "GET" in a["msg"]
    [b] = access_lines(lines, "log-test-2")
    assert b["user_id"] is None and b["route"] == "unmatched" and b["status"] in (400, 404)
    assert "token" not in b["path"] and "secret" not in json.dumps(lines)
    # the post counted its body
    posts = [o for o in access_lines(lines) if o["method"] == "POST" and o["route"] == ROUTE]
    assert posts and posts[0]["bytes_in"] > 0 and posts[0]["status"] == 201
    # a non-access line is json too (start-up)
    assert any("listening on" in o["msg"] for o in lines)


def test_json_log_survives_restart_and_stop(start_server, tmp_path):
    s = start_server(args=["--log-format", "json"], data_dir=tmp_path / "d")
    register(s, "jsonrestart")
    assert s.stop() == 0
    lines = json_lines(s)
    assert any("stopped" in o["msg"] for o in lines)


def test_text_is_the_default(start_server):
    s = start_server()
    requests.get(s.url("/api/health"), headers={"X-Request-Id": "text-1"}, timeout=30)
    line = wait_until(lambda: [l for l in s.log().splitlines(True)
                               if "id=text-1" in l and l.endswith("\n")],
                      what="the access line")[0].rstrip("\n")
    assert re.match(r"^\d{4}-\d\d-\d\dT\S+ INFO http GET /api/health 200 [\d.]+ms id=text-1 "
                    r"ip=127\.0\.0\.1$", line), line
    for l in s.log().splitlines():
        assert not l.startswith("{"), l
