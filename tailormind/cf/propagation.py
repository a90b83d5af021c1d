r"""One propagation layer on a symmetric normalised adjacency, as PyG message passing.

.. math::
    \mathbf{H}^{(l+1)} = \hat{A}\,\mathbf{H}^{(l)}

Messages and aggregation are fused into one CSR sparse matmul. Because :math:`\hat{A}` is
symmetric, the backward pass is the same product, :math:`\partial L/\partial \mathbf{H}^{(l)} =
\hat{A}\,\partial L/\partial \mathbf{H}^{(l+1)}`, which avoids the CSR transpose that the generic
sparse autograd builds on every call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing


class SymmetricSpMM(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj``, with the backward ``adj @ grad``."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, ctx.adj @ grad


class SymmetricPropagation(MessagePassing):
    """Parameter-free propagation x' = Â x over a pre-normalised symmetric CSR adjacency."""

    def __init__(self) -> None:
        super().__init__(aggr="add")

    def forward(self, x: Tensor, adj_t: Tensor) -> Tensor:
        return self.propagate(adj_t, x=x)

    def message(self, x_j: Tensor) -> Tensor:  # pragma: no cover - the fused path is always taken
        raise RuntimeError("SymmetricPropagation needs a sparse adjacency (fused path)")

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return SymmetricSpMM.apply(adj_t, x)
