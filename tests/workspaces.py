"""Helpers several test modules share to build and check workspaces (test modules do not import
each other): a profiler on the dummy engine, generation roles with a scripted writer, and the
test-set metrics of the simple scorers computed by hand."""

from __future__ import annotations

from tailormind.data.workspace import Workspace
from tailormind.models.registry import load_role
from tailormind.models.roles import ImageGenerator, TextModel
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.profiler import Profiler
from tailormind.profiling.rankers import EmbeddingRanker


def make_profiler(ws: Workspace, settings, text: TextModel) -> Profiler:
    """The profiler of ``ws`` with the configured embedding ranker and ``text`` as its LLM."""
    features = ItemFeatures.load(ws)
    return Profiler(settings, features, EmbeddingRanker(features, load_role("embed", settings)),
                    text)


def roles_with(settings, text: TextModel, image: ImageGenerator | None = None):
    """The configured generation roles with ``text`` (and ``image``) in place."""
    from tailormind.generation.pipeline import Roles

    roles = Roles.load(settings)
    roles.text = text
    if image is not None:
        roles.image = image
    return roles


def hand_metrics(ws: Workspace, users: set[str] | None = None,
                 methods: tuple[str, ...] = ("popularity", "history-content", "profile (init)",
                                             "profile (refined)"),
                 profiles_table: str = "profiles") -> dict[str, dict[str, float]]:
    """Test-set metrics of the scorers without a fit, from the workspace's tables alone (an
    independent reference for ``evaluate_profiles``): per test candidate set (``users``, or
    all), the positive's rank is the number of negatives scoring at least as high (ties go
    against the positive); Recall@K = HR@K = 1[rank < K], NDCG@K = 1[rank < K] / log2(rank + 2),
    MRR = 1 / (rank + 1), averaged over the sets. Scores: popularity = train interaction count
    (log1p is monotone, so the ranks are the same), history-content = v_i · mean of v_j over
    the user's train items, profile (init / refined) = v_i · that profile's embedding (from
    ``profiles_table``). Only ``methods`` are scored (the profile ones need every chosen user
    profiled)."""
    import math
    from collections import Counter, defaultdict

    import numpy as np

    train = [r for r in ws.read("split").to_pylist() if r["split"] == "train"]
    counts = Counter(r["item_id"] for r in train)
    history: dict[str, list[str]] = defaultdict(list)
    for r in train:
        history[r["user_id"]].append(r["item_id"])
    vector = {r["item_id"]: np.asarray(r["embedding"], dtype=np.float64)
              for r in ws.read("item_features").to_pylist()}
    profiles = {r["user_id"]: r for r in ws.read(profiles_table).to_pylist()}

    def content(user: str, item: str) -> float:
        past = history[user]
        return float(vector[item] @ np.mean([vector[j] for j in past], axis=0)) if past else 0.0

    scorers = {
        "popularity": lambda user, item: counts[item],
        "history-content": content,
        "profile (init)": lambda user, item: float(
            vector[item] @ np.asarray(profiles[user]["initial_embedding"], dtype=np.float64)),
        "profile (refined)": lambda user, item: float(
            vector[item] @ np.asarray(profiles[user]["embedding"], dtype=np.float64)),
    }
    sets = [r for r in ws.read("candidates").to_pylist()
            if r["split"] == "test" and (users is None or r["user_id"] in users)]
    out: dict[str, dict[str, float]] = {}
    for method in methods:
        score, ranks = scorers[method], []
        for r in sets:
            positive = score(r["user_id"], r["positive"])
            ranks.append(sum(score(r["user_id"], n) >= positive for n in r["negatives"]))
        metrics: dict[str, float] = {}
        for k in (10, 20):
            metrics[f"recall@{k}"] = metrics[f"hit@{k}"] = sum(x < k for x in ranks) / len(ranks)
            metrics[f"ndcg@{k}"] = sum(1 / math.log2(x + 2) for x in ranks if x < k) / len(ranks)
        metrics["mrr"] = sum(1 / (x + 1) for x in ranks) / len(ranks)
        out[method] = metrics
    return out
