"""Generation jobs of the HTTP API: their records and the rules that change them.

A job's id is its post's id (a function of user, kind, platform, profile, config and seed), so the
same request while a job is queued or running finds that job instead of starting a second one,
and a finished post is answered from its bundle.

One owner changes the records: :class:`JobBook`, held by the single ``JobCoordinator`` replica
(``job_coordinator.py``), which persists every change in ``api/jobs/<job_id>.json`` before it
answers. The life of a job:

- ``load``: the stored records; a file that does not read is kept aside with its reason (the
  API answers 503 for that job) until a new request for the same post replaces it.
- ``submit``: a new record is ``queued`` (atomic: the book is changed by one coroutine at a time
  and never awaits in the middle of a change); the same id while active returns that record.
- ``claim``: a worker that is about to run the job takes a lease of ``api.lease_s`` seconds
  (``running``, ``attempts`` + 1). Only a ``queued`` job can be claimed, so two workers never
  run the same attempt.
- ``renew``: the owner extends its lease (and reports progress) every ``lease_s / 3``; the answer
  tells it whether it still holds the job and whether a cancel was asked.
- ``expire``: a lease not renewed in time (the worker died, its node was lost) is released: the
  job is ``queued`` again while ``attempts < api.max_attempts``, else ``failed`` with the reason.
  A job not claimed within ``api.max_queued_s`` is ``failed``.
- ``finish``: only the lease holder's outcome is recorded (``done``, ``failed``, ``cancelled``).
- ``cancel``: a queued job is ``cancelled`` at once; a running one is flagged, and its worker
  stops at its next step (it learns from the coordinator, or from its next renewal).

Execution is at least once (a job whose worker is lost is run again); the post is produced once:
its bundle is keyed by the job id and replacing it is atomic.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailormind.generation.steps import progress_stages
from tailormind.core.atomic import read_json_record, write_json_atomic
from tailormind.errors import CorruptFileError

JOBS_DIR = Path("api") / "jobs"
ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")
JOB_ID = re.compile(r"^(post|video)-[0-9a-f]{12}$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def total_steps(reflection_rounds: int) -> int:
    """The most progress steps a job can take: the generator's
    :func:`~tailormind.generation.steps.progress_stages`."""
    return len(progress_stages(reflection_rounds))


class JobStore:
    """One JSON file per job under ``<workspace>/api/jobs``, each written atomically."""

    def __init__(self, workspace_root: Path) -> None:
        self.root = Path(workspace_root) / JOBS_DIR

    def path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.root / f"{job_id}.json"

    def read(self, job_id: str) -> dict[str, Any] | None:
        """The record, None when there is none; CorruptFileError when it does not read."""
        return read_json_record(self.path(job_id))

    def write(self, job: dict[str, Any]) -> dict[str, Any]:
        job = {**job, "updated_at": now_iso()}
        write_json_atomic(self.path(job["job_id"]), job)
        return job

    def load_all(self) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Every record, and why each file that does not read does not (left in place)."""
        jobs, corrupt = {}, {}
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            if not JOB_ID.match(path.stem):
                continue
            try:
                job = self.read(path.stem)
            except CorruptFileError as exc:
                corrupt[path.stem] = str(exc)
                continue
            if job is not None:
                jobs[path.stem] = job
        return jobs, corrupt


class Overloaded(Exception):
    """``api.max_pending_jobs`` jobs are already queued or running."""


