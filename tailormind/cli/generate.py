"""``tailormind generate``: posts and short videos for profiled users; ``tailormind gallery``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tailormind.cli.console import err, out, progress_bar, status
from tailormind.cli.data import WorkspaceOpt
from tailormind.cli.state import settings_of
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError


class PostsFailed(TailorMindError):
    """Some posts of a batch failed (each recorded); the others are bundled."""

    exit_code = 1


def generate(
    ctx: typer.Context,
    user: Annotated[list[str] | None, typer.Option(
        "--user", "-u", help="A user to create content for (repeatable).")] = None,
    workspace: WorkspaceOpt = Path("workspace"),
    users: Annotated[int | None, typer.Option(
        "--users", min=1, help="A seeded sample of N profiled users (instead of --user).")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every profiled user.")] = False,
    platform: Annotated[str | None, typer.Option(
        help="rednote | hupu | bilibili (default: generation.platform).")] = None,
    kind: Annotated[list[str] | None, typer.Option(
        help="post | video, repeatable (default: the platform's usual kind).")] = None,
    seed: Annotated[int | None, typer.Option(help="Default: seeds.generation (one user).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N more posts (resume later).")] = None,
    force: Annotated[bool, typer.Option(help="Make posts again even if bundled.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print post.json / the report.")] = False,
) -> None:
    """Exemplars -> idea -> post text and images (or storyboard and video) -> cohesion
    reflection -> a bundle under WORKSPACE/generations/USER/POST_ID with preview.html.

    One --user prints the post. Several users (--user ..., --users N, --all) run as a batch that
    skips posts already bundled, records failures and writes the gallery
    WORKSPACE/generations/index.html."""
    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    chosen = list(user or [])
    if sum(bool(x) for x in (chosen, users, all_users)) != 1:
        raise TailorMindError("choose the users: --user U (repeatable), --users N or --all")
    if len(chosen) == 1 and len(kind or []) <= 1 and not limit:
        _one(settings, ws, chosen[0], platform, kind[0] if kind else None, seed, as_json)
        return
    if seed is not None:
        raise TailorMindError("--seed is for one user; batches use seeds.generation")
    _batch(settings, ws, chosen or None, users, platform, kind, limit, force, as_json)


def _one(settings, ws: Workspace, user: str, platform: str | None, kind: str | None,
         seed: int | None, as_json: bool) -> None:
    from tailormind.core.vocabulary import KINDS
    from tailormind.generation.pipeline import Generator, Roles

    with status(f"generating for user {user}"):
        roles = Roles.load(settings, kinds=KINDS if kind != "post" else ("post",))
        post = Generator(ws, settings, roles=roles).generate(user, platform=platform, kind=kind,
                                                             seed=seed)
    record = post.record
    if as_json:
        print(json.dumps(record.to_json(), indent=2, ensure_ascii=False))
        return
    out.print(f"[bold]{record.title}[/bold]  ({record.platform} {record.kind}, "
              f"idea: {record.idea.type})")
    out.print(record.body)
    if record.hashtags:
        out.print(" ".join(record.hashtags))
    rounds = Table("round", "relevance", "CLIPScore", "objective", "kept",
                   title="cohesion reflection")
    for r in record.reflection.rounds:
        rounds.add_row(str(r.round), f"{r.relevance:.3f}",
                       "not measured" if r.clip is None else f"{r.clip:.3f}",
                       f"{r.objective:.3f}", "best so far" if r.best_so_far else "")
    out.print(rounds)
    if record.fallbacks:
        out.print("fallbacks: " + "; ".join(record.fallbacks))
    out.print(f"{record.seconds:.1f} s, LLM tokens {record.llm_tokens}; "
              f"preview: {post.path / 'preview.html'}")


def _batch(settings, ws: Workspace, users: list[str] | None, sample: int | None,
           platform: str | None, kinds: list[str] | None, limit: int | None, force: bool,
           as_json: bool) -> None:
    from tailormind.generation.batch import generate_users, plan_generations
    from tailormind.generation.gallery import write_gallery

    plan = plan_generations(ws, settings, users=users, sample=sample, kinds=kinds,
                            platform=platform, limit=limit, force=force)
    with progress_bar("generate posts", total=len(plan.todo)) as advance:
        report = generate_users(ws, settings, plan, progress=advance)
    unreadable: list[str] = []
    gallery = write_gallery(ws, unreadable=unreadable)
    data = {**asdict(report), "fallbacks": dict(report.fallbacks), "gallery": str(gallery),
            "unreadable_bundles": unreadable}
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print_generation_report(report)
        out.print(f"gallery: {gallery}")
        warn_unreadable(unreadable)
    if report.failed:  # exit 1 (not 2: the input was fine), also with --json
        raise PostsFailed(f"{len(report.failed)} post(s) failed (recorded above); the others "
                          f"are bundled — fix the cause and run again to finish")


def print_generation_report(report) -> None:
    n = max(report.generated, 1)
    table = Table("posts", "made now", "already bundled", "failed", "complete", "s/post",
                  "LLM tokens/post", title="generation")
    table.add_row(str(report.wanted), str(report.generated), str(report.skipped_done),
                  str(len(report.failed)), "yes" if report.complete else "no (run again)",
                  f"{report.seconds / n:.1f}", f"{report.llm_tokens / n:.0f}")
    out.print(table)
    for key, error in report.failed.items():
        out.print(f"failed {key}: {error}")
    if report.fallbacks:
        out.print("fallbacks: " + ", ".join(f"{k} {v}" for k, v in
                                            sorted(report.fallbacks.items())))


def gallery(ctx: typer.Context, workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Write WORKSPACE/generations/index.html: every post beside the user's history."""
    from tailormind.generation.batch import index_generations
    from tailormind.generation.gallery import write_gallery

    ws = Workspace.open(workspace)
    unreadable: list[str] = []
    posts = index_generations(ws, unreadable).num_rows
    out.print(f"gallery of {posts} post(s): {write_gallery(ws)}")
    warn_unreadable(unreadable)


def warn_unreadable(unreadable: list[str]) -> None:
    if unreadable:
        err.print(f"warning: {len(unreadable)} bundle(s) left out, post.json unreadable: "
                  + ", ".join(unreadable[:5]) + (" …" if len(unreadable) > 5 else ""))
