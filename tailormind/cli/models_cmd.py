"""``tailormind models``: what each role is configured as, a smoke call per role, the call cache."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from tailormind.cli.console import err, out
from tailormind.cli.state import settings_of
from tailormind.errors import ConfigError

app = typer.Typer(help="Model roles: status, smoke checks, the call cache.", no_args_is_help=True)


@app.command("list")
def list_roles(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each role's backend and model, without loading anything."""
    from tailormind.models.registry import role_status

    rows = role_status(settings_of(ctx))
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = Table("role", "backend", "model", "note")
    for row in rows:
        backend = row.backend if row.configured else f"[yellow]{row.backend}[/yellow]"
        table.add_row(row.role, backend, row.model, row.note)
    out.print(table)


@app.command("check")
def check(
    ctx: typer.Context,
    roles: Annotated[list[str] | None, typer.Option("--role", help="Only these roles.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load each role and make one tiny call; exit 1 if a configured role fails."""
    from tailormind.core.backends import ROLES, unknown_roles
    from tailormind.models.smoke import check_role

    settings = settings_of(ctx)
    chosen = roles or list(ROLES)
    unknown = unknown_roles(chosen)
    if unknown:
        raise ConfigError(f"--role: unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}")
    results = []
    for role in chosen:
        with err.status(f"checking {role}"):
            results.append(check_role(role, settings))
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        table = Table("role", "status", "model", "load s", "call s", "detail")
        for r in results:
            colour = {"ok": "green", "failed": "red"}.get(r.status, "yellow")
            table.add_row(r.role, f"[{colour}]{r.status}[/{colour}]", r.model, f"{r.load_s:.1f}",
                          f"{r.call_s:.2f}", r.detail)
        out.print(table)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


@app.command("cache")
def cache(
    ctx: typer.Context,
    clear: Annotated[bool, typer.Option("--clear", help="Delete every cached call.")] = False,
) -> None:
    """Where the model-call cache is and how many calls it holds."""
    from tailormind.models.backend_config import cache_root
    from tailormind.models.cache import CallCache

    store = CallCache(cache_root(settings_of(ctx)))
    if clear:
        out.print(f"deleted {store.clear()} cached calls from {store.path}")
    else:
        out.print(f"{store.path}: {len(store)} cached calls")
