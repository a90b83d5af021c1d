"""Leave-two-out split and the shared 1:99 candidate sets.

For each user, order the interactions by timestamp (ties, and missing timestamps, in a seeded
random order); the last one is the test positive, the second last the validation positive, the
rest are train. Users with fewer than ``min_interactions`` (3) interactions stay train-only.

For every validation and test positive, ``negatives`` (99) items are drawn uniformly, without
replacement, from the catalogue items the user never interacted with (in any split). The sets are
stored so that every method is scored on exactly the same candidates. A user whose unseen items are
fewer than ``negatives`` cannot get a candidate set and stays train-only; both cases are counted.

The split also derives the item–tag relation models may see: without any user's own tag events
on that user's held-out items (:mod:`tailormind.data.item_tags`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tailormind.data import schemas
from tailormind.data.item_tags import ITEM_TAGS, TAG_EVENTS, derive_item_tags
from tailormind.data.workspace import TAG_DEPENDENT, Workspace
from tailormind.errors import DataError


@dataclass(frozen=True)
class SplitResult:
    split: pa.Table
    candidates: pa.Table
    report: dict[str, Any]


def _order(interactions: pa.Table, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": interactions.column("user_id").to_numpy(zero_copy_only=False),
            "item_id": interactions.column("item_id").to_numpy(zero_copy_only=False),
            "timestamp": interactions.column("timestamp").cast(pa.int64()).to_pandas(),
            "weight": interactions.column("weight").to_numpy(),
            "tiebreak": rng.random(interactions.num_rows),
        }
    )
    frame = frame.sort_values(
        ["user_id", "timestamp", "tiebreak"], na_position="first", kind="stable"
    ).reset_index(drop=True)
    frame["position"] = frame.groupby("user_id", sort=False).cumcount().astype(np.int32)
    return frame


def sample_negatives(
    seen: np.ndarray, n_items: int, k: int, rng: np.random.Generator
) -> np.ndarray | None:
    """``k`` distinct item indices in ``[0, n_items)`` not in sorted ``seen``; None if impossible."""
    unseen = n_items - len(seen)
    if unseen < k:
        return None
    if unseen < 3 * k:
        pool = np.setdiff1d(np.arange(n_items), seen, assume_unique=True)
        return rng.choice(pool, size=k, replace=False)
    picked: list[int] = []
    chosen: set[int] = set()
    while len(picked) < k:
        draw = rng.integers(0, n_items, size=2 * (k - len(picked)) + 8)
        pos = np.searchsorted(seen, draw)
        fresh = draw[(pos >= len(seen)) | (seen[np.minimum(pos, len(seen) - 1)] != draw)]
        for value in fresh.tolist():
            if value not in chosen:
                chosen.add(value)
                picked.append(value)
                if len(picked) == k:
                    break
    return np.asarray(picked, dtype=np.int64)


def _item_indices(frame: pd.DataFrame, index_of: dict[str, int]) -> np.ndarray:
    """Each row's index (``index_of``: item id -> index); :class:`DataError` for an item not
    among them."""
    item_index = frame["item_id"].map(index_of)
    if item_index.isna().any():
        missing = frame.loc[item_index.isna(), "item_id"].iloc[0]
        raise DataError(f"interaction names item {missing!r}, which is not in the items table")
    return item_index.to_numpy(dtype=np.int64)


def _candidate_sets(
    sizes: pd.Series,
    item_index: np.ndarray,
    item_ids: list[str],
    *,
    negatives: int,
    min_interactions: int,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None,
) -> tuple[pd.Index, list[tuple[str, str, str, list[str]]], list[str]]:
    """``(eligible users, rows, too_dense)``: per user with ``min_interactions`` or more rows (in
    order), a validation then a test row ``(user, split, positive, negatives)``, or the user
    listed in ``too_dense`` when either set cannot be drawn. ``progress`` gets a count per 256
    users and at the end."""
    eligible = sizes[sizes >= min_interactions].index
    starts = np.concatenate([[0], np.cumsum(sizes.to_numpy())[:-1]])
    start_of = dict(zip(sizes.index, starts, strict=True))
    rows: list[tuple[str, str, str, list[str]]] = []
    too_dense: list[str] = []
    n_items = len(item_ids)
    for done, user in enumerate(eligible):
        lo = start_of[user]
        hi = lo + int(sizes[user])
        seen = np.unique(item_index[lo:hi])
        sets = []
        for name, offset in (("valid", 2), ("test", 1)):
            neg = sample_negatives(seen, n_items, negatives, rng)
            if neg is None:
                break
            sets.append((user, name, item_ids[item_index[hi - offset]], [item_ids[j] for j in neg]))
        if len(sets) == 2:
            rows.extend(sets)
        else:
            too_dense.append(user)
        if progress is not None and (done % 256 == 255 or done == len(eligible) - 1):
            progress(done % 256 + 1)
    return eligible, rows, too_dense


def _split_table(frame: pd.DataFrame, split_name: np.ndarray) -> pa.Table:
    """The ordered interactions with their position and split name (:data:`schemas.SPLIT`)."""
    return pa.Table.from_pydict(
        {
            "user_id": pa.array(frame["user_id"].tolist(), pa.string()),
            "item_id": pa.array(frame["item_id"].tolist(), pa.string()),
            "timestamp": pa.array(frame["timestamp"], pa.int64()).cast(schemas.TIMESTAMP),
            "weight": pa.array(frame["weight"].to_numpy(np.float32), pa.float32()),
            "position": pa.array(frame["position"].to_numpy(np.int32), pa.int32()),
            "split": pa.array(split_name, pa.string()),
        },
        schema=schemas.SPLIT,
    )


def _split_report(
    frame: pd.DataFrame,
    split_name: np.ndarray,
    sizes: pd.Series,
    *,
    evaluated_users: int,
    too_dense: int,
    candidate_sets: int,
    seed: int,
    negatives: int,
    min_interactions: int,
) -> dict[str, Any]:
    """The split's counts and settings, as stored in the manifest."""
    counts = pd.Series(split_name).value_counts()
    return {
        "seed": seed,
        "negatives": negatives,
        "min_interactions": min_interactions,
        "train_interactions": int(counts.get("train", 0)),
        "valid_interactions": int(counts.get("valid", 0)),
        "test_interactions": int(counts.get("test", 0)),
        "evaluated_users": evaluated_users,
        "train_only_users_few_interactions": int((sizes < min_interactions).sum()),
        "train_only_users_too_few_unseen_items": too_dense,
        "candidate_sets": candidate_sets,
        "timestamps_missing": int(frame["timestamp"].isna().sum()),
        "order": "timestamp, ties and missing timestamps in seeded random order",
    }


