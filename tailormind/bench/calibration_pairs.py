r"""Calibration pairs: two texts of which one is better *by construction*, built from the
workspace's own posts and catalogue (:mod:`tailormind.bench.calibrate` scores them).

**Units** — the texts that play "a post": every bundled post (``generations/`` and
``bench/methods/*/generations/``) of a user with a test item, in a seeded order; then, so that
there are always enough, catalogue items as posts (:func:`~tailormind.bench.posts.item_as_post`:
title, text, tags — how the bench shows the ground truth), round-robin over the users in a seeded
order: each user's test item, then their history from the most recent item back; last, the
items nobody touched, lent to the users in turn (never used as anyone's own text for coherence).

=============  =====================================================  ===================
dimension      worse member                                           better member
=============  =====================================================  ===================
hallucination  the text with one fact — a 4-digit year, else a        the text as it is
               capitalised name (several capitalised words, or one
               not starting a sentence), else a 1-3 digit number —
               replaced at every occurrence by a fact of the same
               kind from another catalogue item that neither the
               text nor its sources contain; facts the sources
               support are swapped first
aesthetic      a degraded copy: sentences shuffled, a phrase (up to   the text as it is
               5 words of a line) said three times in a row, or every
               punctuation mark stripped; ⌈n/3⌉ pairs of each
novelty        the catalogue text of the item nearest to the text by  the text
               embedding (its own item left out): a near-verbatim
               copy of an existing item
coherence      another user's text of the same origin (their post;    the user's own text
               for a catalogue unit an item of another user's
               history this user never touched)
=============  =====================================================  ===================

Every pair carries the context its scorers use, the same for both members: the user (history,
reference), ``left_out`` — the item a catalogue text *is*, left out of that user's reference,
history and catalogue (else it would be scored against itself) — and the source items the
hallucination check grounds in (a post's exemplars and recent history; an item: itself).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.users import BenchUser
from tailormind.core.atomic import is_hidden, read_json_record
from tailormind.core.vectors import unit_rows
from tailormind.generation.bundle import POST_JSON
from tailormind.generation.bundle_scan import post_files
from tailormind.generation.post_record import parse_post_record
from tailormind.models.roles import Embedder
from tailormind.profiling.evidence import ItemFeatures

DIMENSIONS = ("coherence", "novelty", "aesthetic", "hallucination")
FACT_KINDS = ("year", "name", "number")
DEGRADATIONS = ("shuffled", "repeated", "unpunctuated")
#: The coherence builder draws "another user's text" from this many units (times n).
COHERENCE_POOL = 4

_YEAR = re.compile(r"(?<![\w.])(?:1[89]\d\d|20\d\d)(?!\w|\.\d)")
_NAME = re.compile(r"(?<![\w#@])[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*")
_NUMBER = re.compile(r"(?<![\w.#])\d{1,3}(?!\w|\.\d)")
_BOUNDARY = {"year": (r"(?<![\w.])", r"(?!\w|\.\d)"), "name": (r"(?<![\w#@])", r"(?!\w)"),
             "number": (r"(?<![\w.#])", r"(?!\w|\.\d)")}
_SEPARATOR = re.compile(r"(\s*\n\s*|(?<=[.!?。！？])[ \t]+)")
_TERMINAL = tuple(".!?。！？")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Unit:
    """One text playing "a post": a bundled post, or a catalogue item's text."""

    user_id: str
    text: str
    sources: tuple[str, ...]  # item ids it was made from (a catalogue item: itself)
    item_id: str | None = None  # the catalogue item this text is
    origin: str = "post"  # "post" | "catalogue"
    own: bool = True  # the user's own post or item (False: an item nobody touched, lent)


@dataclass
class Pair:
    """``better`` beats ``worse`` on ``dimension`` by construction; the context is shared."""

    dimension: str
    kind: str  # year/name/number, shuffled/repeated/unpunctuated, nearest_copy, other_user
    user_id: str
    better: str
    worse: str
    origin: str
    left_out: str | None = None
    sources: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


