"""CF without retraining from scratch (issue 23): ``cf train --resume`` starts new rows at their
neighbours' mean and fine-tunes; ``cf recommend --users-changed`` recomputes only the users whose
neighbourhood changed since ``cf_topk``'s watermark and keeps every other row byte-identical.

Grown workspaces are written here directly (the tables ``data append`` grows, an ``appended``
table and the manifest's watermark), so these tests do not depend on that command."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from tailormind.cf.checkpoint import CFCheckpoint, load_checkpoint, save_checkpoint
from tailormind.cf.data import CandidateIndex, CFData, load_cf_data
from tailormind.cf.recommend import changed_users, recommend_workspace, top_k
from tailormind.cf.resume import initial_rows, prepare_resume
from tailormind.cf.train import train_model
from tailormind.config import CFConfig
from tailormind.data import schemas
from tailormind.data.appends import APPENDED, APPENDED_TABLE
from tailormind.data.importers import import_synthetic
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace
from tailormind.data.workspace import Workspace

FAST = dict(epochs=6, batch_size=128, embedding_dim=8, layers=2, eval_every=1, lr=0.02)
TIME = "2030-01-01T00:00:00+00:00"  # the manifest's appended_at of every grow()


def grow(ws: Workspace, pairs: list[tuple[str, str]], *, append_id: int = 1,
         items: dict[str, list[str]] | None = None) -> None:
    """Append ``pairs`` as ``data append`` would: interactions, train rows of the split, new
    users and ``items`` (id -> tags), the ``appended`` table and the manifest's watermark."""
    when = datetime(2030, 1, 1, tzinfo=UTC)
    users = ws.read("users")
    known_users = set(users.column("user_id").to_pylist())
    new_users = sorted({u for u, _ in pairs} - known_users)
    rows = [{"user_id": u, "item_id": v, "timestamp": when, "weight": 1.0} for u, v in pairs]
    split = ws.read("split")
    counts: dict[str, int] = {}
    for u in split.column("user_id").to_pylist():
        counts[u] = counts.get(u, 0) + 1
    split_rows = []
    for r in rows:
        split_rows.append({**r, "position": counts.get(r["user_id"], 0), "split": "train"})
        counts[r["user_id"]] = counts.get(r["user_id"], 0) + 1
    tables = {
        "interactions": pa.concat_tables([ws.read("interactions"),
                                          pa.Table.from_pylist(rows, schemas.INTERACTIONS)]),
        "split": pa.concat_tables([split, pa.Table.from_pylist(split_rows, schemas.SPLIT)]),
        "users": pa.concat_tables([users, pa.Table.from_pylist(
            [{"user_id": u} for u in new_users], users.schema)]),
        APPENDED_TABLE: pa.concat_tables(
            ([ws.read(APPENDED_TABLE)] if ws.has(APPENDED_TABLE) else [])
            + [pa.Table.from_pylist([{**r, "append_id": append_id} for r in rows], APPENDED)]),
    }
    if items:
        new = [{"item_id": v, "title": v, "tags": t} for v, t in items.items()]
        tables["items"] = pa.concat_tables([ws.read("items"), pa.Table.from_pylist(new, schemas.ITEMS)])
        if ws.has("item_tags"):
            tables["item_tags"] = pa.concat_tables([ws.read("item_tags"), pa.Table.from_pylist(
                [{"item_id": r["item_id"], "tags": r["tags"]} for r in new], schemas.ITEM_TAGS)])
    ws.write_many(tables, manifest_updates={"watermark": {"append_id": append_id,
                                                          "appended_at": TIME}})


# -- the start rows, by hand ----------------------------------------------------------------------

