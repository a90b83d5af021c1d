"""The CF graph: normalised adjacency by hand, symmetric propagation gradients, memory refusal."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tailormind.cf.graph import (
    GIB,
    GraphSize,
    bipartite_edge_index,
    check_memory,
    normalized_adjacency,
    normalized_bipartite,
)
from tailormind.cf.propagation import SymmetricPropagation
from tailormind.errors import TailorMindError


def test_normalized_adjacency_hand_computed() -> None:
    # rows: user 0 - items {0, 1}; tag 1 (row 1) - item 1; repeated pair (0, 1) counts once
    adj = normalized_adjacency(np.array([0, 0, 1, 0]), np.array([0, 1, 1, 1]), n_rows=2, n_items=2).to_dense()
    # degrees: row0 2, row1 1, item0 1, item1 2
    expected = torch.tensor([
        [0, 0, 1 / np.sqrt(2 * 1), 1 / np.sqrt(2 * 2)],
        [0, 0, 0, 1 / np.sqrt(1 * 2)],
        [1 / np.sqrt(2 * 1), 0, 0, 0],
        [1 / np.sqrt(2 * 2), 1 / np.sqrt(1 * 2), 0, 0],
    ], dtype=torch.float32)
    assert torch.allclose(adj, expected)


def test_weighted_rows() -> None:
    adj = normalized_adjacency(np.array([0, 1]), np.array([0, 0]), 2, 1, weights=np.array([1.0, 3.0])).to_dense()
    # item 0 degree 4; row weights 1 and 3: entries w / sqrt(d_row * d_item)
    assert adj[0, 2].item() == pytest.approx(1 / np.sqrt(1 * 4))
    assert adj[1, 2].item() == pytest.approx(3 / np.sqrt(3 * 4))


def test_isolated_nodes_get_zero_rows() -> None:
    adj = normalized_adjacency(np.array([0]), np.array([0]), n_rows=3, n_items=2).to_dense()
    assert adj[1].abs().sum() == 0 and adj[4].abs().sum() == 0


def test_symmetric_propagation_matches_dense_forward_and_backward() -> None:
    rng = np.random.default_rng(0)
    rows, items = rng.integers(0, 30, 200), rng.integers(0, 40, 200)
    adj = normalized_adjacency(rows, items, 30, 40)
    dense = adj.to_dense()
    assert torch.allclose(dense, dense.T)
    x = torch.randn(70, 8, requires_grad=True)
    x_dense = x.detach().clone().requires_grad_(True)
    conv = SymmetricPropagation()
    y = conv(conv(x, adj), adj)
    (y * torch.arange(8)).sum().backward()
    y_dense = dense @ (dense @ x_dense)
    (y_dense * torch.arange(8)).sum().backward()
    assert torch.allclose(y, y_dense, atol=1e-5)
    assert torch.allclose(x.grad, x_dense.grad, atol=1e-5)


def test_edge_index_has_both_directions_once() -> None:
    ei = bipartite_edge_index(np.array([0, 0, 1, 0]), np.array([0, 1, 1, 1]), n_users=2)
    assert sorted(map(tuple, ei.T.tolist())) == sorted([(0, 2), (0, 3), (1, 3), (2, 0), (3, 0), (3, 1)])


def test_memory_estimate_refuses_with_numbers() -> None:
    size = GraphSize(nodes=1_000_000, edges=50_000_000, embedding_dim=256, layers=3)
    assert size.estimated_bytes() > 4 * 1024**3
    with pytest.raises(TailorMindError, match=r"needs about \d+\.\d GiB, above cf.max_graph_gib=4"):
        check_memory(size, 4)
    check_memory(GraphSize(100, 1000, 64, 3), 4)


def test_single_process_cf_path_never_imports_ray() -> None:
    """benchmarks/cf.py (and --device cuda on a lent GPU machine) must run where Ray is absent."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "cf.py"
    code = (
        "import runpy, sys; sys.argv = ['cf.py', '--help']\n"
        "import tailormind.cf.train, tailormind.cf.evaluate, tailormind.cf.checkpoint, tailormind.cf.recommend\n"
        f"try:\n    runpy.run_path({str(bench)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _dense_reference(pairs: list[tuple[int, int, float]], n_rows: int, n_items: int) -> np.ndarray:
    """D^-1/2 A D^-1/2 of A = [[0, X], [X^T, 0]] in plain numpy; a repeated pair keeps its largest
    weight and an isolated node gets a zero row and column."""
    x = np.zeros((n_rows, n_items))
    for r, i, w in pairs:
        x[r, i] = max(x[r, i], w)
    n = n_rows + n_items
    a = np.zeros((n, n))
    a[:n_rows, n_rows:] = x
    a[n_rows:, :n_rows] = x.T
    degree = a.sum(axis=1)
    inv = np.array([1 / np.sqrt(d) if d > 0 else 0.0 for d in degree])
    return inv[:, None] * a * inv[None, :]


pair_lists = st.integers(1, 5).flatmap(lambda n_rows: st.integers(1, 5).flatmap(
    lambda n_items: st.tuples(
        st.just(n_rows), st.just(n_items),
        st.lists(st.tuples(st.integers(0, n_rows - 1), st.integers(0, n_items - 1),
                           st.sampled_from([0.5, 1.0, 2.0, 3.0])), min_size=1, max_size=12),
        st.booleans())))


@settings(max_examples=60, deadline=None)
@given(pair_lists)
def test_normalized_bipartite_matches_a_dense_reference(case) -> None:
    n_rows, n_items, pairs, weighted = case
    rows = np.array([p[0] for p in pairs])
    items = np.array([p[1] for p in pairs])
    weights = np.array([p[2] for p in pairs]) if weighted else None
    expected = _dense_reference([(r, i, w if weighted else 1.0) for r, i, w in pairs], n_rows, n_items)
    matrix = normalized_bipartite(rows, items, n_rows, n_items, weights)
    assert matrix.shape == (n_rows + n_items, n_rows + n_items) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix.toarray(), expected, atol=1e-6)
    tensor = normalized_adjacency(rows, items, n_rows, n_items, weights)
    assert tensor.layout == torch.sparse_csr and tensor.dtype == torch.float32
    assert tuple(tensor.shape) == (n_rows + n_items, n_rows + n_items)
    # a valid CSR tensor (index dtypes agree, sorted columns...): torch's own check accepts it
    torch.sparse_csr_tensor(tensor.crow_indices(), tensor.col_indices(), tensor.values(), tensor.shape,
                            check_invariants=True)
    np.testing.assert_allclose(tensor.to_dense().numpy(), expected, atol=1e-6)


