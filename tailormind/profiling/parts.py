"""Resumable stage output: Parquet parts written atomically, then consolidated into one table.

A long stage (describe every item, profile every user) writes each finished batch as
``<workspace>/parts/<table>/part-<n>.parquet`` (staged under a temporary name, then renamed), so a
crash or a SIGKILL loses at most the batch in flight. A re-run reads the keys already written
and skips them. ``consolidate()`` writes the workspace table from all parts (one row per key; a
key written twice, e.g. by a worker that was retried, keeps its last row) and removes the parts.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tailormind.core.atomic import write_table_atomic
from tailormind.data.workspace import Workspace
from tailormind.errors import CorruptFileError

PARTS_DIR = "parts"


class PartWriter:
    """Parts of table ``name`` keyed by column ``key`` inside ``workspace``."""

    def __init__(self, workspace: Workspace, name: str, key: str) -> None:
        self.workspace = workspace
        self.name = name
        self.key = key
        self.directory = workspace.root / PARTS_DIR / name

    def parts(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("part-*.parquet") if p.is_file())

    def done(self) -> set[str]:
        """Keys already written by earlier (possibly interrupted) runs."""
        keys: set[str] = set()
        for part in self.parts():
            keys.update(_read_part(part, [self.key]).column(self.key).to_pylist())
        return keys

    def write(self, table: pa.Table) -> Path:
        """Write one batch atomically; returns the part's path."""
        final = self.directory / f"part-{uuid.uuid4().hex}.parquet"
        write_table_atomic(final, table, compression="zstd")
        return final

    def read_all(self) -> pa.Table | None:
        """Every row of every part, the last row per key kept; None when nothing was written."""
        tables = [_read_part(p) for p in self.parts()]
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default")
        keys = table.column(self.key).to_pylist()
        last = {k: i for i, k in enumerate(keys)}
        if len(last) != len(keys):
            table = table.take(pa.array(sorted(last.values())))
        return table.sort_by(self.key)

    def consolidate(self, **info: object) -> pa.Table:
        """Write the workspace table from the parts, then delete the parts."""
        table = self.read_all()
        if table is None:
            raise ValueError(f"no parts of {self.name!r} to consolidate")
        self.workspace.write(self.name, table, **info)
        self.clear()
        return table

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One part; a damaged one is a :class:`CorruptFileError` (parts are written atomically, so
    this is a disk fault or a hand edit), never a batch quietly dropped."""
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise CorruptFileError(f"{path}: corrupt part ({exc}); delete it to redo its batch"
                               ) from None


def keys_in(table: pa.Table, key: str, keep: set[str]) -> pa.Table:
    """Rows of ``table`` whose ``key`` is in ``keep``."""
    return table.filter(pc.is_in(table.column(key), value_set=pa.array(sorted(keep), pa.string())))
