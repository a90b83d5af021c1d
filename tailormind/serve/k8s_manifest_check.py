"""Offline check of the Kubernetes manifests in ``k8s/``: what ``kubectl apply`` and the KubeRay
operator would reject, found without a cluster.

* ``ray.io/v1`` RayCluster / RayJob / RayService against the KubeRay API schema stored in
  ``k8s/schemas/kuberay-ray.io-v1.json`` (transcribed from KubeRay's Go API types; its
  ``x-kuberay-version``/``x-source``/``x-notes`` say from which version and what is not enforced),
  with the Kubernetes core types it embeds (pod templates, Services, ObjectMeta...) taken from
  Kubernetes' own OpenAPI definitions as shipped by the ``kubernetes-validate`` package, strict
  variant (unknown fields are errors, as with kubectl's strict field validation).
* Core kinds (``v1`` Secret, PersistentVolumeClaim, ConfigMap, Service...) against those same
  Kubernetes definitions.
* What the operator checks beyond the schema: ``minReplicas <= replicas <= maxReplicas``, the
  RayJob ``submissionMode`` and RayService ``upgradeStrategy.type`` values.
* Project rules: Ray token auth stays on (``authOptions.mode: token``, no ``RAY_AUTH_MODE``
  override), a RayService's ``serveConfigV2`` passes :func:`check_serve_config`, a RayJob's
  ``runtimeEnvYAML`` parses and its entrypoint's ``jobs/*.py`` script exists.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tailormind.errors import TailorMindError

REPO = Path(__file__).resolve().parents[2]
KUBERAY_SCHEMA = REPO / "k8s" / "schemas" / "kuberay-ray.io-v1.json"
#: Kubernetes API version whose definitions validate the core types (kubernetes-validate).
KUBERNETES_VERSION = "1.32.0"
RAY_KINDS = ("RayCluster", "RayJob", "RayService")
#: Where the Dockerfile puts the project in the image.
IMAGE_ROOT = "/app/"
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
UPGRADE_TYPES = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")
_CORE_GROUPS = {"v1": "io.k8s.api.core.v1", "apps/v1": "io.k8s.api.apps.v1",
                "batch/v1": "io.k8s.api.batch.v1",
                "networking.k8s.io/v1": "io.k8s.api.networking.v1"}


class ManifestError(TailorMindError):
    """A manifest could not be read at all (not YAML, not a mapping)."""


def kubernetes_definitions() -> dict[str, Any]:
    """``$defs`` of Kubernetes' OpenAPI schema (strict) for :data:`KUBERNETES_VERSION`."""
    from importlib.resources import files

    try:
        base = files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError as exc:
        raise TailorMindError("the manifest check needs the kubernetes-validate package "
                              "(pip install -e '.[dev]')") from exc
    path = base / f"v{KUBERNETES_VERSION}-local-strict" / "_definitions.json"
    return json.loads(path.read_text(encoding="utf-8"))["$defs"]


@lru_cache(maxsize=1)
def _validator_defs() -> tuple[dict[str, Any], dict[str, Any]]:
    kuberay = json.loads(KUBERAY_SCHEMA.read_text(encoding="utf-8"))
    defs = kubernetes_definitions()
    clash = set(defs) & set(kuberay["$defs"])
    if clash:
        raise TailorMindError(f"schema names defined twice: {sorted(clash)[:3]}")
    info = {k: v for k, v in kuberay.items() if k.startswith("x-")}
    return {**defs, **kuberay["$defs"]}, info


@lru_cache(maxsize=64)
def _validator(definition: str):
    from jsonschema import Draft202012Validator

    defs, _ = _validator_defs()
    if definition not in defs:
        return None
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs,
              "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


def schema_info() -> dict[str, Any]:
    """Where the KubeRay schema comes from (``x-kuberay-version``, ``x-source``, ``x-notes``)."""
    return {**_validator_defs()[1], "kubernetes": KUBERNETES_VERSION}


def definition_for(doc: dict[str, Any]) -> str | None:
    kind, api = doc.get("kind"), doc.get("apiVersion")
    if kind in RAY_KINDS:
        return f"ray.io.v1.{kind}"
    group = _CORE_GROUPS.get(api)
    return f"{group}.{kind}" if group and isinstance(kind, str) else None


def _where(path: Any) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")


def schema_problems(doc: dict[str, Any]) -> list[str]:
    definition = definition_for(doc)
    validator = _validator(definition) if definition else None
    if validator is None:
        return [f"no schema for apiVersion {doc.get('apiVersion')!r} kind {doc.get('kind')!r}"]
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        message = error.message if len(error.message) < 300 else error.message[:300] + "..."
        problems.append(f"{_where(error.absolute_path) or '(top)'}: {message}")
    return problems


def _cluster_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind == "RayCluster":
        yield "spec", spec
    elif kind == "RayJob" and isinstance(spec.get("rayClusterSpec"), dict):
        yield "spec.rayClusterSpec", spec["rayClusterSpec"]
    elif kind == "RayService" and isinstance(spec.get("rayClusterConfig"), dict):
        yield "spec.rayClusterConfig", spec["rayClusterConfig"]


