"""Offline check of the Kubernetes manifests in ``k8s/``: what ``kubectl apply`` and the KubeRay
operator would reject, found without a cluster.

* ``ray.io`` RayCluster / RayJob / RayService against KubeRay's own CRDs, vendored unmodified in
  ``k8s/crds/kuberay-v1.7.0/`` (its README says from where): the schema of the version the
  manifest's ``apiVersion`` names (``spec.versions[].schema.openAPIV3Schema``), converted to
  JSON Schema by :func:`openapi_to_json_schema` with the API server's strict field validation
  (unknown fields are errors). A deprecated version is a problem too. The top-level
  ``metadata`` (``type: object`` in a CRD: the API server checks it itself) is checked against
  Kubernetes' ObjectMeta.
* Core kinds (``v1`` Secret, PersistentVolumeClaim, ConfigMap, Service...) and ObjectMeta against
  Kubernetes' own OpenAPI definitions as shipped by the ``kubernetes-validate`` package, strict
  variant (unknown fields are errors, as with kubectl's strict field validation).
* What the operator checks beyond the schema: ``minReplicas <= replicas <= maxReplicas``, the
  RayJob ``submissionMode`` and RayService ``upgradeStrategy.type`` values.
* Project rules: Ray token auth stays on (``authOptions.mode: token``, no ``RAY_AUTH_MODE``
  override), a RayService's ``serveConfigV2`` passes :func:`check_serve_config`, a RayJob's
  ``runtimeEnvYAML`` parses and its entrypoint's ``jobs/*.py`` script exists.

Not checked: the CRDs' CEL rules (``x-kubernetes-validations``), defaulting, immutability and the
operator's admission webhook beyond the rules above.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tailormind.errors import TailorMindError

REPO = Path(__file__).resolve().parents[2]
#: KubeRay release whose CRDs are vendored (unmodified) in :data:`CRD_DIR`.
KUBERAY_VERSION = "v1.7.0"
CRD_DIR = REPO / "k8s" / "crds" / f"kuberay-{KUBERAY_VERSION}"
RAY_GROUP = "ray.io"
#: The CRD file of each Ray kind, in :data:`CRD_DIR`.
RAY_CRDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
            "RayService": "ray.io_rayservices.yaml"}
RAY_KINDS = tuple(RAY_CRDS)
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
#: Kubernetes API version whose definitions validate the core types (kubernetes-validate).
KUBERNETES_VERSION = "1.32.0"
#: Where the Dockerfile puts the project in the image.
IMAGE_ROOT = "/app/"
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
UPGRADE_TYPES = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")
_CORE_GROUPS = {"v1": "io.k8s.api.core.v1", "apps/v1": "io.k8s.api.apps.v1",
                "batch/v1": "io.k8s.api.batch.v1",
                "networking.k8s.io/v1": "io.k8s.api.networking.v1"}


class ManifestError(TailorMindError):
    """A manifest could not be read at all (not YAML, not a mapping)."""


# -- KubeRay's CRDs ------------------------------------------------------------------------------
@lru_cache(maxsize=len(RAY_CRDS))
def load_crd(kind: str) -> dict[str, Any]:
    """The vendored CustomResourceDefinition of the Ray ``kind`` (a key of :data:`RAY_CRDS`);
    :class:`TailorMindError` when the file is missing or defines another kind or group."""
    path = CRD_DIR / RAY_CRDS[kind]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~0.3 s for 1 MB, not ~10
    try:
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (safe)
    except OSError as exc:
        raise TailorMindError(f"KubeRay CRD for {kind} missing: {exc}") from None
    spec = (crd.get("spec") or {}) if isinstance(crd, dict) else {}
    if spec.get("group") != RAY_GROUP or (spec.get("names") or {}).get("kind") != kind:
        raise TailorMindError(f"{path}: not the {RAY_GROUP} {kind} CustomResourceDefinition")
    return crd


def crd_version(crd: dict[str, Any], version: str) -> dict[str, Any]:
    """The entry of ``crd``'s ``spec.versions`` named ``version``; :class:`TailorMindError`
    naming the versions the CRD has when there is none."""
    versions = crd["spec"]["versions"]
    for entry in versions:
        if entry.get("name") == version:
            return entry
    names = ", ".join(entry.get("name", "?") for entry in versions)
    raise TailorMindError(f"the KubeRay {KUBERAY_VERSION} {crd['spec']['names']['kind']} CRD has "
                          f"no version {version!r} (it has {names})")


# -- OpenAPI v3 (a CRD's structural schema) -> JSON Schema --------------------------------------
#: Keywords copied as they are: they mean the same in OpenAPI v3 and JSON Schema 2020-12.
_COPIED = ("required", "enum", "pattern", "format", "minimum", "maximum", "multipleOf",
           "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
           "uniqueItems")
#: Keywords read by the conversion, or deliberately not checked (docs, defaults, CEL rules).
_HANDLED = frozenset({*_COPIED, "type", "nullable", "properties", "additionalProperties",
                      "items", "allOf", "anyOf", "oneOf", "not", "x-kubernetes-int-or-string",
                      "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
                      "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "description",
                      "title", "example", "default", "x-kubernetes-validations"})
#: Custom keyword of the converted schema: the item keys of a ``list-type: map`` list.
UNIQUE_KEYS = "x-tailormind-unique-keys"


def openapi_to_json_schema(node: dict[str, Any], where: str = "") -> dict[str, Any]:
    """JSON Schema (2020-12) that accepts what the API server accepts for the CRD schema ``node``
    under strict field validation: an object rejects keys outside its ``properties`` unless
    ``additionalProperties`` (a schema or ``true``) or ``x-kubernetes-preserve-unknown-fields``
    allows them; ``nullable`` admits null (otherwise null is a type error, stricter than the
    server, which drops such nulls); ``x-kubernetes-int-or-string`` admits integers and strings;
    ``x-kubernetes-list-type`` ``set``/``map`` lists reject duplicates. Descriptions, defaults and
    CEL rules are ignored; any other keyword raises :class:`TailorMindError` (``where`` names the
    place), so a CRD that needs more than this is noticed, not half-checked."""
    unknown = set(node) - _HANDLED
    if unknown:
        raise TailorMindError(f"CRD schema at {where or '(root)'}: keyword(s) the manifest check "
                              f"does not implement: {sorted(unknown)}")
    out: dict[str, Any] = {key: node[key] for key in _COPIED if key in node}
    types = _json_types(node)
    if types:
        out["type"] = types[0] if len(types) == 1 else types
    if node.get("nullable") and "enum" in out:
        out["enum"] = [*out["enum"], None]
    if "properties" in node:
        out["properties"] = {key: openapi_to_json_schema(value, f"{where}.{key}")
                             for key, value in node["properties"].items()}
    if "items" in node:
        out["items"] = openapi_to_json_schema(node["items"], f"{where}[]")
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node and not (key == "anyOf" and _restates_int_or_string(node)):
            out[key] = [openapi_to_json_schema(branch, where) for branch in node[key]]
    if "not" in node:
        out["not"] = openapi_to_json_schema(node["not"], where)
    extra = _additional_properties(node, where)
    if extra is not None:
        out["additionalProperties"] = extra
    out.update(_list_uniqueness(node))
    return out


def _json_types(node: dict[str, Any]) -> list[str]:
    """The JSON Schema types ``node`` admits: its ``type`` (``integer`` and ``string`` for
    int-or-string), plus ``null`` when ``nullable``; empty when it names none (any type)."""
    if node.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    elif "type" in node:
        types = [node["type"]]
    else:
        return []
    return [*types, "null"] if node.get("nullable") else types


def _restates_int_or_string(node: dict[str, Any]) -> bool:
    """Whether ``node`` is int-or-string with the ``anyOf: [integer, string]`` controller-gen
    writes beside it (already said by ``type``; dropped so a bad value gets one error)."""
    return bool(node.get("x-kubernetes-int-or-string")) and node.get("anyOf") == [
        {"type": "integer"}, {"type": "string"}]


def _additional_properties(node: dict[str, Any], where: str) -> dict[str, Any] | bool | None:
    """``additionalProperties`` of the converted ``node``: the CRD's own (converted), none when
    unknown fields are preserved or ``node`` is not an object, else ``False`` (strict)."""
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return openapi_to_json_schema(extra, f"{where}.*")
    if isinstance(extra, bool):
        return extra
    if node.get("type") != "object" or node.get("x-kubernetes-preserve-unknown-fields"):
        return None
    return False


def _list_uniqueness(node: dict[str, Any]) -> dict[str, Any]:
    """Keywords for ``x-kubernetes-list-type``: a set's items are unique, a map's items have
    unique values of ``x-kubernetes-list-map-keys`` (:data:`UNIQUE_KEYS`); atomic: nothing."""
    kind = node.get("x-kubernetes-list-type")
    if kind == "set":
        return {"uniqueItems": True}
    if kind == "map":
        return {UNIQUE_KEYS: list(node.get("x-kubernetes-list-map-keys") or [])}
    return {}


def _unique_keys(validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]
                 ) -> Iterator[Any]:
    """The :data:`UNIQUE_KEYS` keyword: no two objects of the list share all of ``keys``."""
    from jsonschema import ValidationError

    if not validator.is_type(instance, "array"):
        return
    first: dict[str, int] = {}
    for i, item in enumerate(instance):
        if isinstance(item, dict):
            key = json.dumps([item.get(k) for k in keys])
            if key in first:
                yield ValidationError(f"items {first[key]} and {i} have the same {'/'.join(keys)}")
            first.setdefault(key, i)


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _int_in_range(bits: int) -> Callable[[Any], bool]:
    """A format check: an integer fits a signed ``bits``-bit integer (non-integers pass)."""
    def check(value: Any) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return True
        return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)

    return check


def _format_checker() -> Any:
    """The OpenAPI formats these CRDs use: ``int32``/``int64`` (range) and ``date-time`` (RFC
    3339); a value of another type, or any other format, passes."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("int32")(_int_in_range(32))
    checker.checks("int64")(_int_in_range(64))

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        return bool(_RFC3339.fullmatch(value)) and bool(
            datetime.fromisoformat(value.upper().replace("Z", "+00:00")))

    return checker


