"""``tailormind demo``: the whole method on the bundled MovieLens data with the embedded models.

Import -> split -> HypergraphCF training -> Top-K recommendations -> evaluation -> item
descriptions -> profiles for a few users -> one post and one short video each -> the gallery
``generations/index.html`` (every post beside the user's history). Prints seconds per stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pyarrow.compute as pc
import typer
from rich.table import Table

from tailormind.core.vocabulary import KINDS
from tailormind.cli.cf import print_eval_table
from tailormind.cli.console import err, out, progress_bar, status
from tailormind.cli.data import print_stats
from tailormind.cli.state import settings_of
from tailormind.config import Settings
from tailormind.data.importers import import_movielens
from tailormind.data.ingest import save_import
from tailormind.data.item_tags import model_items
from tailormind.data.split import split_workspace
from tailormind.data.stats import workspace_stats
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError

#: The MovieLens latest-small copy committed with the project (GroupLens licence, see its README).
BUNDLED_DATA = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"


def demo(
    ctx: typer.Context,
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace to (re)create.")] = Path(
        ".demo-workspace"
    ),
    data: Annotated[Path, typer.Option(help="MovieLens latest-small directory.")] = BUNDLED_DATA,
    user: Annotated[str, typer.Option(help="User whose recommendations are shown.")] = "1",
    users: Annotated[int, typer.Option(
        "--users", min=0, help="Profile and generate for a seeded sample of N users "
        "(0: stop after CF).")] = 3,
    kind: Annotated[list[str] | None, typer.Option(
        help="What to make for each user, repeatable (default: post and video).")] = None,
) -> None:
    """Import the bundled MovieLens data, split it, train HypergraphCF, recommend, evaluate;
    then describe the items, profile a few users and make a post and a short video for each,
    with a gallery that shows every post beside the user's history."""
    settings = settings_of(ctx)
    started = time.perf_counter()
    clock = Clock()
    if not (data / "ratings.csv").is_file():
        raise TailorMindError(
            f"bundled data not found at {data}; pass --data DIR (an ml-latest-small directory)"
        )
    ws = import_and_split(data, workspace, settings)
    clock.lap("import + split")
    train_and_recommend(ws, settings, user)
    clock.lap(f"CF ({settings.cf.model}: train, recommend, evaluate)")
    if users:
        personalise(ws, settings, users, kind or list(KINDS), clock)
    clock.show(time.perf_counter() - started)
    err.print(f"demo workspace: {ws.root}")


def import_and_split(data: Path, workspace: Path, settings: Settings) -> Workspace:
    """Import MovieLens from ``data`` into a fresh ``workspace``, split it, print its stats."""
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
    return ws


def train_and_recommend(ws: Workspace, settings: Settings, user: str) -> None:
    """Train ``cf.model``, save it, write the Top-K, print the test evaluation and ``user``'s
    recommendations."""
    from tailormind.cf.checkpoint import save_checkpoint
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.evaluate import evaluate_workspace
    from tailormind.cf.recommend import recommend_workspace
    from tailormind.cf.train import EpochLog, train_model

    cfg = settings.cf
    cf_data = load_cf_data(ws)
    with progress_bar(f"train {cfg.model} (epochs)", total=cfg.epochs) as advance:

        def on_epoch(log: EpochLog) -> None:
            advance(1)

        result = train_model(cf_data, cfg, cfg.model, seed=settings.seeds.cf, on_epoch=on_epoch)
    for note in result.notes:
        err.print(f"note: {note}")
    save_checkpoint(ws, result, cf_data, cfg)
    recommend_workspace(ws, cfg.model, cfg.top_k)
    print_eval_table(evaluate_workspace(ws, [cfg.model]), "test (1:99 candidate sets)", "test")
    show_user(ws, user)


class Clock:
    """Seconds per demo stage."""

    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps.append((stage, now - self.last))
        self.last = now

    def show(self, total: float) -> None:
        table = Table("stage", "seconds", title="demo: where the time went")
        for stage, seconds in self.laps:
            table.add_row(stage, f"{seconds:.1f}")
        table.add_row("[bold]total[/bold]", f"[bold]{total:.1f}[/bold]")
        out.print(table)


def personalise(ws, settings, users: int, kinds: list[str], clock: Clock) -> None:
    """Item descriptions -> profiles of ``users`` sampled users -> their posts -> gallery."""
    from tailormind.cli.generate import print_generation_report
    from tailormind.generation.batch import generate_users, plan_generations
    from tailormind.generation.gallery import write_gallery
    from tailormind.profiling.items import describe_items
    from tailormind.profiling.profiles import profile_users

    total = ws.read("items", columns=["item_id"]).num_rows
    with progress_bar("describe items (text + MiniLM)", total=total) as advance:
        described = describe_items(ws, settings, progress=advance)
    clock.lap(f"describe {described.described + described.skipped_done} items")
    with progress_bar(f"profile {users} users (SmolLM2)", total=users) as advance:
        report = profile_users(ws, settings, sample=users, progress=advance)
    for reason, count in sorted(report.fallbacks.items()):
        err.print(f"note: profile fallback {reason}: {count} user(s)")
    clock.lap(f"profile {report.profiled} users")
    chosen = ws.read("profiles", columns=["user_id"]).column("user_id").to_pylist()
    plan = plan_generations(ws, settings, users=chosen, kinds=kinds)
    with progress_bar(f"generate {' + '.join(kinds)} for {len(chosen)} users",
                      total=len(plan.todo)) as advance:
        made = generate_users(ws, settings, plan, progress=advance)
    print_generation_report(made)
    clock.lap(f"generate {made.generated} posts")
    gallery = write_gallery(ws)
    out.print(f"[bold]gallery:[/bold] {gallery}  (open it in a browser)")


def show_user(ws, user: str) -> None:
    topk = ws.read("cf_topk")
    rows = topk.filter(pc.equal(topk.column("user_id"), user)).to_pylist()
    if not rows:
        err.print(f"note: user {user!r} has no recommendations")
        return
    items = model_items(ws, columns=["item_id", "title", "tags"])
    info = {r["item_id"]: r for r in items.to_pylist()}
    table = Table(title=f"CF top-{len(rows)} for user {user} (unseen in train)")
    table.add_column("rank", justify="right")
    table.add_column("title")
    table.add_column("tags")
    table.add_column("score", justify="right")
    for row in rows:
        item = info[row["item_id"]]
        table.add_row(str(row["rank"]), item["title"], ", ".join(item["tags"][:4]), f"{row['score']:.3f}")
    out.print(table)
