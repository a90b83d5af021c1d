"""Exemplar retrieval (Eq. 15) on hand-built embeddings: top-k by cosine, ties, dedup, skips."""

from __future__ import annotations

import numpy as np
import pytest

from tailormind.generation.exemplars import Exemplar, select_exemplars
from tailormind.profiling.evidence import ItemFeatures


def features(vectors: dict[str, list[float]]) -> ItemFeatures:
    ids = list(vectors)
    matrix = np.asarray([vectors[i] for i in ids], dtype=np.float32)
    return ItemFeatures(ids=ids, index={i: n for n, i in enumerate(ids)},
                        descriptions=[f"item {i}" for i in ids], matrix=matrix, model="hand")


# Unit vectors at known angles to the profile direction (1, 0).
FEATURES = features({
    "h_old": [1.0, 0.0],        # cos 1.0
    "h_new": [0.6, 0.8],        # cos 0.6
    "c_best": [0.8, 0.6],       # cos 0.8
    "c_far": [0.0, 1.0],        # cos 0.0
    "c_neg": [-1.0, 0.0],       # cos -1.0
})


def test_top_k_by_cosine_over_history_and_cf() -> None:
    # An unnormalised profile vector: the cosine divides by its norm (3).
    got = select_exemplars(np.array([3.0, 0.0]), ["h_old", "h_new"], ["c_best", "c_far", "c_neg"],
                           FEATURES, k=3)
    assert [(e.item_id, e.source) for e in got] == [("h_old", "history"), ("c_best", "cf"),
                                                    ("h_new", "history")]
    assert [e.score for e in got] == pytest.approx([1.0, 0.8, 0.6])


def test_fewer_than_k_when_the_pool_is_small_and_none_for_k_zero() -> None:
    assert [e.item_id for e in select_exemplars(np.array([1.0, 0.0]), ["h_new"], ["c_neg"],
                                                FEATURES, k=5)] == ["h_new", "c_neg"]
    assert select_exemplars(np.array([1.0, 0.0]), ["h_new"], ["c_neg"], FEATURES, k=0) == []
    assert select_exemplars(np.array([1.0, 0.0]), ["h_new"], [], FEATURES, k=-1) == []
    assert select_exemplars(np.array([1.0, 0.0]), [], [], FEATURES, k=3) == []


def test_an_item_in_both_sets_counts_once_as_history_and_unknown_items_are_skipped() -> None:
    got = select_exemplars(np.array([1.0, 0.0]), ["c_best", "missing"], ["c_best", "gone", "c_far"],
                           FEATURES, k=10)
    assert got == [Exemplar("c_best", pytest.approx(0.8), "history"),
                   Exemplar("c_far", pytest.approx(0.0), "cf")]
    dup = select_exemplars(np.array([1.0, 0.0]), ["h_old", "h_old"], ["c_far", "c_far"], FEATURES,
                           k=10)
    assert [e.item_id for e in dup] == ["h_old", "c_far"]


def test_ties_go_to_history_then_to_the_more_recent_item_then_cf_rank() -> None:
    same = features({"a": [0.0, 1.0], "b": [0.0, 1.0], "c": [0.0, 1.0], "d": [0.0, 1.0],
                     "e": [0.0, 1.0]})
    got = select_exemplars(np.array([0.0, 2.0]), ["a", "b"], ["d", "c", "e"], same, k=5)
    # History newest first (b, a), then CF in its own order (d, c, e).
    assert [(e.item_id, e.source) for e in got] == [("b", "history"), ("a", "history"),
                                                    ("d", "cf"), ("c", "cf"), ("e", "cf")]
    assert [e.item_id for e in select_exemplars(np.array([0.0, 1.0]), ["a", "b"], [], same,
                                                k=1)] == ["b"]


def test_scores_differing_below_1e9_count_as_ties() -> None:
    """Float noise in the ninth decimal must not beat the history-first rule."""
    near = features({"h": [0.6, 0.8], "c": [0.6 + 2e-10, 0.8]})
    near.matrix = np.array([[0.6, 0.8], [0.6 + 2e-10, 0.8]])  # float64: c is 2e-10 closer
    got = select_exemplars(np.array([1.0, 0.0]), ["h"], ["c"], near, k=2)
    assert [(e.item_id, e.source) for e in got] == [("h", "history"), ("c", "cf")]
    assert got[1].score - got[0].score == pytest.approx(2e-10, rel=1e-3)
    # a gap in the ninth decimal is not noise: there the closer item comes first
    near.matrix[1, 0] = 0.6 + 2e-9
    assert [e.item_id for e in select_exemplars(np.array([1.0, 0.0]), ["h"], ["c"], near,
                                                k=2)] == ["c", "h"]


def test_a_zero_profile_scores_every_exemplar_zero_in_tie_order() -> None:
    got = select_exemplars(np.zeros(2), ["h_new", "h_old"], ["c_neg"], FEATURES, k=3)
    assert [(e.item_id, e.score) for e in got] == [("h_old", 0.0), ("h_new", 0.0), ("c_neg", 0.0)]


def test_a_negative_k_selects_nothing_from_a_full_pool() -> None:
    assert select_exemplars(np.array([1.0, 0.0]), ["h_new", "h_old"], ["c_neg"], FEATURES,
                            k=-1) == []
