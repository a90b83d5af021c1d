"""Percentile and paired bootstrap against an independent NumPy reference and hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tailormind.core.bootstrap import Estimate, PairedDifference, bootstrap_mean, paired_difference
from tests.paired_reference import numpy_interval


@pytest.mark.parametrize(("resamples", "alpha", "seed"), [(1000, 0.05, 2026), (250, 0.2, 7),
                                                          (1, 0.5, 3)])
def test_interval_matches_the_reference(resamples: int, alpha: float, seed: int) -> None:
    values = np.array([0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.75])
    est = bootstrap_mean(values, resamples=resamples, alpha=alpha, seed=seed)
    low, high = numpy_interval(values, resamples, 1 - alpha, seed)
    assert (est.low, est.high) == (low, high)
    assert est.mean == pytest.approx(3.5 / 7) and est.n == 7


def test_defaults_are_1000_resamples_alpha_005_seed_2026() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0]
    assert bootstrap_mean(values) == bootstrap_mean(values, resamples=1000, alpha=0.05, seed=2026)
    low, high = numpy_interval(np.array(values), 1000, 0.95, 2026)
    assert bootstrap_mean(values) == Estimate(0.6, low, high, 5)


def test_generators_and_single_values() -> None:
    assert bootstrap_mean(x for x in (2.0, 2.0)) == Estimate(2.0, 2.0, 2.0, 2)
    assert bootstrap_mean([0.25], resamples=3) == Estimate(0.25, 0.25, 0.25, 1)
    empty = bootstrap_mean([])
    assert empty.n == 0 and all(math.isnan(v) for v in (empty.mean, empty.low, empty.high))


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_alpha_outside_the_open_unit_interval_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match=rf"^alpha must be in \(0, 1\), got {alpha}$"):
        bootstrap_mean([1.0, 2.0], alpha=alpha)


def test_resamples_below_one_are_refused_and_one_is_allowed() -> None:
    with pytest.raises(ValueError, match="^resamples must be at least 1, got 0$"):
        bootstrap_mean([1.0], resamples=0)
    assert bootstrap_mean([1.0, 3.0], resamples=1).n == 2


def test_paired_difference_by_hand() -> None:
    a = [0.5, 0.2, np.nan, 0.9, 0.4]
    b = [0.1, 0.2, 0.3, 1.0, np.nan]
    pd = paired_difference(a, b, a="ours", b="base", metric="ndcg@10", resamples=500, seed=4)
    d = np.array([0.5 - 0.1, 0.2 - 0.2, 0.9 - 1.0])  # the NaN units are left out
    low, high = numpy_interval(d, 500, 0.95, 4)
    assert pd.difference == Estimate(pytest.approx(0.1), low, high, 3)
    assert (pd.a, pd.b, pd.metric, pd.wins, pd.losses) == ("ours", "base", "ndcg@10", 1, 1)
    row = pd.as_dict()
    assert row == {"a": "ours", "b": "base", "metric": "ndcg@10",
                   "difference": pytest.approx(0.1), "low": low, "high": high, "n": 3,
                   "wins": 1, "losses": 1, "ties": 1, "excludes_zero": pd.excludes_zero}


def test_paired_difference_uses_one_draw_for_both_sides() -> None:
    """Resampling units together: a shift by a constant has a zero-width interval."""
    rng = np.random.default_rng(0)
    b = rng.random(30)
    pd = paired_difference(b + 0.25, b, resamples=200)
    assert pd.difference.low == pytest.approx(0.25) and pd.difference.high == pytest.approx(0.25)
    assert pd.excludes_zero and pd.wins == 30 and pd.losses == 0


def test_unequal_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"^paired values need the same units: \(2,\) vs \(3,\)$"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


def estimate(low: float, high: float) -> PairedDifference:
    return PairedDifference("a", "b", "m", Estimate(0.0, low, high, 4), wins=0, losses=0)


@pytest.mark.parametrize(("low", "high", "excludes"), [
    (0.01, 0.2, True), (-0.2, -0.01, True), (-0.1, 0.1, False), (0.0, 0.3, False),
    (-0.3, 0.0, False), (float("nan"), float("nan"), False)])
def test_excludes_zero_only_when_the_interval_is_strictly_on_one_side(low: float, high: float,
                                                                      excludes: bool) -> None:
    assert estimate(low, high).excludes_zero is excludes


def test_text_format() -> None:
    pd = PairedDifference("tailormind", "no_rag", "relevance",
                          Estimate(0.05, 0.0104, -0.0896, 20), wins=12, losses=5)
    assert pd.text() == "tailormind − no_rag (relevance) = +0.050 [+0.010, -0.090] (n=20)"
    assert pd.text(digits=1) == "tailormind − no_rag (relevance) = +0.1 [+0.0, -0.1] (n=20)"


#: continuous values, so a different seed, resample count or alpha moves the interval
SPREAD = np.array([0.13, 0.71, 0.42, 0.98, 0.05, 0.66, 0.3, 0.57, 0.21, 0.84, 0.49, 0.92])


def test_defaults_move_the_interval_when_they_change() -> None:
    """The defaults are B = 1000, α = 0.05, seed 2026: any other value gives another interval."""
    est = bootstrap_mean(SPREAD)
    assert (est.low, est.high) == pytest.approx(numpy_interval(SPREAD, 1000, 0.95, 2026), abs=1e-12)
    for other in ({"resamples": 1001}, {"alpha": 0.06}, {"seed": 2027}):
        assert bootstrap_mean(SPREAD, **other) != est


def test_paired_difference_defaults_and_names() -> None:
    b = SPREAD[::-1].copy()
    pd = paired_difference(SPREAD, b)
    assert (pd.a, pd.b, pd.metric) == ("a", "b", "")
    assert (pd.difference.low, pd.difference.high) == pytest.approx(
        numpy_interval(SPREAD - b, 1000, 0.95, 2026), abs=1e-12)
    assert pd.difference.mean == pytest.approx(float(np.mean(SPREAD - b)))


@pytest.mark.parametrize(("resamples", "alpha", "seed"), [(1000, 0.05, 11), (400, 0.05, 2026),
                                                          (1000, 0.2, 2026)])
def test_paired_difference_passes_every_option_to_the_bootstrap(resamples: int, alpha: float,
                                                                 seed: int) -> None:
    b = SPREAD[::-1].copy()
    pd = paired_difference(SPREAD, b, resamples=resamples, alpha=alpha, seed=seed)
    expected = numpy_interval(SPREAD - b, resamples, 1 - alpha, seed)
    assert (pd.difference.low, pd.difference.high) == pytest.approx(expected, abs=1e-12)
    assert expected != pytest.approx(numpy_interval(SPREAD - b, 1000, 0.95, 2026), abs=1e-6)


def test_none_is_a_missing_value() -> None:
    """A missing score may come as None: NaN for the mean, left out of a paired difference."""
    assert math.isnan(bootstrap_mean([0.5, None]).mean)
    pd = paired_difference([0.5, None, 0.2, 0.9], [0.1, 0.3, None, 0.4], resamples=10)
    assert pd.difference.n == 2 and pd.difference.mean == pytest.approx((0.4 + 0.5) / 2)
    assert (pd.wins, pd.losses) == (2, 0)
