"""Uploads in flight while the server is SIGKILLed: after a restart no
temporary file remains, every file answered 201 downloads byte-identical,
and `parley files check` passes on the stopped server's data."""
import hashlib
import os
import random
import subprocess
import threading
import time

import requests

from conftest import BIN
from client import register


def test_uploads_survive_sigkill(start_server, tmp_path):
    d = tmp_path / "d"
    server = start_server(data_dir=d)
    token = register(server, "uploader", email="up@example.com", password="password up").token
    auth = {"Authorization": "Bearer " + token}
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()
    seed = int(os.environ.get("PARLEY_TEST_SEED", time.time()))
    print("seed", seed)

    def uploader(n):
        rnd = random.Random(seed * 10 + n)
        i = 0
        while not stop.is_set():
            data = rnd.randbytes(rnd.randint(1, 2_000_000)) + b"%d-%d" % (n, i)
            i += 1
            try:
                r = requests.post(server.url("/api/v1/files"), headers=auth, timeout=60,
                                  files={"file": ("f%d.bin" % i, data)})
            except requests.RequestException:
                return
            if r.status_code == 201:
                with lock:
                    acked[r.json()["id"]] = hashlib.sha256(data).hexdigest()

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(random.Random(seed).uniform(1.0, 2.5))
    server.proc.kill()
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert acked, "no upload was answered before the kill"

    again = start_server(data_dir=d)
    tmp_dir = d / "files" / "tmp"
    assert not os.listdir(tmp_dir), os.listdir(tmp_dir)
    token = requests.post(again.url("/api/v1/auth/login"),
                          json={"username": "uploader", "password": "password up"}).json()["access_token"]
    auth = {"Authorization": "Bearer " + token}
    for file_id, sha in acked.items():
        r = requests.get(again.url("/api/v1/files/%s/download" % file_id), headers=auth)
        assert r.status_code == 200, (file_id, r.text[:200])
        assert hashlib.sha256(r.content).hexdigest() == sha
    assert again.stop() == 0
    check = subprocess.run([BIN, "files", "check", str(d)], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok" in check.stdout


def test_files_check_finds_damage(start_server, tmp_path):
    d = tmp_path / "d"
    server = start_server(data_dir=d)
    token = requests.post(server.url("/api/v1/auth/register"),
                          json={"username": "up2", "email": "up2@example.com",
                                "password": "password up"}).json()["access_token"]
    r = requests.post(server.url("/api/v1/files"), headers={"Authorization": "Bearer " + token},
                      files={"file": ("a.txt", b"some text for the check\n")})
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    # Refuses while the server runs.
    check = subprocess.run([BIN, "files", "check", str(d)], capture_output=True, text=True)
    assert check.returncode == 1 and "in use" in check.stderr
    assert server.stop() == 0
    blob = d / "files" / sha[:2] / sha[2:4] / sha
    blob.write_bytes(b"changed")
    check = subprocess.run([BIN, "files", "check", str(d)], capture_output=True, text=True)
    assert check.returncode == 1 and "hash mismatch" in check.stdout, check.stdout
    blob.unlink()
    check = subprocess.run([BIN, "files", "check", str(d)], capture_output=True, text=True)
    assert check.returncode == 1 and "missing: blob " + sha in check.stdout, check.stdout
    assert subprocess.run([BIN, "files", "frobnicate"], capture_output=True).returncode == 2
