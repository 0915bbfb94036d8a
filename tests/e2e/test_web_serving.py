"""Serving of the web client and the documentation pages (src/api/h_web.c)
against the real binary: ETag and 304 (If-None-Match exact, in a list, weak,
`*`), the variant chosen by Accept-Encoding (br, gzip, both, q=0, none,
identity) with Content-Encoding and Vary, the decompressed variants equal to
the identity bytes, Cache-Control (immutable for /assets/, no-cache for
pages), the pages' Content-Security-Policy and the API's default one on
/api/, HEAD, the favicon, unknown and hostile asset names (404 with the JSON
error), query strings (422, as on every route), and methods other than GET and HEAD (405 with Allow)."""
import gzip
import re
import subprocess

import pytest
import requests

from conftest import assert_error, module_server, parse_raw_response, raw_http

PAGES = ("/", "/docs", "/redoc", "/favicon.svg")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "web")


def get(srv, path, accept=None, **headers):
    """GET without requests' own Accept-Encoding; the body as sent (not decoded)."""
    h = {"Accept-Encoding": accept}
    h.update(headers)
    r = requests.get(srv.url(path), headers=h, stream=True)
    r.body = r.raw.read(decode_content=False)
    return r


def assets(srv):
    """The bundles the pages link (/assets/...)."""
    found = set()
    for page in ("/", "/docs", "/redoc"):
        html = get(srv, page).body.decode()
        found.update(re.findall(r'"(/assets/[^"]+)"', html))
    assert len(found) >= 5, found  # the client's, Swagger UI's and Redoc's js and css
    return sorted(found)


def unbrotli(data):
    """Brotli decoding by node (a build dependency; Python has no brotli)."""
    out = subprocess.run(["node", "-e", "process.stdout.write(require('zlib').brotliDecompressSync("
                          "require('fs').readFileSync(0)))"], input=data, capture_output=True,
                         check=True)
    return out.stdout


def test_pages_and_assets_have_their_cache_policy(srv):
    for path in PAGES:
        r = get(srv, path)
        assert r.status_code == 200, path
        assert r.headers["Cache-Control"] == "no-cache", path
        assert re.fullmatch(r'"[0-9a-f]{20}"', r.headers["ETag"]), r.headers["ETag"]
        assert r.headers["Vary"] == "Accept-Encoding"
    for path in assets(srv):
        r = get(srv, path)
        assert r.status_code == 200, path
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable", path
        assert "Content-Security-Policy" not in r.headers or \
            r.headers["Content-Security-Policy"].startswith("default-src 'none'"), path
    assert get(srv, "/").headers["Content-Type"] == "text/html; charset=utf-8"
    assert get(srv, "/favicon.svg").headers["Content-Type"] == "image/svg+xml"
    assert get(srv, "/favicon.svg").body.startswith(b"<svg")


