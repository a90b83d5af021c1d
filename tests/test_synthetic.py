"""Synthetic logs: seeded, power-law popularity, tag structure, and the requested sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tailormind.data.importers import import_synthetic
from tailormind.errors import DataError


@pytest.fixture(scope="module")
def bundle():
    return import_synthetic(users=800, items=3000, tags=200, per_user=25, seed=11)


def test_sizes(bundle) -> None:
    assert bundle.users.num_rows == 800
    assert bundle.items.num_rows == 3000
    per_user = bundle.interactions.group_by("user_id").aggregate([("user_id", "count")])
    counts = per_user.column("user_id_count").to_numpy()
    assert counts.min() >= 3  # every user can be split leave-two-out (repeats dropped before)
    assert 18 <= counts.mean() <= 30  # mean near --per-user
    tags = {t for row in bundle.items.column("tags").to_pylist() for t in row}
    assert 100 <= len(tags) <= 200
    assert all(1 <= len(row) <= 6 for row in bundle.items.column("tags").to_pylist())


def test_power_law_popularity(bundle) -> None:
    items = bundle.interactions.column("item_id").to_numpy(zero_copy_only=False)
    _, counts = np.unique(items, return_counts=True)
    counts = np.sort(counts)[::-1]
    top_1pct = counts[: len(counts) // 100].sum() / counts.sum()
    assert top_1pct > 0.10  # a uniform catalogue would give ~0.01
    tag_counts = np.unique(np.concatenate([np.array(r) for r in bundle.items.column("tags").to_pylist()]),
                           return_counts=True)[1]
    assert tag_counts.max() > 20 * np.median(tag_counts)


def test_users_prefer_their_tags(bundle) -> None:
    """Interactions concentrate on few tags per user, far above what popularity alone gives."""
    tags_of = dict(zip(bundle.items.column("item_id").to_pylist(), bundle.items.column("tags").to_pylist(), strict=True))
    frame = bundle.interactions.to_pandas()
    shares = []
    for _, rows in frame.groupby("user_id"):
        tagged = [t for item in rows.item_id for t in tags_of[item]]
        _, c = np.unique(tagged, return_counts=True)
        shares.append(c.max() / len(rows))
    assert np.median(shares) > 0.3


def test_seeded(bundle) -> None:
    again = import_synthetic(users=800, items=3000, tags=200, per_user=25, seed=11)
    other = import_synthetic(users=800, items=3000, tags=200, per_user=25, seed=12)
    assert again.interactions.equals(bundle.interactions) and again.items.equals(bundle.items)
    assert not other.interactions.equals(bundle.interactions)


def test_tagless(tmp_path) -> None:
    b = import_synthetic(users=20, items=100, tags=0, per_user=5, seed=1)
    assert all(row == [] for row in b.items.column("tags").to_pylist())


@pytest.mark.parametrize("kwargs, needle", [
    (dict(users=0, items=10, tags=1, per_user=3), "--users"),
    (dict(users=5, items=10, tags=1, per_user=2), "--per-user must be >= 3"),
    (dict(users=5, items=10, tags=1, per_user=9), "more than half"),
])
def test_bad_parameters(kwargs, needle) -> None:
    with pytest.raises(DataError, match=needle):
        import_synthetic(**kwargs)


def test_cli(cli, tmp_path) -> None:
    ws = tmp_path / "ws"
    r = cli("data", "import", "--format", "synthetic", "--users", "300", "--items", "1000", "--tags", "50",
            "--per-user", "10", "--seed", "3", "-w", ws)
    assert r.code == 0, r.err
    assert cli("data", "split", "-w", ws).code == 0
    stats = json.loads(cli("data", "stats", "-w", ws, "--json").out)
    assert stats["users"] == 300 and stats["items"] == 1000
    assert stats["split"]["evaluated_users"] == 300 and stats["split"]["candidate_sets"] == 600
    bad = cli("data", "import", "--format", "synthetic", "--users", "many", "-w", tmp_path / "w2")
    assert bad.code == 2 and "--users must be a whole number" in bad.err
