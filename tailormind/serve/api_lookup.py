"""What the API ingress reads from the workspace, without loading a model: users, stored
profiles, the id a post request will get, and bundled posts and their media.

Tables are re-read when the workspace manifest changes, so profiles written by a batch job after
the service started are served without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.errors import NotFoundError, WorkspaceError
from tailormind.generation.bundle import GENERATIONS, POST_JSON, safe_component
from tailormind.generation.pipeline import planned_post_id
from tailormind.profiling.profiles import PROFILES_TABLE
from tailormind.serve.api_jobs import JOB_ID

MANIFEST = "workspace.json"


class WorkspaceView:
    def __init__(self, root: str | Path, settings: Settings) -> None:
        self.root = Path(root)
        self.settings = settings
        self._stamp: float | None = None
        self._users: set[str] = set()
        self._profiles: dict[str, dict[str, Any]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read users and profiles if the manifest changed since the last read."""
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise WorkspaceError(f"{self.root} is not a workspace (no {MANIFEST})")
        stamp = manifest.stat().st_mtime
        if stamp == self._stamp:
            return
        workspace = Workspace.open(self.root)
        self._users = set(workspace.read("users", columns=["user_id"]).column("user_id")
                          .to_pylist())
        self._profiles = ({r["user_id"]: r for r in workspace.read(PROFILES_TABLE).to_pylist()}
                          if workspace.has(PROFILES_TABLE) else {})
        self._stamp = stamp

    @property
    def profiled_users(self) -> int:
        return len(self._profiles)

    def profile(self, user_id: str) -> dict[str, Any]:
        """The stored profile row; NotFoundError for an unknown user, WorkspaceError for a known
        one without a profile yet."""
        self.refresh()
        if user_id not in self._users:
            raise NotFoundError(f"unknown user {user_id!r}")
        row = self._profiles.get(user_id)
        if row is None:
            raise WorkspaceError(f"user {user_id!r} has no profile yet; run `tailormind profile "
                                 f"run --workspace WS --user {user_id}` (or jobs/profile_users.py)")
        return row

    def post_id(self, user_id: str, kind: str, platform: str, seed: int | None) -> str:
        return planned_post_id(self.settings, user_id, self.profile(user_id)["profile"], kind,
                               platform, seed)

    def bundle(self, post_id: str) -> Path | None:
        """The bundle directory of ``post_id`` (any user), or None."""
        if not JOB_ID.match(post_id):
            return None
        generations = self.root / GENERATIONS
        for candidate in generations.glob(f"*/{post_id}/{POST_JSON}"):
            return candidate.parent
        return None

    def bundle_of(self, user_id: str, post_id: str) -> Path | None:
        path = self.root / GENERATIONS / safe_component(user_id) / post_id
        return path if (path / POST_JSON).is_file() else None

    @staticmethod
    def record(bundle: Path) -> dict[str, Any]:
        return json.loads((bundle / POST_JSON).read_text(encoding="utf-8"))

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
