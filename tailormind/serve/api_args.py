"""Arguments of the ``tailormind-api`` Serve application (``tailormind.serve.api:build_app``):

- ``workspace``: the workspace directory every replica reads and writes (a shared filesystem path
  on a cluster); default ``$TAILORMIND_WORKSPACE`` where the app is built;
- ``config``: a TailorMind YAML on every node (optional);
- ``settings``: inline overrides of any config section, merged over it — typically the
  ``models:`` block (``backend: serve`` to use the ``tailormind-models`` deployments, or
  ``openai`` for vLLM) and ``api:`` limits.

Deployment resources (replicas, ``max_ongoing_requests``, ``max_queued_requests``) go in the Serve
config's ``deployments:`` list under ``TailorMindAPI``, ``ProfileWorker``, ``GenerationWorker``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tailormind.config import load_config
from tailormind.core.vocabulary import MANIFEST
from tailormind.errors import ConfigError

API_DEPLOYMENTS = ("TailorMindAPI", "ProfileWorker", "GenerationWorker", "JobCoordinator")


class ApiAppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace: str | None = None
    config: str | None = None
    settings: dict[str, Any] | None = None


def parse_api_args(args: dict[str, Any] | None, *, check_paths: bool = True) -> ApiAppArgs:
    """Validated args; the workspace must exist here unless ``check_paths`` is off (offline
    validation of a cluster config)."""
    try:
        parsed = ApiAppArgs.model_validate(args or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"args.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    parsed.workspace = parsed.workspace or os.environ.get("TAILORMIND_WORKSPACE")
    if not parsed.workspace:
        raise ConfigError("args.workspace: the API needs a workspace (or TAILORMIND_WORKSPACE)")
    config = parsed.config
    if config and not Path(config).is_file():
        if check_paths:
            raise ConfigError(f"args.config: {config} does not exist")
        config = None
    load_config(config, environ={}, overrides=parsed.settings)  # raises naming the bad key
    if check_paths and not (Path(parsed.workspace) / MANIFEST).is_file():
        raise ConfigError(f"args.workspace: {parsed.workspace} is not a TailorMind workspace "
                          f"(no workspace.json); run `tailormind data import` first")
    return parsed
