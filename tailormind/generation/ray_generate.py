"""Generation on Ray Data: planned (user, kind) posts sharded over actors that each hold a
:class:`~tailormind.generation.pipeline.Generator` (models loaded once per actor).

Each actor writes its bundles into the workspace (atomic renames; the workspace must be a path
every worker sees — a shared filesystem on a cluster); the driver only counts the rows that come
back and indexes the bundles at the end. A killed job re-plans and skips every bundle on disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from tailormind.config import Settings
from tailormind.data.ray_blocks import blocks_dataset
from tailormind.data.workspace import Workspace
from tailormind.generation.batch import (
    GenerationPlan,
    GenerationReport,
    GenerationTask,
    finish_generations,
    task_row,
)

_ROW_SCHEMA = pa.schema([("user_id", pa.string()), ("kind", pa.string()),
                         ("post_id", pa.string()), ("error", pa.string()),
                         ("llm_tokens", pa.int64()), ("fallbacks", pa.list_(pa.string()))])


class GenerateActor:
    def __init__(self, workspace_root: str, config: dict[str, Any], kinds: list[str],
                 options: dict[str, Any] | None = None) -> None:
        from tailormind.generation.pipeline import Generator, Roles

        settings = Settings.model_validate(config)
        workspace = Workspace.open(workspace_root)
        self.generator = Generator(workspace, settings,
                                   roles=Roles.load(settings, kinds=tuple(kinds)),
                                   **(options or {}))

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = [task_row(self.generator, GenerationTask(**task)) for task in batch.to_pylist()]
        return pa.Table.from_pylist(rows, schema=_ROW_SCHEMA)


def generate_users_ray(workspace: Workspace, settings: Settings, plan: GenerationPlan, *,
                       workers: int = 1, cpus_per_worker: float = 1.0,
                       progress: Callable[[int], None] | None = None,
                       resources: dict[str, float] | None = None,
                       generator_options: dict[str, Any] | None = None,
                       index: bool = True) -> GenerationReport:
    """``generator_options``: keyword arguments of each actor's
    :class:`~tailormind.generation.pipeline.Generator` (JSON-able: the benchmark's ablations);
    ``index``: rewrite the workspace's ``generations`` table at the end."""

    started = time.perf_counter()
    if plan.todo:
        tasks = pa.Table.from_pylist([t.__dict__ for t in plan.todo])
        dataset = blocks_dataset(tasks, max(workers, len(plan.todo)))
        kinds = sorted({t.kind for t in plan.todo})
        made = dataset.map_batches(
            GenerateActor,
            fn_constructor_args=(str(workspace.root), settings.model_dump(mode="json"), kinds,
                                 generator_options),
            batch_size=1, batch_format="pyarrow", concurrency=workers, num_cpus=cpus_per_worker,
            **({"resources": resources} if resources else {}),
        )
        for batch in made.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                plan.report.record(row)
                if progress:
                    progress(1)
    return finish_generations(workspace, plan, started, index=index)
