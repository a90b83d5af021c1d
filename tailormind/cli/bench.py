"""``tailormind bench run``: TailorBench on a workspace (DESIGN.md "TailorBench")."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tailormind.cli.console import err, out
from tailormind.cli.data import WorkspaceOpt
from tailormind.cli.state import settings_of
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError

app = typer.Typer(help="TailorBench: score TailorMind, the ground truth and the ablations.",
                  no_args_is_help=True)


@app.command("run")
def run_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    users: Annotated[int | None, typer.Option(
        "--users", min=1, help="Users scored (default: bench.users; profiled users first).")] = None,
    user: Annotated[list[str] | None, typer.Option(
        "--user", "-u", help="Score these users instead (repeatable).")] = None,
    methods: Annotated[str | None, typer.Option(
        help="Comma-separated methods (default: bench.methods): tailormind, ground_truth, "
             "profile_free, no_rag, no_reflection, no_cf.")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Generate on Ray Data with N actors (1: in this process).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report's numbers as JSON.")
                       ] = False,
) -> None:
    """Profiles and posts each method needs (made where missing, reused otherwise) -> scores on
    coherence, novelty, aesthetic, hallucination and profiling, means with bootstrap intervals
    -> WORKSPACE/bench/report.md, report.html (offline), report.json and plots/.

    Exit status 1 when a post failed (the report is still written and counts it)."""
    from tailormind.bench.report import tables
    from tailormind.bench.run import run_bench

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    if users and user:
        raise TailorMindError("choose the users with --users N or --user U, not both")
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    if workers > 1:
        import os

        import ray

        if not ray.is_initialized():  # RAY_ADDRESS: a cluster; else a local Ray like the jobs
            ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    # progress lines go to stderr, so --json leaves stdout to the JSON
    with contextlib.redirect_stdout(sys.stderr):
        result = run_bench(ws, settings, users=users, user_ids=user, methods=chosen,
                           workers=workers, log=lambda m: err.print(escape(m), highlight=False))
    report = result.report
    if as_json:
        print(json.dumps({k: v for k, v in report.items() if k not in ("per_post", "examples")},
                         indent=2, ensure_ascii=False))
    else:
        for found in tables(report):
            table = Table(title=found["dimension"].capitalize())
            table.add_column("method")
            for label, source, _ in found["columns"]:
                table.add_column(f"{label}\n[dim]{source}[/dim]")
            for label, cells in found["rows"]:
                table.add_row(label, *cells)
            out.print(table)
        for flag in report["flags"]:
            out.print(f"[yellow]note:[/yellow] {escape(flag)}")
        out.print(f"report: {result.paths['html']} · {result.paths['md']}")
    failed = sum(len((m.get("generation") or {}).get("failed") or {}) for m in report["methods"])
    if failed:
        err.print(f"[red]{failed} post(s) failed[/red]; they are counted as missing in the report")
        raise typer.Exit(1)
