"""``ray job submit`` entrypoint: the whole method, stage by stage, on the connected Ray cluster.

    ray job submit --working-dir . -- python jobs/pipeline.py --workspace /shared/ws \
        [--config configs/cluster.yaml] [--data data/ml-latest-small [--slice-users 200]] \
        [--users 20] [--workers 2] [--cf-workers 1] [--kind post] \
        [--stages import,describe,cf,profile,update,fit,generate,evaluate] [--force]

import (MovieLens, only when the workspace has none) -> describe items -> train CF + cf_topk ->
profile a seeded sample of ``--users`` users -> update the profiles of users with appended
interactions (from their current version) -> a post (and/or video) each + gallery -> evaluate
(``evaluation/report.json``). Finished stages are skipped, interrupted ones resume; the record of
the run (status and seconds per stage) is ``pipeline/last_run.json`` in the workspace.
``--workspace`` is a path (a shared volume on a cluster), a ``file://`` URI, or an object-store
URI pyarrow understands (``s3://bucket/ws``: staged on the driver's node, pushed back at the end).
Exit codes: 0 done, 1 some posts failed (the rest bundled), 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tailormind.config import load_config
from tailormind.data.workspace_location import open_location
from tailormind.job_entry import data_job_parser, run_job
from tailormind.errors import TailorMindError
from tailormind.pipeline import STAGES, Pipeline, PipelineOptions, check_start


def _users(value: str) -> int | None:
    if value == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of users or 'all'") from None


def main(argv: list[str] | None = None) -> int:
    parser = data_job_parser(__doc__.splitlines()[0], "users", limit=False)
    parser.add_argument("--data", type=Path, default=None,
                        help="MovieLens latest-small directory to import when there is no workspace")
    parser.add_argument("--slice-users", type=int, default=None,
                        help="import only a seeded sample of N users (and the items they touched)")
    parser.add_argument("--users", type=_users, default=3,
                        help="users to profile and generate for: N (a seeded sample) or 'all'")
    parser.add_argument("--cf-workers", type=int, default=1, help="Ray Train workers for CF")
    parser.add_argument("--cf-epochs", type=int, default=None, help="default: config cf.epochs")
    parser.add_argument("--cf-gpu", action="store_true", help="one GPU per Ray Train worker")
    parser.add_argument("--kind", action="append", default=None, choices=["post", "video"],
                        help="post and/or video (default: the platform's usual kind)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated subset of {','.join(STAGES)}")
    args = parser.parse_args(argv)

    try:  # bad arguments and configs fail here, before Ray starts
        settings = load_config(args.config)
        options = PipelineOptions(
            data=args.data, slice_users=args.slice_users, users=args.users, workers=args.workers,
            cpus_per_worker=args.cpus_per_worker, cf_workers=args.cf_workers,
            cf_epochs=args.cf_epochs, cf_gpu=args.cf_gpu, kinds=args.kind, force=args.force,
            stages=tuple(s.strip() for s in args.stages.split(",") if s.strip()))
        check_start(args.workspace, options)
    except TailorMindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    def body() -> dict:
        with open_location(args.workspace) as where:
            return Pipeline(where, settings, options).run()

    return run_job(body)


if __name__ == "__main__":
    sys.exit(main())
