"""Real time (docs/api.md, "Real time"): events over WebSocket and SSE to
those who may see them, resume, typing, presence, send_message, and every
kind of bad input ending in an error frame or a clean close."""
import json
import socket
import time

import pytest
import requests
import websocket

from conftest import module_server
from realtime_client import (API, Live, Stream, client_frame, events, parse_server_frames,
                             raw_handshake, ws_url)
from client import WAIT_TIMEOUT, accounts, wait_expired, wait_until
from test_files import new_channel


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "realtime",
                             ("--rate-limit", "0", "--ws-ping-interval", "1",
                              "--sse-ping-interval", "1"))


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def refused_handshake(server, token):
    """The JSON answer to a WebSocket handshake that is refused (the WebSocket
    client gets the status only)."""
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(ws_url(server, token), timeout=10)
    r = requests.get(server.url(API + "/ws"), params={"token": token}, headers=UPGRADE,
                     timeout=10)
    assert r.status_code == e.value.status_code
    return r


def post(who, channel, content, status=201, **fields):
    return who.ok("POST", "/channels/%s/messages" % channel["id"],
                  dict({"content": content}, **fields), status)


def room(srv, *names, private=False):
    """Accounts, and a channel owned by the first that every one joins."""
    users = accounts(srv, *names)
    first = getattr(users, names[0])
    ch = new_channel(first, is_private=private)
    for n in names[1:]:
        if private:
            first.ok("POST", "/channels/%s/members" % ch["id"], {"user_id": getattr(users, n).id},
                     201)
        else:
            getattr(users, n).ok("POST", "/channels/%s/join" % ch["id"])
    return users, ch


def test_member_gets_message_created_after_the_post_and_a_stranger_never(srv):
    u, ch = room(srv, "rtAnn", "rtBen")
    stranger = accounts(srv, "rtCid").rtCid
    ben = Live(srv, u.rtBen.token)
    cid = Live(srv, stranger.token)
    try:
        m = post(u.rtAnn, ch, "hello live")
        f = ben.wait_type("message.created", id=m["id"])
        assert f["data"] == m
        assert isinstance(f["seq"], int) and f["seq"] > ben.ready["seq"]
        # The stranger sees nothing of a channel it is not in, even public.
        assert not [x for x in cid.drain(1.0) if x["type"].startswith("message.")]
    finally:
        ben.close()
        cid.close()


def test_private_channel_events_never_reach_outsiders(srv):
    u, ch = room(srv, "rtPam", "rtPat", private=True)
    outsider = accounts(srv, "rtPol").rtPol
    live = Live(srv, outsider.token)
    try:
        live.send({"type": "subscribe", "channels": [ch["id"]], "ref": 7})
        err = live.wait_type("error")
        assert err["data"]["code"] == "RESOURCE_NOT_FOUND" and err["data"]["ref"] == 7
        live.send({"type": "subscribe", "channels": ["ch_doesnotexist"]})
        assert live.wait_type("error")["data"]["code"] == "RESOURCE_NOT_FOUND"
        post(u.rtPam, ch, "secret")
        assert not [x for x in live.drain(1.0) if x["type"].startswith("message.")]
    finally:
        live.close()


def test_subscribe_to_a_public_channel_without_joining_and_unsubscribe(srv):
    u, ch = room(srv, "rtSue")
    reader = accounts(srv, "rtSid").rtSid
    live = Live(srv, reader.token)
    try:
        live.send({"type": "subscribe", "channels": [ch["id"]]})
        assert live.wait_type("subscribed")["data"]["channels"] == [ch["id"]]
        m = post(u.rtSue, ch, "for subscribers")
        live.wait_type("message.created", id=m["id"])
        live.send({"type": "unsubscribe", "channel_id": ch["id"]})
        live.wait_type("unsubscribed")
        post(u.rtSue, ch, "not for me now")
        assert not [x for x in live.drain(1.0) if x["type"] == "message.created"]
    finally:
        live.close()


