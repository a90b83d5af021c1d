r"""HypergraphCF: users and tags on one side, items on the other (Eqs. 4-7).

Nodes are the users, the tags and the items, each with a learnt embedding
:math:`\mathbf{h}^{(0)}`. Each layer propagates over the normalised adjacency Â of
X' = [X; Yᵀ] (see :mod:`tailormind.cf.graph` for the two normalisations),

.. math::
    \mathbf{H}^{(l+1)} = \hat{A}\,\mathbf{H}^{(l)}, \qquad
    \mathbf{h} = \frac{1}{L+1}\sum_{l=0}^{L} \mathbf{h}^{(l)},

so tag nodes pass signal between all items that share the tag (the hyperedges), and
:math:`\hat{y}_{uv} = \mathbf{h}_u^\top \mathbf{h}_v`. Without tags this is LightGCN on X, computed
with one CSR matmul per layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tailormind.cf.propagation import SymmetricPropagation
from tailormind.cf.recommender import GraphRecommender


class HypergraphCF(GraphRecommender):
    ego_key = "embedding.weight"  # users, then tags, then items

    def __init__(
        self,
        adjacency: Tensor,
        n_users: int,
        n_tags: int,
        n_items: int,
        embedding_dim: int = 64,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        expected = n_users + n_tags + n_items
        if adjacency.shape != (expected, expected):
            raise ValueError(f"adjacency is {tuple(adjacency.shape)}, expected {expected} nodes")
        self.n_users, self.n_tags, self.n_items = n_users, n_tags, n_items
        self.adjacency = adjacency  # not a buffer: sparse, rebuilt from the data, never saved
        self.embedding = nn.Embedding(expected, embedding_dim)
        self.convs = nn.ModuleList(SymmetricPropagation() for _ in range(num_layers))
        nn.init.xavier_uniform_(self.embedding.weight)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[: self.n_users], x[self.n_users + self.n_tags :]

    def propagate(self) -> tuple[Tensor, Tensor]:
        x = self.embedding.weight
        out = x
        for conv in self.convs:
            x = conv(x, self.adjacency)
            out = out + x
        return self._split(out / (len(self.convs) + 1))

    def ego_embeddings(self) -> tuple[Tensor, Tensor]:
        return self._split(self.embedding.weight)

    def to_device(self, device: torch.device) -> HypergraphCF:
        self.adjacency = self.adjacency.to(device)
        return self.to(device)
