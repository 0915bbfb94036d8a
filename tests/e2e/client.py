"""The e2e tests' one client of the REST API: registration, an account's
authenticated session (JSON calls, uploads, downloads, hand-made bodies) and
wait_until, which polls a condition until a generous deadline instead of
sleeping for a guessed time.

    from client import Client, accounts, register, registration, wait_until
"""
import base64
import datetime
import http.client
import json
import time
import types

import requests

from conftest import SANITIZED

API = "/api/v1"
PASSWORD = "correct horse battery"
BOUNDARY = "parley-e2e-boundary-6b1f0c"
# A deadline for something that must happen: long enough that only a real
# failure reaches it on two busy cores, or under ASan (3-10x slower).
WAIT_TIMEOUT = 90 if SANITIZED else 30


def wait_until(predicate, timeout=None, what=None, interval=0.02):
    """Polls predicate() until it returns something true (a requests
    Response counts as true whatever its status), and returns that. Fails
    after `timeout` seconds (default WAIT_TIMEOUT) with a message that names
    `what`: a string, or a callable giving one (called on failure, so it may
    show the state that was seen)."""
    timeout = WAIT_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got or isinstance(got, requests.Response):
            return got
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError("not so after %ss: %s" % (timeout, text or predicate))
        time.sleep(interval)


def wait_past(boundary, margin=0.3):
    """Sleeps until the wall clock (time.time()) is past `boundary` plus
    `margin`: for the rules of the server that are time-based (expiries,
    throttle windows). Follow it with wait_until on the expected outcome."""
    left = boundary + margin - time.time()
    if left > 0:
        time.sleep(left)


def rfc3339(ts):
    """A time.time() value as the server writes times: RFC 3339 UTC with
    milliseconds ("2026-12-03T18:00:00.000Z")."""
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, address, **kw):
        self._source = (address, 0)
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = self._source
        super().init_poolmanager(*args, **kw)


def session_from(address):
    """A requests Session whose connections leave from `address`: on
    loopback "127.0.0.2" is another client address than "127.0.0.1" for a
    server bound to 127.0.0.1 (the limits and blocks by address)."""
    s = requests.Session()
    adapter = _SourceAddressAdapter(address)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token):
    """The claims of a JWT (unverified)."""
    return json.loads(b64url_decode(token.split(".")[1]))


def wait_expired(token, margin=0.3):
    """Sleeps until the clock is past the token's exp claim (the server
    refuses it from then on: now >= exp), plus `margin`."""
    wait_past(jwt_claims(token)["exp"], margin)


def read_until_closed(sock):
    """Everything the peer sends on `sock` until it closes the connection."""
    out = b""
    while True:
        piece = sock.recv(65536)
        if not piece:
            return out
        out += piece


def _tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the loopback TCP socket local_port ->
    remote_port, from /proc/net/tcp{,6}; None when there is none."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == local_port and int(remote, 16) == remote_port:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def wait_read_by_peer(sock, timeout=None):
    """Waits until the process at the other end of `sock` (a loopback TCP
    connection) has read everything sent on it: nothing left in this end's
    send queue nor in the other end's receive queue."""
    mine, theirs = sock.getsockname()[1], sock.getpeername()[1]

    def drained():
        out, back = _tcp_queues(mine, theirs), _tcp_queues(theirs, mine)
        return out is not None and back is not None and out[0] == 0 and back[1] == 0

    wait_until(drained, timeout, what=lambda: "the peer reads all that was sent (queues %s, %s)"
               % (_tcp_queues(mine, theirs), _tcp_queues(theirs, mine)))


class Client:
    """One account: its profile and a keep-alive session carrying its token.
    `pair` is the token pair the server answered (register, login)."""

    def __init__(self, server, pair):
        self.server = server
        self.pair = pair
        self.user = pair["user"]
        self.id = pair["user"]["id"]
        self.username = pair["user"]["username"]
        self.token = pair["access_token"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + self.token

    def on(self, server):
        """The same account against another server process (after a restart),
        with a session of its own."""
        return type(self)(server, self.pair)

    def call(self, method, path, body=None, timeout=30, **kw):
        """One request to API + path; `body` is sent as JSON, `kw` goes to
        requests (json, data, files, headers, params...)."""
        if body is not None:
            kw["json"] = body
        return self.session.request(method, self.server.url(API + path), timeout=timeout, **kw)

    def get(self, path, headers=None, **params):
        return self.call("GET", path, params=params, headers=headers)

    def post(self, path, body=None):
        return self.call("POST", path, {} if body is None else body)

    def put(self, path, body):
        return self.call("PUT", path, body)

    def patch(self, path, body):
        return self.call("PATCH", path, body)

    def delete(self, path):
        return self.call("DELETE", path)

    def ok(self, method, path, body=None, status=200):
        """The JSON of an answer that must have `status` (None when empty)."""
        r = self.call(method, path, body)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def upload(self, name, data, ctype="application/octet-stream", path="/files", **fields):
        return self.call("POST", path, files={"file": (name, data, ctype)}, data=fields)

    def uploaded(self, name, data, ctype="application/octet-stream", **fields):
        r = self.upload(name, data, ctype, **fields)
        assert r.status_code == 201, r.text
        return r.json()

    def download(self, f, **headers):
        return self.get("/files/%s/download" % f["id"], headers=headers)

    def raw_upload(self, body, content_type="multipart/form-data; boundary=" + BOUNDARY,
                   path="/files"):
        """POSTs a hand-made body through http.client: (status, headers, json)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request("POST", API + path, body=body,
                         headers={"Content-Type": content_type,
                                  "Authorization": "Bearer " + self.token})
            resp = conn.getresponse()
            payload = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, headers, payload
        finally:
            conn.close()


def multipart(parts):
    """A multipart/form-data body (BOUNDARY) from (name, filename or None,
    bytes) parts; names and filenames are bytes and go on the wire exactly as
    given."""
    out = b""
    for name, filename, data in parts:
        out += b"--" + BOUNDARY.encode() + b"\r\n"
        out += b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            out += b'; filename="' + filename + b'"'
            out += b"\r\nContent-Type: image/png"
        out += b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY.encode() + b"--\r\n"


def registration(server, username, email=None, password=PASSWORD, timeout=30, **extra):
    """POST /auth/register, answered as it is (for the tests of refusals).
    The email defaults to <username lower-cased>@example.com; `extra` fields
    are added to the body (and replace the ones above)."""
    body = {"username": username,
            "email": "%s@example.com" % username.lower() if email is None else email,
            "password": password}
    body.update(extra)
    return requests.post(server.url(API + "/auth/register"), json=body, timeout=timeout)


def register(server, username, email=None, password=PASSWORD, timeout=30, client=Client,
             **extra):
    """A new account that must be answered 201, as a `client` (a Client or a
    subclass); its token pair is .pair."""
    r = registration(server, username, email, password, timeout, **extra)
    assert r.status_code == 201, r.text
    return client(server, r.json())


def accounts(server, *names, client=Client):
    """A namespace of registered clients, one attribute per name."""
    users = types.SimpleNamespace()
    for name in names:
        setattr(users, name, register(server, name, client=client))
    return users
