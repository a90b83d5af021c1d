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
    _print_human(report)
    for flag in report["flags"]:
        out.print(f"[yellow]note:[/yellow] {escape(flag)}")
    out.print(f"report: {paths['html']} · {paths['md']}")


def _print_human(report: dict) -> None:
    """The human section's tables (or how to start rating)."""
    from tailormind.bench.human import rows, summary

    section = report.get("human")
    if not section:
        return
    if not section["ratings"]:
        out.print("Human evaluation: no ratings yet; `tailormind bench rate` serves the page")
        return
    found = rows(section, report)
    means = Table(title="Human evaluation", caption=escape(summary(section)))
    for name in ("method", *section["dimensions"]):
        means.add_column(name)
    for row in found["means"]:
        means.add_row(*map(escape, row))
    agreement = Table(title="Agreement")
    for name in ("dimension", "scale", "Krippendorff's α", "judge–human Spearman ρ", "verdict"):
        agreement.add_column(name)
    for row in found["agreement"]:
        agreement.add_row(*map(escape, row))
    out.print(means)
    out.print(agreement)


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


@app.command("rate")
def rate_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    host: Annotated[str, typer.Option(help="Address to listen on (not loopback: needs api.token "
                                           "or TAILORMIND_API_TOKEN).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8787,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write every rating to this CSV file and exit (no server).",
        dir_okay=False)] = None,
) -> None:
    """The blind rating page for the last `bench run`: every method's post and the ground truth
    for the bench users, anonymised, in a seeded order per rater; novelty and aesthetic 1–5,
    hallucination 0/1 with the sources beside the post. Ratings -> WORKSPACE/bench/ratings.sqlite
    (as they are made); `bench report` puts them in the report."""
    from tailormind.bench.methods import BENCH_DIR
    from tailormind.bench.ratings import RatingStore

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    if export is not None:
        count = RatingStore.of(ws.root / BENCH_DIR).export_csv(export)
        out.print(f"{count} rating(s) written to {export}")
        return
    from tailormind.bench.rating_set import read_report
    from tailormind.serve.rating_server import serve_rating

    read_report(ws)  # no report, nothing to rate: say so before serving
    serve_rating(ws, settings, host, port, announce=lambda m: err.print(escape(m)))


@app.command("report")
def report_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report's numbers as JSON.")
                       ] = False,
) -> None:
    """Rewrite the last `bench run`'s report with the sections read from the workspace now —
    the human ratings (`bench rate`), the sensitivity sweep, the cost — without calling a
    model (seconds)."""
    from tailormind.bench.methods import BENCH_DIR
    from tailormind.bench.rating_set import read_report
    from tailormind.bench.report import write_report
    from tailormind.bench.report_sections import attach

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    report = attach(ws, settings, read_report(ws))
    paths = write_report(ws.root / BENCH_DIR, report)
    if as_json:
        print(json.dumps({k: v for k, v in report.items()
                          if k not in ("per_post", "per_user_profiling", "examples")},
                         indent=2, ensure_ascii=False))
    else:
        _print_report(report, paths)


@app.command("sweep")
def sweep_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="PATH=V1,V2,... (repeatable, one curve each), e.g. "
        "profiling.n_max=0,1,2,3 or generation.exemplar_top_k=1,3,5.")] = None,
    users: Annotated[int | None, typer.Option(
        "--users", min=1, help="Users (default: bench.users; the bench's users).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sweep's numbers as JSON.")
                       ] = False,
) -> None:
    """Sensitivity (RQ4): TailorMind on the bench users with one setting changed at a time,
    re-running only what the setting affects (profiling.*: profiles into a variant table, posts,
    scores; generation.*: posts and scores) -> WORKSPACE/bench/sweep.json (after each value;
    finished values are reused), then the report's Sensitivity section when bench/report.json
    exists, else bench/plots/sensitivity_*.png.

    Exit status 1 when a post failed (it is counted as missing)."""
    from tailormind.bench.sensitivity import refresh
    from tailormind.bench.sweep import parse_params, run_sweep

    settings = settings_of(ctx)
    specs = list(param or [])
    parse_params(specs, settings)  # every --param checked before the workspace is touched
    ws = Workspace.open(workspace)
    with contextlib.redirect_stdout(sys.stderr):  # progress lines: stdout stays the result
        result = run_sweep(ws, settings, specs, users=users,
                           log=lambda m: err.print(escape(m), highlight=False))
        written = refresh(ws, settings)
    swept = {path: result.doc["params"][path] for path in result.params}
    if as_json:
        print(json.dumps({"path": str(result.path), "written": {k: str(v) for k, v in
                                                               written.items()},
                          "params": {path: {**entry, "values": [
                              {k: v for k, v in value.items() if k not in ("rows",
                                                                           "profile_rows")}
                              for value in entry["values"]]} for path, entry in swept.items()}},
                         indent=2, ensure_ascii=False))
    else:
        _print_sweep(ws, settings, swept, written)
    if result.failed:
        err.print(f"[red]{result.failed} post(s) failed[/red]; they are counted as missing")
        raise typer.Exit(1)


def _print_sweep(ws: Workspace, settings, swept: dict, written: dict[str, Path]) -> None:
    """A table per swept parameter (the report section's rows), then what was written."""
    from tailormind.bench.report import REPORT_JSON
    from tailormind.bench.sensitivity import build
    from tailormind.core.atomic import read_json_record

    report = read_json_record(ws.root / "bench" / REPORT_JSON, "bench report") or {}
    section = report.get("sensitivity") or build(ws, settings, report) or {"params": []}
    for param in (p for p in section["params"] if p["path"] in swept):
        table = Table(title=f"{param['path']} (configured: {param['configured_label']})")
        for name in param["header"]:
            table.add_column(escape(name))
        for row in param["rows"]:
            table.add_row(*(escape(c) for c in row))
        out.print(table)
    out.print(f"sweep: {ws.root / 'bench' / 'sweep.json'}")
    for path in written.values():
        out.print(f"written: {path}")
