"""A workspace: one directory of Parquet tables and media files, plus a ``workspace.json`` manifest.

Writes are atomic and durable (:mod:`tailormind.core.atomic`): a table is written to a temporary
name in the same directory, flushed and renamed over the final name, so a crash leaves either the
old table or the new one, never half of one. The manifest is rewritten (atomically) last, so it
only ever lists tables that are complete. A manifest or table that exists but does not read is a
:class:`~tailormind.errors.CorruptFileError`, never "no workspace" or "no such table".
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tailormind.core.vocabulary import MANIFEST
from tailormind.data import schemas
from tailormind.core.atomic import (
    ensure_dir,
    read_json_record,
    write_json_atomic,
    write_tables_atomic,
)
from tailormind.errors import CorruptFileError, WorkspaceError

FORMAT = "tailormind-workspace"
VERSION = 1
#: Tables an import writes; anything else is derived and removed when the import is replaced.
#: ``tag_events`` is written only by sources that say who applied a tag; ``appended`` (source
#: data too, so a new split keeps it) only by ``data append``.
IMPORTED_TABLES = ("items", "interactions", "users", "tag_events", "appended")
#: Derived from the items and the split's item-tag relation: a new split keeps them only while
#: that relation is unchanged (``data/split.py``).
TAG_DEPENDENT = ("item_features",)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Workspace:
    """Tables of one data set and every stage's outputs. Open with :meth:`open` or :meth:`create`."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        """Open an existing workspace; a clear error when ``root`` is not one."""
        root = Path(root)
        path = root / MANIFEST
        if not root.is_dir():
            raise WorkspaceError(f"{root} is not a workspace (no such directory); create one with "
                                 "`tailormind data import ... --workspace {root}`")
        if not path.is_file():
            raise WorkspaceError(f"{root} is not a workspace (no {MANIFEST}); create one with "
                                 f"`tailormind data import ... --workspace {root}`")
        manifest = read_json_record(path, "manifest")
        if manifest is None:  # removed between the two looks
            raise WorkspaceError(f"{root} is not a workspace (no {MANIFEST})")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise WorkspaceError(f"{path}: not a TailorMind workspace manifest")
        if manifest.get("version") != VERSION:
            raise WorkspaceError(
                f"{path}: workspace version {manifest.get('version')} is not supported "
                f"(this TailorMind reads version {VERSION})"
            )
        return cls(root, manifest)

    @classmethod
    def create(cls, root: str | Path, *, overwrite: bool = False) -> Workspace:
        """A new, empty workspace at ``root``.

        An existing workspace is only replaced with ``overwrite``, and then only the files its
        manifest lists are removed; a non-empty directory that is not a workspace is refused.
        """
        root = Path(root)
        if (root / MANIFEST).exists():
            if not overwrite:
                raise WorkspaceError(
                    f"{root} already holds a workspace; pass --overwrite to replace it"
                )
            cls.open(root).clear()
        elif root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise WorkspaceError(f"{root} exists and is not an empty directory nor a workspace")
        ensure_dir(root)
        manifest = {"format": FORMAT, "version": VERSION, "created_at": _now(), "tables": {}}
        write_json_atomic(root / MANIFEST, manifest)
        return cls(root, manifest)

    def clear(self) -> None:
        """Remove every table and media file this workspace lists, and the manifest."""
        for name in list(self.manifest.get("tables", {})):
            self.table_path(name).unlink(missing_ok=True)
        for entry in self.manifest.get("artifacts", {}).values():
            self.artifact_path(entry["path"]).unlink(missing_ok=True)
        media = self.root / "media"
        if media.is_dir():
            shutil.rmtree(media)
        (self.root / MANIFEST).unlink(missing_ok=True)

    # -- tables ----------------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        return self.root / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return name in self.manifest.get("tables", {}) and self.table_path(name).is_file()

    def read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Read table ``name``; a clear error when a stage has not produced it yet."""
        if not self.has(name):
            hint = {
                "split": "run `tailormind data split --workspace WS` first",
                "candidates": "run `tailormind data split --workspace WS` first",
            }.get(name, "run the stage that produces it first")
            raise WorkspaceError(f"workspace {self.root} has no '{name}' table; {hint}")
        path = self.table_path(name)
        try:
            table = pq.read_table(path, columns=columns)
        except FileNotFoundError:
            raise WorkspaceError(f"workspace {self.root} has no '{name}' table file") from None
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise CorruptFileError(f"{path}: corrupt table ({exc})") from None
        expected = schemas.schema_for(name)
        if expected is None:
            return table
        # Parquet has no second-resolution timestamps and renames list children: cast back.
        if columns is not None:
            expected = pa.schema([expected.field(c) for c in columns if c in expected.names])
        return schemas.conform(table, expected)

    def write(self, name: str, table: pa.Table, **info: Any) -> None:
        """Write one table atomically and record it (rows, time, ``info``) in the manifest."""
        self.write_many({name: table}, info={name: info})

    def write_many(
        self,
        tables: Mapping[str, pa.Table],
        *,
        info: Mapping[str, Mapping[str, Any]] | None = None,
        manifest_updates: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> None:
        """Write several tables as one step: all are staged, then renamed, then the manifest.

        ``drop`` names derived tables made stale by this write; they are removed.
        """
        info = info or {}
        tables = {
            name: schemas.conform(table, schema) if (schema := schemas.schema_for(name)) else table
            for name, table in tables.items()
        }
        listed = self.manifest.setdefault("tables", {})
        artifacts = self.manifest.setdefault("artifacts", {})
        write_tables_atomic({self.table_path(name): table for name, table in tables.items()},
                            compression="zstd")
        for name, table in tables.items():
            listed[name] = {"rows": table.num_rows, "written_at": _now(), **dict(info.get(name, {}))}
        for name in drop:
            if name in tables:
                continue
            if name in listed:
                listed.pop(name)
                self.table_path(name).unlink(missing_ok=True)
            if name in artifacts:
                self.artifact_path(artifacts.pop(name)["path"]).unlink(missing_ok=True)
        if manifest_updates:
            self.manifest.update(manifest_updates)
        write_json_atomic(self.root / MANIFEST, self.manifest)

    def derived(self, *, keep: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Names of every table and artifact that a new split makes stale (but ``keep``)."""
        tables = [n for n in self.manifest.get("tables", {})
                  if n not in IMPORTED_TABLES and n not in keep]
        return (*tables, *self.manifest.get("artifacts", {}))

    # -- artifacts (model checkpoints and other non-table outputs) -------------------------
    def artifact_path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise WorkspaceError(f"artifact path {relative!r} leaves the workspace {self.root}")
        return path

    def has_artifact(self, name: str) -> bool:
        entry = self.manifest.get("artifacts", {}).get(name)
        return entry is not None and self.artifact_path(entry["path"]).is_file()

    def artifact(self, name: str) -> dict[str, Any]:
        """The manifest entry of artifact ``name`` (``path`` + what was recorded with it)."""
        if not self.has_artifact(name):
            raise WorkspaceError(f"workspace {self.root} has no '{name}' yet")
        return self.manifest["artifacts"][name]

    def record_artifact(self, name: str, relative: str, **info: Any) -> None:
        """Record a file already written (atomically) under the workspace."""
        self.manifest.setdefault("artifacts", {})[name] = {"path": relative, "written_at": _now(), **info}
        write_json_atomic(self.root / MANIFEST, self.manifest)

    def update_manifest(self, **updates: Any) -> None:
        self.manifest.update(updates)
        write_json_atomic(self.root / MANIFEST, self.manifest)

    # -- media -----------------------------------------------------------------------------
    def media_path(self, relative: str) -> Path:
        """Absolute path of a workspace-relative media path; refuses paths leaving the workspace."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise WorkspaceError(f"media path {relative!r} leaves the workspace {self.root}")
        return path
