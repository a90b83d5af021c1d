"""Krippendorff's α and Spearman's ρ against published and hand-computed values, and their
properties where the inputs vary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailormind.core.agreement import (
    average_ranks,
    coincidences,
    krippendorff_alpha,
    spearman,
    spearman_interval,
    units_of,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with missing
# data: 4 observers (rows), 12 units (columns; the last has one value and is not pairable).
_ = None
KRIPPENDORFF_2011 = [[1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
                     [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _]]


def _units(matrix):
    return [[row[u] for row in matrix if row[u] is not None] for u in range(len(matrix[0]))]


def test_alpha_reproduces_the_published_example() -> None:
    units = _units(KRIPPENDORFF_2011)
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(0.815, abs=5e-4)


def test_coincidences_by_hand() -> None:
    # units {1,1} and {1,2,2}: the first adds o_11 = 2 (weight 1/(2−1)); the second's six
    # ordered pairs weigh 1/2: (1,2) ×2, (2,1) ×2, (2,2) ×2 -> o_12 = o_21 = 1, o_22 = 1
    values, matrix = coincidences([[1, 1], [1, 2, 2], [7]])
    assert values == [1, 2]
    assert matrix.tolist() == [[2.0, 1.0], [1.0, 1.0]]


def test_alpha_edge_cases() -> None:
    assert krippendorff_alpha([[3, 3], [1, 1], [5, 5, 5]], "ordinal") == pytest.approx(1.0)
    assert krippendorff_alpha([[3, 3], [3, 3]], "nominal") is None  # no variation at all
    assert krippendorff_alpha([[3], [4]], "nominal") is None  # nothing pairable
    # always disagreeing pairs: 1 − (n − 1)·D_o/D_e with o_01 = o_10 = 2, n_0 = n_1 = 2
    # -> 1 − 3·4/(2·2·2) = −0.5
    assert krippendorff_alpha([[0, 1], [1, 0]], "nominal") == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([[1, 2]], "interval")  # type: ignore[arg-type]


def test_ordinal_alpha_weighs_distance_and_nominal_does_not() -> None:
    near = [[1, 2], [3, 3], [5, 5], [4, 4], [2, 2]]
    far = [[1, 5], [3, 3], [5, 5], [4, 4], [2, 2]]
    assert krippendorff_alpha(near, "ordinal") > krippendorff_alpha(far, "ordinal")
    assert krippendorff_alpha(near, "nominal") == pytest.approx(
        krippendorff_alpha([[1, 4], [3, 3], [5, 5], [4, 4], [2, 2]], "nominal"))


ratings = st.lists(st.lists(st.integers(1, 5), min_size=2, max_size=4), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(ratings, st.randoms(use_true_random=False))
def test_alpha_ignores_the_order_of_units_and_raters(units, rng) -> None:
    for level in ("nominal", "ordinal"):
        shuffled = [rng.sample(u, len(u)) for u in rng.sample(units, len(units))]
        a, b = krippendorff_alpha(units, level), krippendorff_alpha(shuffled, level)
        assert (a is None and b is None) or a == pytest.approx(b, abs=1e-9)
        assert a is None or a <= 1 + 1e-9


@settings(max_examples=60, deadline=None)
@given(ratings)
def test_ordinal_alpha_ignores_a_monotone_relabelling(units) -> None:
    relabel = {1: -3, 2: 0, 3: 10, 4: 11, 5: 40}
    mapped = [[relabel[v] for v in u] for u in units]
    a, b = krippendorff_alpha(units, "ordinal"), krippendorff_alpha(mapped, "ordinal")
    assert (a is None and b is None) or a == pytest.approx(b, abs=1e-9)


def test_units_of_groups_by_unit() -> None:
    assert units_of({("a", "r1"): 1, ("b", "r1"): 2, ("a", "r2"): 3}) == [[1, 3], [2]]


def test_spearman_by_hand() -> None:
    # x ranks 1, 2.5, 2.5, 4; y ranks 1, 2, 3, 4: centred (−1.5, 0, 0, 1.5) and
    # (−1.5, −.5, .5, 1.5); Σxy = 4.5, Σx² = 4.5, Σy² = 5 -> ρ = 4.5/√22.5
    assert average_ranks([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert spearman([10, 20, 20, 30], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None  # under 3 pairs
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # a constant side
    with pytest.raises(ValueError, match="paired"):
        spearman([1, 2, 3], [1, 2])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=3, max_size=30))
def test_spearman_matches_pearson_of_ranks_and_monotone_maps(pairs) -> None:
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    rho = spearman(x, y)
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        assert rho is None
        return
    assert rho == pytest.approx(float(np.corrcoef(rx, ry)[0, 1]), abs=1e-9)
    assert spearman([v ** 3 + 1 for v in x], y) == pytest.approx(rho, abs=1e-9)


def test_spearman_interval_brackets_rho_and_is_seeded() -> None:
    x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    y = [2, 1, 4, 3, 6, 5, 8, 7, 10, 9]
    found = spearman_interval(x, y, resamples=500, seed=7)
    assert found.low <= found.rho <= found.high and found.n == 10
    assert found.low > 0.5  # a strong relation: the interval stays well above 0
    assert spearman_interval(x, y, resamples=500, seed=7) == found
    assert spearman_interval([1, 2], [2, 1]).rho is None
