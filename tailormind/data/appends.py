"""Interactions appended after the import (``tailormind data append``) and the workspace's
watermark.

Every append gets the next **append id** (1, 2, …; the import is 0) and a time; both only grow.
Its interactions go into ``interactions`` (so every stage sees the grown data) and, with their
append id, into ``appended`` (:data:`APPENDED`), which says what is newer than a given
watermark. The manifest's ``watermark`` is the last append: ``{"append_id", "appended_at",
"files", "interactions"}``.

A stage that consumed the data up to append id *w* records *w* (a profile row's ``watermark``, a
CF checkpoint's, ``cf_topk``'s); what is newer for it is ``appended`` with ``append_id > w``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tailormind.data import schemas
from tailormind.data.workspace import Workspace

APPENDED_TABLE = "appended"
#: user_id, item_id, timestamp, weight, append_id (registered with the other tables' schemas,
#: so the workspace reads and writes it conformed)
APPENDED = schemas.APPENDED


@dataclass(frozen=True)
class Watermark:
    append_id: int  # 0: nothing appended since the import
    appended_at: str | None  # ISO time of that append (None for the import)


def watermark(workspace: Workspace) -> Watermark:
    """The workspace's last append (``Watermark(0, None)`` when nothing was appended)."""
    found = workspace.manifest.get("watermark") or {}
    return Watermark(int(found.get("append_id", 0)), found.get("appended_at"))


def appended_since(workspace: Workspace, append_id: int,
                   users: list[str] | None = None) -> pa.Table:
    """The appended interactions with an append id above ``append_id`` (of ``users``), in
    append order then time."""
    if not workspace.has(APPENDED_TABLE):
        return APPENDED.empty_table()
    table = workspace.read(APPENDED_TABLE)
    keep = pc.greater(table.column("append_id"), append_id)
    if users is not None:
        wanted = pa.array(sorted(set(users)), table.column("user_id").type)
        keep = pc.and_(keep, pc.is_in(table.column("user_id"), value_set=wanted))
    return table.filter(keep).sort_by([("append_id", "ascending"), ("timestamp", "ascending")])
