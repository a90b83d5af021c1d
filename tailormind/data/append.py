"""Append interactions to a workspace (``tailormind data append``), all or nothing.

Each FILE is read by the importer ``data import`` uses for its format, with the append's extra
checks (:mod:`tailormind.data.append_rules`: the workspace's items are known, every interaction
needs a timestamp, a duplicate (user, item, time) is an error). Every file is read and checked
before anything is written; then one :meth:`Workspace.write_many` writes:

- ``interactions`` + the appended rows; ``appended`` (:data:`~tailormind.data.appends.APPENDED`)
  + the same rows with the new append id;
- ``items`` + the items the workspace did not have. An item it has keeps the workspace's row
  (an append adds, it never edits: descriptions and profiles made from the row stay true); the
  file's row for it is ignored and counted;
- ``users`` + new users, ``tag_events`` + the new tag events (an event the workspace has is
  kept once);
- when the workspace is split: ``split`` and ``candidates`` extended without moving any
  held-out set (:mod:`tailormind.data.split_extend`), ``item_tags`` derived again for the new
  split, and the ``item_features`` rows of items whose derived tags changed removed (their
  descriptions were made from other tags);
- the manifest: ``watermark`` (the new append id, one more than the last, and its time, later
  than the last), ``appends`` (one entry per append: files and counts) and the split report.

New items (and those whose descriptions were removed) are described by the next
``tailormind profile describe``. Media files of new items are copied in before the tables are
written; a failed append can leave such a copy, which no table names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tailormind.data.append_rules import AppendRules
from tailormind.data.appends import APPENDED, APPENDED_TABLE, watermark
from tailormind.data.ingest import link_or_copy
from tailormind.data.item_tags import ITEM_TAGS, TAG_EVENTS, derive_item_tags
from tailormind.data.records import ImportBundle
from tailormind.data.split_extend import extend_split, recount
from tailormind.data.workspace import Workspace

#: Reads one FILE as an append (the importer of the chosen format, given the rules).
Reader = Callable[[Path, AppendRules], ImportBundle]
_KEYS = ["user_id", "item_id", "timestamp"]


@dataclass
class AppendReport:
    """What one append added (stored as its entry of the manifest's ``appends``)."""

    append_id: int
    appended_at: str
    files: list[str]
    format: str
    interactions: int = 0
    new_users: int = 0
    new_items: int = 0
    items_already_in_workspace: int = 0  # the file's row ignored, the workspace's kept
    tag_events: int = 0
    tag_events_already_in_workspace: int = 0
    duplicate_interactions_merged: int = 0  # the same user and item twice in one file
    dropped_dangling: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    split: dict[str, Any] | None = None  # None: the workspace is not split yet
    items_to_describe: int = 0  # items without a description (new, tags changed, never done)

    def entry(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Added:
    """The rows the files add (only what the workspace does not have)."""

    interactions: pa.Table
    items: pa.Table
    users: pa.Table
    tag_events: pa.Table | None
    media: dict[str, Path]


def read_appends(workspace: Workspace, paths: Sequence[Path], read: Reader) -> list[ImportBundle]:
    """Read and check every file (nothing is written): a file's interactions may not repeat the
    workspace's or an earlier file's (user, item, time); its items may be the workspace's, its
    own, or an earlier file's."""
    seen = workspace.read("interactions", columns=_KEYS)
    items = set(workspace.read("items", columns=["item_id"]).column("item_id").to_pylist())
    bundles = []
    for n, path in enumerate(paths):
        rules = AppendRules(str(workspace.root), frozenset(items), seen,
                            tuple(str(p) for p in paths[:n]))
        bundle = read(path, rules)
        bundles.append(bundle)
        items.update(bundle.items.column("item_id").to_pylist())
        seen = pa.concat_tables([seen, bundle.interactions.select(_KEYS)])
    return bundles


def _not_in(table: pa.Table, column: str, values: set[str]) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table.column(column),
                                           value_set=pa.array(sorted(values), pa.string()))))


