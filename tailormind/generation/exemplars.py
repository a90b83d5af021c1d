"""Retrieval-augmented style (Eq. 15): the k items of D_u ∪ CF(D_u) closest to the profile.

    E_u^k = argtop-k_{i ∈ D_u ∪ CF(D_u)} cos(p_u, f_i)

with p_u the profile's embedding and f_i the item's description embedding (both unit length, so
the cosine is a dot product). An item in both sets counts once, as history. Ties go to history
before CF, then to the more recent history item, so the choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tailormind.core.vectors import unit_rows
from tailormind.profiling.evidence import ItemFeatures


@dataclass(frozen=True)
class Exemplar:
    item_id: str
    score: float  # cos(p_u, f_i)
    source: Literal["history", "cf"]


def select_exemplars(profile_vector: np.ndarray, history: list[str], cf: list[str],
                     features: ItemFeatures, k: int) -> list[Exemplar]:
    """The top-``k`` exemplars; fewer when the pool is smaller, none when it is empty.

    ``history`` is oldest first; ``cf`` best first. Items without a description row are
    skipped (they have no f_i), never an error.
    """
    pool: list[tuple[str, Literal["history", "cf"], int]] = []
    seen: set[str] = set()
    for recency, item in enumerate(reversed(history)):
        if item not in seen and item in features.index:
            pool.append((item, "history", recency))
            seen.add(item)
    for rank, item in enumerate(cf):
        if item not in seen and item in features.index:
            pool.append((item, "cf", rank))
            seen.add(item)
    if not pool or k <= 0:
        return []
    vectors = features.vectors([item for item, _, _ in pool])
    scores = vectors @ unit_rows(profile_vector)[0]
    order = sorted(range(len(pool)), key=lambda i: (-round(float(scores[i]), 9),
                                                    pool[i][1] != "history", pool[i][2]))
    return [Exemplar(pool[i][0], float(scores[i]), pool[i][1]) for i in order[:k]]
