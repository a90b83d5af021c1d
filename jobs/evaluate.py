"""``ray job submit`` entrypoint: evaluate a workspace — CF models, profiles, and TailorBench.

    ray job submit --working-dir . -- python jobs/evaluate.py --workspace /shared/ws \
        [--config configs/cluster.yaml] [--bench-users 20] [--workers 4] [--no-bench]

Scores every trained CF model and every profiles table (the method and its ablations) on the
1:99 test candidate sets (Recall/NDCG@10/20) and writes ``evaluation/report.json``. Then, when the
workspace has profiles, runs TailorBench (``tailormind bench run``) on ``--bench-users`` users
(default: bench.users): it profiles and generates what each method still lacks (``--workers``
Ray Data actors; bundles and profiles are reused, so a rerun only re-scores) and writes
``bench/report.md``, ``bench/report.html`` and ``bench/report.json``. Prints one JSON report.
"""

from __future__ import annotations

import sys

from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import open_location
from tailormind.job_entry import job_parser, run_job
from tailormind.pipeline import evaluate_workspace_all


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--bench-users", type=int, default=None,
                        help="TailorBench users (default: bench.users)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Ray Data actors for the benchmark's generation")
    parser.add_argument("--no-bench", action="store_true", help="CF and profile metrics only")
    args = parser.parse_args(argv)
    if args.bench_users is not None and args.bench_users < 1:
        parser.error("--bench-users must be at least 1")

    def body() -> dict:
        from tailormind.bench.run import run_bench

        settings = load_config(args.config)
        with open_location(args.workspace) as where:
            ws = Workspace.open(where.path)
            report = evaluate_workspace_all(ws, settings)
            if args.no_bench:
                report["bench"] = {"skipped": "--no-bench"}
            elif not ws.has("profiles"):
                report["bench"] = {"skipped": "no profiles: run profiling (jobs/profile_users.py) "
                                              "first"}
            else:
                run = run_bench(ws, settings, users=args.bench_users, workers=args.workers)
                report["bench"] = {
                    "report": {k: str(v) for k, v in run.paths.items()},
                    "dimensions": run.report["dimensions"], "flags": run.report["flags"],
                    "methods": run.report["methods"]}
            return report

    return run_job(body, args)


if __name__ == "__main__":
    sys.exit(main())
