"""Turn parsed columns into checked workspace tables; shared by every importer.

Checks done here, each a one-line :class:`~tailormind.errors.DataError` naming file, row, column:
duplicate item or user ids, interactions naming an unknown item, unparseable timestamps and
weights, media paths outside the data root or missing. Repeated (user, item) interactions are
merged into the latest one and counted, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tailormind.data import schemas
from tailormind.data.append_rules import AppendRules, check_appended
from tailormind.data.readers import RawTable, to_text
from tailormind.errors import DataError

#: Epoch values above this are taken as milliseconds (year 5138 in seconds).
_MS_THRESHOLD = 1e11
#: "No time" in int64 epoch-second arrays (a negative second is a real time before 1970).
MISSING_TIME = np.iinfo(np.int64).min


@dataclass
class ImportBundle:
    """Everything one importer produced, checked and ready to be written to a workspace."""

    items: pa.Table
    interactions: pa.Table
    users: pa.Table
    report: dict[str, Any] = field(default_factory=dict)
    #: workspace-relative destination -> source file, copied into the workspace on save
    media: dict[str, Path] = field(default_factory=dict)
    #: tags with the user who applied them (``schemas.TAG_EVENTS``); None when the source has none
    tag_events: pa.Table | None = None


def unique_ids(ids: Sequence[str], source: RawTable | None, column: str, what: str) -> None:
    """Raise on the first repeated id, naming both rows."""
    first_seen: dict[str, int] = {}
    for i, value in enumerate(ids):
        if value in first_seen:
            where = source.row_numbers[first_seen[value]] if source is not None else first_seen[value]
            unit = source.unit if source is not None else "row"
            message = f"duplicate {what} id {value!r} (first at {unit} {where})"
            if source is not None:
                raise source.error(i, column, message)
            raise DataError(message, column=column)
        first_seen[value] = i


def split_list(value: Any, sep: str | None) -> list[str]:
    """A list cell: a real list (JSONL/Parquet), or text split by ``sep``; empties dropped."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [to_text(v) for v in value]
    else:
        text = to_text(value)
        if not text:
            return []
        parts = [p.strip() for p in text.split(sep)] if sep else [text]
    seen: dict[str, None] = {}
    for part in parts:
        if part:
            seen.setdefault(part, None)
    return list(seen)


def parse_timestamps(values: Sequence[Any], source: RawTable | None, column: str) -> np.ndarray:
    """Epoch seconds (int64; :data:`MISSING_TIME` = missing) from epoch s/ms numbers or ISO-8601
    strings; times before 1970 are negative and kept."""
    texts = pd.Series([to_text(v) for v in values], dtype=object)
    numeric = pd.to_numeric(texts, errors="coerce")
    out = np.full(len(texts), MISSING_TIME, dtype=np.int64)
    is_num = numeric.notna().to_numpy()
    nums = numeric.to_numpy(dtype=float)
    nums = np.where(np.abs(nums) > _MS_THRESHOLD, nums / 1000.0, nums)
    out[is_num] = np.floor(nums[is_num]).astype(np.int64)
    rest = (~is_num) & (texts != "").to_numpy()
    if rest.any():
        parsed = pd.to_datetime(texts[rest], errors="coerce", utc=True, format="ISO8601")
        bad = parsed.isna().to_numpy()
        if bad.any():
            index = int(np.flatnonzero(rest)[np.argmax(bad)])
            message = f"cannot parse timestamp {texts[index]!r} (epoch seconds/ms or ISO-8601)"
            if source is not None:
                raise source.error(index, column, message)
            raise DataError(message, column=column)
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        out[rest] = seconds.to_numpy(dtype=np.int64)
    return out


def parse_weights(values: Sequence[Any], source: RawTable | None, column: str) -> np.ndarray:
    """Finite float weights; an empty cell means 1.0."""
    texts = [to_text(v) for v in values]
    out = np.ones(len(texts), dtype=np.float32)
    for i, text in enumerate(texts):
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            message = f"weight {text!r} is not a finite number"
            if source is not None:
                raise source.error(i, column, message)
            raise DataError(message, column=column)
        out[i] = value
    return out


