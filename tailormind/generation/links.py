"""Links in a generated post: kept only where the post's sources or the config vouch for them.

A link is any ``http:``, ``https:``, ``ftp:``, ``file:``, ``javascript:``, ``vbscript:``,
``data:``, ``blob:`` or ``mailto:`` URL, or a bare ``www.`` address, wherever it stands in the
writer's answer (title, body, captions, image or shot prompts, the links list). It is kept when

- it appears verbatim among the URLs of the source items' text (the exemplars that went into the
  prompt), or
- it is an http(s) URL whose host is on ``generation.link_allowlist``, or a subdomain of a host
  there.

Any other link is removed from the text; :func:`without_unsourced_links` returns what it removed,
and the pipeline records each removed link among the post's ``fallbacks``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_URL = re.compile(r"(?i)(?:\b(?:https?|ftp|file|javascript|vbscript|data|blob|mailto):|\bwww\.)"
                  r"[^\s<>\"'`]+")
_TRAILING = ".,;:!?'\")]}"
_SPACES = re.compile(r"[ \t]{2,}")


def _trimmed(url: str) -> str:
    """``url`` without the sentence punctuation after it (a ``)`` stays when it closes a ``(``
    inside the URL, as in a Wikipedia address)."""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def find_links(text: str) -> list[str]:
    """Every link in ``text``, in order, trailing punctuation left out."""
    return [url for url in (_trimmed(m.group(0)) for m in _URL.finditer(text or "")) if url]


@dataclass(frozen=True)
class LinkPolicy:
    """Which links a post may carry: those of its sources, and http(s) links to allowed hosts."""

    sourced: frozenset[str]
    allowlist: tuple[str, ...] = ()

    @classmethod
    def from_sources(cls, source_texts: Iterable[str], allowlist: Iterable[str]) -> LinkPolicy:
        return cls(sourced=frozenset(url for text in source_texts for url in find_links(text)),
                   allowlist=tuple(host.lower().strip(".") for host in allowlist))

    def allows(self, url: str) -> bool:
        """``url`` is one of the sources' links, or an http(s) URL on an allowlisted host."""
        if url in self.sourced:
            return True
        if not self.allowlist or "\\" in url:  # a backslash reads as "/" in browsers, not here
            return False
        try:
            parts = urlsplit(url if "://" in url else f"http://{url}")
            host = (parts.hostname or "").rstrip(".")
        except ValueError:  # e.g. an unclosed IPv6 bracket
            return False
        if parts.scheme.lower() not in ("http", "https") or not host:
            return False
        return any(host == allowed or host.endswith(f".{allowed}") for allowed in self.allowlist)

    def strip(self, text: str) -> tuple[str, list[str]]:
        """``text`` without the links this policy does not allow, and those links in order."""
        removed: list[str] = []

        def keep_or_drop(match: re.Match[str]) -> str:
            url = _trimmed(match.group(0))
            if not url or self.allows(url):
                return match.group(0)
            removed.append(url)
            return match.group(0)[len(url):]  # the punctuation after it stays

        out = _URL.sub(keep_or_drop, text)
        if not removed:
            return text, []
        return "\n".join(_SPACES.sub(" ", line).strip() for line in out.split("\n")), removed


def without_unsourced_links(value: Any, policy: LinkPolicy) -> tuple[Any, list[str]]:
    """``value`` (a writer's answer: strings, lists and dicts) with every string stripped of the
    links ``policy`` does not allow, and the removed links in order. A list item that held only
    removed links is dropped; dict keys, numbers and the rest are left alone."""
    removed: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            text, dropped = policy.strip(node)
            removed.extend(dropped)
            return text
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        if isinstance(node, list):
            kept = []
            for item in node:
                before = len(removed)
                cleaned = walk(item)
                if not (isinstance(item, str) and len(removed) > before and not cleaned):
                    kept.append(cleaned)
            return kept
        return node

    return walk(value), removed
