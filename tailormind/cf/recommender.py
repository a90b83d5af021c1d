r"""The interface every graph recommender trained by :mod:`tailormind.cf.train` implements.

Scores are dot products of the final embeddings, :math:`\hat{y}_{uv} = \mathbf{h}_u^\top
\mathbf{h}_v` (Eq. 6). ``forward`` returns what the BPR loss needs, so the same module can be
wrapped by DistributedDataParallel:

.. math::
    \mathcal{L} = -\frac{1}{B}\sum_{(u,i,j)} \ln \sigma(\hat{y}_{ui} - \hat{y}_{uj})
      + \lambda \frac{1}{2B}\sum_{(u,i,j)} \left(\|\mathbf{e}_u\|^2 + \|\mathbf{e}_i\|^2
      + \|\mathbf{e}_j\|^2\right)

with :math:`\mathbf{e}` the layer-0 (ego) embeddings.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GraphRecommender(nn.Module):
    """Base class: subclasses implement :meth:`propagate` and :meth:`ego_embeddings`."""

    n_users: int
    n_items: int
    #: state-dict key of the layer-0 table (the only learnt parameter); ``cf train --resume``
    #: seeds it from a checkpoint
    ego_key: str = "embedding.weight"

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings of all users (n_users x d) and all items (n_items x d)."""
        raise NotImplementedError

    def ego_embeddings(self) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings of all users and all items (the regularised parameters)."""
        raise NotImplementedError

    def forward(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(ŷ_ui, ŷ_uj, Σ of squared ego norms / 2B) for a batch of BPR triples."""
        user_emb, item_emb = self.propagate()
        u = user_emb[users]
        pos_scores = (u * item_emb[pos]).sum(-1)
        neg_scores = (u * item_emb[neg]).sum(-1)
        ego_users, ego_items = self.ego_embeddings()
        reg = (
            ego_users[users].pow(2).sum() + ego_items[pos].pow(2).sum() + ego_items[neg].pow(2).sum()
        ) / (2 * len(users))
        return pos_scores, neg_scores, reg

    def ego_parameter(self) -> nn.Parameter:
        """The layer-0 embedding table, every node in the model's order."""
        return self.get_parameter(self.ego_key)

    @torch.no_grad()
    def final_embeddings(self) -> tuple[Tensor, Tensor]:
        was_training = self.training
        self.eval()
        try:
            users, items = self.propagate()
        finally:
            self.train(was_training)
        return users.detach(), items.detach()

    def to_device(self, device: torch.device) -> GraphRecommender:
        """Move parameters and the (non-parameter) graph tensors."""
        return self.to(device)
