"""Channels by name over the WebSocket (PlexiChat 001 subscribes to "general")
and receipts (Chat API 002's message_status): "delivered" when a message is
first queued to another member's connection (live, or replayed by a resume),
"read" when another member's read marker first passes it, and the read state
in GET /messages/{id} for the author only, kept across a restart.
docs/realtime.md, "Channels by name" and "Receipts"."""
import pytest

from conftest import module_server
from realtime_client import Live, Stream
from client import accounts
from test_files import new_channel


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "receipts", ("--rate-limit", "0"))


def post(who, channel_id, content):
    return who.ok("POST", "/channels/%s/messages" % channel_id, {"content": content}, 201)


def statuses(live, status=None):
    """message_status frames already received (kept), without consuming them."""
    return [f for f in live.kept if f["type"] == "message_status" and
            (status is None or f["data"]["status"] == status)]


def error_of(live, ref):
    f = live.wait(lambda f: f["type"] == "error" and f["data"].get("ref") == ref)
    return f["data"]


# ---- channels by name ---------------------------------------------------------

def test_subscribe_by_name_public_private_and_unknown(srv):
    u = accounts(srv, "rcAda", "rcBo")
    pub = new_channel(u.rcAda)
    priv = new_channel(u.rcAda, is_private=True)
    bo = Live(srv, u.rcBo.token)
    try:
        # A public channel Bo is not in, named in another case: its id comes back
        # and its events arrive.
        bo.send({"type": "subscribe", "channels": [pub["name"].upper()], "ref": "s1"})
        f = bo.wait(lambda f: f["type"] == "subscribed" and f["data"].get("ref") == "s1")
        assert f["data"]["channels"] == [pub["id"]]
        m = post(u.rcAda, pub["id"], "by name")
        bo.wait_type("message.created", id=m["id"])
        # A private channel Bo is not in answers exactly as an unknown name.
        bo.send({"type": "subscribe", "channels": [priv["name"]], "ref": "s2"})
        e_priv = error_of(bo, "s2")
        bo.send({"type": "subscribe", "channels": ["no-such-channel-here"], "ref": "s3"})
        e_none = error_of(bo, "s3")
        assert e_priv["code"] == e_none["code"] == "RESOURCE_NOT_FOUND"
        assert e_priv["message"] == e_none["message"]
        # All or nothing: a good name beside a bad one subscribes to neither.
        other = new_channel(u.rcAda)
        bo.send({"type": "subscribe", "channels": [other["name"], "nope-nope"], "ref": "s4"})
        assert error_of(bo, "s4")["code"] == "RESOURCE_NOT_FOUND"
        # The single form, "channel".
        bo.send({"type": "subscribe", "channel": other["name"], "ref": "s5"})
        f = bo.wait(lambda f: f["type"] == "subscribed" and f["data"].get("ref") == "s5")
        assert f["data"]["channels"] == [other["id"]]
        # A renamed channel answers to its new name only; a deleted one to none.
        old_name = other["name"]
        other = u.rcAda.ok("PATCH", "/channels/%s" % other["id"], {"name": old_name + "-new"})
        bo.send({"type": "subscribe", "channel": old_name, "ref": "r1"})
        assert error_of(bo, "r1")["code"] == "RESOURCE_NOT_FOUND"
        bo.send({"type": "subscribe", "channel": old_name + "-NEW", "ref": "r2"})
        f = bo.wait(lambda f: f["type"] == "subscribed" and f["data"].get("ref") == "r2")
        assert f["data"]["channels"] == [other["id"]]
        r = u.rcAda.call("DELETE", "/channels/%s" % other["id"])
        assert r.status_code in (200, 204), r.text
        bo.send({"type": "subscribe", "channel": other["name"], "ref": "r3"})
        assert error_of(bo, "r3")["code"] == "RESOURCE_NOT_FOUND"
        # Unsubscribe by name mutes it.
        bo.send({"type": "unsubscribe", "channels": [pub["name"]], "ref": "u1"})
        f = bo.wait(lambda f: f["type"] == "unsubscribed" and f["data"].get("ref") == "u1")
        assert f["data"]["channels"] == [pub["id"]]
    finally:
        bo.close()


