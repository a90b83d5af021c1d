"""Plain-text answers, one field per question — for text models that cannot keep a JSON shape.

SmolLM2-135M misses the keys of a whole JSON answer (every real MovieLens user tried fell back),
but continues a pre-filled start well: asked "Give it a catchy title" with the answer begun as
``Title:`` it writes one title line. So with ``generation.answer_format: fields`` (the ``auto``
choice for a model whose ``follows_json`` is false) each field is its own conversation, all of one
draft in one batch:

    ideas      one question per template of S        prefill "Idea:"
    post       title ("Title:"), body, one picture per template part ("The picture shows"),
               the picture count inside the platform's image range
    video      title, introduction, one shot per template part ("The shot shows"); a shot's
               caption is the part's name

The context is repeated in every question and prefill costs ~0.4 s per 170 prompt tokens on 2
cores, so it is kept short (:func:`field_context`). Asking all pictures as one numbered list cost
the same time (the batch then runs as long as the body) and gave worse prompts (exemplar titles
copied as "pictures"), so each picture is its own one-line question.

Answers are cleaned (:func:`clean_field`: first line for one-line fields, labels, quotes and
markdown stripped); an empty answer is counted in ``empty`` and left to the platform fitting,
which records the fix (e.g. "title from the idea"). Hashtags are not asked: the fitting takes them
from the source items' tags, and says so. The result has the same shape as the JSON answer, so
:func:`tailormind.generation.writing.fit_to_platform` treats both alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tailormind.config import GenerationConfig
from tailormind.generation.catalog import IdeaTemplate, Platform
from tailormind.models.roles import TextModel
from tailormind.models.types import Conversation, GenerationParams
from tailormind.prompts import render
from tailormind.prompts.ugc import clean_ugc, quote_ugc

#: How each field's answer is begun for the model (continued, then stripped from the answer).
PREFILLS = {"idea": "Idea:", "title": "Title:", "body": "", "image": "The picture shows",
            "shot": "The shot shows"}
#: Fields asked several times; their answers collect into a list in question order.
LISTED = {"idea", "image", "shot"}
#: Fields whose answer is one line (the row stops at its first newline).
ONE_LINE = {"idea", "title", "image", "shot"}
_LABEL = re.compile(r"^\s*(?:\*\*|__)?\s*(?:idea|title|narrator|narration|caption|body|text|"
                    r"introduction|shot \d+|picture \d+)\s*\d*\s*[:：]\s*(?:\*\*|__)?\s*", re.I)
#: Template placeholders a small model copies ("[Insert Idea]", "[Your Name]").
_PLACEHOLDER = re.compile(r"\[(?:insert|your|name|link|add|title|idea|date)[^\]]{0,60}\]", re.I)
#: Our UGC markers echoed back by the model ("<<<ugc item 592>>", "<<<end ugc>>>").
_MARKER_ECHO = re.compile(r"[<‹]{2,}\s*(?:end\s+)?ugc\b[^>›\n]{0,40}[>›]{0,3}", re.I)
#: Markdown heading lines and lead-ins ending in a colon ("## Intro", "Sure! Here is a title:").
_JUNK_LINE = re.compile(r"^\s*(?:#{1,6}\s.*|.{0,60}[:：]\s*(?:\*\*|__)?\s*)$")
_WRAP = "\"'“”‘’*_`#> "


@dataclass
class FieldAnswers:
    """The fields' texts keyed by name (the ``LISTED`` ones are lists)."""

    values: dict[str, Any]
    empty: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def clean_field(text: str, name: str, limit: int) -> str:
    """The usable part of one field answer: one line for one-line fields, a leading label
    (``Title:``, ``**Idea 1:**``), copied placeholders (``[Insert Idea]``), echoed UGC markers,
    heading lines and
    wrapping quotes/markdown removed, cut to ``limit``."""
    text = _MARKER_ECHO.sub("", _PLACEHOLDER.sub("", text or "")).strip()
    text = "\n".join(re.sub(r"[ \t]{2,}", " ", line).rstrip() for line in text.splitlines()
                     if not _JUNK_LINE.match(line))
    if name in ONE_LINE:
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[0] if lines else ""
    text = _LABEL.sub("", text).strip().strip(_WRAP).strip()
    if name in ("image", "shot") and text and not text[0].isupper():
        text = text[0].upper() + text[1:]
    return clean_ugc(text, limit)


def answer_format(config: GenerationConfig, text: TextModel) -> str:
    """``json`` or ``fields``: the configured one, or by the model's ``follows_json``."""
    if config.answer_format != "auto":
        return config.answer_format
    return "json" if text.follows_json else "fields"


