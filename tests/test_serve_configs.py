"""Serve configs validated offline: Serve's own schema, Ray Serve LLM's LLMConfig (no vLLM needed),
and TailorMind's app args and models blocks. A deliberately broken config must fail."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tailormind.serve.serve_config_check import check_serve_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "serve_configs").glob("*.yaml"))


def test_both_configs_exist() -> None:
    assert {p.name for p in CONFIGS} >= {"local.yaml", "gpu.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates(path: Path) -> None:
    report = check_serve_config(yaml.safe_load(path.read_text()))
    assert report.applications, report


def test_gpu_config_asks_for_gpus_and_vllm() -> None:
    spec = yaml.safe_load((REPO / "serve_configs" / "gpu.yaml").read_text())
    report = check_serve_config(spec)
    assert report.llm_models == ["qwen2.5-7b-instruct", "qwen2.5-vl-7b-instruct"]
    gpus = {d["name"]: d.get("ray_actor_options", {}).get("num_gpus", 0)
            for app in spec["applications"] for d in app.get("deployments", [])}
    assert gpus["ImageModel"] == 1 and gpus["VideoModel"] == 1 and gpus["ClipScorer"] > 0


def _gpu() -> dict:
    return yaml.safe_load((REPO / "serve_configs" / "gpu.yaml").read_text())


def _break(mutate) -> dict:
    spec = copy.deepcopy(_gpu())
    mutate(spec)
    return spec


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["applications"][0].pop("import_path"), "import_path"),
        (lambda s: s["applications"][1]["deployments"][0].update(num_replicas=-2), "num_replicas"),
        (lambda s: s["applications"][0]["args"]["llm_configs"][0].update(engine="vllm"), "engine"),
        (lambda s: s["applications"][0]["args"]["llm_configs"][0].pop("model_loading_config"),
         "model_loading_config"),
        (lambda s: s["applications"][1]["args"]["models"]["image"].update(backend="dalle"),
         "models.image.backend: unknown backend 'dalle'"),
        (lambda s: s["applications"][1]["args"].update(roles=["image", "sound"]),
         "unknown role"),
        (lambda s: s["applications"][1]["args"].update(colour="blue"), "colour"),
        (lambda s: s["applications"][1]["deployments"].append({"name": "Imagemodel"}),
         "no deployment named 'Imagemodel'"),
    ],
)
def test_broken_configs_fail(mutate, message: str) -> None:
    from tailormind.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        check_serve_config(_break(mutate))
