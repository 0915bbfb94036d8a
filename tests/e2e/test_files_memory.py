"""Uploads and downloads stream: a 200 MB file goes through the server
without the server holding it in memory (docs/api.md, "Files").

The file is made 1 MiB at a time and sent as a chunked multipart body from a
generator, and the download is hashed as it arrives, so the test itself
stays small too. The server's resident memory (VmRSS, and the peak VmHWM,
from /proc/<pid>/status) may grow by less than 16 MB. A first small upload
and download on the same connection (so the same server thread) comes
before the measure: it loads what every upload needs once per thread
(libmagic's database) and is not what this test is about. The peak is reset
(/proc/<pid>/clear_refs) just before the measure."""
import hashlib
import os
import time

from conftest import SANITIZED
from client import API, register

BOUNDARY = "parley-memory-boundary-41c9"
SIZE = 200 * 1000 * 1000
CHUNK = 1 << 20
LIMIT = 16 * 1024 * 1024


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def reset_peak(pid):
    """Makes VmHWM start again from the current RSS (Linux >= 4.0), so the
    peak measured is the upload's, not an earlier one (argon2 at register)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        pass


def chunk(i):
    """The i-th MiB of the file: cheap, and different everywhere."""
    seed = hashlib.sha256(b"parley-memory-%d" % i).digest()
    return (seed * (CHUNK // len(seed) + 1))[:CHUNK]


def multipart_stream(size, digest):
    """A multipart/form-data body for a file of `size` bytes, yielded in
    pieces; the file's bytes are fed to `digest` as they go."""
    yield ("--%s\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nbig one\r\n"
           "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n" % (BOUNDARY, BOUNDARY)).encode()
    sent, i = 0, 0
    while sent < size:
        piece = chunk(i)[:size - sent]
        digest.update(piece)
        yield piece
        sent += len(piece)
        i += 1
    yield ("\r\n--%s--\r\n" % BOUNDARY).encode()


def test_200_mb_upload_and_download_stream_through_little_memory(start_server):
    s = start_server(args=["--max-upload-bytes", "300000000", "--rate-limit", "0"])
    session = register(s, "alice").session  # one connection: one server thread
    pid = s.pid()

    warm = session.post(s.url(API + "/files"), files={"file": ("warm.txt", b"warm up\n")})
    assert warm.status_code == 201, warm.text
    assert session.get(s.url(warm.json()["url"])).content == b"warm up\n"
    reset_peak(pid)
    rss_before = status_kb(pid, "VmRSS")
    hwm_before = status_kb(pid, "VmHWM")

    sent = hashlib.sha256()
    started = time.time()
    r = session.post(s.url(API + "/files"), data=multipart_stream(SIZE, sent),
                     headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
                     timeout=600)
    upload_seconds = time.time() - started
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["size"] == SIZE and f["sha256"] == sent.hexdigest()
    assert f["description"] == "big one" and f["filename"] == "big.bin"
    assert f["content_type"] == "application/octet-stream"
    rss_upload = status_kb(pid, "VmRSS")
    hwm_upload = status_kb(pid, "VmHWM")

    got, size = hashlib.sha256(), 0
    with session.get(s.url(f["url"]), stream=True, timeout=600) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == SIZE
        for piece in r.iter_content(CHUNK):
            got.update(piece)
            size += len(piece)
    assert size == SIZE and got.hexdigest() == sent.hexdigest()
    rss_after = status_kb(pid, "VmRSS")
    hwm_after = status_kb(pid, "VmHWM")

    blob = os.path.join(s.data_dir, "files", f["sha256"][:2], f["sha256"][2:4], f["sha256"])
    assert os.path.getsize(blob) == SIZE
    assert os.listdir(os.path.join(s.data_dir, "files", "tmp")) == []

    report = ("RSS before %.1f MB, after upload %.1f MB, after download %.1f MB; "
              "peak before %.1f MB, after %.1f MB; upload %.1f s"
              % (rss_before / 1e6, rss_upload / 1e6, rss_after / 1e6, hwm_before / 1e6,
                 hwm_after / 1e6, upload_seconds))
    print(report)
    if SANITIZED:
        return  # ASan's shadow memory and quarantine make RSS meaningless
    assert rss_upload - rss_before < LIMIT, report
    assert rss_after - rss_before < LIMIT, report
    assert max(hwm_upload, hwm_after) - max(hwm_before, rss_before) < LIMIT, report
