"""Synthetic interaction logs with power-law popularity and tag structure, to test scale.

Generative story (all draws from one seeded ``numpy.random.Generator``):

- tag popularity  p(t) ∝ (rank_t)^-1.1;  each item carries 1 + Poisson(1.5) tags (at most 6)
  drawn from p(t);  item popularity  q(i) ∝ (rank_i)^-1.0 over a random permutation;
- each user has 1-3 favourite tags drawn from p(t) and n_u ~ max(3, LogNormal) interactions with
  mean ``per_user``; each interaction comes, with probability ``affinity`` (0.6), from the items of a
  favourite tag weighted by q, otherwise from q over the whole catalogue; repeats are dropped;
- timestamps advance per user by Exponential(1 day) steps from a random start in 2020-2023.

TailorBench-Rednote scale is ``users=12131, items=94997, tags=8531, per_user=50``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tailormind.data.records import ImportBundle, interactions_table, items_table, users_table
from tailormind.errors import DataError

_EPOCH_2020 = 1_577_836_800
_FOUR_YEARS = 4 * 365 * 86_400


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def _top_up(
    user_of: np.ndarray, drawn: np.ndarray, minimum: np.ndarray, items: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Give every user at least ``minimum[u]`` distinct items (uniform draws; rarely needed)."""
    have = np.bincount(user_of, minlength=len(minimum))
    extra_users: list[int] = []
    extra_items: list[int] = []
    for user in np.flatnonzero(have < minimum):
        owned = set(drawn[user_of == user].tolist())
        while len(owned) < minimum[user]:
            item = int(rng.integers(0, items))
            if item not in owned:
                owned.add(item)
                extra_users.append(int(user))
                extra_items.append(item)
    if not extra_users:
        return user_of, drawn
    user_of = np.concatenate([user_of, extra_users])
    drawn = np.concatenate([drawn, extra_items])
    order = np.argsort(user_of, kind="stable")
    return user_of[order], drawn[order]


def _check_sizes(users: int, items: int, tags: int, per_user: float) -> None:
    """Raise :class:`DataError` for sizes that cannot make a leave-two-out data set."""
    if users < 1 or items < 1 or tags < 0:
        raise DataError("synthetic: --users and --items must be >= 1 and --tags >= 0")
    if per_user < 3:
        raise DataError("synthetic: --per-user must be >= 3 (leave-two-out needs 3 per user)")
    if per_user > items / 2:
        raise DataError(f"synthetic: --per-user {per_user} is more than half the {items} items")


