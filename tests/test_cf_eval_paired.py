"""Paired differences over the same users: hand-computed values, pairing by user id, and the
``cf eval`` rows/paired output (library, --json and text)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tailormind.cf.checkpoint import load_checkpoint, save_checkpoint
from tailormind.cf.data import load_cf_data
from tailormind.cf.evaluate import Bootstrap, PerUser, evaluate_cf, paired_differences
from tailormind.cf.train import train_model
from tailormind.config import CFConfig, load_config
from tailormind.data.importers import import_synthetic
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace
from tailormind.data.workspace import Workspace
from tests.paired_reference import numpy_interval

L2 = math.log2
USERS = np.array([10, 11, 12, 13, 14])
RANKS_A = np.array([0, 3, 12, 25, 1])
RANKS_B = np.array([2, 3, 30, 5, 0])


def by_metric(entries: list[dict]) -> dict[str, dict]:
    return {e["metric"]: e for e in entries}


def test_hand_computed_paired_differences() -> None:
    boot = Bootstrap(resamples=400, confidence=0.9, seed=11)
    entries = by_metric(paired_differences("a", PerUser.from_ranks(USERS, RANKS_A),
                                           "b", PerUser.from_ranks(USERS, RANKS_B),
                                           bootstrap=boot, split="test"))
    assert list(entries) == ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]
    # per user, by hand: ranks a 0 3 12 25 1, b 2 3 30 5 0
    hand = {
        "recall@10": [1 - 1, 1 - 1, 0 - 0, 0 - 1, 1 - 1],
        "recall@20": [1 - 1, 1 - 1, 1 - 0, 0 - 1, 1 - 1],
        "ndcg@10": [1 - 1 / L2(4), 0.0, 0.0, 0 - 1 / L2(7), 1 / L2(3) - 1],
        "ndcg@20": [1 - 1 / L2(4), 0.0, 1 / L2(14) - 0, 0 - 1 / L2(7), 1 / L2(3) - 1],
    }
    assert entries["recall@10"]["difference"] == pytest.approx(-0.2)
    assert entries["recall@20"]["difference"] == pytest.approx(0.0)
    assert (entries["recall@10"]["wins"], entries["recall@10"]["losses"],
            entries["recall@10"]["ties"]) == (0, 1, 4)
    assert (entries["recall@20"]["wins"], entries["recall@20"]["losses"]) == (1, 1)
    assert (entries["ndcg@20"]["wins"], entries["ndcg@20"]["losses"]) == (2, 2)
    for metric, d in hand.items():
        e = entries[metric]
        d = np.array(d)
        assert e["difference"] == pytest.approx(d.mean())
        assert (e["low"], e["high"]) == pytest.approx(numpy_interval(d, 400, 0.9, 11))
        assert e["n"] == 5 and e["a"] == "a" and e["b"] == "b" and e["split"] == "test"
        assert e["confidence"] == 0.9
        assert e["excludes_zero"] == (e["low"] > 0 or e["high"] < 0)
    # recall@10: one loss in five users; the interval reaches 0 from below
    assert entries["recall@10"]["high"] == pytest.approx(0.0) and not entries["recall@10"]["excludes_zero"]


def test_pairs_are_matched_by_user_not_by_position() -> None:
    a = PerUser.from_ranks(USERS, RANKS_A)
    b = PerUser.from_ranks(USERS, RANKS_B)
    base = paired_differences("a", a, "b", b)
    order = np.array([3, 0, 4, 1, 2])
    # the same users listed in another order (ids move with their ranks): the same result
    reordered = PerUser.from_ranks(USERS[order], RANKS_B[order])
    assert paired_differences("a", a, "b", reordered) == base
    # one side's users shuffled against their ranks: a different pairing, a different result
    mismatched = PerUser.from_ranks(USERS, RANKS_B[order])
    assert paired_differences("a", a, "b", mismatched) != base
    # a swapped pair is the negated difference with the interval mirrored
    swapped = by_metric(paired_differences("b", b, "a", a))
    for e in base:
        s = swapped[e["metric"]]
        assert s["difference"] == pytest.approx(-e["difference"])
        assert (s["low"], s["high"]) == pytest.approx((-e["high"], -e["low"]))
        assert (s["wins"], s["losses"]) == (e["losses"], e["wins"])
    # overlapping users: only the shared ones are paired
    subset = PerUser.from_ranks(np.array([14, 12, 99]), np.array([0, 30, 0]))
    [r10, *_] = paired_differences("a", a, "sub", subset)
    assert r10["n"] == 2 and r10["difference"] == pytest.approx(0.0)  # users 12 and 14
    assert paired_differences("a", a, "none", PerUser.from_ranks(np.array([1]), np.array([0]))) == []
    with pytest.raises(ValueError, match="unique users"):
        PerUser.from_ranks(np.array([1, 1]), np.array([0, 1]))


def test_bootstrap_settings_come_from_the_config() -> None:
    settings = load_config(environ={}, overrides={"bench": {"bootstrap_resamples": 300,
                                                            "confidence": 0.8},
                                                  "seeds": {"bench": 5}})
    assert Bootstrap.of(settings) == Bootstrap(300, 0.8, 5)
    [r10, *_] = paired_differences("a", PerUser.from_ranks(USERS, RANKS_A),
                                   "b", PerUser.from_ranks(USERS, RANKS_B),
                                   bootstrap=Bootstrap.of(settings))
    d = np.array([0, 0, 0, -1, 0], dtype=float)
    assert (r10["low"], r10["high"]) == pytest.approx(numpy_interval(d, 300, 0.8, 5))


FAST = dict(epochs=2, batch_size=256, embedding_dim=8, layers=1, eval_every=1, lr=0.02)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("cf-paired") / "ws"
    ws = save_import(import_synthetic(users=90, items=250, tags=20, per_user=10, seed=4), root)
    split_workspace(ws, seed=1, negatives=40)
    ws = Workspace.open(root)
    data = load_cf_data(ws)
    for model in ("hypergraph", "lightgcn"):
        save_checkpoint(ws, train_model(data, CFConfig(**FAST), model, seed=2), data, CFConfig(**FAST))
    return Workspace.open(root)


def test_cf_evaluation_pairs_every_model_on_the_same_users(two_models: Workspace) -> None:
    boot = Bootstrap(resamples=200, confidence=0.95, seed=3)
    result = evaluate_cf(two_models, ["lightgcn", "hypergraph"], full=True, bootstrap=boot)
    rows = {r["method"]: r for r in result.rows}
    pairs = sorted({(p["a"], p["b"], p["split"]) for p in result.paired})
    assert pairs == sorted((a, b, split) for split in ("test", "test_full") for a, b in
                           (("lightgcn", "popularity"), ("hypergraph", "popularity"),
                            ("lightgcn", "hypergraph")))  # first named minus second
    # the per-user ranks, computed here directly from the checkpoints and the candidate sets
    data = load_cf_data(two_models)
    n = len(data.test)

    def ranks_of(scores: np.ndarray) -> np.ndarray:
        return (scores[:, 1:] >= scores[:, :1]).sum(axis=1)

    direct = {"popularity": ranks_of(data.item_popularity()[data.test.items].astype(float))}
    for name in ("hypergraph", "lightgcn"):
        ckpt = load_checkpoint(two_models, name)
        u, v = ckpt.user_embeddings, ckpt.item_embeddings
        direct[name] = ranks_of(np.einsum("nd,nmd->nm", u[data.test.users], v[data.test.items]))
    for entry in result.paired:
        a, b, metric, split = entry["a"], entry["b"], entry["metric"], entry["split"]
        assert entry["n"] == n
        assert entry["difference"] == pytest.approx(rows[a][split][metric] - rows[b][split][metric])
        if split == "test":
            k = int(metric.split("@")[1])

            def value(r: np.ndarray, metric: str = metric, k: int = k) -> np.ndarray:
                hit = r < k
                return hit * 1.0 if metric.startswith("recall") else np.where(hit, 1 / np.log2(r + 2.0), 0)

            d = value(direct[a]) - value(direct[b])
            assert entry["difference"] == pytest.approx(d.mean())
            assert (entry["low"], entry["high"]) == pytest.approx(numpy_interval(d, 200, 0.95, 3))
            assert entry["wins"] == int((d > 0).sum()) and entry["losses"] == int((d < 0).sum())
    # nothing per-user in what --json prints
    assert set(result.as_dict()) == {"rows", "paired"}
    json.dumps(result.as_dict())


def test_cli_eval_prints_the_paired_differences(two_models: Workspace, cli, tmp_path: Path) -> None:
    config = tmp_path / "bench.yaml"
    config.write_text("bench:\n  bootstrap_resamples: 200\n")
    result = cli("--config", config, "cf", "eval", "-w", two_models.root, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [r["method"] for r in report["rows"]] == ["popularity", "hypergraph", "lightgcn"]
    assert {(p["a"], p["b"]) for p in report["paired"]} == {
        ("hypergraph", "popularity"), ("lightgcn", "popularity"), ("hypergraph", "lightgcn")}
    keys = {"a", "b", "metric", "difference", "low", "high", "n", "wins", "losses", "ties",
            "excludes_zero", "confidence", "split"}
    assert all(set(p) == keys for p in report["paired"])
    hl = {p["metric"]: p for p in report["paired"] if (p["a"], p["b"]) == ("hypergraph", "lightgcn")}
    rows = {r["method"]: r["test"] for r in report["rows"]}
    assert hl["ndcg@20"]["difference"] == pytest.approx(rows["hypergraph"]["ndcg@20"]
                                                        - rows["lightgcn"]["ndcg@20"])
    text = cli("--config", config, "cf", "eval", "-w", two_models.root)
    assert text.code == 0, text.err
    assert "paired differences (test, 1:99 candidate sets)" in text.out
    assert "95% paired-bootstrap interval" in text.out
    line = next(x for x in text.out.splitlines() if "hypergraph − lightgcn" in x and "ndcg@20" in x)
    e = hl["ndcg@20"]
    assert f"{e['difference']:+.4f}" in line and f"[{e['low']:+.4f}, {e['high']:+.4f}]" in line
    assert f"{e['wins']}/{e['losses']}" in line and ("yes" if e["excludes_zero"] else "no") in line
    assert "full ranking" not in text.out
    full = cli("--config", config, "cf", "eval", "-w", two_models.root, "--full")
    assert full.code == 0 and "paired differences (test, full ranking)" in full.out
