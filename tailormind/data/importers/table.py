"""Generic importer for any platform's logs: a column mapping instead of code.

Files may be CSV, TSV, JSONL or Parquet. The mapping comes from a small YAML file, from CLI flags,
or both (flags win)::

    interactions: {path: clicks.csv, user: uid, item: note_id, timestamp: ts, weight: dwell}
    items: {path: notes.jsonl, item: id, title: title, text: body, tags: topics,
            image_paths: images, video_paths: videos, created_at: published}
    item_tags: {path: note_tags.tsv, item: note_id, tag: tag}   # optional
    users: {path: users.parquet, user: uid}                    # optional, other columns kept
    sep: ","          # delimited files (TSV defaults to tab)
    encoding: utf-8
    list_sep: "|"     # list cells in delimited files
    platform: rednote
    data_root: media/ # media paths are relative to this (default: the items file's directory)
    on_dangling: error  # or drop: skip, and count, rows naming unknown items or missing lookup ids

A public data set needs no glue either; HetRec 2011 Last.fm (tab-separated ``.dat`` files, tag
names in a Latin-1 file keyed by tag id, tag rows with the tagging user and a date)::

    interactions: {path: user_artists.dat, format: tsv, user: userID, item: artistID, weight: weight}
    items: {path: artists.dat, format: tsv, item: id, title: name}
    item_tags:
      path: user_taggedartists.dat
      format: tsv
      item: artistID
      user: userID                                 # rows become tag events: who applied the tag
      date: {year: year, month: month, day: day}   # or timestamp: <column> (epoch s/ms, ISO-8601)
      tag: {lookup: {path: tags.dat, format: tsv, key: tagID, value: tagValue, encoding: latin-1}}
    on_dangling: drop

Every file section, and every lookup, may set its own ``format`` (csv, tsv, jsonl, parquet),
``sep`` and ``encoding``; they win over the top-level ``sep`` and ``encoding`` (``format: tsv``
means a tab unless the file's own ``sep`` says otherwise). A file whose suffix does not fix the
separator (``.dat``, ``.txt``, ...), read without any ``format`` or ``sep``, is tab-separated when
its header has a tab and no comma, else comma-separated.

A column left unset is taken from a column of the canonical name when the file has one
(``timestamp``, ``weight``, ``title``, ...). Without timestamps the split orders each user's
interactions in a seeded random order, and ``data stats`` says so. ``interactions`` and
``item_tags`` may give the time as ``date: {year, month, day[, hour, minute, second]}`` (UTC)
columns instead of ``timestamp``.

``item_tags``: ``item``, ``tag`` and ``user`` are each a column name or ``{column: C, lookup:
{path, key, value[, format, sep, encoding]}}``, which replaces each id in column ``C`` (default:
the lookup's ``key``) by the ``value`` of the lookup file's row whose ``key`` is that id. Without
``user`` the tags are provenance-free and merged into ``items.tags``; with ``user`` (never guessed)
each row is a tag event (``tag_events``: item, tag, user, time) and stays out of ``items.tags``.

Dangling rows -- an interaction or tag row naming an item that is not in the items file (without an
items file: that no interaction names), or an id a lookup file lacks -- are a one-line error naming
file, row and column (``on_dangling: error``, the default), or are dropped and counted per file
name in the report's ``dropped_dangling`` (and, by reason, ``dropped_dangling_reasons``).

Appended (``append``: :mod:`tailormind.data.append_rules`), the workspace's items are known too:
an interaction or tag row may name them, with or without an items file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from tailormind.data.append_rules import AppendRules
from tailormind.data.readers import RawTable, read_file, to_text
from tailormind.data.records import (
    ImportBundle,
    interactions_table,
    items_table,
    media_paths,
    MISSING_TIME,
    parse_timestamps,
    parse_weights,
    split_list,
    tag_events_table,
    unique_ids,
    users_table,
)
from tailormind.data.importers.table_spec import (
    ENCODING_HINT,
    ColumnRef,
    DateSpec,
    FileSpec,
    LookupSpec,
    TableSpec,
    load_spec,
)
from tailormind.errors import DataError

T = TypeVar("T")

def _read(spec: TableSpec, file: FileSpec) -> RawTable:
    sep = file.sep if file.sep is not None else (None if file.format == "tsv" else spec.sep)
    return read_file(file.path, fmt=file.format, sep=sep, encoding=file.encoding or spec.encoding,
                     encoding_hint=ENCODING_HINT)


def _column(raw: RawTable, explicit: str | None, canonical: str) -> str | None:
    """The explicit column (must exist), else the canonical name when present, else None."""
    if explicit is not None:
        raw.require(explicit)
        return explicit
    return canonical if canonical in raw.columns else None


@dataclass
class _Dangling:
    """The ``on_dangling`` policy and the rows it dropped, per file name and reason."""

    mode: str
    dropped: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, file: Path, reason: str, n: int) -> None:
        self.dropped[file.name] = self.dropped.get(file.name, 0) + n
        by_reason = self.reasons.setdefault(file.name, {})
        by_reason[reason] = by_reason.get(reason, 0) + n

    def write(self, report: dict[str, Any]) -> None:
        report["on_dangling"] = self.mode
        report["dropped_dangling"] = dict(self.dropped)
        report["dropped_dangling_reasons"] = {k: dict(v) for k, v in self.reasons.items()}


class _Rows:
    """The rows of one file that the ``on_dangling`` policy keeps."""

    def __init__(self, raw: RawTable, policy: _Dangling) -> None:
        self.raw = raw
        self.policy = policy
        self.dropped = np.zeros(len(raw), dtype=bool)

    def reject(self, bad: np.ndarray, column: str, reason: str, message: Callable[[int], str]) -> None:
        """Rows where ``bad``: the first is an error (``error``), or all are dropped and counted
        once each (``drop``; rows already dropped for another reason are not counted again)."""
        bad = bad & ~self.dropped
        if not bad.any():
            return
        if self.policy.mode == "error":
            i = int(np.argmax(bad))
            raise self.raw.error(i, column, f"{message(i)}; on_dangling: drop (--on-dangling drop) "
                                            f"skips and counts such rows")
        self.dropped |= bad
        self.policy.count(self.raw.path, reason, int(bad.sum()))

    def keep(self, values: Sequence[T]) -> list[T]:
        return [v for v, dropped in zip(values, self.dropped, strict=True) if not dropped]

    def keep_array(self, values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[~self.dropped]

    def kept_source(self) -> RawTable:
        """The file restricted to the kept rows (their errors name their own lines)."""
        if not self.dropped.any():
            return self.raw
        kept = np.flatnonzero(~self.dropped)
        return RawTable(self.raw.path, self.raw.frame.iloc[kept].reset_index(drop=True),
                        self.raw.unit, [self.raw.row_numbers[i] for i in kept])


def _mask(values: Sequence[str], bad: Callable[[str], bool]) -> np.ndarray:
    return np.fromiter((bad(v) for v in values), dtype=bool, count=len(values))


def _lookup(spec: TableSpec, lookup: LookupSpec, where: str) -> dict[str, str]:
    """The lookup file as id -> value; a repeated id is an error naming both rows."""
    if not lookup.path.is_file():
        raise DataError(f"lookup file of {where} does not exist", file=lookup.path)
    raw = _read(spec, lookup)
    keys = raw.strings(lookup.key, "lookup key")
    values = raw.strings(lookup.value, "lookup value", allow_empty=True)
    unique_ids(keys, raw, lookup.key, "lookup key")
    return dict(zip(keys, values, strict=True))


def _ids(spec: TableSpec, raw: RawTable, ref: ColumnRef, role: str, where: str, rows: _Rows,
         *, allow_empty: bool = False) -> list[str]:
    """The ids in ``ref``'s column, through its lookup when it has one. An id the lookup lacks is
    dangling (its row goes to ``rows``, value ``""``); one it maps to ``""`` is an error unless
    ``allow_empty``."""
    ids = raw.strings(ref.name, role, allow_empty=allow_empty)
    if ref.lookup is None:
        return ids
    table = _lookup(spec, ref.lookup, where)
    name, key = ref.lookup.path.name, ref.lookup.key
    rows.reject(_mask(ids, lambda v: bool(v) and v not in table), ref.name, f"{ref.name} not in {name}",
                lambda i: f"{role} {ids[i]!r} is not in lookup file {name} (column '{key}')")
    values = [table.get(v, "") for v in ids]
    if not allow_empty:
        for i, value in enumerate(values):
            if not value and not rows.dropped[i]:
                raise raw.error(i, ref.name, f"lookup file {name} maps {role} {ids[i]!r} to an empty value")
    return values


_DATE_UNITS = {"year": (1, 9999), "month": (1, 12), "day": (1, 31),
               "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}


def _date_parts(raw: RawTable, date: DateSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(rows with any date cell set, unit -> whole numbers); a bad cell is an error naming it."""
    cells = {u: [to_text(v) for v in raw.require(c, f"date {u}")]
             for u in _DATE_UNITS if (c := getattr(date, u)) is not None}
    present = np.zeros(len(raw), dtype=bool)
    for texts in cells.values():
        present |= _mask(texts, bool)
    parts: dict[str, np.ndarray] = {}
    for unit, texts in cells.items():
        low, high = _DATE_UNITS[unit]
        numbers = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ok = (numbers == np.floor(numbers)) & (numbers >= low) & (numbers <= high)
        bad = present & ~ok
        if bad.any():
            i = int(np.argmax(bad))
            message = (f"empty date {unit} (other date cells of the row are set)" if not texts[i]
                       else f"date {unit} {texts[i]!r} is not a whole number from {low} to {high}")
            raise raw.error(i, getattr(date, unit), message)
        parts[unit] = np.where(present, numbers, low if unit in ("year", "month", "day") else 0)
    parts["year"] = np.where(present, parts["year"], 1970)
    return present, {u: p.astype(np.int64) for u, p in parts.items()}