class JobBook:
    """Every job's record and the rules above; ``clock`` is wall time (leases outlive restarts)."""

    def __init__(self, store: JobStore, *, lease_s: float, max_attempts: int,
                 max_queued_s: float, max_pending: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lease_s, self.max_attempts = lease_s, max_attempts
        self.max_queued_s, self.max_pending = max_queued_s, max_pending
        self.clock = clock
        self.jobs: dict[str, dict[str, Any]] = {}
        #: job id -> why its record does not read; reported, until a new request replaces it
        self.corrupt: dict[str, str] = {}

    def load(self) -> None:
        """Read every stored record (after a restart: running jobs keep their leases)."""
        self.jobs, self.corrupt = self.store.load_all()

    def _save(self, job: dict[str, Any]) -> dict[str, Any]:
        self.jobs[job["job_id"]] = job = self.store.write(job)
        return job

    def active(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs.values() if j["status"] in ACTIVE]

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def submit(self, spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The active job of ``spec["job_id"]`` (False), else a new queued one (True).
        ``spec`` holds job_id, user_id, kind, platform, seed and steps."""
        existing = self.jobs.get(spec["job_id"])
        if existing is not None and existing["status"] in ACTIVE:
            return existing, False
        self.corrupt.pop(spec["job_id"], None)  # the new record replaces the damaged one
        if len(self.active()) >= self.max_pending:
            raise Overloaded(f"{self.max_pending} generation jobs are queued or running "
                             f"(api.max_pending_jobs)")
        created = now_iso()
        job = {"job_id": spec["job_id"], "status": "queued", "user_id": spec["user_id"],
               "post_id": spec["job_id"], "kind": spec["kind"], "platform": spec["platform"],
               "seed": spec["seed"], "created_at": created, "updated_at": created,
               "progress": {"stage": "queued", "step": 0, "of": spec["steps"]},
               "error": None, "attempts": 0, "max_attempts": self.max_attempts,
               "queued_at": self.clock(), "owner": None, "lease_expires_at": None,
               "cancel_requested": False, "lost": []}
        return self._save(job), True

    def claim(self, job_id: str, owner: str) -> dict[str, Any] | None:
        """Lease a queued job to ``owner``; None if it is not queued (taken, ended, unknown)."""
        job = self.jobs.get(job_id)
        if job is None or job["status"] != "queued":
            return None
        return self._save({**job, "status": "running", "owner": owner,
                           "attempts": job["attempts"] + 1,
                           "lease_expires_at": self.clock() + self.lease_s,
                           "progress": {**job["progress"], "stage": "started", "step": 0}})

    def _holds(self, job: dict[str, Any] | None, owner: str) -> bool:
        return job is not None and job["status"] == "running" and job["owner"] == owner

    def renew(self, job_id: str, owner: str,
              progress: dict[str, Any] | None = None) -> dict[str, bool]:
        """Extend ``owner``'s lease; ``held`` False means it lost the job and must stop."""
        job = self.jobs.get(job_id)
        if not self._holds(job, owner):
            return {"held": False, "cancel": True}
        changes: dict[str, Any] = {"lease_expires_at": self.clock() + self.lease_s}
        if progress is not None:
            changes["progress"] = progress
        job = self._save({**job, **changes})
        return {"held": True, "cancel": bool(job["cancel_requested"])}

    def finish(self, job_id: str, owner: str, status: str, *, error: str | None = None,
               post_id: str | None = None) -> dict[str, Any] | None:
        """Record the lease holder's outcome; None (nothing changed) for anyone else."""
        if status not in TERMINAL:
            raise ValueError(f"not a final status: {status!r}")
        job = self.jobs.get(job_id)
        if not self._holds(job, owner):
            return None
        changes: dict[str, Any] = {"status": status, "error": error, "owner": None,
                                   "lease_expires_at": None}
        if status == "done":
            of = job["progress"]["of"]
            changes.update(post_id=post_id or job["post_id"],
                           progress={"stage": "done", "step": of, "of": of})
        return self._save({**job, **changes})

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        if job is None or job["status"] not in ACTIVE:
            return job
        if job["status"] == "queued":
            return self._save({**job, "status": "cancelled", "cancel_requested": True,
                               "error": "cancelled before it started"})
        return self._save({**job, "cancel_requested": True})

    def release(self, job_id: str, reason: str) -> dict[str, Any] | None:
        """The running job's lease is lost: queued again, or failed after the last attempt."""
        job = self.jobs.get(job_id)
        if job is None or job["status"] != "running":
            return job
        lost = [*job["lost"], f"attempt {job['attempts']}: {reason}"]
        base = {**job, "owner": None, "lease_expires_at": None, "lost": lost}
        if job["cancel_requested"]:
            return self._save({**base, "status": "cancelled",
                               "error": f"cancelled; its worker was lost ({reason})"})
        if job["attempts"] >= self.max_attempts:
            return self._save({**base, "status": "failed",
                               "error": f"lost {job['attempts']} times (api.max_attempts = "
                                        f"{self.max_attempts}); last: {reason}"})
        return self._save({**base, "status": "queued", "queued_at": self.clock(),
                           "progress": {**job["progress"], "stage": "queued", "step": 0}})

    def expire(self) -> list[dict[str, Any]]:
        """Release every lease past its time and fail jobs queued too long; the changed jobs."""
        now, changed = self.clock(), []
        for job in self.active():
            if job["status"] == "running" and job["lease_expires_at"] < now:
                late = now - job["lease_expires_at"] + self.lease_s
                changed.append(self.release(job["job_id"], f"lease not renewed for {late:.0f} s "
                                            f"(its worker stopped)"))
            elif job["status"] == "queued" and now - job["queued_at"] > self.max_queued_s:
                changed.append(self._save({**job, "status": "failed",
                                           "error": f"no worker took it within "
                                                    f"{self.max_queued_s:g} s (api.max_queued_s)"}))
        return changed
