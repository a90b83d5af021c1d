"""``JobCoordinator``: the one place that owns generation-job state, across every ingress replica.

A single-replica deployment holding a :class:`~tailormind.serve.api_jobs.JobBook`. Ingress
replicas submit, read and cancel through it; ``GenerationWorker`` replicas claim, renew and
finish through it. Every change is persisted in the workspace before the call returns, so a
restart of the coordinator (or of the whole service) loads the jobs back: queued ones are
dispatched again, running ones keep their leases and are re-queued if nobody renews them.

A loop every ``min(1 s, lease_s / 4)`` expires leases, fails jobs queued too long and dispatches
each queued job to ``GenerationWorker.run`` (one call in flight per job; the worker's claim
guards against a second). A dispatch call that fails (the worker replica died) releases the job
at once instead of waiting for its lease; one that fails before a claim is sent again after a
lease's time. A cancel also cancels the dispatch call, so a worker
waiting on a model stops without waiting for its next renewal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from tailormind.config import load_config
from tailormind.serve.api_jobs import TERMINAL, JobBook, JobStore, Overloaded

logger = logging.getLogger("ray.serve")


class _JobMetrics:
    """``tailormind_api_jobs_total{status}`` (final statuses) on Ray's metrics endpoint."""

    def __init__(self) -> None:
        try:
            from ray.util.metrics import Counter

            self.jobs = Counter("tailormind_api_jobs_total", description="Jobs by final status.",
                                tag_keys=("status",))
        except Exception:  # pragma: no cover - metrics are optional
            self.jobs = None

    def ended(self, job: dict[str, Any] | None) -> None:
        if self.jobs is not None and job is not None and job["status"] in TERMINAL:
            self.jobs.inc(tags={"status": job["status"]})


@serve.deployment(name="JobCoordinator", num_replicas=1, max_ongoing_requests=1000,
                  ray_actor_options={"num_cpus": 0.05})
class JobCoordinator:
    def __init__(self, generation_worker: DeploymentHandle, workspace: str,
                 config: str | None = None, overrides: dict[str, Any] | None = None) -> None:
        api = load_config(config, overrides=overrides or None).api
        self.book = JobBook(JobStore(Path(workspace)), lease_s=api.lease_s,
                            max_attempts=api.max_attempts, max_queued_s=api.max_queued_s,
                            max_pending=api.max_pending_jobs)
        self.book.load()
        for line in self.book.corrupt.values():
            logger.error("JobCoordinator: %s (left in place, not run)", line)
        self.worker = generation_worker
        self.tick_s = min(1.0, api.lease_s / 4)
        self.dispatched: dict[str, DeploymentResponse] = {}
        self.following: set[asyncio.Task] = set()
        #: a job whose dispatch failed before any claim (the worker cannot load, say) waits a
        #: lease before it is sent again: job id -> monotonic time
        self.not_before: dict[str, float] = {}
        self.metrics = _JobMetrics()
        self._loop_task: asyncio.Task | None = None
        self._start_loop()

    def _start_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            try:
                self._loop_task = asyncio.get_running_loop().create_task(self._run_loop())
            except RuntimeError:  # no loop yet: the first call starts it
                self._loop_task = None

    async def _run_loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # never let one bad record stop the service's jobs
                logger.exception("JobCoordinator: tick failed")
            await asyncio.sleep(self.tick_s)

    def tick(self) -> None:
        for job in self.book.expire():
            self.metrics.ended(job)
        now = time.monotonic()
        for job in self.book.active():
            job_id = job["job_id"]
            if (job["status"] == "queued" and job_id not in self.dispatched
                    and self.not_before.get(job_id, 0.0) <= now):
                self._dispatch(job_id)

    def _dispatch(self, job_id: str) -> None:
        response = self.worker.run.remote(job_id)
        self.dispatched[job_id] = response
        task = asyncio.get_running_loop().create_task(self._follow(job_id, response))
        self.following.add(task)  # a strong reference: the loop keeps only weak ones
        task.add_done_callback(self.following.discard)

    async def _follow(self, job_id: str, response: DeploymentResponse) -> None:
        try:
            await response
        except asyncio.CancelledError:
            pass  # a cancel: the worker records the outcome, or its lease runs out
        except Exception as exc:  # the worker replica died or Serve refused the call
            job = self.book.get(job_id)
            # after a cancel the call ends at once; the worker reports when it has stopped
            if job is not None and job["status"] == "running" and not job["cancel_requested"]:
                self.metrics.ended(self.book.release(job_id, f"{type(exc).__name__}: {exc}"))
            elif job is not None and job["status"] == "queued":
                logger.warning("JobCoordinator: %s not taken by a worker (%s: %s); trying again "
                               "in %g s", job_id, type(exc).__name__, exc, self.book.lease_s)
                self.not_before[job_id] = time.monotonic() + self.book.lease_s
        finally:
            if self.dispatched.get(job_id) is response:
                del self.dispatched[job_id]

    # -- the ingress's calls --------------------------------------------------------------------
    async def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``{"job", "created"}``, or ``{"overloaded": message}``."""
        self._start_loop()
        try:
            job, created = self.book.submit(spec)
        except Overloaded as exc:
            return {"overloaded": str(exc)}
        if created:
            self._dispatch(job["job_id"])
        return {"job": job, "created": created}

    async def get(self, job_id: str) -> dict[str, Any] | None:
        """The record; ``{"corrupt": why}`` when its file does not read; None when unknown."""
        self._start_loop()
        if job_id in self.book.corrupt:
            return {"corrupt": self.book.corrupt[job_id]}
        return self.book.get(job_id)

    async def cancel(self, job_id: str) -> dict[str, Any] | None:
        if job_id in self.book.corrupt:
            return {"corrupt": self.book.corrupt[job_id]}
        before = self.book.get(job_id)
        job = self.book.cancel(job_id)
        if before is not None and before["status"] == "queued":  # ended by this call
            self.metrics.ended(job)
        response = self.dispatched.get(job_id)
        if response is not None and job is not None and job["cancel_requested"]:
            response.cancel()
        return job

    async def status(self) -> dict[str, Any]:
        active = self.book.active()
        return {"queued": sum(j["status"] == "queued" for j in active),
                "running": sum(j["status"] == "running" for j in active),
                "corrupt_records": sorted(self.book.corrupt.values())}

    # -- the workers' calls ---------------------------------------------------------------------
    async def claim(self, job_id: str, owner: str) -> dict[str, Any] | None:
        return self.book.claim(job_id, owner)

    async def renew(self, job_id: str, owner: str,
                    progress: dict[str, Any] | None = None) -> dict[str, bool]:
        return self.book.renew(job_id, owner, progress)

    async def finish(self, job_id: str, owner: str, status: str, error: str | None = None,
                     post_id: str | None = None) -> dict[str, Any] | None:
        job = self.book.finish(job_id, owner, status, error=error, post_id=post_id)
        self.metrics.ended(job)
        return job