def field_context(*, platform: Platform, kind: str, profile: str,
                  exemplar_texts: list[tuple[str, str]], config: GenerationConfig,
                  template: IdeaTemplate | None = None, idea: str = "", previous: str = "",
                  feedback: str = "") -> str:
    """The shared start of every plain-text field question. It is sent once per field, so it
    is kept short: the profile and the previous version cut to ``ugc_chars``, each exemplar to
    a third of it (a 135M model also loses the question in a long prompt). The idea and the
    previous version are model text that may echo UGC, so they are quoted too."""
    short = max(config.ugc_chars // 3, 20)
    return render("generation/field_context.txt", platform=platform, kind=kind,
                  profile=quote_ugc(profile, label="profile", limit=config.ugc_chars),
                  exemplars=[quote_ugc(body, label=label, limit=short)
                             for label, body in exemplar_texts],
                  template=template, feedback=feedback,
                  idea=quote_ugc(idea, label="idea", limit=config.ugc_chars) if idea else "",
                  previous=quote_ugc(previous, label="previous version",
                                     limit=config.ugc_chars) if previous else "")


def _conversation(context: str, ask: str, prefill: str) -> Conversation:
    conversation: Conversation = [{"role": "user", "content": f"{context}\n\n{ask}"}]
    if prefill:
        conversation.append({"role": "assistant", "content": prefill})
    return conversation


def ask_fields(text: TextModel, context: str, asks: list[tuple[str, str, int]],
               config: GenerationConfig, platform: Platform) -> FieldAnswers:
    """Each ``(name, question, index)`` becomes a conversation (the shared context, the
    question, the answer pre-filled from ``PREFILLS``); answers cleaned.

    One-line fields run as one batch that stops each row at its first newline
    (``line_tokens``); the body runs apart (``body_tokens``) — in one batch every row would pay
    for the longest. Names in ``LISTED`` collect into lists in question order; an empty answer
    is listed in ``empty`` as ``name`` or ``name index``."""
    conversations = [_conversation(context, question, PREFILLS.get(name, ""))
                     for name, question, _ in asks]
    temperature = text.default_params.temperature
    line = GenerationParams(max_tokens=config.line_tokens, stop=("\n",), temperature=temperature)
    body = GenerationParams(max_tokens=config.body_tokens, temperature=temperature)
    results: dict[int, Any] = {}
    for one_line, params in ((True, line), (False, body)):
        indices = [i for i, (name, _, _) in enumerate(asks) if (name in ONE_LINE) == one_line]
        if indices:
            done = text.complete([conversations[i] for i in indices], params)
            results.update(zip(indices, done, strict=True))
    answers = FieldAnswers(values={})
    for i, (name, _, index) in enumerate(asks):
        completion = results[i]
        answers.prompt_tokens += completion.prompt_tokens
        answers.completion_tokens += completion.completion_tokens
        limit = 20 * platform.body_max_words if name == "body" else config.ugc_chars
        value = clean_field(completion.text, name, limit)
        if not value:
            answers.empty.append(f"{name} {index}" if index else name)
        if name in LISTED:
            answers.values.setdefault(name, []).append(value)
        else:
            answers.values[name] = value
    return answers


def field_asks(kind: str, platform: Platform,
               template: IdeaTemplate) -> list[tuple[str, str, int]]:
    """The questions of one draft: title, body, then one picture (post) or shot (video) per
    template part, the picture count kept inside the platform's image range."""
    parts = list(template.structure)
    name = "image" if kind == "post" else "shot"
    if kind == "post":
        low, high = platform.images
        count = min(max(len(parts), low), high)
        parts = (parts * (count // max(len(parts), 1) + 1))[:count]

    def ask(field_name: str, **values: Any) -> str:
        return render("generation/field_ask.txt", field=field_name, kind=kind,
                      platform=platform, template=template, **values)

    return [("title", ask("title"), 0), ("body", ask("body"), 0),
            *[(name, ask(name, index=n, part=part), n) for n, part in enumerate(parts, 1)]]


def as_answer(values: dict[str, Any], kind: str, template: IdeaTemplate) -> dict[str, Any]:
    """Field answers in the JSON answer's shape (see ``POST_SCHEMA`` / ``VIDEO_SCHEMA``);
    a shot's caption is its template part."""
    if kind == "video":
        return {"title": values.get("title", ""), "introduction": values.get("body", ""),
                "storyboard": [{"prompt": shot, "caption": part.capitalize()}
                               for shot, part in zip(values.get("shot", []),
                                                     template.structure, strict=False) if shot]}
    return {"title": values.get("title", ""), "body": values.get("body", ""),
            "images": [{"prompt": p, "caption": ""} for p in values.get("image", []) if p]}
