"""The CF graph: normalised adjacency by hand, symmetric propagation gradients, memory refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tailormind.cf.graph import GraphSize, bipartite_edge_index, check_memory, normalized_adjacency
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
