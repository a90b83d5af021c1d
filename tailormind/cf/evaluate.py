"""Score trained CF models and item popularity on the stored candidate sets (and full ranking).

Every method is scored by :mod:`tailormind.core.metrics` on exactly the same 1:99 sets.
Full ranking ranks the whole catalogue minus the user's train items (and, for test, the
validation item), with the held-out item as the single positive.

Every comparison is also given as a **paired difference** over the same users
(:func:`paired_differences`): per-user Recall@K / NDCG@K of method a minus method b, matched by
user id, with a paired-bootstrap interval (:func:`tailormind.core.bootstrap.paired_difference`;
B = ``bench.bootstrap_resamples``, coverage ``bench.confidence``, seed ``seeds.bench``). The
pairs are every trained model against popularity and every two trained models (first named
minus second), on the test candidate sets and, with ``full``, on the full ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailormind.core.bootstrap import paired_difference
from tailormind.core.metrics import (
    DEFAULT_KS,
    candidate_ranks,
    full_ranking_metrics,
    mean_metrics,
    metrics_from_ranks,
    per_set_metrics,
)
from tailormind.cf.checkpoint import load_checkpoint, trained_models
from tailormind.cf.data import CandidateIndex, CFData, load_cf_data
from tailormind.cf.popularity import popularity_full, popularity_scores
from tailormind.cf.recommend import check_alignment, train_mask
from tailormind.cf.train import score_candidates
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError

#: user indices -> (len(users) x n_items) scores
FullScorer = Callable[[np.ndarray], np.ndarray]

#: the metrics every paired comparison reports
PAIRED_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


@dataclass(frozen=True)
class PerUser:
    """One method's per-user metric values: ``values[metric][i]`` belongs to user ``users[i]``.

    Pairs are matched by these ids (never by position), so two methods scored on the same users
    in a different order, or on overlapping subsets, still compare user by user."""

    users: np.ndarray
    values: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        users = np.asarray(self.users)
        if len(np.unique(users)) != len(users):
            raise ValueError("per-user values need unique users")
        for name, v in self.values.items():
            if len(v) != len(users):
                raise ValueError(f"{name}: {len(v)} values for {len(users)} users")
        object.__setattr__(self, "users", users)

    @classmethod
    def from_ranks(cls, users: Sequence | np.ndarray, ranks: np.ndarray,
                   ks: Sequence[int] = DEFAULT_KS) -> PerUser:
        """From 0-based ranks of each user's single positive (candidate sets)."""
        return cls(np.asarray(users), per_set_metrics(ranks, ks))


@dataclass(frozen=True)
class Bootstrap:
    """Paired-bootstrap settings: B resamples, interval coverage, seed."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 2026

    @classmethod
    def of(cls, settings: Any) -> Bootstrap:
        """``bench.bootstrap_resamples``, ``bench.confidence`` and ``seeds.bench``."""
        return cls(settings.bench.bootstrap_resamples, settings.bench.confidence,
                   settings.seeds.bench)


def paired_differences(a_name: str, a: PerUser, b_name: str, b: PerUser, *,
                       bootstrap: Bootstrap | None = None,
                       metrics: Sequence[str] = PAIRED_METRICS,
                       **context: Any) -> list[dict[str, Any]]:
    """``a − b`` per metric over the users both were scored on (matched by id, in sorted id
    order), each entry :meth:`PairedDifference.as_dict` plus ``confidence`` and ``context``
    (e.g. ``split="test"``). No shared user (or only NaN values): no entry."""
    bootstrap = bootstrap or Bootstrap()
    common, ia, ib = np.intersect1d(a.users, b.users, assume_unique=True, return_indices=True)
    out: list[dict[str, Any]] = []
    if not len(common):
        return out
    for metric in metrics:
        if metric not in a.values or metric not in b.values:
            continue
        diff = paired_difference(a.values[metric][ia], b.values[metric][ib], a=a_name, b=b_name,
                                 metric=metric, resamples=bootstrap.resamples,
                                 alpha=1.0 - bootstrap.confidence, seed=bootstrap.seed)
        if diff.difference.n:
            out.append({**diff.as_dict(), "confidence": bootstrap.confidence, **context})
    return out


@dataclass
class CFEvaluation:
    """The rows of :func:`evaluate_workspace`, the paired comparisons, and (not serialised) the
    per-user values behind them: ``per_user[(method, split)]``."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    per_user: dict[tuple[str, str], PerUser] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """What ``cf eval --json`` prints: the rows and the paired list, no per-user numbers."""
        return {"rows": self.rows, "paired": self.paired}


def full_ranking(data: CFData, sets: CandidateIndex, scorer: FullScorer, ks: Sequence[int],
                 exclude_other: CandidateIndex | None = None, batch: int = 512) -> dict[str, float]:
    """Mean full-ranking metrics for the positives of ``sets`` (column 0)."""
    return mean_metrics(full_ranking_per_user(data, sets, scorer, ks, exclude_other, batch))


def full_ranking_per_user(data: CFData, sets: CandidateIndex, scorer: FullScorer,
                          ks: Sequence[int], exclude_other: CandidateIndex | None = None,
                          batch: int = 512) -> dict[str, np.ndarray]:
    """Per-user full-ranking metrics, one value per row of ``sets`` (NaN: not scored)."""
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
    return {k: np.concatenate(v) for k, v in per_user.items()}


def evaluate_workspace(
    workspace: Workspace,
    models: Sequence[str] | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    full: bool = False,
) -> list[dict[str, Any]]:
    """One row per method: test (and validation) metrics on the candidate sets."""
    return evaluate_cf(workspace, models, ks=ks, full=full).rows


def evaluate_cf(
    workspace: Workspace,
    models: Sequence[str] | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    full: bool = False,
    bootstrap: Bootstrap | None = None,
) -> CFEvaluation:
    """The rows of :func:`evaluate_workspace` and the paired comparisons over the same users."""
    data = load_cf_data(workspace)
    if len(data.test) == 0:
        raise WorkspaceError("the split has no test candidate sets (every user is train-only)")
    names = list(dict.fromkeys(models)) if models else trained_models(workspace)
    result = CFEvaluation()
    methods: list[tuple[str, Callable[[CandidateIndex], np.ndarray], FullScorer, dict[str, Any]]] = [
        ("popularity", lambda s: popularity_scores(data, s),
         lambda users: popularity_full(data, users), {}),
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
        ranks = candidate_ranks(score_sets(data.test))
        row["test"] = metrics_from_ranks(ranks, ks)
        result.per_user[(name, "test")] = PerUser.from_ranks(data.test.users, ranks, ks)
        if len(data.valid):
            row["valid"] = metrics_from_ranks(candidate_ranks(score_sets(data.valid)), ks)
        if full:
            values = full_ranking_per_user(data, data.test, score_full, ks, exclude_other=data.valid)
            row["test_full"] = mean_metrics(values)
            result.per_user[(name, "test_full")] = PerUser(data.test.users, values)
        result.rows.append(row)
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg") for k in ks]
    for split in ("test", "test_full") if full else ("test",):
        for a, b in model_pairs(names):
            result.paired += paired_differences(a, result.per_user[(a, split)],
                                                b, result.per_user[(b, split)],
                                                bootstrap=bootstrap, metrics=metrics, split=split)
    return result


def model_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every trained model against popularity, then every two models, first named minus second."""
    pairs = [(name, "popularity") for name in names]
    pairs += [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return pairs
