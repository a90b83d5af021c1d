"""``cf train --resume``: fine-tune the last checkpoint on the grown graph instead of training
from scratch (after ``tailormind data append``).

The new model is built on the workspace as it is now (:func:`~tailormind.cf.data.load_cf_data`)
and its layer-0 table — the only learnt parameter — starts as follows (:func:`initial_rows`):

* a user, item or tag the checkpoint knows (matched by id; tags by name) keeps its learnt row
  exactly;
* a **new user** starts at the mean of the learnt rows of the distinct items it interacted with
  in train;
* a **new item** at the mean of the learnt rows of the distinct users who interacted with it in
  train and, for HypergraphCF with tags, of the tags it carries (its neighbours in X');
* a **new tag** (HypergraphCF) at the mean of the learnt rows of the items carrying it;
* only rows the checkpoint knows count as neighbours (one pass: a new row never seeds another);
  a new row without a known neighbour starts at the mean of the known rows of its kind (the
  global mean; zero if the checkpoint has none of that kind).

Then the usual loop (:func:`~tailormind.cf.train.train_model`: BPR + L2, a fresh Adam with
``cf.lr``, early stopping on validation NDCG@20) runs ``cf.resume_epochs`` epochs (default 20% of
``cf.epochs``, rounded up), and the checkpoint is saved with the new watermark and the old
lineage. A checkpoint whose model hyper-parameters (:data:`MODEL_KEYS`) differ from the config
cannot be resumed: its rows would not fit the model the config describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from tailormind.cf.checkpoint import CFCheckpoint, artifact_name, load_checkpoint, trained_models
from tailormind.cf.data import CFData
from tailormind.cf.hypergraph import HypergraphCF
from tailormind.cf.lightgcn import LightGCNBaseline
from tailormind.cf.train import graph_tag_names, select_tags
from tailormind.config import CFConfig
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError, WorkspaceError

#: Settings that shape the model (its table, its graph): a resumed checkpoint must share them.
MODEL_KEYS = ("embedding_dim", "layers")
TAG_KEYS = ("tag_normalization", "tag_weight", "tag_min_items")
EGO_KEY = {"hypergraph": HypergraphCF.ego_key, "lightgcn": LightGCNBaseline.ego_key}
KINDS = ("users", "tags", "items")


@dataclass
class InitialRows:
    """The starting layer-0 table (users, then tags, then items) and how each row got there."""

    table: np.ndarray
    known: dict[str, int] = field(default_factory=dict)  # rows copied from the checkpoint
    from_neighbours: dict[str, int] = field(default_factory=dict)  # new rows: neighbours' mean
    global_mean: dict[str, int] = field(default_factory=dict)  # new rows without a known neighbour
    dropped: dict[str, int] = field(default_factory=dict)  # checkpoint rows the data no longer has

    def summary(self) -> dict[str, dict[str, int]]:
        return {"known": self.known, "from_neighbours": self.from_neighbours,
                "global_mean": self.global_mean, "dropped": self.dropped}

    def describe(self) -> str:
        parts = []
        for kind in KINDS:
            total = self.known.get(kind, 0) + self.from_neighbours.get(kind, 0) + self.global_mean.get(kind, 0)
            if total:
                parts.append(f"{kind}: {self.known.get(kind, 0):,} kept, "
                             f"{self.from_neighbours.get(kind, 0):,} new from neighbours' mean, "
                             f"{self.global_mean.get(kind, 0):,} new from the global mean")
        return "; ".join(parts)


@dataclass
class ResumePlan:
    name: str  # checkpoint name (loaded and saved)
    model: str
    use_tags: bool
    epochs: int
    checkpoint: CFCheckpoint
    initial: InitialRows
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What the new checkpoint records under ``resumed``."""
        return {"from_watermark": self.checkpoint.watermark, "epochs": self.epochs,
                "rows": self.initial.summary()}


