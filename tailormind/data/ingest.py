"""Write an :class:`~tailormind.data.records.ImportBundle` as a new workspace, all or nothing.

The new workspace is built in a hidden sibling directory (tables, media copies, manifest) and
put in place only when complete (:func:`~tailormind.core.atomic.atomic_dir`: flushed, then
swapped with the old one in one step). Replacing an existing workspace needs ``overwrite``; the
old one is deleted only after the new one is in place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tailormind.core.atomic import atomic_dir
from tailormind.data.records import ImportBundle
from tailormind.data.workspace import MANIFEST, IMPORTED_TABLES, Workspace
from tailormind.errors import WorkspaceError


def link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def check_target(root: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, a target that holds a workspace (without ``overwrite``) or files."""
    if (root / MANIFEST).exists():
        if not overwrite:
            raise WorkspaceError(f"{root} already holds a workspace; pass --overwrite to replace it")
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise WorkspaceError(f"{root} exists and is not an empty directory nor a workspace")


def save_import(bundle: ImportBundle, root: str | Path, *, overwrite: bool = False) -> Workspace:
    """Create the workspace ``root`` from ``bundle``; returns it opened."""
    root = Path(root)
    check_target(root, overwrite=overwrite)
    with atomic_dir(root) as staging:  # swapped with the old workspace in one step
        workspace = Workspace.create(staging)
        for dest, src in bundle.media.items():
            link_or_copy(src, workspace.media_path(dest))
        tables = {"items": bundle.items, "interactions": bundle.interactions, "users": bundle.users}
        if bundle.tag_events is not None:
            tables["tag_events"] = bundle.tag_events
        assert set(tables) <= set(IMPORTED_TABLES)
        workspace.write_many(tables, manifest_updates={"import": _jsonable(bundle.report)})
    return Workspace.open(root)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value