def test_repeated_pair_keeps_its_largest_weight() -> None:
    # X = [[4], [1]] (the pair (0, 0) given with weights 1 and 4): degrees row0 4, row1 1, item 5
    adj = normalized_bipartite(np.array([0, 0, 1]), np.array([0, 0, 0]), 2, 1,
                               weights=np.array([1.0, 4.0, 1.0])).toarray()
    assert adj[0, 2] == pytest.approx(4 / np.sqrt(4 * 5)) and adj[1, 2] == pytest.approx(1 / np.sqrt(5))


def test_distinct_pairs_are_never_merged() -> None:
    # (2, 0) and (0, 1) are different edges (n_items = 2): all four incidences stay, each 1/1
    adj = normalized_bipartite(np.array([2, 0]), np.array([0, 1]), 3, 2).toarray()
    assert adj[2, 3] == adj[3, 2] == adj[0, 4] == adj[4, 0] == 1.0 and np.count_nonzero(adj) == 4


def test_trailing_isolated_nodes_keep_the_full_shape_without_warnings() -> None:
    """The last row node and the last item node touch nothing: the matrix is still N x N, and
    neither numpy (1/sqrt(0)) nor torch (beta / invariant notices) warns."""
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch's one-time notices would otherwise hide after the first
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            adj = normalized_adjacency(np.array([0]), np.array([0]), n_rows=2, n_items=2)
    finally:
        torch.set_warn_always(before)
    assert tuple(adj.shape) == (4, 4)
    dense = adj.to_dense()
    assert dense[0, 2] == 1.0 and dense.abs().sum() == 2.0


@pytest.mark.parametrize(("size", "expected"), [
    # nnz = 40; CSR 40*12 + 11*8 = 568; COO 40*28 = 1120; table 10*4*4 = 160, x4 = 640;
    # activations 3 layers+1 * 160 * 2 = 960; 568 + 1120 + 640 + 960
    (GraphSize(nodes=10, edges=20, embedding_dim=4, layers=2), 3288),
    # nnz = 2; CSR 2*12 + 4*8 = 56; COO 2*28 = 56; table 3*2*4 = 24, x4 = 96; activations 1*24*2 = 48
    (GraphSize(nodes=3, edges=1, embedding_dim=2, layers=0), 256),
])
def test_estimated_bytes_by_hand(size: GraphSize, expected: int) -> None:
    assert size.estimated_bytes() == expected


def test_check_memory_boundary_and_message() -> None:
    size = GraphSize(nodes=10, edges=20, embedding_dim=4, layers=2)  # 3288 bytes (above)
    check_memory(size, 3288 / GIB)  # exactly the limit fits
    with pytest.raises(TailorMindError):
        check_memory(size, 3287 / GIB)
    big = GraphSize(nodes=1_000_000, edges=50_000_000, embedding_dim=256, layers=3)
    # 1e8*12 + 1_000_001*8 + 1e8*28 + 4*1.024e9 + 4*1.024e9*2 = 16_296_000_008 B = 15.18 GiB
    assert big.estimated_bytes() == 16_296_000_008
    check_memory(big, 16)
    message = ("the CF graph (1,000,000 nodes, 50,000,000 edges, d=256, L=3) needs about 15.2 GiB, "
               "above cf.max_graph_gib=4; lower cf.embedding_dim or raise cf.max_graph_gib")
    with pytest.raises(TailorMindError, match=f"^{re.escape(message)}$"):
        check_memory(big, 4)