def test_send_message_by_name(srv):
    u = accounts(srv, "rcCy", "rcDi")
    ch = new_channel(u.rcCy)
    priv = new_channel(u.rcCy, is_private=True)
    u.rcDi.ok("POST", "/channels/%s/join" % ch["id"])
    di = Live(srv, u.rcDi.token)
    try:
        for i, form in enumerate(({"channel": ch["name"]}, {"channel_id": ch["name"]})):
            ref = "m%d" % i
            di.send({"type": "send_message", "ref": ref,
                     "data": dict(form, content="named %d" % i)})
            ack = di.wait(lambda f: f["type"] == "ack" and f["data"].get("ref") == ref)
            assert ack["data"]["status"] == 201
            assert ack["data"]["message"]["channel_id"] == ch["id"]
        # A private channel one is not in: not found, like no channel at all.
        di.send({"type": "send_message", "ref": "p",
                 "data": {"channel": priv["name"], "content": "x"}})
        assert error_of(di, "p")["code"] == "RESOURCE_NOT_FOUND"
        di.send({"type": "send_message", "ref": "q",
                 "data": {"channel": "never-was-a-channel", "content": "x"}})
        assert error_of(di, "q")["code"] == "RESOURCE_NOT_FOUND"
        # Hostile shapes: both fields, not a string, empty, too long.
        for ref, data, field in (("h1", {"channel": ch["name"], "channel_id": ch["id"]}, "channel"),
                                 ("h2", {"channel": 7}, "channel"),
                                 ("h3", {"channel": ""}, "channel"),
                                 ("h4", {"channel": "x" * 400}, "channel")):
            di.send({"type": "send_message", "ref": ref, "data": dict(data, content="x")})
            e = error_of(di, ref)
            assert e["code"] == "VALIDATION_ERROR" and e["details"]["field"] == field, e
        # None of those posted anything.
        hist = u.rcCy.ok("GET", "/channels/%s/messages" % ch["id"])
        items = hist.get("messages", hist.get("items", hist.get("data")))
        assert sorted(m["content"] for m in items) == ["named 0", "named 1"]
    finally:
        di.close()


def test_hostile_subscribe_frames(srv):
    u = accounts(srv, "rcEd")
    ed = Live(srv, u.rcEd.token)
    try:
        for ref, frame in (("a", {"channels": []}), ("b", {"channels": "general"}),
                           ("c", {"channels": [5]}), ("d", {"channels": [""]}),
                           ("e", {"channels": ["x" * 400]}), ("f", {"channel": 3}),
                           ("g", {"channels": ["c"] * 101})):
            ed.send(dict(frame, type="subscribe", ref=ref))
            assert error_of(ed, ref)["code"] == "VALIDATION_ERROR"
        ed.send({"type": "ping", "ref": "still"})
        ed.wait(lambda f: f["type"] == "pong")
    finally:
        ed.close()


# ---- delivered ------------------------------------------------------------------

