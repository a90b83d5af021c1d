"""``tailormind demo``: the main job on the bundled MovieLens data with the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailormind.cli.console import err, progress_bar, status
from tailormind.cli.data import print_stats
from tailormind.cli.state import settings_of
from tailormind.data.importers import import_movielens
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace
from tailormind.data.stats import workspace_stats
from tailormind.errors import TailorMindError

#: The MovieLens latest-small copy committed with the project (GroupLens licence, see its README).
BUNDLED_DATA = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"


def demo(
    ctx: typer.Context,
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace to (re)create.")] = Path(
        ".demo-workspace"
    ),
    data: Annotated[Path, typer.Option(help="MovieLens latest-small directory.")] = BUNDLED_DATA,
) -> None:
    """Import the bundled MovieLens data, split it and print the statistics."""
    settings = settings_of(ctx)
    if not (data / "ratings.csv").is_file():
        raise TailorMindError(
            f"bundled data not found at {data}; pass --data DIR (an ml-latest-small directory)"
        )
    with status(f"importing {data}"):
        bundle = import_movielens(data)
        ws = save_import(bundle, workspace, overwrite=True)
    with progress_bar("candidate sets (users)", total=bundle.users.num_rows) as advance:
        split_workspace(
            ws,
            negatives=settings.data.negatives,
            min_interactions=settings.data.min_interactions,
            seed=settings.seeds.split,
            progress=advance,
        )
    print_stats(workspace_stats(ws))
    err.print(f"demo workspace: {ws.root}")
