"""Helpers of the incremental-update tests: interactions appended to a split workspace through
the real ``data append`` path (:func:`tailormind.data.append.append_files`, table format), and
items a user never touched."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pyarrow.compute as pc

from tailormind.data.append import append_files
from tailormind.data.importers import import_table
from tailormind.data.workspace import Workspace
from tailormind.profiling.evidence import ItemFeatures


def untouched_items(ws: Workspace, user: str, count: int) -> list[str]:
    """``count`` described items ``user`` never interacted with (catalogue order)."""
    interactions = ws.read("interactions", columns=["user_id", "item_id"])
    mine = set(interactions.filter(pc.equal(interactions.column("user_id"), user))
               .column("item_id").to_pylist())
    return [i for i in ItemFeatures.load(ws).ids if i not in mine][:count]


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def append_interactions(ws: Workspace, rows: list[tuple[str, str, int]],
                        new_items: list[str] | None = None) -> int:
    """Append ``(user, item, seconds after the newest interaction)`` rows with ``data append``
    (``new_items`` come with an items file, titled "New item <id>"); the new append id."""
    newest = int(pc.max(ws.read("interactions", columns=["timestamp"]).column("timestamp"))
                 .as_py().timestamp())
    with tempfile.TemporaryDirectory() as tmp:
        log = _write_csv(Path(tmp) / "log.csv", ["user_id", "item_id", "timestamp"],
                         [[u, i, newest + s] for u, i, s in rows])
        flags = {}
        if new_items:
            flags["items"] = str(_write_csv(Path(tmp) / "items.csv", ["item_id", "title"],
                                            [[i, f"New item {i}"] for i in new_items]))
        report = append_files(ws, [log], lambda path, rules: import_table(path, append=rules, **flags),
                              fmt="table")
    return report.append_id
