"""CF training on several workers with Ray Train (``TorchTrainer``; gloo on CPU, NCCL on GPU).

Every worker opens the workspace (shared storage on a cluster), builds the same graph and model
(same seed; DDP also broadcasts rank 0's parameters) and trains on its ``rank::world`` share of
every global batch, so N workers take the same optimisation steps as one. Gradients are averaged
by DistributedDataParallel. Each epoch is reported through ``ray.train.report``; rank 0 attaches
a checkpoint whenever validation NDCG@20 improves. The best checkpoint is returned.

With ``resume`` (a checkpoint name, ``cf train --resume``) every worker builds the same start
table from that checkpoint (:func:`tailormind.cf.resume.prepare_resume`, deterministic).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from tailormind.cf.data import load_cf_data
from tailormind.cf.recommender import GraphRecommender
from tailormind.cf.train import EpochLog, TrainResult, train_model
from tailormind.config import CFConfig
from tailormind.core.atomic import atomic_path
from tailormind.data.workspace import Workspace

RESULT_FILE = "result.pt"


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point (runs inside each worker)."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    threads = config.get("threads_per_worker")
    if threads:
        torch.set_num_threads(int(threads))
    cfg = CFConfig.model_validate(config["cf"])
    workspace = Workspace.open(config["workspace"])
    data = load_cf_data(workspace)
    initial = None
    if config.get("resume"):
        from tailormind.cf.resume import prepare_resume

        initial = prepare_resume(workspace, config["resume"], data, cfg, model=config["model"],
                                 use_tags=config.get("use_tags")).initial.table
    device = ray.train.torch.get_device()

    def report(log: EpochLog, model: GraphRecommender) -> None:
        metrics = {"epoch": log.epoch, "loss": log.loss, "seconds": log.seconds}
        if log.valid:
            metrics.update({f"valid_{k}": v for k, v in log.valid.items()})
        if log.best and rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                           Path(tmp) / "model.pt")
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)

    result = train_model(
        data, cfg, config["model"], seed=config["seed"], epochs=config.get("epochs"),
        use_tags=config.get("use_tags"), device=device, rank=rank, world=world,
        wrap=ray.train.torch.prepare_model, report=report, initial=initial,
    )
    if rank == 0:
        with atomic_path(Path(config["result_dir"]) / RESULT_FILE) as tmp:
            torch.save(result, tmp)


def train_distributed(
    workspace: Workspace,
    cfg: CFConfig,
    model: str,
    *,
    workers: int,
    seed: int = 2026,
    epochs: int | None = None,
    use_tags: bool | None = None,
    use_gpu: bool = False,
    threads_per_worker: int | None = None,
    storage_path: str | Path | None = None,
    resources: dict[str, float] | None = None,
    resume: str | None = None,
) -> TrainResult:
    """Train with ``workers`` Ray Train workers; connects to (or starts) Ray as ``ray.init`` does."""
    import ray
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    root = workspace.root.resolve()
    storage = Path(storage_path) if storage_path else root / "cf" / "ray"
    with tempfile.TemporaryDirectory(dir=root) as result_dir:
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={
                "workspace": str(root), "cf": cfg.model_dump(mode="json"), "model": model,
                "seed": seed, "epochs": epochs, "use_tags": use_tags, "result_dir": result_dir,
                "threads_per_worker": threads_per_worker, "resume": resume,
            },
            scaling_config=ScalingConfig(
                num_workers=workers, use_gpu=use_gpu,
                resources_per_worker=({"CPU": 1.0, **({"GPU": 1.0} if use_gpu else {}),
                                       **resources} if resources else None)),
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            run_config=RunConfig(
                name=f"cf-{model}",
                storage_path=str(storage.resolve()),
                checkpoint_config=CheckpointConfig(num_to_keep=1),
            ),
        )
        trainer.fit()
        result: TrainResult = torch.load(Path(result_dir) / RESULT_FILE, weights_only=False)
    result.workers = workers
    return result
