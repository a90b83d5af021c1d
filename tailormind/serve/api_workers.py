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
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import serve

from tailormind.config import Settings, load_config
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError
from tailormind.serve.api_jobs import JobStore, total_steps
from tailormind.serve.heap_trim import HeapTrimmer


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
        """Run ``fn(cancel_event)`` in a thread in one of the replica's slots; on cancellation
        set the event and wait for the thread to stop before giving the slot to the next request."""
        cancel = threading.Event()
        await self._ensure_loaded()
        async with self._slots:
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
                  ray_actor_options={"num_cpus": 0.1})
class GenerationWorker(_Worker):
    def __init__(self, workspace: str, config: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        super().__init__(workspace, config, overrides)
        self.jobs = JobStore(self.root)
        self._profiles_mtime = 0.0

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

    async def run(self, job_id: str) -> dict[str, Any]:
        """Run a queued job to its end, recording progress; returns the final record."""
        job = self.jobs.read(job_id)
        if job is None:
            raise TailorMindError(f"job {job_id} has no record")
        steps = total_steps(job["kind"], self.settings.generation.reflection_rounds)
        limit = self.settings.api.job_timeout_s

        def work(cancel: threading.Event) -> dict[str, Any]:
            started = time.monotonic()
            step = 0
            if self.jobs.cancel_requested(job_id):
                raise Cancelled("cancelled before it started")

            def progress(stage: str) -> None:
                nonlocal step
                if cancel.is_set() or self.jobs.cancel_requested(job_id):
                    raise Cancelled("cancelled")
                if time.monotonic() - started > limit:
                    raise TimeoutError(f"ran longer than api.job_timeout_s = {limit:g} s")
                step += 1
                self.jobs.update(job_id, status="running",
                                 progress={"stage": stage, "step": min(step, steps), "of": steps})

            self._refresh()
            post = self.generator.generate(job["user_id"], platform=job["platform"],
                                           kind=job["kind"], seed=job["seed"], progress=progress)
            if post.post_id != job_id:  # the profile changed between request and run
                return {"post_id": post.post_id}
            return {"post_id": job_id}

        self.stats["started"] += 1
        try:
            outcome = await self._exclusive(work)
        except asyncio.CancelledError:
            self.jobs.update(job_id, status="cancelled", error="cancelled while running")
            raise
        except Cancelled as exc:
            self.stats["cancelled"] += 1
            return self.jobs.update(job_id, status="cancelled", error=str(exc))
        except (TailorMindError, TimeoutError) as exc:
            self.stats["failed"] += 1
            return self.jobs.update(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug: recorded on the job, then raised for the replica log
            self.stats["failed"] += 1
            self.jobs.update(job_id, status="failed", error=f"internal error: "
                             f"{type(exc).__name__}: {exc}")
            raise
        self.stats["completed"] += 1
        return self.jobs.update(job_id, status="done", post_id=outcome["post_id"],
                                progress={"stage": "done", "step": steps, "of": steps})