def test_many_subscriptions_and_scattered_unsubscribes_keep_exactly_the_rest(srv):
    """The connection's channel sets (hash sets since P15) through growth and
    removals in scattered order: after subscribing to 60 public channels in
    frames of 25 and unsubscribing from every third, messages arrive from
    exactly the channels still subscribed; subscribing again to one muted
    brings it back, and a repeated id counts once."""
    owner = accounts(srv, "rtMany").rtMany
    reader = accounts(srv, "rtManyR").rtManyR
    chans = [new_channel(owner)["id"] for _ in range(60)]
    live = Live(srv, reader.token)
    try:
        for i in range(0, 60, 25):
            live.send({"type": "subscribe", "channels": chans[i:i + 25] + chans[i:i + 1]})
            got = live.wait_type("subscribed")["data"]["channels"]
            assert got == chans[i:i + 25] + chans[i:i + 1]
        dropped = chans[::3][::-1] + chans[1::7]
        for i in range(0, len(dropped), 10):
            live.send({"type": "unsubscribe", "channels": dropped[i:i + 10]})
            live.wait_type("unsubscribed")
        live.send({"type": "subscribe", "channels": [chans[3]]})
        live.wait_type("subscribed")
        kept = [c for c in chans if c not in dropped] + [chans[3]]
        for c in chans:
            owner.ok("POST", "/channels/%s/messages" % c, {"content": "to " + c}, 201)
        for c in kept:
            live.wait_type("message.created", channel_id=c)
        late = [f for f in live.drain(1.0) if f["type"] == "message.created"]
        assert not [f for f in late if f["data"]["channel_id"] not in kept], late
    finally:
        live.close()


def test_edits_deletes_and_reactions_arrive(srv):
    u, ch = room(srv, "rtEd", "rtEve")
    live = Live(srv, u.rtEve.token)
    try:
        m = post(u.rtEd, ch, "first")
        live.wait_type("message.created", id=m["id"])
        u.rtEd.ok("PUT", "/messages/%s" % m["id"], {"content": "edited"})
        f = live.wait_type("message.updated", id=m["id"])
        assert f["data"]["content"] == "edited" and f["data"]["is_edited"] is True
        u.rtEve.ok("POST", "/messages/%s/reactions" % m["id"], {"emoji": "👍"}, 201)
        f = live.wait_type("reaction.added", message_id=m["id"])
        assert f["data"]["emoji"] == "👍" and f["data"]["user_id"] == u.rtEve.id
        u.rtEve.ok("DELETE", "/messages/%s/reactions/%s" % (m["id"], "👍"))
        live.wait_type("reaction.removed", message_id=m["id"])
        u.rtEd.ok("DELETE", "/messages/%s" % m["id"], status=204)
        f = live.wait_type("message.deleted", id=m["id"])
        assert f["data"]["channel_id"] == ch["id"]
    finally:
        live.close()


def test_channel_and_member_events(srv):
    u, ch = room(srv, "rtOwn", "rtMem")
    joiner = accounts(srv, "rtNew").rtNew
    live = Live(srv, u.rtMem.token)
    try:
        u.rtOwn.ok("PATCH", "/channels/%s" % ch["id"], {"description": "now described"})
        f = live.wait_type("channel.updated", id=ch["id"])
        assert f["data"]["description"] == "now described"
        joiner.ok("POST", "/channels/%s/join" % ch["id"])
        live.wait_type("member.joined", user_id=joiner.id, channel_id=ch["id"])
        joiner.ok("POST", "/channels/%s/leave" % ch["id"], status=204)
        f = live.wait_type("member.left", user_id=joiner.id)
        assert f["data"]["reason"] == "left"
        u.rtOwn.ok("DELETE", "/channels/%s" % ch["id"], status=204)
        live.wait_type("channel.deleted", channel_id=ch["id"])
    finally:
        live.close()


