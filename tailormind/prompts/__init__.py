"""Prompt templates: every prompt is a Jinja2 file in this folder, never a literal in code.

``render(name, **values)`` fills one; ``undefined`` values are an error, not an empty string, so a
template and its caller cannot drift apart silently. Dicts and lists render as JSON via ``tojson``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2


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
