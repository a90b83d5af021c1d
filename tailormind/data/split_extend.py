"""Extend a split with appended interactions, never touching a held-out set.

- A user with candidate sets keeps every split row and both candidate sets as they are. The
  appended interactions become **train** rows, positions continuing after the user's last row
  (in time order, then item id), never validation or test. One that names one of the user's
  held-out positives (validation or test item) is **withheld**: it stays in ``interactions`` and
  ``appended`` but enters no table a model reads as the user's evidence. One that names an item
  of the user's candidate negatives is kept (the sets are fixed) and counted.
- Every other user with appended interactions (a new user, or one who was train-only) is split
  afresh over all of their interactions (one per item, the latest: :func:`latest_per_pair`) by
  :func:`split_each_user`: the rules of ``data split`` (leave-two-out, ``min_interactions``,
  1 + ``negatives`` sets from the items the user never touched), from the user's own seeded
  generator, so no other user's sets move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tailormind.data import schemas
from tailormind.data.item_tags import heldout_pairs
from tailormind.data.split import latest_per_pair, split_each_user

_BY_POSITION = [("user_id", "ascending"), ("position", "ascending")]


@dataclass(frozen=True)
class ExtendedSplit:
    split: pa.Table
    candidates: pa.Table
    report: dict[str, Any]  # what this append did to the split


def _is_in(column: pa.ChunkedArray, values: set[str]) -> pa.ChunkedArray:
    return pc.is_in(column, value_set=pa.array(sorted(values), pa.string()))


def _train_rows(split: pa.Table, rows: pd.DataFrame) -> pa.Table:
    """``rows`` (user_id, item_id, timestamp, weight) as train rows after each user's last."""
    last = split.group_by("user_id").aggregate([("position", "max")])
    after = dict(zip(last.column("user_id").to_pylist(), last.column("position_max").to_pylist(),
                     strict=True))
    rows = rows.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    position = rows["user_id"].map(after).to_numpy(np.int64) + 1 \
        + rows.groupby("user_id", sort=False).cumcount().to_numpy(np.int64)
    return pa.Table.from_pydict({
        "user_id": pa.array(rows["user_id"].tolist(), pa.string()),
        "item_id": pa.array(rows["item_id"].tolist(), pa.string()),
        "timestamp": pa.array(rows["timestamp"].to_numpy(np.int64)).cast(schemas.TIMESTAMP),
        "weight": pa.array(rows["weight"].to_numpy(np.float32)),
        "position": pa.array(position.astype(np.int32)),
        "split": pa.array(["train"] * len(rows), pa.string()),
    }, schema=schemas.SPLIT)


def _frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": table.column("user_id").to_pylist(),
        "item_id": table.column("item_id").to_pylist(),
        "timestamp": table.column("timestamp").cast(pa.int64()).to_numpy(),
        "weight": table.column("weight").to_numpy(),
    })


def _extend_evaluated(split: pa.Table, candidates: pa.Table, appended: pa.Table
                      ) -> tuple[pa.Table, dict[str, int]]:
    """Train rows of the evaluated users' appended interactions, and the counts."""
    rows = _frame(appended)
    held = heldout_pairs(split)
    pairs = list(zip(rows["user_id"], rows["item_id"], strict=True))
    withheld = np.fromiter((p in held for p in pairs), dtype=bool, count=len(pairs))
    theirs = candidates.filter(_is_in(candidates.column("user_id"), set(rows["user_id"])))
    negatives = {(u, n) for u, ns in zip(theirs.column("user_id").to_pylist(),
                                         theirs.column("negatives").to_pylist(), strict=True)
                 for n in ns}
    kept = rows[~withheld]
    train = _train_rows(split, kept)
    return train, {
        "users_extended": int(kept["user_id"].nunique()),
        "train_rows_added": train.num_rows,
        "withheld_heldout_repeats": int(withheld.sum()),
        "appended_among_negatives": sum(p in negatives for p in pairs),
    }


def extend_split(split: pa.Table, candidates: pa.Table, interactions: pa.Table,
                 appended: pa.Table, item_ids: list[str], *, negatives: int,
                 min_interactions: int, seed: int) -> ExtendedSplit:
    """The split and candidates after ``appended`` (this append's interactions; ``interactions``
    holds them already, ``item_ids`` every item), by the module docstring's rules."""
    evaluated = set(candidates.column("user_id").to_pylist())
    mine = _is_in(appended.column("user_id"), evaluated)
    train, report = _extend_evaluated(split, candidates, appended.filter(mine))
    others = set(appended.filter(pc.invert(mine)).column("user_id").to_pylist())
    tables = [split.filter(pc.invert(_is_in(split.column("user_id"), others))), train]
    new_candidates = candidates
    report.update(users_split=len(others), newly_evaluated_users=0)
    if others:
        theirs = latest_per_pair(interactions.filter(_is_in(interactions.column("user_id"),
                                                            others)))
        fresh = split_each_user(theirs, item_ids, negatives=negatives,
                                min_interactions=min_interactions, seed=seed)
        tables.append(fresh.split)
        new_candidates = pa.concat_tables([candidates, fresh.candidates]).sort_by("user_id")
        report.update(newly_evaluated_users=fresh.report["evaluated_users"],
                      train_only_few_interactions=fresh.report["train_only_users_few_interactions"],
                      train_only_too_few_unseen_items=fresh.report[
                          "train_only_users_too_few_unseen_items"])
    new_split = pa.concat_tables(tables).sort_by(_BY_POSITION)
    return ExtendedSplit(new_split, new_candidates, report)


def recount(split: pa.Table, candidates: pa.Table, report: dict[str, Any]) -> dict[str, Any]:
    """The manifest's split report with its counts taken again from ``split`` and
    ``candidates`` (its settings kept)."""
    names = split.column("split").value_counts().to_pylist()
    counts = {n["values"]: n["counts"] for n in names}
    evaluated = set(candidates.column("user_id").to_pylist())
    rest = split.filter(pc.invert(_is_in(split.column("user_id"), evaluated)))
    per_user = rest.group_by("user_id").aggregate([("item_id", "count_distinct")])
    few = pc.sum(pc.less(per_user.column("item_id_count_distinct"),
                         int(report.get("min_interactions", 3)))).as_py() or 0
    return {
        **report,
        "train_interactions": counts.get("train", 0),
        "valid_interactions": counts.get("valid", 0),
        "test_interactions": counts.get("test", 0),
        "evaluated_users": len(evaluated),
        "train_only_users_few_interactions": int(few),
        "train_only_users_too_few_unseen_items": per_user.num_rows - int(few),
        "candidate_sets": candidates.num_rows,
        "timestamps_missing": split.column("timestamp").null_count,
    }