def test_a_ban_takes_effect_on_the_live_connection(srv):
    u, ch = room(srv, "rtMod", "rtBad")
    live = Live(srv, u.rtBad.token)
    try:
        post(u.rtMod, ch, "before")
        live.wait_type("message.created")
        u.rtMod.ok("POST", "/channels/%s/ban-by-username/%s" % (ch["id"], u.rtBad.username))
        f = live.wait_type("member.left", user_id=u.rtBad.id)
        assert f["data"]["reason"] == "banned"
        post(u.rtMod, ch, "after the ban")
        assert not [x for x in live.drain(1.0) if x["type"] == "message.created"]
    finally:
        live.close()


def test_a_removed_member_hears_it_and_nothing_more(srv):
    u, ch = room(srv, "rtRo", "rtRm", private=True)
    live = Live(srv, u.rtRm.token)
    try:
        u.rtRo.ok("DELETE", "/channels/%s/members/%s" % (ch["id"], u.rtRm.id), status=204)
        f = live.wait_type("member.left", user_id=u.rtRm.id)
        assert f["data"]["reason"] == "removed"
        post(u.rtRo, ch, "private again")
        assert not [x for x in live.drain(1.0) if x["type"] == "message.created"]
    finally:
        live.close()


def test_typing_start_stop_and_expiry(srv):
    u, ch = room(srv, "rtTy", "rtTo")
    typer = Live(srv, u.rtTy.token)
    watcher = Live(srv, u.rtTo.token)
    try:
        typer.send({"type": "typing_start", "channel_id": ch["id"]})
        f = watcher.wait_type("typing", user_id=u.rtTy.id)
        assert f["data"] == {"channel_id": ch["id"], "user_id": u.rtTy.id, "is_typing": True}
        typer.send({"type": "typing_stop", "channel_id": ch["id"]})
        f = watcher.wait_type("typing", user_id=u.rtTy.id)
        assert f["data"]["is_typing"] is False
        # Without renewal a typing indicator ends by itself after 8 s: not
        # before (the clock starts before the server can have the frame, so
        # load only lengthens what is seen), and surely by a generous deadline.
        started = time.time()
        typer.send({"type": "typing_start", "channel_id": ch["id"]})
        assert watcher.wait_type("typing", user_id=u.rtTy.id)["data"]["is_typing"] is True
        f = watcher.wait_type("typing", timeout=8 + WAIT_TIMEOUT, user_id=u.rtTy.id)
        assert f["data"]["is_typing"] is False and time.time() - started >= 6
        # Typing where one may not post is refused.
        other = new_channel(accounts(srv, "rtTx").rtTx, is_private=True)
        typer.send({"type": "typing_start", "channel_id": other["id"]})
        assert typer.wait_type("error")["data"]["code"] == "RESOURCE_NOT_FOUND"
    finally:
        typer.close()
        watcher.close()


def test_presence_online_then_offline_with_last_seen(srv):
    u, ch = room(srv, "rtPa", "rtPb")
    a = Live(srv, u.rtPa.token)
    try:
        b = Live(srv, u.rtPb.token)
        f = a.wait_type("presence", user_id=u.rtPb.id)
        assert f["data"]["status"] == "online"
        assert u.rtPa.ok("GET", "/users/%s" % u.rtPb.id)["status"] == "online"
        b.close()
        f = a.wait_type("presence", user_id=u.rtPb.id)
        assert f["data"]["status"] == "offline" and f["data"]["last_seen"]
        prof = u.rtPa.ok("GET", "/users/%s" % u.rtPb.id)
        assert prof["status"] == "offline" and prof["last_seen"]
    finally:
        a.close()


def test_presence_is_not_told_to_strangers(srv):
    loner = accounts(srv, "rtLo").rtLo
    other = accounts(srv, "rtLp").rtLp
    watch = Live(srv, loner.token)
    try:
        o = Live(srv, other.token)
        o.close()
        assert not [f for f in watch.drain(1.0)
                    if f["type"] == "presence" and f["data"]["user_id"] == other.id]
    finally:
        watch.close()


