"""``ray job submit`` entrypoint: describe every item (Eq. 8) on Ray Data actors, resumably.

    ray job submit --working-dir . -- python jobs/describe_items.py --workspace /mnt/data/ws \
        --workers 4 [--cpus-per-worker 1] [--limit N] [--force]

Items already described (parts of an interrupted run, or a finished table) are skipped; each
finished batch is written atomically, so a killed job loses at most the batches in flight.
Progress lines (items done / total, rate, ETA) go to stdout for `ray job logs`.
Configuration comes from ``TAILORMIND_CONFIG`` / ``TAILORMIND_*`` as for the CLI.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import WorkspaceLocation, open_location
from tailormind.job_entry import data_job_parser, run_job
from tailormind.progress import ProgressLog


def main(argv: list[str] | None = None) -> int:
    args = data_job_parser(__doc__.splitlines()[0], "items").parse_args(argv)

    def work(where: WorkspaceLocation) -> dict:
        from tailormind.profiling.ray_items import describe_items_ray

        settings = load_config(args.config)
        ws = Workspace.open(where.path)
        progress = ProgressLog("describe", "items")
        report = describe_items_ray(ws, settings, workers=args.workers,
                                    cpus_per_worker=args.cpus_per_worker, limit=args.limit,
                                    force=args.force, progress=progress, on_plan=progress.plan,
                                    resources=where.actor_resources())
        return {**asdict(report), "counts": dict(report.counts)}

    def body() -> dict:
        with open_location(args.workspace) as where:
            return work(where)

    return run_job(body, args)


if __name__ == "__main__":
    sys.exit(main())
