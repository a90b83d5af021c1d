"""The profiling stage: profiles for many users, in batches, as resumable parts.

``profile_users`` plans the users not profiled yet, runs :class:`Profiler` over batches of
``batch_users`` (one batched ``generate`` per LLM step), writes each batch atomically, and writes
the ``profiles`` table (or ``profiles__<variant>`` for an ablation) when every user is done.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tailormind.config import Settings
from tailormind.core.sampling import sample_users
from tailormind.data.appends import watermark
from tailormind.data.schemas import PROFILES, with_defaults
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError
from tailormind.prompts.ugc import CHARS_PER_TOKEN
from tailormind.models.registry import load_role
from tailormind.profiling.evidence import ItemFeatures, UserEvidence, load_evidence
from tailormind.profiling.parts import PartWriter
from tailormind.profiling.profiler import Profiler
from tailormind.profiling.fusion import Fusion, Signals
from tailormind.profiling.rankers import EmbeddingRanker, HybridRanker, LLMRanker, Ranker

PROFILES_TABLE = "profiles"


def table_name(variant: str | None) -> str:
    if variant and not variant.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"--variant {variant!r}: use letters, digits, '-' and '_'")
    return f"{PROFILES_TABLE}__{variant}" if variant else PROFILES_TABLE


#: Ablation variants whose name fixes a setting: ``profiles__nocf`` is built without CF(D_u)
#: whatever ``profiling.use_cf`` says (the bench's w/o-CF method reuses the table).
VARIANT_OVERRIDES: dict[str, dict] = {"nocf": {"profiling": {"use_cf": False}}}


def variant_settings(settings: Settings, variant: str | None) -> Settings:
    """``settings`` with the overrides the variant's name implies (none for most names)."""
    overrides = VARIANT_OVERRIDES.get(variant or "")
    return settings.with_overrides(overrides) if overrides else settings


@dataclass
class ProfileReport:
    table: str
    users: int = 0
    profiled: int = 0
    skipped_done: int = 0
    complete: bool = False
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    ranker_stats: dict[str, int] = field(default_factory=dict)


def build_ranker(settings: Settings, features: ItemFeatures, *, text=None, embed=None,
                 workspace: Workspace | None = None) -> Ranker:
    """The refinement ranker from ``profiling.ranker``. ``hybrid`` needs the weights that
    ``tailormind profile fit`` fits on the validation sets (a clear error before that)."""
    if settings.profiling.ranker == "llm":
        return LLMRanker(features, text or load_role("text", settings),
                         window=settings.profiling.llm_window,
                         description_chars=settings.profiling.prompt_item_chars,
                         profile_chars=CHARS_PER_TOKEN * settings.profiling.profile_tokens,
                         seed=settings.seeds.profiling)
    embedder = embed or load_role("embed", settings)
    if settings.profiling.ranker == "hybrid":
        if workspace is None:
            raise ValueError("the hybrid ranker needs the workspace (CF checkpoints, train matrix)")
        signals = Signals(workspace, settings, features)
        return HybridRanker(signals, Fusion.load(workspace, signals), embedder)
    return EmbeddingRanker(features, embedder)


@dataclass
class ProfilePlan:
    writer: PartWriter
    evidence: dict[str, UserEvidence]
    todo: list[str]
    report: ProfileReport
    wanted: int


def plan_profiles(workspace: Workspace, settings: Settings, *, users: list[str] | None = None,
                  sample: int | None = None, variant: str | None = None,
                  limit: int | None = None, force: bool = False) -> ProfilePlan:
    """The users still to profile; a finished table is reused, parts of a killed run too."""
    name = table_name(variant)
    writer = PartWriter(workspace, name, "user_id")
    if force:
        writer.clear()
    evidence = load_evidence(workspace, users, use_cf=settings.profiling.use_cf)
    wanted = sorted(evidence)
    if sample is not None:
        wanted = sample_users(wanted, sample, settings.seeds.profiling)
    report = ProfileReport(table=name, users=len(wanted))
    done = writer.done()
    if not force and workspace.has(name) and not writer.parts():
        done |= set(workspace.read(name, columns=["user_id"]).column("user_id").to_pylist())
        if done >= set(wanted):
            report.skipped_done, report.complete = len(wanted), True
            return ProfilePlan(writer, evidence, [], report, len(wanted))
        # the missing users go into parts, merged with the existing table at the end
        writer.write(with_defaults(workspace.read(name), PROFILES))
    todo = [u for u in wanted if u not in done]
    report.skipped_done = len(wanted) - len(todo)
    return ProfilePlan(writer, evidence, todo[:limit] if limit is not None else todo, report,
                       len(wanted))


