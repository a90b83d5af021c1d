"""Ray Train: 2 workers take the same optimisation steps as 1 (quality within noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tailormind.core.metrics import candidate_metrics
from tailormind.cf.data import load_cf_data
from tailormind.cf.distributed import train_distributed
from tailormind.cf.train import score_candidates, train_model
from tailormind.config import CFConfig
from tailormind.data.importers import import_synthetic
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    import os

    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def test_two_workers_match_one(tmp_path: Path, ray_local) -> None:
    ws = save_import(import_synthetic(users=120, items=300, tags=20, per_user=12, seed=8), tmp_path / "ws")
    split_workspace(ws, seed=1)
    data = load_cf_data(ws)
    cfg = CFConfig(epochs=4, batch_size=256, embedding_dim=16, layers=2, lr=0.02)
    single = train_model(data, cfg, "hypergraph", seed=4)
    double = train_distributed(ws, cfg, "hypergraph", workers=2, seed=4, threads_per_worker=1)
    assert double.workers == 2 and len(double.history) == 4
    assert (tmp_path / "ws" / "cf" / "ray").is_dir()  # Ray Train's own run + checkpoint storage
    # the same steps on the same batches: the embeddings agree up to float summation order
    assert np.allclose(double.user_embeddings, single.user_embeddings, atol=1e-3)
    m1 = candidate_metrics(score_candidates(single.user_embeddings, single.item_embeddings, data.test))
    m2 = candidate_metrics(score_candidates(double.user_embeddings, double.item_embeddings, data.test))
    assert abs(m1["ndcg@20"] - m2["ndcg@20"]) < 0.02


def test_ray_job_entrypoint(tmp_path: Path, ray_local, monkeypatch, capsys) -> None:
    """jobs/train_cf.py: what `ray job submit` runs (here on the test's local cluster)."""
    import importlib.util
    import json

    ws = save_import(import_synthetic(users=60, items=200, tags=10, per_user=8, seed=3), tmp_path / "ws")
    split_workspace(ws, seed=1, negatives=50)
    for key, value in dict(BATCH_SIZE=128, EMBEDDING_DIM=8, LAYERS=1).items():
        monkeypatch.setenv(f"TAILORMIND_CF__{key}", str(value))
    spec = importlib.util.spec_from_file_location("train_cf_job", Path(__file__).parents[1] / "jobs" / "train_cf.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    code = job.main(["--workspace", str(tmp_path / "ws"), "--workers", "2", "--epochs", "2", "--k", "7"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "hypergraph"
    assert [r["method"] for r in report["evaluation"]] == ["popularity", "hypergraph"]
    from tailormind.data.workspace import Workspace

    assert Workspace.open(tmp_path / "ws").read("cf_topk").num_rows == 60 * 7
    assert job.main(["--workspace", str(tmp_path / "nowhere")]) == 2
