"""An item as one text: what is described, embedded, and shown to a model as an exemplar."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def item_text(row: Mapping[str, Any], max_tags: int | None = None) -> str:
    """``title. text Tags: a, b.`` without repeating what the text already says.

    The title is left out when the text contains it; a tag is left out when the text mentions
    it; ``max_tags`` caps the tags kept. Missing or empty fields give ``""`` for their part.
    """
    title = (row.get("title") or "").strip()
    text = (row.get("text") or "").strip()
    tags = [t for t in (row.get("tags") or []) if t]
    parts = []
    if title and title not in text:
        parts.append(title if title.endswith((".", "!", "?")) else title + ".")
    if text:
        parts.append(text)
    missing_tags = [t for t in tags if t.lower() not in text.lower()][:max_tags]
    if missing_tags:
        parts.append("Tags: " + ", ".join(missing_tags) + ".")
    return " ".join(parts)