@lru_cache(maxsize=8)
def crd_validator(kind: str, version: str) -> Any:
    """A jsonschema validator for ``kind`` at CRD version ``version`` (:func:`crd_version`'s
    error when the CRD has none); its top-level ``metadata`` accepts any object (see
    :func:`schema_problems`)."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    entry = crd_version(load_crd(kind), version)
    schema = openapi_to_json_schema(entry["schema"]["openAPIV3Schema"], kind)
    schema["properties"]["metadata"] = {"type": "object"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    validator = extend(Draft202012Validator, {UNIQUE_KEYS: _unique_keys})
    return validator(schema, format_checker=_format_checker())


# -- Kubernetes' own definitions (core kinds, ObjectMeta) ---------------------------------------
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
def _kubernetes_defs() -> dict[str, Any]:
    return kubernetes_definitions()


@lru_cache(maxsize=64)
def _validator(definition: str) -> Any:
    """A validator for the Kubernetes definition ``definition``; None when there is none."""
    from jsonschema import Draft202012Validator

    defs = _kubernetes_defs()
    if definition not in defs:
        return None
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs,
              "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


def schema_info() -> dict[str, Any]:
    """Where the schemas come from: the KubeRay release, its CRD files (relative to the repo)
    and the Kubernetes version of the core definitions."""
    return {"kuberay": KUBERAY_VERSION, "kubernetes": KUBERNETES_VERSION,
            "crds": {kind: (CRD_DIR / name).relative_to(REPO).as_posix()
                     for kind, name in RAY_CRDS.items()}}


def definition_for(doc: dict[str, Any]) -> str | None:
    """The Kubernetes definition of a core-kind ``doc``; None for other kinds."""
    kind, api = doc.get("kind"), doc.get("apiVersion")
    group = _CORE_GROUPS.get(api) if isinstance(api, str) else None
    return f"{group}.{kind}" if group and isinstance(kind, str) else None


def _where(path: Sequence[Any]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")


def _errors(validator: Any, instance: Any, prefix: Sequence[Any] = ()) -> list[str]:
    """``<path>: <message>`` for each error of ``validator`` on ``instance`` (paths start with
    ``prefix``), sorted; a key an object does not allow is ``<path>.<key>: unknown field``."""
    problems = []
    for error in validator.iter_errors(instance):
        path = [*prefix, *error.absolute_path]
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = error.schema.get("properties") or {}
            problems += [f"{_where([*path, key])}: unknown field"
                         for key in error.instance if key not in known]
            continue
        message = error.message if len(error.message) < 300 else error.message[:300] + "..."
        problems.append(f"{_where(path) or '(top)'}: {message}")
    return sorted(problems)


def _ray_problems(doc: dict[str, Any]) -> list[str]:
    """Schema problems of a Ray-kind ``doc``: its apiVersion names a version of the CRD that is
    not deprecated, the document fits that version's schema, its metadata fits ObjectMeta."""
    kind, api = doc["kind"], doc.get("apiVersion")
    group, _, version = api.partition("/") if isinstance(api, str) else ("", "", "")
    if group != RAY_GROUP or not version:
        return [f"apiVersion: {api!r} is not {RAY_GROUP}/<version>"]
    try:
        entry = crd_version(load_crd(kind), version)
    except TailorMindError as exc:
        return [f"apiVersion: {exc}"]
    problems = []
    if entry.get("deprecated"):
        problems.append(f"apiVersion: {entry.get('deprecationWarning') or 'deprecated'}")
    problems += _errors(crd_validator(kind, version), doc)
    if isinstance(doc.get("metadata"), dict):
        problems += _errors(_validator(OBJECT_META), doc["metadata"], ["metadata"])
    return problems


def schema_problems(doc: dict[str, Any]) -> list[str]:
    """Schema problems of ``doc``: Ray kinds against KubeRay's CRDs, core kinds against
    Kubernetes' definitions, anything else is ``no schema for ...``."""
    if doc.get("kind") in RAY_KINDS:
        return _ray_problems(doc)
    definition = definition_for(doc)
    validator = _validator(definition) if definition else None
    if validator is None:
        return [f"no schema for apiVersion {doc.get('apiVersion')!r} kind {doc.get('kind')!r}"]
    return _errors(validator, doc)


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
