"""P14's corpus and queries (scripts/bench/suite.py --only search-fts), the
same for Parley and for SQLite FTS5, deterministic: every run of a given
size draws the same messages and the same 200 queries.

Vocabulary: VOCAB_SIZE words ranked by frequency, Zipf-like (the word of
rank r drawn with weight 1 / (r + 2.7) ** ZIPF_S): first a few hundred
chat words, then generated ones (two to four consonant-vowel syllables,
from letters that never make a `q` or an `x`), so the tail holds words
that occur in a few dozen messages of a million. Messages: 5-25 words
each, over CHANNELS channels and SENDERS senders.

Queries: 1-3 words of five classes, as Parley reads them and as FTS5 does,
meaning the same thing: every word must occur (AND), and the last one is a
prefix when it has 2 characters or more (Parley's rule, docs/api.md
"Search"; `"wor"*` in FTS5). Classes: frequent words (the top ranks), mid
(ranks 300-3,000), rare (the tail, alone or beside a frequent word),
absent (words with a `q` and an `x`: in no message) and prefixes (a word's
first 2-4 letters after 0-2 whole words).
"""
import random

VOCAB_SIZE = 40000
ZIPF_S = 1.07
CHANNELS = 8
SENDERS = 16
SEED = 14

CHAT_WORDS = """
the i you to a and it is that of in for me on this we have be so just but not with my
are do can at was what no yes ok all if get will like they he up know now out go one
there about how your good think when see time would or lol an then why going here
need want some more thanks right yeah hey from make sure today got did been back
work still as she really let also any way day new people did well much could which
them tomorrow morning night week meeting call later soon please sorry thing done
look something maybe last first great nice cool fine tonight check should thought
anyone everyone team project deploy build test release fix bug issue branch merge
review code server client api docs update change version error log config file
link share send message channel chat email phone lunch coffee dinner weekend home
office remote friday monday tuesday wednesday thursday saturday sunday next hour
minute ago early late before after again always never often already yet ever
big small long short old young happy sad busy free ready wait stop start end open
close run move help try ask tell show read write find keep leave bring give take
put play pay buy sell meet talk speak listen hear watch learn teach plan decide
agree idea question answer problem reason result point side part place case fact
group company number world area money story job word business system program
data user account password login access admin support customer order price cost
""".split()

CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiouy"


def _syllable(rng):
    return rng.choice(CONSONANTS) + rng.choice(VOWELS)


def vocabulary(seed=SEED):
    """The VOCAB_SIZE words, most frequent first."""
    rng = random.Random(seed)
    words, seen = [], set()
    for w in CHAT_WORDS:
        if w not in seen:
            seen.add(w)
            words.append(w)
    while len(words) < VOCAB_SIZE:
        w = "".join(_syllable(rng) for _ in range(rng.randint(2, 4)))
        if rng.random() < 0.3:
            w += rng.choice(CONSONANTS)
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def cumulative_weights(n):
    total, out = 0.0, []
    for r in range(n):
        total += 1.0 / (r + 2.7) ** ZIPF_S
        out.append(total)
    return out


def messages(n, seed=SEED, vocab=None):
    """n messages as (channel index, sender index, text), in posting order,
    drawn in chunks so that a million take seconds, not minutes."""
    vocab = vocab or vocabulary(seed)
    cum = cumulative_weights(len(vocab))
    rng = random.Random(seed * 7919 + 1)
    chunk = 10000
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        lengths = [rng.randint(5, 25) for _ in range(count)]
        drawn = rng.choices(vocab, cum_weights=cum, k=sum(lengths))
        at = 0
        for i, length in enumerate(lengths):
            text = " ".join(drawn[at:at + length])
            at += length
            # One sender posts runs of messages (a batch is posted as its
            # sender); the channels change from message to message.
            yield rng.randrange(CHANNELS), ((start + i) // 50) % SENDERS, text


def _absent(rng):
    return "q" + _syllable(rng) + "x" + _syllable(rng)


def queries(seed=SEED, vocab=None):
    """The 200 queries as (class, words): the last word is a prefix when it
    has 2 characters or more."""
    vocab = vocab or vocabulary(seed)
    rng = random.Random(seed * 104729 + 3)
    frequent = vocab[:60]
    common = vocab[:300]
    mid = vocab[300:3000]
    rare = vocab[10000:]
    out = []
    for _ in range(40):
        out.append(("frequent", rng.sample(frequent, rng.randint(1, 3))))
    for _ in range(30):
        out.append(("mid", rng.sample(mid, rng.randint(1, 2))))
    for i in range(40):
        words = [rng.choice(rare)]
        if i % 2:
            words.insert(0, rng.choice(frequent))
        out.append(("rare", words))
    for i in range(30):
        words = [_absent(rng)]
        if i % 2:
            words.insert(0, rng.choice(frequent))
        out.append(("absent", words))
    for _ in range(60):
        word = rng.choice([w for w in vocab[:5000] if len(w) >= 2])
        prefix = word[:rng.randint(2, min(4, len(word)))]
        out.append(("prefix", rng.sample(common, rng.randint(0, 2)) + [prefix]))
    rng.shuffle(out)
    return out


def parley_text(words):
    return " ".join(words)


def fts5_text(words):
    """The FTS5 MATCH expression meaning what Parley reads in the same
    words: an implicit AND of quoted terms, the last `"..."*` when it has
    2 characters or more."""
    terms = ['"%s"' % w for w in words]
    if len(words[-1]) >= 2:
        terms[-1] += "*"
    return " ".join(terms)
