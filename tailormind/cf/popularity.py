"""Item popularity: score(u, v) = number of train interactions of v (the same for every user)."""

from __future__ import annotations

import numpy as np

from tailormind.cf.data import CandidateIndex, CFData


def popularity_scores(data: CFData, sets: CandidateIndex) -> np.ndarray:
    """(n_sets x M) popularity scores of each candidate set."""
    return data.item_popularity()[sets.items]


def popularity_full(data: CFData, users: np.ndarray) -> np.ndarray:
    """(len(users) x n_items) popularity scores over the whole catalogue (a read-only view)."""
    return np.broadcast_to(data.item_popularity(), (len(users), data.n_items))
