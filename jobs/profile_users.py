"""``ray job submit`` entrypoint: profile users (init + textual-gradient refinement) on Ray Data.

    ray job submit --working-dir . -- python jobs/profile_users.py --workspace /mnt/data/ws \
        --workers 4 [--users 1000] [--variant nocf] [--limit N] [--force] [--fit] [--eval]

Users already profiled (a finished table, or the parts of a killed run) are skipped; each batch
is written atomically. Needs `profile describe` (item_features) and, with CF augmentation on,
`cf recommend` (cf_topk). ``--fit`` then fits and saves the hybrid ranker's weights (``tailormind
profile fit``); ``--eval`` scores every method on the test sets afterwards (and saves nothing).
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
    parser = data_job_parser(__doc__.splitlines()[0], "users")
    parser.add_argument("--users", type=int, default=None, help="a seeded sample of N users")
    parser.add_argument("--variant", default=None, help="write profiles__VARIANT (an ablation)")
    parser.add_argument("--fit", action="store_true",
                        help="fit and save the hybrid ranker's weights afterwards (profile fit)")
    parser.add_argument("--eval", action="store_true", help="evaluate every method afterwards")
    args = parser.parse_args(argv)

    def work(where: WorkspaceLocation) -> dict:
        from tailormind.profiling.ray_profiles import profile_users_ray

        settings = load_config(args.config)
        ws = Workspace.open(where.path)
        progress = ProgressLog("profile", "users")
        report = profile_users_ray(ws, settings, workers=args.workers,
                                   cpus_per_worker=args.cpus_per_worker, sample=args.users,
                                   variant=args.variant, limit=args.limit, force=args.force,
                                   progress=progress, on_plan=progress.plan,
                                   resources=where.actor_resources())
        result = {"profiles": {**asdict(report), "fallbacks": dict(report.fallbacks)}}
        ws = Workspace.open(where.path)
        if args.fit and report.complete and args.variant is None:
            from tailormind.profiling.fit import fit_hybrid

            fusion = fit_hybrid(ws, settings)
            result["fit"] = {"weights": fusion.as_dict(), "fit_sets": fusion.fit_sets}
        if args.eval and report.complete:
            from tailormind.profiling.evaluate import evaluate_profiles, variant_tables

            result["evaluation"] = asdict(evaluate_profiles(ws, settings, variant_tables(ws)))
        return result

    def body() -> dict:
        with open_location(args.workspace) as where:
            return work(where)

    return run_job(body, args)


if __name__ == "__main__":
    sys.exit(main())
