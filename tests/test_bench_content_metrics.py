"""TailorBench's embedding metrics and bootstrap intervals against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailormind.bench.content_metrics import (
    clip_score,
    objective_novelty,
    reference_embedding,
    text_coherence,
)
from tailormind.core.bootstrap import bootstrap_mean
from tailormind.core.vectors import cosine, unit_rows


def test_cosine_and_zero_vectors() -> None:
    assert cosine(np.array([1.0, 0.0]), np.array([0.6, 0.8])) == pytest.approx(0.6)
    assert cosine(np.array([3.0, 4.0]), np.array([-6.0, -8.0])) == pytest.approx(-1.0)
    assert cosine(np.array([1.0, 0.0]), np.zeros(2)) == 0.0
    assert unit_rows(np.array([[0.0, 0.0], [0.0, 2.0]])).tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_reference_is_the_equal_weighted_mean_of_unit_captions() -> None:
    # history [2,0] and [0,3] -> [1,0], [0,1]; target [1,1] -> [1/√2, 1/√2]
    ref = reference_embedding(np.array([[2.0, 0.0], [0.0, 3.0]]), np.array([1.0, 1.0]))
    expected = (1 + 1 / math.sqrt(2)) / 3  # 0.569036...
    assert ref == pytest.approx([expected, expected])
    assert reference_embedding(np.zeros((0, 2)), np.array([0.0, 5.0])) == pytest.approx([0.0, 1.0])
    # the post [1,0] against that reference: cos 45° = 0.7071...
    assert text_coherence(np.array([1.0, 0.0]), ref) == pytest.approx(1 / math.sqrt(2))


def test_clipscore_is_2_5_max_cos_0_averaged_over_images() -> None:
    reference = np.array([0.6, 0.8])
    assert clip_score(np.array([[1.0, 0.0]]), reference) == pytest.approx(1.5)  # 2.5 * 0.6
    # [-1, 0] has cos -0.6 -> clipped to 0; mean of 1.5 and 0
    assert clip_score(np.array([[1.0, 0.0], [-1.0, 0.0]]), reference) == pytest.approx(0.75)
    assert clip_score(np.array([[0.6, 0.8]]), reference) == pytest.approx(2.5)


def test_objective_novelty_is_one_minus_the_nearest_catalogue_cosine() -> None:
    post = np.array([1.0, 0.0])
    assert objective_novelty(post, np.array([[0.6, 0.8], [0.0, 1.0]])) == pytest.approx(0.4)
    assert objective_novelty(post, np.array([[0.0, 1.0], [2.0, 0.0]])) == pytest.approx(0.0)  # paraphrase
    assert objective_novelty(post, np.array([[-1.0, 0.0]])) == 1.0  # clipped to [0, 1]
    assert objective_novelty(post, np.zeros((0, 2))) == 1.0


def test_bootstrap_hand_cases() -> None:
    assert bootstrap_mean([3.0, 3.0, 3.0]) == bootstrap_mean([3.0, 3.0, 3.0])
    est = bootstrap_mean([3.0, 3.0, 3.0])
    assert (est.mean, est.low, est.high, est.n) == (3.0, 3.0, 3.0, 3)
    one = bootstrap_mean([0.25])
    assert (one.low, one.high) == (0.25, 0.25)
    assert math.isnan(bootstrap_mean([]).mean) and bootstrap_mean([]).n == 0
    # 50 zeros and 50 ones: mean 0.5, normal approximation ±1.96·√(0.25/100) = ±0.098
    est = bootstrap_mean([0.0] * 50 + [1.0] * 50, resamples=4000, seed=1)
    assert est.mean == 0.5
    assert 0.38 < est.low < 0.43 and 0.57 < est.high < 0.62
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_mean([1.0], alpha=1.5)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_mean([1.0], resamples=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
       st.integers(0, 2**32 - 1))
def test_bootstrap_interval_is_ordered_and_inside_the_data(values, seed) -> None:
    est = bootstrap_mean(values, resamples=200, seed=seed)
    tol = 1e-9 * max(1.0, max(abs(v) for v in values))
    assert min(values) - tol <= est.low <= est.high <= max(values) + tol
    assert est.mean == pytest.approx(float(np.mean(values)))
    assert bootstrap_mean(values, resamples=200, seed=seed) == est  # seeded: reproducible


def test_unit_rows_scales_each_row_in_float64() -> None:
    rows = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], dtype=np.float32))
    assert rows.dtype == np.float64
    assert rows.tolist() == [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]]
    assert unit_rows([1, 0]).tolist() == [[1.0, 0.0]]  # integers and 1-D input


def test_reference_of_an_empty_history_list_is_the_target() -> None:
    assert reference_embedding([], np.array([0.0, 5.0])) == pytest.approx([0.0, 1.0])


def test_novelty_of_an_exact_copy_is_zero_even_when_rounding_exceeds_one() -> None:
    # this vector's unit form has u·u = 1.0000000000000002 in float64
    v = np.array([0.016527635528529094, 0.8132702392002724, 0.9127555772777217])
    assert float(unit_rows(v)[0] @ unit_rows(v)[0]) > 1.0
    assert objective_novelty(v, v[None, :]) == 0.0
