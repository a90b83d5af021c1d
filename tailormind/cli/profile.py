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


def _progress(label: str) -> Progress:
    """Done / total, percent, elapsed and ETA on stderr."""
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=err)


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
    with _progress("describe items") as bar:
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


@app.command("run")
def run_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    users: Annotated[int | None, typer.Option("--users", help="A seeded sample of N users (default: all).")] = None,
    user: Annotated[list[str] | None, typer.Option("--user", help="Only this user (repeatable).")] = None,
    variant: Annotated[str | None, typer.Option(help="Write profiles__VARIANT (an ablation, e.g. nocf).")] = None,
    limit: Annotated[int | None, typer.Option(help="Profile at most N more users (resume later).")] = None,
    force: Annotated[bool, typer.Option(help="Profile every chosen user again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Initial profiles from history + CF(D_u), refined on the validation item (N_max rounds)."""
    from tailormind.profiling.profiles import profile_users

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    with _progress("profile users") as bar:
        task = bar.add_task("profile", total=None)

        def advance(n: int) -> None:
            bar.advance(task, n)

        report = profile_users(ws, settings, users=user or None, sample=users, variant=variant,
                               limit=limit, force=force, progress=advance,
                               on_plan=lambda n: bar.update(task, total=n))
    data = {**asdict(report), "fallbacks": dict(report.fallbacks)}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table("table", "users", "profiled now", "already done", "complete", "s/user",
                  "tokens/user")
    n = max(1, report.profiled)
    table.add_row(report.table, str(report.users), str(report.profiled), str(report.skipped_done),
                  "yes" if report.complete else "no (run again to finish)",
                  f"{report.seconds / n:.1f}",
                  f"{(report.prompt_tokens + report.completion_tokens) / n:.0f}")
    out.print(table)
    if report.fallbacks:
        out.print("fallbacks: " + ", ".join(f"{k} {v}" for k, v in sorted(report.fallbacks.items())))


@app.command("update")
def update_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    user: Annotated[list[str] | None, typer.Option("--user", help="Only this user (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-profile only the users with interactions newer than their profile (`data append`),
    from their current profile: each new positive ranked against fresh negatives, then critique
    and update as in refinement. A new version per updated user (the old one kept in
    profile_history); nobody else costs a model call. Resumable."""
    from tailormind.profiling.update import update_profiles

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    with _progress("update profiles") as bar:
        task = bar.add_task("update", total=None)
        report = update_profiles(ws, settings, users=user or None,
                                 progress=lambda n: bar.advance(task, n),
                                 on_plan=lambda n: bar.update(task, total=n))
    if as_json:
        print(json.dumps(asdict(report), indent=2))
        return
    table = Table("profiled users", "updated", "watermark only", "unchanged (no model call)",
                  "done before", "withheld", "tokens", "seconds", "watermark")
    table.add_row(str(report.users), str(report.updated), str(report.advanced),
                  str(report.unchanged), str(report.skipped_done), str(report.withheld),
                  str(report.prompt_tokens + report.completion_tokens), f"{report.seconds:.1f}",
                  str(report.watermark))
    out.print(table)


@app.command("fit")
def fit_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the weights as JSON.")] = False,
) -> None:
    """Fit the hybrid ranker's weights on the VALIDATION sets (with each user's initial profile)
    and save them in the workspace: what `profiling.ranker: hybrid` and the API load."""
    from tailormind.profiling.fit import fit_hybrid

    fusion = fit_hybrid(Workspace.open(workspace), settings_of(ctx))
    if as_json:
        print(json.dumps({"weights": fusion.as_dict(), "fit_sets": fusion.fit_sets}, indent=2))
        return
    out.print(f"hybrid weights fit on {fusion.fit_sets} validation sets (z-scored signals): "
              + ", ".join(f"{k} {v:+.3f}" for k, v in fusion.as_dict().items()))


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    llm_ranker_users: Annotated[int, typer.Option(
        "--llm-ranker-users", min=0,
        help="Also rank the test sets of N profiled users with the listwise LLM ranker "
             "(~6 LLM calls per user).")] = 0,
) -> None:
    """Every method on the same TEST candidate sets: R@10/20, N@10/20, LLM tokens and s per user,
    and every comparison as a paired difference over the same users with a paired-bootstrap
    interval. The hybrid rows use the weights `profile fit` saved (else fit in memory); nothing
    is written."""
    from tailormind.profiling.evaluate import evaluate_profiles, variant_tables

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    report = evaluate_profiles(ws, settings, variant_tables(ws), llm_ranker_users=llm_ranker_users)
    if as_json:
        print(json.dumps(asdict(report), indent=2))
        return
    table = Table(title=f"test metrics on {report.users_profiled} profiled users "
                        f"(all users: {report.users_all})")
    for column in ("method", "users", "R@10", "R@20", "N@10", "N@20", "R@20 all", "N@10 all",
                   "LLM tokens/user", "s/user"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in report.rows:
        sample, everyone = row["sample"], row.get("all")
        table.add_row(row["method"], str(row["users"]), *(f"{sample[k]:.4f}" for k in
                                       ("recall@10", "recall@20", "ndcg@10", "ndcg@20")),
                      f"{everyone['recall@20']:.4f}" if everyone else "",
                      f"{everyone['ndcg@10']:.4f}" if everyone else "",
                      f"{row.get('llm_tokens_per_user', 0):.0f}",
                      f"{row.get('seconds_per_user', 0):.2f}")
    out.print(table)
    for row in report.rows:
        main = row.get("main_on_same_users")
        if main:
            out.print(f"{row['method']} vs. {main['method']} on the same {main['users']} users: "
                      f"R@10 {main['recall@10']:.4f} R@20 {main['recall@20']:.4f} "
                      f"N@10 {main['ndcg@10']:.4f} N@20 {main['ndcg@20']:.4f}")
    if report.paired:
        from tailormind.cli.cf import print_paired_table

        print_paired_table(report.paired, "paired differences", users_column="users")
    curve = Table("iteration", "mean valid rank", "test R@20", "test N@10",
                  title="refinement curve (embedding ranker)")
    for point in report.curve:
        curve.add_row(str(point["iteration"]), f"{point['mean_valid_rank']:.2f}",
                      f"{point['test']['recall@20']:.4f}", f"{point['test']['ndcg@10']:.4f}")
    out.print(curve)
    for label, weights in (("hybrid", report.fusion_weights),
                           ("hybrid w/o profile", report.fusion_weights_no_profile)):
        source = f", {report.fusion_source}" if label == "hybrid" else ""
        out.print(f"{label} weights (fit on validation, z-scored signals{source}): " +
                  ", ".join(f"{k} {v:+.3f}" for k, v in weights.items()))
