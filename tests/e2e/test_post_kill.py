"""The issue: "concurrent posters while the server is SIGKILLed at a random
moment; after restart every message answered 201 is in the history exactly
once, in order".

Three rounds on one data directory: 6 threads (3 users x 2 channels, one
public, one private) post numbered messages, each with an idempotency key,
until the server is SIGKILLed 0.5-1.5 s in; it restarts on the same data
directory. The server snapshots every 100 records (looked at each second),
so most rounds also recover from a snapshot taken while posts went on,
plus the log after it. Then, in each channel's full history (paged with cursors):
  - ids strictly increase and no content appears twice;
  - every message answered 201 (or 200) is there exactly once, under the id
    and with the content it was acknowledged with, and each thread's
    acknowledged messages are in the order it sent them;
  - a message whose request got no answer is there at most once; posting
    it again with its idempotency key answers 200 with that message when it
    was stored, 201 when it was not, and never makes a second copy;
  - nothing appears that nobody sent, and earlier rounds are intact.
The random moments come from a seed printed on failure (set PARLEY_TEST_SEED
to replay one)."""
import os
import random
import threading
import time

import requests

from conftest import SANITIZED
from client import API, register

ROUNDS = 3
USERS = ("alice", "bob", "carol")
SLOWER = 3 if SANITIZED else 1


def call(server, token, method, path, body=None, timeout=30):
    return requests.request(method, server.url(API + path), json=body, timeout=timeout,
                            headers={"Authorization": "Bearer " + token})


def history(server, token, cid):
    """The whole history, oldest first, paging forward with after=."""
    first = call(server, token, "GET", "/channels/%s/messages?limit=100" % cid)
    assert first.status_code == 200, first.text
    page = first.json()
    out = page["messages"]
    while page["has_more"]:  # older ones remain: page back to the start
        r = call(server, token, "GET", "/channels/%s/messages?limit=100&before=%s"
                 % (cid, page["next_cursor"]))
        assert r.status_code == 200, r.text
        page = r.json()
        out = page["messages"] + out
    # And forward again from the oldest: the same sequence.
    if out:
        fwd, cursor = [out[0]], out[0]["id"]
        while True:
            r = call(server, token, "GET", "/channels/%s/messages?limit=100&after=%s"
                     % (cid, cursor))
            assert r.status_code == 200, r.text
            page = r.json()
            fwd += page["messages"]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert [m["id"] for m in fwd] == [m["id"] for m in out]
    return out


def storm(server, tokens, channels, round_no, kill_after):
    """Posts from 6 threads until SIGKILL. Returns acknowledged
    {content: (status, message)} per thread in sending order, and the set of
    unanswered contents."""
    acked = {}     # (user, channel) -> [(content, id)] in order
    unanswered = {}  # content -> (user, channel)
    lock = threading.Lock()
    stop = threading.Event()

    def worker(user, label):
        i = 0
        while not stop.is_set():
            content = "r%d-%s-%s-%d" % (round_no, user, label, i)
            i += 1
            try:
                r = call(server, tokens[user], "POST", "/channels/%s/messages" % channels[label],
                         {"content": content, "idempotency_key": content}, timeout=10)
            except requests.RequestException:
                with lock:
                    unanswered[content] = (user, label)
                continue
            assert r.status_code == 201, r.text
            m = r.json()
            assert m["content"] == content and m["channel_id"] == channels[label]
            with lock:
                acked.setdefault((user, label), []).append((content, m["id"]))

    threads = [threading.Thread(target=worker, args=(u, c)) for u in USERS
               for c in channels]
    for t in threads:
        t.start()
    time.sleep(kill_after)
    stop.set()
    server.proc.kill()
    server.proc.wait()
    for t in threads:
        t.join()
    return acked, unanswered


