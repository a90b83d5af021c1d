"""Shared fixtures: the bundled MovieLens data, a split workspace of it, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tailormind.cli.main import run
from tailormind.data.importers import import_movielens
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace
from tailormind.data.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
ML_SMALL = REPO / "data" / "ml-latest-small"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``tailormind ARGS`` in-process; returns exit code, stdout and stderr."""
    for name in list(os.environ):
        if name.startswith("TAILORMIND_"):
            monkeypatch.delenv(name)

    def invoke(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def run_console_script(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
                       timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed ``tailormind`` console script as a user would."""
    exe = Path(sys.executable).with_name("tailormind")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORMIND_")}
    full_env.update(env or {})
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout)


@pytest.fixture(scope="session")
def ml_small() -> Path:
    return ML_SMALL


@pytest.fixture(scope="session")
def movielens_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """ml-latest-small imported and split with the default seed (read-only for tests)."""
    root = tmp_path_factory.mktemp("ml") / "ws"
    workspace = save_import(import_movielens(ML_SMALL), root)
    split_workspace(workspace, seed=2026)
    return Workspace.open(root)


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache per test session (dequantised SmolLM2 weights, call cache)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedded_settings(models_cache: Path):
    """Default (embedded) model settings with the session's cache directory."""
    from tailormind.config import load_config

    return load_config(environ={}, overrides={"models": {"cache_dir": str(models_cache)}})


@pytest.fixture(scope="session")
def profiled_ws(tmp_path_factory: pytest.TempPathFactory, models_cache: Path):
    """Synthetic users, split, HypergraphCF (2 epochs), cf_topk and item descriptions."""
    from tailormind.cf.checkpoint import save_checkpoint
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.recommend import recommend_workspace
    from tailormind.cf.train import train_model
    from tailormind.config import load_config
    from tailormind.data.importers import import_synthetic
    from tailormind.profiling.items import describe_items

    root = tmp_path_factory.mktemp("profiles") / "ws"
    ws = save_import(import_synthetic(users=24, items=80, tags=8, per_user=9, seed=5), root)
    split_workspace(ws, seed=1, negatives=30)
    settings = load_config(environ={}, overrides={"models": {"cache_dir": str(models_cache)},
                                                  "cf": {"epochs": 2, "embedding_dim": 8}})
    data = load_cf_data(ws)
    save_checkpoint(ws, train_model(data, settings.cf, "hypergraph", seed=1), data, settings.cf,
                    name="hypergraph")
    recommend_workspace(ws, "hypergraph", 5)
    describe_items(ws, settings)
    return root, settings


def fresh(profiled_ws, tmp_path: Path) -> Workspace:
    """A private copy of the ``profiled_ws`` workspace (tests write to it)."""
    import shutil

    root, _ = profiled_ws
    shutil.copytree(root, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


@pytest.fixture(scope="session")
def generated_base(profiled_ws, tmp_path_factory: pytest.TempPathFactory):
    """``profiled_ws`` with (dummy-engine) profiles for every user, built once per session:
    read-only — copy it (``fresh((ws.root, settings), ...)``) or take ``generated_ws``."""
    from tests.fakes import ProfilingText
    from tests.workspaces import make_profiler
    from tailormind.profiling.profiles import profile_users

    ws = fresh(profiled_ws, tmp_path_factory.mktemp("gen"))
    _, settings = profiled_ws
    profile_users(ws, settings, profiler=make_profiler(ws, settings, ProfilingText(
        init="Likes items about tag0001 and tag0002, in short practical notes.")))
    return ws, settings


@pytest.fixture(scope="module")
def generated_ws(generated_base, tmp_path_factory: pytest.TempPathFactory):
    """A module's own copy of ``generated_base`` (its tests write posts into it)."""
    ws, settings = generated_base
    return fresh((ws.root, settings), tmp_path_factory.mktemp("gen")), settings


def job_module(name: str):
    """``jobs/<name>.py`` imported as a module (its ``main(argv)`` is the entrypoint)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_job", REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def local_ray():
    """A throw-away local Ray cluster (auth off for this test only), shut down afterwards."""
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray
    finally:
        ray.shutdown()


def tiny_text_env(monkeypatch: pytest.MonkeyPatch, settings, llm_dir: Path, **extra: str) -> None:
    """TAILORMIND_* variables for a job run with a tiny random LM as the ``text`` role."""
    from tests.tiny_models import tiny_llama

    values = {"MODELS__CACHE_DIR": str(settings.models.cache_dir),
              "MODELS__TEXT__BACKEND": "transformers",
              "MODELS__TEXT__PATH": str(tiny_llama(llm_dir)), **extra}
    for key, value in values.items():
        monkeypatch.setenv(f"TAILORMIND_{key}", value)
