"""``tailormind cf``: train HypergraphCF / LightGCN, write the Top-K table, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tailormind.cli.console import err, out
from tailormind.cli.data import WorkspaceOpt
from tailormind.cli.state import settings_of
from tailormind.config import CF_MODELS
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError

# torch and the CF modules are imported inside the commands, so that `tailormind data ...` starts fast.

app = typer.Typer(help="Collaborative filtering: hypergraph CF (users+tags x items) and LightGCN.",
                  no_args_is_help=True)


@app.command("train")
def train_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    model: Annotated[str | None, typer.Option(help=f"One of {', '.join(CF_MODELS)} (config cf.model).")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray Train workers; 1 trains in this process.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (config cf.epochs; with --resume cf.resume_epochs).")] = None,
    tags: Annotated[bool | None, typer.Option("--tags/--no-tags", help="Use tag hyperedges (config cf.use_tags).")] = None,
    name: Annotated[str | None, typer.Option(help="Checkpoint name (default: the model; e.g. hypergraph-notags).")] = None,
    gpu: Annotated[bool, typer.Option(help="Train on CUDA (Ray workers get one GPU each).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Fine-tune the last checkpoint (--name, else the model) on the grown "
        "workspace for cf.resume_epochs epochs; new users/items start at their neighbours' mean.")] = False,
) -> None:
    """Train on the train split with early stopping on validation NDCG@20; save a checkpoint."""
    from tailormind.cf.checkpoint import save_checkpoint
    from tailormind.cf.data import load_cf_data

    settings = settings_of(ctx)
    cfg = settings.cf
    if model is not None and model not in CF_MODELS:
        raise TailorMindError(f"unknown --model {model!r}; choose one of {', '.join(CF_MODELS)}")
    if epochs is not None and epochs < 1:
        raise TailorMindError("--epochs must be >= 1")
    workers = cfg.workers if workers is None else workers
    if workers < 1:
        raise TailorMindError("--workers must be >= 1")
    ws = Workspace.open(workspace)
    data = load_cf_data(ws)
    plan, lineage = None, None
    if resume:
        from tailormind.cf.resume import prepare_resume

        plan = prepare_resume(ws, name or model or cfg.model, data, cfg, model=model, use_tags=tags)
        model, tags, name, lineage = plan.model, plan.use_tags, plan.name, plan.checkpoint.lineage
        epochs = epochs or plan.epochs
        for note in plan.notes:
            err.print(f"note: {note}")
    model = model or cfg.model
    result = _train(ws, data, settings, model, workers=workers, epochs=epochs, use_tags=tags,
                    gpu=gpu, plan=plan)
    for note in result.notes:
        err.print(f"note: {note}")
    saved = save_checkpoint(ws, result, data, cfg, name=name, lineage=lineage,
                            resumed=plan.summary() if plan else None)
    valid = result.best_valid
    err.print(
        f"{saved}: best epoch {result.best_epoch}/{len(result.history)}, "
        f"{result.seconds_per_epoch:.2f} s/epoch"
        + (f", valid R@20 {valid['recall@20']:.4f} N@20 {valid['ndcg@20']:.4f}" if valid else "")
        + f", watermark {data.watermark}" + (" (resumed)" if plan else "")
    )


def _train(ws: Workspace, data: Any, settings: Any, model: str, *, workers: int, epochs: int | None,
           use_tags: bool | None, gpu: bool, plan: Any) -> Any:
    """Train in this process (a progress bar) or with Ray Train; ``plan``: resume from it."""
    from tailormind.cf.train import EpochLog, train_model

    cfg = settings.cf
    if workers > 1:
        from tailormind.cf.distributed import train_distributed

        err.print(f"training {model} with Ray Train on {workers} workers")
        return train_distributed(ws, cfg, model, workers=workers, seed=settings.seeds.cf,
                                 epochs=epochs, use_tags=use_tags, use_gpu=gpu,
                                 resume=plan.name if plan else None)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(f"{'resume' if plan else 'train'} {model}", total=epochs or cfg.epochs,
                            status="")

        def on_epoch(log: EpochLog) -> None:
            status = f"loss {log.loss:.4f}"
            if log.valid:
                status += f"  valid ndcg@20 {log.valid['ndcg@20']:.4f}" + (" *" if log.best else "")
            bar.update(task, advance=1, status=status)

        return train_model(data, cfg, model, seed=settings.seeds.cf, epochs=epochs,
                           use_tags=use_tags, device="cuda" if gpu else "cpu", on_epoch=on_epoch,
                           initial=plan.initial.table if plan else None)


@app.command("recommend")
def recommend_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    k: Annotated[int | None, typer.Option("--k", help="Items per user (config cf.top_k).")] = None,
    model: Annotated[str | None, typer.Option(help="Trained checkpoint (config cf.model).")] = None,
    users_changed: Annotated[bool, typer.Option(
        "--users-changed", help="Recompute only the users whose neighbourhood changed since "
        "cf_topk's watermark (appended interactions, or an item shared with them); keep the other "
        "rows as they are (approximate: fine-tuning moved every embedding a little).")] = False,
) -> None:
    """Write ``cf_topk``: the K best items each user has not interacted with in train."""
    from tailormind.cf.recommend import recommend_workspace

    settings = settings_of(ctx)
    k = settings.cf.top_k if k is None else k
    result = recommend_workspace(Workspace.open(workspace), model or settings.cf.model, k,
                                 users_changed=users_changed)
    for note in result.notes:
        err.print(f"note: {note}")
    if result.changed is not None:
        c = result.changed
        err.print(f"cf_topk: recomputed {result.recomputed:,} user(s) whose neighbourhood changed "
                  f"since watermark {c.since} ({c.appended:,} with appended interactions, "
                  f"{c.sharing:,} sharing an item with them, {c.other:,} new or without train "
                  f"items); kept {result.kept:,} user(s)' rows as they were")
    err.print(f"cf_topk: {result.table.num_rows:,} rows (k={k}), watermark {result.watermark}")
    if result.cold_users:
        err.print(f"note: {result.cold_users} user(s) without train items got the most popular items")


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    model: Annotated[list[str] | None, typer.Option(help="Checkpoints to score (default: all).")] = None,
    full: Annotated[bool, typer.Option(help="Also rank the whole catalogue.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recall/NDCG@10/20, HitRate, MRR on the test candidate sets (1 positive + 99 negatives), and
    every comparison (each model vs. popularity, each two models) as a paired difference over the
    same users with a paired-bootstrap interval (bench.confidence, bench.bootstrap_resamples)."""
    from tailormind.cf.evaluate import Bootstrap, evaluate_cf

    settings = settings_of(ctx)
    result = evaluate_cf(Workspace.open(workspace), model, full=full,
                         bootstrap=Bootstrap.of(settings))
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    rows = result.rows
    print_eval_table(rows, "test (1:99 candidate sets)", "test")
    if full:
        print_eval_table(rows, "test (full ranking)", "test_full")
    for split, label in (("test", "test, 1:99 candidate sets"), ("test_full", "test, full ranking")):
        entries = [p for p in result.paired if p["split"] == split]
        if entries:
            print_paired_table(entries, f"paired differences ({label})")


