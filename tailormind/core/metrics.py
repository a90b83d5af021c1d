r"""Ranking metrics shared by every ranking method (CF, profiles, baselines), vectorised in NumPy.

Ties are broken **against the positive**: an item scored equal to a positive ranks above it, so a
constant scorer gets the worst possible rank, never a lucky one. NaN scores count as -inf.

Candidate sets (one positive + M-1 negatives, the positive in column 0)::

    rank   = #{j >= 1 : s_j >= s_0}                  (0-based)
    HR@K   = Recall@K = 1[rank < K]                  (one positive)
    NDCG@K = 1[rank < K] / log2(rank + 2)            (IDCG = 1)
    MRR    = 1 / (rank + 1)

Full ranking (every catalogue item that is not excluded, several positives P_u per user): items
are sorted by score, negatives before positives on ties, excluded items last and never counted::

    Recall@K = |top_K ∩ P_u| / |P_u|
    NDCG@K   = Σ_{i<K} 1[top_K[i] ∈ P_u] / log2(i + 2)  /  Σ_{i<min(K,|P_u|)} 1 / log2(i + 2)
    HR@K     = 1[|top_K ∩ P_u| > 0]
    MRR      = 1 / (position of the first positive + 1)

``K`` larger than the list is allowed: the list is simply shorter than ``K``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

DEFAULT_KS = (10, 20)


def _clean(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(scores), -np.inf, scores)


def candidate_ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of the positive (column 0) in each row of ``scores`` (n_sets x M)."""
    scores = _clean(scores)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must be (n_sets, M >= 1), got shape {scores.shape}")
    return (scores[:, 1:] >= scores[:, :1]).sum(axis=1)


def rank_among(positive: float, others: np.ndarray) -> int:
    """0-based rank of one positive scored ``positive`` among ``others``: ``#{j : o_j >= s}``."""
    row = np.concatenate([[positive], np.asarray(others, dtype=np.float64)])
    return int(candidate_ranks(row[None, :])[0])


def metrics_from_ranks(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean Recall@K, NDCG@K, HitRate@K and MRR from 0-based ranks of single positives."""
    ranks = np.asarray(ranks, dtype=np.int64)
    if ranks.size == 0:
        raise ValueError("no ranks to score")
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        out[f"hit@{k}"] = float(hit.mean())
    out["mrr"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def per_set_metrics(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Recall@K and NDCG@K of each candidate set (one value per row), for intervals over users."""
    ranks = np.asarray(ranks, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return out


def candidate_metrics(scores: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Metrics over candidate sets: ``scores`` is (n_sets x M) with the positive in column 0."""
    return metrics_from_ranks(candidate_ranks(scores), ks)


def full_ranking_metrics(
    scores: np.ndarray,
    positives: np.ndarray,
    exclude: np.ndarray | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, np.ndarray]:
    """Per-user metrics over the whole catalogue (see module docstring).

    ``scores`` (users x items), ``positives`` and ``exclude`` boolean masks of the same shape.
    Rows without a positive are not scored (they come back as NaN). Call on user batches.
    """
    scores = _clean(scores)
    positives = np.asarray(positives, dtype=bool)
    if exclude is None:
        exclude = np.zeros_like(positives)
    exclude = np.asarray(exclude, dtype=bool)
    if scores.shape != positives.shape or scores.shape != exclude.shape:
        raise ValueError("scores, positives and exclude must have the same shape")
    positives = positives & ~exclude
    # Sort keys, primary last: excluded last, higher score first, negatives before positives.
    order = np.lexsort((positives, -scores, exclude), axis=-1)
    hits = np.take_along_axis(positives, order, axis=1)
    n_pos = positives.sum(axis=1)
    valid = n_pos > 0
    out: dict[str, np.ndarray] = {}
    discounts = 1.0 / np.log2(np.arange(2, scores.shape[1] + 2))
    for k in ks:
        top = hits[:, :k]
        n_hit = top.sum(axis=1)
        dcg = (top * discounts[: top.shape[1]]).sum(axis=1)
        ideal_cum = np.concatenate([[0.0], np.cumsum(discounts)])
        idcg = ideal_cum[np.minimum(n_pos, min(k, scores.shape[1]))]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"recall@{k}"] = np.where(valid, n_hit / n_pos, np.nan)
            out[f"ndcg@{k}"] = np.where(valid, dcg / idcg, np.nan)
        out[f"hit@{k}"] = np.where(valid, (n_hit > 0).astype(float), np.nan)
    # Every scored row holds a positive somewhere in the full list, so argmax finds the first one.
    out["mrr"] = np.where(valid, 1.0 / (hits.argmax(axis=1) + 1.0), np.nan)
    return out


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Average per-user metrics, ignoring users that were not scored (NaN)."""
    return {name: float(np.nanmean(values)) for name, values in per_user.items()}