@dataclass
class _Drawn:
    """One draw of :func:`_draw`: the ordered rows, their split names and candidate rows."""

    frame: pd.DataFrame
    split_name: np.ndarray
    sizes: pd.Series
    rows: list[tuple[str, str, str, list[str]]]
    evaluated: int
    too_dense: int


def _draw(interactions: pa.Table, item_ids: list[str], index_of: dict[str, int],
          rng: np.random.Generator, *, negatives: int, min_interactions: int,
          progress: Callable[[int], None] | None) -> _Drawn:
    """Order ``interactions`` (tie-breaks drawn first), then draw each eligible user's
    candidate sets, all from ``rng``."""
    frame = _order(interactions, rng)
    sizes = frame.groupby("user_id", sort=False).size()
    n_user_rows = frame["user_id"].map(sizes).to_numpy()
    from_end = n_user_rows - frame["position"].to_numpy()  # 1 = last interaction
    item_index = _item_indices(frame, index_of)
    eligible, rows, too_dense = _candidate_sets(
        sizes, item_index, item_ids, negatives=negatives, min_interactions=min_interactions,
        rng=rng, progress=progress,
    )
    evaluated = ~frame["user_id"].isin(too_dense).to_numpy() & (n_user_rows >= min_interactions)
    split_name = np.where(
        evaluated & (from_end == 1), "test", np.where(evaluated & (from_end == 2), "valid", "train")
    )
    return _Drawn(frame, split_name, sizes, rows, int(len(eligible) - len(too_dense)),
                  len(too_dense))


def _result(drawn: _Drawn, *, seed: int, negatives: int, min_interactions: int) -> SplitResult:
    """The split and candidate tables of ``drawn``, and its report."""
    split = _split_table(drawn.frame, drawn.split_name)
    candidates = pa.Table.from_pylist(
        [{"user_id": u, "split": s, "positive": p, "negatives": n} for u, s, p, n in drawn.rows],
        schema=schemas.CANDIDATES,
    )
    report = _split_report(
        drawn.frame, drawn.split_name, drawn.sizes, evaluated_users=drawn.evaluated,
        too_dense=drawn.too_dense, candidate_sets=candidates.num_rows, seed=seed,
        negatives=negatives, min_interactions=min_interactions,
    )
    return SplitResult(split, candidates, report)


