"""Start-up and shutdown: the data-directory lock, SIGTERM/SIGINT with a
request in flight, configuration errors, the command line."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import BIN, parse_raw_response
from client import WAIT_TIMEOUT, wait_until


def run(args, env=None, timeout=20):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_second_server_on_the_same_data_dir_refuses(start_server, tmp_path):
    first = start_server(data_dir=tmp_path / "shared")
    second = run(["serve", "--bind", "127.0.0.1", "--port", "1", "--data-dir",
                  str(tmp_path / "shared")])
    assert second.returncode == 1
    assert "in use by another parley process (pid %d)" % first.pid() in second.stderr
    assert requests.get(first.url("/api/health")).status_code == 200


def test_lock_is_released_after_stop(start_server, tmp_path):
    first = start_server(data_dir=tmp_path / "d")
    assert first.stop() == 0
    again = start_server(data_dir=tmp_path / "d")
    assert requests.get(again.url("/api/health")).status_code == 200


def test_lock_is_released_after_sigkill(start_server, tmp_path):
    first = start_server(data_dir=tmp_path / "d")
    first.proc.kill()
    first.proc.wait()
    again = start_server(data_dir=tmp_path / "d")
    assert requests.get(again.url("/api/health")).status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(start_server, sig):
    server = start_server()
    assert server.stop(sig) == 0
    assert "stopped" in server.log()


def _in_flight(server):
    """Requests the server has started and not finished, this one excluded."""
    return requests.get(server.url("/api/health"), timeout=10).json()["requests_in_flight"] - 1


def _refuses_connections(server):
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        return False
    except OSError:
        return True


def test_sigterm_waits_for_a_client_still_sending(start_server):
    """A client that is still connected is waited for, however slowly it
    sends: the stop begins, the rest of the body comes, the answer goes out."""
    server = start_server(args=["--drain-timeout", "600"])
    body = b'{"finish":"me"}'
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall(b"PUT /api/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
    wait_until(lambda: _in_flight(server) == 1, what="the server to have the request's headers")
    server.proc.send_signal(signal.SIGTERM)
    # The listener closes as the drain begins; the request is still held.
    wait_until(lambda: _refuses_connections(server), what="the listener to close")
    assert server.proc.poll() is None, "server exited with a request in flight"
    s.sendall(body[5:])
    raw = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        raw += chunk
    s.close()
    status, headers, payload = parse_raw_response(raw)
    assert status == 405
    assert json.loads(payload)["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert headers.get("connection", "").lower() == "close"
    assert server.proc.wait(60) == 0
    assert "still in flight" not in server.log()


def test_sigterm_does_not_wait_for_a_client_that_left(start_server):
    """A client that sent half a body and closed its end can never finish:
    the stop does not wait for it (with a drain timeout far longer than the
    deadline of this test)."""
    server = start_server(args=["--drain-timeout", "3600"])
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall(b"PUT /api/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"half\":")
    wait_until(lambda: _in_flight(server) == 1, what="the server to have the request's headers")
    s.shutdown(socket.SHUT_WR)
    assert server.stop(timeout=120) == 0
    s.close()


def test_drain_timeout_bounds_the_wait_for_a_stalled_client(start_server):
    """A connected client that sends nothing more holds the stop only until
    drain_timeout."""
    server = start_server(args=["--drain-timeout", "1"])
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall(b"PUT /api/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"stalled\":")
    wait_until(lambda: _in_flight(server) == 1, what="the server to have the request's headers")
    try:
        assert server.stop(timeout=120) == 0
        assert "stopping with 1 requests still in flight" in server.log()
    finally:
        s.close()


def test_idle_keepalive_connections_do_not_delay_shutdown(start_server):
    """Idle keep-alive connections are not requests in flight: with a drain
    timeout far beyond the stop's deadline, the stop still happens."""
    server = start_server(args=["--drain-timeout", "3600"])
    sessions = [requests.Session() for _ in range(5)]
    for s in sessions:
        assert s.get(server.url("/api/health")).status_code == 200
    assert server.stop(timeout=120) == 0
    assert "still in flight" not in server.log()


