"""Cutting a tag list to its most informative tags (IDF), by hand and as properties."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tailormind.data.tag_idf import TagIdf


def test_idf_and_ranking_by_hand() -> None:
    """4 items: 'rock' on all, 'indie' on 2, 'shoegaze' on 2 (tie: item order), 'mine' on 1."""
    idf = TagIdf.from_tag_lists([["rock", "indie", "shoegaze", "mine"], ["rock", "indie"],
                                 ["rock", "shoegaze"], ["rock"]])
    assert idf.idf("rock") == 0.0 and math.isclose(idf.idf("indie"), math.log(2))
    assert math.isclose(idf.idf("mine"), math.log(4))
    assert idf.ranked(["rock", "mine", "shoegaze", "indie"]) == ["shoegaze", "indie", "rock",
                                                                  "mine"]
    # "Tags: shoegaze, indie." is 22 characters: with 22 both fit (in the item's order)
    assert idf.fit(["rock", "indie", "shoegaze", "mine"], 22) == ["indie", "shoegaze"]
    assert idf.fit(["rock", "indie", "shoegaze", "mine"], 21) == ["indie"]  # tie: item order
    assert idf.fit(["rock", "indie"], 5) == []


TAG = st.text(alphabet="abcdef", min_size=1, max_size=6)


@given(st.lists(st.lists(TAG, max_size=8), min_size=1, max_size=12), st.integers(0, 80))
def test_fit_is_a_ranked_run_that_fits(catalogue: list[list[str]], budget: int) -> None:
    idf = TagIdf.from_tag_lists(catalogue)
    tags = catalogue[0]
    kept = idf.fit(tags, budget)
    ranked = idf.ranked(tags)
    assert set(kept) == set(ranked[: len(kept)])  # the most informative ones
    assert kept == [t for t in dict.fromkeys(tags) if t in set(kept)]  # in the item's order
    if kept:
        assert len("Tags: " + ", ".join(kept) + ".") <= budget
    if len(kept) < len(ranked):  # the next one would not have fitted
        assert len("Tags: " + ", ".join([*kept, ranked[len(kept)]]) + ".") > budget