def test_delivered_once_to_the_author_only_for_another_members_connection(srv):
    u = accounts(srv, "rcFi", "rcGu")
    ch = new_channel(u.rcFi)
    u.rcGu.ok("POST", "/channels/%s/join" % ch["id"])
    fi = Live(srv, u.rcFi.token)
    fi2 = Live(srv, u.rcFi.token)      # the author's other device
    try:
        start = fi.ready["seq"]
        # Nobody else is live: the author's own devices do not count.
        m1 = post(u.rcFi, ch["id"], "nobody listening")
        fi2.wait_type("message.created", id=m1["id"])
        fi.wait_type("message.created", id=m1["id"])
        # Gu connects (no resume): it gets m2 live, which is delivered; m1 is not.
        gu = Live(srv, u.rcGu.token)
        gs = Stream(srv, u.rcGu.token)   # a second live connection of Gu's
        try:
            gs.wait("ready")
            m2 = post(u.rcFi, ch["id"], "somebody listening")
            gu.wait_type("message.created", id=m2["id"])
            gs.wait("message.created", id=m2["id"])
            f = fi.wait_type("message_status", message_id=m2["id"])
            assert f["data"]["status"] == "delivered"
            assert f["data"]["channel_id"] == ch["id"] and f["data"]["timestamp"]
            # Events come in seq order: m1's receipt, had it been sent, came first.
            assert not [x for x in statuses(fi) if x["data"]["message_id"] == m1["id"]]
            # Gu's receipt reaches no one but the author: not Gu.
            m3 = post(u.rcGu, ch["id"], "from gu")
            gu.wait_type("message.created", id=m3["id"])
            fi.wait_type("message.created", id=m3["id"])
            g3 = gu.wait_type("message_status", message_id=m3["id"])
            assert g3["data"]["status"] == "delivered"
            assert not [x for x in gu.kept if x["type"] == "message_status" and
                        x["data"]["message_id"] != m3["id"]]
            # Once per message: m2 reached two of Gu's connections and fi2.
            # A later receipt (m4) comes after any second one of m2.
            m4 = post(u.rcFi, ch["id"], "again")
            fi.wait_type("message_status", message_id=m4["id"])
            assert not [x for x in statuses(fi) if x["data"]["message_id"] == m2["id"]]
            fi2.wait_type("message_status", message_id=m4["id"])
        finally:
            gu.close()
            gs.close()
        # A resume that replays m1 to Gu queues it on a live connection: delivered.
        gr = Live(srv, u.rcGu.token, since=start)
        try:
            gr.wait_type("message.created", id=m1["id"])
            f = fi.wait_type("message_status", message_id=m1["id"])
            assert f["data"]["status"] == "delivered"
        finally:
            gr.close()
    finally:
        fi.close()
        fi2.close()


def test_delivered_in_a_direct_conversation(srv):
    u = accounts(srv, "rcHa", "rcIo")
    d = u.rcHa.ok("POST", "/channels/direct", {"user_ids": [u.rcIo.id]}, 201)
    ha = Live(srv, u.rcHa.token)
    io = Live(srv, u.rcIo.token)
    try:
        m = post(u.rcHa, d["id"], "psst")
        io.wait_type("message.created", id=m["id"])
        assert ha.wait_type("message_status", message_id=m["id"])["data"]["status"] == \
            "delivered"
    finally:
        ha.close()
        io.close()


# ---- read -----------------------------------------------------------------------

def read(who, channel_id, message_id):
    return who.ok("POST", "/channels/%s/read" % channel_id, {"message_id": message_id})


