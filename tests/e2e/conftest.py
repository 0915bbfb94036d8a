"""Fixtures for the end-to-end tests: the real bin/parley on a free loopback
port with a temporary data directory, driven over real HTTP.

PARLEY_BIN names the binary (default bin/parley). With PARLEY_SANITIZED=1 (the
ASan/UBSan build) start-up is given more time, and a sanitizer report in the
server's log fails the test. Every server is stopped with SIGTERM after its
test and must exit 0; when a test fails its server log is printed.
"""
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("PARLEY_BIN", "bin/parley"))
SANITIZED = os.environ.get("PARLEY_SANITIZED") == "1"
START_TIMEOUT = 30 if SANITIZED else 10
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The rate limits are off in a test's server unless it asks for them
# (rate_limits=True): the defaults (auth: 10 a minute per address) would
# refuse the many registrations every test makes from 127.0.0.1.
# `--rate-limit 0` turns off every category not given its own value, so a
# test may still pass e.g. --rate-limit-search 3 and get only that one.
LIMITS_OFF = ("--rate-limit", "0")


class Server:
    """One parley process. `args` are extra flags of `parley serve`; with
    rate_limits=False (the default) they come after LIMITS_OFF. `wrapper` is
    a command line the binary runs under (strace ... --), () for none.
    `tls` (a CertAuthority's server pair, test_tls.py: .cert, .key, .ca paths) starts
    it with --tls-cert/--tls-key; base and url() are then https and the
    health wait checks the certificate against the pair's CA."""

    def __init__(self, data_dir, args=(), env=None, port=None, rate_limits=False, wrapper=(),
                 tls=None):
        self.data_dir = str(data_dir)
        self.port = port or free_port()
        self.args = ([] if rate_limits else list(LIMITS_OFF)) + list(args)
        self.env = dict(os.environ, **(env or {}))
        self.log_path = os.path.join(os.path.dirname(self.data_dir),
                                     "server-%d.log" % self.port)
        self.proc = None
        self.base = "http://127.0.0.1:%d" % self.port
        self.wrapper = list(wrapper)
        self.verify = True
        if tls is not None:
            self.args += ["--tls-cert", tls.cert, "--tls-key", tls.key]
            self.base = "https://127.0.0.1:%d" % self.port
            self.verify = tls.ca

    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.wrapper + [BIN, "serve", "--bind", "127.0.0.1", "--port", str(self.port),
             "--data-dir", self.data_dir] + self.args,
            stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=None):
        timeout = timeout or START_TIMEOUT
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s during start-up:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                if requests.get(self.url("/api/health"), timeout=1,
                                verify=self.verify).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("server not healthy after %ss:\n%s" % (timeout, self.log()))

    def url(self, path):
        return self.base + path

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def pid(self):
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the server and returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout or (60 if SANITIZED else 20))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop after %s:\n%s" % (sig, self.log()))
        self.log_file.close()
        return code

    def sanitizer_report(self):
        text = self.log()
        return any(m in text for m in SANITIZER_MARKS)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def start_server(tmp_path, request):
    """Factory: start_server(args=(), env=None, data_dir=None,
    rate_limits=False, wrapper=(), tls=None) -> running Server. Each is stopped after the
    test and must exit 0 without sanitizer reports."""
    servers = []

    def start(args=(), env=None, data_dir=None, wait=True, port=None, rate_limits=False,
              wrapper=(), tls=None):
        d = data_dir or tmp_path / ("data%d" % len(servers))
        s = Server(d, args=args, env=env, port=port, rate_limits=rate_limits, wrapper=wrapper,
                   tls=tls)
        servers.append(s)
        return s.start(wait=wait)

    yield start

    problems = []
    for s in servers:
        already_exited = s.proc.poll() is not None
        code = s.stop()
        if not already_exited and code != 0:
            problems.append("server on port %d exited %s after SIGTERM" % (s.port, code))
        if s.sanitizer_report():
            problems.append("sanitizer report from server on port %d" % s.port)
    failed = getattr(request.node, "rep_call", None)
    if problems or (failed is not None and failed.failed):
        for s in servers:
            print("---- server log (port %d) ----\n%s" % (s.port, s.log()))
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def server(start_server):
    """One running server with default settings."""
    return start_server()


def module_server(tmp_path_factory, name, args=("--rate-limit", "0")):
    """Body of a module-scoped server fixture (`yield from module_server(...)`):
    one server for a whole test module, which must exit 0 without sanitizer
    reports when the module is done."""
    s = Server(tmp_path_factory.mktemp(name) / "data", args=list(args))
    s.start()
    yield s
    code = s.stop()
    assert code == 0 and not s.sanitizer_report(), s.log()


def raw_http(port, data, timeout=5.0, read_until_close=True):
    """Sends raw bytes and returns what the server answered (until it closes
    the connection or the timeout passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return out
        return out


def parse_raw_response(raw):
    """(status, headers dict lower-cased, body bytes) of one raw answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def assert_error(resp_or_tuple, status, code):
    """Checks an error answer against the contract of docs/api.md."""
    if isinstance(resp_or_tuple, tuple):
        st, headers, body = resp_or_tuple
        import json
        payload = json.loads(body)
        ctype = headers.get("content-type", "")
        rid = headers.get("x-request-id")
    else:
        st = resp_or_tuple.status_code
        payload = resp_or_tuple.json()
        ctype = resp_or_tuple.headers.get("Content-Type", "")
        rid = resp_or_tuple.headers.get("X-Request-Id")
    assert st == status, payload
    assert ctype.startswith("application/json"), ctype
    err = payload["error"]
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    assert rid and err["request_id"] == rid
    assert len(err["timestamp"]) == 24 and err["timestamp"].endswith("Z")
    return err
