"""One training loop for every CF model: BPR + L2, Adam, early stopping on validation NDCG@20.

The same function runs in one process or as each Ray Train worker (``rank``/``world`` shard every
batch, ``wrap`` applies DistributedDataParallel, ``report`` hands metrics and checkpoints to Ray).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tailormind.core.metrics import candidate_metrics
from tailormind.cf.data import CandidateIndex, CFData
from tailormind.cf.graph import (
    GraphSize,
    bipartite_edge_index,
    check_memory,
    normalized_bipartite,
    to_torch_csr,
)
from tailormind.cf.hypergraph import HypergraphCF
from tailormind.cf.lightgcn import LightGCNBaseline
from tailormind.cf.recommender import GraphRecommender
from tailormind.cf.sampling import BPRSampler
from tailormind.config import CF_MODELS, CFConfig
from tailormind.errors import TailorMindError

MODELS = CF_MODELS
VALID_METRIC = "ndcg@20"


@dataclass
class EpochLog:
    epoch: int
    loss: float
    seconds: float
    valid: dict[str, float] | None = None
    best: bool = False


@dataclass
class TrainResult:
    model: str
    use_tags: bool
    history: list[EpochLog]
    best_epoch: int
    best_valid: dict[str, float]
    user_embeddings: np.ndarray
    item_embeddings: np.ndarray
    state_dict: dict[str, torch.Tensor]
    graph: dict[str, int]
    workers: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([h.seconds for h in self.history])) if self.history else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "use_tags": self.use_tags,
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "valid": self.best_valid,
            "seconds_per_epoch": self.seconds_per_epoch,
            "graph": self.graph,
            "workers": self.workers,
            "notes": self.notes,
            "history": [asdict(h) for h in self.history],
        }


def build_model(name: str, data: CFData, cfg: CFConfig, *, use_tags: bool | None = None
                ) -> tuple[GraphRecommender, dict[str, int], list[str]]:
    """The model ``name`` over ``data``'s train graph; refuses a graph too large for memory."""
    if name not in MODELS:
        raise TailorMindError(f"unknown CF model {name!r}; choose one of {', '.join(MODELS)}")
    notes: list[str] = []
    if name == "lightgcn":
        size = GraphSize(data.n_users + data.n_items, len(data.train_users), cfg.embedding_dim, cfg.layers)
        check_memory(size, cfg.max_graph_gib)
        edge_index = bipartite_edge_index(data.train_users, data.train_items, data.n_users)
        model: GraphRecommender = LightGCNBaseline(edge_index, data.n_users, data.n_items,
                                                   cfg.embedding_dim, cfg.layers)
        return model, {"nodes": size.nodes, "edges": size.edges, "tags": 0}, notes
    use_tags = cfg.use_tags if use_tags is None else use_tags
    tag_items, tag_ids = select_tags(data, cfg.tag_min_items) if use_tags else (np.zeros(0, int),) * 2
    n_tags = int(tag_ids.max()) + 1 if len(tag_ids) else 0
    if use_tags and data.n_tags == 0:
        notes.append("the data set has no tags: HypergraphCF degrades to the bipartite user-item graph")
    elif use_tags and n_tags == 0:
        notes.append(f"no tag is on {cfg.tag_min_items}+ items: HypergraphCF degrades to the "
                     "bipartite user-item graph")
    elif use_tags and n_tags < data.n_tags:
        notes.append(f"{data.n_tags - n_tags} of {data.n_tags} tags are on fewer than "
                     f"{cfg.tag_min_items} items and link nothing: dropped")
    size = GraphSize(data.n_users + n_tags + data.n_items, len(data.train_users) + len(tag_ids),
                     cfg.embedding_dim, cfg.layers)
    check_memory(size, cfg.max_graph_gib)
    n_rows = data.n_users + n_tags
    tag_rows = data.n_users + tag_ids
    if cfg.tag_normalization == "separate":
        adj = normalized_bipartite(data.train_users, data.train_items, n_rows, data.n_items)
        if n_tags:
            adj = adj + cfg.tag_weight * normalized_bipartite(tag_rows, tag_items, n_rows, data.n_items)
    else:
        rows = np.concatenate([data.train_users, tag_rows])
        cols = np.concatenate([data.train_items, tag_items])
        weights = np.concatenate([np.ones(len(data.train_users), np.float32),
                                  np.full(len(tag_ids), cfg.tag_weight, np.float32)])
        adj = normalized_bipartite(rows, cols, n_rows, data.n_items, weights)
    adjacency = to_torch_csr(adj)
    model = HypergraphCF(adjacency, data.n_users, n_tags, data.n_items, cfg.embedding_dim, cfg.layers)
    return model, {"nodes": size.nodes, "edges": size.edges, "tags": n_tags}, notes


