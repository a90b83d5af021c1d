"""``tailormind demo``: the main job on the bundled MovieLens data with the embedded defaults.

Import -> split -> HypergraphCF training -> Top-K recommendations -> evaluation. Later stages
(profiling, generation) extend it as they land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow.compute as pc
import typer
from rich.table import Table

from tailormind.cli.cf import print_eval_table
from tailormind.cli.console import err, out, progress_bar, status
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
    user: Annotated[str, typer.Option(help="User whose recommendations are shown.")] = "1",
) -> None:
    """Import the bundled MovieLens data, split it, train HypergraphCF, recommend, evaluate."""
    from tailormind.cf.checkpoint import save_checkpoint
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.evaluate import evaluate_workspace
    from tailormind.cf.recommend import recommend_workspace
    from tailormind.cf.train import EpochLog, train_model

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
    err.print(f"demo workspace: {ws.root}")


def show_user(ws, user: str) -> None:
    topk = ws.read("cf_topk")
    rows = topk.filter(pc.equal(topk.column("user_id"), user)).to_pylist()
    if not rows:
        err.print(f"note: user {user!r} has no recommendations")
        return
    items = ws.read("items", columns=["item_id", "title", "tags"])
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