def _carry(old_ids: list[str], old_rows: np.ndarray, new_ids: list[str]
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows, known, dropped): ``new_ids``' rows copied where the checkpoint has the id."""
    where = {v: i for i, v in enumerate(old_ids)}
    source = np.fromiter((where.get(v, -1) for v in new_ids), dtype=np.int64, count=len(new_ids))
    known = source >= 0
    rows = np.zeros((len(new_ids), old_rows.shape[1]), dtype=np.float32)
    rows[known] = old_rows[source[known]]
    return rows, known, len(old_ids) - int(known.sum())


def _neighbour_sums(n_targets: int, targets: np.ndarray, sources: np.ndarray,
                    source_rows: np.ndarray, source_known: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per target: the sum of its distinct known sources' rows, and how many there were."""
    keep = source_known[sources] if len(sources) else np.zeros(0, dtype=bool)
    pairs = np.unique(np.stack([targets[keep], sources[keep]]).astype(np.int64), axis=1)
    links = sp.csr_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])),
                          shape=(n_targets, len(source_rows)))
    return links @ source_rows.astype(np.float64), np.asarray(links.sum(axis=1)).ravel()


def _fill(rows: np.ndarray, known: np.ndarray, sums: np.ndarray, counts: np.ndarray
          ) -> tuple[int, int]:
    """New rows <- sums / counts, or the known rows' mean without a neighbour; (neighbours, mean)."""
    new = ~known
    mean = rows[known].astype(np.float64).mean(axis=0) if known.any() else np.zeros(rows.shape[1])
    linked = new & (counts > 0)
    rows[linked] = sums[linked] / counts[linked, None]
    rows[new & (counts == 0)] = mean
    return int(linked.sum()), int((new & (counts == 0)).sum())


def initial_rows(checkpoint: CFCheckpoint, data: CFData, tag_names: list[str],
                 tag_items: np.ndarray, tag_ids: np.ndarray) -> InitialRows:
    """The new model's layer-0 table from ``checkpoint`` (the rule in the module docstring).

    ``tag_names`` are the new model's tag rows in order; ``tag_items``/``tag_ids`` its item-tag
    incidences (:func:`~tailormind.cf.train.select_tags`); all empty for a model without tags."""
    ego = checkpoint.state_dict[EGO_KEY[checkpoint.model]].detach().cpu().numpy()
    n_old_users, n_old_items = len(checkpoint.user_ids), len(checkpoint.item_ids)
    old_tags = ego[n_old_users: len(ego) - n_old_items]
    old_tag_names = checkpoint.tag_names if checkpoint.tag_names is not None and \
        len(checkpoint.tag_names) == len(old_tags) else []
    users, user_known, user_drop = _carry(checkpoint.user_ids, ego[:n_old_users], data.user_ids)
    items, item_known, item_drop = _carry(checkpoint.item_ids, ego[len(ego) - n_old_items:],
                                          data.item_ids)
    tags, tag_known, _ = _carry(old_tag_names, old_tags[: len(old_tag_names)], tag_names)
    # every sum reads known rows only, before any new row is filled (one pass)
    user_sums = _neighbour_sums(len(users), data.train_users, data.train_items, items, item_known)
    by_users = _neighbour_sums(len(items), data.train_items, data.train_users, users, user_known)
    by_tags = _neighbour_sums(len(items), tag_items, tag_ids, tags, tag_known)
    tag_sums = _neighbour_sums(len(tags), tag_ids, tag_items, items, item_known)
    out = InitialRows(np.zeros(0, np.float32))
    for kind, rows, known, (sums, counts) in (
            ("users", users, user_known, user_sums),
            ("items", items, item_known, (by_users[0] + by_tags[0], by_users[1] + by_tags[1])),
            ("tags", tags, tag_known, tag_sums)):
        out.known[kind] = int(known.sum())
        out.from_neighbours[kind], out.global_mean[kind] = _fill(rows, known, sums, counts)
    out.dropped = {"users": user_drop, "items": item_drop,
                   "tags": len(old_tags) - int(tag_known.sum())}
    out.table = np.concatenate([users, tags, items]).astype(np.float32)
    return out


