"""CF(D_u) (Eq. 7): the Top-K items each user has not interacted with in train, as ``cf_topk``.

Users with no train interaction get the K most popular items instead (their embeddings carry no
signal); they are counted in the table's manifest entry, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import torch

from tailormind.cf.checkpoint import CFCheckpoint, load_checkpoint
from tailormind.cf.data import CFData, load_cf_data
from tailormind.data import schemas
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError, WorkspaceError


@dataclass
class TopK:
    table: pa.Table
    cold_users: int
    k: int


def check_alignment(checkpoint: CFCheckpoint, data: CFData) -> None:
    if checkpoint.user_ids != data.user_ids or checkpoint.item_ids != data.item_ids:
        raise WorkspaceError(
            f"the '{checkpoint.model}' checkpoint was trained on other users/items than the "
            "workspace now holds; train it again"
        )


def train_mask(data: CFData, users: np.ndarray) -> sp.csr_matrix:
    """Boolean (len(users) x n_items) matrix of the users' train items."""
    x = sp.csr_matrix(
        (np.ones(len(data.train_users), dtype=bool), (data.train_users, data.train_items)),
        shape=(data.n_users, data.n_items),
    )
    return x[users]


def top_k(checkpoint: CFCheckpoint, data: CFData, k: int, batch_users: int = 1024) -> TopK:
    """Scores every item for every user in batches, masks train items, keeps the best ``k``."""
    if k < 1:
        raise TailorMindError("--k must be >= 1")
    check_alignment(checkpoint, data)
    k_eff = min(k, data.n_items)
    user_emb = torch.from_numpy(checkpoint.user_embeddings)
    item_emb = torch.from_numpy(checkpoint.item_embeddings)
    popularity = torch.from_numpy(data.item_popularity())
    cold = np.zeros(data.n_users, dtype=bool)
    cold[data.users_without_train_items()] = True
    user_col, item_col, score_col, rank_col = [], [], [], []
    for start in range(0, data.n_users, batch_users):
        users = np.arange(start, min(start + batch_users, data.n_users))
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


def recommend_workspace(workspace: Workspace, model: str, k: int) -> TopK:
    """Compute and store ``cf_topk`` for ``model``."""
    result = top_k(load_checkpoint(workspace, model), load_cf_data(workspace), k)
    workspace.write("cf_topk", result.table, model=model, k=k, cold_users_popularity=result.cold_users)
    return result
