"""The k8s/ manifests, checked offline as kubectl + the KubeRay operator would check them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tailormind.serve.k8s_manifest_check import (
    ManifestError,
    check_manifest,
    rule_problems,
    schema_info,
    schema_problems,
)

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "k8s").glob("*.yaml"))


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / "k8s" / name).read_text())


def _problems(doc: dict) -> list[str]:
    return schema_problems(doc) or rule_problems(doc)


def test_the_expected_manifests_exist() -> None:
    names = {p.name for p in MANIFESTS}
    assert {"raycluster.yaml", "rayjob-profile.yaml", "rayservice.yaml", "storage.yaml"} <= names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates(path: Path) -> None:
    assert check_manifest(path) == []


def test_schema_says_where_it_comes_from() -> None:
    info = schema_info()
    assert info["x-kuberay-version"].startswith("v1.")
    assert "ray-project/kuberay" in info["x-source"]
    assert info["kubernetes"] == "1.32.0" and info["x-notes"]


def test_rayjob_runs_on_the_raycluster_spec() -> None:
    assert _load("rayjob-profile.yaml")["spec"]["rayClusterSpec"] == _load("raycluster.yaml")["spec"]


def test_raycluster_shape() -> None:
    spec = _load("raycluster.yaml")["spec"]
    assert spec["authOptions"] == {"mode": "token"} and spec["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    gpu = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == "1" and groups["gpu"]["minReplicas"] == 0
    assert groups["gpu"]["maxReplicas"] > groups["gpu"]["minReplicas"]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        resources = group["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"] == resources["limits"]  # Guaranteed QoS, sized


def test_rayjob_entrypoint_is_the_pipeline_and_cleans_up() -> None:
    spec = _load("rayjob-profile.yaml")["spec"]
    assert spec["entrypoint"].startswith("python /app/jobs/pipeline.py")
    assert "--stages describe,cf,profile,evaluate" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0


# -- broken manifests must fail, each for the reason it was broken ------------------------------
def _worker(doc: dict) -> dict:
    return doc["spec"]["workerGroupSpecs"][0]


def _rename(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


BROKEN: dict[str, tuple[str, Callable[[dict], None], str]] = {
    "misspelled spec field": (
        "raycluster.yaml", lambda d: _rename(d["spec"], "workerGroupSpecs", "workerGroupSpec"),
        "'workerGroupSpec' was unexpected"),
    "replicas of the wrong type": (
        "raycluster.yaml", lambda d: _worker(d).__setitem__("replicas", "two"),
        "workerGroupSpecs[0].replicas: 'two' is not of type 'integer'"),
    "auth mode not in the enum": (
        "raycluster.yaml", lambda d: d["spec"]["authOptions"].__setitem__("mode", "password"),
        "authOptions.mode: 'password' is not one of"),
    "misspelled container field": (
        "raycluster.yaml",
        lambda d: _rename(_worker(d)["template"]["spec"]["containers"][0], "image", "imagee"),
        "'imagee' was unexpected"),
    "missing head group": (
        "raycluster.yaml", lambda d: d["spec"].pop("headGroupSpec"),
        "'headGroupSpec' is a required property"),
    "old apiVersion": (
        "raycluster.yaml", lambda d: d.__setitem__("apiVersion", "ray.io/v1alpha1"),
        "apiVersion: 'ray.io/v1' was expected"),
    "replicas above maxReplicas": (
        "raycluster.yaml", lambda d: _worker(d).__setitem__("replicas", 99),
        "needs minReplicas <= replicas <= maxReplicas"),
    "token auth off": (
        "raycluster.yaml", lambda d: d["spec"]["authOptions"].__setitem__("mode", "disabled"),
        "authOptions.mode: must be 'token'"),
    "RAY_AUTH_MODE override": (
        "raycluster.yaml",
        lambda d: _worker(d)["template"]["spec"]["containers"][0].setdefault("env", []).append(
            {"name": "RAY_AUTH_MODE", "value": "disabled"}),
        "sets RAY_AUTH_MODE"),
    "job entrypoint names a missing script": (
        "rayjob-profile.yaml",
        lambda d: d["spec"].__setitem__("entrypoint", "python /app/jobs/nope.py --workspace /x"),
        "/app/jobs/nope.py is not a script of the project"),
    "job config that does not exist": (
        "rayjob-profile.yaml",
        lambda d: d["spec"].__setitem__("entrypoint",
                                        "python /app/jobs/pipeline.py --config /app/configs/no.yaml"),
        "--config /app/configs/no.yaml: no such file"),
    "job submission mode": (
        "rayjob-profile.yaml", lambda d: d["spec"].__setitem__("submissionMode", "Batch"),
        "spec.submissionMode: 'Batch' is not one of"),
    "job cluster spec typo": (
        "rayjob-profile.yaml",
        lambda d: _rename(d["spec"]["rayClusterSpec"]["headGroupSpec"], "rayStartParams",
                          "rayStartParam"),
        "'rayStartParam' was unexpected"),
    "service config as a mapping": (
        "rayservice.yaml",
        lambda d: d["spec"].__setitem__("serveConfigV2", yaml.safe_load(d["spec"]["serveConfigV2"])),
        "serveConfigV2: {"),
    "service config with an unknown app arg": (
        "rayservice.yaml",
        lambda d: d["spec"].__setitem__("serveConfigV2", d["spec"]["serveConfigV2"].replace(
            "workspace: /shared/ws", "workspace: /shared/ws\n        wrkspace: /x", 1)),
        "wrkspace"),
    "service upgrade type": (
        "rayservice.yaml", lambda d: d["spec"]["upgradeStrategy"].__setitem__("type", "Rolling"),
        "upgradeStrategy.type: 'Rolling' is not one of"),
    "PVC without access modes type": (
        "storage.yaml", lambda d: d["spec"].__setitem__("accessModes", "ReadWriteMany"),
        "accessModes: 'ReadWriteMany' is not of type"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_manifest_fails(case: str) -> None:
    name, breaks, expected = BROKEN[case]
    doc = copy.deepcopy(next(yaml.safe_load_all((REPO / "k8s" / name).read_text())))
    assert _problems(doc) == []  # the original passes...
    breaks(doc)
    problems = _problems(doc)  # ...the broken one fails, for the reason it was broken
    assert any(expected in p for p in problems), problems


def test_a_broken_manifest_file_is_named(tmp_path: Path) -> None:
    doc = _load("raycluster.yaml")
    _worker(doc)["replicas"] = "two"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    problems = check_manifest(path)
    assert problems and problems[0].startswith("broken.yaml RayCluster/tailormind-batch: ")


def test_unreadable_manifests_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    with pytest.raises(ManifestError, match="bad.yaml: cannot read"):
        check_manifest(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ManifestError, match="document 1 is not a mapping"):
        check_manifest(bad)
    bad.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert "no schema for apiVersion 'example.com/v1'" in check_manifest(bad)[0]
