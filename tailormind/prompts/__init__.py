"""Prompt templates: every prompt is a Jinja2 file in this folder, never a literal in code.

``render(name, **values)`` fills one; ``undefined`` values are an error, not an empty string, so a
template and its caller cannot drift apart silently. Dicts and lists render as JSON via ``tojson``.

Every template declares its *kind* on its first line, as a Jinja comment that renders to nothing
(``{#- kind: critique -#}``), so what a model sees does not depend on it. ``template_kind(name)``
reads that declaration; ``kind_of(text)`` tells which kind of template produced a rendered prompt,
from the template's own literal text (what lies between its Jinja tags), read from the files at
the time of the call: a reworded template is still recognised, and nothing outside this package
has to match the wording of a prompt. Several templates may share a kind (a plain-text field
question is the shared context and one ask, both ``field``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from jinja2 import nodes

#: The declaration on a template's first line: ``{#- kind: critique -#}``.
_KIND = re.compile(r"\A\{#-?\s*kind:\s*([a-z][a-z0-9_]*)\s*-?#\}")
#: Literal pieces shorter than this (punctuation, "- ") say nothing about the template.
_MIN_PIECE = 4
#: A template explains a text only if at least this many of its literal characters are in it.
_MIN_MATCH = 24


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def _load(name: str) -> str | None:
    path = resources.files(__name__).joinpath(name)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def render(name: str, **values: Any) -> str:
    """The template ``name`` filled with ``values``, stripped of surrounding whitespace."""
    return _environment().get_template(name).render(**values).strip()


def template_names() -> list[str]:
    """Every template of this package, as the name ``render`` takes (``profiling/rank.txt``)."""
    names: list[str] = []

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".txt"):
                names.append(prefix + entry.name)

    walk(resources.files(__name__), "")
    return sorted(names)


def template_kind(name: str) -> str:
    """The kind the template ``name`` declares on its first line (``{#- kind: rank -#}``)."""
    source = _load(name)
    if source is None:
        raise jinja2.TemplateNotFound(name)
    match = _KIND.match(source)
    if match is None:
        raise ValueError(f"prompt template {name} declares no kind on its first line "
                         "({#- kind: ... -#})")
    return match.group(1)


@dataclass(frozen=True)
class _Signature:
    """A template's literal pieces in order; ``required`` ones are outside any if/for block."""

    name: str
    kind: str
    pieces: tuple[tuple[str, bool], ...]

    def score(self, text: str) -> int | None:
        """Characters of ``text`` explained by the pieces: None if a required piece is missing
        (required pieces must appear in order; optional ones anywhere)."""
        at, score = 0, 0
        for piece, required in self.pieces:
            if required:
                found = text.find(piece, at)
                if found < 0:
                    return None
                at, score = found + len(piece), score + len(piece)
            elif piece in text:
                score += len(piece)
        return score


def _pieces(body: list[nodes.Node], required: bool, out: list[tuple[str, bool]],
            including: tuple[str, ...]) -> None:
    for node in body:
        if isinstance(node, nodes.TemplateData):
            for piece in (p.strip() for p in node.data.split("\n")):
                if len(piece) >= _MIN_PIECE:
                    out.append((piece, required))
        elif isinstance(node, nodes.Include) and isinstance(node.template, nodes.Const):
            name = node.template.value
            if name not in including:
                source = _load(name) or ""
                _pieces(_environment().parse(source).body, required, out, (*including, name))
        elif isinstance(node, (nodes.If, nodes.For)):
            _pieces(list(node.iter_child_nodes()), False, out, including)
        else:
            _pieces(list(node.iter_child_nodes()), required, out, including)


@lru_cache(maxsize=1)
def _signatures() -> tuple[_Signature, ...]:
    out = []
    for name in template_names():
        pieces: list[tuple[str, bool]] = []
        _pieces(_environment().parse(_load(name) or "").body, True, pieces, (name,))
        out.append(_Signature(name, template_kind(name), tuple(pieces)))
    return tuple(out)


def kind_of(text: str) -> str | None:
    """The kind of the template that produced ``text`` (a rendered prompt, or one with more
    after it), or None when no template explains it. A template explains a text that holds
    its unconditional literal pieces in order; of those, the one whose literal pieces cover
    the most of the text wins (a prompt quoting another template's text is still its own)."""
    best: tuple[int, str] | None = None
    for signature in _signatures():
        score = signature.score(text)
        if score is not None and score >= _MIN_MATCH and (best is None or score > best[0]):
            best = (score, signature.kind)
    return None if best is None else best[1]
