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
