"""``tailormind profile update``: re-profile only the users with interactions newer than their
profile, starting from the profile they have (the paper's loop, run online).

A profile row records the watermark *w* of its evidence (``data/appends.py``). A user's new
evidence is the interactions appended after *w*:

- a repeat of one of the user's held-out items (the validation or test positive) is withheld:
  it never becomes evidence, so an update cannot learn an evaluation label;
- the ``profiling.update_max_positives`` newest others are the new positives. Each is ranked,
  with the current profile, against the same fresh negatives — as many as the workspace's
  candidate sets have (99 by default): catalogue items the user never touched, drawn with a
  generator seeded by (``seeds.profiling``, user, workspace watermark);
- refinement then runs exactly as for a new profile (Eq. 10–14: loss, critique, update, a worse
  update rejected, up to ``n_max`` rounds), from the current profile instead of a new init.

The result is version *v* + 1 (parent *v*, watermark = the workspace's, the update's iterations);
version *v* moves to ``profile_history``. A user without newer interactions costs nothing and
keeps its version; one whose newer interactions are all withheld gets the new watermark without
a model call (a new version with the same text, the reason in ``fallback``).

Resumable: each batch's new rows are one atomic part (``parts/profile_updates/``). ``finish``
adds the superseded rows to ``profile_history`` (one row per (user, version), so a repeat after a
crash adds nothing), then replaces the rows in ``profiles``, then deletes the parts; a killed
update, re-run, updates every user exactly once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailormind.config import Settings
from tailormind.data.appends import appended_since, watermark
from tailormind.data.histories import split_histories
from tailormind.data.schemas import PROFILES, with_defaults
from tailormind.data.split import sample_negatives
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.profiling.evidence import ItemFeatures, UserEvidence
from tailormind.profiling.parts import PartWriter
from tailormind.profiling.profiler import Profiler, ProfileState
from tailormind.profiling.profiles import PROFILES_TABLE

HISTORY_TABLE = "profile_history"
UPDATES_PARTS = "profile_updates"


@dataclass
class UpdateReport:
    users: int = 0  # profiled users considered
    unchanged: int = 0  # no newer interactions: kept, zero model calls
    updated: int = 0  # a new version from new positives (this run)
    advanced: int = 0  # newer interactions all withheld: new watermark, no model call
    skipped_done: int = 0  # updated by an earlier, interrupted run
    withheld: int = 0  # appended repeats of a held-out item, never evidence
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    watermark: int = 0
    complete: bool = False


@dataclass
class UpdatePlan:
    writer: PartWriter
    rows: dict[str, dict[str, Any]]  # user -> current profile row
    evidence: dict[str, UserEvidence]  # users to update with the model
    advance: dict[str, int]  # users to move to the new watermark only -> withheld count
    withheld: dict[str, int]  # user -> appended repeats of held-out items left out
    report: UpdateReport
    target: int  # the workspace watermark the new versions record
    todo: list[str] = field(default_factory=list)


def current_profiles(workspace: Workspace) -> pa.Table:
    """``profiles`` with its version columns (a table written before them reads as version 1,
    watermark 0)."""
    if not workspace.has(PROFILES_TABLE):
        raise WorkspaceError(f"{workspace.root} has no profiles to update; run `tailormind "
                             f"profile run --workspace {workspace.root}` first")
    return with_defaults(workspace.read(PROFILES_TABLE), PROFILES)


def _held_out(workspace: Workspace) -> tuple[dict[str, set[str]], int | None]:
    """Each user's held-out positives, and the negatives per candidate set (the protocol's)."""
    candidates = workspace.read("candidates", columns=["user_id", "positive", "negatives"])
    found: dict[str, set[str]] = {}
    for user, item in zip(candidates.column("user_id").to_pylist(),
                          candidates.column("positive").to_pylist(), strict=True):
        found.setdefault(user, set()).add(item)
    sizes = pc.list_value_length(candidates.column("negatives"))
    return found, (int(pc.max(sizes).as_py()) if len(sizes) else None)


def _touched(workspace: Workspace, users: set[str]) -> dict[str, set[str]]:
    table = workspace.read("interactions", columns=["user_id", "item_id"])
    wanted = pa.array(sorted(users), table.column("user_id").type)
    table = table.filter(pc.is_in(table.column("user_id"), value_set=wanted))
    found: dict[str, set[str]] = {u: set() for u in users}
    for user, item in zip(table.column("user_id").to_pylist(),
                          table.column("item_id").to_pylist(), strict=True):
        found[user].add(item)
    return found


def fresh_negatives(features: ItemFeatures, touched: set[str], seed: int, user: str,
                    target: int, count: int = 99) -> list[str]:
    """``count`` described catalogue items ``user`` never touched, seeded by (seed, user,
    watermark) so a re-run draws the same ones and every update new ones."""
    digest = hashlib.sha256(f"{seed}\x00{user}\x00{target}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    seen = np.sort(np.asarray([features.index[i] for i in touched if i in features.index],
                              dtype=np.int64))
    picked = sample_negatives(seen, len(features.ids), count, rng)
    if picked is None:
        raise WorkspaceError(f"user {user!r} has touched all but {len(features.ids) - len(seen)}"
                             f" described items: no {count} fresh negatives to rank against")
    return [features.ids[i] for i in picked.tolist()]


def _new_positives(new: list[str], held: set[str], features: ItemFeatures, limit: int
                   ) -> tuple[list[str], int]:
    """(the newest ``limit`` distinct new items, oldest first; how many were withheld)."""
    withheld = sum(1 for i in new if i in held)
    kept = list(dict.fromkeys(i for i in reversed(new) if i not in held))[:limit][::-1]
    missing = [i for i in kept if i not in features.index]
    if missing:
        raise WorkspaceError(f"item {missing[0]!r} has no description yet; run `tailormind "
                             "profile describe` after `data append`, then update")
    return kept, withheld


def plan_updates(workspace: Workspace, settings: Settings, features: ItemFeatures,
                 users: list[str] | None = None, *, skip_done: bool = True) -> UpdatePlan:
    """Who needs an update, and each one's evidence (see the module doc); users already in the
    parts of an interrupted run are left out unless ``skip_done`` is false (a Ray actor's plan:
    the driver decides who is left)."""
    table = current_profiles(workspace)
    wanted = None if users is None else set(users)
    rows = {r["user_id"]: r for r in table.to_pylist() if wanted is None or r["user_id"] in wanted}
    if wanted is not None and len(rows) < len(wanted):
        missing = sorted(wanted - set(rows))[0]
        raise WorkspaceError(f"user {missing!r} has no profile to update; profile it first "
                             f"(`tailormind profile run --user {missing}`)")
    target = watermark(workspace).append_id
    writer = PartWriter(workspace, UPDATES_PARTS, "user_id")
    report = UpdateReport(users=len(rows), watermark=target)
    since = min((r["watermark"] for r in rows.values()), default=target)
    newer = appended_since(workspace, since, sorted(rows))
    pending: dict[str, list[str]] = {}
    for user, item, mark in zip(newer.column("user_id").to_pylist(),
                                newer.column("item_id").to_pylist(),
                                newer.column("append_id").to_pylist(), strict=True):
        if mark > rows[user]["watermark"]:
            pending.setdefault(user, []).append(item)
    done = writer.done() if skip_done else set()
    report.unchanged = len(rows) - len(pending)
    report.skipped_done = len(done & set(pending))
    pending = {u: items for u, items in pending.items() if u not in done}
    plan = UpdatePlan(writer, rows, {}, {}, {}, report, target)
    _fill_evidence(plan, workspace, settings, features, pending)
    return plan


def _fill_evidence(plan: UpdatePlan, workspace: Workspace, settings: Settings,
                   features: ItemFeatures, pending: dict[str, list[str]]) -> None:
    if not pending:
        return
    (held, count), touched = _held_out(workspace), _touched(workspace, set(pending))
    history = split_histories(workspace, set(pending), ("train",))
    limit = settings.profiling.update_max_positives
    for user in sorted(pending):
        positives, withheld = _new_positives(pending[user], held.get(user, set()), features,
                                             limit)
        plan.report.withheld += withheld
        plan.withheld[user] = withheld
        if not positives:
            plan.advance[user] = withheld
            continue
        negatives = fresh_negatives(features, touched[user], settings.seeds.profiling, user,
                                    plan.target, count or settings.data.negatives)
        plan.evidence[user] = UserEvidence(user, history[user], [], positives[-1], negatives,
                                           z_extra=positives[:-1])
    plan.todo = sorted(plan.evidence)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _next_version(parent: dict[str, Any], target: int, positives: list[str],
                  withheld: int) -> dict[str, Any]:
    """Version columns of the row that supersedes ``parent``, with its new evidence."""
    evidence = {"since": parent["watermark"], "positives": positives, "withheld": withheld}
    return {"version": parent["version"] + 1, "parent_version": parent["version"],
            "watermark": target, "updated_at": _now(), "evidence": json.dumps(evidence)}


def advanced_rows(plan: UpdatePlan) -> list[dict[str, Any]]:
    """Rows of the users whose newer interactions were all withheld: same text, new watermark."""
    out = []
    for user, withheld in sorted(plan.advance.items()):
        parent = plan.rows[user]
        out.append({**parent, **_next_version(parent, plan.target, [], withheld),
                    "iterations": "[]",
                    "iterations_run": 0, "accepted_updates": 0, "prompt_tokens": 0,
                    "completion_tokens": 0, "seconds": 0.0,
                    "initial_profile": parent["profile"],
                    "initial_embedding": parent["embedding"],
                    "fallback": f"update: {withheld} new interaction(s), all repeats of held-out "
                                "items (withheld); profile unchanged"})
    return out


def update_batch(profiler: Profiler, plan: UpdatePlan, users: list[str], embed: Any,
                 info: dict[str, Any]) -> pa.Table:
    """Refine ``users`` from their current profiles; their new rows."""
    states = []
    for user in users:
        state = ProfileState(evidence=plan.evidence[user])
        state.profile = state.initial = plan.rows[user]["profile"]
        states.append(state)
    profiler.refine(states)
    vectors = embed.embed([s.profile for s in states])
    records = []
    for state, vector in zip(states, vectors, strict=True):
        evidence = state.evidence
        parent = plan.rows[evidence.user_id]
        positives = [*(evidence.z_extra or []), evidence.valid_positive]
        records.append({**state.record(), **info,
                        **_next_version(parent, plan.target, positives,
                                        plan.withheld.get(evidence.user_id, 0)),
                        "embedding": np.asarray(vector, np.float32).tolist(),
                        "initial_embedding": parent["embedding"]})
    return pa.Table.from_pylist(records, schema=PROFILES)


def record_updates(plan: UpdatePlan, table: pa.Table,
                   progress: Callable[[int], None] | None = None) -> None:
    """One finished batch: written as an atomic part, counted."""
    plan.writer.write(table)
    plan.report.updated += table.num_rows
    plan.report.prompt_tokens += int(pc.sum(table.column("prompt_tokens")).as_py() or 0)
    plan.report.completion_tokens += int(pc.sum(table.column("completion_tokens")).as_py() or 0)
    if progress:
        progress(table.num_rows)


def finish_updates(workspace: Workspace, plan: UpdatePlan, started: float) -> UpdateReport:
    """Superseded rows -> ``profile_history``, new rows -> ``profiles``, parts removed."""
    if plan.advance:
        plan.writer.write(pa.Table.from_pylist(advanced_rows(plan), schema=PROFILES))
        plan.report.advanced = len(plan.advance)
    new = plan.writer.read_all()
    if new is not None:
        current = current_profiles(workspace)
        _append_history(workspace, current, new)
        fresh = set(new.column("user_id").to_pylist())
        kept = current.filter(pc.invert(pc.is_in(current.column("user_id"),
                                                  value_set=pa.array(sorted(fresh)))))
        merged = pa.concat_tables([kept.select(PROFILES.names), new.select(PROFILES.names)]
                                  ).sort_by("user_id")
        workspace.write(PROFILES_TABLE, merged, watermark=plan.target)
        plan.writer.clear()
    plan.report.complete = True
    plan.report.seconds = time.perf_counter() - started
    return plan.report


def _append_history(workspace: Workspace, current: pa.Table, new: pa.Table) -> None:
    """Add the rows ``new`` supersedes (its parents still in ``current``) to the history, once
    per (user, version)."""
    parents = {u: v for u, v in zip(new.column("user_id").to_pylist(),
                                    new.column("parent_version").to_pylist(), strict=True)}
    superseded = [r for r in current.to_pylist() if parents.get(r["user_id"]) == r["version"]]
    history = with_defaults(workspace.read(HISTORY_TABLE), PROFILES) \
        if workspace.has(HISTORY_TABLE) else PROFILES.empty_table()
    have = set(zip(history.column("user_id").to_pylist(), history.column("version").to_pylist(),
                   strict=True))
    added = [r for r in superseded if (r["user_id"], r["version"]) not in have]
    if added:
        rows = pa.concat_tables([history.select(PROFILES.names),
                                 pa.Table.from_pylist(added, schema=PROFILES)])
        workspace.write(HISTORY_TABLE, rows.sort_by([("user_id", "ascending"),
                                                     ("version", "ascending")]))


def history_of(workspace: Workspace, user_id: str) -> list[dict[str, Any]]:
    """Every superseded version of ``user_id``'s profile, oldest first."""
    if not workspace.has(HISTORY_TABLE):
        return []
    table = with_defaults(workspace.read(HISTORY_TABLE), PROFILES)
    rows = table.filter(pc.equal(table.column("user_id"), user_id)).to_pylist()
    return sorted(rows, key=lambda r: r["version"])


