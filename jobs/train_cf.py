"""``ray job submit`` entrypoint: train a CF model with Ray Train, save it, write ``cf_topk``.

    ray job submit --working-dir . -- python jobs/train_cf.py --workspace /mnt/data/ws \
        --model hypergraph --workers 4 [--gpu] [--epochs 60] [--k 10] [--resume] [--users-changed]

The workspace must be on storage every worker can read (a shared volume on KubeRay).
Configuration comes from ``TAILORMIND_CONFIG`` / ``TAILORMIND_*`` as for the CLI.
``--resume`` and ``--users-changed`` are ``cf train --resume`` and ``cf recommend
--users-changed`` (fine-tune the last checkpoint on the grown workspace; recompute only the users
whose neighbourhood changed).
"""

from __future__ import annotations

import json
import sys

from tailormind.cf.checkpoint import save_checkpoint
from tailormind.cf.data import load_cf_data
from tailormind.cf.distributed import train_distributed
from tailormind.cf.evaluate import evaluate_workspace
from tailormind.cf.recommend import recommend_workspace
from tailormind.cf.resume import prepare_resume
from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import open_location
from tailormind.errors import TailorMindError
from tailormind.job_entry import job_parser


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hypergraph or lightgcn (config cf.model)")
    parser.add_argument("--workers", type=int, default=None, help="Ray Train workers (config cf.workers)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker, NCCL")
    parser.add_argument("--k", type=int, default=None, help="cf_topk size (config cf.top_k)")
    parser.add_argument("--name", default=None, help="checkpoint name (default: the model)")
    parser.add_argument("--resume", action="store_true",
                        help="fine-tune the last checkpoint for cf.resume_epochs epochs")
    parser.add_argument("--users-changed", action="store_true",
                        help="recompute cf_topk only for users whose neighbourhood changed")
    args = parser.parse_args(argv)
    try:
        settings = load_config(args.config)
        cfg = settings.cf
        model = args.model or cfg.model
        with open_location(args.workspace) as where:
            ws = Workspace.open(where.path)
            data = load_cf_data(ws)
            name, plan = args.name or model, None
            if args.resume:
                plan = prepare_resume(ws, name, data, cfg, model=args.model)
                model = plan.model
            result = train_distributed(ws, cfg, model, workers=args.workers or cfg.workers,
                                       seed=settings.seeds.cf,
                                       epochs=args.epochs or (plan.epochs if plan else None),
                                       use_tags=plan.use_tags if plan else None,
                                       use_gpu=args.gpu, resources=where.actor_resources(),
                                       resume=name if plan else None)
            save_checkpoint(ws, result, data, cfg, name=name,
                            lineage=plan.checkpoint.lineage if plan else None,
                            resumed=plan.summary() if plan else None)
            topk = recommend_workspace(ws, name, args.k or cfg.top_k,
                                       users_changed=args.users_changed)
            rows = evaluate_workspace(ws, [name])
    except TailorMindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    notes = (plan.notes if plan else []) + result.notes + topk.notes
    print(json.dumps({"model": name, "notes": notes, "watermark": data.watermark,
                      "cf_topk": {"users_recomputed": topk.recomputed, "users_kept": topk.kept},
                      "evaluation": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
