"""P14 (scripts/bench/suite.py --only search-fts): Parley's message search
against SQLite FTS5 over the same corpus and the same 200 queries
(scripts/bench/search_corpus.py).

FTS5 is Debian's libsqlite3 through python's sqlite3 module (checked to
have FTS5 compiled in), in this process: a table `t USING fts5(content)`
loaded in one transaction and optimized, queried with
`SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 20`, a page
cache big enough to hold the whole database (so FTS5 reads no page from
the kernel twice), one warm-up pass. Per query: time.process_time() and
the wall time around execute + fetchall.

Parley is loaded through its public API: POST /api/v1/batch of 50 posts
as their sender, a few connections at once, the server at --fsync none;
then restarted (recovery, then the index built by its thread, whose log
line gives the index's own accounting of its bytes) and queried with GET
/api/v1/search/messages?q=...&limit=20 by a member of every channel from
one kept-alive connection. Per query: the server's CPU time (the sum of
its threads' run time in /proc/<pid>/task/*/schedstat, nanoseconds, which
the clock ticks of /proc/<pid>/stat are too coarse for) over the
repetitions, and the wall time of the request.

Each query runs `reps` times after the warm-up; a query's figure is the
mean CPU time and the median wall time of its repetitions.
"""
import http.client
import json
import os
import re
import sqlite3
import statistics
import threading
import time
import urllib.parse

import search_corpus

FTS5_SQL = "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 20"
BATCH = 50


# ---- FTS5 ---------------------------------------------------------------------

def fts5_load(directory, corpus):
    """Two databases of the corpus: the FTS5 table and, for the size
    beside it, a plain table of the same texts. Returns (fts path,
    fts bytes, plain bytes)."""
    fts, plain = os.path.join(directory, "fts5.db"), os.path.join(directory, "plain.db")
    for path, ddl, extra in ((fts, "CREATE VIRTUAL TABLE t USING fts5(content)",
                              "INSERT INTO t(t) VALUES ('optimize')"),
                             (plain, "CREATE TABLE t(content TEXT)", None)):
        if os.path.exists(path):
            os.unlink(path)
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(ddl)
        with db:
            db.executemany("INSERT INTO t(rowid, content) VALUES (?, ?)",
                           ((i + 1, m[2]) for i, m in enumerate(corpus)))
        if extra:
            with db:
                db.execute(extra)
        db.execute("VACUUM")
        db.close()
    return fts, os.path.getsize(fts), os.path.getsize(plain)


def fts5_measure(path, queries, reps):
    """Per query: (mean process time, median wall time) in ms, and its
    full count of matches (untimed)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA cache_size=-%d" % (os.path.getsize(path) // 1024 * 2 + 65536))
    db.execute("PRAGMA mmap_size=0")
    for _, words in queries:  # warm-up: every page the queries read in the cache
        db.execute(FTS5_SQL, (search_corpus.fts5_text(words),)).fetchall()
    cpu, wall, counts = [], [], []
    for _, words in queries:
        text = search_corpus.fts5_text(words)
        c, w = [], []
        for _ in range(reps):
            p0, w0 = time.process_time(), time.perf_counter()
            db.execute(FTS5_SQL, (text,)).fetchall()
            w1, p1 = time.perf_counter(), time.process_time()
            c.append((p1 - p0) * 1e3)
            w.append((w1 - w0) * 1e3)
        cpu.append(statistics.mean(c))
        wall.append(statistics.median(w))
        counts.append(db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (text,)).fetchone()[0])
    db.close()
    return cpu, wall, counts


# ---- Parley -------------------------------------------------------------------

def process_cpu_ns(pid):
    """The run time of every thread of pid, in ns (schedstat's first field)."""
    total = 0
    tasks = "/proc/%d/task" % pid
    for tid in os.listdir(tasks):
        try:
            with open("%s/%s/schedstat" % (tasks, tid)) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total


class Conn:
    """One kept-alive connection to the server, JSON in and out."""

    def __init__(self, server, token=None):
        u = urllib.parse.urlsplit(server.base)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        self.token = token

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        self.c.request(method, path, body=None if body is None else json.dumps(body),
                       headers=headers)
        r = self.c.getresponse()
        data = r.read()
        return r.status, data

    def json(self, method, path, body=None, want=200):
        status, data = self.call(method, path, body)
        assert status == want, "%s %s: %d %s" % (method, path, status, data[:300])
        return json.loads(data) if data else None


def parley_load(server, corpus, connections=4):
    """The corpus posted through POST /api/v1/batch: SENDERS users (the
    first owns CHANNELS public channels, the others join them all), each
    batch 50 messages of one sender. Returns the first user's token."""
    tokens = []
    for i in range(search_corpus.SENDERS):
        name = "sender%02d" % i
        tokens.append(Conn(server).json("POST", "/api/v1/auth/register", {
            "username": name, "password": "correct horse battery",
            "email": name + "@example.com"}, want=201)["access_token"])
    owner = Conn(server, tokens[0])
    channels = [owner.json("POST", "/api/v1/channels", {"name": "search-%d" % i},
                           want=201)["id"] for i in range(search_corpus.CHANNELS)]
    for t in tokens[1:]:
        c = Conn(server, t)
        for ch in channels:
            c.call("POST", "/api/v1/channels/%s/join" % ch)
    batches = iter(range(0, len(corpus), BATCH))
    lock = threading.Lock()
    failed = []

    def poster():
        conns = {}
        while True:
            with lock:
                start = next(batches, None)
            if start is None:
                return
            part = corpus[start:start + BATCH]
            sender = part[0][1]
            conn = conns.setdefault(sender, Conn(server, tokens[sender]))
            ops = [{"method": "POST", "path": "/api/v1/channels/%s/messages" % channels[ch],
                    "body": {"content": text}} for ch, _, text in part]
            r = conn.json("POST", "/api/v1/batch", {"operations": ops})
            if r["failed"] or r["skipped"]:
                failed.append(r)
                return

    threads = [threading.Thread(target=poster) for _ in range(connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failed, "a batch failed: %s" % json.dumps(failed[0])[:500]
    return tokens[0]


def index_bytes(server):
    """(messages, bytes) of the last `search index built` log line."""
    m = re.findall(r"search index built in [\d.]+ ms \((\d+) messages, (\d+) bytes\)",
                   server.log())
    return (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)


def parley_measure(server, token, queries, reps):
    """Per query: (mean server CPU time, median wall time) in ms, and the
    answers' (total, truncated) of the last repetition."""
    conn = Conn(server, token)
    pid = server.pid()
    paths = ["/api/v1/search/messages?limit=20&q=" +
             urllib.parse.quote(search_corpus.parley_text(words)) for _, words in queries]
    for p in paths:  # warm-up, as for FTS5
        conn.json("GET", p)
    cpu, wall, answers = [], [], []
    for p in paths:
        w = []
        c0 = process_cpu_ns(pid)
        for _ in range(reps):
            w0 = time.perf_counter()
            status, data = conn.call("GET", p)
            w.append((time.perf_counter() - w0) * 1e3)
            assert status == 200, data[:300]
        cpu.append((process_cpu_ns(pid) - c0) / reps / 1e6)
        wall.append(statistics.median(w))
        r = json.loads(data)
        answers.append((r["total"], r["truncated"]))
    return cpu, wall, answers


def percentile(values, p):
    """The nearest-rank percentile p (0-100) of values."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


def write_lines(path, values):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for v in values:
            f.write("%.4f\n" % v)
