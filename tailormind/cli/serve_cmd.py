"""``tailormind serve``: run a Ray Serve config (default ``serve_configs/local.yaml``) in the
foreground, exactly as ``serve run`` does, until Ctrl-C."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from tailormind.cli.console import err
from tailormind.errors import ConfigError

DEFAULT_SERVE_CONFIG = Path("serve_configs/local.yaml")


def serve(
    config: Annotated[Path, typer.Option("--config", help="Ray Serve config YAML.")] = (
        DEFAULT_SERVE_CONFIG
    ),
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a "
                                                       "local one).")] = None,
) -> None:
    """Deploy every application in the Serve config and block until interrupted."""
    if not config.is_file():
        raise ConfigError(f"--config: Serve config {config} does not exist")
    try:
        spec = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config}: not valid YAML ({exc})") from None
    http = spec.get("http_options") or {}
    host, port = http.get("host", "127.0.0.1"), http.get("port", 8000)
    for application in spec.get("applications") or []:
        err.print(f"app {application.get('name')}: http://{host}:{port}"
                  f"{application.get('route_prefix', '/')}")
    executable = shutil.which("serve", path=str(Path(sys.executable).parent)) or shutil.which("serve")
    if executable is None:
        raise ConfigError("the `serve` command of Ray is not installed (pip install 'ray[serve]')")
    command = [executable, "run", str(config)]
    if address:
        command += ["--address", address]
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))
