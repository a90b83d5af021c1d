"""Leave-two-out split and 1:99 candidate sets: real-data checks and property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailormind.data import schemas
from tailormind.data.split import candidate_items, sample_negatives, split_interactions
from tailormind.data.workspace import Workspace


def test_movielens_split_sizes_and_candidate_sets(movielens_ws: Workspace) -> None:
    split = movielens_ws.read("split")
    names = split.column("split").to_pylist()
    assert names.count("test") == 610 and names.count("valid") == 610
    assert names.count("train") == 100836 - 1220
    candidates = movielens_ws.read("candidates")
    assert candidates.num_rows == 1220
    assert sorted(set(candidates.column("split").to_pylist())) == ["test", "valid"]
    seen: dict[str, set[str]] = {}
    for row in split.select(["user_id", "item_id"]).to_pylist():
        seen.setdefault(row["user_id"], set()).add(row["item_id"])
    catalogue = set(movielens_ws.read("items").column("item_id").to_pylist())
    rows = candidates.select(["user_id", "positive"]).to_pylist()
    for row, items in zip(rows, candidate_items(candidates), strict=True):
        user, positive = row["user_id"], row["positive"]
        assert len(items) == 100 and len(set(items)) == 100
        assert items[0] == positive and positive in seen[user]
        assert not (set(items[1:]) & seen[user])  # negatives never touched by the user
        assert set(items) <= catalogue


def test_test_item_is_the_latest_and_valid_the_second_latest(movielens_ws: Workspace) -> None:
    frame = movielens_ws.read("split").to_pandas()
    for user, rows in list(frame.groupby("user_id"))[:50]:
        rows = rows.sort_values("position")
        assert rows["split"].tolist()[-2:] == ["valid", "test"]
        assert rows["timestamp"].is_monotonic_increasing
        assert rows["position"].tolist() == list(range(len(rows)))


def test_same_seed_same_sets_other_seed_other_sets(movielens_ws: Workspace) -> None:
    inter = movielens_ws.read("interactions")
    items = movielens_ws.read("items", columns=["item_id"]).column("item_id").to_pylist()
    a = split_interactions(inter, items, seed=2026)
    b = split_interactions(inter, items, seed=2026)
    c = split_interactions(inter, items, seed=7)
    assert a.candidates.equals(b.candidates) and a.split.equals(b.split)
    assert a.candidates.equals(movielens_ws.read("candidates"))  # what `data split` stored
    assert not a.candidates.column("negatives").equals(c.candidates.column("negatives"))


def test_sample_negatives_dense_and_impossible() -> None:
    rng = np.random.default_rng(0)
    seen = np.array([0, 1, 2, 3, 5, 7])
    neg = sample_negatives(seen, 10, 4, rng)  # only 4 unseen: 4, 6, 8, 9
    assert sorted(neg.tolist()) == [4, 6, 8, 9]
    assert sample_negatives(seen, 10, 5, rng) is None


def _log(user_items: list[list[tuple[int, int | None]]]) -> pa.Table:
    rows = [
        {"user_id": f"u{u}", "item_id": f"i{item}",
         "timestamp": None if ts is None else datetime.fromtimestamp(ts, UTC), "weight": 1.0}
        for u, items in enumerate(user_items)
        for item, ts in items
    ]
    return pa.Table.from_pylist(rows, schema=schemas.INTERACTIONS)


logs = st.integers(8, 40).flatmap(
    lambda n_items: st.tuples(
        st.just(n_items),
        st.lists(
            st.lists(st.integers(0, n_items - 1), min_size=1, max_size=n_items, unique=True).flatmap(
                lambda items: st.lists(
                    st.one_of(st.none(), st.integers(0, 50)), min_size=len(items), max_size=len(items)
                ).map(lambda ts: list(zip(items, ts, strict=True)))
            ),
            min_size=1,
            max_size=12,
        ),
    )
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs, st.integers(1, 6), st.integers(0, 2**16))
def test_split_invariants(data: tuple[int, list[list[tuple[int, int | None]]]], negatives: int, seed: int) -> None:
    n_items, user_items = data
    item_ids = [f"i{i}" for i in range(n_items)]
    result = split_interactions(_log(user_items), item_ids, negatives=negatives, seed=seed)
    split = result.split.to_pandas()
    assert len(split) == sum(len(x) for x in user_items)  # nothing lost
    cands = {(r["user_id"], r["split"]): r for r in result.candidates.to_pylist()}
    report = result.report
    few = too_dense = 0
    for u, items in enumerate(user_items):
        user = f"u{u}"
        rows = split[split.user_id == user].sort_values("position")
        seen = {f"i{i}" for i, _ in items}
        if len(items) < 3:
            few += 1
            assert set(rows.split) == {"train"} and (user, "test") not in cands
            continue
        if n_items - len(seen) < negatives:
            too_dense += 1
            assert set(rows.split) == {"train"} and (user, "valid") not in cands
            continue
        assert rows.split.tolist()[-2:] == ["valid", "test"] and set(rows.split.tolist()[:-2]) == {"train"}
        known = rows.timestamp.dropna()
        assert known.is_monotonic_increasing  # time order (missing timestamps come first)
        for name in ("valid", "test"):
            c = cands[(user, name)]
            assert c["positive"] == rows[rows.split == name].item_id.item()
            assert len(c["negatives"]) == negatives == len(set(c["negatives"]))
            assert not set(c["negatives"]) & seen
    assert report["train_only_users_few_interactions"] == few
    assert report["train_only_users_too_few_unseen_items"] == too_dense
    assert report["candidate_sets"] == 2 * (len(user_items) - few - too_dense)
    assert report["valid_interactions"] == report["test_interactions"] == report["evaluated_users"]
    again = split_interactions(_log(user_items), item_ids, negatives=negatives, seed=seed)
    assert again.candidates.equals(result.candidates) and again.split.equals(result.split)


def test_split_cli_reports_and_rejects_bad_flags(cli, tmp_path, ml_small) -> None:
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "movielens", ml_small, "-w", ws).code == 0
    r = cli("data", "split", "-w", ws)
    assert r.code == 0 and "1,220 candidate sets of 1+99" in r.err
    bad = cli("data", "split", "-w", ws, "--negatives", "0")
    assert bad.code == 2 and "--negatives must be >= 1" in bad.err


@pytest.mark.parametrize("min_interactions", [3, 25])
def test_min_interactions(movielens_ws: Workspace, min_interactions: int) -> None:
    inter = movielens_ws.read("interactions")
    items = movielens_ws.read("items", columns=["item_id"]).column("item_id").to_pylist()
    counts = inter.group_by("user_id").aggregate([("user_id", "count")]).column("user_id_count").to_numpy()
    result = split_interactions(inter, items, min_interactions=min_interactions)
    assert result.report["train_only_users_few_interactions"] == int((counts < min_interactions).sum())
