"""What an append (``tailormind data append``) adds to an importer's checks.

An importer given :class:`AppendRules` reads its files exactly as ``data import`` does (the same
readers, parsers and one-line errors) and also:

- knows the workspace's items: an interaction or tag row may name an item of the workspace or
  of the file's own items file; any other item is unknown;
- refuses an interaction without a timestamp: the watermark orders appends in time;
- refuses the same (user, item, time) twice in the file, or once in the file and once in the
  workspace (or in an earlier file of the same append): a duplicate, not a new interaction.
  The importers' own rule still merges one (user, item) at different times within a file into
  the latest one, counted.

Each problem is a :class:`~tailormind.errors.DataError` naming file, line (or row) and column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tailormind.data.readers import RawTable
from tailormind.errors import DataError

#: "No time" in int64 epoch-second arrays (as :data:`tailormind.data.records.MISSING_TIME`).
_MISSING = np.iinfo(np.int64).min


@dataclass(frozen=True)
class AppendRules:
    """The workspace an append adds to: its items and its interactions' (user, item, time)."""

    where: str  # the workspace, as messages name it
    items: frozenset[str]
    interactions: pa.Table  # user_id, item_id, timestamp (of the workspace and earlier files)
    earlier: tuple[str, ...] = ()  # the files of the same append read before this one

    def known(self, file_items: list[str] | None) -> set[str]:
        """The items an interaction may name: the workspace's and the file's own."""
        return set(self.items) | set(file_items or ())

    def unknown(self, items_file: str | None) -> str:
        """Why an unknown item is unknown, for messages (``items_file``: "the items file X",
        None when there is none)."""
        also = f" nor in {items_file}" if items_file else ""
        return f"neither in the workspace {self.where}{also}"


def check_appended(frame: pd.DataFrame, rules: AppendRules, source: RawTable | None,
                   item_column: str, time_column: str) -> None:
    """Refuse a missing timestamp and a duplicate (user, item, time) in ``frame`` (user_id,
    item_id, timestamp as epoch seconds with ``MISSING_TIME``; one row per source row)."""

    def fail(index: int, column: str, message: str) -> DataError:
        return source.error(index, column, message) if source is not None else \
            DataError(message, column=column)

    times = frame["timestamp"].to_numpy()
    if (times == _MISSING).any():
        raise fail(int(np.argmax(times == _MISSING)), time_column,
                   "no timestamp: every appended interaction needs one")
    repeated = frame.duplicated(["user_id", "item_id", "timestamp"]).to_numpy()
    if repeated.any():
        i = int(np.argmax(repeated))
        first = int(np.argmax(_same(frame, i)))
        where = (f"{source.unit} {source.row_numbers[first]}" if source is not None
                 else f"row {first + 1}")
        raise fail(i, item_column, f"duplicate interaction: user {frame['user_id'].iat[i]!r}, "
                                   f"item {frame['item_id'].iat[i]!r} at the same time is at "
                                   f"{where} too")
    index = _in_workspace(frame, rules.interactions)
    if index is not None:
        also = f" or in {', '.join(rules.earlier)}" if rules.earlier else ""
        raise fail(index, item_column, f"duplicate interaction: user "
                                       f"{frame['user_id'].iat[index]!r}, item "
                                       f"{frame['item_id'].iat[index]!r} at this time is already "
                                       f"in the workspace {rules.where}{also}")


def _same(frame: pd.DataFrame, i: int) -> np.ndarray:
    row = frame.iloc[i]
    return ((frame["user_id"] == row["user_id"]) & (frame["item_id"] == row["item_id"])
            & (frame["timestamp"] == row["timestamp"])).to_numpy()


def _in_workspace(frame: pd.DataFrame, existing: pa.Table) -> int | None:
    """The first row of ``frame`` whose (user, item, time) ``existing`` has; None if none."""
    users = pa.array(sorted(set(frame["user_id"])), pa.string())
    existing = existing.filter(pc.is_in(existing.column("user_id"), value_set=users))
    if existing.num_rows == 0:
        return None
    have = pd.DataFrame({
        "user_id": existing.column("user_id").to_numpy(zero_copy_only=False),
        "item_id": existing.column("item_id").to_numpy(zero_copy_only=False),
        "timestamp": existing.column("timestamp").cast(pa.int64()).fill_null(_MISSING).to_numpy(),
    })
    have = have.drop_duplicates()
    rows = frame[["user_id", "item_id", "timestamp"]].reset_index(drop=True)
    rows["row"] = np.arange(len(rows))
    matched = rows.merge(have, on=["user_id", "item_id", "timestamp"], how="inner")["row"]
    return int(matched.min()) if len(matched) else None
