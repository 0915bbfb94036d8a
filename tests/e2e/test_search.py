"""Search end to end (docs/api.md, "Search"): GET and POST
/search/messages with q, channel, sender and date filters, results newest
first with a score, whose content is HTML-escaped with the matches wrapped
in <mark>, processing_time_ms and truncated; search of users and channels.
A query's cost is bounded: a one-character last word is a whole word, a
prefix expands to at most 32 words, the count stops at 1,000 (truncated).

Search never returns what the caller may not read (private channels of
others, channels left or banned from are still readable only if public); it
is case-insensitive in any script, takes the last word as a prefix, and
follows edits and deletes at once. One server and one set of accounts and
channels serve the module; each test searches for words only it posts."""
import itertools
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests

from conftest import assert_error, module_server
from client import API, Client, register, wait_until

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RESULT_FIELDS = {"message_id", "channel_id", "channel_name", "content", "sender", "created_at",
                 "score"}


# ---- helpers -----------------------------------------------------------------

class Searcher(Client):
    """A client that checks the shape of every search answer."""

    def search(self, **params):
        r = self.get("/search/messages", **params)
        assert r.status_code == 200, r.text
        out = r.json()
        assert set(out) == {"results", "total", "truncated", "processing_time_ms", "page", "pages",
                            "limit"}
        assert isinstance(out["truncated"], bool)
        assert isinstance(out["processing_time_ms"], (int, float))
        assert out["processing_time_ms"] >= 0
        for hit in out["results"]:
            assert set(hit) == RESULT_FIELDS
        return out

    def search_post(self, body, status=200):
        r = self.post("/search/messages", body)
        assert r.status_code == status, r.text
        return r.json()

    def hits(self, q, **params):
        return [h["message_id"] for h in self.search(q=q, **params)["results"]]


_names = itertools.count()


def post(who, channel, content, status=201, after=None):
    """Posts; with `after` (a message), once the clock has passed its created_at."""
    if after is not None:
        wait_until(lambda: iso(datetime.now(timezone.utc)) > after["created_at"],
                   what="the clock to pass %s" % after["created_at"], interval=0.001)
    return who.ok("POST", "/channels/%s/messages" % channel["id"], {"content": content}, status)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


# ---- the module's server, accounts and channels -------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "search")


@pytest.fixture(scope="module")
def w(srv):
    """admin; alice owns `pub` (public, bob joined) and `priv` (private,
    bob invited); carol is in neither; `pub2` is a second public channel."""
    class World:
        pass
    x = World()
    for name in ("admin", "alice", "bob", "carol"):
        setattr(x, name, register(srv, name, client=Searcher))
    x.pub = x.alice.ok("POST", "/channels", {"name": "Lobby-Search"}, 201)
    x.pub2 = x.bob.ok("POST", "/channels", {"name": "Other-Search"}, 201)
    x.priv = x.alice.ok("POST", "/channels", {"name": "Secret-Search", "is_private": True}, 201)
    x.bob.ok("POST", "/channels/%s/join" % x.pub["id"])
    x.alice.ok("POST", "/channels/%s/members" % x.priv["id"], {"user_id": x.bob.id}, 201)
    return x


# ---- results, ranking, highlighting ------------------------------------------------

def test_each_hit_names_its_own_channel_and_sender(w):
    # The answer looks each channel and sender up once: hits interleaved
    # over two channels and two senders must still carry their own.
    posted = {}
    for i, (who, ch) in enumerate([(w.alice, w.pub), (w.bob, w.pub2), (w.bob, w.pub),
                                   (w.alice, w.pub2), (w.alice, w.pub), (w.bob, w.pub2)]):
        m = post(who, ch, "tamarillo number %d" % i)
        posted[m["id"]] = (ch["name"], who.id)
    out = w.carol.search(q="tamarillo")
    assert out["total"] == 6
    got = {h["message_id"]: (h["channel_name"], h["sender"]["id"]) for h in out["results"]}
    assert got == posted
    assert {h["sender"]["username"] for h in out["results"]
            if h["sender"]["id"] == w.bob.id} == {"bob"}