def test_the_pages_policies_and_the_apis(srv):
    client = get(srv, "/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in client and "style-src 'self';" in client
    assert "frame-ancestors 'none'" in client and "unsafe" not in client
    assert get(srv, "/docs").headers["Content-Security-Policy"] == client
    redoc = get(srv, "/redoc").headers["Content-Security-Policy"]
    assert "script-src 'self';" in redoc and "style-src 'self' 'unsafe-inline';" in redoc
    assert "unsafe-eval" not in redoc
    api = requests.get(srv.url("/api/health"))
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    for path in PAGES:
        assert get(srv, path).headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/docs", "/assets/"])
def test_etag_gives_304(srv, path):
    if path == "/assets/":
        path = assets(srv)[0]
    first = get(srv, path)
    etag = first.headers["ETag"]
    for inm in (etag, '"nope", ' + etag, etag + ', "nope"', "W/" + etag, '"a",W/' + etag, "*"):
        r = get(srv, path, **{"If-None-Match": inm})
        assert r.status_code == 304, inm
        assert r.body == b""
        assert r.headers["ETag"] == etag
        assert r.headers["Cache-Control"] == first.headers["Cache-Control"]
    for inm in ('"nope"', etag[:-2] + '"', '"x' + etag[1:], etag[:-1] + 'x"', ""):
        r = get(srv, path, **{"If-None-Match": inm})
        assert r.status_code == 200, inm
        assert len(r.body) > 0


def test_accept_encoding_chooses_the_variant(srv):
    for path in ["/", "/redoc"] + assets(srv):
        plain = get(srv, path)
        assert "Content-Encoding" not in plain.headers
        assert int(plain.headers["Content-Length"]) == len(plain.body)
        cases = {
            "br": "br", "gzip": "gzip", "gzip, br": "br", "br, gzip": "br",
            "gzip;q=1.0, br;q=0": "gzip", "br;q=0, gzip;q=0": None, "identity": None,
            "deflate": None, "BR": "br", "gzip;q=0.5": "gzip", "*": None, "": None,
        }
        for accept, want in cases.items():
            r = get(srv, path, accept)
            assert r.status_code == 200
            assert r.headers.get("Content-Encoding") == want, (path, accept)
            assert r.headers["Vary"] == "Accept-Encoding"
            assert int(r.headers["Content-Length"]) == len(r.body)
            if want == "br":
                assert unbrotli(r.body) == plain.body, path
                assert len(r.body) < len(plain.body)
            elif want == "gzip":
                assert gzip.decompress(r.body) == plain.body, path
                assert len(r.body) < len(plain.body)
            else:
                assert r.body == plain.body, (path, accept)


def test_head_has_the_headers_and_no_body(srv):
    for path in ["/", "/docs", assets(srv)[0]]:
        g = get(srv, path, "br")
        h = requests.head(srv.url(path), headers={"Accept-Encoding": "br"})
        assert h.status_code == 200
        assert h.content == b""
        for k in ("ETag", "Cache-Control", "Content-Type", "Content-Encoding", "Vary"):
            assert h.headers.get(k) == g.headers.get(k), k


def raw_get(srv, target):
    raw = raw_http(srv.port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                              % target).encode("latin-1"))
    return parse_raw_response(raw)


def test_unknown_and_hostile_names_are_404(srv):
    real = assets(srv)[0]
    assert_error(requests.get(srv.url("/assets/app-NOPE.js")), 404, "RESOURCE_NOT_FOUND")
    assert_error(requests.get(srv.url("/assets/")), 404, "RESOURCE_NOT_FOUND")
    for target in ("/assets/../docs", "/assets/..%2Fdocs", "/assets/%2E%2E%2Fdocs",
                   "/assets/x%00.js", real + "%00", "/assets/" + "a" * 300 + ".js",
                   "/assets/" + "a" * 5000, "/assets/%2Fetc%2Fpasswd", "/assets/..",
                   "/assets/.%2F" + real.rsplit("/", 1)[1], "/assets/x/y.js",
                   "/assets/index.html", "/assets/%5C..%5Cdocs"):
        st, headers, body = raw_get(srv, target)
        assert st in (400, 404), (target, st)
        assert_error((st, headers, body), st, "RESOURCE_NOT_FOUND" if st == 404 else "BAD_REQUEST")
    # A query string is refused like on every route (the router's strict
    # inputs: these routes declare no query parameter), never served as a file.
    for target in (real + "?v=1", "/?x=<script>", "/docs?url=https://evil.example"):
        r = requests.get(srv.url(target))
        err = assert_error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["in"] == "query"


def test_other_methods_are_405_with_allow(srv):
    for path in ["/", "/docs", "/redoc", "/favicon.svg", assets(srv)[0]]:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = requests.request(method, srv.url(path))
            err = assert_error(r, 405, "METHOD_NOT_ALLOWED")
            assert r.headers["Allow"] == "GET, HEAD", (method, path)
            assert err["details"]["allow"] == "GET, HEAD"


def test_an_invite_link_leads_to_the_registration_page(srv):
    r = requests.get(srv.url("/register?invite=Ab-3_x"), allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"] == "/#/register?invite=Ab-3_x"
    r = requests.get(srv.url("/register"), allow_redirects=False)
    assert (r.status_code, r.headers["Location"]) == (302, "/#/register")
    # Nothing but a code's characters reaches the Location header.
    for bad in ("a%0d%0aSet-Cookie:%20x=1", "<script>", "a/../b", "x" * 65, "", "a b"):
        r = requests.get(srv.url("/register?invite=" + bad), allow_redirects=False)
        err = assert_error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "invite"
        assert "Location" not in r.headers