def print_eval_table(rows: list[dict[str, Any]], title: str, key: str) -> None:
    table = Table(title=title)
    width = max(len(r["method"]) for r in rows)
    table.add_column("method", no_wrap=True, min_width=width)
    for column in ("R@10", "R@20", "N@10", "N@20", "MRR", "valid N@20", "s/epoch"):
        table.add_column(column, justify="right")
    for row in rows:
        m = row[key]
        table.add_row(
            row["method"], *(f"{m[x]:.4f}" for x in ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr")),
            f"{row['valid']['ndcg@20']:.4f}" if "valid" in row else "-",
            f"{row['seconds_per_epoch']:.2f}" if "seconds_per_epoch" in row else "-",
        )
    out.print(table)


def print_paired_table(entries: list[dict[str, Any]], title: str, users_column: str | None = None) -> None:
    """One row per (a − b, metric): mean difference over the same users, its paired-bootstrap
    interval, n, wins/losses (users where a > b / a < b) and whether the interval excludes 0.
    ``users_column``: an entry key shown as a column (e.g. which users were paired)."""
    confidence = entries[0].get("confidence", 0.95)
    table = Table(title=f"{title}: a − b over the same users, "
                        f"{confidence:.0%} paired-bootstrap interval")
    table.add_column("a − b", no_wrap=True)
    if users_column:
        table.add_column(users_column)
    for column in ("metric", "difference", "interval", "n", "wins/losses", "excludes 0"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    previous = None
    for p in entries:
        pair = f"{p['a']} − {p['b']}"
        key = (pair, p.get(users_column) if users_column else None)
        if previous is not None and key != previous:
            table.add_section()
        previous = key
        table.add_row(pair, *([str(p[users_column])] if users_column else []), p["metric"],
                      f"{p['difference']:+.4f}", f"[{p['low']:+.4f}, {p['high']:+.4f}]",
                      str(p["n"]), f"{p['wins']}/{p['losses']}",
                      "yes" if p["excludes_zero"] else "no")
    out.print(table)
