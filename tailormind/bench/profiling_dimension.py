"""TailorBench's profiling dimension: Recall/NDCG@K of each method's profile on the benchmark
users' TEST candidate sets (1 positive : 99 negatives), one value per user so the report can give
bootstrap intervals; and the refinement curve on the same users.

Rows (those the workspace can compute): TailorMind's refined profile ranking by cosine, and the
hybrid reranker with it (weights fit on the same users' VALIDATION sets with the initial profile,
as :func:`~tailormind.profiling.evaluate.evaluate_profiles` does) and without the profile signal
(refit on the same validation sets: the difference is what the profile adds); the initial
profile (w/o textual-gradient refinement); the refined ``profiles__nocf`` (w/o CF);
profile-free: the mean description embedding of the train history ("history-content");
popularity; every trained CF model. w/o RAG and w/o reflection change generation only: their profiles are TailorMind's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tailormind.core.metrics import DEFAULT_KS, candidate_ranks, per_set_metrics
from tailormind.cf.data import CandidateIndex
from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.profiling.evaluate import CandidateScorer, refinement_curve
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fit import fit_with_profiles, initial_vectors, profile_rows, subset_sets
from tailormind.profiling.fusion import Fusion, Signals
from tailormind.profiling.profiles import PROFILES_TABLE


def profiling_dimension(workspace: Workspace, settings: Settings, features: ItemFeatures,
                        user_ids: list[str], ks: tuple[int, ...] = DEFAULT_KS
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(rows, curve)``: each row ``{"method", "label", "users", "user_ids", "values":
    {metric: [...]}}`` with per-user values (``user_ids[k]`` is whose ``values[metric][k]``);
    ``curve`` per refinement iteration on these users."""
    signals = Signals(workspace, settings, features)
    data, scorer, index = signals.data, CandidateScorer(signals), signals.user_index
    profiles = [r for r in workspace.read(PROFILES_TABLE).to_pylist() if r["user_id"] in
                set(user_ids)] if workspace.has(PROFILES_TABLE) else []
    chosen = np.array(sorted(index[u] for u in user_ids if u in index))
    test = subset_sets(data.test, chosen)
    rows: list[dict[str, Any]] = []

    def add(method: str, label: str, sets: CandidateIndex,
            scores_of: Callable[[CandidateIndex], np.ndarray]) -> None:
        if not len(sets):
            return
        values = per_set_metrics(candidate_ranks(scores_of(sets)), ks)
        rows.append({"method": method, "label": label, "users": len(sets),
                     "user_ids": [data.user_ids[int(u)] for u in sets.users],
                     "values": {k: v.tolist() for k, v in values.items()}})

    if profiles:
        refined = {index[p["user_id"]]: np.asarray(p["embedding"]) for p in profiles}
        initial = initial_vectors(profiles, index)
        profiled = subset_sets(test, np.array(sorted(refined)))
        add("tailormind", "TailorMind (refined profile, cosine)", profiled,
            lambda s: scorer.profile(refined, s))
        valid = subset_sets(data.valid, np.array(sorted(refined)))
        fusion = fit_with_profiles(signals, profiles, settings)
        add("tailormind_hybrid", "TailorMind (hybrid reranker, refined profile)", profiled,
            lambda s: fusion.score(signals.stack(s.users, s.items, profile_rows(refined, s))))
        plain = Fusion.fit(signals, valid.users, valid.items, None, settings)
        add("hybrid_no_profile", "Hybrid reranker without the profile signal", profiled,
            lambda s: plain.score(signals.stack(s.users, s.items)))
        add("no_refinement", "w/o refinement (initial profile, cosine)", profiled,
            lambda s: scorer.profile(initial, s))
    nocf_table = f"{PROFILES_TABLE}__nocf"
    if workspace.has(nocf_table):
        nocf = {index[r["user_id"]]: np.asarray(r["embedding"])
                for r in workspace.read(nocf_table).to_pylist() if r["user_id"] in set(user_ids)}
        if nocf:
            add("no_cf", "w/o CF (refined profile without CF(D_u), cosine)",
                subset_sets(test, np.array(sorted(nocf))), lambda s: scorer.profile(nocf, s))
    add("profile_free", "Profile-free (history content, cosine)", test, scorer.history)
    add("popularity", "Popularity", test, scorer.popularity)
    for name in signals.cf:
        add(f"cf:{name}", f"CF: {name}", test, lambda s, n=name: scorer.cf(n, s))
    curve = refinement_curve(profiles, index, scorer, data, settings) if profiles else []
    return rows, curve


def table_metrics(workspace: Workspace, signals: Signals, table: str, user_ids: list[str],
                  ks: tuple[int, ...] = DEFAULT_KS) -> list[dict[str, Any]]:
    """Per user of ``user_ids`` profiled in ``table``: Recall/NDCG@K of the refined profile
    (cosine) on the user's TEST candidate set — the ``tailormind`` row above, for any profiles
    table (the sensitivity sweep's variants). One ``{"user_id", metric: value}`` per user."""
    index, wanted = signals.user_index, set(user_ids)
    refined = {index[r["user_id"]]: np.asarray(r["embedding"])
               for r in workspace.read(table, columns=["user_id", "embedding"]).to_pylist()
               if r["user_id"] in wanted and r["user_id"] in index}
    if not refined:
        return []
    sets = subset_sets(signals.data.test, np.array(sorted(refined)))
    values = per_set_metrics(candidate_ranks(CandidateScorer(signals).profile(refined, sets)), ks)
    return [{"user_id": signals.data.user_ids[int(u)],
             **{k: float(v[i]) for k, v in values.items()}}
            for i, u in enumerate(sets.users.tolist())]
