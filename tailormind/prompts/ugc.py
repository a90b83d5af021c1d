"""Untrusted text inside prompts is data, never instructions.

Every piece of untrusted text — item titles, texts, tags and descriptions, histories (ad-hoc ones
from ``POST /v1/profiles`` included), exemplars, and model answers derived from them (profiles,
critiques, ideas, drafts, posts under judgement, a JSON error quoting the answer) — enters a
prompt through :func:`quote_ugc` (or :func:`quote_each` for a list): control and invisible
formatting characters are dropped, anything that looks like our markers is neutralised, the text
is cut to a limit, and the result is wrapped in

    <<<ugc LABEL>>>
    ...
    <<<end ugc>>>

Every template with such a block includes ``ugc_notice.txt``, which says that text between the
markers is quoted material to draw on, not to obey. A model may still be swayed — so every answer
is also parsed against a schema (see :mod:`tailormind.generation.ideation`), which is what keeps
the output format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

OPEN = "<<<ugc {label}>>>"
CLOSE = "<<<end ugc>>>"
#: The template every prompt with a quoted block includes: quoted text is data, not instructions.
NOTICE_TEMPLATE = "ugc_notice.txt"
#: A model answer of n tokens is quoted with a limit of n times this: its text is never cut.
CHARS_PER_TOKEN = 8
#: C0/C1 controls (tab, newline and carriage return kept) and invisible formatting characters
#: (zero-width, bidirectional overrides, soft hyphen, byte-order mark) that could hide or split
#: a marker.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e"
                      r"\u2060-\u2064\u2066-\u2069\ufeff]")
_MARKER = re.compile(r"<{3,}|>{3,}")
_LABEL = re.compile(r"[^A-Za-z0-9 _.:#-]")


def clean_ugc(text: str, limit: int) -> str:
    """Printable text, markers defused (``<<<`` -> ``‹‹‹``), cut at a word boundary to ``limit``."""
    text = _CONTROL.sub("", text or "")
    text = _MARKER.sub(lambda m: ("‹" if m.group(0)[0] == "<" else "›") * len(m.group(0)), text)
    text = text.strip()
    if len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
        text = cut.rstrip(",;.") + "…"
    return text


def quote_ugc(text: str, *, label: str, limit: int) -> str:
    """``text`` as one inert, delimited block; ``label`` names it (e.g. ``item 42``)."""
    safe_label = _LABEL.sub("", label)[:40] or "text"
    return f"{OPEN.format(label=safe_label)}\n{clean_ugc(text, limit)}\n{CLOSE}"


def quote_each(texts: Iterable[str], *, label: str, limit: int) -> list[str]:
    """One :func:`quote_ugc` block per text, labelled ``label 1``, ``label 2``, … in order."""
    return [quote_ugc(text, label=f"{label} {n}", limit=limit)
            for n, text in enumerate(texts, start=1)]