def parse_dates(raw: RawTable, date: DateSpec) -> np.ndarray:
    """Epoch seconds (int64, UTC; ``MISSING_TIME`` where every date cell is empty) from split date columns.

    A row with some date cells empty, a cell that is not a whole number in its unit's range, or a
    day the month lacks (30 February) is an error naming the row and column."""
    present, parts = _date_parts(raw, date)
    months = ((parts["year"] - 1970) * 12 + parts["month"] - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (parts["day"] - 1).astype("timedelta64[D]")
    overflow = present & (days.astype("datetime64[M]") != months)
    if overflow.any():
        i = int(np.argmax(overflow))
        raise raw.error(i, date.day, f"day {parts['day'][i]} does not exist in "
                                     f"{parts['year'][i]:04d}-{parts['month'][i]:02d}")
    seconds = days.astype("datetime64[s]").astype(np.int64)
    for unit, factor in (("hour", 3600), ("minute", 60), ("second", 1)):
        if unit in parts:
            seconds = seconds + parts[unit] * factor
    return np.where(present, seconds, MISSING_TIME)


def _times(raw: RawTable, column: str | None, date: DateSpec | None, *,
           canonical: bool = True) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Epoch seconds from ``date`` or the timestamp column (the canonical one when ``canonical``),
    and the columns used, for the report."""
    if date is not None:
        return parse_dates(raw, date), {"date": date.model_dump(exclude_none=True)}
    col = _column(raw, column, "timestamp") if column is not None or canonical else None
    return (parse_timestamps(raw.require(col), raw, col) if col else None), {"timestamp": col}


def _interactions(spec: TableSpec, known: set[str] | None, policy: _Dangling,
                  report: dict[str, Any], append: AppendRules | None = None
                  ) -> tuple[pa.Table, list[str], list[str]]:
    """The interactions table and the user and item ids of its kept rows, in file order; with
    ``known``, a row naming another item is dangling."""
    ic = spec.interactions
    raw = _read(spec, ic)
    user_ids = raw.strings(ic.user, "user id")
    item_ids = raw.strings(ic.item, "item id")
    timestamps, time_cols = _times(raw, ic.timestamp, ic.date)
    w_col = _column(raw, ic.weight, "weight")
    weights = parse_weights(raw.require(w_col), raw, w_col) if w_col else None
    report["columns"] = {"user": ic.user, "item": ic.item, **time_cols, "weight": w_col}
    rows = _Rows(raw, policy)
    if known is not None:
        items_file = f"the items file {spec.items.path.name}" if spec.items else None
        why = append.unknown(items_file) if append is not None else f"not in {items_file}"
        rows.reject(_mask(item_ids, lambda v: v not in known), ic.item, "unknown item",
                    lambda i: f"interaction names unknown item {item_ids[i]!r} ({why})")
    user_ids, item_ids = rows.keep(user_ids), rows.keep(item_ids)
    if not user_ids:
        raise DataError("no interactions left: every row names an unknown item", file=raw.path)
    time_column = time_cols.get("timestamp") or (ic.date.year if ic.date else "timestamp")
    table = interactions_table(user_ids, item_ids, timestamps=rows.keep_array(timestamps),
                               weights=rows.keep_array(weights), source=rows.kept_source(),
                               item_column=ic.item, report=report, append=append,
                               time_column=time_column)
    return table, user_ids, item_ids


def _item_tags(spec: TableSpec, known: set[str], known_where: str, policy: _Dangling,
               report: dict[str, Any]) -> tuple[dict[str, list[str]], pa.Table | None]:
    """Provenance-free tags by item (no ``user`` column), or the tag events table (``user``).

    Rows naming an item not in ``known``, or an id a lookup lacks, are dangling; empty tags are
    skipped."""
    s = spec.item_tags
    assert s is not None
    raw = _read(spec, s)
    rows = _Rows(raw, policy)
    items = _ids(spec, raw, s.item, "item id", "item_tags.item", rows)
    tags = _ids(spec, raw, s.tag, "tag", "item_tags.tag", rows, allow_empty=True)
    users = _ids(spec, raw, s.user, "user id", "item_tags.user", rows) if s.user else None
    times, time_cols = _times(raw, s.timestamp, s.date, canonical=users is not None)
    rows.reject(_mask(items, lambda v: bool(v) and v not in known), s.item.name, "unknown item",
                lambda i: f"tag row names unknown item {items[i]!r} ({known_where})")
    report["columns_item_tags"] = {"item": s.item.name, "tag": s.tag.name,
                                   "user": s.user.name if s.user else None, **time_cols}
    rows.dropped |= ~_mask(tags, bool)  # empty tags: nothing to record, not dangling
    items, tags = rows.keep(items), rows.keep(tags)
    if users is None:
        tags_by_item: dict[str, list[str]] = {}
        for item, tag in zip(items, tags, strict=True):
            if tag not in tags_by_item.setdefault(item, []):
                tags_by_item[item].append(tag)
        return tags_by_item, None
    events = tag_events_table(items, tags, rows.keep(users), timestamps=rows.keep_array(times))
    report["tag_events"] = events.num_rows
    report["duplicate_tag_events_merged"] = len(items) - events.num_rows
    return {}, events


def _items(spec: TableSpec, raw: RawTable, ids: list[str], tags_by_item: dict[str, list[str]],
           media: dict[str, Path], report: dict[str, Any]) -> pa.Table:
    """The items table from the items file, its tags extended by the item-tag file's."""
    s = spec.items
    assert s is not None
    data_root = spec.data_root or s.path.parent
    cols = {k: _column(raw, getattr(s, k), k) for k in
            ("title", "text", "tags", "image_paths", "video_paths", "platform", "created_at")}

    def values(key: str) -> list[Any] | None:
        return raw.require(cols[key]) if cols[key] else None  # type: ignore[arg-type]

    def texts(key: str) -> list[str] | None:
        return raw.strings(cols[key], allow_empty=True) if cols[key] else None  # type: ignore[arg-type]

    tag_cells = values("tags")
    item_tags = [split_list(c, spec.list_sep) for c in tag_cells] if tag_cells else [[] for _ in ids]
    for i, item in enumerate(ids):
        item_tags[i] += [t for t in tags_by_item.get(item, []) if t not in item_tags[i]]
    images, videos, created = values("image_paths"), values("video_paths"), values("created_at")
    report["columns_items"] = {k: v for k, v in cols.items() if v}
    return items_table(
        ids,
        titles=texts("title"),
        texts=texts("text"),
        tags=item_tags,
        image_paths=media_paths(images, data_root, spec.list_sep, raw,
                                cols["image_paths"] or "", media) if images else None,
        video_paths=media_paths(videos, data_root, spec.list_sep, raw,
                                cols["video_paths"] or "", media) if videos else None,
        platform=texts("platform") or spec.platform,
        created_at=parse_timestamps(created, raw, cols["created_at"] or "") if created else None,
        source=raw,
        id_column=s.item,
    )


def import_table(path: str | Path, *, append: AppendRules | None = None,
                 **overrides: Any) -> ImportBundle:
    """Import interactions (+ items, item tags or tag events, users) described by ``path`` and
    flag overrides (:data:`FLAG_KEYS`); see the module docstring for the mapping. ``append``: as
    an append to a workspace."""
    spec = load_spec(path, overrides)
    report: dict[str, Any] = {"format": "table", "source": str(Path(path))}
    media: dict[str, Path] = {}
    policy = _Dangling(spec.on_dangling)
    items_raw = _read(spec, spec.items) if spec.items is not None else None
    item_ids = items_raw.strings(spec.items.item, "item id") if items_raw and spec.items else None
    known = set(item_ids) if item_ids is not None else None
    if append is not None:
        known = append.known(item_ids)
    interactions, user_ids, interaction_items = _interactions(spec, known, policy, report, append)
    tags_by_item: dict[str, list[str]] = {}
    tag_events = None
    if spec.item_tags is not None:
        tag_known, where = _tag_known(spec, known, interaction_items, append)
        tags_by_item, tag_events = _item_tags(spec, tag_known, where, policy, report)
    if items_raw is not None and item_ids is not None:
        items = _items(spec, items_raw, item_ids, tags_by_item, media, report)
    else:
        ids = list(dict.fromkeys(interaction_items))
        items = items_table(ids, titles=ids, tags=[tags_by_item.get(i, []) for i in ids],
                            platform=spec.platform)
        report["items_without_metadata"] = len(ids)
    users = _users(spec, user_ids, report)
    if tag_events is not None:
        report["tag_event_users_without_interactions"] = len(
            set(tag_events.column("user_id").to_pylist()) - set(user_ids))
    policy.write(report)
    report["media_files"] = len(media)
    return ImportBundle(items, interactions, users, report, media, tag_events=tag_events)


def _tag_known(spec: TableSpec, known: set[str] | None, interaction_items: list[str],
               append: AppendRules | None) -> tuple[set[str], str]:
    """The items a tag row may name, and why another one is unknown (for its message)."""
    items_file = f"the items file {spec.items.path.name}" if spec.items else None
    if append is not None:
        return (known or set()) | set(interaction_items), append.unknown(items_file)
    if spec.items is None:
        return set(interaction_items), "no interaction names it and there is no items file"
    return known or set(), f"not in {items_file}"


def _users(spec: TableSpec, user_ids: list[str], report: dict[str, Any]) -> pa.Table:
    attributes: pd.DataFrame | None = None
    users_raw = None
    if spec.users is not None:
        users_raw = _read(spec, spec.users)
        users_raw.require(spec.users.user, "user id")
        attributes = users_raw.frame.rename(columns={spec.users.user: "user_id"})
    return users_table(user_ids, attributes=attributes, source=users_raw,
                       id_column=spec.users.user if spec.users else "user_id", report=report)