def _timestamp_array(seconds: np.ndarray) -> pa.Array:
    mask = seconds == MISSING_TIME if seconds.dtype.kind == "i" else None
    return pa.array(seconds, type=pa.int64(), mask=mask).cast(schemas.TIMESTAMP)


def items_table(
    item_ids: Sequence[str],
    *,
    titles: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    tags: Sequence[list[str]] | None = None,
    image_paths: Sequence[list[str]] | None = None,
    video_paths: Sequence[list[str]] | None = None,
    platform: str | Sequence[str] | None = None,
    created_at: np.ndarray | None = None,
    source: RawTable | None = None,
    id_column: str = "item_id",
) -> pa.Table:
    """The ``items`` table; raises on a duplicate id (naming both rows)."""
    unique_ids(item_ids, source, id_column, "item")
    n = len(item_ids)
    empty_lists: list[list[str]] = [[] for _ in range(n)]
    platforms = [platform] * n if platform is None or isinstance(platform, str) else list(platform)
    created = _timestamp_array(
        created_at if created_at is not None else np.full(n, MISSING_TIME, dtype=np.int64)
    )
    columns = {
        "item_id": pa.array(item_ids, pa.string()),
        "title": pa.array(titles if titles is not None else [""] * n, pa.string()),
        "text": pa.array(texts if texts is not None else [""] * n, pa.string()),
        "tags": pa.array(tags if tags is not None else empty_lists, pa.list_(pa.string())),
        "image_paths": pa.array(image_paths or empty_lists, pa.list_(pa.string())),
        "video_paths": pa.array(video_paths or empty_lists, pa.list_(pa.string())),
        "platform": pa.array(platforms, pa.string()),
        "created_at": created,
    }
    return pa.Table.from_pydict(columns, schema=schemas.ITEMS)


def tag_events_table(
    item_ids: Sequence[str],
    tags: Sequence[str],
    user_ids: Sequence[str],
    *,
    timestamps: np.ndarray | None = None,
) -> pa.Table:
    """The ``tag_events`` table: one row per (item, tag, user) application, in source order.

    Repeated applications of the same tag by the same user to the same item keep the first one."""
    ts = timestamps if timestamps is not None else np.full(len(item_ids), MISSING_TIME, dtype=np.int64)
    frame = pd.DataFrame({"item_id": pd.Series(item_ids, dtype=object),
                          "tag": pd.Series(tags, dtype=object),
                          "user_id": pd.Series(user_ids, dtype=object), "timestamp": ts})
    frame = frame.drop_duplicates(["item_id", "tag", "user_id"], keep="first")
    return pa.Table.from_pydict({
        "item_id": pa.array(frame["item_id"].tolist(), pa.string()),
        "tag": pa.array(frame["tag"].tolist(), pa.string()),
        "user_id": pa.array(frame["user_id"].tolist(), pa.string()),
        "timestamp": _timestamp_array(frame["timestamp"].to_numpy(dtype=np.int64)),
    }, schema=schemas.TAG_EVENTS)


def interactions_table(
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    *,
    timestamps: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    known_items: set[str] | None = None,
    source: RawTable | None = None,
    item_column: str = "item_id",
    report: dict[str, Any] | None = None,
    append: AppendRules | None = None,
    time_column: str = "timestamp",
) -> pa.Table:
    """The ``interactions`` table, sorted by (user, time).

    Repeated (user, item) pairs keep the latest interaction (by timestamp, then file order) and
    are counted in ``report["duplicate_interactions_merged"]``. With ``append`` (``data
    append``), a missing timestamp or a duplicate (user, item, time) is an error
    (:mod:`tailormind.data.append_rules`); ``time_column`` names the time in those errors.
    """
    n = len(user_ids)
    if n == 0:
        raise DataError("no interactions", file=source.path if source else None)
    if append is not None and timestamps is None:
        raise DataError("no timestamp column: every appended interaction needs a timestamp",
                        file=source.path if source else None)
    if known_items is not None:
        why = append.unknown("the items file") if append is not None else "not in the items file"
        for i, item in enumerate(item_ids):
            if item not in known_items:
                message = f"interaction names unknown item {item!r} ({why})"
                if source is not None:
                    raise source.error(i, item_column, message)
                raise DataError(message, column=item_column)
    ts = timestamps if timestamps is not None else np.full(n, MISSING_TIME, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids, dtype=object),
            "item_id": pd.Series(item_ids, dtype=object),
            "timestamp": ts,
            "weight": weights if weights is not None else np.ones(n, dtype=np.float32),
            "order": np.arange(n),
        }
    )
    if append is not None:
        check_appended(frame, append, source, item_column, time_column)
    frame = frame.sort_values(["user_id", "timestamp", "order"], kind="stable")
    deduped = frame.drop_duplicates(["user_id", "item_id"], keep="last")
    if report is not None:
        report["duplicate_interactions_merged"] = int(n - len(deduped))
        report["interactions_without_timestamp"] = int((deduped["timestamp"] == MISSING_TIME).sum())
    columns = {
        "user_id": pa.array(deduped["user_id"].tolist(), pa.string()),
        "item_id": pa.array(deduped["item_id"].tolist(), pa.string()),
        "timestamp": _timestamp_array(deduped["timestamp"].to_numpy(dtype=np.int64)),
        "weight": pa.array(deduped["weight"].to_numpy(dtype=np.float32), pa.float32()),
    }
    return pa.Table.from_pydict(columns, schema=schemas.INTERACTIONS)


