"""Leave-two-out split and 1:99 candidate sets: real-data checks and property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailormind.data import schemas
from tailormind.data.ingest import save_import
from tailormind.data.item_tags import model_items
from tailormind.data.records import ImportBundle, interactions_table, items_table, tag_events_table, users_table
from tailormind.data.split import candidate_items, sample_negatives, split_interactions, split_workspace
from tailormind.data.workspace import Workspace
from tailormind.errors import DataError


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


# -- small hand-made logs: every number below is worked out by hand ------------------------------

ORDER_TEXT = "timestamp, ties and missing timestamps in seeded random order"


def _events(rows: list[tuple[str, str, int | None, float]]) -> pa.Table:
    """An ``interactions`` table of (user, item, unix seconds or None, weight), in the given order."""
    return pa.Table.from_pylist(
        [{"user_id": u, "item_id": i, "weight": w,
          "timestamp": None if ts is None else datetime.fromtimestamp(ts, UTC)} for u, i, ts, w in rows],
        schema=schemas.INTERACTIONS)


def _items(n: int) -> list[str]:
    return [f"i{k}" for k in range(n)]


def test_hand_split_rows_candidates_and_report() -> None:
    """a: 4 interactions -> train i0 i1, valid i2, test i3, negatives = the only unseen i4, i5;
    b: 2 interactions (< 3) -> train only; c: 5 interactions, 1 unseen item (< 2) -> train only."""
    log = _events([("c", "i5", 5, 1.0), ("a", "i3", 40, 2.5), ("b", "i2", 2, 1.0), ("a", "i0", 10, 0.5),
                   ("c", "i0", 1, 1.0), ("a", "i2", 30, 1.0), ("c", "i1", 2, 1.0), ("b", "i1", 1, 1.0),
                   ("a", "i1", 20, 1.0), ("c", "i2", 3, 1.0), ("c", "i4", 4, 1.0)])
    result = split_interactions(log, _items(6), negatives=2, seed=3)
    assert result.split.schema == schemas.SPLIT
    rows = [(r["user_id"], r["item_id"], r["timestamp"].timestamp(), r["weight"], r["position"], r["split"])
            for r in result.split.to_pylist()]
    assert rows == [
        ("a", "i0", 10, 0.5, 0, "train"), ("a", "i1", 20, 1.0, 1, "train"),
        ("a", "i2", 30, 1.0, 2, "valid"), ("a", "i3", 40, 2.5, 3, "test"),
        ("b", "i1", 1, 1.0, 0, "train"), ("b", "i2", 2, 1.0, 1, "train"),
        ("c", "i0", 1, 1.0, 0, "train"), ("c", "i1", 2, 1.0, 1, "train"), ("c", "i2", 3, 1.0, 2, "train"),
        ("c", "i4", 4, 1.0, 3, "train"), ("c", "i5", 5, 1.0, 4, "train"),
    ]
    assert result.candidates.schema == schemas.CANDIDATES
    cands = [(r["user_id"], r["split"], r["positive"], sorted(r["negatives"]))
             for r in result.candidates.to_pylist()]
    assert cands == [("a", "valid", "i2", ["i4", "i5"]), ("a", "test", "i3", ["i4", "i5"])]
    assert candidate_items(result.candidates)[1][0] == "i3"
    assert result.report == {
        "seed": 3, "negatives": 2, "min_interactions": 3,
        "train_interactions": 9, "valid_interactions": 1, "test_interactions": 1,
        "evaluated_users": 1, "train_only_users_few_interactions": 1,
        "train_only_users_too_few_unseen_items": 1, "candidate_sets": 2,
        "timestamps_missing": 0, "order": ORDER_TEXT,
    }


def test_missing_timestamps_come_first_and_count() -> None:
    # i0 and i3 have no time: positions 0-1 (train); then i2 (t=3) valid, i1 (t=5) test
    log = _events([("a", "i0", None, 1.0), ("a", "i1", 5, 1.0), ("a", "i2", 3, 1.0), ("a", "i3", None, 1.0)])
    result = split_interactions(log, _items(6), negatives=1, seed=0)
    rows = result.split.to_pylist()
    assert {r["item_id"] for r in rows[:2]} == {"i0", "i3"} and [r["timestamp"] for r in rows[:2]] == [None, None]
    assert [(r["item_id"], r["split"]) for r in rows[2:]] == [("i2", "valid"), ("i1", "test")]
    assert result.report["timestamps_missing"] == 2


def test_ties_are_broken_in_a_seeded_random_order() -> None:
    """Four interactions at the same second: over 30 seeds each of them is the test item for some
    seed (input order would always pick the same one), and a seed always picks the same."""
    log = _events([("a", f"i{k}", 7, 1.0) for k in range(4)])

    def test_item(seed: int) -> str:
        split = split_interactions(log, _items(10), negatives=1, seed=seed).split
        return split.filter(pc.equal(split.column("split"), "test")).column("item_id")[0].as_py()

    assert {test_item(seed) for seed in range(30)} == {"i0", "i1", "i2", "i3"}
    assert test_item(11) == test_item(11)


def test_errors_name_the_problem() -> None:
    with pytest.raises(DataError, match=r"^the workspace has no interactions to split$"):
        split_interactions(_events([]), _items(3))
    with pytest.raises(DataError, match=r"^interaction names item 'zz', which is not in the items table$"):
        split_interactions(_events([("a", "i0", 1, 1.0), ("a", "zz", 2, 1.0)]), _items(3))


def test_single_interaction_and_no_train_rows() -> None:
    one = split_interactions(_events([("a", "i0", 1, 1.0)]), _items(2))
    assert one.split.column("split").to_pylist() == ["train"]
    assert one.candidates.num_rows == 0 and one.candidates.schema == schemas.CANDIDATES
    assert {k: one.report[k] for k in ("train_interactions", "valid_interactions", "test_interactions",
                                       "candidate_sets", "train_only_users_few_interactions")} == {
        "train_interactions": 1, "valid_interactions": 0, "test_interactions": 0, "candidate_sets": 0,
        "train_only_users_few_interactions": 1}
    # min_interactions=2: a user with exactly 2 interactions is evaluated and keeps no train row
    two = split_interactions(_events([("a", "i0", 1, 1.0), ("a", "i1", 2, 1.0)]), _items(3),
                             negatives=1, min_interactions=2)
    assert two.split.column("split").to_pylist() == ["valid", "test"]
    assert (two.report["train_interactions"], two.report["valid_interactions"],
            two.report["test_interactions"], two.report["train_only_users_few_interactions"]) == (0, 1, 1, 0)
    assert [r["negatives"] for r in two.candidates.to_pylist()] == [["i2"], ["i2"]]


def test_documented_defaults() -> None:
    """1:99 candidate sets, users with 3 interactions evaluated, seed 2026."""
    log = _events([("a", "i0", 1, 1.0), ("a", "i1", 2, 1.0), ("a", "i2", 3, 1.0)])
    result = split_interactions(log, _items(103))
    assert [len(r["negatives"]) for r in result.candidates.to_pylist()] == [99, 99]
    assert (result.report["seed"], result.report["negatives"], result.report["min_interactions"]) == (2026, 99, 3)
    explicit = split_interactions(log, _items(103), negatives=99, min_interactions=3, seed=2026)
    assert result.candidates.equals(explicit.candidates)


def test_progress_counts_users_in_steps_of_256() -> None:
    log = _events([(f"u{u:03d}", f"i{k}", k, 1.0) for u in range(600) for k in range(3)])
    calls: list[int] = []
    split_interactions(log, _items(10), negatives=2, progress=calls.append)
    assert calls == [256, 256, 88]  # after users 256 and 512, then the last 88
    one: list[int] = []
    split_interactions(_events([("a", f"i{k}", k, 1.0) for k in range(3)]), _items(10), negatives=2,
                       progress=one.append)
    assert one == [1]


def test_candidate_items_puts_the_positive_first() -> None:
    table = pa.Table.from_pylist(
        [{"user_id": "a", "split": "valid", "positive": "p1", "negatives": ["n1", "n2"]},
         {"user_id": "b", "split": "test", "positive": "p2", "negatives": ["n3", "n4"]}],
        schema=schemas.CANDIDATES)
    assert candidate_items(table) == [["p1", "n1", "n2"], ["p2", "n3", "n4"]]


def test_sample_negatives_rejection_sampling_is_uniform_over_unseen_items() -> None:
    """37 unseen items >= 3k (k = 10): the rejection sampler. 300 draws: always 10 distinct unseen
    items, and every unseen item (below, between and above the seen ones) drawn close to
    300 * 10 / 37 = 81 times."""
    rng = np.random.default_rng(1)
    seen = np.array([2, 5, 9])
    counts = np.zeros(40, dtype=int)
    for _ in range(300):
        neg = sample_negatives(seen, 40, 10, rng)
        assert len(neg) == 10 == len(set(neg.tolist())) and not set(neg.tolist()) & {2, 5, 9}
        assert neg.dtype == np.int64
        counts[neg] += 1
    unseen = np.setdiff1d(np.arange(40), seen)
    assert counts[seen].sum() == 0
    assert counts[unseen].min() >= 45 and counts[unseen].max() <= 120, counts


def test_sample_negatives_pool_is_without_replacement() -> None:
    rng = np.random.default_rng(2)
    seen = np.array([2, 5, 9])
    counts = np.zeros(20, dtype=int)
    for _ in range(300):
        neg = sample_negatives(seen, 20, 10, rng)  # 17 unseen < 3k: drawn from the pool
        assert len(neg) == 10 == len(set(neg.tolist())) and not set(neg.tolist()) & {2, 5, 9}
        counts[neg] += 1
    assert counts[[2, 5, 9]].sum() == 0 and counts[np.setdiff1d(np.arange(20), seen)].min() > 100
    every = sample_negatives(np.array([0]), 21, 20, rng)  # all 20 unseen items, each once
    assert sorted(every.tolist()) == list(range(1, 21))


def _workspace(root, items: list[str], rows: list[tuple[str, str, int]], *, tags: list[list[str]] | None = None,
               tag_events: list[tuple[str, str, str]] | None = None) -> Workspace:
    """A tiny imported workspace: ``rows`` are (user, item, unix seconds); ``tag_events`` are
    (item, tag, user)."""
    users, its, ts = zip(*rows, strict=True)
    events = tag_events_table(*zip(*tag_events, strict=True)) if tag_events else None
    bundle = ImportBundle(items_table(items, tags=tags), interactions_table(list(users), list(its),
                                                                          timestamps=np.array(ts)),
                          users_table(list(users)), {}, tag_events=events)
    return save_import(bundle, root)


def test_split_workspace_stores_what_it_returns_with_the_defaults(tmp_path) -> None:
    ws = _workspace(tmp_path / "ws", _items(103), [("a", "i0", 1), ("a", "i1", 2), ("a", "i2", 3)])
    result = split_workspace(ws)
    assert (result.report["seed"], result.report["negatives"], result.report["min_interactions"]) == (2026, 99, 3)
    stored = Workspace.open(ws.root)
    assert stored.read("split").equals(result.split) and stored.read("candidates").equals(result.candidates)
    assert stored.manifest["split"] == result.report and result.candidates.num_rows == 2


def test_split_workspace_passes_every_option_through(tmp_path) -> None:
    ws = _workspace(tmp_path / "ws", _items(6), [("a", "i0", 1), ("a", "i1", 2),
                                                 ("b", "i0", 1), ("b", "i2", 2), ("b", "i3", 3)])
    calls: list[int] = []
    result = split_workspace(ws, negatives=2, min_interactions=2, seed=5, progress=calls.append)
    assert (result.report["seed"], result.report["negatives"], result.report["min_interactions"]) == (5, 2, 2)
    assert calls == [2] and result.report["evaluated_users"] == 2
    assert [len(n) for n in result.candidates.column("negatives").to_pylist()] == [2, 2, 2, 2]
    assert Workspace.open(ws.root).manifest["split"]["seed"] == 5


def _item_features(ids: list[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"item_id": i, "description": f"about {i}", "text_source": "none", "image_source": "none",
          "video_source": "none", "embedding": [1.0, 0.0], "embed_model": "m"} for i in ids],
        schema=schemas.ITEM_FEATURES)


def test_split_workspace_withholds_tags_and_keeps_descriptions_only_while_tags_match(tmp_path) -> None:
    """u1 rated a, b, c in the same second and tagged a "x": the seed decides whether a is held out
    (then "x" is withheld) or train (then a's model tags are g, x)."""
    ids = list("abcdef")
    ws = _workspace(tmp_path / "ws", ids, [("u1", "a", 1), ("u1", "b", 1), ("u1", "c", 1),
                                           ("u2", "d", 1), ("u2", "e", 2), ("u2", "f", 3)],
                    tags=[["g"], [], [], [], [], []], tag_events=[("a", "x", "u1")])

    def a_is_train(seed: int) -> bool:
        split = split_interactions(ws.read("interactions"), ids, negatives=1, seed=seed).split.to_pylist()
        return next(r["split"] for r in split if (r["user_id"], r["item_id"]) == ("u1", "a")) == "train"

    train_seed = next(s for s in range(50) if a_is_train(s))
    held_seed = next(s for s in range(50) if not a_is_train(s))

    first = split_workspace(ws, negatives=1, seed=train_seed)
    assert (first.report["tag_events"], first.report["tag_events_withheld"]) == (1, 0)
    assert model_items(ws).column("tags")[0].as_py() == ["g", "x"]
    ws.write("item_features", _item_features(ids))
    ws.artifact_path("fusion.json").write_text("{}")
    ws.record_artifact("fusion", "fusion.json")

    split_workspace(ws, negatives=1, seed=train_seed)  # same item tags: descriptions stay valid
    ws = Workspace.open(ws.root)
    assert ws.has("item_features") and not ws.has_artifact("fusion")

    held = split_workspace(ws, negatives=1, seed=held_seed)  # "x" withheld now: descriptions stale
    assert (held.report["tag_events_withheld"], held.report["users_with_withheld_tags"]) == (1, 1)
    ws = Workspace.open(ws.root)
    assert not ws.has("item_features") and model_items(ws).column("tags")[0].as_py() == ["g"]


def test_sample_negatives_switches_to_rejection_at_three_k_unseen() -> None:
    """Below 3k unseen items the k negatives are a uniform draw from the unseen pool
    (``Generator.choice`` without replacement); from 3k on, rejection sampling: the first k
    distinct unseen items of the ``Generator.integers(0, n)`` stream. Pinned with k = 4, n = 20."""
    stream = np.random.default_rng(7).integers(0, 20, size=8).tolist()
    assert stream == [18, 12, 13, 17, 11, 15, 16, 4]
    seen_12_unseen = np.array([0, 2, 3, 5, 8, 11, 13, 19])  # 20 - 8 = 12 = 3k unseen
    # rejection: 18, 12, (13 seen), 17, (11 seen), 15
    assert sample_negatives(seen_12_unseen, 20, 4, np.random.default_rng(7)).tolist() == [18, 12, 17, 15]
    seen_11_unseen = np.array([0, 2, 3, 5, 8, 11, 13, 17, 19])  # 11 unseen: the pool
    pool = np.array([1, 4, 6, 7, 9, 10, 12, 14, 15, 16, 18])
    dense = np.random.default_rng(7).choice(pool, size=4, replace=False).tolist()
    assert sample_negatives(seen_11_unseen, 20, 4, np.random.default_rng(7)).tolist() == dense
    assert dense != [18, 12, 15, 16]  # what rejection sampling would have given here
