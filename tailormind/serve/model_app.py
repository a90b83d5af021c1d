"""The ``tailormind-models`` Serve application: role deployments + the OpenAI-compatible ingress.

Used from a Serve config (``import_path: tailormind.serve.model_app:build_app``) with args:

- ``config``: a TailorMind YAML on every node (optional), ``models``: an inline ``models:`` block
  merged over it (e.g. ``{image: {backend: diffusers, path: /models/sdxl, device: cuda}}``);
- ``roles``: which roles to host (default: every configured one; ``none`` roles are skipped);
- ``served_names``: the names ``/v1/models`` lists (default: derived from the backend);
- ``api_key_env``: an environment variable holding the bearer token of the ingress.

Per-deployment resources (``num_gpus``, replicas, autoscaling) go in the Serve config's
``deployments:`` list under each role's deployment name
(:data:`tailormind.core.backends.ROLE_SPECS`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from ray.serve import Application

from tailormind.config import Settings
from tailormind.core.backends import NONE, ROLES, backend_spec, unknown_roles
from tailormind.errors import ConfigError
from tailormind.serve.model_deployments import ROLE_DEPLOYMENTS, role_settings
from tailormind.serve.openai_app import OpenAIIngress

APP_NAME = "tailormind-models"
ROUTE_PREFIX = "/models"


class ModelAppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str | None = None
    models: dict[str, Any] | None = None
    roles: list[str] | None = None
    served_names: dict[str, str] = {}
    api_key_env: str | None = None


def served_name(role: str, backend: str, model: str | None) -> str:
    """What `/v1/models` lists and clients put in `model`: the bundled model's fixed name, else
    the configured model, else ``tailormind-<role>``."""
    return backend_spec(role, backend).served_name or model or f"tailormind-{role}"


def resolve_roles(parsed: ModelAppArgs, settings: Settings) -> list[str]:
    """The roles the app hosts; every one must have a backend a replica can run."""
    roles = parsed.roles
    if roles is None:
        roles = [r for r in ROLES if getattr(settings.models, r).backend != NONE]
    unknown = unknown_roles(roles)
    if unknown:
        raise ConfigError(f"roles: unknown role(s) {', '.join(unknown)}; "
                          f"roles: {', '.join(ROLES)}")
    for role in roles:
        backend = getattr(settings.models, role).backend
        if backend in (NONE, "serve"):
            raise ConfigError(f"roles: {role} has backend {backend!r}, which a Serve deployment "
                              f"cannot host; configure models.{role} or drop it from roles")
    return roles


def parse_args(args: dict[str, Any] | None) -> ModelAppArgs:
    try:
        return ModelAppArgs.model_validate(args or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"args.{where}: {first['msg']}") from None


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Bind the role deployments and the ingress for ``serve run`` / ``serve deploy``."""
    parsed = parse_args(args)
    settings = role_settings(parsed.config, parsed.models)
    roles = resolve_roles(parsed, settings)
    handles = {role: ROLE_DEPLOYMENTS[role].bind(parsed.config, parsed.models) for role in roles}
    names = {}
    for role in ("text", "embed"):
        if role in handles:
            config = getattr(settings.models, role)
            names[role] = parsed.served_names.get(role) or served_name(role, config.backend,
                                                                        config.model)
    return OpenAIIngress.bind(handles, names, parsed.api_key_env)
