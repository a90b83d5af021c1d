"""``tailormind bench run`` / ``jobs/evaluate.py``: TailorBench end to end.

users (seeded) -> profiles each method needs -> each method's posts (missing ones made) ->
content scores (embeddings, CLIP when configured, the judge) -> profiling dimension and
refinement curve -> the judge's calibration (``bench/calibration.json``, reused while its inputs
are unchanged) -> ``bench/report.json`` + ``report.md`` + ``report.html`` + ``plots/``.

Every step reuses what exists: bundles by their deterministic ids, profiles by user, model calls
through the call cache. So a run that was stopped resumes, and a second run with nothing new only
re-scores (seconds to minutes) and rewrites the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailormind.bench.calibrate import calibrate_workspace
from tailormind.bench.cost import measured, write_scoring_cost
from tailormind.bench.judge import Judge
from tailormind.bench.methods import BENCH_DIR, Method, resolve_methods
from tailormind.bench.posts import (
    ensure_profiles,
    generate_method,
    plan_method,
    read_posts,
)
from tailormind.bench.profiling_dimension import profiling_dimension
from tailormind.bench.report import build_report, write_report
from tailormind.bench.scoring import PostScorer
from tailormind.bench.users import BenchUser, select_users
from tailormind.config import Settings
from tailormind.data.item_tags import model_items
from tailormind.data.workspace import Workspace
from tailormind.generation.pipeline import Roles
from tailormind.models.registry import load_role
from tailormind.models.roles import TextModel
from tailormind.profiling.evidence import ItemFeatures
from tailormind.progress import ProgressLog

Log = Callable[[str], None]


@dataclass
class BenchRun:
    report: dict[str, Any]
    paths: dict[str, Path]  # json, md, html


def judge_settings(settings: Settings) -> Settings:
    """Settings whose ``models.text`` is the judge (``bench.judge``, else the text role)."""
    if settings.bench.judge is None:
        return settings
    return settings.with_overrides({"models": {"text": settings.bench.judge.model_dump(
        mode="json")}})


def load_judge(settings: Settings) -> TextModel:
    return load_role("text", judge_settings(settings))


def _provenance(roles: Roles | None, posts: dict[str, dict[str, Any]], *, embed: Any,
                judge: TextModel, clip: Any, vision: Any) -> dict[str, dict[str, str]]:
    """Every model behind the numbers: the scorers, and the roles that made the posts (this
    run's, or — when nothing was generated now — those recorded in a bundle)."""
    models = {"embed": embed.provenance, "judge": judge.provenance,
              **({"clip": clip.provenance} if clip is not None else {}),
              **({"vision_judge": vision.provenance} if vision is not None else {})}
    if roles is not None:
        return {**roles.provenance(), **models}
    made = next((p.record for found in posts.values() for p in found.values() if p.record), None)
    return {**(made.models if made is not None else {}), **models}


def generate_for(workspace: Workspace, settings: Settings, method: Method,
                  bench_users: list[BenchUser], roles: Roles | None, workers: int, log: Log
                  ) -> tuple[dict[str, Any], dict[str, Path], Roles | None]:
    """Make ``method``'s missing posts: ``(its generation entry, its posts' paths, roles)`` —
    the roles are loaded here the first time a post is made in this process."""
    cfg = settings.bench
    todo, paths, unplanned = plan_method(workspace, settings, method, bench_users, cfg.kind)
    entry: dict[str, Any] = {"planned": len(paths), "made_now": 0, "failed": dict(unplanned),
                             "seconds": 0.0, "llm_tokens": 0}
    for key, error in unplanned.items():
        log(f"bench {method.name}: {key} failed: {error}")
    if todo:
        if roles is None and workers <= 1:
            roles = Roles.load(settings, kinds=(cfg.kind,))
        progress = ProgressLog(f"bench {method.name}", "posts")
        progress.plan(len(todo))
        made = generate_method(workspace, settings, method, todo, roles=roles,
                               workers=workers, progress=progress)
        entry.update(made_now=made.generated, failed={**unplanned, **made.failed},
                     seconds=round(made.seconds, 1), llm_tokens=made.llm_tokens)
        for key, error in made.failed.items():
            log(f"bench {method.name}: {key} failed: {error}")
    return entry, paths, roles


@dataclass
class _Scoring:
    """What the posts are scored with: item features and rows, the judge and the scorers."""

    features: ItemFeatures
    items: dict[str, dict[str, Any]]
    judge: Judge
    clip: Any
    vision: Any
    embed: Any


def load_scoring(workspace: Workspace, settings: Settings, roles: Roles | None,
                  judge_model: TextModel | None) -> _Scoring:
    """Load the scoring inputs and models (``roles``' embedder when given; CLIP and the vision
    judge only when configured)."""
    features = ItemFeatures.load(workspace)
    items = {r["item_id"]: r for r in model_items(
        workspace, columns=["item_id", "title", "text", "tags", "image_paths"]).to_pylist()}
    judge = Judge(judge_model or load_judge(settings))
    clip = None if settings.models.clip.backend == "none" else load_role("clip", settings)
    vision = (load_role("describe", settings)
              if settings.bench.vision_judge and settings.models.describe.backend != "none"
              else None)
    embed = roles.embed if roles is not None else load_role("embed", settings)
    return _Scoring(features, items, judge, clip, vision, embed)


def _score_posts(workspace: Workspace, settings: Settings, methods: list[Method],
                 bench_users: list[BenchUser], paths_by_method: dict[str, dict[str, Path]],
                 scoring: _Scoring, log: Log) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(per-post score rows, posts by method)`` for every method, in order; what scoring each
    method cost goes to ``bench/scoring_cost.json`` (:mod:`tailormind.bench.cost`)."""
    cfg = settings.bench
    s = scoring
    scorer = PostScorer(s.features, s.items, bench_users, embed=s.embed, judge=s.judge,
                        clip=s.clip, vision=s.vision, history_items=cfg.judge_history_items)
    rows: list[dict[str, Any]] = []
    posts_by_method: dict[str, dict[str, Any]] = {}
    costs: dict[str, Any] = {}
    for method in methods:
        posts = read_posts(workspace, method, bench_users, paths_by_method.get(method.name, {}),
                           s.items, cfg.judge_history_items)
        posts_by_method[method.name] = posts
        scored, cost = measured([s.judge.text, s.vision, s.clip, s.embed],
                                lambda: scorer.score(method.name, list(posts.values())))
        rows += scored
        costs[method.name] = {"posts": len(posts), **cost}
        log(f"bench: scored {method.name} ({len(posts)} posts)")
    write_scoring_cost(workspace.root / BENCH_DIR, [u.user_id for u in bench_users], costs)
    return rows, posts_by_method


def run_bench(workspace: Workspace, settings: Settings, *, users: int | None = None,
              user_ids: list[str] | None = None, methods: list[str] | None = None,
              workers: int = 1, log: Log = print, roles: Roles | None = None,
              judge_model: TextModel | None = None) -> BenchRun:
    """Run the benchmark on ``users`` users (default ``bench.users``) or the given ids.
    ``roles`` / ``judge_model`` replace the configured models (tests, notebooks)."""
    started = time.perf_counter()
    chosen_methods = resolve_methods(methods, settings)
    bench_users = select_users(workspace, users or settings.bench.users, settings.seeds.bench,
                               user_ids)
    log(f"bench: {len(bench_users)} users, methods: {', '.join(m.name for m in chosen_methods)}")
    profiling = ensure_profiles(workspace, settings, chosen_methods, bench_users, log)
    generation: dict[str, dict[str, Any]] = {}
    paths_by_method: dict[str, dict[str, Path]] = {}
    for method in chosen_methods:
        if method.generates:
            generation[method.name], paths_by_method[method.name], roles = generate_for(
                workspace, settings, method, bench_users, roles, workers, log)

    log("bench: scoring posts")
    s = load_scoring(workspace, settings, roles, judge_model)
    rows, posts_by_method = _score_posts(workspace, settings, chosen_methods, bench_users,
                                         paths_by_method, s, log)
    log("bench: profiling dimension")
    profile_rows, curve = profiling_dimension(workspace, settings, s.features,
                                              [u.user_id for u in bench_users])
    models = _provenance(roles, posts_by_method, embed=s.embed, judge=s.judge.text, clip=s.clip,
                         vision=s.vision)
    log("bench: judge calibration")
    calibration = calibrate_workspace(workspace, settings, judge_model=s.judge.text,
                                      embed=s.embed, features=s.features, items=s.items,
                                      writer=models.get("text"), log=log)
    report = build_report(
        workspace=workspace, settings=settings, methods=chosen_methods, users=bench_users,
        rows=rows, profile_rows=profile_rows, curve=curve, generation=generation,
        profiling=profiling, posts=posts_by_method, items=s.items, models=models,
        judge_stats=dict(s.judge.stats), seconds=time.perf_counter() - started,
        created=datetime.now(UTC).isoformat(timespec="seconds"), calibration=calibration,
        judge_self=calibration["judge_self"])
    paths = write_report(workspace.root / BENCH_DIR, report)
    log(f"bench: report written to {paths['md']} and {paths['html']}")
    return BenchRun(report, paths)


__all__ = ["BenchRun", "Method", "judge_settings", "load_judge", "run_bench"]
