"""``ray job submit`` entrypoint: evaluate a workspace — CF models and profiles on the test sets.

    ray job submit --working-dir . -- python jobs/evaluate.py --workspace /shared/ws \
        [--config configs/cluster.yaml]

Scores every trained CF model and every profiles table (the method and its ablations) on the
1:99 test candidate sets (Recall/NDCG@10/20), writes ``evaluation/report.json`` in the workspace
and prints it. Read-only apart from that report, so it can run beside other jobs.
"""

from __future__ import annotations

import sys

from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import open_location
from tailormind.job_entry import job_parser, run_job
from tailormind.pipeline import evaluate_workspace_all


def main(argv: list[str] | None = None) -> int:
    args = job_parser(__doc__.splitlines()[0]).parse_args(argv)

    def body() -> dict:
        settings = load_config(args.config)
        with open_location(args.workspace) as where:
            return evaluate_workspace_all(Workspace.open(where.path), settings)

    return run_job(body, args)


if __name__ == "__main__":
    sys.exit(main())
