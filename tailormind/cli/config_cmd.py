"""``tailormind config``: show the effective configuration."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.syntax import Syntax

from tailormind.cli.console import out
from tailormind.cli.state import settings_of

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the effective config: defaults <- YAML file <- TAILORMIND_* environment."""
    settings = settings_of(ctx)
    if as_json:
        print(json.dumps(settings.public_dump(), indent=2))
    else:
        out.print(Syntax(settings.to_yaml(), "yaml", background_color="default"))
