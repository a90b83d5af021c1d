"""User-generated content inside prompts is data, never instructions.

Every piece of UGC (item titles and text, exemplars, history, profiles derived from them) enters
a prompt through :func:`quote_ugc`: control characters are dropped, the text is cut to a limit,
anything that looks like our markers is neutralised, and the result is wrapped in

    <<<ugc LABEL>>>
    ...
    <<<end ugc>>>

The templates say that text between the markers is quoted content to draw on, not to obey. A
model may still be swayed — so every answer is also parsed against a schema (see
:mod:`tailormind.generation.ideation`), which is what keeps the output format.
"""

from __future__ import annotations

import re

OPEN = "<<<ugc {label}>>>"
CLOSE = "<<<end ugc>>>"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
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