def test_resume_yields_missed_events_exactly_once_in_order(srv):
    u, ch = room(srv, "rtRa", "rtRb")
    first = Live(srv, u.rtRb.token)
    m0 = post(u.rtRa, ch, "seen live")
    seen = first.wait_type("message.created", id=m0["id"])
    first.close()
    missed = [post(u.rtRa, ch, "missed %d" % i)["id"] for i in range(3)]
    again = Live(srv, u.rtRb.token, since=seen["seq"])
    try:
        assert again.ready["data"]["resumed"] is True
        m4 = post(u.rtRa, ch, "live again")
        got = [again.wait_type("message.created") for _ in range(4)]
        assert [f["data"]["id"] for f in got] == missed + [m4["id"]]
        assert all(f["seq"] > seen["seq"] for f in got)
        # Nothing twice, and not the one seen before the disconnect.
        assert not [f for f in again.drain(0.7) if f["type"] == "message.created"]
    finally:
        again.close()


def test_resume_order_and_seq_strictly_increase(srv):
    u, ch = room(srv, "rtSa", "rtSb")
    live = Live(srv, u.rtSb.token)
    start = live.ready["seq"]
    live.close()
    ids = [post(u.rtSa, ch, "n%d" % i)["id"] for i in range(5)]
    again = Live(srv, u.rtSb.token, since=start)
    try:
        frames = [again.wait_type("message.created") for _ in ids]
        assert [f["data"]["id"] for f in frames] == ids
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    finally:
        again.close()


def test_resume_from_a_point_no_longer_kept_says_reload(start_server):
    server = start_server(["--rate-limit", "0", "--event-ring", "16"])
    u, ch = room(server, "rtOa", "rtOb")
    live = Live(server, u.rtOb.token)
    start = live.ready["seq"]
    live.close()
    for i in range(20):
        post(u.rtOa, ch, "flood %d" % i)
    again = Live(server, u.rtOb.token, since=start)
    try:
        f = again.wait_type("error")
        assert f["data"]["code"] == "RESYNC_REQUIRED"
        m = post(u.rtOa, ch, "after the gap")
        again.wait_type("message.created", id=m["id"])
    finally:
        again.close()
    # A seq of an earlier run (or any number below this run's) as well.
    old = Live(server, u.rtOb.token, since=1)
    try:
        assert old.wait_type("error")["data"]["code"] == "RESYNC_REQUIRED"
    finally:
        old.close()


def test_send_message_over_the_socket_is_a_post(srv):
    u, ch = room(srv, "rtWa", "rtWb")
    a = Live(srv, u.rtWa.token)
    b = Live(srv, u.rtWb.token)
    try:
        a.send({"type": "send_message", "ref": "r1",
                "data": {"channel_id": ch["id"], "content": "over ws", "idempotency_key": "k1"}})
        ack = a.wait_type("ack")
        assert ack["data"]["ref"] == "r1" and ack["data"]["status"] == 201
        msg = ack["data"]["message"]
        assert msg["content"] == "over ws" and msg["user_id"] == u.rtWa.id
        b.wait_type("message.created", id=msg["id"])
        # Durable and in the history like any post.
        hist = u.rtWb.ok("GET", "/channels/%s/messages" % ch["id"])["messages"]
        assert msg["id"] in [x["id"] for x in hist]
        # The same idempotency key answers the first message again.
        a.send({"type": "send_message", "ref": "r2",
                "data": {"channel_id": ch["id"], "content": "over ws", "idempotency_key": "k1"}})
        ack = a.wait_type("ack")
        assert ack["data"]["status"] == 200 and ack["data"]["message"]["id"] == msg["id"]
        # The post's own validation, with the same error codes as HTTP.
        a.send({"type": "send_message", "ref": "r3", "data": {"channel_id": ch["id"],
                                                               "content": "   "}})
        err = a.wait_type("error")
        assert err["data"]["code"] == "VALIDATION_ERROR" and err["data"]["ref"] == "r3"
        a.send({"type": "send_message", "ref": "r4",
                "data": {"channel_id": "ch_nope", "content": "x"}})
        assert a.wait_type("error")["data"]["code"] == "RESOURCE_NOT_FOUND"
        a.send({"type": "send_message", "data": "not an object"})
        assert a.wait_type("error")["data"]["code"] == "VALIDATION_ERROR"
    finally:
        a.close()
        b.close()


