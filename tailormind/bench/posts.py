"""Each method's post for each benchmark user: made where missing, then read back.

Generation goes through the product's own :class:`~tailormind.generation.pipeline.Generator`
(in this process, or on Ray Data with ``workers > 1``); a method's bundles are planned by their
deterministic ids, so a re-run (or a run after ``tailormind generate``) only makes what is
missing, and the model call cache makes a rerun of identical prompts free. A post that fails is
recorded per method and left out of that method's scores — counted in the report, never
silently dropped. Profiles a method needs (the main table, ``profiles__nocf``) are made for the
benchmark users first, in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailormind.bench.methods import Method, generic_profile
from tailormind.bench.users import BenchUser
from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.generation.batch import (
    GenerationPlan,
    GenerationReport,
    GenerationTask,
    generate_users,
)
from tailormind.generation.bundle import POST_JSON, bundle_dir, live_bundle, read_post
from tailormind.generation.bundle_scan import recover_bundles
from tailormind.generation.pipeline import Generator, Roles, planned_post_id
from tailormind.generation.post_record import PostRecord, reader_text
from tailormind.profiling.profiles import profile_users
from tailormind.progress import ProgressLog

Log = Callable[[str], None]


@dataclass
class BenchPost:
    """What the metrics read of one post (or of the ground-truth item)."""

    user_id: str
    method: str
    title: str
    text: str  # title, body and hashtags (the ground truth: title, text and tags)
    images: list[Path] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # item ids it was built from
    record: PostRecord | None = None  # post.json (generated methods)
    path: str = ""  # bundle directory, relative to the workspace


def item_as_post(item: dict[str, Any]) -> str:
    """A catalogue item as a post's :func:`reader_text`: title, text and (12) tags as hashtags."""
    return reader_text(item.get("title") or "", item.get("text") or "", [],
                       list(item.get("tags") or [])[:12])


def ensure_profiles(workspace: Workspace, settings: Settings, methods: list[Method],
                    users: list[BenchUser], log: Log) -> dict[str, dict[str, Any]]:
    """Profile the benchmark users in every profiles table the methods read; per table, what
    was done (users profiled now, seconds)."""
    done: dict[str, dict[str, Any]] = {}
    ids = [u.user_id for u in users]
    for method in methods:
        if not method.generates or method.fixed_profile or method.profiles_table in done:
            continue
        progress = ProgressLog(f"bench profiles ({method.profiles_table})", "users")
        report = profile_users(workspace, method.settings(settings), users=ids,
                               variant=method.profiles_variant, progress=progress,
                               on_plan=progress.plan)
        done[method.profiles_table] = {"profiled_now": report.profiled,
                                       "seconds": round(report.seconds, 1),
                                       "fallbacks": dict(report.fallbacks)}
        if report.profiled:
            log(f"profiles ({method.profiles_table}): profiled {report.profiled} users in "
                f"{report.seconds:.0f} s")
    return done


def plan_method(workspace: Workspace, settings: Settings, method: Method,
                users: list[BenchUser], kind: str
                ) -> tuple[list[GenerationTask], dict[str, Path], dict[str, str]]:
    """Every user's planned bundle (post.json path), the tasks whose bundle is missing, and the
    users that cannot have a post (no row in the method's profiles table), with the reason."""
    msettings = method.settings(settings)
    platform = msettings.generation.platform
    if method.fixed_profile:
        profiles = {u.user_id: generic_profile() for u in users}
    else:
        table = workspace.read(method.profiles_table, columns=["user_id", "profile"])
        profiles = dict(zip(table.column("user_id").to_pylist(),
                            table.column("profile").to_pylist(), strict=True))
    root = method.output_root(workspace.root)
    recover_bundles(root)  # a killed earlier run's leftovers: no phantom, no missing post
    todo, paths, unplanned = [], {}, {}
    for user in users:
        if user.user_id not in profiles:
            unplanned[f"{user.user_id}/{kind}"] = f"no profile in {method.profiles_table}"
            continue
        post_id = planned_post_id(msettings, user.user_id, profiles[user.user_id], kind, platform)
        path = bundle_dir(root, user.user_id, post_id) / POST_JSON
        paths[user.user_id] = path
        if live_bundle(path.parent) is None:
            todo.append(GenerationTask(user.user_id, kind, platform, post_id))
    return todo, paths, unplanned


def generate_method(workspace: Workspace, settings: Settings, method: Method,
                    todo: list[GenerationTask], *, roles: Roles | None, workers: int,
                    progress: Callable[[int], None] | None = None) -> GenerationReport:
    """Make the missing posts of one method (``roles`` shared across methods in-process)."""
    msettings = method.settings(settings)
    options: dict[str, Any] = {"profiles_table": method.profiles_table,
                               "fixed_profile": generic_profile() if method.fixed_profile else None,
                               "output_root": str(method.output_root(workspace.root))}
    plan = GenerationPlan(todo, GenerationReport(wanted=len(todo)))
    index = method.name == "tailormind"  # the product's own posts: keep its table current
    if workers > 1:
        from tailormind.generation.ray_generate import generate_users_ray

        return generate_users_ray(workspace, msettings, plan, workers=workers,
                                  progress=progress, generator_options=options, index=index)
    generator = Generator(workspace, msettings, roles=roles, **{
        **options, "output_root": method.output_root(workspace.root)})
    return generate_users(workspace, msettings, plan, generator=generator, progress=progress,
                          index=index)


def read_posts(workspace: Workspace, method: Method, users: list[BenchUser],
               paths: dict[str, Path], items: dict[str, dict[str, Any]],
               history_items: int) -> dict[str, BenchPost]:
    """The posts on disk (users whose post failed are absent)."""
    posts: dict[str, BenchPost] = {}
    for user in users:
        if not method.generates:
            item = items.get(user.target, {"title": "", "text": "", "tags": []})
            images = [workspace.media_path(p) for p in item.get("image_paths") or []]
            posts[user.user_id] = BenchPost(
                user.user_id, method.name, item.get("title") or "", item_as_post(item),
                [Path(p) for p in images if Path(p).is_file()],
                sources=[user.target])
            continue
        path = paths[user.user_id]
        record = read_post(path.parent)  # a corrupt one is an error naming it, never "no post"
        if record is None:
            continue
        images = [path.parent / i.file for i in record.images]
        exemplars = [e.item_id for e in record.exemplars]
        recent = user.history[::-1][:history_items]
        posts[user.user_id] = BenchPost(
            user.user_id, method.name, record.title, record.reader_text(),
            [p for p in images if p.is_file()], list(dict.fromkeys(exemplars + recent)),
            record, str(path.parent.relative_to(workspace.root)))
    return posts
