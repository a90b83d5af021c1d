"""``tailormind bench run`` and ``bench calibrate``: TailorBench on a workspace
(``docs/architecture.md``, "TailorBench")."""

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
CALIBRATION_COLUMNS = ("dimension", "scorer", "source", "pairwise accuracy", "n", "ties",
                       "failed")


def _calibration_table(calibration: dict, title: str) -> Table:
    from tailormind.bench.calibrate import calibration_table

    table = Table(title=title)
    for name in CALIBRATION_COLUMNS:
        table.add_column(name)
    for row in calibration_table(calibration):
        # the source, short (the judge's full id is printed below the table)
        row[2] = row[2].split(":")[0] + (" (self-judged)" if row[2].endswith("(self-judged)")
                                         else "")
        table.add_row(*[f"[bold red]{escape(c)}[/bold red]" if c.startswith("no signal")
                        else escape(c) for c in row])
    return table


def _paired_tables(report: dict) -> list[Table]:
    from tailormind.bench.paired import paired_tables

    found = []
    for group in paired_tables(report):
        table = Table(title=f"Paired differences: {group['dimension']}")
        for name in ("metric", "comparison", "difference", "n", "wins/losses/ties"):
            table.add_column(name)
        for row in group["rows"]:
            table.add_row(*(escape(row[i]) for i in (0, 2, 3, 4, 5)))
        found.append(table)
    return found


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
    from tailormind.bench.run import run_bench

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    if users and user:
        raise TailorMindError("choose the users with --users N or --user U, not both")
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    if workers > 1:
        _start_ray()
    # progress lines go to stderr, so --json leaves stdout to the JSON
    with contextlib.redirect_stdout(sys.stderr):
        result = run_bench(ws, settings, users=users, user_ids=user, methods=chosen,
                           workers=workers, log=lambda m: err.print(escape(m), highlight=False))
    report = result.report
    if as_json:
        print(json.dumps({k: v for k, v in report.items()
                          if k not in ("per_post", "per_user_profiling", "examples")},
                         indent=2, ensure_ascii=False))
    else:
        _print_report(report, result.paths)
    failed = sum(len((m.get("generation") or {}).get("failed") or {}) for m in report["methods"])
    if failed:
        err.print(f"[red]{failed} post(s) failed[/red]; they are counted as missing in the report")
        raise typer.Exit(1)


def _start_ray() -> None:
    """Connect to Ray unless connected: the cluster at RAY_ADDRESS, else a local Ray."""
    import os

    import ray

    if not ray.is_initialized():  # RAY_ADDRESS: a cluster; else a local Ray like the jobs
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)


def _print_report(report: dict, paths: dict[str, Path]) -> None:
    """The report's tables, calibration, paired differences and flags, then where it is."""
    from tailormind.bench.report import calibration_heading, tables

    for found in tables(report):
        table = Table(title=found["dimension"].capitalize())
        table.add_column("method")
        for label, source, _ in found["columns"]:
            table.add_column(f"{label}\n[dim]{source}[/dim]")
        for label, cells in found["rows"]:
            table.add_row(label, *cells)
        out.print(table)
    if report.get("calibration"):
        out.print(_calibration_table(report["calibration"], calibration_heading(report)))
    for table in _paired_tables(report):
        out.print(table)
    for flag in report["flags"]:
        out.print(f"[yellow]note:[/yellow] {escape(flag)}")
    out.print(f"report: {paths['html']} · {paths['md']}")


@app.command("calibrate")
def calibrate_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    pairs: Annotated[int | None, typer.Option(
        "--pairs", min=10, help="Pairs per dimension (default: bench.calibration_pairs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the calibration as JSON.")
                       ] = False,
) -> None:
    """Does the judge measure something? Pairs whose better member is known (a fact swapped, a
    degraded copy, a near-copy of a catalogue item, another user's text), built from the
    workspace's posts and catalogue, scored by the bench's judge and embedding metrics ->
    pairwise accuracy with a bootstrap interval per dimension and scorer ("no signal" when it
    includes 0.5) -> WORKSPACE/bench/calibration.json (reused while the inputs are unchanged)."""
    from tailormind.bench.calibrate import calibrate_workspace

    settings = settings_of(ctx)
    if pairs is not None:
        settings = settings.with_overrides({"bench": {"calibration_pairs": pairs}})
    ws = Workspace.open(workspace)
    with contextlib.redirect_stdout(sys.stderr):  # progress lines: stdout stays the result
        result = calibrate_workspace(ws, settings,
                                     log=lambda m: err.print(escape(m), highlight=False))
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=2,
                         ensure_ascii=False))
        return
    title = "Judge calibration" + (" (self-judged)" if result["judge_self"] else "")
    out.print(_calibration_table(result, title))
    out.print(f"{escape(result['judge'])} · {result['pairs_per_dimension']} pairs per "
              f"dimension · {escape(result['rules']['outcome'])}")
    out.print(f"calibration: {ws.root / 'bench' / 'calibration.json'}")
