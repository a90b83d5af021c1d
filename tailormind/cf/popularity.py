"""Item popularity: score(u, v) = number of train interactions of v (the same for every user)."""

from __future__ import annotations

import numpy as np

from tailormind.cf.data import CandidateIndex, CFData


def popularity_scores(data: CFData, sets: CandidateIndex) -> np.ndarray:
    """(n_sets x M) popularity scores of each candidate set."""
    return data.item_popularity()[sets.items]
