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


def test_local_api_uses_the_models_app_roles() -> None:
    spec = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    report = check_serve_config(spec)
    assert report.applications == ["tailormind-models", "tailormind-api"]
    assert any("TAILORMIND_WORKSPACE" in n for n in report.notes)


def test_rayservice_embeds_the_gpu_config_verbatim() -> None:
    service = yaml.safe_load((REPO / "k8s" / "rayservice.yaml").read_text())
    assert service["kind"] == "RayService"
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert embedded == _gpu()
    assert "tailormind-api" in check_serve_config(embedded, "rayservice").applications
    env = [e for group in [service["spec"]["rayClusterConfig"]["headGroupSpec"],
                           *service["spec"]["rayClusterConfig"]["workerGroupSpecs"]]
           for c in group["template"]["spec"]["containers"] for e in c.get("env", [])]
    assert all(e.get("name") != "RAY_AUTH_MODE" for e in env)  # token auth stays on
    assert all(e["valueFrom"]["secretKeyRef"]["name"] == "tailormind-api"
               for e in env if e["name"] == "TAILORMIND_API_TOKEN")


def _api(spec: dict) -> dict:
    return next(a for a in spec["applications"] if a["name"] == "tailormind-api")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: _api(s)["args"]["settings"]["models"].update(clip={"backend": "serve",
                                                                     "app": "elsewhere"}),
         "app 'elsewhere', which this config does not deploy"),
        (lambda s: (s["applications"][1]["args"].update(roles=["embed", "image", "video"]),
                    s["applications"][1]["deployments"].pop(1)),
         "does not host the clip role"),
        (lambda s: _api(s)["args"]["settings"].update(api={"max_pending_jobs": 0}),
         "api.max_pending_jobs"),
        (lambda s: _api(s)["args"]["settings"].update(api={"kinds": ["podcast"]}), "api.kinds"),
        (lambda s: _api(s)["args"].update(workers=3), "workers"),
        (lambda s: _api(s)["deployments"].append({"name": "Worker"}),
         "no deployment named 'Worker'"),
    ],
)
def test_broken_api_configs_fail(mutate, message: str) -> None:
    from tailormind.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        check_serve_config(_break(mutate))


def test_an_unauthenticated_model_route_beyond_loopback_is_refused() -> None:
    from tailormind.errors import ConfigError

    raw = _break(lambda s: (s["applications"][0].update(import_path="ray.serve.llm:build_openai_app"),
                            s["applications"][0]["args"].pop("api_key_env")))
    with pytest.raises(ConfigError, match="no API key; use tailormind.serve.llm_app:build_app"):
        check_serve_config(raw)
    # the same app reachable through handles only, or on loopback only, is accepted
    hidden = copy.deepcopy(raw)
    hidden["applications"][0]["route_prefix"] = None
    assert check_serve_config(hidden).llm_models
    local = copy.deepcopy(raw)
    local["http_options"]["host"] = "127.0.0.1"
    assert check_serve_config(local).llm_models
    # as shipped: the guarded builder, and the API's openai roles send its key
    spec = _gpu()
    assert spec["applications"][0]["import_path"] == "tailormind.serve.llm_app:build_app"
    api = next(a for a in spec["applications"] if a["name"] == "tailormind-api")
    for role in ("text", "describe"):
        assert api["args"]["settings"]["models"][role]["api_key_env"] == \
            spec["applications"][0]["args"]["api_key_env"]


def test_the_job_coordinator_runs_one_replica() -> None:
    from tailormind.errors import ConfigError

    def scale(spec: dict, **options) -> None:
        api = next(a for a in spec["applications"] if a["name"] == "tailormind-api")
        next(d for d in api["deployments"] if d["name"] == "JobCoordinator").update(options)

    for options in ({"num_replicas": 2}, {"autoscaling_config": {"max_replicas": 2}}):
        with pytest.raises(ConfigError, match="exactly one replica"):
            check_serve_config(_break(lambda s, o=options: scale(s, **o)))
    assert check_serve_config(_break(lambda s: scale(s, num_replicas=1))).applications


def test_starlette_is_pinned_past_the_range_header_dos() -> None:
    """CVE-2025-62727 (FileResponse Range header, quadratic parsing) is fixed in 0.49.1."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from packaging.version import Version

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [starlette] = [Requirement(d) for d in declared if Requirement(d).name == "starlette"]
    assert not starlette.specifier.contains("0.49.0") and starlette.specifier.contains("0.49.1")
    assert Version(version("starlette")) >= Version("0.49.1")
