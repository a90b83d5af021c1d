"""What the API ingress reads from the workspace, without loading a model: a user's stored
profile, the id a post request will get, and bundled posts and their media.

Every method here does file I/O and is called by the ingress in a thread (``asyncio.to_thread``),
never on its event loop. Reads are per user: the profile and user tables are read with a filter
on ``user_id`` and only the columns needed, so a request costs one user's rows (Parquet row-group
statistics skip the rest), and a batch job rewriting the workspace is seen on the next request.
Bundles are found through an index from post id to user (the job coordinator's records add to
it; a miss re-scans the gallery at most every ``rescan_s`` seconds).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tailormind.core.vocabulary import MANIFEST
from tailormind.config import Settings
from tailormind.core.atomic import read_json_record
from tailormind.errors import CorruptFileError, NotFoundError, WorkspaceError
from tailormind.generation.bundle import GENERATIONS, live_bundle, read_post, safe_component
from tailormind.generation.bundle_scan import post_files, recover_bundles
from tailormind.generation.pipeline import planned_post_id
from tailormind.generation.post_record import PostRecord
from tailormind.profiling.profiles import PROFILES_TABLE
from tailormind.profiling.update import HISTORY_TABLE
from tailormind.serve.api_jobs import JOB_ID



class WorkspaceView:
    def __init__(self, root: str | Path, settings: Settings, rescan_s: float = 10.0) -> None:
        self.root = Path(root)
        self.settings = settings
        self.rescan_s = rescan_s
        self._posts: dict[str, str] = {}  # post id -> user directory name
        self._scanned_at = float("-inf")
        self._lock = threading.Lock()
        self.check()
        #: what a killed writer left and start-up repaired (a .old put back, stale staging gone)
        self.repaired = recover_bundles(self.root)

    def check(self) -> None:
        """WorkspaceError when the root is not a workspace; CorruptFileError when its manifest
        does not read."""
        if read_json_record(self.root / MANIFEST) is None:
            raise WorkspaceError(f"{self.root} is not a workspace (no {MANIFEST})")

    def _rows(self, table: str, user_id: str,
              columns: list[str] | None) -> list[dict[str, Any]]:
        path = self.root / f"{table}.parquet"
        if not path.is_file():
            return []
        try:
            return pq.read_table(path, columns=columns,
                                 filters=[("user_id", "=", user_id)]).to_pylist()
        except OSError as exc:  # a truncated or foreign file, not a missing one
            raise CorruptFileError(f"{path}: does not read as Parquet ({exc})") from None

    def profile(self, user_id: str, columns: list[str] | None = None) -> dict[str, Any]:
        """The stored profile row (``columns`` of it; None: all); NotFoundError for an unknown
        user, WorkspaceError for a known one without a profile yet."""
        self.check()
        wanted = None if columns is None else sorted({"user_id", *columns})
        rows = self._rows(PROFILES_TABLE, user_id, wanted)
        if rows:
            return rows[-1]
        if not self._rows("users", user_id, ["user_id"]):
            raise NotFoundError(f"unknown user {user_id!r}")
        raise WorkspaceError(f"user {user_id!r} has no profile yet; run `tailormind profile "
                             f"run --workspace WS --user {user_id}` (or jobs/profile_users.py)")

    def profile_history(self, user_id: str) -> list[dict[str, Any]]:
        """The user's superseded profile versions, oldest first (none before an update)."""
        self.check()
        rows = self._rows(HISTORY_TABLE, user_id, None)
        return sorted(rows, key=lambda r: r.get("version") or 1)

    def post_id(self, user_id: str, kind: str, platform: str, seed: int | None) -> str:
        profile = self.profile(user_id, ["profile"])["profile"]
        return planned_post_id(self.settings, user_id, profile, kind, platform, seed)

    # -- bundles --------------------------------------------------------------------------------
    def remember(self, post_id: str, user_id: str) -> None:
        with self._lock:
            self._posts[post_id] = safe_component(user_id)

    def bundle(self, post_id: str) -> Path | None:
        """The bundle directory of ``post_id`` (any user), or None."""
        if not JOB_ID.match(post_id):
            return None
        with self._lock:
            user_dir = self._posts.get(post_id)
        if user_dir is None and time.monotonic() - self._scanned_at > self.rescan_s:
            self._scan()
            with self._lock:
                user_dir = self._posts.get(post_id)
        if user_dir is None:
            return None
        return live_bundle(self.root / GENERATIONS / user_dir / post_id)

    def _scan(self) -> None:
        found = {}
        for record in post_files(self.root):  # never a staging or .old directory
            post_dir = record.parent
            if JOB_ID.match(post_dir.name):
                found[post_dir.name] = post_dir.parent.name
        with self._lock:
            self._posts.update(found)
            self._scanned_at = time.monotonic()

    def bundle_of(self, user_id: str, post_id: str) -> Path | None:
        path = live_bundle(self.root / GENERATIONS / safe_component(user_id) / post_id)
        if path is not None:
            self.remember(post_id, user_id)
        return path

    @staticmethod
    def record(bundle: Path) -> PostRecord | None:
        """``post.json`` (None: the post went away); CorruptFileError when it does not read."""
        return read_post(bundle)

    @staticmethod
    def media_file(bundle: Path, name: str) -> Path:
        """``bundle/name`` if it is a file inside the bundle; ValueError for a path that leaves
        it (``..``, absolute, a link out), FileNotFoundError for a missing file."""
        if not name or "\\" in name or name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"media path {name!r} is not a file name inside the post")
        path = (bundle / name).resolve()
        if not path.is_relative_to(bundle.resolve()):
            raise ValueError(f"media path {name!r} leaves the post's directory")
        if not path.is_file():
            raise FileNotFoundError(name)
        return path