def test_acknowledged_posts_survive_sigkill_exactly_once(start_server, tmp_path):
    seed = int(os.environ.get("PARLEY_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print("PARLEY_TEST_SEED=%d" % seed)
    data = tmp_path / "data"
    args = ["--rate-limit", "0", "--snapshot-every-records", "100"]
    server = start_server(args=args, data_dir=data)
    tokens = {}
    for name in USERS:
        tokens[name] = register(server, name).token
    ids = {}
    for name in USERS:
        r = call(server, tokens[name], "GET", "/users/me")
        ids[name] = r.json()["id"]
    owner = tokens["alice"]
    r = call(server, owner, "POST", "/channels", {"name": "kill-public"})
    assert r.status_code == 201, r.text
    pub = r.json()["id"]
    r = call(server, owner, "POST", "/channels", {"name": "kill-private", "is_private": True})
    assert r.status_code == 201, r.text
    priv = r.json()["id"]
    for name in ("bob", "carol"):
        assert call(server, owner, "POST", "/channels/%s/members" % priv,
                    {"user_id": ids[name]}).status_code == 201
    channels = {"pub": pub, "priv": priv}

    expected = {"pub": {}, "priv": {}}   # content -> id, of everything known stored
    total_acked = 0
    for round_no in range(ROUNDS):
        acked, unanswered = storm(server, tokens, channels, round_no,
                                  rng.uniform(0.5, 1.5) * SLOWER)
        n_acked = sum(len(v) for v in acked.values())
        print("round %d: %d acknowledged, %d unanswered" % (round_no, n_acked, len(unanswered)))
        total_acked += n_acked
        assert n_acked > 0, "no post was acknowledged in round %d (seed %d)" % (round_no, seed)
        server = start_server(args=args, data_dir=data)
        for label, cid in channels.items():
            hist = history(server, owner, cid)
            hid = [m["id"] for m in hist]
            assert hid == sorted(hid) and len(set(hid)) == len(hid), "seed %d" % seed
            contents = [m["content"] for m in hist]
            assert len(set(contents)) == len(contents), "duplicates, seed %d" % seed
            by_content = {m["content"]: m for m in hist}
            # Earlier rounds, and everything acknowledged now, exactly as answered.
            for content, mid in expected[label].items():
                assert by_content.get(content, {}).get("id") == mid, (content, seed)
            for (user, lab), sent in acked.items():
                if lab != label:
                    continue
                for content, mid in sent:
                    assert content in by_content, ("acknowledged post lost", content, seed)
                    m = by_content[content]
                    assert m["id"] == mid and m["user_id"] == ids[user], (content, seed)
                    expected[label][content] = mid
                got = [by_content[c]["id"] for c, _ in sent]
                assert got == sorted(got), ("out of order", user, lab, seed)
            # The unanswered: at most once (contents are unique); retried with
            # their key they answer 200 (stored) or 201 (not), never twice.
            for content, (user, lab) in unanswered.items():
                if lab != label:
                    continue
                r = call(server, tokens[user], "POST", "/channels/%s/messages" % cid,
                         {"content": content, "idempotency_key": content})
                if content in by_content:
                    assert r.status_code == 200, (content, r.text, seed)
                    assert r.json()["id"] == by_content[content]["id"]
                else:
                    assert r.status_code == 201, (content, r.text, seed)
                expected[label][content] = r.json()["id"]
            # Nothing nobody sent.
            sent_now = {c for (u, lab), v in acked.items() if lab == label for c, _ in v}
            sent_now |= {c for c, (u, lab) in unanswered.items() if lab == label}
            assert set(by_content) <= set(expected[label]) | sent_now, seed
            # After the retries: each content once, ids in order.
            again = history(server, owner, cid)
            assert sorted(m["content"] for m in again) == sorted(expected[label]), seed
            assert [m["id"] for m in again] == sorted(m["id"] for m in again)
    assert total_acked >= ROUNDS * 6, "too few posts to mean anything (seed %d)" % seed