# -- text transforms -------------------------------------------------------------------------

def split_sentences(text: str) -> tuple[list[str], list[str]]:
    """``(sentences, separators)`` of the stripped text: a sentence ends at a line break or at
    whitespace after ``.!?``; ``separators[i]`` follows ``sentences[i]``."""
    pieces = _SEPARATOR.split(text.strip())
    return pieces[0::2], pieces[1::2]


def shuffle_sentences(text: str, rng: np.random.Generator) -> str | None:
    """The same sentences in another (seeded) order; None with fewer than 2 distinct ones. A
    sentence without closing punctuation is followed by a line break, so it stays one sentence."""
    sentences, separators = split_sentences(text)
    if len(set(sentences)) < 2 or not all(sentences):
        return None
    order = [sentences[i] for i in rng.permutation(len(sentences))]
    if order == sentences:
        order = sentences[1:] + sentences[:1]  # a rotation differs unless all are equal
    joins = [sep if sentence.endswith(_TERMINAL) else "\n"
             for sentence, sep in zip(order, separators, strict=False)]
    return "".join(s + j for s, j in zip(order, [*joins, ""], strict=True))


def repeat_phrase(text: str, rng: np.random.Generator, words: int = 5) -> str | None:
    """The text with one phrase (up to ``words`` consecutive words of one line, seeded line
    and position) said three times in a row; None without a line of 3 words."""
    lines, offset = [], 0
    for line in text.split("\n"):
        found = [(offset + m.start(), offset + m.end()) for m in _WORD.finditer(line)]
        if len(found) >= 3:
            lines.append(found)
        offset += len(line) + 1
    if not lines:
        return None
    found = lines[int(rng.integers(len(lines)))]
    k = min(words, len(found))
    start = int(rng.integers(0, len(found) - k + 1))
    begin, end = found[start][0], found[start + k - 1][1]
    phrase = text[begin:end]
    return f"{text[:end]} {phrase} {phrase}{text[end:]}"


def strip_punctuation(text: str, rng: np.random.Generator | None = None) -> str | None:
    """The text without any punctuation mark (Unicode category P*), spaces collapsed; None when
    it has none."""
    kept = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    if kept == text:
        return None
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in kept.split("\n"))


DEGRADE: dict[str, Callable[[str, np.random.Generator], str | None]] = {
    "shuffled": shuffle_sentences, "repeated": repeat_phrase, "unpunctuated": strip_punctuation}


def _starts_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t")
    return not before or before.endswith(("\n", *_TERMINAL, '"', "“", "«"))


def facts(text: str) -> list[tuple[str, str]]:
    """``(kind, value)`` of each distinct fact in ``text``: years, names, numbers (module doc)."""
    found = [("year", m.group(0)) for m in _YEAR.finditer(text)]
    found += [("name", m.group(0)) for m in _NAME.finditer(text)
              if " " in m.group(0) or "-" in m.group(0) or not _starts_sentence(text, m.start())]
    found += [("number", m.group(0)) for m in _NUMBER.finditer(text)]
    return list(dict.fromkeys(found))


def replace_fact(text: str, kind: str, value: str, replacement: str) -> str:
    """Every occurrence of ``value`` (as a whole fact of ``kind``) replaced."""
    before, after = _BOUNDARY[kind]
    return re.sub(before + re.escape(value) + after, lambda _: replacement, text)


@dataclass
class FactPool:
    """Facts of every catalogue item, by kind: where a swap's replacement comes from."""

    by_kind: dict[str, list[tuple[str, str]]]  # kind -> [(item_id, value)]

    @classmethod
    def from_texts(cls, texts: dict[str, str]) -> FactPool:
        by_kind: dict[str, list[tuple[str, str]]] = {k: [] for k in FACT_KINDS}
        for item_id, text in texts.items():
            for kind, value in facts(text):
                by_kind[kind].append((item_id, value))
        return cls(by_kind)

    def draw(self, kind: str, rng: np.random.Generator, ok: Callable[[str, str], bool],
             tries: int = 64) -> str | None:
        """A seeded random value of ``kind`` with ``ok(item_id, value)``; None if none found."""
        found = self.by_kind.get(kind) or []
        for index in (rng.integers(0, len(found), size=tries) if found else []):
            item_id, value = found[int(index)]
            if ok(item_id, value):
                return value
        return None