def split_interactions(
    interactions: pa.Table,
    item_ids: list[str],
    *,
    negatives: int = 99,
    min_interactions: int = 3,
    seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> SplitResult:
    """Leave-two-out split and candidate sets (see module docstring).

    One ``default_rng(seed)`` draws the tie-break order first, then the negatives user by user:
    the same inputs give the same tables."""
    if interactions.num_rows == 0:
        raise DataError("the workspace has no interactions to split")
    index_of = {item: i for i, item in enumerate(item_ids)}
    drawn = _draw(interactions, item_ids, index_of, np.random.default_rng(seed),
                  negatives=negatives, min_interactions=min_interactions, progress=progress)
    return _result(drawn, seed=seed, negatives=negatives, min_interactions=min_interactions)


def user_seed(seed: int, user: str) -> list[int]:
    """The seed of one user's own generator: ``seed`` and a stable hash of the user id."""
    return [seed, int.from_bytes(hashlib.sha256(user.encode("utf-8")).digest()[:8], "big")]


def split_each_user(
    interactions: pa.Table,
    item_ids: list[str],
    *,
    negatives: int = 99,
    min_interactions: int = 3,
    seed: int = 2026,
) -> SplitResult:
    """:func:`split_interactions`'s rules, user by user, each from its own generator
    (:func:`user_seed`): a user's split and candidate sets depend on that user's interactions
    and the catalogue only, never on the other users (``data append`` splits new users so)."""
    if interactions.num_rows == 0:
        raise DataError("no interactions to split")
    index_of = {item: i for i, item in enumerate(item_ids)}
    table = interactions.sort_by("user_id")
    users = table.column("user_id").to_pylist()
    starts = [i for i in range(len(users)) if i == 0 or users[i] != users[i - 1]]
    parts = []
    for lo, hi in zip(starts, [*starts[1:], len(users)], strict=True):
        rng = np.random.default_rng(user_seed(seed, users[lo]))
        parts.append(_draw(table.slice(lo, hi - lo), item_ids, index_of, rng, negatives=negatives,
                           min_interactions=min_interactions, progress=None))
    drawn = _Drawn(
        pd.concat([p.frame for p in parts], ignore_index=True),
        np.concatenate([p.split_name for p in parts]),
        pd.concat([p.sizes for p in parts]),
        [row for p in parts for row in p.rows],
        sum(p.evaluated for p in parts), sum(p.too_dense for p in parts))
    return _result(drawn, seed=seed, negatives=negatives, min_interactions=min_interactions)


def latest_per_pair(interactions: pa.Table) -> pa.Table:
    """One interaction per (user, item): the latest (by time, then row order; no time is the
    oldest), as the importers merge repeats. Appends may add a repeat of an item a user already
    has; a split never sees both. Returns ``interactions`` itself when it has no repeats."""
    frame = pd.DataFrame({
        "user_id": interactions.column("user_id").to_numpy(zero_copy_only=False),
        "item_id": interactions.column("item_id").to_numpy(zero_copy_only=False),
    })
    repeated = frame.duplicated(["user_id", "item_id"], keep=False).to_numpy()
    if not repeated.any():
        return interactions
    frame["timestamp"] = interactions.column("timestamp").cast(pa.int64()).fill_null(
        np.iinfo(np.int64).min).to_numpy()
    frame["order"] = np.arange(len(frame))
    frame = frame.sort_values(["user_id", "item_id", "timestamp", "order"], kind="stable")
    keep = frame.drop_duplicates(["user_id", "item_id"], keep="last")["order"].to_numpy()
    return interactions.take(pa.array(np.sort(keep)))


def split_workspace(
    workspace: Workspace,
    *,
    negatives: int = 99,
    min_interactions: int = 3,
    seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> SplitResult:
    """Split the workspace's interactions (one per user and item: :func:`latest_per_pair`) and
    store ``split`` + ``candidates`` + the leak-free ``item_tags``
    (:mod:`tailormind.data.item_tags`) atomically.

    Every derived table and artifact of an earlier split (CF models, profiles...) is removed;
    item descriptions are kept only while the item-tag relation they were made from is the same.
    The withheld tag events are counted in the split report.
    """
    interactions = latest_per_pair(workspace.read("interactions"))
    items = workspace.read("items", columns=["item_id", "tags"])
    item_ids = items.column("item_id").to_pylist()
    result = split_interactions(
        interactions, item_ids, negatives=negatives, min_interactions=min_interactions,
        seed=seed, progress=progress,
    )
    events = workspace.read(TAG_EVENTS) if workspace.has(TAG_EVENTS) else None
    item_tags, tag_report = derive_item_tags(items, events, result.split)
    result.report.update(tag_report)
    previous = workspace.read(ITEM_TAGS) if workspace.has(ITEM_TAGS) else items
    keep = TAG_DEPENDENT if previous.column("tags").equals(item_tags.column("tags")) else ()
    workspace.write_many(
        {"split": result.split, "candidates": result.candidates, ITEM_TAGS: item_tags},
        manifest_updates={"split": result.report},
        drop=workspace.derived(keep=keep),
    )
    return result


def candidate_items(candidates: pa.Table) -> list[list[str]]:
    """Each candidate set as one list: the positive first, then its negatives."""
    positives = candidates.column("positive").to_pylist()
    negatives = candidates.column("negatives").to_pylist()
    return [[p, *n] for p, n in zip(positives, negatives, strict=True)]