def test_event_stream_gets_the_same_events_and_resumes(srv):
    u, ch = room(srv, "rtEa", "rtEb")
    stream = Stream(srv, u.rtEb.token)
    try:
        _, ready = stream.wait("ready")
        m = post(u.rtEa, ch, "to the stream")
        ident, data = stream.wait("message.created", id=m["id"])
        assert data == m and ident > ready["seq"]
        stream.wait("ping", timeout=5)
    finally:
        stream.close()
    missed = [post(u.rtEa, ch, "missed by the stream %d" % i)["id"] for i in range(2)]
    again = Stream(srv, u.rtEb.token, last_event_id=ident)
    try:
        got = [again.wait("message.created")[1]["id"] for _ in missed]
        assert got == missed
    finally:
        again.close()


def test_event_stream_refuses_bad_credentials_and_resume_points(srv):
    r = requests.get(srv.url(API + "/events"), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
    r = requests.get(srv.url(API + "/events"), headers={"Authorization": "Bearer nope"},
                     timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_INVALID"
    who = accounts(srv, "rtEc").rtEc
    r = requests.get(srv.url(API + "/events"), timeout=10,
                     headers={"Authorization": "Bearer " + who.token, "Last-Event-ID": "x1"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_event_stream_ends_when_the_login_ends(srv):
    who = accounts(srv, "rtEd2").rtEd2
    stream = Stream(srv, who.token)
    try:
        stream.wait("ready")
        who.ok("POST", "/auth/logout", {}, 204)
        _, data = stream.wait("error", timeout=10)
        assert data["code"] == "TOKEN_INVALID"
    finally:
        stream.close()


# ---- authentication --------------------------------------------------------

def test_auth_by_first_frame(srv):
    who = accounts(srv, "rtAf").rtAf
    live = Live(srv, auth_frame="Bearer " + who.token)
    try:
        assert live.ready["data"]["user_id"] == who.id
        live.send({"type": "ping", "ref": 1})
        assert live.wait_type("pong")["data"]["ref"] == 1
    finally:
        live.close()


def test_bad_token_in_the_handshake_is_a_json_401(srv):
    for token in ("garbage", "x" * 5000, "plx_notakey"):
        r = refused_handshake(srv, token)
        assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_INVALID"


def test_bad_auth_frame_gets_an_error_and_a_close(srv):
    live = Live(srv)
    live.send({"type": "auth", "token": "Bearer not-a-token"})
    assert live.wait_type("error")["data"]["code"] == "TOKEN_INVALID"
    assert live.closed_with()[0] == 4001


def test_frames_before_auth_are_refused(srv):
    live = Live(srv)
    live.send({"type": "subscribe", "channels": ["ch_x"]})
    assert live.wait_type("error")["data"]["code"] == "AUTHENTICATION_REQUIRED"
    assert live.closed_with()[0] == 4001


def test_no_auth_within_five_seconds_closes(srv):
    # The clock starts before the connection, so the close cannot be seen
    # sooner than the 5 s (less a second of timer granularity) even under
    # load; the deadline is generous but below the idle timeout (60 s).
    started = time.time()
    live = Live(srv)
    code, reason = live.closed_with(timeout=30)
    assert code == 4001 and "timeout" in reason
    assert time.time() - started >= 4


def test_expired_token_is_refused(start_server):
    server = start_server(["--rate-limit", "0", "--access-token-ttl", "1"])
    who = accounts(server, "rtEx").rtEx
    wait_expired(who.token)
    wait_until(lambda: who.get("/users/me").status_code == 401, what="the token expires",
               interval=0.1)
    r = refused_handshake(server, who.token)
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_EXPIRED"
    live = Live(server)
    live.send({"type": "auth", "token": who.token})
    assert live.wait_type("error")["data"]["code"] == "TOKEN_EXPIRED"
    assert live.closed_with()[0] == 4001


def test_logout_closes_live_connections_and_the_token_stops_working(srv):
    who = accounts(srv, "rtOut").rtOut
    live = Live(srv, who.token)
    who.ok("POST", "/auth/logout", {}, 204)
    err = live.wait_type("error", timeout=10)
    assert err["data"]["code"] == "TOKEN_INVALID"
    assert live.closed_with()[0] == 4001
    assert refused_handshake(srv, who.token).status_code == 401


def test_handshake_errors_are_json(srv):
    r = requests.get(srv.url(API + "/ws"), timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST"
    r = requests.get(srv.url(API + "/ws"), timeout=10, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "8",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert r.status_code == 400 and r.headers["Sec-WebSocket-Version"] == "13"
    r = requests.get(srv.url(API + "/ws"), timeout=10, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "short"})
    assert r.status_code == 400
    r = requests.get(srv.url(API + "/ws?since=abc"), timeout=10, headers=UPGRADE)
    assert r.status_code == 422
    r = requests.post(srv.url(API + "/ws"), timeout=10)
    assert r.status_code == 405


# ---- bad frames ----------------------------------------------------------

def test_bad_frames_get_error_frames_and_the_connection_lives_on(srv):
    who = accounts(srv, "rtBf").rtBf
    live = Live(srv, who.token)
    try:
        for text, code in (("not json", "BAD_REQUEST"), ("[1,2]", "BAD_REQUEST"),
                           ("{\"type\": 5}", "VALIDATION_ERROR"),
                           ("{\"no\": \"type\"}", "VALIDATION_ERROR"),
                           ("{\"type\": \"teleport\"}", "VALIDATION_ERROR"),
                           ("[" * 5000 + "]" * 5000, "BAD_REQUEST"),
                           ("{\"type\":\"subscribe\",\"channels\":\"ch\"}", "VALIDATION_ERROR"),
                           ("{\"type\":\"subscribe\",\"channels\":[]}", "VALIDATION_ERROR"),
                           ("{\"type\":\"typing_start\"}", "VALIDATION_ERROR")):
            live.ws.send(text)
            assert live.wait_type("error")["data"]["code"] == code, text
        live.send({"type": "ping"})
        live.wait_type("pong")
    finally:
        live.close()


def test_binary_frames_close_with_1003(srv):
    who = accounts(srv, "rtBin").rtBin
    live = Live(srv, who.token)
    live.ws.send_binary(b"\x00\x01\x02")
    assert live.closed_with()[0] == 1003


def test_oversized_frame_closes_with_1009(start_server):
    server = start_server(["--rate-limit", "0", "--ws-max-frame-bytes", "2048"])
    who = accounts(server, "rtBig").rtBig
    live = Live(server, who.token)
    live.send({"type": "ping", "pad": "x" * 1500})
    live.wait_type("pong")
    live.send({"type": "ping", "pad": "x" * 4000})
    assert live.closed_with()[0] == 1009
    # The default limit is 64 KiB.
    assert Live(server, who.token).ready["data"]["max_frame_bytes"] == 2048


def test_a_flood_of_frames_is_rate_limited(srv):
    who = accounts(srv, "rtFl").rtFl
    live = Live(srv, who.token)
    for i in range(60):
        live.send({"type": "ping", "ref": i})
    # The bucket holds 40 (the default 20 a second, bursts of twice that):
    # the first frame over it is answered with an error, the others dropped.
    live.wait(lambda f: f["type"] == "error" and f["data"]["code"] == "RATE_LIMIT_EXCEEDED",
              timeout=WAIT_TIMEOUT)
    frames = live.drain(0.5)  # answers still on their way are counted too
    pongs = [f for f in frames if f["type"] == "pong"]
    assert len(pongs) < 60
    # The bucket refills with time: a ping is answered again (a few pings
    # a second while waiting are well under the rate).
    refs = iter(range(1000))

    def answered():
        ref = "after-%d" % next(refs)
        live.send({"type": "ping", "ref": ref})
        try:
            return live.wait(lambda f: f["type"] == "pong" and
                             str(f["data"].get("ref")).startswith("after-"), timeout=0.3)
        except AssertionError:
            return None
    wait_until(answered, what="a ping answered after the flood")
    # A flood that goes on is closed.
    try:
        for i in range(2000):
            live.send({"type": "ping"})
    except (BrokenPipeError, ConnectionResetError, websocket.WebSocketConnectionClosedException):
        pass
    assert live.closed_with()[0] in (1008, None)


def test_abrupt_disconnects_mid_frame_harm_nothing(srv):
    who = accounts(srv, "rtAb").rtAb
    for cut in (1, 2, 5, 9):
        s = raw_handshake(srv.port, who.token)
        s.sendall(client_frame(1, json.dumps({"type": "ping"}).encode() * 3)[:cut])
        s.close()
    s = raw_handshake(srv.port, who.token)
    s.sendall(client_frame(1, b"{\"type\":\"ping\"}", fin=False))
    s.close()
    live = Live(srv, who.token)
    try:
        live.send({"type": "ping"})
        live.wait_type("pong")
    finally:
        live.close()
    assert requests.get(srv.url("/api/health"), timeout=5).status_code == 200


def test_fragmented_frames_are_joined(srv):
    who = accounts(srv, "rtFr").rtFr
    s = raw_handshake(srv.port, who.token)
    try:
        text = b"{\"type\":\"ping\",\"ref\":\"frag\"}"
        s.sendall(client_frame(1, text[:10], fin=False) + client_frame(0, text[10:]))
        s.settimeout(WAIT_TIMEOUT)
        data = b""
        while b"frag" not in data:
            piece = s.recv(65536)
            assert piece, data
            data += piece
        frames, _ = parse_server_frames(data)
        assert any(op == 1 and json.loads(p)["type"] == "pong" for op, p in frames)
    finally:
        s.close()


def test_pings_keep_the_connection_and_idle_clients_are_closed(start_server):
    server = start_server(["--rate-limit", "0", "--ws-ping-interval", "1",
                           "--ws-idle-timeout", "3"])
    who = accounts(server, "rtId").rtId
    # websocket-client answers pings with pongs: the connection stays.
    live = Live(server, who.token)
    live.drain(4.5)
    live.send({"type": "ping"})
    live.wait_type("pong")
    live.close()
    # A raw client that never answers is closed after the idle timeout.
    s = raw_handshake(server.port, who.token)
    s.settimeout(WAIT_TIMEOUT)
    data = b""
    deadline = time.time() + WAIT_TIMEOUT
    while time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        frames, _ = parse_server_frames(data)
        if any(op == 8 for op, _ in frames):
            break
    frames, _ = parse_server_frames(data)
    assert any(op == 9 for op, _ in frames), "pings were sent"
    close = [p for op, p in frames if op == 8]
    assert close and close[0][:2] == b"\x03\xe9", close  # 1001 going away
    s.close()


def test_shutdown_closes_websockets_with_1001(start_server):
    server = start_server(["--rate-limit", "0"])
    who = accounts(server, "rtSh").rtSh
    live = Live(server, who.token)
    server.proc.send_signal(15)
    assert live.closed_with()[0] == 1001
    assert server.proc.wait(20) == 0


def test_api_keys_connect_and_a_read_only_key_cannot_send(srv):
    u, ch = room(srv, "rtKa", "rtKb")
    keys = {}
    for perms in (["read"], ["read", "write"]):
        keys[len(perms)] = u.rtKb.ok("POST", "/auth/api-keys",
                                     {"name": "bot", "permissions": perms}, 201)["key"]
    ro = websocket.create_connection(ws_url(srv), header=["X-API-Key: " + keys[1]], timeout=10)
    rw = Live(srv, keys[2])  # an API key works as ?token= too
    try:
        assert json.loads(ro.recv())["type"] == "ready"
        m = post(u.rtKa, ch, "to the bots")
        rw.wait_type("message.created", id=m["id"])
        ro.send(json.dumps({"type": "send_message", "data": {"channel_id": ch["id"],
                                                              "content": "x"}}))
        frames = []
        while not [f for f in frames if f["type"] == "error"] and len(frames) < 10:
            frames.append(json.loads(ro.recv()))
        assert frames[-1]["data"]["code"] == "INSUFFICIENT_PERMISSIONS", frames
        rw.send({"type": "send_message", "data": {"channel_id": ch["id"], "content": "by bot"}})
        assert rw.wait_type("ack")["data"]["status"] == 201
    finally:
        ro.close()
        rw.close()
    # A key without read is refused at the handshake.
    wo = u.rtKb.ok("POST", "/auth/api-keys", {"name": "w", "permissions": ["write"]}, 201)["key"]
    r = refused_handshake(srv, wo)
    assert r.status_code == 403 and r.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"


def test_a_new_direct_channel_is_announced_to_the_other_member(srv):
    users = accounts(srv, "rtDa", "rtDb")
    live = Live(srv, users.rtDb.token)
    try:
        d = users.rtDa.ok("POST", "/channels/direct", {"user_ids": [users.rtDb.id]}, 201)
        f = live.wait_type("member.joined", channel_id=d["id"], user_id=users.rtDb.id)
        assert f["data"]["user"]["id"] == users.rtDb.id
        m = post(users.rtDa, d, "hi in private")
        live.wait_type("message.created", id=m["id"])
    finally:
        live.close()


def test_a_new_channel_is_announced_to_its_creators_other_connections(srv):
    users = accounts(srv, "rtCa", "rtCb")
    other_device = Live(srv, users.rtCa.token)
    try:
        ch = users.rtCa.ok("POST", "/channels", {"name": "made-elsewhere"}, 201)
        f = other_device.wait_type("member.joined", channel_id=ch["id"], user_id=users.rtCa.id)
        assert f["data"]["user"]["id"] == users.rtCa.id
        d = users.rtCa.ok("POST", "/channels/direct", {"user_ids": [users.rtCb.id]}, 201)
        other_device.wait_type("member.joined", channel_id=d["id"], user_id=users.rtCa.id)
        # A private channel is announced to its creator alone.
        priv = users.rtCa.ok("POST", "/channels", {"name": "made-hidden", "is_private": True},
                             201)
        other_device.wait_type("member.joined", channel_id=priv["id"], user_id=users.rtCa.id)
    finally:
        other_device.close()
    outsider = Live(srv, users.rtCb.token)
    try:
        post(users.rtCa, ch, "now it has a message")
        post(users.rtCa, priv, "and the hidden one")
        # rtCb is not a member of those two; it is of the direct channel, whose
        # message comes after theirs: events arrive in order, so anything of
        # the first two would be among the frames kept while waiting for it.
        dm = post(users.rtCa, d, "and so has the direct one")
        outsider.wait_type("message.created", id=dm["id"])
        leaked = [g for g in outsider.kept
                  if g.get("data", {}).get("channel_id") in (ch["id"], priv["id"])]
        assert not leaked, leaked
    finally:
        outsider.close()


def test_event_stream_takes_the_token_in_the_query(srv):
    u, ch = room(srv, "rtQa", "rtQb")
    r = requests.get(srv.url(API + "/events"), params={"token": u.rtQb.token}, stream=True,
                     timeout=10)
    try:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = r.iter_lines(decode_unicode=True)
        m = post(u.rtQa, ch, "to a browser")
        deadline = time.time() + WAIT_TIMEOUT
        seen = False
        for line in lines:
            if line.startswith("data: ") and m["id"] in line:
                seen = True
                break
            assert time.time() < deadline
        assert seen
    finally:
        r.close()


def test_paths_are_matched_as_the_router_matches_them(srv):
    who = accounts(srv, "rtSl").rtSl
    for path in ("/api/v1/ws/", "//api/v1//ws"):
        ws = websocket.create_connection("ws://127.0.0.1:%d%s?token=%s" % (srv.port, path,
                                                                          who.token), timeout=10)
        try:
            assert json.loads(ws.recv())["type"] == "ready"
        finally:
            ws.close()
    r = requests.get(srv.url("/api/v1/events/"), stream=True, timeout=10,
                     headers={"Authorization": "Bearer " + who.token})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    r.close()
    assert requests.get(srv.url("/api/v1/wss"), timeout=10).status_code == 404