def _containers(cluster: dict[str, Any]) -> Iterator[dict[str, Any]]:
    groups = [cluster.get("headGroupSpec") or {}, *(cluster.get("workerGroupSpecs") or [])]
    for group in groups:
        pod = ((group.get("template") or {}).get("spec") or {}) if isinstance(group, dict) else {}
        for container in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
            if isinstance(container, dict):
                yield container


def rule_problems(doc: dict[str, Any], repo: Path = REPO) -> list[str]:
    """Operator and project rules (see the module doc); assumes the schema check passed."""
    problems: list[str] = []
    spec = doc.get("spec") or {}
    for where, cluster in _cluster_specs(doc):
        if (cluster.get("authOptions") or {}).get("mode") != "token":
            problems.append(f"{where}.authOptions.mode: must be 'token' (Ray token auth on)")
        for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
            low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
            replicas = group.get("replicas", low)
            if not low <= replicas <= high:
                problems.append(f"{where}.workerGroupSpecs[{i}] ({group.get('groupName')}): "
                                f"needs minReplicas <= replicas <= maxReplicas, got "
                                f"{low} <= {replicas} <= {high}")
        for container in _containers(cluster):
            for env in container.get("env") or []:
                if env.get("name") == "RAY_AUTH_MODE":
                    problems.append(f"{where}: container {container.get('name')!r} sets "
                                    "RAY_AUTH_MODE; production clusters keep token auth on")
    if doc.get("kind") == "RayService":
        problems += _serve_config_problems(spec)
        kind = (spec.get("upgradeStrategy") or {}).get("type")
        if kind is not None and kind not in UPGRADE_TYPES:
            problems.append(f"spec.upgradeStrategy.type: {kind!r} is not one of {UPGRADE_TYPES}")
    if doc.get("kind") == "RayJob":
        problems += _job_problems(spec, repo)
    return problems


def _serve_config_problems(spec: dict[str, Any]) -> list[str]:
    from tailormind.serve.serve_config_check import check_serve_config

    text = spec.get("serveConfigV2")
    if not isinstance(text, str):
        return ["spec.serveConfigV2: missing (the Serve config, as a YAML string)"]
    try:
        check_serve_config(yaml.safe_load(text), "spec.serveConfigV2")
    except yaml.YAMLError as exc:
        return [f"spec.serveConfigV2: not YAML: {exc}"]
    except TailorMindError as exc:
        return [str(exc)]
    return []


def _job_problems(spec: dict[str, Any], repo: Path) -> list[str]:
    problems = []
    mode = spec.get("submissionMode")
    if mode is not None and mode not in SUBMISSION_MODES:
        problems.append(f"spec.submissionMode: {mode!r} is not one of {SUBMISSION_MODES}")
    if "runtimeEnvYAML" in spec:
        try:
            env = yaml.safe_load(spec["runtimeEnvYAML"])
        except yaml.YAMLError as exc:
            problems.append(f"spec.runtimeEnvYAML: not YAML: {exc}")
        else:
            if not isinstance(env, dict):
                problems.append("spec.runtimeEnvYAML: must be a mapping")
    try:
        words = shlex.split(spec.get("entrypoint") or "")
    except ValueError as exc:
        return [*problems, f"spec.entrypoint: {exc}"]
    for i, word in enumerate(words):
        relative = word[len(IMAGE_ROOT):] if word.startswith(IMAGE_ROOT) else word
        if relative.startswith("jobs/") and relative.endswith(".py"):
            if not (repo / relative).is_file():
                problems.append(f"spec.entrypoint: {word} is not a script of the project")
        if word == "--config" and i + 1 < len(words):
            problems += _config_problems(words[i + 1], repo)
    if not words:
        problems.append("spec.entrypoint: empty")
    return problems


def _config_problems(path: str, repo: Path) -> list[str]:
    from tailormind.config import load_config

    relative = path[len(IMAGE_ROOT):] if path.startswith(IMAGE_ROOT) else path
    if not (repo / relative).is_file():
        return [f"spec.entrypoint: --config {path}: no such file in the project"]
    try:
        load_config(repo / relative, environ={})
    except TailorMindError as exc:
        return [f"spec.entrypoint: --config {path}: {exc}"]
    return []


def load_documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ManifestError(f"{path}: document {i + 1} is not a mapping")
    return docs


def check_manifest(path: Path, repo: Path = REPO) -> list[str]:
    """Every problem in every document of ``path``, as ``<file> <Kind>/<name>: <where>: <what>``;
    empty when ``kubectl apply`` and the operator should accept it."""
    problems = []
    for doc in load_documents(path):
        name = f"{path.name} {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        found = schema_problems(doc)
        if not found:
            found = rule_problems(doc, repo)
        problems += [f"{name}: {p}" for p in found]
    return problems
