"""Scores of every post on the content dimensions (coherence, novelty, aesthetic, hallucination).

One row per (method, user); a value that could not be measured is ``None`` with the reason kept
in the row, and left out of the means (the report counts it):

* ``text_coherence``: cos(post text, reference) in the text-embedding space, the reference being
  the equal-weighted mean of the unit description embeddings of the user's history and target
  item (:func:`~tailormind.bench.content_metrics.reference_embedding`).
* ``clip_score``: 2.5·max(cos, 0) between each image and the same reference built in CLIP's
  text space, averaged over the post's images — only when a ``clip`` model is configured and the
  post has images.
* ``objective_novelty``: 1 − max cos(post text, catalogue item); the ground-truth item is left
  out of its own catalogue (else it would be 0 by construction).
* ``judge_novelty``, ``judge_aesthetic``: the judge's scores in [0, 1]; ``judge_image_aesthetic``
  from the vision judge (the ``describe`` role) when one is configured.
* ``hallucination``: 1/0 from the grounded check against the post's source items (exemplars and
  recent history; the ground truth: its own catalogue entry); ``None`` when undecided.
* ``relevance_rounds``: each reflection round's draft relevance; ``kept_relevance_rounds``: the
  relevance of the version kept after each round (generated posts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tailormind.bench.content_metrics import (
    clip_score,
    objective_novelty,
    reference_embedding,
    text_coherence,
)
from tailormind.bench.judge import Judge, parse_score
from tailormind.bench.posts import BenchPost
from tailormind.bench.users import BenchUser
from tailormind.generation.reflection import RoundRecord, kept_rounds
from tailormind.models.roles import ClipScorer, Describer, Embedder
from tailormind.models.types import GenerationParams
from tailormind.profiling.evidence import ItemFeatures
from tailormind.prompts import render

#: The content dimensions' per-post columns, in report order.
CONTENT_COLUMNS = ("text_coherence", "clip_score", "objective_novelty", "judge_novelty",
                   "judge_aesthetic", "judge_image_aesthetic", "hallucination")
SOURCE_CHARS = 300


def describe_item(features: ItemFeatures, items: dict[str, dict[str, Any]], item_id: str) -> str:
    """An item's description (its title, or ``item ID``, when it has none)."""
    if item_id in features.index:
        return features.describe(item_id)
    return (items.get(item_id) or {}).get("title") or f"item {item_id}"


def item_title(features: ItemFeatures, items: dict[str, dict[str, Any]], item_id: str) -> str:
    """What the judge is shown of a liked item: its title (else its description's start)."""
    return (items.get(item_id) or {}).get("title") or describe_item(features, items, item_id)[:80]


def source_line(features: ItemFeatures, items: dict[str, dict[str, Any]], item_id: str) -> str:
    """One source item as the hallucination check sees it: ``title: description[:300]``."""
    return (f"{item_title(features, items, item_id)}: "
            f"{describe_item(features, items, item_id)[:SOURCE_CHARS]}")


def kept_relevance(rounds: list[RoundRecord]) -> list[float]:
    """Relevance of the version reflection keeps after each round (:func:`kept_rounds`), so the
    series never reflects a discarded draft."""
    return [rounds[k].relevance for k in kept_rounds([r.objective for r in rounds])]


class PostScorer:
    """Holds the roles and each user's references; :meth:`score` rates one method's posts."""

    def __init__(self, features: ItemFeatures, items: dict[str, dict[str, Any]],
                 users: list[BenchUser], *, embed: Embedder, judge: Judge,
                 clip: ClipScorer | None = None, vision: Describer | None = None,
                 history_items: int = 8) -> None:
        self.features, self.items, self.embed, self.judge = features, items, embed, judge
        self.clip, self.vision, self.history_items = clip, vision, history_items
        self.catalogue = features.matrix
        self.users = {u.user_id: u for u in users}
        self.reference: dict[str, np.ndarray] = {}
        self.clip_reference: dict[str, np.ndarray] = {}
        for user in users:
            known = [i for i in user.history if i in features.index]
            target = features.vectors([user.target]) if user.target in features.index \
                else np.zeros((1, features.matrix.shape[1]), np.float32)
            self.reference[user.user_id] = reference_embedding(features.vectors(known), target)
            if clip is not None:
                texts = clip.text_features([features.describe(i) for i in known]) if known \
                    else np.zeros((0, 1))
                self.clip_reference[user.user_id] = reference_embedding(
                    texts, clip.text_features([self._describe(user.target)]))

    def _describe(self, item_id: str) -> str:
        return describe_item(self.features, self.items, item_id)

    def _title(self, item_id: str) -> str:
        return item_title(self.features, self.items, item_id)

    def _source(self, item_id: str) -> str:
        return source_line(self.features, self.items, item_id)

    def _image_aesthetic(self, post: BenchPost) -> float | None:
        if self.vision is None or not post.images:
            return None
        instruction = render("bench/judge_image_aesthetic.txt").strip()
        values = []
        for image in post.images:
            answer = self.vision.describe([image], instruction,
                                          GenerationParams(max_tokens=8, temperature=0.0))
            value = parse_score(answer.text)
            if value is None:
                self.judge.stats["image_unparsed"] += 1
            else:
                values.append(value)
        return float(np.mean(values)) if values else None

    def score(self, method: str, posts: Sequence[BenchPost]) -> list[dict[str, Any]]:
        """One row per post (see the module doc)."""
        if not posts:
            return []
        texts = [p.text for p in posts]
        vectors = self.embed.embed(texts)
        histories = [[self._title(i) for i in self.users[p.user_id].history[::-1]
                      [: self.history_items]] for p in posts]
        novelty = self.judge.novelty(texts, histories)
        aesthetic = self.judge.aesthetic(texts)
        verdicts = self.judge.hallucination(
            texts, [[self._source(i) for i in p.sources] for p in posts])
        rows = []
        for post, vector, nov, aes, verdict in zip(posts, vectors, novelty, aesthetic, verdicts,
                                                   strict=True):
            user = self.users[post.user_id]
            catalogue = self.catalogue
            if method == "ground_truth" and user.target in self.features.index:
                catalogue = np.delete(catalogue, self.features.index[user.target], axis=0)
            clip_value, clip_note = None, "no clip model configured"
            if self.clip is not None:
                clip_note = "post has no images" if not post.images else ""
                if post.images:
                    clip_value = clip_score(self.clip.image_features(post.images),
                                            self.clip_reference[post.user_id])
            rounds = post.record.reflection.rounds if post.record is not None else []
            rows.append({
                "method": method, "user_id": post.user_id, "title": post.title,
                "path": post.path,
                "text_coherence": text_coherence(vector, self.reference[post.user_id]),
                "clip_score": clip_value, "clip_note": clip_note,
                "objective_novelty": objective_novelty(vector, catalogue),
                "judge_novelty": nov.value, "judge_novelty_raw": nov.raw,
                "judge_aesthetic": aes.value, "judge_aesthetic_raw": aes.raw,
                "judge_image_aesthetic": self._image_aesthetic(post),
                "hallucination": verdict.hallucinated, "hallucination_claims": verdict.claims,
                "hallucination_uncited": verdict.uncited,
                "relevance_rounds": [r.relevance for r in rounds],
                "kept_relevance_rounds": kept_relevance(rounds),
            })
        return rows
