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

from conftest import BIN, SANITIZED, parse_raw_response
from client import WAIT_TIMEOUT


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


def test_sigterm_lets_a_request_in_flight_finish(start_server):
    server = start_server()
    body = b'{"finish":"me"}'
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"PUT /api/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
    time.sleep(0.5 if not SANITIZED else 1.5)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.proc.poll() is None, "server exited with a request in flight"
    # It no longer accepts new connections.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
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
    assert server.proc.wait(20) == 0


def test_idle_keepalive_connections_do_not_delay_shutdown(start_server):
    server = start_server()
    sessions = [requests.Session() for _ in range(5)]
    for s in sessions:
        assert s.get(server.url("/api/health")).status_code == 200
    started = time.time()
    assert server.stop() == 0
    assert time.time() - started < (10 if SANITIZED else 3)


@pytest.mark.parametrize("args,env,setting", [
    (["--threads", "64", "--max-connections", "32"], {}, "max_connections"),
    (["--port", "99999"], {}, "port"),
    (["--threads", "many"], {}, "threads"),
    (["--log-level", "chatty"], {}, "log_level"),
    (["--bind", "not-an-ip"], {}, "bind"),
    (["--frobnicate"], {}, "unknown argument"),
    ([], {"PARLEY_THREADS": "0"}, "PARLEY_THREADS"),
    ([], {"PARLEY_MAX_BODY_BYTES": "1k"}, "PARLEY_MAX_BODY_BYTES"),
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