def test_read_receipts_first_reader_and_read_by(start_server):
    s = start_server(args=("--rate-limit", "0"))
    u = accounts(s, "rcJo", "rcKa", "rcLi", "rcMo")
    ch = new_channel(u.rcJo)
    for n in ("rcKa", "rcLi", "rcMo"):
        getattr(u, n).ok("POST", "/channels/%s/join" % ch["id"])
    jo = Live(s, u.rcJo.token)
    try:
        m1 = post(u.rcJo, ch["id"], "one")
        m2 = post(u.rcJo, ch["id"], "two")
        k1 = post(u.rcKa, ch["id"], "ka's")
        m3 = post(u.rcJo, ch["id"], "three")
        # The author's own marker is no read.
        read(u.rcJo, ch["id"], m3["id"])
        # Ka reads up to m2: m1 and m2 are read (first reader); k1 is Ka's own.
        read(u.rcKa, ch["id"], m2["id"])
        for m in (m1, m2):
            f = jo.wait_type("message_status", message_id=m["id"], status="read")
            assert f["data"]["user_id"] == u.rcKa.id
        # Li reads everything: only m3 is new to anyone (m1, m2 were read).
        read(u.rcLi, ch["id"], m3["id"])
        f = jo.wait_type("message_status", message_id=m3["id"], status="read")
        assert f["data"]["user_id"] == u.rcLi.id
        # Mo reads everything too: nothing new; a later message proves it in order.
        read(u.rcMo, ch["id"], m3["id"])
        m4 = post(u.rcJo, ch["id"], "four")
        read(u.rcKa, ch["id"], m4["id"])
        jo.wait_type("message_status", message_id=m4["id"], status="read")
        reads = [(x["data"]["message_id"]) for x in statuses(jo, "read")]
        assert reads == [], reads
        # The marker does not go back: nothing changes.
        read(u.rcKa, ch["id"], m1["id"])
        # read_by: the author only; others get no such field.
        view = u.rcJo.ok("GET", "/messages/%s?read_state=true" % m3["id"])
        assert view["read_count"] == 3
        assert sorted(r["user_id"] for r in view["read_by"]) == sorted(
            [u.rcKa.id, u.rcLi.id, u.rcMo.id])
        v1 = u.rcJo.ok("GET", "/messages/%s?read_state=true" % m4["id"])
        assert v1["read_count"] == 1 and [r["user_id"] for r in v1["read_by"]] == [u.rcKa.id]
        other = u.rcKa.ok("GET", "/messages/%s?read_state=true" % m3["id"])
        assert "read_by" not in other and "read_count" not in other
        # Only when asked: the message object is otherwise the same for all.
        plain = u.rcJo.ok("GET", "/messages/%s" % m3["id"])
        assert "read_by" not in plain and "read_count" not in plain
        assert plain == other
        for bad in ("yes", "1", "", "TRUE"):
            r = u.rcJo.call("GET", "/messages/%s" % m3["id"], params={"read_state": bad})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["details"]["field"] == "read_state"
        kv = u.rcKa.ok("GET", "/messages/%s?read_state=true" % k1["id"])
        # Ka's own message: Jo's marker passed it too (Jo is not its author).
        assert kv["read_count"] == 3 and u.rcJo.id in [r["user_id"] for r in kv["read_by"]]
        # Hostile: a message of another channel, none at all, not a string.
        other_ch = new_channel(u.rcKa)
        ko = post(u.rcKa, other_ch["id"], "elsewhere")
        for body in ({"message_id": ko["id"]}, {"message_id": "msg_9999999999999999"},
                     {"message_id": 5}, {}):
            r = u.rcLi.call("POST", "/channels/%s/read" % ch["id"], json=body)
            assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", \
                r.text
    finally:
        jo.close()
    # Durable: the read state is computed from the markers, which survive a restart.
    s.stop()
    s.start()
    view = u.rcJo.on(s).ok("GET", "/messages/%s?read_state=true" % m3["id"])
    assert view["read_count"] == 3
    assert u.rcJo.ok("GET", "/messages/%s?read_state=true" % m4["id"])["read_count"] == 1


def test_read_receipt_in_a_direct_conversation_over_an_event_stream(srv):
    u = accounts(srv, "rcNe", "rcOz")
    d = u.rcNe.ok("POST", "/channels/direct", {"user_ids": [u.rcOz.id]}, 201)
    ne = Stream(srv, u.rcNe.token)
    try:
        ne.wait("ready")
        m = post(u.rcNe, d["id"], "did you see")
        read(u.rcOz, d["id"], m["id"])
        _, ev = ne.wait("message_status", message_id=m["id"], status="read")
        assert ev["user_id"] == u.rcOz.id
    finally:
        ne.close()


def crowd(srv, owner, pattern, n):
    """The owner's channel, and n readers (named by pattern) who joined it."""
    names = [pattern % i for i in range(n)]
    u = accounts(srv, owner, *names)
    ch = new_channel(getattr(u, owner))
    readers = [getattr(u, name) for name in names]
    for r in readers:
        r.ok("POST", "/channels/%s/join" % ch["id"])
    return u, ch, readers


