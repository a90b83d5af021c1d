"""The API's two worker deployments: ``ProfileWorker`` (ad-hoc profiles) and ``GenerationWorker``
(post and video jobs). The ingress stays light; these hold the models (or, with ``backend:
serve``, handles to the ``tailormind-models`` deployments) and the workspace lookups.

Each replica runs at most ``api.worker_concurrency`` pieces of work at once (a semaphore; the
work itself in threads), so further requests queue in the replica, where cancelling them is
immediate. A cancelled call (the HTTP client went away, the ingress timed out, ``DELETE
/v1/jobs/{id}``) sets a flag that the work checks before every LLM step or generation stage; its
slot is given to the next request only once that thread has stopped, so cancelled work never
keeps running beside new work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import serve

from tailormind.config import Settings, load_config
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError
from tailormind.serve.heap_trim import HeapTrimmer

logger = logging.getLogger("ray.serve")


class Cancelled(Exception):
    """Raised inside the work thread at its next checkpoint after a cancel."""


def api_settings(config: str | None, overrides: dict[str, Any] | None) -> Settings:
    return load_config(config, overrides=overrides or None)


class _Worker:
    """Loads lazily (``ready`` starts it and reports), runs ``api.worker_concurrency`` things at
    once, counts outcomes (``started``, ``completed``, ``cancelled``, ``failed``)."""

    def __init__(self, workspace: str, config: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        self.settings = api_settings(config, overrides)
        self.root = Path(workspace)
        self.stats: Counter = Counter()
        self._lock = asyncio.Lock()  # loading
        self._slots = asyncio.Semaphore(self.settings.api.worker_concurrency)
        self._loaded = False
        self._load_error: str | None = None
        self._loading: asyncio.Task | None = None
        self._trim = HeapTrimmer()

    def _load(self) -> None:
        raise NotImplementedError

    def _models(self) -> dict[str, str]:
        raise NotImplementedError

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            async with self._lock:
                if not self._loaded:
                    await asyncio.to_thread(self._load)
                    self._loaded, self._load_error = True, None

    async def ready(self, wait_s: float = 2.0) -> dict[str, Any]:
        """Whether this replica can work, and with what. The first call starts loading the
        models in the background and waits at most ``wait_s`` for it, so a readiness probe
        gets a quick "not yet" instead of hanging while weights load; a failed load is
        reported with its error and retried on the next call."""
        if not self._loaded:
            if self._loading is None or self._loading.done():
                self._load_error = None
                self._loading = asyncio.get_running_loop().create_task(self._ensure_loaded())
            try:
                await asyncio.wait_for(asyncio.shield(self._loading), timeout=wait_s)
            except TimeoutError:
                return {"ready": False, "loading": True, "stats": dict(self.stats)}
            except TailorMindError as exc:
                self._load_error = str(exc)
        if not self._loaded:
            return {"ready": False, "error": self._load_error, "stats": dict(self.stats)}
        return {"ready": True, "models": self._models(), "stats": dict(self.stats)}

    async def _exclusive(self, fn: Callable[[threading.Event], Any]) -> Any:
        """Run ``fn(cancel_event)`` in a thread in one of the replica's slots."""
        await self._ensure_loaded()
        async with self._slots:
            return await self._in_thread(fn, threading.Event())

    async def _in_thread(self, fn: Callable[[threading.Event], Any],
                         cancel: threading.Event) -> Any:
        """``fn(cancel)`` in a thread; on cancellation set the event and wait for the thread to
        stop before returning the slot to the next request."""
        future = asyncio.get_running_loop().run_in_executor(None, fn, cancel)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            self.stats["cancelled"] += 1
            with contextlib.suppress(BaseException):
                await future
            raise
        finally:
            self._trim()


@serve.deployment(name="ProfileWorker", max_ongoing_requests=32,
                  ray_actor_options={"num_cpus": 0.1})
