"""Pipeline stages with 1, 2, ... Ray Data workers on one machine: seconds per stage and speed-up.

    python benchmarks/pipeline_scaling.py [--slice-users 60] [--users 8] [--workers 1 2]
                                          [--num-cpus 4] [--out /tmp/scaling]

Imports a seeded slice of the bundled MovieLens data and trains CF once (not timed), then for each
worker count runs describe -> profile -> generate (one post per user) on a fresh copy of that
workspace with ``jobs/pipeline.py``'s code (`Pipeline`), on a local Ray with ``--num-cpus``
logical CPUs (each actor asks for 1). The model call cache is off, so every run does the same
model work. Prints a table: seconds per stage and per worker count, and the speed-up of each
count over the first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TIMED = ("describe", "profile", "generate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice-users", type=int, default=60)
    parser.add_argument("--users", type=int, default=8, help="users to profile and post for")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--num-cpus", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("/tmp/tailormind-scaling"))
    args = parser.parse_args()

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throw-away local cluster
    os.environ["TAILORMIND_MODELS__CACHE"] = "false"
    import ray

    from tailormind.config import load_config
    from tailormind.data.workspace_location import open_location
    from tailormind.pipeline import Pipeline, PipelineOptions

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    settings = load_config()
    base = args.out / "base"
    shutil.rmtree(args.out, ignore_errors=True)
    with open_location(str(base)) as where:
        Pipeline(where, settings, PipelineOptions(
            data=REPO / "data" / "ml-latest-small", slice_users=args.slice_users,
            stages=("import", "cf")), log=lambda line: None).run()

    seconds: dict[int, dict[str, float]] = {}
    for workers in args.workers:
        root = args.out / f"workers-{workers}"
        shutil.copytree(base, root)
        with open_location(str(root)) as where:
            started = time.perf_counter()
            report = Pipeline(where, settings, PipelineOptions(
                users=args.users, workers=workers, kinds=["post"], stages=TIMED)).run()
        seconds[workers] = {s["stage"]: s["seconds"] for s in report["stages"]}
        seconds[workers]["total"] = time.perf_counter() - started
        print(f"workers={workers}: " + ", ".join(f"{k} {v:.1f}s" for k, v in
                                                 seconds[workers].items()), flush=True)

    first = args.workers[0]
    print(f"\nslice: {args.slice_users} users; profile + post for {args.users} users; "
          f"Ray num_cpus={args.num_cpus} on {os.cpu_count()} cores; call cache off\n")
    header = "| stage | " + " | ".join(f"{w} worker(s) s" for w in args.workers)
    header += " | " + " | ".join(f"speed-up {w}/{first}" for w in args.workers[1:]) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(args.workers) - 1))
    for stage in (*TIMED, "total"):
        row = [f"{seconds[w][stage]:.1f}" for w in args.workers]
        row += [f"{seconds[first][stage] / seconds[w][stage]:.2f}x" for w in args.workers[1:]]
        print(f"| {stage} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