def record_batch(plan: ProfilePlan, table: pa.Table,
                 progress: Callable[[int], None] | None) -> None:
    plan.writer.write(table)
    report = plan.report
    report.profiled += table.num_rows
    report.prompt_tokens += int(np.sum(table.column("prompt_tokens").to_numpy()))
    report.completion_tokens += int(np.sum(table.column("completion_tokens").to_numpy()))
    for reasons in table.column("fallback").to_pylist():
        for reason in (reasons or "").split("; "):
            if reason:
                report.fallbacks[fallback_kind(reason)] += 1
    if progress:
        progress(table.num_rows)


def fallback_kind(reason: str) -> str:
    """``iteration 2: critique unusable, stopped`` -> ``critique unusable``; ``init: ...`` -> ``init``."""
    reason = re.sub(r"^iteration \d+: ", "", reason)
    return reason.split(":")[0].split(" (")[0].split(",")[0]


def finish_profiles(plan: ProfilePlan, started: float) -> ProfileReport:
    report = plan.report
    if report.skipped_done + report.profiled >= plan.wanted and plan.writer.parts():
        plan.writer.consolidate(users=plan.wanted, fallbacks=dict(report.fallbacks))
        report.complete = True
    report.seconds = time.perf_counter() - started
    return report


def provenance(settings: Settings, text_model: str, embed_model: str, ranker: str) -> dict:
    return {"text_model": text_model, "embed_model": embed_model, "ranker": ranker,
            "config_hash": settings.config_hash("profiling", "models", "seeds", "cf")}


def first_version(workspace: Workspace) -> dict:
    """A profile made from scratch: version 1, no parent, the evidence of every interaction up
    to the workspace's current watermark (``data/appends.py``)."""
    return {"version": 1, "parent_version": None,
            "watermark": watermark(workspace).append_id,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"), "evidence": None}


def profile_users(
    workspace: Workspace,
    settings: Settings,
    *,
    users: list[str] | None = None,
    sample: int | None = None,
    variant: str | None = None,
    limit: int | None = None,
    force: bool = False,
    profiler: Profiler | None = None,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> ProfileReport:
    """Profile the planned users in this process, ``batch_users`` at a time."""
    started = time.perf_counter()
    settings = variant_settings(settings, variant)
    plan = plan_profiles(workspace, settings, users=users, sample=sample, variant=variant,
                         limit=limit, force=force)
    if on_plan:
        on_plan(len(plan.todo))
    if plan.todo:
        features = ItemFeatures.load(workspace)
        text = profiler.text if profiler else load_role("text", settings)
        embed = load_role("embed", settings)
        profiler = profiler or Profiler(settings, features, build_ranker(
            settings, features, text=text, embed=embed, workspace=workspace), text)
        info = {**provenance(settings, profiler.text.model_id, embed.model_id,
                             profiler.ranker.name), **first_version(workspace)}
        size = settings.profiling.batch_users
        for start in range(0, len(plan.todo), size):
            batch = [plan.evidence[u] for u in plan.todo[start : start + size]]
            record_batch(plan, run_batch(profiler, batch, embed, info), progress)
        plan.report.ranker_stats = dict(profiler.ranker.stats)
    return finish_profiles(plan, started)


def run_batch(profiler: Profiler, batch: list[UserEvidence], embed, info: dict) -> pa.Table:
    states = profiler.initialise(batch)
    profiler.refine(states)
    records = [s.record() for s in states]
    finals = embed.embed([s.profile for s in states])
    initials = embed.embed([s.initial for s in states])
    for record, state, final, initial in zip(records, states, finals, initials, strict=True):
        record["embedding"] = (final if state.profile else np.zeros_like(final)).tolist()
        record["initial_embedding"] = (initial if state.initial else np.zeros_like(initial)).tolist()
        record.update(info)
    return pa.Table.from_pylist(records, schema=PROFILES)
