r"""Agreement statistics for the human evaluation: Krippendorff's α between raters and Spearman's
ρ between the judge and the raters.

**Krippendorff's α** (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"). Units u
each hold the values the raters gave it; only units with m_u ≥ 2 values are pairable. The
coincidence matrix counts every ordered pair of values from different raters of a unit,
weighted 1/(m_u − 1):

    o_ck = Σ_u (number of ordered (c, k) pairs in u) / (m_u − 1),   n_c = Σ_k o_ck,   n = Σ_c n_c

    α = 1 − (n − 1) · Σ_c Σ_k o_ck δ²_ck / Σ_c Σ_k n_c n_k δ²_ck

with δ²_ck = [c ≠ k] (nominal) or, for ordinal values g_1 < g_2 < … ranked c ≤ k,
δ²_ck = (Σ_{g=c}^{k} n_g − (n_c + n_k)/2)² (ordinal). α = 1 is perfect agreement, 0 what chance
gives; α is undefined (``None``) without two pairable values or when every value is the same.

**Spearman's ρ**: Pearson's r of the average ranks (ties share their mean rank); ``None`` with
fewer than 3 pairs or when either side is constant. Its interval is the percentile bootstrap
over the pairs (pairs resampled together; resamples where a side is constant are skipped).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal"]


def coincidences(units: Sequence[Sequence[float]]) -> tuple[list[float], np.ndarray]:
    """The sorted values that occur in pairable units and their coincidence matrix o_ck."""
    pairable = [list(u) for u in units if len(u) >= 2]
    values = sorted({v for u in pairable for v in u})
    index = {v: i for i, v in enumerate(values)}
    matrix = np.zeros((len(values), len(values)))
    for unit in pairable:
        weight = 1.0 / (len(unit) - 1)
        for a, first in enumerate(unit):
            for b, second in enumerate(unit):
                if a != b:
                    matrix[index[first], index[second]] += weight
    return values, matrix


def distances(marginals: np.ndarray, level: Level) -> np.ndarray:
    """δ²_ck for the categories in value order, given their marginals n_c."""
    size = len(marginals)
    if level == "nominal":
        return 1.0 - np.eye(size)
    if level != "ordinal":
        raise ValueError(f"level must be 'nominal' or 'ordinal', got {level!r}")
    cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
    delta = np.zeros((size, size))
    for c in range(size):
        for k in range(c + 1, size):
            between = cumulative[k + 1] - cumulative[c]  # Σ_{g=c}^{k} n_g
            delta[c, k] = delta[k, c] = (between - (marginals[c] + marginals[k]) / 2) ** 2
    return delta


def krippendorff_alpha(units: Sequence[Sequence[float]], level: Level) -> float | None:
    """α over ``units`` (each the values its raters gave; missing ratings simply absent)."""
    _, matrix = coincidences(units)
    marginals = matrix.sum(axis=1)
    total = marginals.sum()
    if total < 2:
        return None
    delta = distances(marginals, level)
    expected = float((np.outer(marginals, marginals) * delta).sum())
    if expected == 0:
        return None
    observed = float((matrix * delta).sum())
    return 1.0 - (total - 1) * observed / expected


def units_of(ratings: Mapping[tuple[Hashable, Hashable], float]) -> list[list[float]]:
    """``{(unit, rater): value}`` -> one list of values per unit (units in first-seen order)."""
    grouped: dict[Hashable, list[float]] = defaultdict(list)
    for (unit, _rater), value in ratings.items():
        grouped[unit].append(value)
    return list(grouped.values())


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ of paired values (``None``: under 3 pairs or a constant side)."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs paired values: {len(x)} vs {len(y)}")
    if len(x) < 3:
        return None
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return None if scale == 0 else float((rx * ry).sum() / scale)


@dataclass(frozen=True)
class Correlation:
    rho: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"rho": self.rho, "low": self.low, "high": self.high, "n": self.n}


def spearman_interval(x: Sequence[float], y: Sequence[float], *, resamples: int = 1000,
                      alpha: float = 0.05, seed: int = 2026) -> Correlation:
    """ρ and its percentile-bootstrap (1 − alpha) interval over the pairs."""
    rho = spearman(x, y)
    if rho is None:
        return Correlation(None, None, None, len(x))
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = [spearman(xs[i], ys[i]) for i in rng.integers(0, len(xs), size=(resamples, len(xs)))]
    kept = [d for d in draws if d is not None]
    if not kept:
        return Correlation(rho, None, None, len(x))
    low, high = np.quantile(kept, [alpha / 2, 1 - alpha / 2])
    return Correlation(rho, float(low), float(high), len(x))
