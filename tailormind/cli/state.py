"""Per-invocation CLI state: the effective settings, loaded once by the root callback."""

from __future__ import annotations

import typer

from tailormind.config import Settings, load_config


def settings_of(ctx: typer.Context) -> Settings:
    """The settings loaded from ``--config`` / ``TAILORMIND_CONFIG`` and ``TAILORMIND_*`` overrides."""
    root = ctx.find_root()
    if not isinstance(root.obj, dict) or "settings" not in root.obj:
        root.obj = {"settings": load_config(None)}
    return root.obj["settings"]