def _data(users: list[str], items: list[str], train: list[tuple[str, str]]) -> CFData:
    u = {x: i for i, x in enumerate(users)}
    v = {x: i for i, x in enumerate(items)}
    none = CandidateIndex(np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
    return CFData(user_ids=users, item_ids=items, tag_names=[],
                  train_users=np.array([u[a] for a, _ in train]),
                  train_items=np.array([v[b] for _, b in train]),
                  tag_items=np.zeros(0, np.int64), tag_ids=np.zeros(0, np.int64), valid=none,
                  test=none, heldout_users=np.zeros(0, np.int64), heldout_items=np.zeros(0, np.int64))


def _checkpoint(model: str, users: list[str], items: list[str], ego: list[list[float]],
                tag_names: list[str] | None) -> CFCheckpoint:
    key = "embedding.weight" if model == "hypergraph" else "model.embedding.weight"
    d = len(ego[0])
    return CFCheckpoint(model, users, items, np.zeros((len(users), d), np.float32),
                        np.zeros((len(items), d), np.float32), {"use_tags": bool(tag_names)}, {},
                        state_dict={key: torch.tensor(ego)}, tag_names=tag_names)


def test_new_rows_start_at_their_known_neighbours_mean_by_hand() -> None:
    # checkpoint: users a=(1,0) b=(0,1); tag t1=(0,6); items x=(2,2) y=(4,0)
    ck = _checkpoint("hypergraph", ["a", "b"], ["x", "y"],
                     [[1, 0], [0, 1], [0, 6], [2, 2], [4, 0]], ["t1"])
    # grown: user c (x twice, y, new z), user d (only the new z); item z (a, c, d; tag t1),
    # item w (nobody; new tag t2); tag t2 on y and w
    data = _data(["a", "b", "c", "d"], ["x", "y", "z", "w"],
                 [("a", "x"), ("b", "y"), ("c", "x"), ("c", "x"), ("c", "y"), ("c", "z"),
                  ("a", "z"), ("d", "z")])
    tag_items, tag_ids = np.array([0, 2, 1, 3]), np.array([0, 0, 1, 1])  # t1: x, z; t2: y, w
    rows = initial_rows(ck, data, ["t1", "t2"], tag_items, tag_ids)
    users, tags, items = rows.table[:4], rows.table[4:6], rows.table[6:]
    np.testing.assert_array_equal(users[:2], [[1, 0], [0, 1]])  # known: copied exactly
    np.testing.assert_array_equal(tags[0], [0, 6])
    np.testing.assert_array_equal(items[:2], [[2, 2], [4, 0]])
    np.testing.assert_allclose(users[2], [3, 1])  # c: mean of x and y (x once; z is new)
    np.testing.assert_allclose(users[3], [0.5, 0.5])  # d: only new z -> mean of known users
    np.testing.assert_allclose(items[2], [0.5, 3])  # z: mean of user a and tag t1 (c, d new)
    np.testing.assert_allclose(items[3], [3, 1])  # w: only new t2 -> mean of known items
    np.testing.assert_allclose(tags[1], [4, 0])  # t2: y (w is new)
    assert rows.known == {"users": 2, "items": 2, "tags": 1}
    assert rows.from_neighbours == {"users": 1, "items": 1, "tags": 1}
    assert rows.global_mean == {"users": 1, "items": 1, "tags": 0}


def test_lightgcn_rows_and_ids_the_data_no_longer_has() -> None:
    ck = _checkpoint("lightgcn", ["a", "gone"], ["x"], [[1, 1], [9, 9], [3, 5]], None)
    data = _data(["a", "n"], ["x", "z"], [("a", "x"), ("n", "x"), ("n", "z"), ("a", "z")])
    rows = initial_rows(ck, data, [], np.zeros(0, np.int64), np.zeros(0, np.int64))
    np.testing.assert_allclose(rows.table, [[1, 1], [3, 5], [3, 5], [1, 1]])
    assert rows.dropped == {"users": 1, "items": 0, "tags": 0}


# -- resume on a workspace ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic workspace with a trained HypergraphCF and its cf_topk (read-only)."""
    root = tmp_path_factory.mktemp("cfinc") / "ws"
    ws = save_import(import_synthetic(users=60, items=150, tags=12, per_user=10, seed=4), root)
    split_workspace(ws, seed=1, negatives=30)
    data = load_cf_data(ws)
    save_checkpoint(ws, train_model(data, CFConfig(**FAST), "hypergraph", seed=2), data, CFConfig(**FAST))
    recommend_workspace(ws, "hypergraph", 5)
    return root


def _grown(trained: Path, tmp_path: Path) -> Workspace:
    import shutil

    shutil.copytree(trained, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    grow(ws, [("u0", "i5"), ("u1", "i7"), ("new1", "i3"), ("new1", "newitem"), ("new2", "newitem")],
         items={"newitem": ["tag00001", "tag00002"]})
    return Workspace.open(ws.root)


def test_resume_plan_keeps_known_rows_and_seeds_training(trained: Path, tmp_path: Path) -> None:
    ws = _grown(trained, tmp_path)
    old = load_checkpoint(ws, "hypergraph")
    assert old.watermark == 0 and old.lineage
    data = load_cf_data(ws)
    assert data.watermark == 1
    cfg = CFConfig(**FAST)
    plan = prepare_resume(ws, "hypergraph", data, cfg)
    assert plan.epochs == 2 and plan.use_tags  # ceil(6 / 5)
    ego = old.state_dict["embedding.weight"].numpy()
    n_tags = len(old.tag_names)
    start = plan.initial.table
    assert start.shape == (data.n_users + n_tags + data.n_items, 8)
    np.testing.assert_array_equal(start[:60], ego[:60])  # users u0..: same ids, same order
    np.testing.assert_array_equal(start[62:62 + n_tags], ego[60:60 + n_tags])  # same tag rows
    np.testing.assert_array_equal(start[62 + n_tags:62 + n_tags + 150], ego[60 + n_tags:])
    # new1: i3 known; new2: only newitem (new) -> global mean; newitem: its two (known) tags
    assert plan.initial.from_neighbours == {"users": 1, "items": 1, "tags": 0}
    assert plan.initial.global_mean == {"users": 1, "items": 0, "tags": 0}
    # new1 touched i3 (known) and newitem (new): its row is i3's
    i3 = 62 + n_tags + data.item_ids.index("i3")
    np.testing.assert_array_equal(start[data.user_ids.index("new1")], start[i3])
    tag_rows = [60 + old.tag_names.index(t) for t in ("tag00001", "tag00002")]
    np.testing.assert_allclose(start[62 + n_tags + 150], ego[tag_rows].mean(axis=0), rtol=1e-6)
    # train_model starts from this table: with a vanishing learning rate it stays there
    still = train_model(data, CFConfig(**{**FAST, "lr": 1e-12}), "hypergraph", epochs=1,
                        initial=start)
    np.testing.assert_allclose(still.state_dict["embedding.weight"].numpy(), start, atol=1e-6)


def test_cli_resume_trains_resume_epochs_and_records_the_watermark(trained: Path, tmp_path: Path,
                                                                    cli, monkeypatch) -> None:
    ws = _grown(trained, tmp_path)
    lineage = load_checkpoint(ws, "hypergraph").lineage
    for key, value in FAST.items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key.upper()}", str(value))
    r = cli("cf", "train", "-w", ws.root, "--resume")
    assert r.code == 0, r.err
    assert "resuming 'hypergraph' (watermark 0) on the workspace at watermark 1" in r.err
    assert "watermark 1 (resumed)" in r.err
    ws = Workspace.open(ws.root)
    ck = load_checkpoint(ws, "hypergraph")
    assert ck.watermark == 1 and ck.lineage == lineage
    assert ck.summary["epochs"] == 2  # cf.resume_epochs unset: ceil(20% of 6)
    assert ck.user_ids[-2:] == ["new1", "new2"] and ck.item_ids[-1] == "newitem"
    losses = [h["loss"] for h in ck.summary["history"]]
    assert all(math.isfinite(x) for x in losses)
    entry = ws.manifest["artifacts"]["cf:hypergraph"]
    assert entry["watermark"] == 1 and entry["resumed"]["from_watermark"] == 0
    # a warm start: the first resumed epoch's loss is far below a fresh model's first epoch
    fresh = train_model(load_cf_data(ws), CFConfig(**FAST), "hypergraph", seed=2026, epochs=1)
    assert losses[0] < fresh.history[0].loss - 0.05
    monkeypatch.setenv("TAILORMIND_CF__RESUME_EPOCHS", "1")
    again = cli("cf", "train", "-w", ws.root, "--resume")
    assert again.code == 0 and load_checkpoint(ws, "hypergraph").summary["epochs"] == 1


def test_resume_errors_are_one_line(trained: Path, tmp_path: Path, cli, monkeypatch) -> None:
    ws = _grown(trained, tmp_path)
    for key, value in FAST.items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key.upper()}", str(value))
    cases = [
        (("--model", "lightgcn"), "--resume needs a checkpoint"),
        (("--name", "other"), "--resume needs a checkpoint"),
        (("--no-tags",), "was trained with tags"),
    ]
    for extra, expected in cases:
        r = cli("cf", "train", "-w", ws.root, "--resume", *extra)
        assert r.code == 2 and expected in r.err, r.err
        assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err
    monkeypatch.setenv("TAILORMIND_CF__EMBEDDING_DIM", "16")
    r = cli("cf", "train", "-w", ws.root, "--resume")
    assert r.code == 2 and r.err.strip().count("\n") == 0
    assert "trained with embedding_dim=8, the config says embedding_dim=16; train from scratch" in r.err
    stale = cli("cf", "recommend", "-w", ws.root)  # grown ids, checkpoint not resumed yet
    assert stale.code == 2 and "cf train --resume" in stale.err and stale.err.strip().count("\n") == 0


