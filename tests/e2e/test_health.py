"""GET /api/health, HEAD, the OpenAPI document, and the version command."""
import subprocess

import requests

from conftest import BIN
from client import wait_until


def test_health_answers_status_version_uptime(server):
    r = requests.get(server.url("/api/health"))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["status"] == "healthy"
    version = subprocess.run([BIN, "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "parley " + body["version"]
    assert isinstance(body["uptime_seconds"], int) and body["uptime_seconds"] >= 0


def test_uptime_grows(server):
    def uptime():
        return requests.get(server.url("/api/health")).json()["uptime_seconds"]
    first = uptime()
    wait_until(lambda: uptime() >= first + 1, what="uptime_seconds past %d" % first,
               interval=0.1)


def test_head_health_has_no_body(server):
    r = requests.head(server.url("/api/health"))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["X-Request-Id"]


def test_trailing_slash_is_the_same_endpoint(server):
    assert requests.get(server.url("/api/health/")).status_code == 200


def test_openapi_document_is_served(server):
    r = requests.get(server.url("/api/v1/openapi.json"))
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "get" in doc["paths"]["/api/health"]
    assert "Error" in doc["components"]["schemas"]
    with open(BIN.replace("bin/parley", "docs/openapi.json").replace(
            "build/asan/parley", "docs/openapi.json"), "rb") as f:
        assert r.content == f.read()


def test_security_headers_on_every_answer(server):
    for path in ("/api/health", "/nope"):
        r = requests.get(server.url(path))
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "no-store"