def check_compatible(checkpoint: CFCheckpoint, cfg: CFConfig) -> None:
    """Refuse a checkpoint trained with other model hyper-parameters than ``cfg`` has."""
    keys = MODEL_KEYS + (TAG_KEYS if checkpoint.use_tags else ())
    differ = [k for k in keys if k in checkpoint.config and checkpoint.config[k] != getattr(cfg, k)]
    if differ:
        was = ", ".join(f"{k}={checkpoint.config[k]}" for k in differ)
        now = ", ".join(f"{k}={getattr(cfg, k)}" for k in differ)
        raise TailorMindError(
            f"cannot resume the '{checkpoint.model}' checkpoint: it was trained with {was}, the "
            f"config says {now}; train from scratch (`tailormind cf train` without --resume) or "
            "set them back")


def _load(workspace: Workspace, name: str, model: str | None) -> CFCheckpoint:
    """The checkpoint ``name`` to resume, with one-line errors when there is none to resume."""
    if not workspace.has_artifact(artifact_name(name)):
        have = ", ".join(trained_models(workspace)) or "none"
        raise WorkspaceError(
            f"--resume needs a checkpoint, and {workspace.root} has no CF model '{name}' (trained: "
            f"{have}); train it from scratch first: `tailormind cf train --workspace "
            f"{workspace.root} --model {model or name}`")
    checkpoint = load_checkpoint(workspace, name)
    if model is not None and checkpoint.model != model:
        raise TailorMindError(f"checkpoint '{name}' is a {checkpoint.model} model, not {model}; "
                              f"resume it with --model {checkpoint.model}")
    if checkpoint.state_dict is None or EGO_KEY[checkpoint.model] not in checkpoint.state_dict:
        raise WorkspaceError(f"checkpoint '{name}' holds no learnt embedding table; train from "
                             "scratch (`tailormind cf train` without --resume)")
    return checkpoint


def prepare_resume(workspace: Workspace, name: str, data: CFData, cfg: CFConfig, *,
                   model: str | None = None, use_tags: bool | None = None) -> ResumePlan:
    """Load checkpoint ``name``, check it fits ``cfg``, and build the new model's start rows.

    The model (and whether it has tag rows) is the checkpoint's: ``model``/``use_tags``, when
    given, must agree with it."""
    checkpoint = _load(workspace, name, model)
    check_compatible(checkpoint, cfg)
    tags = checkpoint.use_tags
    if use_tags is not None and checkpoint.model == "hypergraph" and use_tags != tags:
        raise TailorMindError(f"checkpoint '{name}' was trained {'with' if tags else 'without'} "
                              "tags; resume it without --tags/--no-tags, or train from scratch")
    tag_items, tag_ids = select_tags(data, cfg.tag_min_items) if tags else (np.zeros(0, np.int64),) * 2
    names = graph_tag_names(data, cfg.tag_min_items) if tags else []
    initial = initial_rows(checkpoint, data, names, tag_items, tag_ids)
    if not (initial.known["users"] or initial.known["items"]):
        raise WorkspaceError(f"checkpoint '{name}' shares no user or item with {workspace.root}; "
                             "train from scratch (`tailormind cf train` without --resume)")
    notes = [f"resuming '{name}' (watermark {checkpoint.watermark}) on the workspace at watermark "
             f"{data.watermark}: {initial.describe()}"]
    if tags and checkpoint.tag_names is None:
        notes.append("the checkpoint does not name its tag rows (written before --resume): every "
                     "tag row starts from its items' mean")
    return ResumePlan(name, checkpoint.model, tags, cfg.epochs_to_resume(), checkpoint, initial, notes)