def test_old_checkpoint_without_watermark_reads_as_zero(trained: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(trained, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    path = ws.artifact_path(ws.artifact("cf:hypergraph")["path"])
    payload = torch.load(path, weights_only=False)
    for key in ("watermark", "lineage", "tag_names"):
        payload.pop(key)
    torch.save(payload, path)
    ck = load_checkpoint(ws, "hypergraph")
    assert (ck.watermark, ck.lineage, ck.tag_names) == (0, None, None)
    grow(ws, [("u0", "i5")])
    plan = prepare_resume(Workspace.open(ws.root), "hypergraph", load_cf_data(ws), CFConfig(**FAST))
    assert plan.initial.known["tags"] == 0 and any("does not name its tag rows" in n for n in plan.notes)


# -- --users-changed on a hand-built graph --------------------------------------------------------

def _hand_workspace(tmp_path: Path, cli) -> Path:
    """Train graph: u0 {i0, i1}, u1 {i1, i2}, u2 {i3}, u3 {i4, i5}, u4 {i5}, u5 {i6}; u7 has no
    interaction. Each user's two latest interactions (i7..i9) are held out (valid, test)."""
    train = {"u0": ["i0", "i1"], "u1": ["i1", "i2"], "u2": ["i3"], "u3": ["i4", "i5"],
             "u4": ["i5"], "u5": ["i6"]}
    lines, t = [], 1_000
    for user, items in train.items():
        for item in [*items, "i7", "i8"] if user != "u2" else [*items, "i8", "i9"]:
            lines.append(f"{user},{item},{t}")
            t += 10
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "\n".join(lines) + "\n")
    (tmp_path / "users.csv").write_text("user_id\n" + "".join(f"u{i}\n" for i in range(8) if i != 6))
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "table", tmp_path / "log.csv", "--users", tmp_path / "users.csv",
               "-w", ws).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", "3").code == 0
    split = Workspace.open(ws).read("split").to_pylist()
    got = {}
    for r in split:
        if r["split"] == "train":
            got.setdefault(r["user_id"], []).append(r["item_id"])
    assert {u: sorted(v) for u, v in got.items()} == train  # the graph the rule is stated on
    return ws


