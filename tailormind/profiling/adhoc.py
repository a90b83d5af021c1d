"""A profile for a history that is not a workspace user (the HTTP API's ``POST /v1/profiles``).

Same engine as the batch path (:class:`~tailormind.profiling.profiler.Profiler`, Eq. 9-14), on an
ad-hoc :class:`UserEvidence`:

- history items are workspace item ids (their stored descriptions and embeddings) or raw texts
  (described by their own title, text and tags, embedded with the ``embed`` role);
- with ``refine`` and at least two items, the **last** item is held out as the validation
  positive and ranked against ``data.negatives`` catalogue items the history does not contain,
  drawn with the request's seed, exactly as leave-one-out validation does for a workspace user;
- there is no CF evidence: an unseen history has no CF embedding (the answer says so);
- ranking is by embedding (the ``hybrid`` ranker needs the user's CF and train-matrix signals).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from tailormind.config import Settings
from tailormind.data.item_text import item_text
from tailormind.errors import NotFoundError
from tailormind.models.roles import Embedder, TextModel
from tailormind.profiling.evidence import ItemFeatures, UserEvidence
from tailormind.profiling.profiler import Profiler
from tailormind.profiling.rankers import EmbeddingRanker

ADHOC_USER = "adhoc"
RAW_PREFIX = "adhoc-item-"


@dataclass(frozen=True)
class HistoryItem:
    """One interaction: a workspace ``item_id``, or a raw item (``text``, ``title``, ``tags``)."""

    item_id: str | None = None
    title: str = ""
    text: str = ""
    tags: tuple[str, ...] = ()

    def description(self) -> str:
        return item_text({"title": self.title, "text": self.text, "tags": self.tags})


def with_raw_items(features: ItemFeatures, texts: list[str], embed: Embedder) -> ItemFeatures:
    """``features`` plus one row per raw text (ids ``adhoc-item-<n>``); the original is untouched."""
    if not texts:
        return features
    ids = [f"{RAW_PREFIX}{n}" for n in range(len(texts))]
    vectors = np.asarray(embed.embed(texts), dtype=np.float32)
    all_ids = features.ids + ids
    return ItemFeatures(ids=all_ids, index={item: i for i, item in enumerate(all_ids)},
                        descriptions=features.descriptions + texts,
                        matrix=np.vstack([features.matrix, vectors]), model=features.model)


def negatives_for(features: ItemFeatures, exclude: set[str], count: int, seed: int) -> list[str]:
    """``count`` catalogue items not in ``exclude``, a seeded sample (sorted ids, then drawn)."""
    pool = sorted(i for i in features.ids if i not in exclude and not i.startswith(RAW_PREFIX))
    return random.Random(seed).sample(pool, min(count, len(pool)))


def profile_history(history: list[HistoryItem], *, settings: Settings, features: ItemFeatures,
                    text: TextModel, embed: Embedder, refine: bool = True,
                    seed: int | None = None,
                    checkpoint: Callable[[], None] | None = None) -> dict:
    """The profile of ``history`` (oldest first) with every refinement iteration.

    Raises :class:`NotFoundError` for an item id the workspace does not have. ``checkpoint`` is
    called before every LLM step; an exception it raises abandons the work (cancellation)."""
    if not history:
        raise ValueError("history is empty")
    started = time.perf_counter()
    for item in history:
        if item.item_id is not None and item.item_id not in features.index:
            raise NotFoundError(f"item {item.item_id!r} is not in the workspace")
    raw = [i for i in history if i.item_id is None]
    extended = with_raw_items(features, [i.description() for i in raw], embed)
    raw_ids = iter(f"{RAW_PREFIX}{n}" for n in range(len(raw)))
    ids = [i.item_id if i.item_id is not None else next(raw_ids) for i in history]
    seed = settings.seeds.profiling if seed is None else seed
    notes = ["no CF evidence: an ad-hoc history has no collaborative-filtering neighbours",
             "ranked by embedding similarity (the hybrid ranker needs a workspace user)"]
    positive, negatives, train = None, [], ids
    if refine and len(ids) >= 2:
        train, positive = ids[:-1], ids[-1]
        negatives = negatives_for(extended, set(ids), settings.data.negatives, seed)
    elif refine:
        notes.append("one item: nothing to hold out for validation, so no refinement")
    evidence = UserEvidence(user_id=ADHOC_USER, history=train, cf=[], valid_positive=positive,
                            valid_negatives=negatives)
    profiler = Profiler(settings, extended, EmbeddingRanker(extended, embed), text)
    profiler.checkpoint = checkpoint
    states = profiler.initialise([evidence])
    if positive is not None:
        profiler.refine(states)
    state = states[0]
    vector = embed.embed([state.profile])[0] if state.profile else None
    return {
        "profile": state.profile,
        "initial_profile": state.initial,
        "iterations": [asdict(i) for i in state.iterations],
        "valid_item": positive,
        "valid_rank_initial": state.iterations[0].valid_rank if state.iterations else None,
        "valid_rank_final": state.valid_rank if state.iterations else None,
        "candidates": evidence.valid_set_size,
        "history_items": len(history),
        "raw_items": len(raw),
        "fallbacks": state.fallbacks,
        "notes": notes,
        "prompt_tokens": state.prompt_tokens,
        "completion_tokens": state.completion_tokens,
        "seconds": round(time.perf_counter() - started, 3),
        "embedding": vector.astype(float).tolist() if vector is not None else None,
        "models": {"text": text.model_id, "embed": embed.model_id, "ranker": "embedding"},
    }
