"""``tailormind profile``: item descriptions (and, next, user profiles and their evaluation)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tailormind.cli.console import err, out
from tailormind.cli.data import WorkspaceOpt
from tailormind.cli.state import settings_of
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError

app = typer.Typer(help="Profiling: item descriptions, user profiles.", no_args_is_help=True)


@app.command("describe")
def describe_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    limit: Annotated[int | None, typer.Option(help="Describe at most N more items (resume later).")] = None,
    force: Annotated[bool, typer.Option(help="Describe every item again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """One description per modality per item, embedded: the item_features table (resumable)."""
    from tailormind.profiling.items import describe_items

    if limit is not None and limit < 1:
        raise TailorMindError("--limit must be >= 1")
    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    total = ws.read("items", columns=["item_id"]).num_rows
    with Progress(TextColumn("[bold]describe items"), BarColumn(), MofNCompleteColumn(),
                  TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task("describe", total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        report = describe_items(ws, settings, limit=limit, force=force, progress=advance)
        bar.update(task, completed=report.skipped_done + report.described)
    data = {**asdict(report), "counts": dict(report.counts)}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table("items", "described now", "already done", "complete", "seconds", "models")
    table.add_row(str(report.items), str(report.described), str(report.skipped_done),
                  "yes" if report.complete else "no (run again to finish)",
                  f"{report.seconds:.1f}", ", ".join(f"{k}={v}" for k, v in report.models.items()))
    out.print(table)
    if report.counts:
        out.print("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())))