def select_tags(data: CFData, min_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Item-tag incidences of the tags on at least ``min_items`` items, tags re-indexed 0..T-1."""
    counts = np.bincount(data.tag_ids, minlength=data.n_tags)
    kept = counts >= min_items
    new_id = np.cumsum(kept) - 1
    mask = kept[data.tag_ids]
    return data.tag_items[mask], new_id[data.tag_ids[mask]]


def graph_tag_names(data: CFData, min_items: int) -> list[str]:
    """Names of the tags :func:`select_tags` keeps, in their row order (tag row t is name t)."""
    counts = np.bincount(data.tag_ids, minlength=data.n_tags)
    return [name for name, count in zip(data.tag_names, counts, strict=True) if count >= min_items]


def score_candidates(user_emb: np.ndarray, item_emb: np.ndarray, sets: CandidateIndex) -> np.ndarray:
    """Dot-product scores (n_sets x M) of each candidate set, positive in column 0."""
    return np.einsum("nd,nmd->nm", user_emb[sets.users], item_emb[sets.items])


def _unwrap(model: torch.nn.Module) -> GraphRecommender:
    return getattr(model, "module", model)  # type: ignore[return-value]


@dataclass
class _Best:
    """The best validation result so far, its weights, and evaluations since it last improved."""

    value: float = -np.inf
    epoch: int = 0
    valid: dict[str, float] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0

    def observe(self, log: EpochLog, model: GraphRecommender) -> None:
        """Count ``log.valid``: a gain keeps a copy of ``model``'s weights and marks ``log.best``."""
        assert log.valid is not None
        if log.valid[VALID_METRIC] > self.value:
            self.value, self.epoch, self.valid, self.stale = log.valid[VALID_METRIC], log.epoch, log.valid, 0
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            log.best = True
        else:
            self.stale += 1


def _data_notes(data: CFData) -> list[str]:
    """What the data leaves out: users without train items, no validation sets."""
    notes: list[str] = []
    cold = len(data.users_without_train_items())
    if cold:
        notes.append(f"{cold} user(s) have no train interactions; their embeddings carry no signal")
    if len(data.valid) == 0:
        notes.append("no validation candidate sets: no early stopping, the last epoch is kept")
    return notes


def _seed_ego(model: GraphRecommender, initial: np.ndarray) -> None:
    """Copy ``initial`` into ``model``'s layer-0 table (same shape, or a clear error)."""
    weight = model.ego_parameter()
    if tuple(initial.shape) != tuple(weight.shape):
        raise TailorMindError(f"the initial embedding table is {tuple(initial.shape)}, the model "
                              f"needs {tuple(weight.shape)}")
    with torch.no_grad():
        weight.copy_(torch.from_numpy(np.ascontiguousarray(initial, dtype=np.float32)))


def _run_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, sampler: BPRSampler,
               cfg: CFConfig, rng: np.random.Generator, device: torch.device, rank: int,
               world: int) -> float:
    """One pass of BPR + L2 steps over this rank's shard of every batch; the mean loss."""
    total, count = 0.0, 0
    for users, pos, neg in sampler.epoch(cfg.batch_size, rng):
        # Every rank must take part in every DDP step; a batch smaller than the world is used
        # whole by each rank (identical gradients, so their average is unchanged).
        if len(users) >= world:
            users, pos, neg = users[rank::world], pos[rank::world], neg[rank::world]
        tensors = [torch.from_numpy(a).to(device) for a in (users, pos, neg)]
        pos_scores, neg_scores, reg = model(*tensors)
        loss = -F.logsigmoid(pos_scores - neg_scores).mean() + cfg.l2 * reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(users)
        count += len(users)
    return total / max(count, 1)


