"""The profiling stage on Ray Data: users sharded over actors that each hold a Profiler.

The driver plans the users left, streams the actors' batches back and writes each as an atomic
part (only the driver touches the parts), so a killed job resumes without recomputing anyone.
Each actor loads the models once; inside an actor a batch of users shares every ``generate``.
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
from tailormind.profiling.evidence import ItemFeatures, load_evidence
from tailormind.profiling.profiler import Profiler
from tailormind.profiling.profiles import (
    ProfileReport,
    build_ranker,
    finish_profiles,
    first_version,
    plan_profiles,
    provenance,
    record_batch,
    run_batch,
    variant_settings,
)


class ProfileActor:
    def __init__(self, workspace_root: str, config: dict[str, Any]) -> None:
        settings = Settings.model_validate(config)
        workspace = Workspace.open(workspace_root)
        self.evidence = load_evidence(workspace, use_cf=settings.profiling.use_cf)
        features = ItemFeatures.load(workspace)
        text, self.embed = load_role("text", settings), load_role("embed", settings)
        self.profiler = Profiler(settings, features,
                                 build_ranker(settings, features, text=text, embed=self.embed,
                                              workspace=workspace), text)
        self.info = {**provenance(settings, text.model_id, self.embed.model_id,
                                  self.profiler.ranker.name), **first_version(workspace)}

    def __call__(self, batch: pa.Table) -> pa.Table:
        users = batch.column("user_id").to_pylist()
        return run_batch(self.profiler, [self.evidence[u] for u in users], self.embed, self.info)


def profile_users_ray(
    workspace: Workspace,
    settings: Settings,
    *,
    workers: int = 1,
    cpus_per_worker: float = 1.0,
    sample: int | None = None,
    variant: str | None = None,
    limit: int | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    resources: dict[str, float] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> ProfileReport:

    started = time.perf_counter()
    settings = variant_settings(settings, variant)
    plan = plan_profiles(workspace, settings, sample=sample, variant=variant, limit=limit,
                         force=force)
    if on_plan:
        on_plan(len(plan.todo))
    if not plan.todo:
        return finish_profiles(plan, started) if not plan.report.complete else plan.report
    size = settings.profiling.batch_users
    blocks = max(workers, -(-len(plan.todo) // size))
    dataset = blocks_dataset(pa.table({"user_id": plan.todo}), blocks)
    profiled = dataset.map_batches(
        ProfileActor,
        fn_constructor_args=(str(workspace.root), settings.model_dump(mode="json")),
        batch_size=size, batch_format="pyarrow", concurrency=workers, num_cpus=cpus_per_worker,
        **({"resources": resources} if resources else {}),
    )
    for batch in profiled.iter_batches(batch_size=None, batch_format="pyarrow"):
        if batch.num_rows:
            record_batch(plan, batch, progress)
    return finish_profiles(plan, started)
