r"""Graphs for CF: the hypergraph X' = [X; Yᵀ] and the plain user-item graph X.

Rows of X' are the users followed by the tags, columns are the items (Eq. 4). As a graph on
N = rows + items nodes its adjacency is

.. math::
    A = \begin{bmatrix} 0 & X' \\ X'^\top & 0 \end{bmatrix}, \qquad
    \hat{A} = D^{-1/2} A D^{-1/2}

(LightGCN normalisation, ``cf.tag_normalization: joint``), stored once as a symmetric CSR tensor,
so each propagation layer is one sparse matmul. A tag row links every item carrying that tag: a
hyperedge. The default, ``separate``, normalises the user rows and the tag rows on their own,

.. math::
    \hat{A} = D_X^{-1/2} A_X D_X^{-1/2} + \beta\, D_Y^{-1/2} A_Y D_Y^{-1/2},

so user-item messages keep exactly LightGCN's weights and the tags add a second channel of weight
β = ``cf.tag_weight``; it scored best on validation NDCG@20 (see the CF benchmark).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from tailormind.errors import TailorMindError

GIB = 1024**3


@dataclass(frozen=True)
class GraphSize:
    nodes: int
    edges: int  # undirected row-item incidences (each stored twice in A)
    embedding_dim: int
    layers: int

    def estimated_bytes(self) -> int:
        """Peak bytes of training: CSR adjacency (+ a COO copy while building), the embedding
        table with its gradient and two Adam moments, and the L+1 layer activations with
        their gradients."""
        nnz = 2 * self.edges
        graph = nnz * (8 + 4) + (self.nodes + 1) * 8  # CSR: col int64, val float32, crow
        building = nnz * (8 + 8 + 4 + 8)  # scipy COO rows/cols/vals + sort scratch
        table = self.nodes * self.embedding_dim * 4
        activations = (self.layers + 1) * table * 2
        return graph + building + 4 * table + activations


def check_memory(size: GraphSize, limit_gib: float) -> None:
    """Refuse, with the estimate, a graph that would not fit in ``limit_gib``."""
    need = size.estimated_bytes()
    if need > limit_gib * GIB:
        raise TailorMindError(
            f"the CF graph ({size.nodes:,} nodes, {size.edges:,} edges, d={size.embedding_dim}, "
            f"L={size.layers}) needs about {need / GIB:.1f} GiB, above cf.max_graph_gib="
            f"{limit_gib:g}; lower cf.embedding_dim or raise cf.max_graph_gib"
        )


def normalized_bipartite(
    rows: np.ndarray,
    items: np.ndarray,
    n_rows: int,
    n_items: int,
    weights: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Symmetric normalised adjacency Â (scipy CSR) of the bipartite graph rows x items.

    Node order: the ``n_rows`` row nodes, then the ``n_items`` item nodes. Repeated pairs count
    once (the largest weight is kept); ``weights`` default to 1 (a binary X').
    """
    values = np.ones(len(rows), dtype=np.float32) if weights is None else weights.astype(np.float32)
    keys = rows.astype(np.int64) * n_items + items
    order = np.lexsort((-values, keys))
    first = np.ones(len(order), dtype=bool)
    first[1:] = keys[order][1:] != keys[order][:-1]
    keep = order[first]
    x = sp.csr_matrix((values[keep], (rows[keep], items[keep])), shape=(n_rows, n_items))
    adj = sp.bmat([[None, x], [x.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0).astype(np.float32)
    return (sp.diags(inv_sqrt) @ adj @ sp.diags(inv_sqrt)).tocsr()


def to_torch_csr(matrix: sp.csr_matrix) -> torch.Tensor:
    """A float32 torch CSR tensor of a scipy CSR matrix (sorted indices)."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            size=matrix.shape,
            check_invariants=False,
        )


def normalized_adjacency(
    rows: np.ndarray,
    items: np.ndarray,
    n_rows: int,
    n_items: int,
    weights: np.ndarray | None = None,
) -> torch.Tensor:
    """:func:`normalized_bipartite` as a torch CSR tensor."""
    return to_torch_csr(normalized_bipartite(rows, items, n_rows, n_items, weights))


def bipartite_edge_index(users: np.ndarray, items: np.ndarray, n_users: int) -> torch.Tensor:
    """Both directions of each user-item edge as a PyG ``edge_index`` (items offset by n_users)."""
    pairs = np.unique(np.stack([users, items]), axis=1)
    src = torch.from_numpy(pairs[0])
    dst = torch.from_numpy(pairs[1] + n_users)
    return torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
