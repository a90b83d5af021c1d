"""Score trained CF models and item popularity on the stored candidate sets (and full ranking).

Every method is scored by :mod:`tailormind.bench.metrics` on exactly the same 1:99 sets.
Full ranking ranks the whole catalogue minus the user's train items (and, for test, the
validation item), with the held-out item as the single positive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tailormind.bench.metrics import DEFAULT_KS, candidate_metrics, full_ranking_metrics, mean_metrics
from tailormind.cf.checkpoint import load_checkpoint, trained_models
from tailormind.cf.data import CandidateIndex, CFData, load_cf_data
from tailormind.cf.recommend import check_alignment, train_mask
from tailormind.cf.train import score_candidates
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError

#: user indices -> (len(users) x n_items) scores
FullScorer = Callable[[np.ndarray], np.ndarray]


def full_ranking(data: CFData, sets: CandidateIndex, scorer: FullScorer, ks: Sequence[int],
                 exclude_other: CandidateIndex | None = None, batch: int = 512) -> dict[str, float]:
    """Mean full-ranking metrics for the positives of ``sets`` (column 0)."""
    other = {}
    if exclude_other is not None:
        other = dict(zip(exclude_other.users.tolist(), exclude_other.items[:, 0].tolist(), strict=True))
    per_user: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(sets), batch):
        users = sets.users[start : start + batch]
        scores = scorer(users)
        positives = np.zeros(scores.shape, dtype=bool)
        positives[np.arange(len(users)), sets.items[start : start + batch, 0]] = True
        exclude = train_mask(data, users).toarray()
        for row, user in enumerate(users.tolist()):
            if user in other:
                exclude[row, other[user]] = True
        for name, values in full_ranking_metrics(scores, positives, exclude, ks).items():
            per_user.setdefault(name, []).append(values)
    return mean_metrics({k: np.concatenate(v) for k, v in per_user.items()})


def evaluate_workspace(
    workspace: Workspace,
    models: Sequence[str] | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    full: bool = False,
) -> list[dict[str, Any]]:
    """One row per method: test (and validation) metrics on the candidate sets."""
    data = load_cf_data(workspace)
    if len(data.test) == 0:
        raise WorkspaceError("the split has no test candidate sets (every user is train-only)")
    names = list(models) if models else trained_models(workspace)
    rows: list[dict[str, Any]] = []
    popularity = data.item_popularity()
    methods: list[tuple[str, Callable[[CandidateIndex], np.ndarray], FullScorer, dict[str, Any]]] = [
        ("popularity", lambda s: popularity[s.items],
         lambda users: np.broadcast_to(popularity, (len(users), data.n_items)), {}),
    ]
    for name in names:
        ckpt = load_checkpoint(workspace, name)
        check_alignment(ckpt, data)
        u, v = ckpt.user_embeddings, ckpt.item_embeddings
        methods.append((
            name,
            lambda s, u=u, v=v: score_candidates(u, v, s),
            lambda users, u=u, v=v: u[users] @ v.T,
            {k: ckpt.summary[k] for k in ("best_epoch", "seconds_per_epoch", "use_tags", "workers")},
        ))
    for name, score_sets, score_full, info in methods:
        row: dict[str, Any] = {"method": name, **info}
        row["test"] = candidate_metrics(score_sets(data.test), ks)
        if len(data.valid):
            row["valid"] = candidate_metrics(score_sets(data.valid), ks)
        if full:
            row["test_full"] = full_ranking(data, data.test, score_full, ks, exclude_other=data.valid)
        rows.append(row)
    return rows