def rated_interactions(
    raw: RawTable,
    *,
    user: str,
    item: str,
    rating: str,
    timestamp: str,
    known_items: set[str],
    report: dict[str, Any],
    append: AppendRules | None = None,
) -> pa.Table:
    """Interactions of a MovieLens-style ratings file: weight = the rating."""
    return interactions_table(
        raw.strings(user),
        raw.strings(item),
        timestamps=parse_timestamps(raw.require(timestamp), raw, timestamp),
        weights=parse_weights(raw.require(rating), raw, rating),
        known_items=known_items,
        source=raw,
        item_column=item,
        report=report,
        append=append,
        time_column=timestamp,
    )


def users_table(
    interaction_users: Sequence[str],
    *,
    attributes: pd.DataFrame | None = None,
    source: RawTable | None = None,
    id_column: str = "user_id",
    report: dict[str, Any] | None = None,
) -> pa.Table:
    """The ``users`` table: every user in the users file plus every user who interacted.

    ``attributes`` has a ``user_id`` column and any attribute columns (kept as strings).
    """
    seen = list(dict.fromkeys(interaction_users))
    if attributes is None or attributes.empty:
        return pa.Table.from_pydict({"user_id": pa.array(sorted(seen), pa.string())})
    ids = [to_text(v) for v in attributes["user_id"]]
    unique_ids(ids, source, id_column, "user")
    attributes = attributes.assign(user_id=ids)
    missing = sorted(set(seen) - set(ids))
    if report is not None:
        report["users_without_attributes"] = len(missing)
        report["users_without_interactions"] = len(set(ids) - set(seen))
    extra = pd.DataFrame({"user_id": missing})
    frame = pd.concat([attributes, extra], ignore_index=True).sort_values("user_id", kind="stable")
    frame = frame.astype(object).where(frame.notna(), None)
    table = pa.Table.from_pydict(
        {c: pa.array([None if v is None else to_text(v) for v in frame[c]], pa.string()) for c in frame}
    )
    return schemas.conform(table, schemas.USERS)


def media_paths(
    values: Sequence[Any],
    data_root: Path,
    list_sep: str | None,
    source: RawTable | None,
    column: str,
    media: dict[str, Path],
) -> list[list[str]]:
    """Resolve media cells against ``data_root``; record copies into ``media``.

    Returns workspace-relative paths (``media/<path under the data root>``). A path that leaves the
    data root, or a file that does not exist, is an error naming its row.
    """
    root = data_root.resolve()
    out: list[list[str]] = []
    for i, value in enumerate(values):
        row: list[str] = []
        for entry in split_list(value, list_sep):
            candidate = (root / entry).resolve()
            if not candidate.is_relative_to(root):
                message = f"media path {entry!r} is outside the data root {root}"
                raise source.error(i, column, message) if source else DataError(message)
            if not candidate.is_file():
                message = f"media file {entry!r} does not exist under {root}"
                raise source.error(i, column, message) if source else DataError(message)
            dest = (Path("media") / candidate.relative_to(root)).as_posix()
            media[dest] = candidate
            row.append(dest)
        out.append(row)
    return out
