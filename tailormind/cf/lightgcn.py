"""The LightGCN baseline: PyG's :class:`torch_geometric.nn.models.LightGCN` on X alone.

Users are nodes ``[0, n_users)``, items ``[n_users, n_users + n_items)``; propagation uses PyG's
``LGConv`` over the ``edge_index`` of both edge directions, exactly as PyG's example does.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.models import LightGCN

from tailormind.cf.recommender import GraphRecommender


class LightGCNBaseline(GraphRecommender):
    ego_key = "model.embedding.weight"  # users, then items

    def __init__(self, edge_index: Tensor, n_users: int, n_items: int, embedding_dim: int = 64,
                 num_layers: int = 3) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.edge_index = edge_index
        self.model = LightGCN(n_users + n_items, embedding_dim, num_layers)

    def propagate(self) -> tuple[Tensor, Tensor]:
        out = self.model.get_embedding(self.edge_index)
        return out[: self.n_users], out[self.n_users :]

    def ego_embeddings(self) -> tuple[Tensor, Tensor]:
        weight = self.model.embedding.weight
        return weight[: self.n_users], weight[self.n_users :]

    def to_device(self, device: torch.device) -> LightGCNBaseline:
        self.edge_index = self.edge_index.to(device)
        return self.to(device)
