"""Parse an LLM answer as JSON, repairing what small models typically get wrong.

Repairs, in order, each tried only when the previous text does not parse:

1. the first fenced block (```json ... ```) or the first balanced ``{...}`` / ``[...]`` span;
2. trailing commas before ``}``/``]``, Python literals (``True``/``False``/``None``),
   single-quoted strings;
3. a truncated answer: open strings, arrays and objects closed in order.

The parsed value is then validated against the JSON schema; a schema violation is not repaired
(it would be guessing), it is reported so the caller can re-ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema


class JsonAnswerError(ValueError):
    """An answer that is not (repairable) JSON or does not match the schema; says why."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


def parse_json_answer(text: str, schema: dict | None = None) -> tuple[Any, bool]:
    """``(value, repaired)``; raises :class:`JsonAnswerError` with a one-line reason."""
    if not text or not text.strip():
        raise JsonAnswerError("the answer is empty")
    value, repaired = _parse(text)
    if schema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(top level)"
            raise JsonAnswerError(f"JSON does not match the schema at {where}: {first.message}")
    return value, repaired


def _parse(text: str) -> tuple[Any, bool]:
    stripped = text.strip()
    try:
        return json.loads(stripped), False
    except json.JSONDecodeError as exc:
        first_error = exc
    candidates = []
    fence = _FENCE.search(stripped)
    if fence:
        candidates.append(fence.group(1).strip())
    span = _json_span(stripped)
    if span:
        candidates.append(span)
    for candidate in candidates:
        for fixed in _repairs(candidate):
            try:
                return json.loads(fixed), True
            except json.JSONDecodeError:
                continue
    if not candidates:
        raise JsonAnswerError(f"no JSON object or array in the answer (starts {stripped[:60]!r})")
    raise JsonAnswerError(f"not valid JSON: {first_error.msg} at line {first_error.lineno} "
                          f"column {first_error.colno}")


def _repairs(candidate: str) -> list[str]:
    out = [candidate]
    fixed = _TRAILING_COMMA.sub(r"\1", candidate)
    fixed = _replace_outside_strings(fixed)
    out.append(fixed)
    if "'" in fixed and '"' not in fixed:
        out.append(_TRAILING_COMMA.sub(r"\1", fixed.replace("'", '"')))
    out.append(_TRAILING_COMMA.sub(r"\1", _close_truncated(fixed)))
    return out


def _structural(text: str) -> Iterator[tuple[int, str]]:
    """``(index, char)`` of every character outside double-quoted strings, quotes included."""
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                yield i, ch
            continue
        in_string = ch == '"'
        yield i, ch


def _json_span(text: str) -> str | None:
    """From the first ``{`` or ``[`` to its balanced close (or the end, if truncated)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    depth = 0
    for i, ch in _structural(text[start:]):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start : start + i + 1]
    return text[start:]


def _replace_outside_strings(text: str) -> str:
    """``True``/``False``/``None`` -> JSON literals, only outside double-quoted strings."""
    out, copied = [], 0
    for i, _ in _structural(text):
        if i < copied or (i and text[i - 1].isalnum()):
            continue
        for literal, replacement in _PY_LITERALS.items():
            if text.startswith(literal, i):
                out += [text[copied:i], replacement]
                copied = i + len(literal)
                break
    return "".join(out) + text[copied:]


def _close_truncated(text: str) -> str:
    """Close an unterminated string and every open bracket, innermost first."""
    stack: list[str] = []
    quotes = 0
    for _, ch in _structural(text):
        if ch == '"':
            quotes += 1
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    closed = (text + ('"' if quotes % 2 else "")).rstrip()
    if closed.endswith(":"):
        closed += " null"
    return closed + "".join(reversed(stack))