def swap_fact(text: str, sources: str, pool: FactPool, rng: np.random.Generator,
              avoid_items: Iterable[str] = ()) -> tuple[str, dict[str, Any]] | None:
    """``text`` with one fact swapped (see the module doc) and what was swapped; None when no
    fact of it can be swapped."""
    lowered, grounded = text.lower(), sources.lower()
    avoid = set(avoid_items)
    ranked = sorted(facts(text), key=lambda f: (f[1].lower() not in grounded,
                                                FACT_KINDS.index(f[0])))
    for kind, value in ranked:
        replacement = pool.draw(kind, rng, lambda item, v: item not in avoid and
                                v.lower() not in lowered and v.lower() not in grounded)
        if replacement is None:
            continue
        swapped = replace_fact(text, kind, value, replacement)
        if swapped != text:
            return swapped, {"fact": kind, "original": value, "replacement": replacement,
                             "supported": value.lower() in grounded}
    return None


# -- units -----------------------------------------------------------------------------------

def bundle_files(root: Path) -> list[Path]:
    """``post.json`` of every live bundle (never a staging or ``.old`` directory): the
    product's (``generations/``) and the bench methods'."""
    found = post_files(root)
    methods = root / BENCH_DIR / "methods"
    if methods.is_dir():
        for method in methods.iterdir():
            if method.is_dir() and not is_hidden(method.name):
                found += post_files(method)
    return sorted(found)


def post_units(root: Path, users: dict[str, BenchUser], history_items: int,
               seed: int) -> tuple[list[Unit], dict[str, str] | None]:
    """Every readable bundled post of a known user (distinct texts per user), in a seeded order,
    and the text model that wrote the first one (its provenance), if any."""
    units: list[Unit] = []
    writer: dict[str, str] | None = None
    for path in bundle_files(root):
        data = read_json_record(path, POST_JSON)  # a corrupt one is an error, named
        if data is None:
            continue
        record = parse_post_record(data, str(path))
        user = users.get(record.user_id)
        text = record.reader_text()
        if user is None or not text.strip():
            continue
        writer = writer or record.models.get("text")
        exemplars = [e.item_id for e in record.exemplars]
        sources = tuple(dict.fromkeys([*exemplars, *user.history[::-1][:history_items]]))
        units.append(Unit(user.user_id, text, sources))
    units = list({(u.user_id, u.text): u for u in units}.values())
    order = np.random.default_rng(seed).permutation(len(units))
    return [units[i] for i in order], writer


def catalogue_units(users: list[BenchUser], texts: dict[str, str], seed: int) -> Iterator[Unit]:
    """Catalogue items as posts, round-robin over the users in a seeded order: each user's test
    item, then the history from the most recent back (module doc); then the items nobody
    touched, in a seeded order, lent to the users in turn (``own=False``)."""
    if not users:
        return
    rng = np.random.default_rng(seed)
    order = [users[i] for i in rng.permutation(len(users))]
    lists = [[u.target, *u.history[::-1]] for u in order]
    for rank in range(max(map(len, lists), default=0)):
        for user, items in zip(order, lists, strict=True):
            if rank < len(items) and items[rank] in texts:
                item = items[rank]
                yield Unit(user.user_id, texts[item], (item,), item, "catalogue")
    touched = {i for items in lists for i in items}
    rest = [i for i in texts if i not in touched]
    for n, index in enumerate(rng.permutation(len(rest))):
        item = rest[int(index)]
        yield Unit(order[n % len(order)].user_id, texts[item], (item,), item, "catalogue",
                   own=False)


# -- pair builders ---------------------------------------------------------------------------