def test_users_changed_recomputes_exactly_the_rule_and_keeps_the_rest(tmp_path: Path, cli,
                                                                      monkeypatch) -> None:
    ws_root = _hand_workspace(tmp_path, cli)
    for key, value in dict(EPOCHS=4, BATCH_SIZE=8, EMBEDDING_DIM=4, LAYERS=1).items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key}", str(value))
    assert cli("cf", "train", "-w", ws_root).code == 0
    assert cli("cf", "recommend", "-w", ws_root, "--k", "2").code == 0
    ws = Workspace.open(ws_root)
    before = ws.read("cf_topk")
    assert ws.manifest["tables"]["cf_topk"]["watermark"] == 0
    # append: u0 -> i2, new user u6 -> i4 and a new item i10
    grow(ws, [("u0", "i2"), ("u6", "i4"), ("u6", "i10")], items={"i10": []})
    assert cli("cf", "train", "-w", ws_root, "--resume").code == 0
    r = cli("cf", "recommend", "-w", ws_root, "--k", "2", "--users-changed")
    assert r.code == 0, r.err
    # appended: u0, u6; sharing an item (i2: u1; i4: u3; i10: nobody else); u7: no train items
    assert ("recomputed 5 user(s) whose neighbourhood changed since watermark 0 (2 with appended "
            "interactions, 2 sharing an item with them, 1 new or without train items); kept 3 "
            "user(s)' rows as they were") in r.err
    ws = Workspace.open(ws_root)
    after = ws.read("cf_topk")
    info = ws.manifest["tables"]["cf_topk"]
    assert (info["watermark"], info["users_recomputed"], info["users_kept"]) == (1, 5, 3)
    rows = lambda table, users: [x for x in table.to_pylist() if x["user_id"] in users]  # noqa: E731
    kept = {"u2", "u4", "u5"}
    assert rows(after, kept) == rows(before, kept)  # byte-identical (float32 scores included)
    changed = {"u0", "u1", "u3", "u6", "u7"}
    full = top_k(load_checkpoint(ws, "hypergraph"), load_cf_data(ws), 2).table
    assert rows(after, changed) == rows(full, changed)  # exactly a full recompute's rows
    order = after.column("user_id").to_pylist()
    assert order == sorted(order, key=load_cf_data(ws).user_ids.index)
    # nothing appended since: only the cold user is recomputed
    r = cli("cf", "recommend", "-w", ws_root, "--k", "2", "--users-changed")
    assert "recomputed 1 user(s)" in r.err and "kept 7" in r.err
    # a model trained from scratch moves every embedding: everyone is recomputed, and said so
    assert cli("cf", "train", "-w", ws_root).code == 0
    r = cli("cf", "recommend", "-w", ws_root, "--k", "2", "--users-changed")
    assert "--users-changed recomputed every user: the checkpoint is not a fine-tuning" in r.err
    assert Workspace.open(ws_root).read("cf_topk").equals(
        top_k(load_checkpoint(ws, "hypergraph"), load_cf_data(ws), 2).table)


