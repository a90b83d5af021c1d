"""``tailormind serve``: run a Ray Serve config (default ``serve_configs/local.yaml``) in the
foreground, exactly as ``serve run`` does, until Ctrl-C.

The config is validated offline first. When it holds the TailorMind API
(``tailormind.serve.api:build_app``): ``--workspace`` (or ``TAILORMIND_WORKSPACE``) names the
workspace it serves, and without a bearer token (``TAILORMIND_API_TOKEN`` or the app's
``api.token``) the HTTP proxy is bound to 127.0.0.1 whatever the config says, and the command says
so — an unauthenticated API is never reachable from another machine.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from tailormind.cli.console import err
from tailormind.config import API_TOKEN_ENV
from tailormind.core.vocabulary import MANIFEST
from tailormind.core.atomic import write_text_atomic
from tailormind.errors import ConfigError

DEFAULT_SERVE_CONFIG = Path("serve_configs/local.yaml")


def _api_apps(spec: dict[str, Any]) -> list[dict[str, Any]]:
    from tailormind.serve.serve_config_check import API_APP

    return [a for a in spec.get("applications") or [] if a.get("import_path") == API_APP]


def _has_token(app: dict[str, Any]) -> bool:
    settings = (app.get("args") or {}).get("settings") or {}
    return bool(os.environ.get(API_TOKEN_ENV) or (settings.get("api") or {}).get("token"))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    config: Annotated[Path, typer.Option("--config", help="Ray Serve config YAML.")] = (
        DEFAULT_SERVE_CONFIG
    ),
    workspace: Annotated[Path | None, typer.Option(
        help="Workspace the API serves (default: $TAILORMIND_WORKSPACE).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a "
                                                       "local one).")] = None,
) -> None:
    """Deploy every application in the Serve config and block until interrupted."""
    from tailormind.serve.serve_config_check import check_serve_config

    if not config.is_file():
        raise ConfigError(f"--config: Serve config {config} does not exist")
    try:
        spec = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config}: not valid YAML ({exc})") from None
    check_serve_config(spec, str(config))
    env = os.environ.copy()
    http = spec.setdefault("http_options", {}) or {}
    host, port = http.get("host", "127.0.0.1"), http.get("port", 8000)
    run_config = config
    apis = _api_apps(spec)
    if apis:
        if workspace is not None:
            if not (workspace / MANIFEST).is_file():
                raise ConfigError(f"--workspace: {workspace} is not a TailorMind workspace")
            env["TAILORMIND_WORKSPACE"] = str(workspace.resolve())
        elif not env.get("TAILORMIND_WORKSPACE") and not all(
                (a.get("args") or {}).get("workspace") for a in apis):
            raise ConfigError("the API needs a workspace: pass --workspace WS (or set "
                              "TAILORMIND_WORKSPACE, or args.workspace in the Serve config)")
        if not all(_has_token(a) for a in apis):
            if not _loopback(str(host)):
                err.print(f"no API token ({API_TOKEN_ENV} or api.token): binding 127.0.0.1 "
                          f"instead of {host}, so only this machine can call the API")
                host = http["host"] = "127.0.0.1"
                spec["http_options"] = http
            else:
                err.print(f"no API token ({API_TOKEN_ENV} or api.token): the API answers "
                          f"clients on this machine only")
    for application in spec.get("applications") or []:
        err.print(f"app {application.get('name')}: http://{host}:{port}"
                  f"{application.get('route_prefix', '/')}")
    executable = shutil.which("serve", path=str(Path(sys.executable).parent)) or shutil.which("serve")
    if executable is None:
        raise ConfigError("the `serve` command of Ray is not installed (pip install 'ray[serve]')")
    with tempfile.TemporaryDirectory(prefix="tailormind-serve-") as tmp:
        if spec.get("http_options") != (yaml.safe_load(config.read_text()) or {}).get(
                "http_options"):
            run_config = Path(tmp) / config.name
            write_text_atomic(run_config, yaml.safe_dump(spec, sort_keys=False))
        command = [executable, "run", str(run_config)]
        if address:
            command += ["--address", address]
        code = subprocess.call(command, env=env)
    raise typer.Exit(code)
