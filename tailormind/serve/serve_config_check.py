"""Validate a Ray Serve config offline, before a cluster ever sees it.

Three layers: Ray's own ``ServeDeploySchema`` (what ``serve deploy`` and KubeRay's
``serveConfigV2`` accept); for ``ray.serve.llm:build_openai_app`` apps, each entry of
``llm_configs`` against Ray Serve LLM's ``LLMConfig`` (its module imports without vLLM, unlike the
public ``ray.serve.llm``, which needs vLLM at import); for TailorMind's models app, its args, its
inline ``models:`` block (backends, options keys) and the deployment names it overrides.
Nothing is loaded, so a GPU config validates on a machine without GPUs or weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tailormind.errors import ConfigError

LLM_APP = "ray.serve.llm:build_openai_app"
#: The same app behind a key (``tailormind/serve/llm_app.py``).
GUARDED_LLM_APP = "tailormind.serve.llm_app:build_app"
MODELS_APP = "tailormind.serve.model_app:build_app"
API_APP = "tailormind.serve.api:build_app"


@dataclass
class ServeConfigReport:
    applications: list[str] = field(default_factory=list)
    llm_models: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def check_serve_config(spec: dict[str, Any], source: str = "serve config") -> ServeConfigReport:
    """Raise :class:`ConfigError` naming the first problem; else say what the config holds."""
    from ray.serve.schema import ServeDeploySchema

    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    try:
        ServeDeploySchema.model_validate(spec)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None
    report = ServeConfigReport()
    _check_exposure(spec, source)
    hosted: dict[str, set[str]] = {}  # models app name -> roles it hosts
    apis = []
    for app in spec.get("applications", []):
        name = app.get("name", "default")
        report.applications.append(name)
        where = f"{source}: application {name!r}"
        if app.get("import_path") in (LLM_APP, GUARDED_LLM_APP):
            args = {k: v for k, v in (app.get("args") or {}).items() if k != "api_key_env"}
            report.llm_models += _check_llm_app(args, where)
        elif app.get("import_path") == MODELS_APP:
            notes, roles = _check_models_app(app, where)
            report.notes += notes
            hosted[name] = set(roles)
        elif app.get("import_path") == API_APP:
            apis.append((app, where))
    for app, where in apis:
        report.notes += _check_api_app(app, where, hosted)
    return report


def _check_exposure(spec: dict[str, Any], source: str) -> None:
    """Refuse a model app with no key check on HTTP reachable beyond loopback: Ray Serve LLM's
    own ``build_openai_app`` answers anyone (use ``tailormind.serve.llm_app:build_app``, or
    ``route_prefix: null`` to reach it through handles only)."""
    from tailormind.serve.api_guard import is_loopback

    host = (spec.get("http_options") or {}).get("host", "127.0.0.1")
    if is_loopback(host):
        return
    for app in spec.get("applications", []):
        if app.get("import_path") == LLM_APP and app.get("route_prefix", "/") is not None:
            raise ConfigError(f"{source}: application {app.get('name', 'default')!r} serves "
                              f"{LLM_APP} on {host} with no API key; use {GUARDED_LLM_APP} "
                              f"(same args, plus api_key_env) or route_prefix: null")


def _check_llm_app(args: dict[str, Any], where: str) -> list[str]:
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    configs = args.get("llm_configs")
    if not configs:
        raise ConfigError(f"{where}: args.llm_configs is missing or empty")
    models = []
    for i, entry in enumerate(configs):
        try:
            models.append(LLMConfig.model_validate(entry).model_id)
        except ValidationError as exc:
            raise ConfigError(f"{where}: llm_configs[{i}].{_first_error(exc)}") from None
    return models


def _check_models_app(app: dict[str, Any], where: str) -> tuple[list[str], list[str]]:
    from tailormind.config import load_config
    from tailormind.core.backends import ROLE_SPECS
    from tailormind.serve.model_app import parse_args, resolve_roles

    notes = []
    try:
        parsed = parse_args(app.get("args"))
        config = parsed.config
        if config and not Path(config).is_file():
            notes.append(f"{where}: config {config} is not on this machine; only the inline "
                         f"models block was checked")
            config = None
        settings = load_config(config, environ={},
                               overrides={"models": parsed.models} if parsed.models else None)
        roles = resolve_roles(parsed, settings)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    known = {ROLE_SPECS[r].deployment for r in roles} | {"OpenAIIngress"}
    for deployment in app.get("deployments", []):
        if deployment.get("name") not in known:
            raise ConfigError(f"{where}: deployments: no deployment named "
                              f"{deployment.get('name')!r} in this app (it has "
                              f"{', '.join(sorted(known))})")
    return notes, roles


def _check_api_app(app: dict[str, Any], where: str, hosted: dict[str, set[str]]) -> list[str]:
    """The API's args and settings, its deployment names, and every ``backend: serve`` role of
    its settings against the models apps of the same config."""
    from tailormind.config import load_config
    from tailormind.core.backends import ROLES
    from tailormind.serve.api_args import API_DEPLOYMENTS, ApiAppArgs, parse_api_args

    notes = []
    try:
        parsed = parse_api_args(app.get("args"), check_paths=False)
    except ConfigError as exc:
        if "needs a workspace" not in str(exc):
            raise ConfigError(f"{where}: {exc}") from None
        # $TAILORMIND_WORKSPACE is read where the app is built; the rest is checked below
        notes.append(f"{where}: args.workspace is unset; $TAILORMIND_WORKSPACE must name it")
        parsed = ApiAppArgs.model_validate(app.get("args") or {})
        try:
            load_config(None, environ={}, overrides=parsed.settings)
        except ConfigError as inner:
            raise ConfigError(f"{where}: {inner}") from None
    settings = load_config(None, environ={}, overrides=parsed.settings)
    for role in ROLES:
        block = getattr(settings.models, role)
        if block.backend != "serve":
            continue
        if block.app not in hosted:
            raise ConfigError(f"{where}: settings.models.{role} uses backend 'serve' with app "
                              f"{block.app!r}, which this config does not deploy")
        if role not in hosted[block.app]:
            raise ConfigError(f"{where}: settings.models.{role} uses backend 'serve', but app "
                              f"{block.app!r} does not host the {role} role "
                              f"(it hosts {', '.join(sorted(hosted[block.app]))})")
    for deployment in app.get("deployments", []):
        if deployment.get("name") not in API_DEPLOYMENTS:
            raise ConfigError(f"{where}: deployments: no deployment named "
                              f"{deployment.get('name')!r} in this app (it has "
                              f"{', '.join(API_DEPLOYMENTS)})")
        if deployment["name"] == "JobCoordinator" and (
                deployment.get("num_replicas", 1) != 1 or "autoscaling_config" in deployment):
            raise ConfigError(f"{where}: deployments: JobCoordinator owns every job's state and "
                              f"must run exactly one replica (no num_replicas, no autoscaling)")
    return notes
