"""Score every method on the same TEST candidate sets — the only place the test item is read.

Methods: popularity, each trained CF checkpoint (LightGCN, HypergraphCF), ``history-content``
(mean cosine between a candidate and the user's train items: content kNN without a profile),
``profile (init)`` and ``profile (refined)`` (cosine with the profile embedding), every
``profiles__<variant>`` table (e.g. ``nocf``: init without CF augmentation), and ``hybrid``:
a listwise-softmax fusion of the per-set z-scored features [CF scores, profile similarity,
history similarity, log popularity], its weights fit on the VALIDATION sets only (with the
initial profile: the refined one has seen the validation item), applied with the refined one.

Rows are reported on the profiled users (every method, so rows compare) and, for methods without
LLM calls, also on all users. ``curve`` gives the mean validation rank and the test metrics of the
profile after each refinement iteration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailormind.bench.metrics import candidate_metrics
from tailormind.cf.checkpoint import load_checkpoint, trained_models
from tailormind.cf.data import CandidateIndex, CFData, load_cf_data
from tailormind.cf.recommend import check_alignment
from tailormind.cf.train import score_candidates
from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.models.registry import load_role
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.profiles import PROFILES_TABLE

FUSION_STEPS = 400
FUSION_LR = 0.5
FUSION_L2 = 1e-3


@dataclass
class EvalReport:
    users_all: int
    users_profiled: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    fusion_weights: dict[str, float] = field(default_factory=dict)


def _subset(sets: CandidateIndex, users: np.ndarray) -> CandidateIndex:
    keep = np.isin(sets.users, users)
    return CandidateIndex(sets.users[keep], sets.items[keep])


def _zscore(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


def fit_fusion(features: np.ndarray, steps: int = FUSION_STEPS, lr: float = FUSION_LR,
               l2: float = FUSION_L2) -> np.ndarray:
    """Weights w minimising mean −log softmax(X w)[positive], positive in column 0.

    ``features``: (n_sets, M, F), already z-scored per set. Plain gradient descent on a convex
    loss: ∇ = mean_s X_sᵀ (softmax(X_s w) − e_0) + l2·w.
    """
    n, m, f = features.shape
    w = np.zeros(f)
    target = np.zeros(m)
    target[0] = 1.0
    for _ in range(steps):
        logits = features @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = np.einsum("nm,nmf->f", p - target, features) / n + l2 * w
        w -= lr * grad
    return w


class _Scorer:
    """Per-method candidate scores for any CandidateIndex (user and item indices of CFData)."""

    def __init__(self, workspace: Workspace, data: CFData, features: ItemFeatures) -> None:
        self.data = data
        self.item_vectors = features.matrix[features.rows(data.item_ids)]
        self.popularity = data.item_popularity()
        self.history: dict[int, np.ndarray] = {}
        for user, item in zip(data.train_users.tolist(), data.train_items.tolist(), strict=True):
            self.history.setdefault(user, []).append(item)  # type: ignore[arg-type]
        self.cf: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in trained_models(workspace):
            checkpoint = load_checkpoint(workspace, name)
            check_alignment(checkpoint, data)
            self.cf[name] = (checkpoint.user_embeddings, checkpoint.item_embeddings)

    def popularity_scores(self, sets: CandidateIndex) -> np.ndarray:
        return np.log1p(self.popularity[sets.items])

    def cf_scores(self, name: str, sets: CandidateIndex) -> np.ndarray:
        users, items = self.cf[name]
        return score_candidates(users, items, sets)

    def history_scores(self, sets: CandidateIndex) -> np.ndarray:
        out = np.zeros(sets.items.shape)
        for row, user in enumerate(sets.users.tolist()):
            past = self.history.get(user)
            if past:
                centroid = self.item_vectors[np.asarray(past)].mean(axis=0)
                out[row] = self.item_vectors[sets.items[row]] @ centroid
        return out

    def profile_scores(self, vectors: dict[int, np.ndarray], sets: CandidateIndex) -> np.ndarray:
        out = np.zeros(sets.items.shape)
        for row, user in enumerate(sets.users.tolist()):
            out[row] = self.item_vectors[sets.items[row]] @ vectors[user]
        return out


def evaluate_profiles(workspace: Workspace, settings: Settings,
                      variant_tables: list[str] | None = None) -> EvalReport:
    if not workspace.has(PROFILES_TABLE):
        raise WorkspaceError(f"workspace {workspace.root} has no profiles; run "
                             f"`tailormind profile run --workspace {workspace.root}` first")
    data = load_cf_data(workspace)
    features = ItemFeatures.load(workspace)
    scorer = _Scorer(workspace, data, features)
    user_index = {u: i for i, u in enumerate(data.user_ids)}
    profiles = workspace.read(PROFILES_TABLE).to_pylist()
    profiled = np.array(sorted(user_index[p["user_id"]] for p in profiles))
    refined = {user_index[p["user_id"]]: np.asarray(p["embedding"]) for p in profiles}
    initial = {user_index[p["user_id"]]: np.asarray(p["initial_embedding"]) for p in profiles}
    cost = {"llm_tokens_per_user": float(np.mean([p["prompt_tokens"] + p["completion_tokens"]
                                                  for p in profiles])),
            "seconds_per_user": float(np.mean([p["seconds"] for p in profiles]))}
    test_all, test_sample = data.test, _subset(data.test, profiled)
    valid_sample = _subset(data.valid, profiled)
    report = EvalReport(users_all=len(test_all), users_profiled=len(test_sample))

    def add(method: str, scores_of, sample_only: bool = False, **info: Any) -> None:
        row: dict[str, Any] = {"method": method, **info}
        row["sample"] = candidate_metrics(scores_of(test_sample))
        if not sample_only:
            row["all"] = candidate_metrics(scores_of(test_all))
        report.rows.append(row)

    no_llm = {"llm_tokens_per_user": 0.0, "seconds_per_user": 0.0}
    add("popularity", scorer.popularity_scores, **no_llm)
    for name in scorer.cf:
        add(name, lambda s, name=name: scorer.cf_scores(name, s), **no_llm)
    add("history-content", scorer.history_scores, **no_llm)
    add("profile (init)", lambda s: scorer.profile_scores(initial, s), sample_only=True, **cost)
    add("profile (refined)", lambda s: scorer.profile_scores(refined, s), sample_only=True, **cost)
    for table in variant_tables or []:
        if not workspace.has(table):
            continue
        rows = workspace.read(table).to_pylist()
        vectors = {user_index[r["user_id"]]: np.asarray(r["embedding"]) for r in rows}
        users = np.array(sorted(vectors))
        subset = _subset(data.test, users)
        variant_cost = {"llm_tokens_per_user": float(np.mean(
            [r["prompt_tokens"] + r["completion_tokens"] for r in rows])),
            "seconds_per_user": float(np.mean([r["seconds"] for r in rows]))}
        report.rows.append({"method": f"profile (refined, {table.split('__', 1)[1]})",
                            "sample": candidate_metrics(scorer.profile_scores(vectors, subset)),
                            "users": len(subset), **variant_cost})

    names = ["log popularity", *scorer.cf, "history similarity", "profile similarity"]

    def stack(sets: CandidateIndex, profile_vectors: dict[int, np.ndarray]) -> np.ndarray:
        columns = [scorer.popularity_scores(sets), *(scorer.cf_scores(n, sets) for n in scorer.cf),
                   scorer.history_scores(sets), scorer.profile_scores(profile_vectors, sets)]
        return np.stack([_zscore(c) for c in columns], axis=2)

    # The refined profile was optimised on the validation item, so its similarity there is
    # inflated; the weights are fit with the initial profile, then applied to the refined one.
    weights = fit_fusion(stack(valid_sample, initial))
    report.fusion_weights = dict(zip(names, weights.round(4).tolist(), strict=True))
    add("hybrid (fit on valid)", lambda s: stack(s, refined) @ weights, sample_only=True, **cost)
    report.curve = _curve(profiles, user_index, scorer, data, settings)
    return report


def _curve(profiles: list[dict], user_index: dict[str, int], scorer: _Scorer, data: CFData,
           settings: Settings) -> list[dict[str, Any]]:
    """Validation rank and test metrics of the accepted profile after each iteration."""
    embed = load_role("embed", settings)
    n_max = settings.profiling.n_max
    per_iteration: list[dict[int, str]] = [{} for _ in range(n_max + 1)]
    ranks: list[list[int]] = [[] for _ in range(n_max + 1)]
    for p in profiles:
        history = json.loads(p["iterations"])
        user = user_index[p["user_id"]]
        current, rank = p["initial_profile"], p["valid_rank_initial"]
        for n in range(n_max + 1):
            for step in history:
                if step["iteration"] == n and step["accepted"]:
                    current, rank = step["profile"], step["valid_rank"]
            per_iteration[n][user] = current
            ranks[n].append(rank)
    out = []
    for n in range(n_max + 1):
        users = sorted(per_iteration[n])
        texts = [per_iteration[n][u] for u in users]
        matrix = embed.embed(texts)
        matrix[np.array([not t for t in texts], dtype=bool)] = 0.0  # no profile: no vector
        vectors = dict(zip(users, matrix, strict=True))
        sets = _subset(data.test, np.array(users))
        out.append({"iteration": n, "mean_valid_rank": float(np.mean(ranks[n])),
                    "test": candidate_metrics(scorer.profile_scores(vectors, sets))})
    return out
