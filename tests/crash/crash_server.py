#!/usr/bin/python3
"""kill -9 at scale (`make crash-server`): N rounds of SIGKILL at a random
moment under mixed load on one data directory, and after each restart a check
that every acknowledged write is there in its last acknowledged state.

Load per round: one thread per user (6) posts, edits and deletes its own
messages, adds and removes reactions on them, uploads and deletes files; one
more thread registers accounts. Every request that got a 2xx answer is
acknowledged; a request in flight at the kill (no answer) may or may not have
been applied. Each thread works on its own objects one request at a time, so
an object has one acknowledged state and at most one unacknowledged candidate:
after a restart its state must be one of the two (a delete acknowledged stays
deleted). Whatever a restart shows is durable from then on (the records were
in the log), so the model adopts it and the next round must show it again.

Checks after each restart (cumulative over all rounds):
  - messages (the channel's whole history, paged): every acknowledged message
    is there once, with the acknowledged (or the in-flight) content or
    deletion; nothing appears that nobody sent; no content twice;
  - reactions: an acknowledged add is there, an acknowledged removal is not;
  - files (GET /files/{id}): acknowledged uploads exist with their sha256,
    acknowledged deletes answer 404; this round's uploads are downloaded;
  - accounts: every acknowledged registration is a profile.
Ends with "crash-server: R rounds, W acknowledged writes, C checks, L lost"
and exits 1 if anything is lost or wrong. PARLEY_CRASH_SEED replays a run.

    tests/crash/crash_server.py [rounds]   (PARLEY_BIN: the binary, default bin/parley)
"""
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("PARLEY_BIN", "bin/parley"))
SANITIZED = os.environ.get("PARLEY_SANITIZED") == "1"
API = "/api/v1"
PASSWORD = "correct horse battery"
USERS = 6
EMOJI = ("👍", "🎉", "❤️", "ok")
DELETED = object()  # the state of a deleted message or file
SERVER_ARGS = ["--rate-limit", "0", "--snapshot-every-records", "150",
               "--access-token-ttl", str(30 * 86400)]


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir, log_path):
        self.data_dir, self.log_path = data_dir, log_path
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [BIN, "serve", "--bind", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", self.data_dir] + SERVER_ARGS,
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + (120 if SANITIZED else 60)
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure("server exited %s during start-up (log %s)"
                              % (self.proc.returncode, self.log_path))
            try:
                if requests.get(self.base + "/api/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise Failure("server not healthy (log %s)" % self.log_path)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)


class Api:
    def __init__(self, server, token=None):
        self.server, self.token = server, token
        self.s = requests.Session()

    def call(self, method, path, timeout=20, **kw):
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        return self.s.request(method, self.server.base + API + path, headers=headers,
                              timeout=timeout, **kw)


class Model:
    """What must be true after a restart. Each entry: [state, candidate]
    where candidate is the state an unanswered request may have left (None:
    no request in flight)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = {}     # id -> [content | DELETED, candidate, owner index]
        self.unanswered_posts = {}  # content -> owner index
        self.reactions = {}    # (mid, emoji, uid) -> [present, candidate]
        self.files = {}        # id -> [sha256 | DELETED, candidate, owner index]
        self.new_files = set()
        self.accounts = set()  # usernames acknowledged
        self.acked = 0
        self.checks = 0


def ack(model):
    with model.lock:
        model.acked += 1


def acked_delete(api, model, table, key, path):
    """DELETE path; table[key] may be deleted from the request on, must be
    once it is acknowledged."""
    with model.lock:
        table[key][1] = DELETED
    r = api.call("DELETE", path)
    if r.status_code not in (200, 204):
        raise Failure("DELETE %s: %s %s" % (path, r.status_code, r.text))
    with model.lock:
        table[key][0:2] = [DELETED, None]
    ack(model)


def worker(idx, api, uid, channel, model, rng, stop, round_no, errors):
    """One user's load until the server dies (the first failed request)."""
    i = 0
    while not stop.is_set():
        i += 1
        with model.lock:
            mine = [m for m, e in model.messages.items() if e[2] == idx and e[0] is not DELETED]
            my_files = [f for f, e in model.files.items() if e[2] == idx and e[0] is not DELETED]
        op = rng.random()
        try:
            if op < 0.35 or not mine:
                content = "r%d-u%d-%d" % (round_no, idx, i)
                with model.lock:
                    model.unanswered_posts[content] = idx
                r = api.call("POST", "/channels/%s/messages" % channel,
                             json={"content": content, "idempotency_key": content})
                if r.status_code != 201:
                    raise Failure("post: %s %s" % (r.status_code, r.text))
                m = r.json()
                with model.lock:
                    del model.unanswered_posts[content]
                    model.messages[m["id"]] = [content, None, idx]
                ack(model)
            elif op < 0.55:
                mid = rng.choice(mine)
                content = "r%d-u%d-%d-edit" % (round_no, idx, i)
                with model.lock:
                    model.messages[mid][1] = content
                r = api.call("PUT", "/messages/%s" % mid, json={"content": content})
                if r.status_code != 200:
                    raise Failure("edit: %s %s" % (r.status_code, r.text))
                with model.lock:
                    model.messages[mid][0:2] = [content, None]
                ack(model)
            elif op < 0.65:
                mid = rng.choice(mine)
                acked_delete(api, model, model.messages, mid, "/messages/%s" % mid)
                with model.lock:
                    for key, e in model.reactions.items():
                        if key[0] == mid:
                            e[0:2] = [False, None]   # a deleted message shows no reactions
            elif op < 0.85:
                mid = rng.choice(mine)
                emoji = rng.choice(EMOJI)
                key = (mid, emoji, uid)
                with model.lock:
                    entry = model.reactions.setdefault(key, [False, None])
                    add = not entry[0]
                    entry[1] = add
                if add:
                    r = api.call("POST", "/messages/%s/reactions" % mid, json={"emoji": emoji})
                else:
                    r = api.call("DELETE", "/messages/%s/reactions/%s"
                                 % (mid, urllib.parse.quote(emoji, safe="")))
                if not 200 <= r.status_code < 300:
                    raise Failure("reaction: %s %s" % (r.status_code, r.text))
                with model.lock:
                    entry[0:2] = [add, None]
                ack(model)
            elif op < 0.95 or not my_files:
                data = ("file r%d u%d %d %s\n" % (round_no, idx, i, rng.random())).encode() * 20
                r = api.call("POST", "/files", files={"file": ("f%d.txt" % i, data, "text/plain")},
                             data={"channel_id": channel})
                if r.status_code != 201:
                    raise Failure("upload: %s %s" % (r.status_code, r.text))
                f = r.json()
                if f["sha256"] != hashlib.sha256(data).hexdigest():
                    raise Failure("upload answered a wrong sha256: %s" % f)
                with model.lock:
                    model.files[f["id"]] = [f["sha256"], None, idx]
                    model.new_files.add(f["id"])
                ack(model)
            else:
                fid = rng.choice(my_files)
                acked_delete(api, model, model.files, fid, "/files/%s" % fid)
        except requests.RequestException:
            return  # the server is gone: this request is in flight
        except Failure as e:
            if not stop.is_set():
                errors.append(str(e))
            return


def registrar(api, model, round_no, stop, errors):
    i = 0
    while not stop.is_set():
        i += 1
        name = "reg%d_%d" % (round_no, i)
        try:
            r = api.call("POST", "/auth/register",
                         json={"username": name, "email": name + "@example.org",
                               "password": PASSWORD})
        except requests.RequestException:
            return
        if r.status_code != 201:
            if not stop.is_set():
                errors.append("register: %s %s" % (r.status_code, r.text))
            return
        with model.lock:
            model.accounts.add(name)
        ack(model)


def history(api, channel):
    out = []
    r = api.call("GET", "/channels/%s/messages?limit=100" % channel)
    while True:
        if r.status_code != 200:
            raise Failure("history: %s %s" % (r.status_code, r.text))
        page = r.json()
        out = page["messages"] + out
        if not page["has_more"]:
            return out
        r = api.call("GET", "/channels/%s/messages?limit=100&before=%s"
                     % (channel, page["next_cursor"]))


def shown(state):
    return "deleted" if state is DELETED else repr(state)


def settle(kind, key, entry, got, lost):
    """What a restart shows (got) must be the acknowledged state or the
    candidate of a request in flight; from now on it is the state."""
    if got != entry[0] and (entry[1] is None or got != entry[1]):
        lost.append("%s %s: %s, acknowledged %s" % (kind, key, shown(got), shown(entry[0])))
    entry[0:2] = [got, None]


def check(api, channel, uids, model, lost, wrong):
    """Compares the restarted server with the model; adopts what it shows."""
    hist = history(api, channel)
    seen = {}
    contents = set()
    for m in hist:
        seen[m["id"]] = m
        if not m["is_deleted"]:
            if m["content"] in contents:
                wrong.append("content twice: %s" % m["content"])
            contents.add(m["content"])
    for mid, entry in model.messages.items():
        model.checks += 1
        m = seen.get(mid)
        if m is None:
            lost.append("message %s (%s)" % (mid, "deleted" if entry[0] is DELETED else entry[0]))
            continue
        got = DELETED if m["is_deleted"] else m["content"]
        settle("message", mid, entry, got, lost)
        if got is DELETED:  # a deleted message shows no reactions
            for key, e in model.reactions.items():
                if key[0] == mid:
                    e[0:2] = [False, None]
            continue
        # Reactions on it.
        present = {(r["emoji"], u) for r in m.get("reactions") or [] for u in r["users"]}
        for key, e in model.reactions.items():
            if key[0] != mid:
                continue
            model.checks += 1
            has = (key[1], key[2]) in present
            if has != e[0] and (e[1] is None or has != e[1]):
                lost.append("reaction %s on %s by %s: %s, acknowledged %s"
                            % (key[1], mid, key[2], has, e[0]))
            e[0:2] = [has, None]
        for emoji, u in present:
            model.reactions.setdefault((mid, emoji, u), [True, None])
    # Messages nobody acknowledged: only those sent and unanswered.
    for mid, m in seen.items():
        if mid in model.messages:
            continue
        if m["is_deleted"] or m["content"] not in model.unanswered_posts:
            wrong.append("message nobody sent: %s" % m)
            continue
        model.messages[mid] = [m["content"], None, model.unanswered_posts.pop(m["content"])]
    model.unanswered_posts.clear()  # not there now: never will be (not retried)
    # Files.
    for fid, entry in model.files.items():
        model.checks += 1
        r = api.call("GET", "/files/%s" % fid)
        got = DELETED if r.status_code == 404 else (r.json()["sha256"] if r.status_code == 200
                                                    else None)
        if got is None:
            wrong.append("file %s: %s %s" % (fid, r.status_code, r.text))
            continue
        settle("file", fid, entry, got, lost)
        if fid in model.new_files and got is not DELETED:
            d = api.call("GET", "/files/%s/download" % fid)
            model.checks += 1
            if d.status_code != 200 or hashlib.sha256(d.content).hexdigest() != got:
                lost.append("file %s: download %s" % (fid, d.status_code))
    model.new_files.clear()
    # Accounts.
    for name in sorted(model.accounts):
        model.checks += 1
        r = api.call("GET", "/users/by-username/%s" % name)
        if r.status_code != 200:
            lost.append("account %s: %s" % (name, r.status_code))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(os.environ.get("PARLEY_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print("crash-server: PARLEY_CRASH_SEED=%d, %d rounds, %s" % (seed, rounds, BIN), flush=True)
    work = tempfile.mkdtemp(prefix="parley-crash-")
    data, log_path = os.path.join(work, "data"), os.path.join(work, "server.log")
    server = Server(data, log_path)
    server.start()
    admin = Api(server)
    users = []
    for n in range(USERS + 1):
        r = admin.call("POST", "/auth/register",
                       json={"username": "crash%d" % n, "email": "crash%d@example.org" % n,
                             "password": PASSWORD})
        assert r.status_code == 201, r.text
        users.append((r.json()["access_token"], r.json()["user"]["id"]))
    owner = Api(server, users[0][0])
    r = owner.call("POST", "/channels", json={"name": "crash"})
    assert r.status_code == 201, r.text
    channel = r.json()["id"]
    for token, _ in users[1:]:
        r = Api(server, token).call("POST", "/channels/%s/join" % channel)
        assert r.status_code in (200, 201, 204), r.text
    model = Model()
    lost, wrong = [], []
    started = time.time()
    done = 0
    for round_no in range(rounds):
        stop = threading.Event()
        errors = []
        apis = [Api(server, users[n + 1][0]) for n in range(USERS)]
        threads = [threading.Thread(target=worker, args=(
            n, apis[n], users[n + 1][1], channel, model, random.Random(rng.random()), stop,
            round_no, errors)) for n in range(USERS)]
        threads.append(threading.Thread(target=registrar, args=(
            Api(server), model, round_no, stop, errors)))
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 1.2) * (3 if SANITIZED else 1))
        stop.set()
        server.kill()
        for t in threads:
            t.join()
        server.start()
        check(Api(server, users[0][0]), channel, [u for _, u in users], model, lost, wrong)
        wrong += errors
        done += 1
        if round_no % 10 == 9 or lost or wrong:
            print("round %d: %d acknowledged so far, %d checks, %d lost, %d wrong (%.0fs)"
                  % (round_no + 1, model.acked, model.checks, len(lost), len(wrong),
                     time.time() - started), flush=True)
        if lost or wrong:
            break
    code = server.stop()
    if code != 0:
        wrong.append("server exited %s after SIGTERM" % code)
    for line in (lost + wrong)[:30]:
        print("  " + line)
    print("crash-server: %d rounds, %d acknowledged writes, %d checks, %d lost, %d wrong; %.0f s"
          % (done, model.acked, model.checks, len(lost), len(wrong), time.time() - started))
    # One test per round for scripts/run-tests.sh.
    bad = 1 if lost or wrong else 0
    print("crash-server: %d passed, %d failed" % (done - bad, bad))
    if lost or wrong:
        print("crash-server: FAILED (seed %d; data and log kept in %s)" % (seed, work))
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
