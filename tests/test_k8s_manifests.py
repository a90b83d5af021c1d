"""The k8s/ manifests, checked offline as kubectl + the KubeRay operator would check them."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tailormind.errors import TailorMindError
from tailormind.serve.k8s_manifest_check import (
    CRD_DIR,
    ManifestError,
    check_manifest,
    crd_version,
    load_crd,
    openapi_to_json_schema,
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
    assert info["kuberay"] == "v1.7.0" and info["kubernetes"] == "1.32.0"
    assert info["crds"] == {kind: f"k8s/crds/kuberay-v1.7.0/ray.io_{kind.lower()}s.yaml"
                            for kind in ("RayCluster", "RayJob", "RayService")}
    for kind in info["crds"]:
        assert load_crd(kind)["spec"]["names"]["kind"] == kind
        assert crd_version(load_crd(kind), "v1")["storage"] is True


def test_vendored_crds_are_unmodified() -> None:
    """The hashes the vendored README records (of the files as released) still hold."""
    readme = (CRD_DIR / "README.md").read_text()
    assert "ray-project/kuberay" in readme and "`v1.7.0`" in readme and "Apache" in readme
    recorded = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", readme, re.M))
    assert set(recorded) == {"LICENSE", *(Path(p).name for p in schema_info()["crds"].values())}
    for name, digest in recorded.items():
        assert hashlib.sha256((CRD_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (CRD_DIR / "LICENSE").read_text()


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
    assert "--stages describe,cf,profile,fit,evaluate" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0


# -- broken manifests must fail, each for the reason it was broken ------------------------------
def _worker(doc: dict) -> dict:
    return doc["spec"]["workerGroupSpecs"][0]


def _head(doc: dict) -> dict:
    return doc["spec"]["headGroupSpec"]


def _container(group: dict) -> dict:
    return group["template"]["spec"]["containers"][0]


def _rename(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


HEAD_CONTAINER = "spec.headGroupSpec.template.spec.containers[0]"


BROKEN: dict[str, tuple[str, Callable[[dict], None], str]] = {
    "misspelled spec field": (
        "raycluster.yaml", lambda d: _rename(d["spec"], "workerGroupSpecs", "workerGroupSpec"),
        "spec.workerGroupSpec: unknown field"),
    "unknown top-level field": (
        "raycluster.yaml", lambda d: d.__setitem__("specs", {}), "specs: unknown field"),
    "unknown field in a head group": (
        "raycluster.yaml", lambda d: _head(d).__setitem__("replicas", 1),
        "spec.headGroupSpec.replicas: unknown field"),
    "unknown field in a head container": (
        "raycluster.yaml", lambda d: _rename(_container(_head(d)), "resources", "resource"),
        f"{HEAD_CONTAINER}.resource: unknown field"),
    "unknown field in a container port": (
        "raycluster.yaml", lambda d: _container(_head(d))["ports"][0].__setitem__("port", 1),
        f"{HEAD_CONTAINER}.ports[0].port: unknown field"),
    "unknown field in pod template metadata": (
        "raycluster.yaml", lambda d: _head(d)["template"].__setitem__("metadata", {"label": {}}),
        "spec.headGroupSpec.template.metadata.label: unknown field"),
    "unknown field in the object metadata": (
        "raycluster.yaml", lambda d: _rename(d["metadata"], "labels", "label"),
        "metadata.label: unknown field"),
    "unknown field in a job spec": (
        "rayjob-profile.yaml", lambda d: _rename(d["spec"], "entrypoint", "entryPoint"),
        "spec.entryPoint: unknown field"),
    "unknown field in a service spec": (
        "rayservice.yaml", lambda d: d["spec"].__setitem__("serveConfigV3", "x"),
        "spec.serveConfigV3: unknown field"),
    "replicas of the wrong type": (
        "raycluster.yaml", lambda d: _worker(d).__setitem__("replicas", "two"),
        "workerGroupSpecs[0].replicas: 'two' is not of type 'integer'"),
    "replicas beyond int32": (
        "raycluster.yaml", lambda d: _worker(d).__setitem__("replicas", 2**31),
        "workerGroupSpecs[0].replicas: 2147483648 is not a 'int32'"),
    "boolean as a string": (
        "raycluster.yaml", lambda d: d["spec"].__setitem__("enableInTreeAutoscaling", "true"),
        "spec.enableInTreeAutoscaling: 'true' is not of type 'boolean'"),
    "null where the CRD is not nullable": (
        "raycluster.yaml", lambda d: d["spec"].__setitem__("enableInTreeAutoscaling", None),
        "spec.enableInTreeAutoscaling: None is not of type 'boolean'"),
    "rayStartParams value not a string": (
        "raycluster.yaml", lambda d: _head(d)["rayStartParams"].__setitem__("num-cpus", 0),
        "spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'"),
    "quantity that is neither int nor string": (
        "raycluster.yaml", lambda d: _container(_head(d))["resources"]["limits"].__setitem__(
            "cpu", 4.5), f"{HEAD_CONTAINER}.resources.limits.cpu: 4.5 is not of type 'integer', "
                         "'string'"),
    "quantity string that is not a quantity": (
        "raycluster.yaml", lambda d: _container(_head(d))["resources"]["limits"].__setitem__(
            "cpu", "four"), f"{HEAD_CONTAINER}.resources.limits.cpu: 'four' does not match"),
    "container without a name": (
        "raycluster.yaml", lambda d: _container(_worker(d)).pop("name"),
        "spec.workerGroupSpecs[0].template.spec.containers[0]: 'name' is a required property"),
    "worker group without a name": (
        "rayservice.yaml", lambda d: d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].pop(
            "groupName"),
        "spec.rayClusterConfig.workerGroupSpecs[0]: 'groupName' is a required property"),
    "two container ports with the same key": (
        "raycluster.yaml", lambda d: _container(_head(d))["ports"].append(
            {"containerPort": 6379, "name": "gcs2"}),
        f"{HEAD_CONTAINER}.ports: items 0 and 3 have the same containerPort/protocol"),
    "unknown Ray API version": (
        "raycluster.yaml", lambda d: d.__setitem__("apiVersion", "ray.io/v2"),
        "apiVersion: the KubeRay v1.7.0 RayCluster CRD has no version 'v2' (it has v1, v1alpha1)"),
    "Ray kind in another API group": (
        "raycluster.yaml", lambda d: d.__setitem__("apiVersion", "ray.example.com/v1"),
        "apiVersion: 'ray.example.com/v1' is not ray.io/<version>"),
    "Ray kind without an API version": (
        "raycluster.yaml", lambda d: d.__setitem__("apiVersion", "ray.io"),
        "apiVersion: 'ray.io' is not ray.io/<version>"),
    "auth mode not in the enum": (
        "raycluster.yaml", lambda d: d["spec"]["authOptions"].__setitem__("mode", "password"),
        "authOptions.mode: 'password' is not one of"),
    "misspelled container field": (
        "raycluster.yaml",
        lambda d: _rename(_worker(d)["template"]["spec"]["containers"][0], "image", "imagee"),
        "spec.workerGroupSpecs[0].template.spec.containers[0].imagee: unknown field"),
    "missing head group": (
        "raycluster.yaml", lambda d: d["spec"].pop("headGroupSpec"),
        "spec: 'headGroupSpec' is a required property"),
    "old apiVersion": (
        "raycluster.yaml", lambda d: d.__setitem__("apiVersion", "ray.io/v1alpha1"),
        "apiVersion: ray.io/v1alpha1 RayCluster is deprecated; use ray.io/v1 RayCluster"),
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
        "spec.rayClusterSpec.headGroupSpec.rayStartParam: unknown field"),
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


# -- the CRD schema semantics the check implements ------------------------------------------------
@pytest.mark.parametrize("value", [4, "4", "3500m", 8265, "dashboard"], ids=repr)
def test_int_or_string_accepts_both(value: int | str) -> None:
    doc = _load("raycluster.yaml")
    container = _container(_head(doc))
    if value in (8265, "dashboard"):  # a probe's port: int-or-string without a pattern
        container["livenessProbe"] = {"httpGet": {"path": "/", "port": value}}
    else:  # a resource quantity: int-or-string, the string a Kubernetes quantity
        container["resources"]["limits"]["cpu"] = value
    assert schema_problems(doc) == []
    container.setdefault("livenessProbe", {"httpGet": {"path": "/"}})["httpGet"]["port"] = 1.5
    assert schema_problems(doc) == [
        f"{HEAD_CONTAINER}.livenessProbe.httpGet.port: 1.5 is not of type 'integer', 'string'"]


def test_nullable_fields_accept_null() -> None:
    """KubeRay's only nullable field is in the status; null elsewhere is a type error (above)."""
    doc = _load("raycluster.yaml")
    doc["status"] = {"lastUpdateTime": None}
    assert schema_problems(doc) == []
    doc["status"] = {"lastUpdateTime": "yesterday"}
    assert schema_problems(doc) == ["status.lastUpdateTime: 'yesterday' is not a 'date-time'"]
    doc["status"] = {"lastUpdateTime": "2026-12-01T10:00:00Z"}
    assert schema_problems(doc) == []