def test_concurrent_first_readers_announce_each_message_once(srv):
    """Readers moving their markers over the same messages at once: each
    message is announced read exactly once (the channel's stripe lock)."""
    import threading
    u, ch, readers = crowd(srv, "rcPa", "rcP%d", 16)
    pa = Live(srv, u.rcPa.token)
    try:
        for rnd in range(5):
            msgs = [post(u.rcPa, ch["id"], "round %d #%d" % (rnd, i)) for i in range(5)]
            barrier = threading.Barrier(len(readers))
            errors = []

            def go(who):
                try:
                    barrier.wait(timeout=30)
                    read(who, ch["id"], msgs[-1]["id"])
                except Exception as e:  # reported below
                    errors.append(e)
            threads = [threading.Thread(target=go, args=(r,)) for r in readers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            for m in msgs:
                pa.wait_type("message_status", message_id=m["id"], status="read")
            # A later message read by one reader: its receipt comes after any
            # second receipt of this round's messages.
            last = post(u.rcPa, ch["id"], "round %d end" % rnd)
            read(readers[0], ch["id"], last["id"])
            pa.wait_type("message_status", message_id=last["id"], status="read")
            dup = [x["data"]["message_id"] for x in statuses(pa, "read")]
            assert dup == [], dup
    finally:
        pa.close()


def test_a_reader_who_is_not_a_member_announces_nothing(srv):
    u = accounts(srv, "rcQu", "rcRe", "rcSa")
    ch = new_channel(u.rcQu)
    u.rcSa.ok("POST", "/channels/%s/join" % ch["id"])
    qu = Live(srv, u.rcQu.token)
    try:
        m = post(u.rcQu, ch["id"], "public words")
        # Re reads the public channel without joining: no receipt, no read_by.
        read(u.rcRe, ch["id"], m["id"])
        assert u.rcQu.ok("GET", "/messages/%s?read_state=true" % m["id"])["read_count"] == 0
        read(u.rcSa, ch["id"], m["id"])
        f = qu.wait_type("message_status", message_id=m["id"], status="read")
        assert f["data"]["user_id"] == u.rcSa.id
        v = u.rcQu.ok("GET", "/messages/%s?read_state=true" % m["id"])
        assert v["read_count"] == 1 and v["read_by"] == [{"user_id": u.rcSa.id}]
    finally:
        qu.close()


def test_read_state_survives_a_kill(start_server):
    import signal
    s = start_server(args=("--rate-limit", "0"))
    u = accounts(s, "rcTe", "rcUl")
    d = u.rcTe.ok("POST", "/channels/direct", {"user_ids": [u.rcUl.id]}, 201)
    m = post(u.rcTe, d["id"], "before the kill")
    read(u.rcUl, d["id"], m["id"])          # answered once durable
    s.stop(sig=signal.SIGKILL)
    s.start()
    te = u.rcTe.on(s)
    v = te.ok("GET", "/messages/%s?read_state=true" % m["id"])
    assert v["read_count"] == 1 and v["read_by"] == [{"user_id": u.rcUl.id}]
    # The marker moves on from where it was: a new message's receipt comes.
    live = Live(s, te.token)
    try:
        m2 = post(te, d["id"], "after the kill")
        read(u.rcUl.on(s), d["id"], m2["id"])
        live.wait_type("message_status", message_id=m2["id"], status="read")
        assert not statuses(live, "read")
    finally:
        live.close()


def test_bounds_one_move_announces_the_newest_100_and_read_by_lists_100(srv):
    u, ch, readers = crowd(srv, "rcVo", "rcW%03d", 102)
    vo = Live(srv, u.rcVo.token)
    try:
        msgs = [post(u.rcVo, ch["id"], "n%d" % i) for i in range(105)]
        read(readers[0], ch["id"], msgs[-1]["id"])
        for m in msgs[5:]:
            vo.wait_type("message_status", message_id=m["id"], status="read")
        # The five oldest it passed get no event: a later receipt proves it.
        tail = post(u.rcVo, ch["id"], "tail")
        read(readers[1], ch["id"], tail["id"])
        vo.wait_type("message_status", message_id=tail["id"], status="read")
        assert not statuses(vo, "read")
        # Their state is in GET /messages/{id}.
        assert u.rcVo.ok("GET", "/messages/%s?read_state=true" % msgs[0]["id"])["read_count"] == 2
        for r in readers[:1] + readers[2:]:
            read(r, ch["id"], tail["id"])
        v = u.rcVo.ok("GET", "/messages/%s?read_state=true" % tail["id"])
        assert v["read_count"] == 102 and len(v["read_by"]) == 100
        assert len({x["user_id"] for x in v["read_by"]}) == 100
    finally:
        vo.close()
