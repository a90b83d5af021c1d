"""What profiling may see of a user: train history, CF(D_u), and the VALIDATION candidates.

The test candidates are deliberately absent: they are read only by
:mod:`tailormind.profiling.evaluate`, once, after the profiles are final
(``docs/architecture.md``, "Evaluation integrity").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError


@dataclass
class ItemFeatures:
    """``item_features`` as lookups: id -> row, descriptions, unit embedding matrix."""

    ids: list[str]
    index: dict[str, int]
    descriptions: list[str]
    matrix: np.ndarray
    model: str

    @classmethod
    def load(cls, workspace: Workspace) -> ItemFeatures:
        if not workspace.has("item_features"):
            raise WorkspaceError(f"workspace {workspace.root} has no item descriptions; run "
                                 f"`tailormind profile describe --workspace {workspace.root}` first")
        table = workspace.read("item_features",
                               columns=["item_id", "description", "embedding", "embed_model"])
        ids = table.column("item_id").to_pylist()
        matrix = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
        return cls(ids=ids, index={item: i for i, item in enumerate(ids)},
                   descriptions=table.column("description").to_pylist(), matrix=matrix,
                   model=table.column("embed_model")[0].as_py() if len(ids) else "")

    def rows(self, item_ids: list[str]) -> np.ndarray:
        try:
            return np.fromiter((self.index[i] for i in item_ids), dtype=np.int64,
                               count=len(item_ids))
        except KeyError as exc:
            raise WorkspaceError(f"item {exc.args[0]!r} has no description; re-run "
                                 f"`tailormind profile describe`") from None

    def vectors(self, item_ids: list[str]) -> np.ndarray:
        return self.matrix[self.rows(item_ids)]

    def describe(self, item_id: str) -> str:
        return self.descriptions[self.index[item_id]] or f"(item {item_id}: no description)"


@dataclass
class UserEvidence:
    user_id: str
    history: list[str]  # train items, oldest first
    cf: list[str]  # CF(D_u), best first (empty when CF is off or not run)
    valid_positive: str | None
    valid_negatives: list[str]  # the validation set's negatives (never seen by the user)
    #: Further positives ranked with the same negatives, instead of the newest train items
    #: (``profile update``: the other new positives; None: ``profiling.z_train_items``).
    z_extra: list[str] | None = None

    @property
    def valid_set_size(self) -> int:
        """M: the positive plus its negatives (0 without a validation item)."""
        return len(self.valid_negatives) + (self.valid_positive is not None)


def load_evidence(workspace: Workspace, users: list[str] | None = None, *,
                  use_cf: bool = True) -> dict[str, UserEvidence]:
    """Evidence of ``users`` (default: every user with a validation candidate set)."""
    split = workspace.read("split", columns=["user_id", "item_id", "position", "split"])
    train = split.filter(pc.equal(split.column("split"), "train")).sort_by(
        [("user_id", "ascending"), ("position", "ascending")])
    history: dict[str, list[str]] = {}
    for user, item in zip(train.column("user_id").to_pylist(), train.column("item_id").to_pylist(),
                          strict=True):
        history.setdefault(user, []).append(item)
    candidates = workspace.read("candidates")
    valid = candidates.filter(pc.equal(candidates.column("split"), "valid")).to_pylist()
    cf: dict[str, list[str]] = {}
    if use_cf:
        if not workspace.has("cf_topk"):
            raise WorkspaceError("profiling with CF augmentation needs the cf_topk table; run "
                                 "`tailormind cf train` and `tailormind cf recommend` first (or "
                                 "set profiling.use_cf: false)")
        topk = workspace.read("cf_topk").sort_by([("user_id", "ascending"), ("rank", "ascending")])
        for user, item in zip(topk.column("user_id").to_pylist(),
                              topk.column("item_id").to_pylist(), strict=True):
            cf.setdefault(user, []).append(item)
    wanted = set(users) if users is not None else None
    out: dict[str, UserEvidence] = {}
    for row in valid:
        user = row["user_id"]
        if wanted is not None and user not in wanted:
            continue
        out[user] = UserEvidence(user_id=user, history=history.get(user, []), cf=cf.get(user, []),
                                 valid_positive=row["positive"],
                                 valid_negatives=list(row["negatives"]))
    if wanted is not None:
        missing = sorted(wanted - set(out))
        if missing:
            raise WorkspaceError(f"user {missing[0]!r} has no validation candidate set (unknown, "
                                 f"or too few interactions to be split)")
    return out
