"""Ranking metrics against hand-computed values (ties, K beyond the list, several positives)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailormind.core.metrics import (
    candidate_metrics,
    candidate_ranks,
    full_ranking_metrics,
    mean_metrics,
    metrics_from_ranks,
    rank_among,
)

L2 = math.log2


def test_candidate_ranks_hand_computed() -> None:
    scores = np.array([
        [0.9, 0.1, 0.2, 0.3],  # positive first: rank 0
        [0.5, 0.9, 0.5, 0.1],  # one above, one tie -> tie counts against: rank 2
        [0.0, 0.0, 0.0, 0.0],  # constant scorer: worst rank 3
        [np.nan, 0.1, 0.2, 0.3],  # NaN positive is -inf: rank 3
    ])
    assert candidate_ranks(scores).tolist() == [0, 2, 3, 3]


def test_candidate_metrics_hand_computed() -> None:
    scores = np.array([[0.9, 0.1, 0.2, 0.3], [0.5, 0.9, 0.5, 0.1], [0.0, 0.0, 0.0, 0.0]])
    m = candidate_metrics(scores, ks=(1, 3, 10))
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)  # ranks 0 and 2 are < 3
    assert m["recall@10"] == pytest.approx(1.0)  # K larger than the list of 4
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx((1 + 1 / L2(4)) / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / L2(4) + 1 / L2(5)) / 3)
    assert m["hit@3"] == m["recall@3"]
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)


def test_constant_scorer_scores_worst_possible() -> None:
    m = candidate_metrics(np.ones((5, 100)), ks=(10, 20))
    assert m["recall@20"] == 0.0 and m["ndcg@10"] == 0.0
    assert m["mrr"] == pytest.approx(1 / 100)


def test_full_ranking_hand_computed() -> None:
    scores = np.array([
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        [0.1, 0.5, 0.5, 0.9, 0.2, 0.0],
        [0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
    ])
    positives = np.array([
        [0, 1, 0, 1, 0, 0],  # positions 1 and 3
        [0, 1, 0, 0, 0, 0],  # item 3 excluded; tie item1=item2 -> negative first: position 1
        [0, 0, 0, 0, 0, 0],  # no positive: not scored
    ], dtype=bool)
    exclude = np.array([
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ], dtype=bool)
    m = full_ranking_metrics(scores, positives, exclude, ks=(2, 10))
    assert m["recall@2"][:2].tolist() == pytest.approx([0.5, 1.0])
    assert m["ndcg@2"][0] == pytest.approx((1 / L2(3)) / (1 + 1 / L2(3)))
    assert m["ndcg@2"][1] == pytest.approx((1 / L2(3)) / 1.0)
    assert m["recall@10"][0] == 1.0  # K beyond the 6 items
    assert m["ndcg@10"][0] == pytest.approx((1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3)))
    assert m["hit@2"][:2].tolist() == [1.0, 1.0]
    assert m["mrr"][:2].tolist() == pytest.approx([1 / 2, 1 / 2])
    assert np.isnan(m["recall@2"][2])
    means = mean_metrics(m)
    assert means["recall@2"] == pytest.approx(0.75)


def test_full_ranking_constant_scores_rank_positives_last() -> None:
    scores = np.zeros((1, 5))
    positives = np.array([[1, 0, 0, 0, 0]], dtype=bool)
    m = full_ranking_metrics(scores, positives, ks=(4,))
    assert m["recall@4"][0] == 0.0 and m["mrr"][0] == pytest.approx(1 / 5)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 30).flatmap(lambda m: st.lists(
    st.lists(st.integers(0, 5), min_size=m, max_size=m), min_size=1, max_size=20)))
def test_single_positive_full_ranking_agrees_with_candidate_sets(rows: list[list[int]]) -> None:
    """With one positive in column 0 and nothing excluded, both protocols give the same numbers."""
    scores = np.array(rows, dtype=float)
    positives = np.zeros_like(scores, dtype=bool)
    positives[:, 0] = True
    full = mean_metrics(full_ranking_metrics(scores, positives, ks=(1, 5, 10)))
    cand = candidate_metrics(scores, ks=(1, 5, 10))
    for name, value in cand.items():
        assert full[name] == pytest.approx(value)
    ranks = candidate_ranks(scores)
    assert metrics_from_ranks(ranks, ks=(1, 5, 10)) == cand


def test_per_set_metrics_by_hand() -> None:
    from tailormind.core.metrics import per_set_metrics

    ranks = np.array([0, 9, 10, 19, 50])
    values = per_set_metrics(ranks)
    assert values["recall@10"].tolist() == [1, 1, 0, 0, 0]
    assert values["recall@20"].tolist() == [1, 1, 1, 1, 0]
    assert values["ndcg@10"] == pytest.approx([1, 1 / np.log2(11), 0, 0, 0])
    assert values["ndcg@20"] == pytest.approx([1, 1 / np.log2(11), 1 / np.log2(12),
                                               1 / np.log2(21), 0])
    means = metrics_from_ranks(ranks)
    for key, per_set in values.items():
        assert per_set.mean() == pytest.approx(means[key])


def test_missing_scores_count_as_minus_infinity() -> None:
    """None and NaN are missing scores: they rank below every real score, ties against the positive."""
    assert candidate_ranks([[None, 0.0, -5.0]]).tolist() == [2]
    assert candidate_ranks([[1.0, None, np.nan]]).tolist() == [0]
    assert candidate_ranks([[np.nan, None]]).tolist() == [1]


def test_a_set_of_only_the_positive_ranks_it_first() -> None:
    assert candidate_ranks(np.array([[0.3], [-1.0]])).tolist() == [0, 0]
    assert candidate_metrics(np.array([[0.3]]), ks=(1,))["recall@1"] == 1.0


@pytest.mark.parametrize("shape", [(4,), (2, 0), (2, 3, 1)])
def test_candidate_ranks_refuses_a_shape_that_is_not_sets_by_candidates(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"scores must be \(n_sets, M >= 1\), got shape"):
        candidate_ranks(np.zeros(shape))


def test_no_ranks_is_an_error_not_a_nan_mean() -> None:
    with pytest.raises(ValueError, match="^no ranks to score$"):
        metrics_from_ranks(np.array([], dtype=np.int64))


@pytest.mark.parametrize("which", ["positives", "exclude"])
def test_full_ranking_refuses_masks_of_another_shape(which: str) -> None:
    scores = np.zeros((2, 3))
    masks = {"positives": np.ones((2, 3), bool), "exclude": np.zeros((2, 3), bool)}
    masks[which] = np.zeros((2, 4), bool)
    with pytest.raises(ValueError, match="^scores, positives and exclude must have the same shape$"):
        full_ranking_metrics(scores, masks["positives"], masks["exclude"], ks=(2,))


def test_full_ranking_accepts_zero_one_masks_of_any_dtype() -> None:
    """Masks are truth values: 0/1 floats or ints give the same numbers as booleans."""
    scores = np.array([[0.9, 0.5, 0.1, 0.7]])
    positives = np.array([[0.0, 1.0, 1.0, 0.0]])
    exclude = np.array([[0, 0, 0, 1]])
    as_float = full_ranking_metrics(scores, positives, exclude.astype(float), ks=(2,))
    as_bool = full_ranking_metrics(scores, positives.astype(bool), exclude.astype(bool), ks=(2,))
    # Ranked (item 3 excluded): item0 (neg), item1 (pos), item2 (pos).
    assert as_bool["recall@2"].tolist() == [0.5]
    assert as_bool["mrr"].tolist() == [0.5]
    assert as_bool["ndcg@2"] == pytest.approx([(1 / L2(3)) / (1 + 1 / L2(3))])
    for name, values in as_bool.items():
        assert as_float[name].tolist() == values.tolist(), name


def test_rows_without_a_positive_are_nan_float_and_silent() -> None:
    """A user whose every positive is excluded is not scored: NaN in every metric, no warning."""
    import warnings

    scores = np.array([[0.2, 0.8, 0.5], [0.2, 0.8, 0.5], [0.1, 0.2, 0.3]])
    positives = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=bool)
    exclude = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = full_ranking_metrics(scores, positives, exclude, ks=(1, 2))
    for name, values in out.items():
        assert values.dtype == np.float64, name
        assert np.isnan(values[0]) and np.isnan(values[2]), name
    # Row 1: order item1 (0.8), item2 (0.5, positive), item0.
    assert out["mrr"][1] == 0.5 and out["hit@1"][1] == 0.0 and out["hit@2"][1] == 1.0
    assert out["ndcg@2"][1] == pytest.approx(1 / L2(3))
    assert mean_metrics(out)["mrr"] == 0.5


def test_rank_among_counts_the_others_scored_at_least_as_high() -> None:
    assert rank_among(0.5, np.array([0.1, 0.9, 0.5, 0.7])) == 3  # 0.9, 0.7 and the tie
    assert rank_among(1.0, np.array([0.1, 0.2])) == 0
    assert rank_among(0.0, np.array([])) == 0
    assert rank_among(float("nan"), np.array([-5.0])) == 1  # NaN counts as -inf
    assert isinstance(rank_among(0.3, [0.4, 0.2]), int) and rank_among(0.3, [0.4, 0.2]) == 1