def _item_tags(items: int, tags: int, tag_p: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """Each item's distinct tags: 1 + Poisson(1.5) (at most 6) draws from ``tag_p``."""
    n_item_tags = np.minimum(1 + rng.poisson(1.5, size=items), 6) if tags else np.zeros(items, int)
    raw_tags = rng.choice(tags, size=(items, 6), p=tag_p) if tags else np.zeros((items, 6), int)
    return [list(dict.fromkeys(row[:k].tolist())) for row, k in zip(raw_tags, n_item_tags, strict=True)]


@dataclass(frozen=True)
class _TagSegments:
    """Tag -> items as CSR segments (``items[start[t]:start[t] + counts[t]]``), with the
    popularity-weighted cumulative sum ``cum`` over ``items`` and each segment's offset into it
    (``cum_before``) and total weight (``total``; None without tags)."""

    items: np.ndarray
    counts: np.ndarray
    start: np.ndarray
    cum: np.ndarray
    cum_before: np.ndarray
    total: np.ndarray | None


def _tag_segments(item_tag_lists: list[list[int]], item_pop: np.ndarray, items: int, tags: int
                  ) -> _TagSegments:
    """The CSR of tag -> items for drawing a favourite tag's items by popularity."""
    pairs_tag = np.fromiter((t for row in item_tag_lists for t in row), dtype=np.int64)
    pairs_item = np.repeat(np.arange(items), [len(r) for r in item_tag_lists])
    order = np.argsort(pairs_tag, kind="stable")
    seg_items = pairs_item[order]
    seg_counts = np.bincount(pairs_tag, minlength=tags)
    seg_start = np.concatenate([[0], np.cumsum(seg_counts)[:-1]]) if tags else np.zeros(0, int)
    cum = np.cumsum(item_pop[seg_items])
    cum_before = np.concatenate([[0.0], cum])[seg_start] if tags else np.zeros(0)
    seg_total = np.concatenate([[0.0], cum])[seg_start + seg_counts] - cum_before if tags else None
    return _TagSegments(seg_items, seg_counts, seg_start, cum, cum_before, seg_total)


def _draw_items(users: int, items: int, tags: int, per_user: float, affinity: float,
                tag_p: np.ndarray, item_pop: np.ndarray, segments: _TagSegments,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Oversampled draws ``(user_of, drawn)`` (users in order, repeats not yet dropped) and each
    user's wanted number of distinct items ``counts``."""
    mu = np.log(per_user) - 0.5
    counts = np.clip(np.rint(rng.lognormal(mu, 1.0, size=users)), 3, items // 2).astype(np.int64)
    n_fav = rng.integers(1, 4, size=users)
    favourites = rng.choice(max(tags, 1), size=(users, 3), p=tag_p if tags else None)
    # Oversample, drop repeats, then keep each user's first ``counts[u]`` distinct items.
    user_of = np.repeat(np.arange(users), np.ceil(counts * 2.0).astype(np.int64) + 3)
    total = len(user_of)
    global_cum = np.cumsum(item_pop)
    drawn = np.searchsorted(global_cum, rng.random(total) * global_cum[-1], side="right")
    if tags:
        use_tag = rng.random(total) < affinity
        fav_pick = rng.integers(0, n_fav[user_of])
        tag_of = favourites[user_of, fav_pick]
        s = segments
        target = s.cum_before[tag_of] + rng.random(total) * s.total[tag_of]  # type: ignore[index]
        in_tag = np.searchsorted(s.cum, target, side="right")
        in_tag = np.clip(in_tag, s.start[tag_of], s.start[tag_of] + s.counts[tag_of] - 1)
        drawn = np.where(use_tag & (s.counts[tag_of] > 0), s.items[in_tag], drawn)
    return user_of, np.minimum(drawn, items - 1), counts


def _first_distinct(user_of: np.ndarray, drawn: np.ndarray, counts: np.ndarray, items: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each user's first ``counts[u]`` distinct draws, in draw order."""
    key = user_of * items + drawn
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)
    user_of, drawn = user_of[keep], drawn[keep]
    rank = np.arange(len(user_of)) - np.searchsorted(user_of, user_of)
    keep = rank < counts[user_of]
    return user_of[keep], drawn[keep]


def _timestamps(user_of: np.ndarray, users: int, rng: np.random.Generator) -> np.ndarray:
    """Per user: a random start in 2020-2023, then Exponential(1 day) + 1 s steps."""
    steps = rng.exponential(86_400.0, size=len(user_of)).astype(np.int64) + 1
    starts = _EPOCH_2020 + rng.integers(0, _FOUR_YEARS, size=users)
    offsets = np.cumsum(steps)
    first_of_user = np.searchsorted(user_of, np.arange(users))
    base = offsets[first_of_user] - steps[first_of_user]
    return starts[user_of] + offsets - base[user_of]


def _bundle(users: int, items: int, tags: int, item_tag_lists: list[list[int]],
            user_of: np.ndarray, drawn: np.ndarray, timestamps: np.ndarray,
            report: dict[str, Any], rng: np.random.Generator) -> ImportBundle:
    """The tables (ids ``u<n>``, ``i<n>``, ``tag<nnnnn>``); draws the items' creation times."""
    tag_names = [f"tag{t:05d}" for t in range(tags)]
    item_ids = [f"i{i}" for i in range(items)]
    user_ids = [f"u{u}" for u in range(users)]
    tag_strings = [[tag_names[t] for t in row] for row in item_tag_lists]
    item_table = items_table(
        item_ids,
        titles=[f"Item {i}" for i in range(items)],
        texts=[f"Item {i} about {', '.join(t)}." for i, t in enumerate(tag_strings)],
        tags=tag_strings,
        platform="synthetic",
        created_at=_EPOCH_2020 - rng.integers(0, _FOUR_YEARS, size=items),
    )
    user_column = np.array(user_ids, dtype=object)[user_of].tolist()
    interactions = interactions_table(
        user_column,
        np.array(item_ids, dtype=object)[drawn].tolist(),
        timestamps=timestamps.astype(np.int64),
        report=report,
    )
    return ImportBundle(item_table, interactions, users_table(user_column), report)


def import_synthetic(
    *,
    users: int,
    items: int,
    tags: int,
    per_user: float,
    seed: int = 2026,
    affinity: float = 0.6,
) -> ImportBundle:
    """Generate a data set of ``users`` x ``items`` with ``tags`` tags and ~``per_user`` each.

    Every draw comes from one ``default_rng(seed)`` in a fixed order (the module docstring), so
    the same arguments give the same bundle."""
    _check_sizes(users, items, tags, per_user)
    rng = np.random.default_rng(seed)
    tag_p = _zipf(tags, 1.1) if tags else np.zeros(0)
    item_tag_lists = _item_tags(items, tags, tag_p, rng)
    item_pop = _zipf(items, 1.0)[rng.permutation(items)]
    segments = _tag_segments(item_tag_lists, item_pop, items, tags)
    user_of, drawn, counts = _draw_items(users, items, tags, per_user, affinity, tag_p, item_pop,
                                         segments, rng)
    user_of, drawn = _first_distinct(user_of, drawn, counts, items)
    user_of, drawn = _top_up(user_of, drawn, np.minimum(counts, 3), items, rng)
    timestamps = _timestamps(user_of, users, rng)
    report = {
        "format": "synthetic",
        "source": f"synthetic users={users} items={items} tags={tags} per_user={per_user} seed={seed}",
        "seed": seed,
    }
    return _bundle(users, items, tags, item_tag_lists, user_of, drawn, timestamps, report, rng)
