"""jobs/pipeline.py and jobs/evaluate.py in-process (the cluster run is tests/test_cluster_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError
from tailormind.pipeline import STAGES, PipelineOptions
from tests.conftest import ML_SMALL, job_module


@pytest.mark.parametrize("argv, message", [
    (["--workspace", "{tmp}/none"], "is not a workspace; pass --data DIR"),
    (["--workspace", "{tmp}/ws", "--data", "{tmp}"], "not a MovieLens latest-small directory"),
    (["--workspace", "{tmp}/ws", "--data", str(ML_SMALL), "--stages", "import,train"],
     "unknown stage(s) train"),
    (["--workspace", "{tmp}/ws", "--data", str(ML_SMALL), "--users", "0"], "must be at least 1"),
    (["--workspace", "{tmp}/ws", "--data", str(ML_SMALL), "--slice-users", "0"],
     "--slice-users must be at least 1"),
    (["--workspace", "{tmp}/ws", "--config", "{tmp}/missing.yaml"], "missing.yaml"),
])
def test_bad_input_fails_before_ray_starts(argv, message, tmp_path, capsys) -> None:
    code = job_module("pipeline").main([a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert message in capsys.readouterr().err
    import ray

    assert not ray.is_initialized()


def test_users_must_be_a_number_or_all(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        job_module("pipeline").main(["--workspace", "x", "--users", "many"])
    assert exc.value.code == 2
    assert "'many': a number of users or 'all'" in capsys.readouterr().err


def test_options_default_to_every_stage() -> None:
    assert PipelineOptions().stages == STAGES
    with pytest.raises(ConfigError):
        PipelineOptions(workers=0)


def test_pipeline_imports_a_slice_trains_cf_and_evaluates_then_skips(tmp_path: Path, capsys,
                                                                     local_ray) -> None:
    root = tmp_path / "ws"
    argv = ["--workspace", str(root), "--data", str(ML_SMALL), "--slice-users", "12",
            "--stages", "import,cf,evaluate", "--cf-epochs", "2"]
    assert job_module("pipeline").main(argv) == 0
    out = capsys.readouterr().out
    assert "pipeline: import done in" in out and "pipeline: cf done in" in out
    report = json.loads(out[out.index("{"):])
    assert [s["stage"] for s in report["stages"]] == ["import", "cf", "evaluate"]
    imported = report["stages"][0]["detail"]
    ws = Workspace.open(root)
    assert imported["users"] == 12 == ws.read("users").num_rows
    touched = pc.unique(ws.read("interactions").column("item_id"))
    assert imported["items"] == len(touched) == ws.read("items").num_rows  # only their items
    assert ws.has("cf_topk") and ws.has("candidates")
    evaluation = json.loads((root / "evaluation" / "report.json").read_text())
    assert {r["method"] for r in evaluation["cf"]} >= {"popularity", "hypergraph"}
    assert evaluation["profiles"] is None
    record = json.loads((root / "pipeline" / "last_run.json").read_text())
    assert [s["status"] for s in record["stages"]] == ["done", "done", "done"]

    # Idempotent: a second run skips what is done (without --data: the workspace exists).
    assert job_module("pipeline").main(["--workspace", str(root), "--stages", "import,cf"]) == 0
    out = capsys.readouterr().out
    assert "pipeline: import skipped" in out and "pipeline: cf skipped" in out
    record = json.loads((root / "pipeline" / "last_run.json").read_text())
    assert [s["status"] for s in record["stages"]] == ["skipped", "skipped"]

    # jobs/evaluate.py writes the same report on its own.
    assert job_module("evaluate").main(["--workspace", f"file://{root}"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["cf"] == evaluation["cf"]
    assert printed["bench"] == {"skipped": "no profiles: run profiling (jobs/profile_users.py) "
                                           "first"}


def test_a_failing_stage_is_recorded(tmp_path: Path, capsys, local_ray) -> None:
    root = tmp_path / "ws"
    assert job_module("pipeline").main(["--workspace", str(root), "--data", str(ML_SMALL),
                                        "--slice-users", "6", "--stages", "import"]) == 0
    capsys.readouterr()
    code = job_module("pipeline").main(["--workspace", str(root), "--stages", "profile"])
    assert code == 2  # profiling with CF augmentation needs cf_topk
    assert "needs the cf_topk table" in capsys.readouterr().err
    record = json.loads((root / "pipeline" / "last_run.json").read_text())
    assert record["stages"][0]["stage"] == "profile"
    assert record["stages"][0]["status"] == "failed" and record["stages"][0]["detail"]["error"]


@pytest.mark.parametrize("job", ["describe_items", "profile_users", "generate_posts", "evaluate"])
def test_stage_jobs_check_their_inputs_before_ray_starts(job, tmp_path, capsys) -> None:
    import ray

    assert job_module(job).main(["--workspace", str(tmp_path / "none")]) == 2
    assert "is not a workspace (no such directory)" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("cf: {epochs: -1}\n")
    assert job_module(job).main(["--workspace", str(tmp_path), "--config",
                                 str(tmp_path / "bad.yaml")]) == 2
    assert "epochs" in capsys.readouterr().err
    assert not ray.is_initialized()
