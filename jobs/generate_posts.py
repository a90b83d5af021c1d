"""``ray job submit`` entrypoint: posts and short videos for profiled users on Ray Data.

    ray job submit --working-dir . -- python jobs/generate_posts.py --workspace /mnt/data/ws \
        --workers 4 [--users 1000 | --user U ...] [--kind post --kind video] \
        [--platform rednote] [--limit N] [--force]

Posts already bundled (same user, kind, platform, profile, config and seed) are skipped, so a
killed job resumes where it stopped; one user's failure is recorded and the others go on (exit 1
when any failed, after everything else is done). Writes the ``generations`` table and the
gallery ``generations/index.html``. Needs `profile run` (profiles). Configuration comes from
``TAILORMIND_CONFIG`` / ``TAILORMIND_*`` as for the CLI.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import WorkspaceLocation, open_location
from tailormind.errors import TailorMindError
from tailormind.job_entry import data_job_parser, run_job
from tailormind.progress import ProgressLog


class PostsFailed(TailorMindError):
    exit_code = 1


def main(argv: list[str] | None = None) -> int:
    parser = data_job_parser(__doc__.splitlines()[0], "posts")
    parser.add_argument("--users", type=int, default=None, help="a seeded sample of N users")
    parser.add_argument("--user", action="append", default=None, help="this user (repeatable)")
    parser.add_argument("--kind", action="append", default=None, choices=["post", "video"],
                        help="post and/or video (default: the platform's usual kind)")
    parser.add_argument("--platform", default=None, help="rednote | hupu | bilibili")
    args = parser.parse_args(argv)

    def work(where: WorkspaceLocation) -> dict:
        from tailormind.generation.batch import plan_generations
        from tailormind.generation.gallery import write_gallery
        from tailormind.generation.ray_generate import generate_users_ray

        settings = load_config(args.config)
        ws = Workspace.open(where.path)
        plan = plan_generations(ws, settings, users=args.user, sample=args.users,
                                kinds=args.kind, platform=args.platform, limit=args.limit,
                                force=args.force)
        progress = ProgressLog("generate", "posts")
        progress.plan(len(plan.todo))
        report = generate_users_ray(ws, settings, plan, workers=args.workers,
                                    cpus_per_worker=args.cpus_per_worker, progress=progress,
                                    resources=where.actor_resources())
        gallery = write_gallery(ws)
        result = {"generation": {**asdict(report), "fallbacks": dict(report.fallbacks)},
                  "gallery": str(gallery)}
        if report.failed:
            print(f"{len(report.failed)} post(s) failed:", file=sys.stderr)
            for key, error in report.failed.items():
                print(f"  {key}: {error}", file=sys.stderr)
            raise PostsFailed(f"{len(report.failed)} of {report.wanted} posts failed (listed "
                              f"above); the rest are bundled — run again after fixing the cause")
        return result

    def body() -> dict:
        with open_location(args.workspace) as where:
            return work(where)

    return run_job(body, args)


if __name__ == "__main__":
    sys.exit(main())
