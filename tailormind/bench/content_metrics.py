r"""TailorBench's embedding-based content metrics (the judge-free numbers), in NumPy.

Vectors need not be normalised; every cosine normalises (a zero vector has cosine 0 with
anything). With the user's history captions h_1..h_n and the target item's caption t::

    reference      r = mean(ĥ_1, ..., ĥ_n, t̂)                 (equal weights, unit vectors)
    text coherence     cos(p, r)                                 p: the post text's embedding
    CLIPScore          2.5 · max(cos(v, r), 0)                   v: an image's CLIP embedding,
                                                                 r in CLIP's text space; averaged
                                                                 over the post's images
    objective novelty  1 − max_j cos(p, c_j), clipped to [0, 1]  c_j: every catalogue item

CLIPScore is Hessel et al. (2021)'s w·max(cos, 0) with w = 2.5; text coherence is a plain cosine
in the text-embedding space, in [-1, 1]. A post that paraphrases a catalogue item has objective
novelty near 0. Unit rows, cosine and CLIPScore are :mod:`tailormind.core.vectors`.
"""

from __future__ import annotations

import numpy as np

from tailormind.core.vectors import clip_score_from_cosine, cosine, unit_rows


def reference_embedding(history: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Equal-weighted mean of the unit caption embeddings of the history items and the target."""
    rows = np.vstack([unit_rows(history), unit_rows(target)]) if len(history) else unit_rows(target)
    return rows.mean(axis=0)


def text_coherence(post: np.ndarray, reference: np.ndarray) -> float:
    """cos(post text, reference) in the text-embedding space."""
    return cosine(post, reference)


def clip_score(images: np.ndarray, reference: np.ndarray) -> float:
    """Mean over the post's images of 2.5 · max(cos(image, reference), 0) — CLIP space."""
    return float(np.mean(clip_score_from_cosine(unit_rows(images) @ unit_rows(reference)[0])))


def objective_novelty(post: np.ndarray, catalogue: np.ndarray) -> float:
    """1 − the largest cosine between the post and any catalogue item, clipped to [0, 1]."""
    if len(catalogue) == 0:
        return 1.0
    nearest = float(np.max(unit_rows(catalogue) @ unit_rows(post)[0]))
    return float(np.clip(1.0 - nearest, 0.0, 1.0))