class ProfileWorker(_Worker):
    def _load(self) -> None:
        from tailormind.models.registry import load_role
        from tailormind.profiling.evidence import ItemFeatures

        workspace = Workspace.open(self.root)
        self.features = ItemFeatures.load(workspace)
        self.text = load_role("text", self.settings)
        self.embed = load_role("embed", self.settings)

    def _models(self) -> dict[str, str]:
        return {"text": self.text.model_id, "embed": self.embed.model_id}

    async def profile(self, history: list[dict[str, Any]], refine: bool,
                      seed: int | None) -> dict[str, Any]:
        from tailormind.profiling.adhoc import HistoryItem, profile_history

        items = [HistoryItem(item_id=h.get("item_id"), title=h.get("title") or "",
                             text=h.get("text") or "", tags=tuple(h.get("tags") or ()))
                 for h in history]

        def work(cancel: threading.Event) -> dict[str, Any]:
            def checkpoint() -> None:
                if cancel.is_set():
                    raise Cancelled("the request was cancelled")

            return profile_history(items, settings=self.settings, features=self.features,
                                   text=self.text, embed=self.embed, refine=refine, seed=seed,
                                   checkpoint=checkpoint)

        self.stats["started"] += 1
        result = await self._exclusive(work)
        self.stats["completed"] += 1
        return result


@serve.deployment(name="GenerationWorker", max_ongoing_requests=64,
                  graceful_shutdown_timeout_s=1800, ray_actor_options={"num_cpus": 0.1})
