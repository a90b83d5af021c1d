"""CF(D_u) (Eq. 7): the Top-K items each user has not interacted with in train, as ``cf_topk``.

Users with no train interaction get the K most popular items instead (their embeddings carry no
signal); they are counted in the table's manifest entry, never hidden.

The table's manifest entry records the **watermark** it was computed at (the lower of the
checkpoint's and the data's, :mod:`tailormind.data.appends`) and the checkpoint's lineage.
``cf recommend --users-changed`` (:func:`recommend_workspace` with ``users_changed``) recomputes
only the users :func:`changed_users` names and keeps every other row as it was — an
approximation: fine-tuning moved every embedding a little, and L propagation layers carry a
change L hops, further than the rule looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
import torch

from tailormind.cf.checkpoint import CFCheckpoint, load_checkpoint
from tailormind.cf.data import CFData, load_cf_data
from tailormind.data import schemas
from tailormind.data.appends import appended_since
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError, WorkspaceError


@dataclass
class TopK:
    table: pa.Table
    cold_users: int
    k: int
    watermark: int = 0
    #: ``--users-changed``: users recomputed and kept; ``recomputed`` None: every user was
    recomputed: int | None = None
    kept: int = 0
    changed: ChangedUsers | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ChangedUsers:
    """The users whose ``cf_topk`` rows ``--users-changed`` recomputes, by the reason first met."""

    users: np.ndarray  # sorted user indices
    appended: int  # interactions of theirs were appended after the table's watermark
    sharing: int  # further: a train interaction with an item that got an appended interaction
    other: int  # further: no train items (their list is popularity, which moved) or no old row
    since: int = 0  # the watermark the appends were counted from


def check_alignment(checkpoint: CFCheckpoint, data: CFData) -> None:
    if checkpoint.user_ids != data.user_ids or checkpoint.item_ids != data.item_ids:
        raise WorkspaceError(
            f"the '{checkpoint.model}' checkpoint was trained on other users/items than the "
            "workspace now holds; fine-tune it on the grown data with `tailormind cf train "
            "--resume`, or train it again"
        )


def train_mask(data: CFData, users: np.ndarray) -> sp.csr_matrix:
    """Boolean (len(users) x n_items) matrix of the users' train items."""
    x = sp.csr_matrix(
        (np.ones(len(data.train_users), dtype=bool), (data.train_users, data.train_items)),
        shape=(data.n_users, data.n_items),
    )
    return x[users]


def top_k(checkpoint: CFCheckpoint, data: CFData, k: int, batch_users: int = 1024,
          users: np.ndarray | None = None) -> TopK:
    """Scores every item for every user (or the user indices ``users``, in that order) in
    batches, masks train items, keeps the best ``k``."""
    if k < 1:
        raise TailorMindError("--k must be >= 1")
    check_alignment(checkpoint, data)
    k_eff = min(k, data.n_items)
    user_emb = torch.from_numpy(checkpoint.user_embeddings)
    item_emb = torch.from_numpy(checkpoint.item_embeddings)
    popularity = torch.from_numpy(data.item_popularity())
    cold = np.zeros(data.n_users, dtype=bool)
    cold[data.users_without_train_items()] = True
    order = np.arange(data.n_users) if users is None else np.asarray(users, dtype=np.int64)
    user_col, item_col, score_col, rank_col = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], \
        [np.zeros(0, np.float32)], [np.zeros(0, np.int64)]
    for start in range(0, len(order), batch_users):
        users = order[start: start + batch_users]
        scores = user_emb[users] @ item_emb.T
        scores[torch.from_numpy(cold[users])] = popularity.to(scores.dtype)
        mask = train_mask(data, users).tocoo()
        scores[torch.from_numpy(mask.row), torch.from_numpy(mask.col)] = -torch.inf
        values, idx = torch.topk(scores, k_eff, dim=1)
        valid = torch.isfinite(values)
        rows, cols = torch.nonzero(valid, as_tuple=True)
        user_col.append(users[rows.numpy()])
        item_col.append(idx[rows, cols].numpy())
        score_col.append(values[rows, cols].numpy())
        rank_col.append(cols.numpy() + 1)
    users_all = np.concatenate(user_col)
    items_all = np.concatenate(item_col)
    table = pa.Table.from_pydict(
        {
            "user_id": pa.array(np.asarray(data.user_ids, dtype=object)[users_all], pa.string()),
            "item_id": pa.array(np.asarray(data.item_ids, dtype=object)[items_all], pa.string()),
            "score": pa.array(np.concatenate(score_col).astype(np.float32)),
            "rank": pa.array(np.concatenate(rank_col).astype(np.int32)),
        },
        schema=schemas.CF_TOPK,
    )
    return TopK(table, int(cold.sum()), k)


