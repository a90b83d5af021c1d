"""``tailormind generate``: one post or short video for one profiled user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tailormind.cli.console import out, status
from tailormind.cli.data import WorkspaceOpt
from tailormind.cli.state import settings_of
from tailormind.data.workspace import Workspace


def generate(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="The user to create content for.")],
    workspace: WorkspaceOpt = Path("workspace"),
    platform: Annotated[str | None, typer.Option(
        help="rednote | hupu | bilibili (default: generation.platform).")] = None,
    kind: Annotated[str | None, typer.Option(
        help="post | video (default: the platform's usual kind).")] = None,
    seed: Annotated[int | None, typer.Option(help="Default: seeds.generation.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print post.json.")] = False,
) -> None:
    """Exemplars -> idea -> post text and images (or storyboard and video) -> cohesion
    reflection -> a bundle under WORKSPACE/generations/USER/POST_ID with preview.html."""
    from tailormind.generation.pipeline import KINDS, Generator, Roles

    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    with status(f"generating for user {user}"):
        roles = Roles.load(settings, kinds=KINDS if kind != "post" else ("post",))
        post = Generator(ws, settings, roles=roles).generate(user, platform=platform, kind=kind,
                                                             seed=seed)
    record = post.record
    if as_json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return
    out.print(f"[bold]{record['title']}[/bold]  ({record['platform']} {record['kind']}, "
              f"idea: {record['idea']['type']})")
    out.print(record["body"])
    if record["hashtags"]:
        out.print(" ".join(record["hashtags"]))
    rounds = Table("round", "relevance", "CLIPScore", "objective", "kept",
                   title="cohesion reflection")
    for r in record["reflection"]["rounds"]:
        rounds.add_row(str(r["round"]), f"{r['relevance']:.3f}",
                       "not measured" if r["clip"] is None else f"{r['clip']:.3f}",
                       f"{r['objective']:.3f}", "best so far" if r["best_so_far"] else "")
    out.print(rounds)
    if record["fallbacks"]:
        out.print("fallbacks: " + "; ".join(record["fallbacks"]))
    out.print(f"{record['seconds']:.1f} s, LLM tokens {sum(record['tokens_by_stage'].values())}; "
              f"preview: {post.path / 'preview.html'}")
