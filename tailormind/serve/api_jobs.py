"""Generation jobs of the HTTP API as JSON records in the workspace (``api/jobs/<job_id>.json``).

A job's id is its post's id (a function of user, kind, platform, profile, config and seed), so the
same request while a job runs finds that job instead of starting a second one, and a finished
post is answered from its bundle. Records are written atomically (a reader never sees half a
file) by the ingress (queued, failed to start) and by the worker that runs the job (progress,
done, failed, cancelled); any ingress replica can read them, and they outlive a restart. A
cancel request is a marker file the worker checks at every stage. A running job whose record has
not changed for ``api.stale_job_s`` (a queued one not started within
``api.job_timeout_s``) is reported as lost (its worker died); asking again restarts it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailormind.data.workspace import write_json_atomic

JOBS_DIR = Path("api") / "jobs"
ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")
#: Stages a post passes through (``Generator.generate``'s progress names), for the step count.
POST_STAGES = ("exemplars", "ideation", "writing", "scoring")
JOB_ID = re.compile(r"^(post|video)-[0-9a-f]{12}$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def total_steps(kind: str, reflection_rounds: int) -> int:
    """exemplars, ideation, writing, scoring, then per round a revision and its scoring, the video
    for a video post, and the bundle: the most steps a job can take."""
    return len(POST_STAGES) + 2 * reflection_rounds + (1 if kind == "video" else 0) + 1


class JobStore:
    def __init__(self, workspace_root: Path) -> None:
        self.root = Path(workspace_root) / JOBS_DIR

    def path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.root / f"{job_id}.json"

    def read(self, job_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(job_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:  # only a crash mid-disk-write can leave this
            return None

    def write(self, job: dict[str, Any]) -> dict[str, Any]:
        job = {**job, "updated_at": now_iso()}
        write_json_atomic(self.path(job["job_id"]), job)
        return job

    def update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        job = self.read(job_id)
        if job is None:
            raise KeyError(job_id)
        return self.write({**job, **changes})

    def new(self, *, job_id: str, user_id: str, kind: str, platform: str, seed: int,
            steps: int) -> dict[str, Any]:
        """A fresh queued record (replacing a finished or lost one); any old cancel marker goes."""
        self.cancel_marker(job_id).unlink(missing_ok=True)
        created = now_iso()
        return self.write({"job_id": job_id, "status": "queued", "user_id": user_id,
                           "post_id": job_id, "kind": kind, "platform": platform, "seed": seed,
                           "created_at": created, "updated_at": created,
                           "progress": {"stage": "queued", "step": 0, "of": steps},
                           "error": None})

    # -- cancellation ---------------------------------------------------------------------------
    def cancel_marker(self, job_id: str) -> Path:
        return self.path(job_id).with_suffix(".cancel")

    def request_cancel(self, job_id: str) -> None:
        self.cancel_marker(job_id).parent.mkdir(parents=True, exist_ok=True)
        self.cancel_marker(job_id).touch()

    def cancel_requested(self, job_id: str) -> bool:
        return self.cancel_marker(job_id).exists()

    # -- liveness -------------------------------------------------------------------------------
    @staticmethod
    def age_s(job: dict[str, Any]) -> float:
        updated = datetime.fromisoformat(job["updated_at"])
        return max(0.0, time.time() - updated.timestamp())

    def effective(self, job: dict[str, Any], stale_after_s: float,
                  queued_after_s: float) -> dict[str, Any]:
        """``job`` as a client should see it: a running job without progress for
        ``stale_after_s`` (or a queued one not started within ``queued_after_s``) is reported
        failed (lost), without rewriting the record."""
        limit = stale_after_s if job["status"] == "running" else queued_after_s
        if job["status"] in ACTIVE and self.age_s(job) > limit:
            return {**job, "status": "failed",
                    "error": f"lost: no progress for {self.age_s(job):.0f} s (the worker running "
                             f"it stopped); ask for the post again to restart it"}
        return job
