"""``profile update`` on Ray Data (``jobs/update_profiles.py``): the users to update sharded
over actors that each hold a Profiler.

The driver plans who is left (:func:`~tailormind.profiling.update.plan_updates`), streams the
actors' batches back and writes each as an atomic part (only the driver touches the parts), then
moves the superseded versions to ``profile_history`` and writes ``profiles``
(:func:`~tailormind.profiling.update.finish_updates`). A killed job, re-run, skips the users in
its parts: each user is updated exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from tailormind.config import Settings
from tailormind.data.ray_blocks import blocks_dataset
from tailormind.data.workspace import Workspace
from tailormind.models.registry import load_role
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.profiler import Profiler
from tailormind.profiling.profiles import build_ranker, provenance
from tailormind.profiling.update import (
    UpdateReport,
    finish_updates,
    plan_updates,
    record_updates,
    update_batch,
)


class UpdateActor:
    """Loads the models once; plans the same evidence as the driver (seeded, deterministic)."""

    def __init__(self, workspace_root: str, config: dict[str, Any], users: list[str]) -> None:
        settings = Settings.model_validate(config)
        workspace = Workspace.open(workspace_root)
        features = ItemFeatures.load(workspace)
        self.plan = plan_updates(workspace, settings, features, users, skip_done=False)
        text, self.embed = load_role("text", settings), load_role("embed", settings)
        self.profiler = Profiler(settings, features, build_ranker(
            settings, features, text=text, embed=self.embed, workspace=workspace), text)
        self.info = provenance(settings, text.model_id, self.embed.model_id,
                               self.profiler.ranker.name)

    def __call__(self, batch: pa.Table) -> pa.Table:
        users = batch.column("user_id").to_pylist()
        return update_batch(self.profiler, self.plan, users, self.embed, self.info)


def update_profiles_ray(workspace: Workspace, settings: Settings, *, workers: int = 1,
                        cpus_per_worker: float = 1.0, users: list[str] | None = None,
                        progress: Callable[[int], None] | None = None,
                        resources: dict[str, float] | None = None,
                        on_plan: Callable[[int], None] | None = None) -> UpdateReport:
    """Update every profiled user (or ``users``) with newer interactions, on ``workers``
    actors; nobody else costs a model call (no actor starts when nobody needs one)."""
    started = time.perf_counter()
    plan = plan_updates(workspace, settings, ItemFeatures.load(workspace), users)
    if on_plan:
        on_plan(len(plan.todo))
    if plan.todo:
        size = settings.profiling.batch_users
        blocks = max(workers, -(-len(plan.todo) // size))
        dataset = blocks_dataset(pa.table({"user_id": plan.todo}), blocks)
        updated = dataset.map_batches(
            UpdateActor,
            fn_constructor_args=(str(workspace.root), settings.model_dump(mode="json"),
                                 plan.todo),
            batch_size=size, batch_format="pyarrow", concurrency=workers,
            num_cpus=cpus_per_worker, **({"resources": resources} if resources else {}))
        for batch in updated.iter_batches(batch_size=None, batch_format="pyarrow"):
            if batch.num_rows:
                record_updates(plan, batch, progress)
    return finish_updates(workspace, plan, started)
