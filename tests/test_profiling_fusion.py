"""The hybrid ranker: its signals against a hand computation from the raw tables, the weight fit,
and the ranker that loads the weights ``profile eval`` fits on validation."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tailormind.config import load_config
from tailormind.errors import WorkspaceError
from tailormind.models.registry import load_role
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fusion import Fusion, Signals, fit_fusion, zscore
from tailormind.profiling.profiles import build_ranker, profile_users
from tailormind.profiling.rankers import HybridRanker, RankQuery
from tests.conftest import fresh
from tests.test_profiling_profiles import PromptedText


def _hand_signals(ws, settings, user: str, candidates: list[str]) -> dict[str, list[float]]:
    """Every non-CF signal of one candidate set from the raw tables, with plain Python."""
    split = ws.read("split").filter(pc.equal(ws.read("split").column("split"), "train"))
    rows = sorted(split.to_pylist(), key=lambda r: (r["user_id"], r["position"]))
    history = [r["item_id"] for r in rows if r["user_id"] == user]
    users_of: dict[str, set[str]] = {}
    for r in rows:
        users_of.setdefault(r["item_id"], set()).add(r["user_id"])
    features = ItemFeatures.load(ws)
    vec = {i: features.matrix[features.index[i]].astype(float) for i in features.ids}

    def cos_items(a: str, b: str) -> float:
        ua, ub = users_of.get(a, set()), users_of.get(b, set())
        return len(ua & ub) / math.sqrt(len(ua) * len(ub)) if ua and ub else 0.0

    recent = history[-settings.profiling.fusion_recent_items:]
    recent_knn = history[-settings.profiling.fusion_recent_knn_items:]
    out: dict[str, list[float]] = {k: [] for k in ("log popularity", "history mean", "history max",
                                                   "recent mean", "item kNN", "recent item kNN")}
    for c in candidates:
        sims = [float(vec[c] @ vec[h]) for h in history]
        out["log popularity"].append(math.log1p(len(users_of.get(c, ()))))
        out["history mean"].append(sum(sims) / len(sims))
        out["history max"].append(max(sims))
        out["recent mean"].append(float(vec[c] @ np.mean([vec[h] for h in recent], axis=0)))
        out["item kNN"].append(sum(cos_items(c, h) for h in history))
        out["recent item kNN"].append(sum(cos_items(c, h) for h in recent_knn))
    return out


def test_signals_match_a_hand_computation(profiled_ws) -> None:
    root, settings = profiled_ws
    from tailormind.data.workspace import Workspace

    ws = Workspace.open(root)
    signals = Signals(ws, settings, ItemFeatures.load(ws))
    valid = ws.read("candidates").filter(pc.equal(ws.read("candidates").column("split"), "valid"))
    for row in valid.to_pylist()[:3]:
        candidates = [row["positive"], *row["negatives"]]
        users, items = signals.index_sets([row["user_id"]], [candidates])
        stacked = signals.stack(users, items)[0]
        names = signals.names(with_profile=False)
        for name, values in _hand_signals(ws, settings, row["user_id"], candidates).items():
            expected = zscore(np.asarray([values]))[0]
            np.testing.assert_allclose(stacked[:, names.index(name)], expected, atol=1e-5,
                                       err_msg=name)
        # the CF column is the checkpoint's dot product, z-scored
        user_emb, item_emb = signals.cf["hypergraph"]
        dots = item_emb[items[0]] @ user_emb[users[0]]
        np.testing.assert_allclose(stacked[:, names.index("cf:hypergraph")],
                                   zscore(dots[None])[0], atol=1e-5)


@hsettings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 12)),
              elements=st.floats(-1e3, 1e3)))
def test_zscore_rows_are_centred_and_unit_or_constant(x: np.ndarray) -> None:
    z = zscore(x)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-7)
    for row, original in zip(z, x, strict=True):
        if original.std() > 1e-9 * max(1.0, np.abs(original).max()):
            assert abs(row.std() - 1.0) < 1e-6
        else:
            assert np.allclose(row, 0.0, atol=1e-6)


def test_fit_recovers_the_informative_signal_and_refuses_no_sets() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 20, 3))
    features[:, 0, 1] += 2.0  # only signal 1 marks the positive
    weights = fit_fusion(features)
    assert weights[1] > 1.0 and abs(weights[0]) < 0.3 and abs(weights[2]) < 0.3
    with pytest.raises(WorkspaceError, match="no validation candidate sets"):
        fit_fusion(np.zeros((0, 20, 3)))


def test_hybrid_ranker_needs_fitted_weights_then_ranks_by_them(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, base = profiled_ws
    settings = load_config(environ={}, overrides={
        "models": {"cache_dir": str(base.models.cache_dir)}, "profiling": {"ranker": "hybrid"}})
    features = ItemFeatures.load(ws)
    with pytest.raises(WorkspaceError, match="profile eval"):
        build_ranker(settings, features, workspace=ws)

    signals = Signals(ws, settings, features)
    data = signals.data
    embed = load_role("embed", settings)
    profiles = embed.embed(["likes adventure"] * len(data.valid))
    fusion = Fusion.fit(signals, data.valid.users, data.valid.items, profiles, settings)
    fusion.save(ws)
    ranker = build_ranker(settings, features, workspace=ws)
    assert isinstance(ranker, HybridRanker) and ranker.uses_profile
    user, items = data.valid.users[0], data.valid.items[0]
    query = RankQuery(data.user_ids[user], "likes adventure", [data.item_ids[i] for i in items])
    expected = fusion.score(signals.stack(np.array([user]), items[None], profiles[:1]))[0]
    np.testing.assert_allclose(ranker.score([query])[0], expected, atol=1e-6)

    # refinement with the hybrid ranker: every user profiled, the test item never ranked
    profiler_text = PromptedText()
    from tailormind.profiling.profiler import Profiler

    profiler = Profiler(settings, features, ranker, profiler_text)
    report = profile_users(ws, settings, profiler=profiler)
    assert report.complete and report.profiled == report.users
    test = ws.read("candidates").filter(pc.equal(ws.read("candidates").column("split"), "test"))
    for row in test.to_pylist():
        assert all(row["positive"] not in seen for seen in ranker.seen.get(row["user_id"], []))


def test_weights_fit_on_other_signals_are_refused(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    signals = Signals(ws, settings, ItemFeatures.load(ws))
    stale = Fusion(names=["log popularity", "cf:lightgcn"], weights=np.ones(2), fit_sets=1,
                   config_hash="x")
    stale.save(ws)
    with pytest.raises(WorkspaceError, match="re-run `tailormind profile eval`"):
        Fusion.load(ws, signals)
