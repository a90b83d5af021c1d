"""Hybrid ranking: per-candidate signals fused by weights fit on VALIDATION sets only.

For user u with chronological train history D_u and candidate item i, with v_x the unit
description embedding of item x and c_x the binary column of item x in the train matrix X:

===================  ====================================================================
log popularity       log(1 + |{u' : X[u', i] = 1}|)
cf:<model>           e_u · e_i for every trained CF checkpoint (LightGCN, HypergraphCF, ...)
history mean         v_i · mean_{j ∈ D_u} v_j
history max          max_{j ∈ D_u} v_i · v_j
recent mean          v_i · mean of v_j over the last ``fusion_recent_items`` items of D_u
item kNN             Σ_{j ∈ D_u} cos(c_i, c_j)
recent item kNN      the same over the last ``fusion_recent_knn_items`` items of D_u
profile              v_i · embed(p_u)  (only when profiles are given)
===================  ====================================================================

Each signal is z-scored within its candidate set (so scales never matter), and the score is
s = Σ_f w_f z_f with w = argmin_w mean_sets −log softmax(Z w)[positive] + (λ/2)·‖w‖² — a convex
listwise loss, fit by gradient descent on the validation sets. The test sets never reach a fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
import scipy.sparse as sp

from tailormind.cf.checkpoint import load_checkpoint, trained_models
from tailormind.cf.data import CFData, load_cf_data
from tailormind.cf.recommend import check_alignment
from tailormind.config import Settings
from tailormind.core.atomic import read_json_record, write_json_atomic
from tailormind.data.workspace import Workspace
from tailormind.errors import CorruptFileError, WorkspaceError
from tailormind.profiling.evidence import ItemFeatures

FIT_STEPS = 400
FIT_LR = 0.5
FUSION_ARTIFACT = "fusion"
PROFILE_SIGNAL = "profile"


def zscore(x: np.ndarray) -> np.ndarray:
    """Along the last axis (the candidates of one set): (x − mean) / std. A set whose spread is
    rounding noise (std ≤ 1e-9·max(1, |x|)) is constant and becomes 0, not ±1."""
    std = x.std(axis=-1, keepdims=True)
    constant = std <= 1e-9 * np.maximum(1.0, np.abs(x).max(axis=-1, keepdims=True))
    return np.where(constant, 0.0, (x - x.mean(axis=-1, keepdims=True)) / np.where(constant, 1.0, std))


def fit_fusion(features: np.ndarray, l2: float = 1e-3, steps: int = FIT_STEPS,
               lr: float = FIT_LR) -> np.ndarray:
    """Weights w minimising mean −log softmax(X w)[positive] + (l2/2)·‖w‖², positive in column 0.

    ``features``: (n_sets, M, F). Gradient: mean_s X_sᵀ (softmax(X_s w) − e_0) + l2·w.
    """
    n, m, f = features.shape
    if n == 0:
        raise WorkspaceError("cannot fit the hybrid ranker: no validation candidate sets")
    w = np.zeros(f)
    target = np.zeros(m)
    target[0] = 1.0
    for _ in range(steps):
        logits = features @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        w -= lr * (np.einsum("nm,nmf->f", p - target, features) / n + l2 * w)
    return w


class Signals:
    """Every hybrid signal for (user index, candidate item indices) sets of one workspace."""

    def __init__(self, workspace: Workspace, settings: Settings, features: ItemFeatures,
                 data: CFData | None = None) -> None:
        self.data = data or load_cf_data(workspace)
        self.recent = settings.profiling.fusion_recent_items
        self.recent_knn = settings.profiling.fusion_recent_knn_items
        self.user_index = {u: i for i, u in enumerate(self.data.user_ids)}
        self.item_index = {v: i for i, v in enumerate(self.data.item_ids)}
        self.item_vectors = features.matrix[features.rows(self.data.item_ids)].astype(np.float64)
        self.log_popularity = np.log1p(self.data.item_popularity())
        self.histories = self._histories(workspace)
        x = sp.csc_matrix((np.ones(len(self.data.train_users)),
                           (self.data.train_users, self.data.train_items)),
                          shape=(self.data.n_users, self.data.n_items))
        x.data[:] = 1.0  # binary even if a pair repeats
        self.columns = x
        norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
        self.column_norms = np.where(norms > 0, norms, 1.0)
        self.cf: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in trained_models(workspace):
            checkpoint = load_checkpoint(workspace, name)
            check_alignment(checkpoint, self.data)
            self.cf[name] = (checkpoint.user_embeddings, checkpoint.item_embeddings)

    def _histories(self, workspace: Workspace) -> list[np.ndarray]:
        """Train item indices per user index, oldest first (the split's ``position``)."""
        split = workspace.read("split", columns=["user_id", "item_id", "position", "split"])
        train = split.filter(pc.equal(split.column("split"), "train")).sort_by(
            [("user_id", "ascending"), ("position", "ascending")])
        per_user: list[list[int]] = [[] for _ in self.data.user_ids]
        for user, item in zip(train.column("user_id").to_pylist(),
                              train.column("item_id").to_pylist(), strict=True):
            per_user[self.user_index[user]].append(self.item_index[item])
        return [np.asarray(h, dtype=np.int64) for h in per_user]

    def names(self, with_profile: bool) -> list[str]:
        names = ["log popularity", *(f"cf:{n}" for n in self.cf), "history mean", "history max",
                 "recent mean", "item kNN", "recent item kNN"]
        return [*names, PROFILE_SIGNAL] if with_profile else names

    def _content(self, items: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, ...]:
        if not len(history):
            zero = np.zeros(len(items))
            return zero, zero, zero
        candidate = self.item_vectors[items]
        sims = candidate @ self.item_vectors[history].T
        recent = self.item_vectors[history[-self.recent:]].mean(axis=0)
        return sims.mean(axis=1), sims.max(axis=1), candidate @ recent

    def _knn(self, items: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Σ_j cos(c_i, c_j) over ``history`` for every candidate i."""
        if not len(history):
            return np.zeros(len(items))
        overlap = (self.columns[:, items].T @ self.columns[:, history]).toarray()
        cosine = overlap / self.column_norms[items][:, None] / self.column_norms[history][None, :]
        return cosine.sum(axis=1)

    def stack(self, users: np.ndarray, items: np.ndarray,
              profiles: np.ndarray | None = None) -> np.ndarray:
        """(n_sets, M, F) z-scored signals; ``profiles`` (n_sets, d) adds the profile signal."""
        n, m = items.shape
        out = np.zeros((n, m, len(self.names(profiles is not None))))
        for row, (user, cands) in enumerate(zip(users.tolist(), items, strict=True)):
            history = self.histories[user]
            columns = [self.log_popularity[cands]]
            columns += [emb_u[user] @ emb_i[cands].T for emb_u, emb_i in self.cf.values()]
            columns += [*self._content(cands, history), self._knn(cands, history),
                        self._knn(cands, history[-self.recent_knn:])]
            if profiles is not None:
                columns.append(self.item_vectors[cands] @ profiles[row])
            out[row] = np.stack(columns, axis=1)
        return zscore(out.transpose(0, 2, 1)).transpose(0, 2, 1)

    def index_sets(self, user_ids: list[str], candidates: list[list[str]]
                   ) -> tuple[np.ndarray, np.ndarray]:
        """String ids -> (user indices, item index matrix); unknown ids are a clear error."""
        try:
            users = np.array([self.user_index[u] for u in user_ids], dtype=np.int64)
            items = np.array([[self.item_index[i] for i in c] for c in candidates], dtype=np.int64)
        except KeyError as exc:
            raise WorkspaceError(f"hybrid ranker: {exc.args[0]!r} is not a user or item of the "
                                 f"split workspace") from None
        return users, items


@dataclass
class Fusion:
    """Fitted hybrid weights: ``score = Σ_f weights[f] · z_f`` over ``names``."""

    names: list[str]
    weights: np.ndarray
    fit_sets: int
    config_hash: str

    def score(self, stacked: np.ndarray) -> np.ndarray:
        return stacked @ self.weights

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, np.round(self.weights, 4).tolist(), strict=True))

    @classmethod
    def fit(cls, signals: Signals, users: np.ndarray, items: np.ndarray,
            profiles: np.ndarray | None, settings: Settings) -> Fusion:
        weights = fit_fusion(signals.stack(users, items, profiles), l2=settings.profiling.fusion_l2)
        return cls(names=signals.names(profiles is not None), weights=weights,
                   fit_sets=len(users), config_hash=settings.config_hash("profiling", "cf"))

    def save(self, workspace: Workspace) -> None:
        relative = f"{FUSION_ARTIFACT}.json"
        write_json_atomic(workspace.artifact_path(relative),
                          {"names": self.names, "weights": self.weights.tolist(),
                           "fit_sets": self.fit_sets, "config_hash": self.config_hash})
        workspace.record_artifact(FUSION_ARTIFACT, relative, fit_sets=self.fit_sets,
                                  fit_on="validation")

    @classmethod
    def load(cls, workspace: Workspace, signals: Signals) -> Fusion:
        if not workspace.has_artifact(FUSION_ARTIFACT):
            raise WorkspaceError(
                f"workspace {workspace.root} has no fitted hybrid weights; run `tailormind "
                f"profile fit --workspace {workspace.root}` (it fits them on the validation "
                "sets), or set profiling.ranker: embedding")
        path = workspace.artifact_path(workspace.artifact(FUSION_ARTIFACT)["path"])
        data = read_json_record(path, "hybrid weights file")
        if data is None:
            raise WorkspaceError(f"{path}: the fitted hybrid weights are gone; re-run `tailormind "
                                 f"profile fit --workspace {workspace.root}`")
        if not isinstance(data, dict) or not {"names", "weights", "fit_sets",
                                              "config_hash"} <= set(data):
            raise CorruptFileError(f"{path}: corrupt hybrid weights file (keys missing)")
        if data["names"] != signals.names(PROFILE_SIGNAL in data["names"]):
            raise WorkspaceError(
                f"the hybrid weights in {path} were fit on signals {data['names']}, but this "
                f"workspace now has {signals.names(True)}; re-run `tailormind profile fit`")
        return cls(names=data["names"], weights=np.asarray(data["weights"]),
                   fit_sets=data["fit_sets"], config_hash=data["config_hash"])