class GenerationWorker(_Worker):
    """Runs the jobs the ``JobCoordinator`` dispatches: claims one when a slot is free, renews
    the lease while it runs (reporting progress, learning of a cancel), and reports the end.
    ``graceful_shutdown_timeout_s`` lets a running job finish on a redeploy; a job still running
    when the replica is killed loses its lease and is re-queued."""

    def __init__(self, workspace: str, config: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        super().__init__(workspace, config, overrides)
        self._profiles_mtime = 0.0
        self._coordinator: Any = None
        self._reports: set[asyncio.Task] = set()
        self.name = f"{_replica_name()}/{uuid.uuid4().hex[:6]}"

    def _load(self) -> None:
        from tailormind.generation.pipeline import Generator, Roles

        workspace = Workspace.open(self.root)
        kinds = tuple(self.settings.api.kinds)
        self.generator = Generator(workspace, self.settings, Roles.load(self.settings, kinds))
        self._profiles_mtime = self._profiles_changed_at()

    def _profiles_changed_at(self) -> float:
        from tailormind.profiling.profiles import PROFILES_TABLE

        path = self.root / f"{PROFILES_TABLE}.parquet"
        return path.stat().st_mtime if path.exists() else 0.0

    def _models(self) -> dict[str, str]:
        return {role: info.get("model", "") for role, info
                in self.generator.roles.provenance().items()}

    def _refresh(self) -> None:
        """Profiles written after start-up (a new ``profile run``) are picked up."""
        if self._profiles_changed_at() != self._profiles_mtime:
            from tailormind.generation.pipeline import Generator

            self.generator = Generator(Workspace.open(self.root), self.settings,
                                       self.generator.roles, self.generator.catalog)
            self._profiles_mtime = self._profiles_changed_at()

    def coordinator(self) -> Any:
        if self._coordinator is None:
            app = serve.get_replica_context().app_name
            self._coordinator = serve.get_deployment_handle("JobCoordinator", app_name=app)
        return self._coordinator

    async def run(self, job_id: str) -> dict[str, Any]:
        """Claim the job when a slot is free, run it, report the end; ``{"status":
        "not_claimed"}`` when another worker holds it or it ended meanwhile."""
        await self._ensure_loaded()
        async with self._slots:
            owner = f"{self.name}/{uuid.uuid4().hex[:6]}"
            job = await self.coordinator().claim.remote(job_id, owner)
            if job is None:
                return {"status": "not_claimed"}
            self.stats["started"] += 1
            lease = _Lease(self.coordinator(), job_id, owner, self.settings.api.lease_s / 3,
                           job["progress"]["of"])
            status, error, post_id = await self._run_claimed(job, lease)
            self.stats[{"done": "completed"}.get(status, status)] += 1
            final = await lease.finish(status, error, post_id)
        return final or {"status": status, "error": error}

    async def _run_claimed(self, job: dict[str, Any],
                           lease: _Lease) -> tuple[str, str | None, str | None]:
        limit = self.settings.api.job_timeout_s

        def work(cancel: threading.Event) -> str:
            started = time.monotonic()

            def progress(stage: str) -> None:
                if cancel.is_set():
                    raise Cancelled(lease.stop_reason or "cancelled")
                if time.monotonic() - started > limit:
                    raise TimeoutError(f"ran longer than api.job_timeout_s = {limit:g} s")
                lease.advance(stage)

            self._refresh()
            post = self.generator.generate(job["user_id"], platform=job["platform"],
                                           kind=job["kind"], seed=job["seed"], progress=progress)
            return post.post_id  # differs from the job id when the profile changed meanwhile

        cancel = threading.Event()
        renewals = asyncio.get_running_loop().create_task(lease.keep(cancel))
        try:
            post_id = await self._in_thread(work, cancel)
        except (asyncio.CancelledError, Cancelled) as exc:
            reason = lease.stop_reason or "cancelled"
            if isinstance(exc, asyncio.CancelledError):
                # report after the request is gone; held here so the task is not collected
                task = asyncio.get_running_loop().create_task(
                    lease.finish("cancelled", reason, None))
                self._reports.add(task)
                task.add_done_callback(self._reports.discard)
                raise
            return "cancelled", reason, None
        except (TailorMindError, TimeoutError) as exc:
            return "failed", f"{type(exc).__name__}: {exc}", None
        except Exception as exc:  # a bug: recorded on the job, and in the replica log
            logger.exception("GenerationWorker: job %s failed", job["job_id"])
            return "failed", f"internal error: {type(exc).__name__}: {exc}", None
        finally:
            renewals.cancel()
        return "done", None, post_id


def _replica_name() -> str:
    try:
        return serve.get_replica_context().replica_tag
    except Exception:  # outside a replica (unit tests)
        return f"pid{os.getpid()}"


class _Lease:
    """A worker's hold on one job: renews it every ``every_s`` seconds and at each new stage;
    sets the work's cancel event when the coordinator asks for a cancel or the hold is lost."""

    def __init__(self, coordinator: Any, job_id: str, owner: str, every_s: float,
                 steps: int) -> None:
        self.coordinator, self.job_id, self.owner = coordinator, job_id, owner
        self.every_s, self.steps, self.step = every_s, steps, 0
        self.progress: dict[str, Any] | None = None
        self.stop_reason: str | None = None
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def advance(self, stage: str) -> None:
        """Called from the work thread at each stage."""
        self.step += 1
        self.progress = {"stage": stage, "step": min(self.step, self.steps), "of": self.steps}
        self._loop.call_soon_threadsafe(self._changed.set)

    async def keep(self, cancel: threading.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self.every_s)
            self._changed.clear()
            try:
                answer = await self.coordinator.renew.remote(self.job_id, self.owner,
                                                             self.progress)
            except Exception as exc:  # the coordinator is restarting: try again next time
                logger.warning("GenerationWorker: renewing %s failed: %s", self.job_id, exc)
                continue
            if not answer["held"] or answer["cancel"]:
                self.stop_reason = ("cancelled" if answer["held"] else
                                    "the lease was lost (the job was given to another worker)")
                cancel.set()

    async def finish(self, status: str, error: str | None,
                     post_id: str | None) -> dict[str, Any] | None:
        """Report the end, retrying while the coordinator restarts (then the lease decides)."""
        for attempt in range(5):
            try:
                return await self.coordinator.finish.remote(self.job_id, self.owner, status,
                                                            error, post_id)
            except Exception as exc:
                logger.warning("GenerationWorker: reporting %s failed: %s", self.job_id, exc)
                await asyncio.sleep(0.5 * 2 ** attempt)
        return None
