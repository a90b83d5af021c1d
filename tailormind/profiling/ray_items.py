"""The describe stage on Ray Data: items sharded over actors that each hold the model roles.

The driver plans (which items are left), streams the actors' output batches back and writes each
as an atomic part, so a killed job resumes where it stopped; only the driver touches the parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from tailormind.config import Settings
from tailormind.data.ray_blocks import blocks_dataset
from tailormind.data.workspace import Workspace
from tailormind.profiling.items import (
    DescribeReport,
    ItemDescriber,
    count_outcomes,
    finish_describe,
    plan_describe,
)


class DescribeActor:
    """One Ray Data actor: loads the roles once, describes batches of item rows."""

    def __init__(self, workspace_root: str, config: dict[str, Any]) -> None:
        settings = Settings.model_validate(config)
        self.describer = ItemDescriber(settings, Workspace.open(workspace_root))

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.describer.describe_rows(batch.to_pylist())


def describe_items_ray(
    workspace: Workspace,
    settings: Settings,
    *,
    workers: int = 1,
    cpus_per_worker: float = 1.0,
    limit: int | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    resources: dict[str, float] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> DescribeReport:

    started = time.perf_counter()
    plan = plan_describe(workspace, settings, limit=limit, force=force)
    if on_plan:
        on_plan(len(plan.rows))
    if plan.report.complete:
        return plan.report
    if not plan.rows:
        return finish_describe(plan, {}, started)
    batch_size = settings.profiling.describe_batch_size
    blocks = max(workers, -(-len(plan.rows) // batch_size))  # enough blocks to feed every actor
    dataset = blocks_dataset(pa.Table.from_pylist(plan.rows), blocks)
    described = dataset.map_batches(
        DescribeActor,
        fn_constructor_args=(str(workspace.root), settings.model_dump(mode="json")),
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=workers,
        num_cpus=cpus_per_worker,
        **({"resources": resources} if resources else {}),
    )
    models: dict[str, str] = {}
    for batch in described.iter_batches(batch_size=None, batch_format="pyarrow"):
        if batch.num_rows == 0:
            continue
        plan.writer.write(batch)
        plan.report.described += batch.num_rows
        plan.report.counts.update(count_outcomes(batch))
        models.setdefault("embed", batch.column("embed_model")[0].as_py())
        if progress:
            progress(batch.num_rows)
    return finish_describe(plan, models, started)
