"""Where a job's workspace lives: a local path, a ``file://`` URI, or an object-store URI.

* A local path (on a cluster: a shared volume every pod mounts at the same path, as the KubeRay
  manifests do) and ``file://`` URIs are used in place; Ray places actors anywhere.
* Any other URI that ``pyarrow.fs.FileSystem.from_uri`` understands (``s3://``, ``gs://``,
  ``abfs://``, ``hdfs://``) is *staged*: pulled into a local directory on the driver's node, used
  there, and pushed back when the job ends — also when it fails, so the parts a killed or failed
  run wrote are there for the next run to resume from. Files that changed (size or mtime) are
  uploaded, ``workspace.json`` last (it only lists complete tables), then files the job removed
  are deleted remotely. A staged workspace exists only on the driver's node, so the stage
  functions pin their Ray actors there (:meth:`WorkspaceLocation.actor_resources`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from tailormind.core.vocabulary import MANIFEST
from tailormind.core.atomic import atomic_path, is_hidden, write_json_atomic
from tailormind.errors import WorkspaceError

#: Where staged workspaces go (one directory per URI); override with TAILORMIND_STAGING_DIR.
DEFAULT_STAGING = Path(os.environ.get("TMPDIR", "/tmp")) / "tailormind-staging"
_CHUNK = 8 << 20


def is_in_place(location: str) -> bool:
    """True for local paths and file:// URIs (no staging needed)."""
    scheme = urlparse(location).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(location: str) -> Path:
    """The directory of an in-place location."""
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)


@dataclass
class WorkspaceLocation:
    """A workspace as a job sees it: ``path`` is local; ``uri`` is where it really lives."""

    uri: str
    path: Path
    staged: bool = False
    pulled: int = 0
    pushed: int = 0
    deleted: int = 0

    def actor_resources(self) -> dict[str, float]:
        """Ray resources that keep an actor on the node holding ``path`` ({}: anywhere)."""
        return node_resources() if self.staged else {}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file under ``root``."""
    files: dict[str, tuple[int, int]] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            stat = full.stat()
            files[full.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return files


class StagedWorkspace:
    """Pull an object-store workspace to ``stage``, push what changed back (see module doc).

    ``<stage>.sync.json`` remembers each file's remote (size, mtime) and local (size, mtime_ns)
    at the last sync, so a pull copies only what changed on either side since then."""

    def __init__(self, uri: str, stage: Path) -> None:
        from pyarrow import fs as pafs

        try:
            self.fs, self.remote = pafs.FileSystem.from_uri(uri)
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise WorkspaceError(f"cannot open workspace URI {uri!r}: {exc}") from exc
        self.uri, self.stage = uri, stage
        self.remote = self.remote.rstrip("/")
        self.record = stage.with_name(f"{stage.name}.sync.json")
        self.baseline: dict[str, tuple[int, int]] = {}

    def _remote_files(self) -> dict[str, list]:
        """relative path -> [size, mtime_ns or None] of every remote file."""
        from pyarrow import fs as pafs

        info = self.fs.get_file_info(self.remote)
        if info.type == pafs.FileType.NotFound:
            return {}
        if info.type != pafs.FileType.Directory:
            raise WorkspaceError(f"{self.uri} is not a directory")
        listed = self.fs.get_file_info(pafs.FileSelector(self.remote, recursive=True))
        return {i.path[len(self.remote):].lstrip("/"): [i.size, i.mtime_ns] for i in listed
                if i.type == pafs.FileType.File}

    def _save_record(self, remote: dict[str, list]) -> None:
        local = {k: list(v) for k, v in self.baseline.items()}
        write_json_atomic(self.record, {"uri": self.uri, "remote": remote, "local": local})

    def pull(self) -> int:
        """Copy the remote files that are new or changed on either side since the last sync;
        delete local files the remote no longer has. Returns how many were copied."""
        remote = self._remote_files()
        self.stage.mkdir(parents=True, exist_ok=True)
        try:
            last = json.loads(self.record.read_text())
        except (OSError, ValueError):
            last = {"remote": {}, "local": {}}
        local = _snapshot(self.stage)
        for relative in set(local) - set(remote):
            (self.stage / relative).unlink()
        copied = 0
        for relative, signature in sorted(remote.items()):
            unchanged = (relative in local and last["remote"].get(relative) == signature
                         and last["local"].get(relative) == list(local[relative]))
            if unchanged:
                continue
            with (atomic_path(self.stage / relative) as tmp,
                  self.fs.open_input_stream(f"{self.remote}/{relative}") as src,
                  open(tmp, "wb") as dst):
                shutil.copyfileobj(src, dst, _CHUNK)
            copied += 1
        self.baseline = _snapshot(self.stage)
        self._save_record(remote)
        return copied

    def push(self) -> tuple[int, int]:
        """Upload new or changed files (the manifest last), then delete removed ones."""
        now = _snapshot(self.stage)
        changed = sorted(r for r, sig in now.items() if self.baseline.get(r) != sig
                         and not any(is_hidden(part) for part in Path(r).parts))
        changed.sort(key=lambda r: r == MANIFEST)
        for relative in changed:
            target = f"{self.remote}/{relative}"
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with open(self.stage / relative, "rb") as src, self.fs.open_output_stream(target) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        removed = sorted(set(self.baseline) - set(now))
        for relative in removed:
            self.fs.delete_file(f"{self.remote}/{relative}")
        self.baseline = now
        self._save_record(self._remote_files())
        return len(changed), len(removed)


def _stage_dir(uri: str) -> Path:
    base = Path(os.environ.get("TAILORMIND_STAGING_DIR", DEFAULT_STAGING))
    return base / hashlib.sha256(uri.encode()).hexdigest()[:16]


def node_resources() -> dict[str, float]:
    """A sliver of this node's ``node:<ip>`` resource: actors asking for it start on this node.
    A clear error when this node has no CPUs for them (a KubeRay head with ``num-cpus: 0``)."""
    import ray

    ip = ray.util.get_node_ip_address()
    if ray.is_initialized():
        here = [n for n in ray.nodes() if n.get("Alive") and n.get("NodeManagerAddress") == ip]
        if here and not any(n.get("Resources", {}).get("CPU", 0) > 0 for n in here):
            raise WorkspaceError(
                f"this workspace is staged on the driver's node ({ip}), which offers Ray no CPUs "
                "for the stage's actors (a KubeRay head runs with num-cpus 0): use a shared "
                "volume path as --workspace on a cluster, or run the driver on a worker node")
    return {f"node:{ip}": 0.001}


@contextmanager
def open_location(location: str, *, log=print) -> Iterator[WorkspaceLocation]:
    """The workspace at ``location`` as a local directory for the duration of a job."""
    if is_in_place(location):
        yield WorkspaceLocation(location, local_path(location))
        return
    stage = _stage_dir(location)
    staged = StagedWorkspace(location, stage)
    where = WorkspaceLocation(location, stage, staged=True)
    where.pulled = staged.pull()
    log(f"workspace: staged {location} at {stage} ({where.pulled} file(s) pulled)")
    try:
        yield where
    finally:
        where.pushed, where.deleted = staged.push()
        log(f"workspace: pushed {where.pushed} file(s) to {location}, deleted {where.deleted}")
