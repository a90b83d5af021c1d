"""The ratings store: replace on re-rate, validation, several writers at once (threads and
processes), a corrupt file; and the rating set's anonymous ids and per-rater orders."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tailormind.bench.rating_set import RatingSet, anonymous_id
from tailormind.bench.ratings import RatingStore
from tailormind.errors import ConfigError, CorruptFileError


def test_rerating_replaces_and_counts_revisions(tmp_path: Path) -> None:
    store = RatingStore.of(tmp_path)
    first = store.save("ann", "i1", "tailormind", "u1", novelty=2, aesthetic=3, hallucination=1)
    again = store.save("ann", "i1", "tailormind", "u1", novelty=5, aesthetic=4, hallucination=0,
                       comment="changed my mind")
    assert (again.novelty, again.aesthetic, again.hallucination, again.revisions) == (5, 4, 0, 2)
    assert again.created_at == first.created_at
    assert RatingStore.of(tmp_path).ratings() == [again]  # durable: a new store reads it


@pytest.mark.parametrize(("scores", "message"), [
    ({"novelty": 0, "aesthetic": 3, "hallucination": 0}, "novelty"),
    ({"novelty": 3, "aesthetic": 6, "hallucination": 0}, "aesthetic"),
    ({"novelty": 3, "aesthetic": 3, "hallucination": 2}, "hallucination"),
    ({"novelty": 3.0, "aesthetic": 3, "hallucination": 0}, "novelty"),
    ({"novelty": True, "aesthetic": 3, "hallucination": 0}, "novelty"),
    ({"novelty": 3, "aesthetic": 3, "hallucination": 0, "comment": "x" * 2001}, "comment"),
])
def test_bad_scores_are_refused(tmp_path: Path, scores, message) -> None:
    store = RatingStore.of(tmp_path)
    with pytest.raises(ConfigError, match=message):
        store.save("ann", "i1", "m", "u", **scores)
    assert store.ratings() == []


@pytest.mark.parametrize("name", ["", "   ", "a" * 41, "<b>", "ann;drop", "x\ny"])
def test_bad_rater_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="rater name"):
        RatingStore.of(tmp_path).save(name, "i1", "m", "u", novelty=1, aesthetic=1,
                                      hallucination=0)


def _rate_many(args: tuple[str, str, int]) -> int:
    folder, rater, count = args
    store = RatingStore.of(Path(folder))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: store.save(rater, f"i{n}", "m", f"u{n}", novelty=1 + n % 5,
                                           aesthetic=1 + (n + 1) % 5, hallucination=n % 2),
                      range(count)))
    return count


def test_several_raters_at_once_lose_nothing(tmp_path: Path) -> None:
    RatingStore.of(tmp_path)  # created before the writers race
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        done = pool.map(_rate_many, [(str(tmp_path), f"rater{r}", 40) for r in range(3)])
    assert done == [40, 40, 40]
    rows = RatingStore.of(tmp_path).ratings()
    assert len(rows) == 120
    assert {(r.rater, r.item_id) for r in rows} == {(f"rater{r}", f"i{n}") for r in range(3)
                                                    for n in range(40)}
    assert all(r.novelty == 1 + int(r.item_id[1:]) % 5 for r in rows)


def test_a_corrupt_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "ratings.sqlite").write_bytes(b"this is not sqlite, just some bytes" * 40)
    with pytest.raises(CorruptFileError, match="ratings.sqlite"):
        RatingStore.of(tmp_path)


def test_anonymous_ids_hide_method_and_user() -> None:
    a = anonymous_id("secret", "tailormind", "42")
    assert a.startswith("i") and len(a) == 13
    assert a != anonymous_id("secret", "ground_truth", "42") != anonymous_id("secret", "tailormind", "43")
    assert a != anonymous_id("other secret", "tailormind", "42")
    assert a == anonymous_id("secret", "tailormind", "42")


def test_each_rater_has_a_stable_order_of_every_item() -> None:
    items = {f"i{n:02d}": None for n in range(30)}
    ratings = RatingSet(items, seed=2026)  # type: ignore[arg-type]
    orders = {rater: ratings.order(rater) for rater in ("ann", "bob", "cy")}
    for order in orders.values():
        assert sorted(order) == sorted(items)
    assert orders["ann"] == RatingSet(items, seed=2026).order("ann")  # type: ignore[arg-type]
    assert len({tuple(o) for o in orders.values()}) == 3
    assert RatingSet(items, seed=7).order("ann") != orders["ann"]  # type: ignore[arg-type]
    # neither sorted nor reversed: the order carries no information about the ids
    assert orders["ann"] not in (sorted(items), sorted(items, reverse=True))
