"""Rankers: score a user's candidate items with a profile (Eq. 11), behind one interface.

- ``embedding``: cosine between the profile's embedding and each item's description embedding.
- ``hybrid``: the fused signals of :mod:`tailormind.profiling.fusion` (CF scores, content and
  item-kNN similarity to the history, popularity, and the profile's cosine), with weights fit on
  the validation sets by ``tailormind profile fit``.
- ``llm``: listwise by the ``text`` role. The M candidates are first put in a seeded random
  order that depends only on the candidate *set* (:func:`presentation_order`: sorted ids, then a
  permutation seeded by the config seed, user, split and iteration), so no caller can leak the
  answer through the order it passes. That order is split into windows of ``llm_window``; each
  window is ranked by item number (JSON, repaired/re-asked by the role); the first
  ``window / n_windows`` of every window meet in a final window. Ids the model leaves out go to
  the bottom of their window in the seeded order — counted in ``stats["unranked"]``, never
  hidden — and ids it invents are ignored (``stats["unknown_ids"]``). Ranking is by id, never by
  title. A model that carries no information (never answers, always "1, 2, 3, …") therefore
  puts the positive at a uniformly random rank: Recall@K = K / M in expectation.

Scores are higher-is-better and aligned with ``RankQuery.candidates``; ties are broken against
the positive by the shared metrics. The LLM ranker's score is −(0-based rank in its final order).
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass

import numpy as np

from tailormind.models.roles import Embedder, TextModel
from tailormind.models.types import GenerationParams
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fusion import PROFILE_SIGNAL, Fusion, Signals
from tailormind.prompts import render
from tailormind.prompts.ugc import quote_ugc

RANKING_SCHEMA = {
    "type": "object",
    "properties": {"ranking": {"type": "array", "items": {"type": ["string", "integer"]}}},
    "required": ["ranking"],
}


@dataclass
class RankQuery:
    """Score ``candidates`` for ``user_id`` with ``profile``; ``split`` and ``iteration`` (the
    refinement round) seed the presentation order of order-sensitive rankers."""

    user_id: str
    profile: str
    candidates: list[str]
    split: str = "valid"
    iteration: int = 0


def order_seed(seed: int, user_id: str, split: str, iteration: int) -> np.random.Generator:
    """A generator seeded by (seed, user, split, iteration), stable across processes."""
    return np.random.default_rng([seed, zlib.crc32(user_id.encode()), zlib.crc32(split.encode()),
                                  iteration])


def presentation_order(query: RankQuery, seed: int) -> list[str]:
    """The candidates sorted by id, then permuted by :func:`order_seed`: a function of the
    candidate set only, never of the order the caller passed."""
    ids = sorted(query.candidates)
    permutation = order_seed(seed, query.user_id, query.split, query.iteration).permutation(len(ids))
    return [ids[i] for i in permutation]


class Ranker(ABC):
    name = ""

    def __init__(self) -> None:
        self.stats: Counter = Counter()
        #: every candidate list this ranker was asked about, per user (tests audit it)
        self.seen: dict[str, list[list[str]]] = {}

    def score(self, queries: list[RankQuery]) -> list[np.ndarray]:
        for query in queries:
            self.seen.setdefault(query.user_id, []).append(list(query.candidates))
        return self._score(queries)

    @abstractmethod
    def _score(self, queries: list[RankQuery]) -> list[np.ndarray]:
        """One score per candidate, per query."""


class EmbeddingRanker(Ranker):
    name = "embedding"

    def __init__(self, features: ItemFeatures, embedder: Embedder) -> None:
        super().__init__()
        self.features, self.embedder = features, embedder

    def profile_vectors(self, profiles: list[str]) -> np.ndarray:
        return self.embedder.embed(profiles)

    def _score(self, queries: list[RankQuery]) -> list[np.ndarray]:
        vectors = self.profile_vectors([q.profile for q in queries])
        return [self.features.vectors(q.candidates) @ v for q, v in zip(queries, vectors,
                                                                         strict=True)]


class HybridRanker(Ranker):
    """score = Σ_f w_f z_f over the fused signals; the profile enters through its embedding."""

    name = "hybrid"

    def __init__(self, signals: Signals, fusion: Fusion, embedder: Embedder) -> None:
        super().__init__()
        self.signals, self.fusion, self.embedder = signals, fusion, embedder
        self.uses_profile = PROFILE_SIGNAL in fusion.names

    def _score(self, queries: list[RankQuery]) -> list[np.ndarray]:
        if not queries:
            return []
        by_width: dict[int, list[int]] = {}
        for qi, query in enumerate(queries):
            by_width.setdefault(len(query.candidates), []).append(qi)
        scores: dict[int, np.ndarray] = {}
        for group in by_width.values():
            users, items = self.signals.index_sets([queries[i].user_id for i in group],
                                                   [queries[i].candidates for i in group])
            profiles = (self.embedder.embed([queries[i].profile for i in group])
                        if self.uses_profile else None)
            fused = self.fusion.score(self.signals.stack(users, items, profiles))
            scores.update(zip(group, fused, strict=True))
        return [scores[qi] for qi in range(len(queries))]


class LLMRanker(Ranker):
    name = "llm"

    def __init__(self, features: ItemFeatures, text: TextModel, *, window: int = 20,
                 max_tokens: int = 256, description_chars: int = 150, profile_chars: int = 960,
                 seed: int = 2026) -> None:
        """``description_chars`` and ``profile_chars``: each item description and the profile
        are quoted (:func:`~tailormind.prompts.ugc.quote_ugc`) cut to these."""
        super().__init__()
        self.features, self.text = features, text
        self.window, self.seed = window, seed
        self.params = GenerationParams(max_tokens=max_tokens)
        self.description_chars, self.profile_chars = description_chars, profile_chars

    def _rank_windows(self, windows: list[tuple[str, list[str]]]) -> list[list[str]]:
        """Each (profile, ids) window -> ids best first (unranked appended in the given order,
        which is the seeded presentation order)."""
        prompts = []
        for profile, ids in windows:
            items = [(i, quote_ugc(self.features.describe(item), label=f"item {i}",
                                   limit=self.description_chars))
                     for i, item in enumerate(ids, start=1)]
            prompts.append([{"role": "user", "content": render(
                "profiling/rank.txt", profile=quote_ugc(profile, label="profile",
                                                        limit=self.profile_chars),
                items=items, n=len(ids))}])
        answers = self.text.complete_json(prompts, RANKING_SCHEMA, self.params)
        out = []
        for (_, ids), answer in zip(windows, answers, strict=True):
            order: list[str] = []
            if not answer.ok:
                self.stats["failed_windows"] += 1
            # a valid answer has "ranking" (the schema requires it); a failed one ranks nothing
            for label in answer.value["ranking"] if answer.ok else []:
                position = _position(label, len(ids))
                if position is None:
                    self.stats["unknown_ids"] += 1
                elif ids[position] not in order:
                    order.append(ids[position])
            missing = [item for item in ids if item not in order]
            self.stats["unranked"] += len(missing)
            out.append(order + missing)
        self.stats["windows"] += len(windows)
        return out

    def _score(self, queries: list[RankQuery]) -> list[np.ndarray]:
        windows, owners = [], []
        for qi, query in enumerate(queries):
            shown = presentation_order(query, self.seed)
            for start in range(0, len(shown), self.window):
                windows.append((query.profile, shown[start : start + self.window]))
                owners.append(qi)
        ranked = self._rank_windows(windows)
        per_query: list[list[list[str]]] = [[] for _ in queries]  # window orders per query
        for qi, order in zip(owners, ranked, strict=True):
            per_query[qi].append(order)
        finals: list[tuple[str, list[str]] | None] = []
        for qi in range(len(queries)):
            orders = per_query[qi]
            if len(orders) <= 1:
                finals.append(None)
                continue
            keep = max(1, self.window // len(orders))
            finals.append((queries[qi].profile, [item for o in orders for item in o[:keep]]))
        final_ranked = iter(self._rank_windows([f for f in finals if f is not None]))
        scores = []
        for qi, query in enumerate(queries):
            orders = per_query[qi]
            position: dict[str, float] = {}
            if finals[qi] is None:
                for rank, item in enumerate(orders[0] if orders else []):
                    position[item] = rank
            else:
                final = next(final_ranked)
                for rank, item in enumerate(final):
                    position[item] = rank
                offset = len(final)
                for window_rank in range(max(len(o) for o in orders)):
                    for o in orders:
                        if window_rank < len(o) and o[window_rank] not in position:
                            position[o[window_rank]] = offset
                            offset += 1
            scores.append(np.array([-position[item] for item in query.candidates],
                                   dtype=np.float64))
        return scores


def _position(label: object, n: int) -> int | None:
    """A window label (1-based number, possibly as "[3]" or "3") -> 0-based position."""
    text = str(label).strip().strip("[]()#. ")
    if text.isdigit() and 1 <= int(text) <= n:
        return int(text) - 1
    return None