def changed_users(data: CFData, appended_users: list[str], appended_items: list[str],
                  listed: set[str]) -> ChangedUsers:
    """The users whose neighbourhood changed, given the interactions appended since the table.

    The rule: (1) users with an appended interaction; (2) users with a train interaction on an
    item that has an appended interaction (their 2-hop neighbourhood changed); (3) users with no
    train items (they get the popularity list, which the appends moved) or not in ``listed`` (no
    row to keep). Ids the data does not hold are ignored."""
    user_index = {u: i for i, u in enumerate(data.user_ids)}
    item_index = {v: i for i, v in enumerate(data.item_ids)}
    appended = np.zeros(data.n_users, dtype=bool)
    appended[[user_index[u] for u in appended_users if u in user_index]] = True
    touched = np.zeros(data.n_items, dtype=bool)
    touched[[item_index[v] for v in appended_items if v in item_index]] = True
    sharing = np.zeros(data.n_users, dtype=bool)
    sharing[data.train_users[touched[data.train_items]]] = True
    other = np.array([u not in listed for u in data.user_ids], dtype=bool)
    other[data.users_without_train_items()] = True
    sharing &= ~appended
    other &= ~(appended | sharing)
    return ChangedUsers(np.flatnonzero(appended | sharing | other), int(appended.sum()),
                        int(sharing.sum()), int(other.sum()))


def _not_reusable(workspace: Workspace, checkpoint: CFCheckpoint, model: str, k: int) -> str | None:
    """Why the stored ``cf_topk`` cannot be updated in part (None: it can)."""
    if not workspace.has("cf_topk"):
        return "there is no cf_topk yet"
    info = workspace.manifest["tables"]["cf_topk"]
    if info.get("model") != model or info.get("k") != k:
        return f"cf_topk holds model {info.get('model')!r} with k={info.get('k')}, not {model!r} with k={k}"
    if info.get("lineage") is None or info.get("lineage") != checkpoint.lineage:
        return ("the checkpoint is not a fine-tuning of the one cf_topk was computed from (trained "
                "from scratch since, or either predates --users-changed): every embedding changed")
    return None


def _merge(old: pa.Table, new: pa.Table, recomputed: list[str], user_ids: list[str]) -> tuple[pa.Table, int]:
    """``old``'s rows of users neither recomputed nor gone, plus ``new``, in user then rank
    order; and how many users' rows were kept."""
    value_set = pa.array(user_ids, pa.string())
    keep = pc.and_(pc.invert(pc.is_in(old.column("user_id"), value_set=pa.array(recomputed, pa.string()))),
                   pc.is_in(old.column("user_id"), value_set=value_set))
    kept = old.filter(keep)
    merged = pa.concat_tables([kept, new.cast(kept.schema)])
    merged = merged.append_column("_user", pc.index_in(merged.column("user_id"), value_set=value_set))
    merged = merged.sort_by([("_user", "ascending"), ("rank", "ascending")]).drop_columns(["_user"])
    return merged, len(pc.unique(kept.column("user_id")))


def _update_changed(workspace: Workspace, checkpoint: CFCheckpoint, data: CFData, model: str,
                    k: int) -> TopK:
    """``cf_topk`` with only :func:`changed_users` recomputed (everyone when it cannot be reused)."""
    reason = _not_reusable(workspace, checkpoint, model, k)
    if reason is not None:
        result = top_k(checkpoint, data, k)
        result.notes.append(f"--users-changed recomputed every user: {reason}")
        return result
    since = int(workspace.manifest["tables"]["cf_topk"].get("watermark", 0))
    appended = appended_since(workspace, since)
    old = workspace.read("cf_topk")
    changed = changed_users(data, appended.column("user_id").to_pylist(),
                            appended.column("item_id").to_pylist(),
                            set(old.column("user_id").to_pylist()))
    fresh = top_k(checkpoint, data, k, users=changed.users)
    ids = [data.user_ids[i] for i in changed.users]
    table, kept = _merge(old, fresh.table, ids, data.user_ids)
    changed.since = since
    return TopK(table, fresh.cold_users, k, recomputed=len(ids), kept=kept, changed=changed)


def recommend_workspace(workspace: Workspace, model: str, k: int, *,
                        users_changed: bool = False) -> TopK:
    """Compute and store ``cf_topk`` for ``model`` (with ``users_changed``: only the rows of
    :func:`changed_users`, see the module docstring); written atomically with its watermark."""
    checkpoint = load_checkpoint(workspace, model)
    data = load_cf_data(workspace)
    if k < 1:
        raise TailorMindError("--k must be >= 1")
    result = (_update_changed(workspace, checkpoint, data, model, k) if users_changed
              else top_k(checkpoint, data, k))
    result.watermark = min(checkpoint.watermark, data.watermark)
    recomputed = data.n_users if result.recomputed is None else result.recomputed
    workspace.write("cf_topk", result.table, model=model, k=k,
                    cold_users_popularity=result.cold_users, watermark=result.watermark,
                    lineage=checkpoint.lineage, users_recomputed=recomputed,
                    users_kept=result.kept)
    return result
