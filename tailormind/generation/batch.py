"""Posts for many users: plan, generate (in this process or on Ray Data), index.

The bundle is the durable record: its id is a deterministic function of the user, kind, platform,
profile text, generation config and seed (:func:`planned_post_id`), and it is written atomically.
So a run first plans — every (user, kind) whose bundle already exists is skipped unless
``force`` — and a killed run loses at most the posts in flight. Failures of one user (a model
error, an unusable profile) are recorded and counted; the others go on.

``index_generations`` then writes the workspace table ``generations`` — one row per bundle on
disk, read back from its ``post.json`` — which the gallery, the benchmark and the HTTP service
read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tailormind.config import Settings
from tailormind.core.sampling import sample_users
from tailormind.core.vocabulary import KINDS
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError, TailorMindError, WorkspaceError
from tailormind.generation.bundle import bundle_dir, live_bundle
from tailormind.generation.bundle_scan import read_bundles, recover_bundles
from tailormind.generation.catalog import packaged_catalog
from tailormind.generation.pipeline import Generator, Roles, planned_post_id
from tailormind.profiling.profiles import PROFILES_TABLE

GENERATIONS_TABLE = "generations"


@dataclass(frozen=True)
class GenerationTask:
    user_id: str
    kind: str
    platform: str
    post_id: str


@dataclass
class GenerationReport:
    wanted: int = 0
    generated: int = 0
    skipped_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # "user/kind" -> error
    fallbacks: Counter = field(default_factory=Counter)  # fallback kind -> posts
    seconds: float = 0.0
    llm_tokens: int = 0
    complete: bool = False

    def record(self, row: dict[str, Any]) -> None:
        """Count one finished task (a row from :func:`task_row`)."""
        if row["error"]:
            self.failed[f"{row['user_id']}/{row['kind']}"] = row["error"]
            return
        self.generated += 1
        self.llm_tokens += row["llm_tokens"]
        for reason in row["fallbacks"]:
            self.fallbacks[reason.split(":")[0]] += 1


@dataclass
class GenerationPlan:
    todo: list[GenerationTask]
    report: GenerationReport


def resolve_kinds(kinds: list[str] | None, platform: str) -> list[str]:
    """``None`` -> the platform's usual kind; unknown kinds are a ConfigError."""
    if not kinds:
        return [packaged_catalog().platform(platform).default_kind]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown kind {unknown[0]!r}; choose from {', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


def plan_generations(workspace: Workspace, settings: Settings, *,
                     users: list[str] | None = None, sample: int | None = None,
                     kinds: list[str] | None = None, platform: str | None = None,
                     limit: int | None = None, force: bool = False) -> GenerationPlan:
    """The (user, kind) posts still to make, profiled users only, in a stable order."""
    if not workspace.has(PROFILES_TABLE):
        raise WorkspaceError(f"workspace {workspace.root} has no profiles; run `tailormind "
                             f"profile run --workspace {workspace.root}` first")
    platform = platform or settings.generation.platform
    kinds = resolve_kinds(kinds, platform)
    profiles = {r["user_id"]: r["profile"] for r in
                workspace.read(PROFILES_TABLE, columns=["user_id", "profile"]).to_pylist()}
    if users:
        missing = [u for u in users if u not in profiles]
        if missing:
            raise WorkspaceError(f"{len(missing)} chosen user(s) have no profile (first: "
                                 f"{missing[0]!r}); run `tailormind profile run` for them first")
        wanted = list(dict.fromkeys(users))
    else:
        wanted = sorted(profiles)
        if sample is not None:
            wanted = sample_users(wanted, sample, settings.seeds.generation)
    report = GenerationReport(wanted=len(wanted) * len(kinds))
    todo = []
    for user in wanted:
        for kind in kinds:
            post_id = planned_post_id(settings, user, profiles[user], kind, platform)
            done = live_bundle(bundle_dir(workspace.root, user, post_id)) is not None
            if done and not force:
                report.skipped_done += 1
            else:
                todo.append(GenerationTask(user, kind, platform, post_id))
    return GenerationPlan(todo[:limit] if limit is not None else todo, report)


def task_row(generator: Generator, task: GenerationTask) -> dict[str, Any]:
    """Generate one planned post; a TailorMindError becomes the row's ``error`` (recorded)."""
    try:
        post = generator.generate(task.user_id, platform=task.platform, kind=task.kind)
    except TailorMindError as exc:
        return {"user_id": task.user_id, "kind": task.kind, "post_id": task.post_id,
                "error": str(exc), "llm_tokens": 0, "fallbacks": []}
    if post.post_id != task.post_id:  # the plan and the pipeline disagree: a bug, say it
        raise RuntimeError(f"planned post id {task.post_id} but generated {post.post_id}")
    return {"user_id": task.user_id, "kind": task.kind, "post_id": post.post_id, "error": "",
            "llm_tokens": post.record.llm_tokens, "fallbacks": list(post.record.fallbacks)}


def generate_users(workspace: Workspace, settings: Settings, plan: GenerationPlan, *,
                   generator: Generator | None = None,
                   progress: Callable[[int], None] | None = None,
                   index: bool = True) -> GenerationReport:
    """Run the plan in this process (roles loaded once), then index the workspace (unless
    ``index`` is false: the benchmark's ablation posts are not the workspace's posts)."""
    started = time.perf_counter()
    if plan.todo:
        kinds = tuple(sorted({t.kind for t in plan.todo}))
        if generator is None:
            generator = Generator(workspace, settings, roles=Roles.load(settings, kinds=kinds))
        for task in plan.todo:
            plan.report.record(task_row(generator, task))
            if progress:
                progress(1)
    return finish_generations(workspace, plan, started, index=index)


def finish_generations(workspace: Workspace, plan: GenerationPlan, started: float, *,
                       index: bool = True) -> GenerationReport:
    report = plan.report
    if index:
        index_generations(workspace)
    report.complete = report.generated + report.skipped_done >= report.wanted
    report.seconds = time.perf_counter() - started
    return report


def index_generations(workspace: Workspace, unreadable: list[str] | None = None) -> pa.Table:
    """Write the ``generations`` table from the live bundles on disk, after repairing what a
    killed writer left (:func:`~tailormind.generation.bundle_scan.recover_bundles`). The number
    of unreadable ``post.json`` files is recorded in its manifest entry and their paths in
    ``unreadable``."""
    rows = []
    skipped: list[str] = [] if unreadable is None else unreadable
    recover_bundles(workspace.root)
    for listed in read_bundles(workspace.root, skipped):
        r = listed.record
        rounds, ideation = r.reflection.rounds, r.ideation
        rows.append({
            "user_id": r.user_id, "post_id": r.post_id, "kind": r.kind,
            "platform": r.platform, "title": r.title, "path": listed.directory,
            "created_at": r.created_at, "seconds": r.seconds, "llm_tokens": r.llm_tokens,
            "relevance_first": rounds[0].relevance if rounds else None,
            "relevance_best": r.reflection.best.relevance if rounds else None,
            "reflection_rounds": len(rounds), "idea_type": r.idea.type,
            "ideas_format": ideation.format,
            "ideas_repaired": bool(ideation.repaired or ideation.empty or ideation.type_coerced),
            "ideas_fallback": bool(ideation.fallback), "fallbacks": len(r.fallbacks),
            "config_hash": r.config_hash,
        })
    schema = pa.schema([
        ("user_id", pa.string()), ("post_id", pa.string()), ("kind", pa.string()),
        ("platform", pa.string()), ("title", pa.string()), ("path", pa.string()),
        ("created_at", pa.string()), ("seconds", pa.float64()), ("llm_tokens", pa.int64()),
        ("relevance_first", pa.float64()), ("relevance_best", pa.float64()),
        ("reflection_rounds", pa.int64()), ("idea_type", pa.string()),
        ("ideas_format", pa.string()), ("ideas_repaired", pa.bool_()),
        ("ideas_fallback", pa.bool_()), ("fallbacks", pa.int64()), ("config_hash", pa.string()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    workspace.write(GENERATIONS_TABLE, table, posts=len(rows), unreadable=len(skipped))
    return table