def test_result_shape_newest_first_and_scores(w):
    once = post(w.alice, w.pub, "a single zebrafish swims")
    thrice = post(w.bob, w.pub, "zebrafish zebrafish zebrafish everywhere")
    twice = post(w.alice, w.pub2, "Zebrafish and more zebrafish")
    out = w.carol.search(q="zebrafish")
    assert out["total"] == 3 and out["truncated"] is False
    # Newest first; the score (occurrences, recency) is reported, not the order.
    assert [h["message_id"] for h in out["results"]] == [twice["id"], thrice["id"], once["id"]]
    scores = {h["message_id"]: h["score"] for h in out["results"]}
    assert scores[thrice["id"]] > scores[twice["id"]] > scores[once["id"]] > 0
    top = out["results"][1]
    assert top["channel_id"] == w.pub["id"] and top["channel_name"] == "Lobby-Search"
    assert top["sender"] == {"id": w.bob.id, "username": "bob", "display_name": "bob",
                             "avatar_url": None}
    assert top["created_at"] == thrice["created_at"] and TIME_RE.match(top["created_at"])
    assert top["content"] == "<mark>zebrafish</mark> <mark>zebrafish</mark> " \
                             "<mark>zebrafish</mark> everywhere"
    assert out["results"][0]["content"] == "<mark>Zebrafish</mark> and more <mark>zebrafish</mark>"
    # limit keeps the newest, total counts all.
    out = w.carol.search(q="zebrafish", limit=1)
    assert [h["message_id"] for h in out["results"]] == [twice["id"]] and out["total"] == 3
    # Every word must occur (AND).
    assert w.carol.hits("zebrafish single") == [once["id"]]
    assert w.carol.hits("zebrafish unicorn") == []


def test_content_is_html_escaped_around_the_marks(w):
    evil = '<script>alert("hi") & \'bye\'</script> needle <b>bold</b> a&b'
    m = post(w.alice, w.pub, evil)
    out = w.bob.search(q="needle")
    assert [h["message_id"] for h in out["results"]] == [m["id"]]
    assert out["results"][0]["content"] == (
        "&lt;script&gt;alert(&quot;hi&quot;) &amp; &#39;bye&#39;&lt;/script&gt; "
        "<mark>needle</mark> &lt;b&gt;bold&lt;/b&gt; a&amp;b")
    # The markup words themselves are words; they are marked, still escaped.
    out = w.bob.search(q="script")
    assert out["results"][0]["content"].startswith(
        "&lt;<mark>script</mark>&gt;alert(&quot;hi&quot;) &amp; &#39;bye&#39;&lt;/<mark>script"
        "</mark>&gt;")
    # Nothing but <mark> is ever markup.
    stripped = out["results"][0]["content"].replace("<mark>", "").replace("</mark>", "")
    assert "<" not in stripped and ">" not in stripped and '"' not in stripped
    # The message itself is stored as written.
    assert w.bob.ok("GET", "/messages/" + m["id"])["content"] == evil


def test_case_insensitive_in_any_script(w):
    m = post(w.alice, w.pub, "Ünïcödé Καλημέρα Привет, мир! CamelCaseWord")
    for q in ("ünïcödé", "ÜNÏCÖDÉ", "Ünïcödé", "καλημέρα", "ΚΑΛΗΜΈΡΑ", "привет", "ПРИВЕТ",
              "camelcaseword", "CAMELCASEWORD", "мир ünïcödé"):
        assert w.carol.hits(q) == [m["id"]], q
    out = w.carol.search(q="καλημέρα")
    assert out["results"][0]["content"] == \
        "Ünïcödé <mark>Καλημέρα</mark> Привет, мир! CamelCaseWord"
    out = w.carol.search(q="ПРИВЕТ мир")
    assert out["results"][0]["content"] == \
        "Ünïcödé Καλημέρα <mark>Привет</mark>, <mark>мир</mark>! CamelCaseWord"
    # Decomposed accents are still one word.
    d = post(w.alice, w.pub, "cafe\u0301 au lait")
    assert w.carol.hits("cafe\u0301") == [d["id"]]


