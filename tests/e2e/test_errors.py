"""Every error is a JSON body of the contract: unknown routes, wrong methods,
malformed JSON, wrong content types, bodies over the limit. Never HTML, never
empty."""
import json

import requests

from conftest import assert_error, parse_raw_response, raw_http
from client import WAIT_TIMEOUT

JSON = {"Content-Type": "application/json"}


def test_unknown_route_is_404(server):
    for path in ("/nope", "/api/v1/nope", "/api/v1/", "/api/health/extra", "/docs/extra"):
        assert_error(requests.get(server.url(path)), 404, "RESOURCE_NOT_FOUND")
    assert_error(requests.post(server.url("/api/v1/nope")), 404, "RESOURCE_NOT_FOUND")
    assert_error(requests.post(server.url("/api/v1/nope"), json={"a": 1}), 404,
                 "RESOURCE_NOT_FOUND")


def test_wrong_method_is_405_with_allow(server):
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        r = requests.request(method, server.url("/api/health"))
        err = assert_error(r, 405, "METHOD_NOT_ALLOWED")
        assert r.headers["Allow"] == "GET, HEAD"
        assert err["details"]["allow"] == "GET, HEAD"
    r = requests.put(server.url("/api/health"), json={"valid": True})
    assert_error(r, 405, "METHOD_NOT_ALLOWED")


def test_malformed_json_is_400(server):
    bodies = [b"{", b"{bad}", b'{"a":}', b'{"a":1,"a":2}', b'{"a":"\xff\xfe"}',
              b'{"a":"\\u0000"}', b"{} trailing", b"\x00", b"[" * 100 + b"]" * 100,
              b'{"a":' * 40 + b"1" + b"}" * 40]
    for body in bodies:
        r = requests.post(server.url("/api/health"), data=body, headers=JSON)
        assert_error(r, 400, "BAD_REQUEST")


def test_well_formed_json_of_the_wrong_shape_is_422(server):
    for body in (b"[1,2]", b'"text"', b"42", b"null"):
        r = requests.post(server.url("/api/health"), data=body, headers=JSON)
        assert_error(r, 422, "VALIDATION_ERROR")


def test_wrong_content_type_is_400(server):
    cases = [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Content-Type": "application/json; charset=iso-8859-1"},
        {"Content-Type": "application/jsonp"},
    ]
    for headers in cases:
        r = requests.post(server.url("/api/health"), data=b"{}", headers=headers)
        err = assert_error(r, 400, "BAD_REQUEST")
        assert "Content-Type" in err["message"] or "UTF-8" in err["message"]
    # No Content-Type at all.
    raw = raw_http(server.port, b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   b"Connection: close\r\n\r\n{}")
    assert_error(parse_raw_response(raw), 400, "BAD_REQUEST")


def test_header_names_are_case_insensitive(server):
    raw = raw_http(server.port, b"PUT /api/health HTTP/1.1\r\nhost: x\r\n"
                   b"content-type: application/json\r\ncontent-length: 2\r\n"
                   b"connection: close\r\n\r\n{}")
    assert_error(parse_raw_response(raw), 405, "METHOD_NOT_ALLOWED")


def test_body_over_the_limit_is_413_before_it_is_read(start_server):
    server = start_server(["--max-body-bytes", "4096"])
    # Only the headers are sent: the answer must come without the body (the
    # body never comes, so an answer at all is the proof; the deadline is
    # only for a failure).
    raw = raw_http(server.port, b"POST /api/health HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{",
                   timeout=WAIT_TIMEOUT)
    assert raw, "no answer before the body"
    status, headers, body = parse_raw_response(raw)
    err = assert_error((status, headers, body), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["max_bytes"] == 4096
    assert headers["connection"].lower() == "close"

    # With requests, a real oversized body.
    r = requests.post(server.url("/api/health"), data=b"x" * 5000, headers=JSON)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    # The server keeps serving.
    assert requests.get(server.url("/api/health")).status_code == 200


def test_body_at_the_limit_passes_the_size_check(start_server):
    server = start_server(["--max-body-bytes", "4096"])
    pad = 4096 - len(b'{"p":""}')
    exact = b'{"p":"' + b"a" * pad + b'"}'
    assert len(exact) == 4096
    assert_error(requests.post(server.url("/api/health"), data=exact, headers=JSON), 405,
                 "METHOD_NOT_ALLOWED")
    over = b'{"p":"' + b"a" * (pad + 1) + b'"}'
    assert_error(requests.post(server.url("/api/health"), data=over, headers=JSON), 413,
                 "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413(start_server):
    server = start_server(["--max-body-bytes", "4096"])
    chunk = b"a" * 1000

    def gen():
        for _ in range(10):
            yield chunk

    r = requests.post(server.url("/api/health"), data=gen(), headers=JSON)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    # A small chunked body is read normally.
    r = requests.post(server.url("/api/health"), data=iter([b'{"a":', b"1}"]), headers=JSON)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")


def test_odd_requests_get_json_errors_never_html(server):
    paths = ["/%", "/%zz", "/api/v1/../../etc/passwd", "/" + "a" * 3000, "/api//health//x",
             "/api/health/%ff", "/\u00e9t\u00e9", "/api/health/%00"]
    for path in paths:
        r = requests.get(server.url(path))
        assert r.headers["Content-Type"].startswith("application/json"), (path, r.text[:200])
        assert r.json()["error"]["code"] in ("RESOURCE_NOT_FOUND", "BAD_REQUEST")
    assert requests.get(server.url("/api/health")).status_code == 200


def test_server_survives_garbage_on_the_wire(server):
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /api/health HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"POST /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        raw_http(server.port, junk, timeout=2)
    assert requests.get(server.url("/api/health")).status_code == 200


def test_protocol_errors_from_libmicrohttpd_are_json_too(server):
    cases = [
        (b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /api/health HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n", 400),
        (b"POST /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         b"Content-Type: application/json\r\n\r\nzz\r\n", 400),
    ]
    for data, status in cases:
        raw = raw_http(server.port, data)
        got, headers, body = parse_raw_response(raw)
        assert got == status, raw[:200]
        assert headers["content-type"].startswith("application/json")
        payload = json.loads(body)
        assert payload["error"]["code"] == "BAD_REQUEST"
        assert payload["error"]["request_id"] == headers["x-request-id"]
    assert requests.get(server.url("/api/health")).status_code == 200
    # Client mistakes do not reach the log at the default level.
    assert "libmicrohttpd" not in server.log()