def hallucination_pairs(units: Iterable[Unit], n: int, pool: FactPool,
                        source_text: Callable[[tuple[str, ...]], str],
                        rng: np.random.Generator) -> list[Pair]:
    """Up to ``n`` pairs (text, text with one fact swapped); distinct texts."""
    pairs: list[Pair] = []
    seen: set[str] = set()
    for unit in units:
        if len(pairs) >= n:
            break
        if unit.text in seen:
            continue
        swapped = swap_fact(unit.text, source_text(unit.sources), pool, rng, unit.sources)
        if swapped is None:
            continue
        seen.add(unit.text)
        pairs.append(Pair("hallucination", swapped[1]["fact"], unit.user_id, unit.text,
                          swapped[0], unit.origin, unit.item_id, unit.sources, swapped[1]))
    return pairs


def aesthetic_pairs(units: Iterable[Unit], n: int, rng: np.random.Generator) -> list[Pair]:
    """⌈n/3⌉ pairs (text, degraded copy) per degradation; each text degraded once."""
    quota = math.ceil(n / len(DEGRADATIONS))
    counts = dict.fromkeys(DEGRADATIONS, 0)
    pairs: list[Pair] = []
    seen: set[str] = set()
    for unit in units:
        if min(counts.values()) >= quota:
            break
        if unit.text in seen:
            continue
        for kind in sorted(DEGRADATIONS, key=lambda k: counts[k]):
            worse = DEGRADE[kind](unit.text, rng) if counts[kind] < quota else None
            if worse is None or worse.strip() == unit.text.strip():
                continue
            seen.add(unit.text)
            counts[kind] += 1
            pairs.append(Pair("aesthetic", kind, unit.user_id, unit.text, worse, unit.origin,
                              unit.item_id, unit.sources))
            break
    return pairs


def novelty_pairs(units: Iterable[Unit], n: int, embed: Embedder, features: ItemFeatures,
                  texts: dict[str, str], batch: int = 32) -> list[Pair]:
    """Up to ``n`` pairs (text, catalogue text of its nearest item, its own item left out)."""
    catalogue = unit_rows(features.matrix)
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    iterator = iter(units)
    while len(pairs) < n:
        chunk = [u for u in itertools.islice(iterator, batch) if (u.user_id, u.text) not in seen]
        if not chunk:
            return pairs
        sims = unit_rows(embed.embed([u.text for u in chunk])) @ catalogue.T
        for unit, row in zip(chunk, sims, strict=True):
            if unit.item_id in features.index:
                row[features.index[unit.item_id]] = -np.inf
            nearest = features.ids[int(np.argmax(row))]
            copy = texts.get(nearest) or features.describe(nearest)
            if len(pairs) >= n or copy.strip() == unit.text.strip():
                continue
            seen.add((unit.user_id, unit.text))
            pairs.append(Pair("novelty", "nearest_copy", unit.user_id, unit.text, copy,
                              unit.origin, unit.item_id, unit.sources,
                              {"nearest_item": nearest, "cosine": round(float(row.max()), 4)}))
    return pairs


def coherence_pairs(units: Iterable[Unit], n: int, users: dict[str, BenchUser],
                    rng: np.random.Generator) -> list[Pair]:
    """Up to ``n`` pairs (the user's text, another user's text of the same origin)."""
    pool = [u for u in itertools.islice(units, max(COHERENCE_POOL * n, 64)) if u.own]
    pairs: list[Pair] = []
    for unit in pool:
        if len(pairs) >= n:
            break
        user = users[unit.user_id]
        touched = {*user.history, user.target}
        others = [o for o in pool if o.origin == unit.origin and o.user_id != unit.user_id
                  and o.text != unit.text and (o.item_id is None or o.item_id not in touched)]
        if not others:
            continue
        other = others[int(rng.integers(len(others)))]
        pairs.append(Pair("coherence", "other_user", unit.user_id, unit.text, other.text,
                          unit.origin, unit.item_id, unit.sources,
                          {"other_user": other.user_id, "other_item": other.item_id}))
    return pairs