def test_the_last_word_is_a_prefix(w):
    m = post(w.alice, w.pub, "the quintessential brownstone")
    assert w.carol.hits("quintess") == [m["id"]]
    assert w.carol.hits("brownstone quint") == [m["id"]]
    assert w.carol.hits("quintessential brownst") == [m["id"]]
    g = post(w.alice, w.pub, "Ωραία ημέρα, Добрый вечер")
    for q in ("ωραί", "ΩΡΑΊ", "ημέρα ωρ", "добр", "ДОБРЫЙ веч"):  # non-ASCII prefixes too
        assert w.carol.hits(q) == [g["id"]], q
    # Only the last word: the others must be whole.
    assert w.carol.hits("quint brownstone") == []
    out = w.carol.search(q="quintess")
    assert out["results"][0]["content"] == "the <mark>quintessential</mark> brownstone"


# ---- filters ----------------------------------------------------------------------

def test_channel_sender_and_date_filters(w):
    # Three distinct created_at milliseconds: each post waits for the clock
    # (the server's: the same machine) to pass the one before.
    a = post(w.alice, w.pub, "marmalade from alice")
    b = post(w.bob, w.pub, "marmalade from bob", after=a)
    c = post(w.bob, w.pub2, "marmalade elsewhere", after=b)
    assert a["created_at"] < b["created_at"] < c["created_at"]
    assert set(w.bob.hits("marmalade")) == {a["id"], b["id"], c["id"]}
    assert set(w.bob.hits("marmalade", channel_id=w.pub["id"])) == {a["id"], b["id"]}
    assert w.bob.hits("marmalade", channel_id=w.pub2["id"]) == [c["id"]]
    assert set(w.bob.hits("marmalade", sender_id=w.bob.id)) == {b["id"], c["id"]}
    assert w.bob.hits("marmalade", sender_id=w.bob.id, channel_id=w.pub["id"]) == [b["id"]]
    assert w.bob.hits("marmalade", sender_id="usr_nobody") == []

    created = datetime.strptime(b["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert set(w.bob.hits("marmalade", date_from=b["created_at"])) == {b["id"], c["id"]}
    assert set(w.bob.hits("marmalade", date_to=b["created_at"])) == {a["id"], b["id"]}
    assert w.bob.hits("marmalade", date_from=b["created_at"], date_to=b["created_at"]) == \
        [b["id"]]
    day = created.strftime("%Y-%m-%d")
    assert set(w.bob.hits("marmalade", date_from=day, date_to=day)) == \
        {a["id"], b["id"], c["id"]}
    assert w.bob.hits("marmalade", date_to=iso(created - timedelta(days=2))) == []
    assert w.bob.hits("marmalade", date_from=iso(created + timedelta(days=2))) == []
    assert w.bob.hits("marmalade", date_from="2001-01-01T00:00:00Z",
                      date_to="2999-01-01T00:00:00.000Z") != []

    # POST with the same fields in the body (q or query).
    body = {"q": "marmalade", "channel_id": w.pub["id"], "sender_id": w.alice.id,
            "date_from": a["created_at"], "limit": 10}
    out = w.bob.search_post(body)
    assert [h["message_id"] for h in out["results"]] == [a["id"]] and out["total"] == 1
    assert isinstance(out["processing_time_ms"], (int, float))
    out = w.bob.search_post({"query": "marmalade"})
    assert out["total"] == 3
    assert w.bob.search_post({"query": "marmalade", "limit": 2})["total"] == 3
    assert len(w.bob.search_post({"query": "marmalade", "limit": 2})["results"]) == 2


def test_bad_search_input(w):
    for params in ({}, {"q": ""}, {"q": "x" * 201}, {"q": "ok", "limit": 0},
                   {"q": "ok", "limit": 101}, {"q": "ok", "limit": "abc"},
                   {"q": "ok", "date_from": "yesterday"}, {"q": "ok", "date_to": "2026-13-45"},
                   {"q": "ok", "date_from": "2026-01-01T25:00:00Z"}):
        assert_error(w.bob.get("/search/messages", **params), 422, "VALIDATION_ERROR")
    for body in ({}, {"q": ""}, {"q": 5}, {"q": "ok", "limit": 0}, {"q": "ok", "limit": "9"},
                 {"q": "ok", "limit": 101}, {"q": "ok", "channel_id": 3},
                 {"q": "ok", "date_from": "soon"}, {"q": ["ok"]}):
        assert_error(w.bob.post("/search/messages", body), 422, "VALIDATION_ERROR")
    assert_error(w.bob.get("/search/messages", q="ok", channel_id="ch_nope"), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(w.bob.call("POST", "/search/messages", data="{", headers={
        "Content-Type": "application/json"}), 400, "BAD_REQUEST")
    assert_error(requests.get(w.bob.server.url(API + "/search/messages"), params={"q": "x"}),
                 401, "AUTHENTICATION_REQUIRED")
    # Only separators: a valid query that matches nothing.
    assert w.bob.search(q="!!! ...")["total"] == 0


# ---- what the caller may read ----------------------------------------------------

def test_private_messages_are_found_only_by_those_who_may_read(w):
    m = post(w.alice, w.priv, "the kumquat plan")
    assert w.alice.hits("kumquat") == [m["id"]]
    assert w.bob.hits("kumquat") == [m["id"]]
    assert w.admin.hits("kumquat") == []  # an admin outside the channel does not read it
    assert w.carol.search(q="kumquat") | {"processing_time_ms": 0} == \
        {"results": [], "total": 0, "truncated": False, "processing_time_ms": 0, "page": 1,
         "pages": 0, "limit": 50}
    assert_error(w.carol.get("/search/messages", q="kumquat", channel_id=w.priv["id"]), 404,
                 "RESOURCE_NOT_FOUND")
    assert_error(w.carol.post("/search/messages", {"q": "kumquat",
                                                   "channel_id": w.priv["id"]}), 404,
                 "RESOURCE_NOT_FOUND")
    assert w.carol.hits("kumquat", sender_id=w.alice.id) == []

    d = w.alice.ok("POST", "/channels/direct", {"user_ids": [w.bob.id]}, 201)
    dm = post(w.bob, d, "kumquat between us")
    assert set(w.alice.hits("kumquat")) == {m["id"], dm["id"]}
    assert w.carol.hits("kumquat") == []

    # Leaving a private channel ends finding its messages; rejoining brings them back.
    c = w.alice.ok("POST", "/channels", {"name": "Leavers-Search", "is_private": True}, 201)
    w.alice.ok("POST", "/channels/%s/members" % c["id"], {"user_id": w.carol.id}, 201)
    x = post(w.alice, c, "persimmon for members")
    assert w.carol.hits("persimmon") == [x["id"]]
    w.carol.ok("POST", "/channels/%s/leave" % c["id"], status=204)
    assert w.carol.hits("persimmon") == []
    w.alice.ok("POST", "/channels/%s/members" % c["id"], {"user_id": w.carol.id}, 201)
    assert w.carol.hits("persimmon") == [x["id"]]
    w.alice.ok("POST", "/channels/%s/ban-by-username/carol" % c["id"])
    assert w.carol.hits("persimmon") == []
    # A deleted channel's messages are found by nobody.
    w.alice.ok("DELETE", "/channels/" + c["id"], status=204)
    assert w.alice.hits("persimmon") == [] and w.admin.hits("persimmon") == []


def test_public_channels_are_searchable_by_everyone(w):
    m = post(w.bob, w.pub2, "an open rutabaga")
    assert w.carol.hits("rutabaga") == [m["id"]]  # never joined, may read
    w.bob.ok("POST", "/channels/%s/ban-by-username/carol" % w.pub2["id"])
    assert w.carol.hits("rutabaga") == [m["id"]]  # banned from posting, not from reading
    w.bob.ok("POST", "/channels/%s/unban-by-username/carol" % w.pub2["id"])
    # Made private, it is gone for non-members.
    w.bob.ok("PATCH", "/channels/" + w.pub2["id"], {"is_private": True})
    assert w.carol.hits("rutabaga") == []
    w.bob.ok("PATCH", "/channels/" + w.pub2["id"], {"is_private": False})
    assert w.carol.hits("rutabaga") == [m["id"]]


# ---- edits and deletes ------------------------------------------------------------

def test_edits_and_deletes_are_reflected_at_once(w):
    m = post(w.alice, w.pub, "original wording with gooseberry")
    assert w.bob.hits("gooseberry") == [m["id"]]
    w.alice.ok("PUT", "/messages/" + m["id"], {"content": "revised text with elderberry"})
    assert w.bob.hits("gooseberry") == []
    assert w.bob.hits("original") == []
    assert w.bob.hits("elderberry") == [m["id"]]
    out = w.bob.search(q="elderberry")
    assert out["results"][0]["content"] == "revised text with <mark>elderberry</mark>"
    keep = post(w.bob, w.pub, "elderberry stays")
    w.alice.ok("DELETE", "/messages/" + m["id"], status=204)
    assert w.bob.hits("elderberry") == [keep["id"]]
    assert w.bob.hits("revised") == []
    assert w.bob.search(q="elderberry")["total"] == 1


# ---- users and channels ------------------------------------------------------------

def test_search_users_and_channels(w):
    users = w.carol.ok("GET", "/search/users?q=ali")
    assert [x["username"] for x in users["users"]] == ["alice"] and users["total"] == 1
    assert "email" not in users["users"][0]
    assert w.carol.ok("GET", "/search/users?q=ALICE")["total"] == 1
    assert w.carol.ok("GET", "/search/users?q=zzzz") == {"users": [], "total": 0}

    found = w.carol.ok("GET", "/search/channels?q=search")
    names = {c["name"] for c in found["channels"]}
    assert {"Lobby-Search", "Other-Search"} <= names
    assert "Secret-Search" not in names
    assert found["total"] == len(found["channels"])
    assert "Secret-Search" in {c["name"] for c in
                               w.bob.ok("GET", "/search/channels?q=SECRET")["channels"]}
    assert w.carol.ok("GET", "/search/channels?q=secret") == {"channels": [], "total": 0}
    for path in ("/search/users?q=" + "x" * 101, "/search/channels?q=" + "x" * 101,
                 "/search/users?limit=0", "/search/channels?limit=101"):
        assert_error(w.carol.get(path), 422, "VALIDATION_ERROR")


def test_highlighting_agrees_with_matching_for_long_queries_and_long_words(w):
    # A query of 20 words: every one is required, the last is a prefix, and
    # each is marked.
    words = ["w%02dq" % i for i in range(19)]
    text = " ".join(words) + " finalword"
    m = post(w.alice, w.pub, text)
    out = w.carol.search(q=" ".join(words) + " finalw")
    assert [h["message_id"] for h in out["results"]] == [m["id"]]
    assert out["results"][0]["content"] == " ".join("<mark>%s</mark>" % x for x in words) + \
        " <mark>finalword</mark>"
    # Words are indexed by their first 64 bytes: a query word that long
    # matches every word that begins with it, and is marked in each.
    long_a, long_b = "x" * 64 + "alpha", "x" * 64 + "beta"
    n = post(w.alice, w.pub, "%s and %s" % (long_a, long_b))
    out = w.carol.search(q=long_a + " and")
    assert [h["message_id"] for h in out["results"]] == [n["id"]]
    assert out["results"][0]["content"] == "<mark>%s</mark> <mark>and</mark> <mark>%s</mark>" \
        % (long_a, long_b)
    out = w.carol.search(q="x" * 70)  # a long prefix: its first 64 bytes
    assert out["results"][0]["content"] == "<mark>%s</mark> and <mark>%s</mark>" \
        % (long_a, long_b)


# ---- bounded cost ---------------------------------------------------------------

def test_a_one_character_word_is_a_whole_word_and_highlighted_so(w):
    whole = post(w.alice, w.pub, "q marks the spot")
    post(w.alice, w.pub, "quokka quagga quetzal")  # words starting with q: not matched
    out = w.carol.search(q="Q")
    assert [h["message_id"] for h in out["results"]] == [whole["id"]]
    assert out["results"][0]["content"] == "<mark>q</mark> marks the spot"
    assert out["truncated"] is False
    # Two characters are a prefix again.
    assert len(w.carol.hits("qu")) >= 1


def test_a_prefix_expands_to_at_most_32_words_and_says_so(w):
    words = ["vbz%02d" % i for i in range(40)]
    m = post(w.alice, w.pub, " ".join(words))
    out = w.carol.search(q="vbz")
    # 32 of the 40 words were searched (all in the one message): found, and
    # the answer says words were left out.
    assert [h["message_id"] for h in out["results"]] == [m["id"]]
    assert out["truncated"] is True and out["total"] == 1
    assert w.carol.search(q="vbz07")["truncated"] is False


def test_the_count_stops_at_1000_newest_first_truncated(w):
    """1,001 messages with the same word: the newest 100 in order, the total
    counted to its bound of 1,000 and truncated; a rarer word beside it is
    found exactly."""
    from concurrent.futures import ThreadPoolExecutor
    ch = w.alice.ok("POST", "/channels", {"name": "Bulk-Search"}, 201)
    def one(i):
        return post(w.alice, ch, "ubiquitous %s" % ("scarce" if i % 100 == 0 else "filler"))
    with ThreadPoolExecutor(8) as pool:
        posted = list(pool.map(one, range(1001)))
    newest = sorted((m["id"] for m in posted), reverse=True)
    out = w.bob.search(q="ubiquitous", limit=100)
    assert out["truncated"] is True and out["total"] == 1000
    assert [h["message_id"] for h in out["results"]] == newest[:100]
    # The same with a short prefix of it.
    out = w.bob.search(q="ub", limit=100, channel_id=ch["id"])
    assert out["truncated"] is True and out["total"] == 1000
    assert [h["message_id"] for h in out["results"]] == newest[:100]
    scarce = sorted((m["id"] for m in posted if "scarce" in m["content"]), reverse=True)
    out = w.bob.search(q="ubiquitous scarce")
    assert out["truncated"] is False and out["total"] == len(scarce) == 11
    assert [h["message_id"] for h in out["results"]] == scarce
    # Bad queries are refused as before.
    for params in ({"q": ""}, {"q": "x" * 201}, {"q": "ub", "limit": 0}):
        assert_error(w.bob.get("/search/messages", **params), 422, "VALIDATION_ERROR")


@pytest.fixture(scope="module")
def small_budget(tmp_path_factory):
    yield from module_server(tmp_path_factory, "search-budget",
                             args=("--rate-limit", "0", "--search-work-max", "1000"))


def test_the_work_bound_is_the_operators(small_budget, w):
    """--search-work-max 1000: a filter nothing passes walks 1,000 postings
    and answers truncated; the module's server (the default, 50,000) walks
    the same 600 to their end and answers exactly."""
    from concurrent.futures import ThreadPoolExecutor
    small = register(small_budget, "budget", client=Searcher)
    for who, srv_name in ((small, "small"), (w.alice, "default")):
        ch = who.ok("POST", "/channels", {"name": "Budget-%s" % srv_name}, 201)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: post(who, ch, "plentiful item %d" % i), range(600)))
    out = small.search(q="plentiful", sender_id="usr_nobody")
    assert out["total"] == 0 and out["truncated"] is True
    # Counting the 600 matches costs more than 1,000 (a posting and a step
    # each): the newest are still found first, the total is a lower bound.
    out = small.search(q="plentiful", limit=5)
    assert out["truncated"] is True and 5 <= out["total"] < 600
    assert [h["content"] for h in out["results"]][0].startswith("<mark>plentiful</mark> item")
    out = w.alice.search(q="plentiful", sender_id="usr_nobody")
    assert out["total"] == 0 and out["truncated"] is False
    out = w.alice.search(q="plentiful", limit=5)
    assert out["total"] == 600 and out["truncated"] is False
