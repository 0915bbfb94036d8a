"""Clients for the real-time endpoints, shared by the real-time e2e tests and
the stress script: a WebSocket wrapper (python3-websocket) that waits for
frames by predicate, an event-stream reader, and a strict RFC 6455 frame
parser for raw sockets (to prove a slow reader never gets a torn frame)."""
import json
import socket
import struct
import time

import requests
import websocket

API = "/api/v1"
# How long a wait for what must come may take before it fails: generous, for
# two busy cores and the sanitized build.
WAIT = 30


def ws_url(server, token=None, since=None):
    scheme = "wss" if server.base.startswith("https:") else "ws"  # a TLS server (test_tls.py)
    url = "%s://127.0.0.1:%d%s/ws" % (scheme, server.port, API)
    query = []
    if token is not None:
        query.append("token=" + token)
    if since is not None:
        query.append("since=%s" % since)
    return url + ("?" + "&".join(query) if query else "")


class Live:
    """One WebSocket. Frames that arrive while waiting for another are kept."""

    def __init__(self, server, token=None, since=None, auth_frame=None, timeout=WAIT,
                 cookie=None, origin=None):
        """`cookie` (a Cookie header's value) authenticates the handshake as a
        browser's session does; `origin` is its Origin header."""
        kw = {}
        if cookie is not None:
            kw["cookie"] = cookie
        if origin is not None:
            kw["origin"] = origin
        ca = getattr(server, "verify", True)
        if isinstance(ca, str):
            kw["sslopt"] = {"ca_certs": ca}
        self.ws = websocket.create_connection(ws_url(server, token, since), timeout=timeout, **kw)
        self.kept = []
        self.ready = None
        if auth_frame is not None:
            self.send({"type": "auth", "token": auth_frame})
        if token is not None or auth_frame is not None or cookie is not None:
            self.ready = self.wait(lambda f: f["type"] == "ready")

    def send(self, frame):
        self.ws.send(json.dumps(frame))

    def _next(self, deadline):
        """The next text frame. Control frames are read here too (the server's
        pings are answered by the library), so the deadline holds even while
        pings keep arriving."""
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError
            self.ws.settimeout(left)
            try:
                op, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                raise TimeoutError
            if op == websocket.ABNF.OPCODE_TEXT:
                return json.loads(data)
            if op == websocket.ABNF.OPCODE_CLOSE:
                raise AssertionError("the server closed the connection: %r" % data)

    def wait(self, pred, timeout=WAIT):
        """The first frame (kept or new) for which pred is true."""
        for i, f in enumerate(self.kept):
            if pred(f):
                return self.kept.pop(i)
        deadline = time.time() + timeout
        while True:
            try:
                f = self._next(deadline)
            except TimeoutError:
                raise AssertionError("no matching frame within %ss; got %r" % (timeout, self.kept))
            if pred(f):
                return f
            self.kept.append(f)

    def wait_type(self, type_, timeout=WAIT, **data):
        return self.wait(lambda f: f["type"] == type_ and
                         all(f["data"].get(k) == v for k, v in data.items()), timeout)

    def drain(self, seconds):
        """Every frame that arrives within `seconds` (and those kept)."""
        deadline = time.time() + seconds
        out, self.kept = self.kept, []
        while True:
            try:
                out.append(self._next(deadline))
            except TimeoutError:
                return out

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def closed_with(self, timeout=WAIT):
        """Reads until the server closes; returns (code, reason)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                op, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketConnectionClosedException:
                return (None, "")
            except websocket.WebSocketTimeoutException:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return (None, "")
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                return (code, data[2:].decode("utf-8", "replace"))
        raise AssertionError("the server did not close the connection")


def events(frames, type_=None):
    return [f for f in frames if f.get("seq") is not None and
            (type_ is None or f["type"] == type_)]


class Stream:
    """An event stream (GET /api/v1/events): yields (event, id, data) tuples."""

    def __init__(self, server, token, last_event_id=None, timeout=WAIT, headers=None):
        """`token` None: no Authorization (`headers` carry the credentials,
        e.g. a session Cookie)."""
        headers = dict(headers or {}, Accept="text/event-stream")
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.r = requests.get(server.url(API + "/events"), headers=headers, stream=True,
                              timeout=timeout)
        self.lines = self.r.iter_lines(decode_unicode=True)

    def next_event(self):
        event, ident, data = None, None, None
        for line in self.lines:
            if line == "":
                if event is not None or data is not None:
                    return event, ident, json.loads(data) if data else None
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "id":
                ident = int(value)
            elif field == "data":
                data = value
        raise AssertionError("the stream ended")

    def wait(self, event, timeout=WAIT, **fields):
        deadline = time.time() + timeout
        while time.time() < deadline:
            e, i, d = self.next_event()
            if e == event and all((d or {}).get(k) == v for k, v in fields.items()):
                return i, d
        raise AssertionError("no %s event within %ss" % (event, timeout))

    def close(self):
        self.r.close()


# ---- raw sockets ----------------------------------------------------------

def raw_handshake(port, token, rcvbuf=None):
    """A WebSocket opened by hand (for clients that misbehave on purpose)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET %s/ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (API, token)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head  # RFC 6455's example key
    return s


def client_frame(opcode, payload, fin=True):
    """A masked client frame."""
    mask = b"\x01\x02\x03\x04"
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_server_frames(data):
    """Splits unmasked server frames. Returns (frames, rest): frames as
    (opcode, payload); rest is an incomplete frame's bytes (b"" when the data
    ended on a frame boundary)."""
    frames, i = [], 0
    while i < len(data):
        if len(data) - i < 2:
            break
        b0, b1 = data[i], data[i + 1]
        assert b1 & 0x80 == 0, "a server frame must not be masked"
        n, j = b1 & 0x7F, i + 2
        if n == 126:
            if len(data) - j < 2:
                break
            n, j = struct.unpack("!H", data[j:j + 2])[0], j + 2
        elif n == 127:
            if len(data) - j < 8:
                break
            n, j = struct.unpack("!Q", data[j:j + 8])[0], j + 8
        if len(data) - j < n:
            break
        assert b0 & 0x80, "the server fragments nothing"
        frames.append((b0 & 0x0F, data[j:j + n]))
        i = j + n
    return frames, data[i:]
