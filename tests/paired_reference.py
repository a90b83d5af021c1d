"""An independent reference for the paired bootstrap, written out in NumPy for the tests."""

from __future__ import annotations

import numpy as np


def numpy_interval(d: np.ndarray, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """The percentile paired bootstrap written out directly: resample users, mean of a − b."""
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