def iterations_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(row["iterations"] or "[]")


def update_profiles(workspace: Workspace, settings: Settings, *, users: list[str] | None = None,
                    profiler: Profiler | None = None,
                    progress: Callable[[int], None] | None = None,
                    on_plan: Callable[[int], None] | None = None) -> UpdateReport:
    """Update, in this process, every profiled user (or ``users``) with newer interactions,
    ``profiling.batch_users`` at a time; the models are loaded only when someone needs them."""
    from tailormind.models.registry import load_role
    from tailormind.profiling.profiles import build_ranker, provenance

    started = time.perf_counter()
    features = ItemFeatures.load(workspace)
    plan = plan_updates(workspace, settings, features, users)
    if on_plan:
        on_plan(len(plan.todo))
    if plan.todo:
        text = profiler.text if profiler else load_role("text", settings)
        embed = load_role("embed", settings)
        profiler = profiler or Profiler(settings, features, build_ranker(
            settings, features, text=text, embed=embed, workspace=workspace), text)
        info = provenance(settings, profiler.text.model_id, embed.model_id, profiler.ranker.name)
        size = settings.profiling.batch_users
        for start in range(0, len(plan.todo), size):
            batch = plan.todo[start:start + size]
            record_updates(plan, update_batch(profiler, plan, batch, embed, info), progress)
    return finish_updates(workspace, plan, started)