def _added(workspace: Workspace, bundles: list[ImportBundle], report: AppendReport) -> _Added:
    """The new rows of every bundle, and their counts in ``report``."""
    item_ids = set(workspace.read("items", columns=["item_id"]).column("item_id").to_pylist())
    user_ids = set(workspace.read("users", columns=["user_id"]).column("user_id").to_pylist())
    items, users, media = [], [], {}
    for bundle in bundles:
        fresh = _not_in(bundle.items, "item_id", item_ids)
        if "items_without_metadata" not in bundle.report:  # the file has items of its own
            report.items_already_in_workspace += bundle.items.num_rows - fresh.num_rows
        items.append(fresh)
        item_ids.update(fresh.column("item_id").to_pylist())
        users.append(_not_in(bundle.users, "user_id", user_ids))
        user_ids.update(users[-1].column("user_id").to_pylist())
        media.update({dest: src for dest, src in bundle.media.items()
                      if not workspace.media_path(dest).exists()})
        report.duplicate_interactions_merged += bundle.report.get("duplicate_interactions_merged", 0)
        for name, n in bundle.report.get("dropped_dangling", {}).items():
            report.dropped_dangling[name] = report.dropped_dangling.get(name, 0) + n
    added = _Added(pa.concat_tables([b.interactions for b in bundles]),
                   pa.concat_tables(items), pa.concat_tables(users, promote_options="default"),
                   _new_tag_events(workspace, bundles, report), media)
    report.interactions = added.interactions.num_rows
    report.new_items, report.new_users = added.items.num_rows, added.users.num_rows
    report.media_files = len(media)
    return added


def _new_tag_events(workspace: Workspace, bundles: list[ImportBundle],
                    report: AppendReport) -> pa.Table | None:
    """The files' tag events the workspace does not have (one per item, tag and user)."""
    events = [b.tag_events for b in bundles if b.tag_events is not None]
    if not events:
        return None
    table = pa.concat_tables(events)
    have = {tuple(r.values()) for r in workspace.read(TAG_EVENTS, columns=["item_id", "tag", "user_id"])
            .to_pylist()} if workspace.has(TAG_EVENTS) else set()
    keys = zip(*(table.column(c).to_pylist() for c in ("item_id", "tag", "user_id")), strict=True)
    fresh, seen = [], set(have)
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            fresh.append(i)
    report.tag_events = len(fresh)
    report.tag_events_already_in_workspace = table.num_rows - len(fresh)
    return table.take(pa.array(fresh, pa.int64()))


def _grown(workspace: Workspace, added: _Added, append_id: int) -> dict[str, pa.Table]:
    """The imported tables and ``appended`` with the new rows."""
    rows = added.interactions
    stamped = rows.append_column("append_id", pa.array([append_id] * rows.num_rows, pa.int64()))
    old = workspace.read(APPENDED_TABLE) if workspace.has(APPENDED_TABLE) else APPENDED.empty_table()
    users = pa.concat_tables([workspace.read("users"), added.users], promote_options="default")
    tables = {
        "interactions": pa.concat_tables([workspace.read("interactions"), rows]),
        APPENDED_TABLE: pa.concat_tables([old, stamped.select(APPENDED.names).cast(APPENDED)]),
        "items": pa.concat_tables([workspace.read("items"), added.items]),
        "users": users.sort_by("user_id"),
    }
    if added.tag_events is not None:
        before = [workspace.read(TAG_EVENTS)] if workspace.has(TAG_EVENTS) else []
        tables[TAG_EVENTS] = pa.concat_tables([*before, added.tag_events])
    return tables


def _split_settings(workspace: Workspace, negatives: int, min_interactions: int,
                    seed: int) -> dict[str, int]:
    """The existing split's settings (new users must get sets like everyone's), else these."""
    report = workspace.manifest.get("split") or {}
    return {"negatives": int(report.get("negatives", negatives)),
            "min_interactions": int(report.get("min_interactions", min_interactions)),
            "seed": int(report.get("seed", seed))}


