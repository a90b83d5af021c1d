"""Cross-modal cohesion reflection (Eq. 17–19), keeping the best version.

    C(x̂, t̂) = mean_j CLIPScore(image_j, caption_j or title),  CLIPScore = 2.5·max(cos, 0)
    R(t̂, D) = cos(embed(t̂), normalise(mean_{i ∈ D} f_i))
    J       = R                              when no ``clip`` model is configured
            = (R + w · C / 2.5) / (1 + w)    otherwise, w = ``generation.clip_weight``

Round 0 scores the first draft; each of up to ``reflection_rounds`` rounds gives the writer the
profile, the best version so far and its scores (Eq. 19: Φ(p_u, G⁽ⁿ⁾, C, R)), and scores the
revision. The returned version has the highest J of all rounds (the earliest on ties), so
reflection never returns something that scores worse than an earlier round. A revision is built
on the best version, not on a worse last one. With greedy decoding (``repeatable``) a round that
does not improve ends reflection: the next round would send the same prompt (same best version,
same scores) and get the same revision back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from tailormind.core.vectors import CLIPSCORE_WEIGHT, cosine

V = TypeVar("V")


@dataclass
class Scored(Generic[V]):
    """One version with its scores; ``media`` is whatever was rendered to score it."""

    version: V
    relevance: float
    clip: float | None
    objective: float
    media: Any = None


@dataclass
class RoundRecord:
    round: int
    relevance: float
    clip: float | None
    objective: float
    best_so_far: bool
    seconds: float
    feedback: str = ""


@dataclass
class Reflection(Generic[V]):
    best: Scored[V]
    best_round: int
    rounds: list[RoundRecord] = field(default_factory=list)


def objective(relevance: float, clip: float | None, clip_weight: float) -> float:
    """J: relevance alone, or its weighted mean with CLIPScore rescaled to [0, 1]."""
    if clip is None:
        return relevance
    return (relevance + clip_weight * clip / CLIPSCORE_WEIGHT) / (1.0 + clip_weight)


def relevance(text_vector: np.ndarray, history_vector: np.ndarray) -> float:
    """cos(text, history centroid); 0 when either is the zero vector."""
    return cosine(text_vector, history_vector)


def feedback_text(scored: Scored[Any]) -> str:
    """What the writer is told about the best version so far."""
    parts = [f"relevance to what the person liked {scored.relevance:.2f} (cosine, higher is "
             "better: stay on the topics and style of their items)"]
    if scored.clip is None:
        parts.append("image-text cohesion was not measured (no clip model configured)")
    else:
        parts.append(f"image-text cohesion (CLIPScore) {scored.clip:.2f} of "
                     f"{CLIPSCORE_WEIGHT:g}: make each image prompt show what its caption and the "
                     "text say")
    return "; ".join(parts) + "."


def improves(candidate: float, best: float | None) -> bool:
    """The best-version rule: a version replaces the best so far only with a strictly higher
    objective, so the earliest of equal versions is kept."""
    return best is None or candidate > best


def kept_rounds(objectives: Sequence[float]) -> list[int]:
    """After each round, the round whose version reflection keeps (:func:`improves`)."""
    kept: list[int] = []
    for n, value in enumerate(objectives):
        kept.append(n if improves(value, objectives[kept[-1]] if kept else None) else kept[-1])
    return kept


def reflect(first: V, score: Callable[[V], Scored[V]], revise: Callable[[V, str], V],
            rounds: int, repeatable: bool = False) -> Reflection[V]:
    """Score ``first``, then up to ``rounds`` revisions of the best version; keep the best."""
    started = time.perf_counter()
    best = score(first)
    result = Reflection(best=best, best_round=0, rounds=[RoundRecord(
        0, best.relevance, best.clip, best.objective, True, time.perf_counter() - started)])
    for n in range(1, rounds + 1):
        started = time.perf_counter()
        feedback = feedback_text(result.best)
        candidate = score(revise(result.best.version, feedback))
        improved = improves(candidate.objective, result.best.objective)
        if improved:
            result.best, result.best_round = candidate, n
        result.rounds.append(RoundRecord(n, candidate.relevance, candidate.clip,
                                         candidate.objective, improved,
                                         time.perf_counter() - started, feedback))
        if repeatable and not improved:
            break
    return result
