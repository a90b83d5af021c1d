"""``ray job submit`` entrypoint: re-profile only the users with interactions newer than their
profile (``tailormind data append``), from their current profile, on Ray Data.

    ray job submit --working-dir . -- python jobs/update_profiles.py --workspace /mnt/data/ws \
        --workers 4 [--user U ...]

Each updated user gets a new profile version (the old one moves to ``profile_history``); users
without newer interactions cost nothing. Each batch is written atomically: a killed job, re-run,
updates every user exactly once. New items need descriptions first (``profile describe`` /
jobs/describe_items.py). Configuration comes from ``TAILORMIND_CONFIG`` / ``TAILORMIND_*`` as for
the CLI.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import WorkspaceLocation, open_location
from tailormind.job_entry import job_parser, run_job
from tailormind.progress import ProgressLog


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="Ray Data actors")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--user", action="append", default=None,
                        help="only this user (repeatable)")
    args = parser.parse_args(argv)

    def work(where: WorkspaceLocation) -> dict:
        from tailormind.profiling.ray_update import update_profiles_ray

        settings = load_config(args.config)
        progress = ProgressLog("update", "users")
        report = update_profiles_ray(Workspace.open(where.path), settings, workers=args.workers,
                                     cpus_per_worker=args.cpus_per_worker, users=args.user,
                                     progress=progress, on_plan=progress.plan,
                                     resources=where.actor_resources())
        return {"update": asdict(report)}

    def body() -> dict:
        with open_location(args.workspace) as where:
            return work(where)

    return run_job(body, args)


if __name__ == "__main__":
    sys.exit(main())
