"""Which of an item's tags to keep when they do not all fit: the most informative by IDF.

A tag list is structured data, so no model rewrites it; it is cut. Over the catalogue's
leak-free tag lists (:func:`tailormind.data.item_tags.model_items`) with N items::

    idf(t) = ln(N / df(t)),   df(t) = number of items that carry t

An item's tags are ranked by idf, rarest first, except that a tag no other item carries
(df = 1) comes after every shared one: it links the item to nothing else. Ties keep the item's
own order. The kept tags are the longest run of that ranking whose ``Tags: a, b.`` line fits the
character budget, and they are written in the item's own order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

TAGS_LABEL = "Tags: "


class TagIdf:
    """Document frequencies of the catalogue's tags and the ranking they give."""

    def __init__(self, document_frequency: Counter, n_items: int) -> None:
        self.df, self.n_items = document_frequency, max(n_items, 1)

    @classmethod
    def from_tag_lists(cls, tag_lists: Iterable[Sequence[str] | None]) -> TagIdf:
        df: Counter = Counter()
        n = 0
        for tags in tag_lists:
            n += 1
            df.update({t for t in tags or () if t})
        return cls(df, n)

    def idf(self, tag: str) -> float:
        return math.log(self.n_items / max(self.df.get(tag, 0), 1))

    def ranked(self, tags: Sequence[str]) -> list[str]:
        """``tags`` (de-duplicated), most informative first."""
        unique = list(dict.fromkeys(t for t in tags if t))
        order = {t: i for i, t in enumerate(unique)}
        return sorted(unique, key=lambda t: (self.df.get(t, 0) <= 1, -self.idf(t), order[t]))

    def fit(self, tags: Sequence[str], budget_chars: int) -> list[str]:
        """The most informative tags whose ``Tags: a, b.`` line is at most ``budget_chars``
        long, in the item's own order."""
        kept: set[str] = set()
        used = len(TAGS_LABEL) + 1  # the label and the closing full stop
        for tag in self.ranked(tags):
            cost = len(tag) + (2 if kept else 0)  # ", " between tags
            if used + cost > budget_chars:
                break
            kept.add(tag)
            used += cost
        return [t for t in dict.fromkeys(tags) if t in kept]
