"""Embedding arithmetic every layer shares: unit rows, cosine, CLIPScore.

A zero vector stays zero when normalised, so its cosine with anything is 0.
CLIPScore is Hessel et al. (2021)'s ``w · max(cos, 0)`` with ``w = 2.5``, in [0, 2.5].
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

#: CLIPScore's weight ``w`` (Hessel et al. 2021): the score of a cosine of 1.
CLIPSCORE_WEIGHT = 2.5


def unit_rows(vectors: ArrayLike, dtype: DTypeLike = np.float64) -> np.ndarray:
    """A 2-D ``dtype`` array of the rows scaled to unit L2 length (a 1-D input is one row);
    all-zero rows stay zero. Norm and division run in ``dtype``."""
    rows = np.atleast_2d(np.asarray(vectors, dtype=dtype))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    """Cosine similarity of two vectors in float64; 0 when either is the zero vector."""
    return float(unit_rows(a)[0] @ unit_rows(b)[0])


def clip_score_from_cosine(cos: ArrayLike) -> np.ndarray:
    """CLIPScore ``2.5 · max(cos, 0)`` elementwise, in the cosines' float dtype."""
    return CLIPSCORE_WEIGHT * np.maximum(np.asarray(cos), 0.0)
