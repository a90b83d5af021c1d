"""The CF view of a split workspace: contiguous indices for users, items and tags.

``train_users/train_items`` are the train interactions (X); ``tag_items/tag_ids`` the item-tag
incidences (Y). Validation and test candidate sets are index matrices (n_sets x M) with the
positive in column 0, exactly as stored by ``data split``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from tailormind.data.appends import watermark
from tailormind.data.item_tags import model_items
from tailormind.data.workspace import Workspace
from tailormind.errors import DataError


@dataclass(frozen=True)
class CandidateIndex:
    """Candidate sets as indices: ``users`` (n_sets,), ``items`` (n_sets x M), positive first.

    Column 0 is the metrics' layout, for scorers that score each item on its own (CF, content,
    fusion). No model ever sees a list in this order: a list handed to a :class:`Ranker` goes
    through ``rankers.presentation_order`` (a seeded order of the set)."""

    users: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class CFData:
    user_ids: list[str]
    item_ids: list[str]
    tag_names: list[str]
    train_users: np.ndarray
    train_items: np.ndarray
    tag_items: np.ndarray
    tag_ids: np.ndarray
    valid: CandidateIndex
    test: CandidateIndex
    #: items the user touched in validation/test (excluded from full-ranking train masks)
    heldout_users: np.ndarray
    heldout_items: np.ndarray
    #: the workspace's append id when the tables were read (``tailormind.data.appends``)
    watermark: int = 0

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_tags(self) -> int:
        return len(self.tag_names)

    def users_without_train_items(self) -> np.ndarray:
        """Indices of users with no train interaction (their CF embeddings carry no signal)."""
        has = np.zeros(self.n_users, dtype=bool)
        has[self.train_users] = True
        return np.flatnonzero(~has)

    def item_popularity(self) -> np.ndarray:
        """Train interaction count per item."""
        return np.bincount(self.train_items, minlength=self.n_items).astype(np.float64)


def _index(values: list[str], lookup: dict[str, int], what: str) -> np.ndarray:
    out = np.fromiter((lookup.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    if (out < 0).any():
        missing = values[int(np.argmax(out < 0))]
        raise DataError(f"split names {what} {missing!r}, which the workspace does not have; "
                        "re-run `tailormind data split`")
    return out


def _candidates(table, user_index: dict[str, int], item_index: dict[str, int], name: str) -> CandidateIndex:
    rows = table.filter(pc.equal(table.column("split"), name))
    users = _index(rows.column("user_id").to_pylist(), user_index, "user")
    positives = rows.column("positive").to_pylist()
    negatives = rows.column("negatives").to_pylist()
    flat = [p for pos, neg in zip(positives, negatives, strict=True) for p in (pos, *neg)]
    width = 1 + (len(negatives[0]) if negatives else 0)
    items = _index(flat, item_index, "item").reshape(len(users), width) if len(users) else np.zeros((0, width), np.int64)
    return CandidateIndex(users, items)


def load_cf_data(workspace: Workspace) -> CFData:
    """Read ``split``, ``candidates``, ``items`` and ``users`` into index form, with the
    workspace's watermark (read first: an append while reading can only make it too low, and a
    stage that records it then looks at too much, never too little)."""
    mark = watermark(workspace).append_id
    split = workspace.read("split", columns=["user_id", "item_id", "split"])
    candidates = workspace.read("candidates")
    items = model_items(workspace, columns=["item_id", "tags"])
    user_ids = workspace.read("users", columns=["user_id"]).column("user_id").to_pylist()
    item_ids = items.column("item_id").to_pylist()
    user_index = {u: i for i, u in enumerate(user_ids)}
    item_index = {v: i for i, v in enumerate(item_ids)}

    is_train = pc.equal(split.column("split"), "train")
    train = split.filter(is_train)
    heldout = split.filter(pc.invert(is_train))
    tag_lists = items.column("tags").to_pylist()
    tag_names = sorted({t for tags in tag_lists for t in tags})
    tag_index = {t: i for i, t in enumerate(tag_names)}
    tag_items = np.repeat(np.arange(len(item_ids)), [len(t) for t in tag_lists])
    tag_ids = np.fromiter((tag_index[t] for tags in tag_lists for t in tags), dtype=np.int64,
                          count=len(tag_items))
    return CFData(
        user_ids=user_ids,
        item_ids=item_ids,
        tag_names=tag_names,
        train_users=_index(train.column("user_id").to_pylist(), user_index, "user"),
        train_items=_index(train.column("item_id").to_pylist(), item_index, "item"),
        tag_items=tag_items.astype(np.int64),
        tag_ids=tag_ids,
        valid=_candidates(candidates, user_index, item_index, "valid"),
        test=_candidates(candidates, user_index, item_index, "test"),
        heldout_users=_index(heldout.column("user_id").to_pylist(), user_index, "user"),
        heldout_items=_index(heldout.column("item_id").to_pylist(), item_index, "item"),
        watermark=mark,
    )
