"""CF training, checkpoints, Top-K and evaluation on a small synthetic workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from tailormind.core.metrics import candidate_metrics
from tailormind.cf.checkpoint import load_checkpoint, save_checkpoint
from tailormind.cf.data import load_cf_data
from tailormind.cf.evaluate import evaluate_workspace
from tailormind.cf.recommend import recommend_workspace
from tailormind.cf.train import score_candidates, train_model
from tailormind.config import CFConfig
from tailormind.data.importers import import_synthetic
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError, WorkspaceError

FAST = dict(epochs=8, batch_size=256, embedding_dim=16, layers=2, eval_every=1, lr=0.02)


@pytest.fixture(scope="module")
def small_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("cf") / "ws"
    ws = save_import(import_synthetic(users=150, items=400, tags=30, per_user=15, seed=5), root)
    split_workspace(ws, seed=1)
    return Workspace.open(root)


def test_training_learns_and_beats_random(small_ws: Workspace) -> None:
    data = load_cf_data(small_ws)
    result = train_model(data, CFConfig(**FAST), "hypergraph", seed=3)
    losses = [h.loss for h in result.history]
    assert losses[-1] < losses[0] * 0.9
    test = candidate_metrics(score_candidates(result.user_embeddings, result.item_embeddings, data.test))
    assert test["recall@20"] > 0.35  # random ranking of 1:99 sets gives 0.20
    assert result.graph == {"nodes": 150 + data.n_tags + 400, "edges": len(data.train_users) + len(data.tag_items),
                            "tags": data.n_tags}
    assert result.best_valid["ndcg@20"] == max(h.valid["ndcg@20"] for h in result.history)


def test_same_seed_same_model(small_ws: Workspace) -> None:
    data = load_cf_data(small_ws)
    cfg = CFConfig(**{**FAST, "epochs": 2})
    a = train_model(data, cfg, "hypergraph", seed=9)
    b = train_model(data, cfg, "hypergraph", seed=9)
    assert np.array_equal(a.user_embeddings, b.user_embeddings)


def test_lightgcn_baseline_trains_with_the_same_loop(small_ws: Workspace) -> None:
    data = load_cf_data(small_ws)
    result = train_model(data, CFConfig(**FAST), "lightgcn", seed=3)
    assert result.graph["tags"] == 0 and not result.use_tags
    assert result.user_embeddings.shape == (150, 16)


def test_early_stopping_keeps_the_best_epoch(small_ws: Workspace) -> None:
    data = load_cf_data(small_ws)
    result = train_model(data, CFConfig(**{**FAST, "epochs": 40, "early_stop_patience": 2, "lr": 0.05}),
                         "hypergraph", seed=3)
    assert len(result.history) < 40
    assert any("early stop" in n for n in result.notes)
    again = candidate_metrics(score_candidates(result.user_embeddings, result.item_embeddings, data.valid))
    assert again["ndcg@20"] == pytest.approx(result.best_valid["ndcg@20"], abs=1e-6)


def test_tagless_data_degrades_and_says_so(tmp_path: Path) -> None:
    ws = save_import(import_synthetic(users=60, items=300, tags=0, per_user=8, seed=2), tmp_path / "ws")
    split_workspace(ws, seed=1)
    result = train_model(load_cf_data(ws), CFConfig(**{**FAST, "epochs": 1}), "hypergraph")
    assert result.graph["tags"] == 0
    assert any("no tags" in n for n in result.notes)


def test_checkpoint_topk_and_eval(small_ws: Workspace, tmp_path: Path) -> None:
    data = load_cf_data(small_ws)
    result = train_model(data, CFConfig(**FAST), "hypergraph", seed=3)
    save_checkpoint(small_ws, result, data, CFConfig(**FAST))
    ckpt = load_checkpoint(small_ws, "hypergraph")
    assert np.array_equal(ckpt.user_embeddings, result.user_embeddings)
    topk = recommend_workspace(small_ws, "hypergraph", 10)
    table = small_ws.read("cf_topk")
    assert table.num_rows == 150 * 10 and topk.cold_users == 0
    train = small_ws.read("split").filter(pc.equal(small_ws.read("split").column("split"), "train"))
    seen = set(zip(train.column("user_id").to_pylist(), train.column("item_id").to_pylist(), strict=True))
    rows = table.to_pylist()
    assert not any((r["user_id"], r["item_id"]) in seen for r in rows)  # unseen items only
    first = [r for r in rows if r["user_id"] == rows[0]["user_id"]]
    assert [r["rank"] for r in first] == list(range(1, 11))
    assert all(a["score"] >= b["score"] for a, b in zip(first, first[1:]))
    evaluated = {r["method"]: r for r in evaluate_workspace(small_ws, ["hypergraph"], full=True)}
    assert set(evaluated) == {"popularity", "hypergraph"}
    direct = candidate_metrics(score_candidates(ckpt.user_embeddings, ckpt.item_embeddings, data.test))
    assert evaluated["hypergraph"]["test"] == direct
    assert 0 <= evaluated["hypergraph"]["test_full"]["recall@20"] <= evaluated["hypergraph"]["test"]["recall@20"]


def test_no_split_and_untrained_model_are_clear_errors(tmp_path: Path) -> None:
    ws = save_import(import_synthetic(users=20, items=100, tags=5, per_user=5, seed=2), tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="tailormind data split"):
        load_cf_data(ws)
    split_workspace(ws, seed=1, negatives=20)
    with pytest.raises(WorkspaceError, match="tailormind cf train"):
        load_checkpoint(ws, "lightgcn")


def test_memory_refusal(small_ws: Workspace) -> None:
    with pytest.raises(TailorMindError, match="cf.max_graph_gib"):
        train_model(load_cf_data(small_ws), CFConfig(**FAST, max_graph_gib=1e-6), "hypergraph")


def test_cli_train_recommend_eval(tmp_path: Path, cli, monkeypatch) -> None:
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "synthetic", "--users", "80", "--items", "300", "--tags", "20",
               "--per-user", "10", "-w", ws).code == 0
    no_split = cli("cf", "train", "-w", ws)
    assert no_split.code == 2 and "tailormind data split" in no_split.err
    assert cli("data", "split", "-w", ws).code == 0
    for key, value in dict(EPOCHS=3, BATCH_SIZE=256, EMBEDDING_DIM=8, LAYERS=2).items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key}", str(value))
    r = cli("cf", "train", "-w", ws, "--model", "hypergraph")
    assert r.code == 0, r.err
    assert "cf:hypergraph: best epoch" in r.err
    assert cli("cf", "train", "-w", ws, "--model", "hypergraph", "--no-tags", "--name", "hypergraph-notags").code == 0
    assert cli("cf", "recommend", "-w", ws, "--k", "5").code == 0
    assert Workspace.open(ws).read("cf_topk").num_rows == 80 * 5
    evaluation = json.loads(cli("cf", "eval", "-w", ws, "--json").out)
    rows = evaluation["rows"]
    assert [r["method"] for r in rows] == ["popularity", "hypergraph", "hypergraph-notags"]
    assert {(p["a"], p["b"]) for p in evaluation["paired"]} == {
        ("hypergraph", "popularity"), ("hypergraph-notags", "popularity"),
        ("hypergraph", "hypergraph-notags")}
    assert rows[1]["use_tags"] is True and rows[2]["use_tags"] is False
    table = cli("cf", "eval", "-w", ws)
    assert table.code == 0 and "hypergraph-notags" in table.out
    bad = cli("cf", "train", "-w", ws, "--model", "word2vec")
    assert bad.code == 2 and "unknown --model 'word2vec'" in bad.err
    assert cli("data", "split", "-w", ws, "--seed", "5").code == 0  # a new split makes models stale
    stale = cli("cf", "recommend", "-w", ws)
    assert stale.code == 2 and "no trained CF model 'hypergraph'" in stale.err


def test_user_without_train_items_gets_popular_items_and_is_counted(tmp_path: Path, cli) -> None:
    rows = "".join(f"u{u},i{(u * 7 + j) % 60}\n" for u in range(30) for j in range(6))
    (tmp_path / "log.csv").write_text("user_id,item_id\n" + rows)
    (tmp_path / "users.csv").write_text("user_id,city\n" + "".join(f"u{u},x\n" for u in range(30)) + "newbie,y\n")
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "table", tmp_path / "log.csv", "--users", tmp_path / "users.csv", "-w", ws).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", "20").code == 0
    r = cli("--config", _tiny_config(tmp_path), "cf", "train", "-w", ws)
    assert r.code == 0, r.err
    assert "1 user(s) have no train interactions" in r.err
    rec = cli("cf", "recommend", "-w", ws, "--k", "3")
    assert rec.code == 0 and "1 user(s) without train items got the most popular items" in rec.err
    topk = Workspace.open(ws).read("cf_topk").to_pylist()
    newbie = [row["item_id"] for row in topk if row["user_id"] == "newbie"]
    data = load_cf_data(Workspace.open(ws))
    popularity = dict(zip(data.item_ids, data.item_popularity(), strict=True))
    third = np.sort(data.item_popularity())[::-1][2]
    assert len(newbie) == 3 and all(popularity[i] >= third for i in newbie)  # ties may pick either


def _tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text("cf:\n  epochs: 2\n  batch_size: 64\n  embedding_dim: 8\n  layers: 1\n")
    return path


def test_cli_refuses_a_graph_above_the_memory_limit(small_ws: Workspace, cli, monkeypatch) -> None:
    monkeypatch.setenv("TAILORMIND_CF__MAX_GRAPH_GIB", "0.000001")
    r = cli("cf", "train", "-w", small_ws.root)
    assert r.code == 2
    assert "needs about" in r.err and "cf.max_graph_gib=1e-06" in r.err and "Traceback" not in r.err
