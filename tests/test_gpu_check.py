"""``benchmarks/gpu_check.py``, the one script run on a CUDA machine, as a CPU smoke run: every
part (CF training, each model backend on tiny random weights, the Serve deployments over HTTP)
must give its rows, all ok, with positive numbers. The whole run (a Ray cluster included) is
slow; the default run checks that a failing part is a FAIL row that does not stop the others,
that ``--device cuda`` without a GPU exits 2, and that the image backend loads the tiny SD- and
SDXL-shaped pipelines."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
#: per part: the start of each measurement it must report (value > 0, ok)
EXPECTED = {
    "cf": ["synthetic data", "HypergraphCF train", "PyG LightGCN train"],
    "text": ["load tiny Llama", "generate, batch"],
    "embed": ["load tiny BERT", "embed "],
    "clip": ["load tiny CLIP", "CLIPScore "],
    "image": ["load tiny SD-shaped", "SD: ", "load tiny SDXL-shaped", "SDXL: "],
    "video": ["load tiny text-to-video", "2 shots x "],
    "serve": ["image: deploy ImageModel", "image: HTTP round trip, 1st",
              "image: HTTP round trip, 2nd", "video: deploy VideoModel",
              "video: HTTP round trip, 1st", "video: HTTP round trip, 2nd"],
}
UNITS = {"cf": "s/epoch", "text": "tokens/s", "embed": "texts/s", "clip": "images/s",
         "image": "s/image", "video": "s/video", "serve": "s"}


def run_check(*args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], list]:
    """``python benchmarks/gpu_check.py --device cpu --small --json ARGS``: the process and
    its rows (none when stdout is not JSON)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORMIND_")}
    env.update({"RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"})
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--small", "--json",
                           *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO)
    try:
        rows = json.loads(done.stdout)
    except json.JSONDecodeError:
        rows = []
    return done, rows


def assert_parts_ok(rows: list[dict], parts: list[str]) -> None:
    """Every part's expected rows are there, ok, on cpu, with a positive number, and nothing
    else failed; each part reports at least one row in its unit."""
    assert sorted({r["part"] for r in rows}) == sorted(parts)
    failed = [r for r in rows if not r["ok"]]
    assert not failed, failed
    for part in parts:
        mine = [r for r in rows if r["part"] == part]
        for start in EXPECTED[part]:
            assert any(r["measure"].startswith(start) for r in mine), (part, start, mine)
        assert any(r["unit"] == UNITS[part] for r in mine), (part, mine)
        for r in mine:
            assert r["device"] == "cpu" and r["value"] > 0 and r["error"] == "", r


@pytest.mark.slow
def test_every_part_runs_on_cpu() -> None:
    done, rows = run_check()
    assert done.returncode == 0, done.stderr[-4000:]
    assert_parts_ok(rows, list(EXPECTED))
    serve = [r for r in rows if r["part"] == "serve"]
    assert all("num_gpus 0 (cpu run)" in r["note"] for r in serve)
    lightgcn = next(r for r in rows if r["measure"].startswith("PyG LightGCN"))
    assert "ref: PyG LightGCN 0.88 s/epoch on an H200" in lightgcn["note"]


def test_image_part_loads_sd_and_sdxl_pipelines() -> None:
    done, rows = run_check("--only", "image", timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert_parts_ok(rows, ["image"])
    loaded = {r["measure"].split()[2]: r["note"] for r in rows if r["measure"].startswith("load")}
    assert loaded == {"SD-shaped": "StableDiffusionPipeline",
                      "SDXL-shaped": "StableDiffusionXLPipeline"}


def test_cuda_without_a_gpu_exits_2() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "text"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "no CUDA GPU" in done.stderr


def _script() -> ModuleType:
    """The script as a module (registered, as its dataclasses need)."""
    name = "gpu_check_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def test_a_failing_part_is_a_fail_row_and_the_others_still_run(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()

    def broken(check) -> None:
        check.add("measured before the error", 1.5, "s")
        raise RuntimeError("deliberately broken")

    def fine(check) -> None:
        check.add("a number", 2.0, "s")
        check.add("not a number", 0.0, "s")  # a zero is no measurement: FAIL

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # main() sets it when unset; keep it scoped
    monkeypatch.setattr("tailormind.models.registry.unload_all", lambda: None)  # others' roles
    monkeypatch.setitem(script.PART_FUNCTIONS, "cf", broken)
    monkeypatch.setitem(script.PART_FUNCTIONS, "text", fine)
    assert script.main(["--device", "cpu", "--small", "--json", "--only", "cf,text"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [(r["part"], r["measure"], r["ok"]) for r in rows] == [
        ("cf", "measured before the error", True), ("cf", "(part raised)", False),
        ("text", "a number", True), ("text", "not a number", False)]
    assert rows[1]["error"] == "RuntimeError: deliberately broken" and rows[1]["value"] is None
    assert rows[3]["error"] == "not a positive number"


def test_unknown_parts_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _script().parse_args(["--only", "cf,gpu"])
    assert info.value.code == 2 and "unknown part(s) gpu" in capsys.readouterr().err
