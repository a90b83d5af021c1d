r"""Mean with a percentile-bootstrap confidence interval.

For values x_1..x_n: draw B resamples of size n with replacement (seeded), take each resample's
mean m_b; the interval is the (α/2, 1 − α/2) quantiles of {m_b}. Defaults: B = 1000, α = 0.05
(a 95% interval). n = 1 gives a zero-width interval; n = 0 gives NaNs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int


def bootstrap_mean(values, *, resamples: int = 1000, alpha: float = 0.05,
                   seed: int = 2026) -> Estimate:
    """The mean of ``values`` and its percentile-bootstrap (1 − alpha) interval."""
    x = np.asarray(list(values), dtype=np.float64)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Estimate(float(x.mean()), float(low), float(high), int(x.size))


@dataclass(frozen=True)
class PairedDifference:
    """mean(a − b) over the same units, its paired-bootstrap interval, and how often a > b."""

    a: str
    b: str
    metric: str
    difference: Estimate
    wins: int  # units where a > b
    losses: int  # units where a < b

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely on one side of 0 (a NaN interval never does)."""
        return bool(self.difference.low > 0 or self.difference.high < 0)

    def as_dict(self) -> dict:
        d = self.difference
        return {"a": self.a, "b": self.b, "metric": self.metric, "difference": d.mean,
                "low": d.low, "high": d.high, "n": d.n, "wins": self.wins,
                "losses": self.losses, "ties": d.n - self.wins - self.losses,
                "excludes_zero": self.excludes_zero}

    def text(self, digits: int = 3) -> str:
        """``a − b = +0.050 [+0.010, +0.090] (n=20)``."""
        d = self.difference
        return (f"{self.a} − {self.b} ({self.metric}) = {d.mean:+.{digits}f} "
                f"[{d.low:+.{digits}f}, {d.high:+.{digits}f}] (n={d.n})")


def paired_difference(a_values, b_values, *, a: str = "a", b: str = "b", metric: str = "",
                      resamples: int = 1000, alpha: float = 0.05,
                      seed: int = 2026) -> PairedDifference:
    r"""Paired bootstrap of d_i = a_i − b_i over the same n units (users, posts).

    The units are resampled together (one index draw serves a and b), so the interval is that of
    mean(d): the (α/2, 1 − α/2) quantiles of B resampled means of d. Unequal lengths are an error;
    units where either value is missing (NaN or None) are left out (n counts what remains)."""
    x = np.asarray(list(a_values), dtype=np.float64)
    y = np.asarray(list(b_values), dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired values need the same units: {x.shape} vs {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    d = x[keep] - y[keep]
    return PairedDifference(a, b, metric,
                            bootstrap_mean(d, resamples=resamples, alpha=alpha, seed=seed),
                            wins=int((d > 0).sum()), losses=int((d < 0).sum()))