def _resplit(workspace: Workspace, tables: dict[str, pa.Table], added: _Added,
             settings: dict[str, int], report: AppendReport) -> dict[str, Any]:
    """Add the extended ``split``, ``candidates``, ``item_tags`` (and ``item_features`` when
    descriptions went stale) to ``tables``; returns the manifest's new split report."""
    items = tables["items"]
    extended = extend_split(workspace.read("split"), workspace.read("candidates"),
                            tables["interactions"], added.interactions,
                            items.column("item_id").to_pylist(), **settings)
    events = tables.get(TAG_EVENTS)
    if events is None and workspace.has(TAG_EVENTS):
        events = workspace.read(TAG_EVENTS)
    item_tags, tag_report = derive_item_tags(items.select(["item_id", "tags"]), events,
                                             extended.split)
    tables.update(split=extended.split, candidates=extended.candidates, **{ITEM_TAGS: item_tags})
    stale = _stale_descriptions(workspace, item_tags)
    report.split = extended.report | {"descriptions_removed_tags_changed": len(stale)}
    if workspace.has("item_features"):
        features = workspace.read("item_features")
        tables["item_features"] = _not_in(features, "item_id", stale)
        report.items_to_describe = items.num_rows - tables["item_features"].num_rows
    return recount(extended.split, extended.candidates,
                   {**(workspace.manifest.get("split") or {}), **settings, **tag_report})


def _stale_descriptions(workspace: Workspace, item_tags: pa.Table) -> set[str]:
    """Items the workspace had whose derived tags differ now."""
    before = workspace.read(ITEM_TAGS) if workspace.has(ITEM_TAGS) else \
        workspace.read("items", columns=["item_id", "tags"])
    now = dict(zip(item_tags.column("item_id").to_pylist(), item_tags.column("tags").to_pylist(),
                   strict=True))
    return {item for item, tags in zip(before.column("item_id").to_pylist(),
                                       before.column("tags").to_pylist(), strict=True)
            if list(tags or []) != list(now.get(item) or [])}


def next_watermark_time(previous: str | None) -> str:
    """Now (UTC, seconds), or one second after ``previous`` when the clock is not past it."""
    now = datetime.now(UTC).replace(microsecond=0)
    if previous:
        last = datetime.fromisoformat(previous)
        if now <= last:
            now = last + timedelta(seconds=1)
    return now.isoformat(timespec="seconds")


def append_files(workspace: Workspace, paths: Sequence[Path], read: Reader, *, fmt: str,
                 negatives: int = 99, min_interactions: int = 3, seed: int = 2026
                 ) -> AppendReport:
    """Append the interactions (items, users, tag events) of ``paths`` (see the module
    docstring); ``negatives``, ``min_interactions`` and ``seed`` split new users when the
    workspace's split did not record its own."""
    bundles = read_appends(workspace, paths, read)
    last = watermark(workspace)
    report = AppendReport(last.append_id + 1, next_watermark_time(last.appended_at),
                          [str(p) for p in paths], fmt)
    added = _added(workspace, bundles, report)
    tables = _grown(workspace, added, report.append_id)
    updates: dict[str, Any] = {}
    if workspace.has("split") and workspace.has("candidates"):
        settings = _split_settings(workspace, negatives, min_interactions, seed)
        updates["split"] = _resplit(workspace, tables, added, settings, report)
    else:
        report.items_to_describe = report.new_items if workspace.has("item_features") else 0
    listed = workspace.manifest.get("tables", {})
    info = {name: {k: v for k, v in listed.get(name, {}).items() if k not in ("rows", "written_at")}
            for name in tables}
    info[APPENDED_TABLE] = {"append_id": report.append_id}
    updates["watermark"] = {"append_id": report.append_id, "appended_at": report.appended_at,
                            "files": report.files, "interactions": report.interactions}
    updates["appends"] = [*workspace.manifest.get("appends", []), report.entry()]
    for dest, src in added.media.items():
        link_or_copy(src, workspace.media_path(dest))
    workspace.write_many(tables, info=info, manifest_updates=updates)
    return report