def _validate(model: GraphRecommender, sets: CandidateIndex) -> dict[str, float]:
    """Candidate metrics of ``model``'s current embeddings on the validation sets."""
    user_emb, item_emb = (t.cpu().numpy() for t in model.final_embeddings())
    return candidate_metrics(score_candidates(user_emb, item_emb, sets))


def _result(model_name: str, final: GraphRecommender, best: _Best, history: list[EpochLog],
            graph: dict[str, int], world: int, notes: list[str]) -> TrainResult:
    """The result with ``best``'s weights loaded (the last epoch's when nothing was validated)."""
    best_epoch, best_state = best.epoch, best.state
    if best_state is not None:
        final.load_state_dict(best_state)
    else:
        best_epoch = len(history)
        best_state = {k: v.detach().cpu() for k, v in final.state_dict().items()}
    user_emb, item_emb = (t.cpu().numpy() for t in final.final_embeddings())
    return TrainResult(
        model=model_name,
        use_tags=model_name == "hypergraph" and graph["tags"] > 0,
        history=history,
        best_epoch=best_epoch,
        best_valid=best.valid,
        user_embeddings=user_emb,
        item_embeddings=item_emb,
        state_dict=best_state,
        graph=graph,
        workers=world,
        notes=notes,
    )


def train_model(
    data: CFData,
    cfg: CFConfig,
    model_name: str,
    *,
    seed: int = 2026,
    epochs: int | None = None,
    use_tags: bool | None = None,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[EpochLog], None] | None = None,
    rank: int = 0,
    world: int = 1,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    report: Callable[[EpochLog, GraphRecommender], None] | None = None,
    initial: np.ndarray | None = None,
) -> TrainResult:
    """Train ``model_name`` on ``data`` and return the best (validation NDCG@20) state.

    Validates every ``cfg.eval_every`` epochs and at the last; stops after
    ``cfg.early_stop_patience`` validations without a gain. ``report`` and ``on_epoch`` see
    every epoch's log, in that order. ``initial`` replaces the random layer-0 table (every
    node, in the model's order; ``tailormind.cf.resume``) before the first step."""
    device = torch.device(device)
    epochs = cfg.epochs if epochs is None else epochs
    torch.manual_seed(seed)
    base, graph, notes = build_model(model_name, data, cfg, use_tags=use_tags)
    if initial is not None:
        _seed_ego(base, initial)
    base.to_device(device)
    model = wrap(base) if wrap is not None else base
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sampler = BPRSampler(data.train_users, data.train_items, data.n_items)
    rng = np.random.default_rng(seed)  # identical on every worker: same permutation, own shard
    notes.extend(_data_notes(data))
    history: list[EpochLog] = []
    best = _Best()
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        loss = _run_epoch(model, optimizer, sampler, cfg, rng, device, rank, world)
        log = EpochLog(epoch, loss, time.perf_counter() - start)
        if len(data.valid) and (epoch % cfg.eval_every == 0 or epoch == epochs):
            log.valid = _validate(_unwrap(model), data.valid)
            best.observe(log, _unwrap(model))
        history.append(log)
        if report is not None:
            report(log, _unwrap(model))
        if on_epoch is not None:
            on_epoch(log)
        if best.stale >= cfg.early_stop_patience:
            notes.append(f"early stop at epoch {epoch}: no {VALID_METRIC} gain for {best.stale} evaluations")
            break
    return _result(model_name, _unwrap(model), best, history, graph, world, notes)
