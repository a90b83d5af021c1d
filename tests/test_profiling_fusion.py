"""The hybrid ranker: its signals against a hand computation from the raw tables, the weight fit,
and the ranker that loads the weights ``profile fit`` fits on validation."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tailormind.config import load_config
from tailormind.errors import WorkspaceError
from tailormind.models.registry import load_role
from tailormind.models.roles import Embedder
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fusion import Fusion, Signals, fit_fusion, zscore
from tailormind.profiling.profiles import build_ranker, profile_users
from tailormind.profiling.rankers import HybridRanker, RankQuery
from tests.conftest import fresh
from tests.fakes import ProfilingText


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
    with pytest.raises(WorkspaceError, match="profile fit"):
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
    profiler_text = ProfilingText()
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
    with pytest.raises(WorkspaceError, match="re-run `tailormind profile fit`"):
        Fusion.load(ws, signals)


# -- a hand-made workspace: every signal from the definitions, in plain Python -------------------

VECTORS = {"a": (1.0, 0.0), "b": (0.0, 1.0), "c": (0.6, 0.8), "d": (0.8, 0.6),
           "e": (-1.0, 0.0), "f": (0.0, -1.0), "g": (0.6, -0.8), "h": (-0.8, 0.6), "i": (0.28, 0.96)}
#: user -> items, oldest first. With min_interactions=2 the last two are valid and test, so the
#: train histories are u1 a b c, u2 a c d, u3 b d h, u4 (none), u5 g (one interaction: train only);
#: nobody rated i, the last item.
LOG = {"u1": "abcde", "u2": "acdfg", "u3": "bdhca", "u4": "ab", "u5": "g"}
TRAIN = {"u1": "abc", "u2": "acd", "u3": "bdh", "u4": "", "u5": "g"}
USER_EMB = np.array([[1, 0], [0, 1], [1, 1], [2, -1], [0, 0]], dtype=np.float32)
ITEM_EMB = np.array([[1, 2], [3, -1], [0, 1], [2, 2], [-1, 0], [1, 1], [0, 3], [2, 0], [1, -2]],
                    dtype=np.float32)
#: u3's history mixes items rated by 2 users (b, d) and by 1 (h), and d is co-rated with all three
SETS = [("u1", "dhgef"), ("u2", "bheag"), ("u3", "acdgi"), ("u4", "cdegi")]
RECENT, RECENT_KNN = 2, 1


def _tiny_settings(**profiling):
    return load_config(environ={}, overrides={"profiling": {
        "fusion_recent_items": RECENT, "fusion_recent_knn_items": RECENT_KNN, **profiling}})


def _tiny_workspace(root, settings):
    """The LOG above, split (min 2 interactions, 2 negatives), with a 'lightgcn' checkpoint holding
    USER_EMB / ITEM_EMB; returns (workspace, item features)."""
    from tailormind.cf.checkpoint import save_checkpoint
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.train import TrainResult
    from tailormind.data.ingest import save_import
    from tailormind.data.records import ImportBundle, interactions_table, items_table, users_table
    from tailormind.data.split import split_workspace

    rows = [(u, i, t) for u, items in LOG.items() for t, i in enumerate(items)]
    users, items, ts = zip(*rows, strict=True)
    bundle = ImportBundle(items_table(list(VECTORS)),
                          interactions_table(list(users), list(items), timestamps=np.array(ts) + 1),
                          users_table(list(users)), {})
    ws = save_import(bundle, root)
    split_workspace(ws, negatives=2, min_interactions=2, seed=0)
    result = TrainResult(model="lightgcn", use_tags=False, history=[], best_epoch=0, best_valid={},
                         user_embeddings=USER_EMB, item_embeddings=ITEM_EMB, state_dict={}, graph={})
    save_checkpoint(ws, result, load_cf_data(ws), settings.cf, name="lightgcn")
    ids = list(VECTORS)
    features = ItemFeatures(ids=ids, index={i: k for k, i in enumerate(ids)}, descriptions=ids,
                            matrix=np.array([VECTORS[i] for i in ids], dtype=np.float32), model="m")
    return ws, features


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    settings = _tiny_settings()
    ws, features = _tiny_workspace(tmp_path_factory.mktemp("tiny") / "ws", settings)
    return ws, settings, features


def _plain_zscore(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if std <= 1e-9 * max(1.0, max(abs(v) for v in values)):
        return [0.0] * len(values)
    return [(v - mean) / std for v in values]


def _reference(features: ItemFeatures, user: str, candidates: str, profile=None) -> dict[str, list[float]]:
    """Raw (not z-scored) signals of one set, straight from the definitions in fusion.py."""
    vec = {i: [float(x) for x in features.matrix[features.index[i]]] for i in VECTORS}
    dot = lambda p, q: sum(x * y for x, y in zip(p, q, strict=True))  # noqa: E731
    users_of = {i: {u for u, h in TRAIN.items() if i in h} for i in VECTORS}

    def cos(i: str, j: str) -> float:
        both = len(users_of[i] & users_of[j])
        return both / math.sqrt(len(users_of[i]) * len(users_of[j])) if both else 0.0

    history = TRAIN[user]
    recent, recent_knn = history[-RECENT:], history[-RECENT_KNN:]
    u = list(USER_EMB[list(LOG).index(user)].astype(float))
    out: dict[str, list[float]] = {}
    for i in candidates:
        sims = [dot(vec[i], vec[j]) for j in history]
        centre = [sum(vec[j][k] for j in recent) / len(recent) for k in range(2)] if recent else [0.0, 0.0]
        values = {
            "log popularity": math.log1p(len(users_of[i])),
            "cf:lightgcn": dot(u, ITEM_EMB[list(VECTORS).index(i)].astype(float)),
            "history mean": sum(sims) / len(sims) if sims else 0.0,
            "history max": max(sims) if sims else 0.0,
            "recent mean": dot(vec[i], centre),
            "item kNN": sum(cos(i, j) for j in history),
            "recent item kNN": sum(cos(i, j) for j in recent_knn) if history else 0.0,
        }
        if profile is not None:
            values["profile"] = dot(vec[i], profile)
        for name, value in values.items():
            out.setdefault(name, []).append(value)
    return out


def test_reference_by_hand(tiny) -> None:
    """Anchor the reference with numbers worked out on paper (u1: history a b c, recent b c, c)."""
    _, _, features = tiny
    raw = _reference(features, "u1", "dhgef")
    # d = (.8, .6) is rated by u2, u3; a by u1, u2; b by u1, u3; c by u1, u2; h by u3 only
    assert raw["item kNN"] == pytest.approx([3 * 1 / 2, 1 / math.sqrt(2), 0, 0, 0])
    assert raw["recent item kNN"] == pytest.approx([1 / 2, 0, 0, 0, 0])
    assert raw["history max"][0] == pytest.approx(0.96) and raw["history mean"][0] == pytest.approx(2.36 / 3)
    assert raw["recent mean"][0] == pytest.approx(0.8 * 0.3 + 0.6 * 0.9)  # centre of b, c = (.3, .9)
    assert raw["log popularity"] == pytest.approx([math.log(3), math.log(2), math.log(2), 0, 0])
    assert raw["cf:lightgcn"] == [2.0, 2.0, 0.0, -1.0, 1.0]  # user (1, 0) . items d h g e f


def test_tiny_signals_match_the_reference(tiny) -> None:
    ws, settings, features = tiny
    signals = Signals(ws, settings, features)
    names = ["log popularity", "cf:lightgcn", "history mean", "history max", "recent mean",
             "item kNN", "recent item kNN"]
    assert signals.names(with_profile=False) == names
    assert signals.names(with_profile=True) == [*names, "profile"]
    users, items = signals.index_sets([u for u, _ in SETS], [list(c) for _, c in SETS])
    profiles = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 1.0], [-1.0, 0.5]])
    for with_profile in (False, True):
        stacked = signals.stack(users, items, profiles if with_profile else None)
        assert stacked.shape == (4, 5, len(names) + with_profile)
        for row, (user, cands) in enumerate(SETS):
            raw = _reference(features, user, cands, profiles[row].tolist() if with_profile else None)
            for col, name in enumerate(signals.names(with_profile)):
                np.testing.assert_allclose(stacked[row, :, col], _plain_zscore(raw[name]), rtol=0,
                                           atol=1e-10, err_msg=f"{user} {name}")


def test_index_sets_and_their_errors(tiny) -> None:
    ws, settings, features = tiny
    signals = Signals(ws, settings, features)
    users, items = signals.index_sets(["u3", "u1"], [["h", "a"], ["b", "c"]])
    assert users.tolist() == [2, 0] and items.tolist() == [[7, 0], [1, 2]]
    none_users, none_items = signals.index_sets([], [])
    assert none_users.dtype == none_items.dtype == np.int64
    with pytest.raises(WorkspaceError, match=r"^hybrid ranker: 'zz' is not a user or item of the split "
                                             r"workspace$"):
        signals.index_sets(["u1"], [["a", "zz"]])
    with pytest.raises(ValueError):  # 2 users, 1 candidate set: refused, not truncated
        signals.stack(np.array([0, 1]), np.array([[0, 1]]))


def test_signals_use_the_cf_data_they_are_given(tiny) -> None:
    from tailormind.cf.data import load_cf_data

    ws, settings, features = tiny
    data = load_cf_data(ws)
    assert Signals(ws, settings, features, data=data).data is data


def _ranker_ws(tmp_path, **profiling):
    settings = _tiny_settings(**profiling)
    ws, features = _tiny_workspace(tmp_path / "ws", settings)
    return ws, settings, Signals(ws, settings, features)


def test_fusion_fit_save_load_round_trip(tmp_path) -> None:
    import json

    ws, settings, signals = _ranker_ws(tmp_path, fusion_l2=0.25)
    users, items = signals.index_sets([u for u, _ in SETS], [list(c) for _, c in SETS])
    profiles = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 1.0], [-1.0, 0.5]])
    plain = Fusion.fit(signals, users, items, None, settings)
    assert plain.names == signals.names(False) and plain.fit_sets == 4
    np.testing.assert_array_equal(plain.weights, fit_fusion(signals.stack(users, items), l2=0.25))
    fusion = Fusion.fit(signals, users, items, profiles, settings)
    assert fusion.names == signals.names(True) and fusion.fit_sets == 4
    assert fusion.config_hash == settings.config_hash("profiling", "cf")
    np.testing.assert_array_equal(fusion.weights, fit_fusion(signals.stack(users, items, profiles), l2=0.25))

    with pytest.raises(WorkspaceError, match="^" + re.escape(
            f"workspace {ws.root} has no fitted hybrid weights; run `tailormind profile fit "
            f"--workspace {ws.root}` (it fits them on the validation sets), or set "
            "profiling.ranker: embedding") + "$"):
        Fusion.load(ws, signals)
    for fitted in (fusion, plain):
        fitted.save(ws)
        entry = ws.artifact("fusion")
        assert (entry["path"], entry["fit_sets"], entry["fit_on"]) == ("fusion.json", 4, "validation")
        assert json.loads(ws.artifact_path("fusion.json").read_text(encoding="utf-8")) == {
            "names": fitted.names, "weights": fitted.weights.tolist(), "fit_sets": 4,
            "config_hash": fitted.config_hash}
        loaded = Fusion.load(ws, signals)
        assert (loaded.names, loaded.fit_sets, loaded.config_hash) == (fitted.names, 4, fitted.config_hash)
        np.testing.assert_array_equal(loaded.weights, fitted.weights)


def test_stale_weights_are_refused_with_both_signal_lists(tmp_path) -> None:
    ws, _, signals = _ranker_ws(tmp_path)
    Fusion(names=["log popularity", "cf:hypergraph"], weights=np.ones(2), fit_sets=1, config_hash="x").save(ws)
    path = ws.artifact_path("fusion.json")
    message = (f"the hybrid weights in {path} were fit on signals ['log popularity', 'cf:hypergraph'], "
               f"but this workspace now has {signals.names(True)}; re-run `tailormind profile fit`")
    with pytest.raises(WorkspaceError, match="^" + re.escape(message) + "$"):
        Fusion.load(ws, signals)


def test_as_dict_rounds_to_four_places() -> None:
    fusion = Fusion(names=["x", "y"], weights=np.array([0.123456, -2.0]), fit_sets=1, config_hash="h")
    assert fusion.as_dict() == {"x": 0.1235, "y": -2.0}
    with pytest.raises(ValueError):
        Fusion(names=["x"], weights=np.array([1.0, 2.0]), fit_sets=1, config_hash="h").as_dict()


# -- zscore and the weight fit on tiny arrays ----------------------------------------------------

def test_zscore_three_dimensional_by_hand() -> None:
    x = np.array([[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], [[0.0, 0.0, 6.0], [2.0, 4.0, 0.0]]])
    r = math.sqrt(1.5)
    # [1 2 3]: mean 2, std sqrt(2/3); [0 0 6]: mean 2, std sqrt(8); [2 4 0]: mean 2, std sqrt(8/3)
    expected = [[[-r, 0, r], [0, 0, 0]], [[-1 / math.sqrt(2), -1 / math.sqrt(2), math.sqrt(2)], [0, r, -r]]]
    np.testing.assert_allclose(zscore(x), expected, atol=1e-12)


def test_zscore_of_constant_sets_is_zero_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 for a constant set, even one thrown away
        z = zscore(np.array([[5.0, 5.0, 5.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(z, [[0, 0, 0], [-math.sqrt(1.5), 0, math.sqrt(1.5)], [0, 0, 0]])


def test_zscore_constant_threshold_is_relative_to_each_set() -> None:
    """std <= 1e-9 * max(1, |x|) of the set is constant; the limit is per set, not global."""
    # std 1e-9 exactly: at the limit (constant); std 1.5e-9: above it
    np.testing.assert_array_equal(zscore(np.array([[0.0, 2e-9]])), [[0.0, 0.0]])
    np.testing.assert_allclose(zscore(np.array([[0.0, 3e-9]])), [[-1.0, 1.0]])
    # at scale 1e8 the limit is 0.1: a spread of 0.05 is noise; the small set next to it is not
    z = zscore(np.array([[[0.0, 3e-9], [1e8, 1e8 + 0.05]]]))
    np.testing.assert_allclose(z, [[[-1.0, 1.0], [0.0, 0.0]]])
    z = zscore(np.array([[0.0, 3e-9, 0.0], [1e8, 1e8 + 0.05, 1e8], [4.0, 4.0, 4.0]]))
    np.testing.assert_allclose(z, [[-1 / math.sqrt(2), math.sqrt(2), -1 / math.sqrt(2)], [0, 0, 0], [0, 0, 0]],
                               atol=1e-6)


FIT_SETS = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
                     [[2.0, 1.0], [0.0, 0.0], [1.0, 2.0]]])


def _plain_gradient(features: np.ndarray, w: list[float], l2: float) -> list[float]:
    """mean_s X_s^T (softmax(X_s w) - e_0) + l2 w, with loops."""
    grad = [0.0] * len(w)
    for s in features.tolist():
        logits = [sum(a * b for a, b in zip(row, w, strict=True)) for row in s]
        top = max(logits)
        e = [math.exp(v - top) for v in logits]
        p = [v / sum(e) for v in e]
        for j, row in enumerate(s):
            for k, value in enumerate(row):
                grad[k] += (p[j] - (j == 0)) * value / len(features)
    return [g + l2 * wk for g, wk in zip(grad, w, strict=True)]


def test_fit_steps_by_hand() -> None:
    # w = 0: uniform softmax; set 0: (1/3, 1/3) - (1, 0); set 1: (1, 1) - (2, 1); mean (-5/6, 1/6)
    np.testing.assert_allclose(fit_fusion(FIT_SETS, steps=1), [5 / 12, -1 / 12])
    np.testing.assert_allclose(fit_fusion(FIT_SETS, steps=1, lr=0.3), [0.25, -0.05])
    np.testing.assert_allclose(fit_fusion(FIT_SETS[:1], steps=1), [1 / 3, -1 / 6])  # one set is enough
    w = [0.0, 0.0]
    for _ in range(2):
        w = [wk - 0.5 * g for wk, g in zip(w, _plain_gradient(FIT_SETS, w, 0.5), strict=True)]
    np.testing.assert_allclose(fit_fusion(FIT_SETS, l2=0.5, steps=2), w, rtol=1e-12)


@pytest.mark.parametrize("l2", [None, 0.1])
def test_fit_reaches_the_minimiser_of_the_documented_loss(l2: float | None) -> None:
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    features = np.random.default_rng(3).normal(size=(40, 5, 2))
    lam = 1e-3 if l2 is None else l2  # the documented default penalty

    def loss(w: np.ndarray) -> float:
        logits = features @ w
        return float(np.mean(logsumexp(logits, axis=1) - logits[:, 0]) + lam / 2 * w @ w)

    best = minimize(loss, np.zeros(2), method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000}).x
    fitted = fit_fusion(features) if l2 is None else fit_fusion(features, l2=l2)
    np.testing.assert_allclose(fitted, best, atol=1e-6)


def test_fit_is_shift_invariant_per_set_even_at_large_offsets() -> None:
    """Adding a constant to a set's signal changes no softmax; at -1e4 a fit without the per-set
    max shift would underflow to 0/0."""
    a = np.array([[1.0], [0.0], [0.0]])
    shifted = fit_fusion(np.stack([a, a - 1e4]), steps=50)
    np.testing.assert_allclose(shifted, fit_fusion(np.stack([a, a]), steps=50), atol=1e-6)
    assert np.isfinite(shifted).all()


def test_fit_refuses_no_sets_with_its_message() -> None:
    with pytest.raises(WorkspaceError, match=r"^cannot fit the hybrid ranker: no validation candidate sets$"):
        fit_fusion(np.zeros((0, 4, 2)))


class VectorEmbedder(Embedder):
    """'0.6 0.8' -> that vector (normalised by the role); counts the texts it was asked for."""

    def __init__(self) -> None:
        super().__init__(backend="vector", model_id="vector")
        self.asked: list[str] = []

    @property
    def dim(self) -> int:
        return 2

    def _encode(self, texts):
        self.asked += texts
        return np.array([[float(x) for x in t.split()] for t in texts], dtype=np.float32)


def test_hybrid_ranker_scores_each_query_by_the_weighted_signals(tiny) -> None:
    """Queries of two widths in one call come back in query order, each Σ_f w_f z_f."""
    ws, settings, features = tiny
    signals = Signals(ws, settings, features)
    names = signals.names(with_profile=False)
    weights = np.zeros(len(names))
    weights[names.index("history max")], weights[names.index("item kNN")] = 2.0, -0.5
    embedder = VectorEmbedder()
    ranker = HybridRanker(signals, Fusion(names, weights, fit_sets=1, config_hash="h"), embedder)
    assert ranker.uses_profile is False and ranker.score([]) == []
    queries = [RankQuery("u1", "1 0", list("dhgef")), RankQuery("u2", "1 0", list("bhe")),
               RankQuery("u3", "1 0", list("acdgi")), RankQuery("u1", "1 0", list("ab"))]
    scores = ranker.score(queries)
    assert embedder.asked == []  # no profile signal, no embedding call
    for query, got in zip(queries, scores, strict=True):
        raw = _reference(features, query.user_id, "".join(query.candidates))
        expected = [2.0 * h - 0.5 * k for h, k in zip(_plain_zscore(raw["history max"]),
                                                       _plain_zscore(raw["item kNN"]), strict=True)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10, err_msg=query.user_id)


def test_hybrid_ranker_embeds_each_profile_once_when_the_profile_is_a_signal(tiny) -> None:
    ws, settings, features = tiny
    signals = Signals(ws, settings, features)
    names = signals.names(with_profile=True)
    weights = np.zeros(len(names))
    weights[names.index("profile")] = 1.0
    embedder = VectorEmbedder()
    ranker = HybridRanker(signals, Fusion(names, weights, fit_sets=1, config_hash="h"), embedder)
    assert ranker.uses_profile is True
    queries = [RankQuery("u1", "3 4", list("dhgef")), RankQuery("u4", "0 -2", list("cde"))]
    scores = ranker.score(queries)
    assert embedder.asked == ["3 4", "0 -2"]
    for query, profile, got in zip(queries, ([0.6, 0.8], [0.0, -1.0]), scores, strict=True):
        raw = _reference(features, query.user_id, "".join(query.candidates), profile)
        np.testing.assert_allclose(got, _plain_zscore(raw["profile"]), rtol=0, atol=1e-6)  # float32
