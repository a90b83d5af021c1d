"""CF checkpoints in the workspace: ``cf/<model>.pt`` plus a manifest entry ``cf:<model>``.

A checkpoint holds the best state dict, the final (propagated) user and item embeddings, the id
order they follow, the config used and the training history, so recommending and evaluating
need neither the graph nor the training code.

It also records what ``cf train --resume`` and ``cf recommend --users-changed`` need: the
workspace **watermark** (append id, :mod:`tailormind.data.appends`) of the data it was trained
on, the names of its tag rows, and its **lineage** (an id a from-scratch training draws and every
resumed training keeps, so "the same model, fine-tuned" is told apart from "a new model").
Checkpoints written before these existed read as watermark 0, tag rows unnamed, lineage None.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tailormind.cf.data import CFData
from tailormind.cf.train import TrainResult, graph_tag_names
from tailormind.config import CFConfig
from tailormind.core.atomic import atomic_path
from tailormind.data.workspace import Workspace
from tailormind.errors import CorruptFileError, WorkspaceError

FORMAT = 1


def artifact_name(model: str) -> str:
    return f"cf:{model}"


@dataclass
class CFCheckpoint:
    model: str
    user_ids: list[str]
    item_ids: list[str]
    user_embeddings: np.ndarray
    item_embeddings: np.ndarray
    summary: dict[str, Any]
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor] | None = None
    watermark: int = 0
    tag_names: list[str] | None = None  # None: not recorded (a checkpoint from before resume)
    lineage: str | None = None

    @property
    def use_tags(self) -> bool:
        """Whether the model had tag rows (HypergraphCF with tags on 2+ items)."""
        return bool(self.summary.get("use_tags"))


def save_checkpoint(workspace: Workspace, result: TrainResult, data: CFData, cfg: CFConfig,
                    name: str | None = None, *, lineage: str | None = None,
                    resumed: dict[str, Any] | None = None) -> str:
    """Write the checkpoint atomically and record it; returns its artifact name.

    The watermark is ``data``'s (what the model saw); ``lineage`` is kept by a resumed training
    (``resumed`` says from what), a new one is drawn otherwise."""
    name = name or result.model
    relative = f"cf/{name}.pt"
    lineage = lineage or uuid.uuid4().hex
    lineage_info = {"watermark": data.watermark, "lineage": lineage,
                    **({"resumed": resumed} if resumed else {})}
    payload = {
        "format": FORMAT,
        "model": result.model,
        "state_dict": result.state_dict,
        "user_ids": data.user_ids,
        "item_ids": data.item_ids,
        "user_embeddings": torch.from_numpy(result.user_embeddings),
        "item_embeddings": torch.from_numpy(result.item_embeddings),
        "config": cfg.model_dump(mode="json"),
        "summary": result.summary(),
        "tag_names": graph_tag_names(data, cfg.tag_min_items) if result.use_tags else [],
        **lineage_info,
    }
    with atomic_path(workspace.artifact_path(relative)) as tmp:
        torch.save(payload, tmp)
    summary = {k: v for k, v in result.summary().items() if k != "history"}
    workspace.record_artifact(artifact_name(name), relative, **summary, **lineage_info)
    return artifact_name(name)


def trained_models(workspace: Workspace) -> list[str]:
    """Names of the CF models with a checkpoint in the workspace."""
    return sorted(n.split(":", 1)[1] for n in workspace.manifest.get("artifacts", {})
                  if n.startswith("cf:") and workspace.has_artifact(n))


def load_checkpoint(workspace: Workspace, model: str) -> CFCheckpoint:
    """Load ``cf/<model>.pt``; a clear error when it was never trained (or a split made it stale)."""
    name = artifact_name(model)
    if not workspace.has_artifact(name):
        have = ", ".join(trained_models(workspace)) or "none"
        raise WorkspaceError(
            f"no trained CF model '{model}' in {workspace.root} (trained: {have}); run "
            f"`tailormind cf train --workspace {workspace.root} --model {model}` first"
        )
    path = workspace.artifact_path(workspace.artifact(name)["path"])
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise WorkspaceError(f"{path}: the checkpoint of CF model '{model}' is gone; run "
                             f"`tailormind cf train --workspace {workspace.root} --model {model}`"
                             ) from None
    except Exception as exc:  # noqa: BLE001 (torch/pickle raise many types for a damaged file)
        raise CorruptFileError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})"
                               ) from None
    if not isinstance(payload, dict):
        raise CorruptFileError(f"{path}: corrupt checkpoint (not a TailorMind checkpoint)")
    if payload.get("format") != FORMAT:
        raise WorkspaceError(f"{path}: unsupported checkpoint format {payload.get('format')}")
    return CFCheckpoint(
        model=payload["model"],
        user_ids=payload["user_ids"],
        item_ids=payload["item_ids"],
        user_embeddings=payload["user_embeddings"].numpy(),
        item_embeddings=payload["item_embeddings"].numpy(),
        summary=payload["summary"],
        config=payload["config"],
        state_dict=payload.get("state_dict"),
        watermark=int(payload.get("watermark", 0)),
        tag_names=payload.get("tag_names"),
        lineage=payload.get("lineage"),
    )