def test_changed_users_rule_on_arrays() -> None:
    data = _data(["a", "b", "c", "d", "e"], ["x", "y", "z"],
                 [("a", "x"), ("b", "x"), ("c", "y"), ("d", "z")])
    got = changed_users(data, ["a"], ["x"], {"a", "b", "c", "d"})
    # a appended; b shares x; e has no train items (and no old row); c, d untouched
    assert got.users.tolist() == [0, 1, 4] and (got.appended, got.sharing, got.other) == (1, 1, 1)
    assert changed_users(data, [], [], {"a", "b", "c", "d", "e"}).users.tolist() == [4]


# -- the Ray job: --resume and --users-changed ----------------------------------------------------

def test_ray_job_resumes_like_one_process(trained: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """jobs/train_cf.py --resume --users-changed on 2 Ray Train workers: every worker builds the
    same start table, so the result matches resuming in one process (as in test_cf_distributed)."""
    import json
    import os

    import ray

    from tests.conftest import job_module

    ws = _grown(trained, tmp_path)
    for key, value in FAST.items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key.upper()}", str(value))
    cfg = CFConfig(**FAST)
    data = load_cf_data(ws)
    plan = prepare_resume(ws, "hypergraph", data, cfg)
    single = train_model(data, cfg, "hypergraph", seed=2026, epochs=plan.epochs,
                         use_tags=True, initial=plan.initial.table)
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        code = job_module("train_cf").main(["--workspace", str(ws.root), "--workers", "2",
                                             "--resume", "--users-changed", "--k", "5"])
    finally:
        ray.shutdown()
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["watermark"] == 1 and report["cf_topk"]["users_kept"] > 0
    ck = load_checkpoint(Workspace.open(ws.root), "hypergraph")
    assert ck.watermark == 1 and ck.summary["epochs"] == plan.epochs and ck.summary["workers"] == 2
    assert np.allclose(ck.user_embeddings, single.user_embeddings, atol=1e-3)


def test_the_pipeline_cf_stage_resumes_after_an_append_then_skips(trained: Path, tmp_path: Path,
                                                                 monkeypatch, capsys,
                                                                 local_ray) -> None:
    """jobs/pipeline.py --stages cf: a checkpoint older than the workspace's watermark is
    fine-tuned (cf.resume_epochs, the same lineage) and only the changed users' cf_topk rows are
    recomputed; run again, the stage has nothing to do."""
    from tests.conftest import job_module

    ws = _grown(trained, tmp_path)
    before = load_checkpoint(ws, "hypergraph")
    for key, value in FAST.items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key.upper()}", str(value))
    monkeypatch.setenv("TAILORMIND_CF__TOP_K", "5")  # the fixture's cf_topk
    args = ["--workspace", str(ws.root), "--stages", "cf", "--cf-workers", "1"]
    assert job_module("pipeline").main(args) == 0, capsys.readouterr().out[-2000:]
    capsys.readouterr()
    ws = Workspace.open(ws.root)
    after = load_checkpoint(ws, "hypergraph")
    assert (before.watermark, after.watermark) == (0, 1) and after.lineage == before.lineage
    assert after.summary["epochs"] == CFConfig(**FAST).epochs_to_resume()
    info = ws.manifest["tables"]["cf_topk"]
    assert info["watermark"] == 1 and 0 < info["users_kept"] < len(load_cf_data(ws).user_ids)
    assert job_module("pipeline").main(args) == 0
    assert "pipeline: cf skipped" in capsys.readouterr().out