@pytest.mark.parametrize("args,env,setting", [
    (["--threads", "64", "--max-connections", "32"], {}, "max_connections"),
    (["--port", "99999"], {}, "port"),
    (["--threads", "many"], {}, "threads"),
    (["--log-level", "chatty"], {}, "log_level"),
    (["--bind", "not-an-ip"], {}, "bind"),
    (["--frobnicate"], {}, "unknown argument"),
    ([], {"PARLEY_THREADS": "0"}, "PARLEY_THREADS"),
    ([], {"PARLEY_MAX_BODY_BYTES": "1k"}, "PARLEY_MAX_BODY_BYTES"),
    (["--rate-limit-search", "-1"], {}, "rate_limit_search"),
    (["--rate-limit-auth=ten"], {}, "rate_limit_auth"),
    ([], {"PARLEY_RATE_LIMIT_ADMIN": "1000001"}, "PARLEY_RATE_LIMIT_ADMIN"),
    ([], {"PARLEY_RATE_LIMIT_MESSAGES": ""}, "PARLEY_RATE_LIMIT_MESSAGES"),
])
def test_bad_settings_stop_start_up_with_one_line(args, env, setting, tmp_path):
    r = run(["serve", "--data-dir", str(tmp_path / "d")] + args, env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], r.stderr
    assert not (tmp_path / "d").exists()


def test_bad_config_file_stops_start_up(tmp_path):
    cfg = tmp_path / "parley.json"
    cfg.write_text('{"port": "seven"}')
    r = run(["serve", "--config", str(cfg)])
    assert r.returncode == 2 and "port" in r.stderr and str(cfg) in r.stderr
    cfg.write_text('{"prot": 7}')
    r = run(["serve"], env={"PARLEY_CONFIG": str(cfg)})
    assert r.returncode == 2 and "unknown setting 'prot'" in r.stderr


def test_config_file_and_environment_are_used(start_server, tmp_path):
    cfg = tmp_path / "parley.json"
    cfg.write_text(json.dumps({"max_body_bytes": 2048, "log_level": "warning"}))
    server = start_server(env={"PARLEY_CONFIG": str(cfg), "PARLEY_MAX_BODY_BYTES": "3000"})
    r = requests.post(server.url("/api/health"), data=b"x" * 3001,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["details"]["max_bytes"] == 3000
    # log_level warning from the file: no access log lines.
    assert " INFO http " not in server.log()


def test_port_in_use_fails_clearly(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        r = run(["serve", "--bind", "127.0.0.1", "--port", str(port), "--data-dir",
                 str(tmp_path / "d")])
    assert r.returncode == 1
    assert "cannot listen on 127.0.0.1 port %d" % port in r.stderr


def test_command_line():
    r = run(["version"])
    assert r.returncode == 0 and r.stdout.startswith("parley ")
    r = run(["--help"])
    assert r.returncode == 0
    for name in ("serve", "--port", "PARLEY_PORT", "--data-dir", "--threads", "--config"):
        assert name in r.stdout
    r = run(["frobnicate"])
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_the_readme_names_only_settings_and_commands_the_binary_has():
    """README.md's configuration table and command list cannot rot: every
    flag, environment variable and command it names is in `parley --help`."""
    import re
    from conftest import ROOT
    help_text = run(["--help"]).stdout
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    table = readme[readme.index("## Configuration"):readme.index("## Commands")]
    flags = set(re.findall(r"`(--[a-z0-9-]+)`", table))
    envs = set(re.findall(r"`(PARLEY_[A-Z0-9_]+)`", table)) - {"PARLEY_JWT_SECRET"}
    assert len(flags) > 40 and len(envs) > 40
    missing = sorted(x for x in flags | envs if x not in help_text)
    assert not missing, "README.md names what parley --help does not: %s" % missing
    commands = readme[readme.index("## Commands"):readme.index("## Make targets")]
    names = set(re.findall(r"^parley ([a-z]+(?: [a-z]+)?)", commands, flags=re.M))
    assert {"serve", "wal inspect", "backup verify", "restore", "keygen", "rekey"} <= names
    missing = sorted(n for n in names if "parley " + n not in help_text)
    assert not missing, "README.md lists commands parley --help does not: %s" % missing
    r = run([])
    assert r.returncode == 2


def test_idle_connections_are_closed_after_the_idle_timeout(start_server):
    server = start_server(["--idle-timeout", "1"])
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    # The server closes the idle keep-alive connection: recv returns b"".
    # The deadline is generous but below the default idle timeout (60 s), so
    # only the 1 s asked for can pass it.
    s.settimeout(30)
    assert s.recv(65536) == b""
    s.close()


def test_connections_over_the_limit_wait_for_a_free_slot(start_server):
    # libmicrohttpd divides the limit evenly among the pool's threads and each
    # thread accepts on its own, so the limit is exact with one thread.
    server = start_server(["--max-connections", "16", "--threads", "1"])
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(16)]
    for s in held:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    extra = socket.create_connection(("127.0.0.1", server.port), timeout=1)
    extra.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # At the limit the server does not accept the 17th connection: no answer.
    with pytest.raises(socket.timeout):
        extra.recv(65536)
    for s in held:
        s.close()
    # A slot is free: the waiting connection is served.
    extra.settimeout(WAIT_TIMEOUT)
    assert extra.recv(65536).startswith(b"HTTP/1.1 200")
    extra.close()