def test_a_missing_crd_version_is_a_clear_error() -> None:
    with pytest.raises(TailorMindError, match=r"RayJob CRD has no version 'v9' \(it has v1, "):
        crd_version(load_crd("RayJob"), "v9")


def _validate(openapi: dict, instance: object) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(openapi_to_json_schema(openapi))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def test_conversion_keeps_unknown_fields_where_the_crd_says_so() -> None:
    strict = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert _validate(strict, {"a": "x"}) == []
    assert "('b' was unexpected)" in _validate(strict, {"a": "x", "b": 1})[0]
    preserved = {**strict, "x-kubernetes-preserve-unknown-fields": True}
    assert _validate(preserved, {"a": "x", "b": {"anything": [1]}}) == []
    assert _validate({**strict, "additionalProperties": True}, {"b": 1}) == []
    assert _validate({"type": "object"}, {"b": 1}) != []  # no properties: nothing is kept
    typed = {"type": "object", "additionalProperties": {"type": "integer", "format": "int32"}}
    assert _validate(typed, {"b": 1}) == [] and "is not of type" in _validate(typed, {"b": "1"})[0]
    assert _validate({"type": "array", "items": strict, "x-kubernetes-list-type": "set"},
                     [{"a": "x"}, {"a": "x"}]) != []


def test_conversion_refuses_keywords_it_does_not_implement() -> None:
    embedded = {"type": "object", "properties": {
        "job": {"type": "object", "x-kubernetes-embedded-resource": True}}}
    with pytest.raises(TailorMindError, match=r"at \.job: .*x-kubernetes-embedded-resource"):
        openapi_to_json_schema(embedded)
