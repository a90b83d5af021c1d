"""Ideation (Eq. 16): I_u = Ψ(p_u, S) — the profile picks a template subset S, the ``text`` role
proposes ideas as JSON (or, for a small model, one plain-text idea per template of S; see
:mod:`tailormind.generation.fields`).

S is chosen by embedding: the ``idea_subset`` templates (image-text ideas or video types) whose
title + description are closest to the profile's embedding. The answer must match
``IDEAS_SCHEMA``; the role repairs or re-asks malformed JSON (counted in its stats). Each idea's
``type`` is matched to S by name or title (case-insensitive); an unknown type becomes S's first
template and is counted (``type_coerced``). When no valid idea comes back at all, one fallback
idea is built from the best template and the top exemplar — recorded with the reason, never
silent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailormind.config import GenerationConfig
from tailormind.generation.catalog import IdeaTemplate, Platform
from tailormind.generation.fields import answer_format, ask_fields, field_context
from tailormind.models.roles import Embedder, TextModel
from tailormind.models.types import GenerationParams
from tailormind.prompts import render
from tailormind.prompts.ugc import clean_ugc, quote_ugc

IDEAS_SCHEMA = {
    "type": "object",
    "properties": {
        "ideas": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "idea": {"type": "string", "minLength": 3},
                    "main_type": {"type": "string"},
                    "type": {"type": "string"},
                    "basis": {"type": "string"},
                },
                "required": ["idea", "type"],
            },
        }
    },
    "required": ["ideas"],
}


@dataclass(frozen=True)
class Idea:
    idea: str
    main_type: str  # "image-text" or "video"
    type: str  # a template name from S
    basis: str


@dataclass
class IdeationResult:
    ideas: list[Idea]
    subset: list[str]  # S, template names, closest first
    repaired: bool = False
    attempts: int = 0
    fallback: str | None = None
    type_coerced: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    format: str = "json"  # how the ideas were asked for: json or fields
    empty: int = 0  # fields: idea answers that were empty after cleaning (dropped)
    error: str | None = None  # why no idea came back (json: the role's error)


def select_templates(profile_vector: np.ndarray, templates: tuple[IdeaTemplate, ...],
                     embedder: Embedder, size: int) -> list[IdeaTemplate]:
    """S: the ``size`` templates closest to the profile (cosine), ties in catalogue order."""
    vectors = embedder.embed([f"{t.title}: {t.description}" for t in templates])
    scores = vectors @ profile_vector
    order = sorted(range(len(templates)), key=lambda i: (-round(float(scores[i]), 9), i))
    return [templates[i] for i in order[:size]]


def _match(label: str, subset: list[IdeaTemplate]) -> IdeaTemplate | None:
    key = " ".join(str(label).replace("_", " ").lower().split())
    for template in subset:
        if key in (template.name.replace("_", " "), template.title.lower()):
            return template
    return None


def ideate(*, profile: str, profile_vector: np.ndarray, exemplar_texts: list[tuple[str, str]],
           kind: str, platform: Platform, templates: tuple[IdeaTemplate, ...],
           text: TextModel, embedder: Embedder, config: GenerationConfig) -> IdeationResult:
    """Ideas for one user. ``exemplar_texts``: (label, UGC text) per exemplar, best first.

    ``json``: one answer with up to ``max_ideas`` ideas (schema-checked, repaired or re-asked).
    ``fields``: one plain-text idea per template of S (at most ``max_ideas``), asked in one
    batch; an empty answer is dropped and counted in ``empty``."""
    subset = select_templates(profile_vector, templates, embedder, config.idea_subset)
    main_type = "video" if kind == "video" else "image-text"
    if answer_format(config, text) == "fields":
        result = _ideate_fields(subset, profile=profile, exemplar_texts=exemplar_texts,
                                kind=kind, platform=platform, text=text, config=config)
    else:
        result = _ideate_json(subset, profile=profile, exemplar_texts=exemplar_texts,
                              kind=kind, platform=platform, text=text, config=config)
    if not result.ideas:
        result.fallback = (f"ideation: no usable idea ({result.error or 'every idea was empty'});"
                           f" built one from the top template and exemplar")
        basis = exemplar_texts[0][1] if exemplar_texts else profile
        result.ideas.append(Idea(
            idea=clean_ugc(f"{subset[0].title} about {clean_ugc(basis, 80)}", config.ugc_chars),
            main_type=main_type, type=subset[0].name, basis="fallback: top exemplar"))
    return result


def _ideate_fields(subset: list[IdeaTemplate], *, profile: str,
                   exemplar_texts: list[tuple[str, str]], kind: str, platform: Platform,
                   text: TextModel, config: GenerationConfig) -> IdeationResult:
    main_type = "video" if kind == "video" else "image-text"
    context = field_context(platform=platform, kind=kind, profile=profile,
                            exemplar_texts=exemplar_texts, config=config)
    chosen = subset[:config.max_ideas]
    asks = [("idea", render("generation/field_ask.txt", field="idea", kind=kind,
                            platform=platform, template=t), n) for n, t in enumerate(chosen, 1)]
    answers = ask_fields(text, context, asks, config, platform)
    result = IdeationResult(ideas=[], subset=[t.name for t in subset], format="fields",
                            attempts=1, prompt_tokens=answers.prompt_tokens,
                            completion_tokens=answers.completion_tokens,
                            empty=len(answers.empty))
    seen: set[str] = set()
    for template, idea in zip(chosen, answers.values.get("idea", []), strict=True):
        if len(idea) < 3 or idea.lower() in seen:
            continue
        seen.add(idea.lower())
        result.ideas.append(Idea(idea=idea, main_type=main_type, type=template.name,
                                 basis="profile and exemplars"))
    if not result.ideas:
        result.error = f"{len(answers.empty)} of {len(asks)} idea answers were empty"
    return result


def _ideate_json(subset: list[IdeaTemplate], *, profile: str,
                 exemplar_texts: list[tuple[str, str]], kind: str, platform: Platform,
                 text: TextModel, config: GenerationConfig) -> IdeationResult:
    main_type = "video" if kind == "video" else "image-text"
    prompt = render(
        "generation/ideate.txt", platform=platform, kind=kind, main_type=main_type,
        profile=quote_ugc(profile, label="profile", limit=config.ugc_chars * 2),
        exemplars=[quote_ugc(body, label=label, limit=config.ugc_chars)
                   for label, body in exemplar_texts],
        templates=subset, max_ideas=config.max_ideas)
    params = GenerationParams(max_tokens=config.idea_tokens,
                              temperature=text.default_params.temperature)
    (answer,) = text.complete_json([[{"role": "user", "content": prompt}]], IDEAS_SCHEMA, params)
    result = IdeationResult(ideas=[], subset=[t.name for t in subset], repaired=answer.repaired,
                            attempts=answer.attempts, prompt_tokens=answer.prompt_tokens,
                            completion_tokens=answer.completion_tokens, error=answer.error)
    seen: set[str] = set()
    for raw in (answer.value or {}).get("ideas", []) if answer.ok else []:
        idea = clean_ugc(str(raw.get("idea", "")), config.ugc_chars)
        if len(idea) < 3 or idea.lower() in seen:
            continue
        template = _match(raw.get("type", ""), subset)
        if template is None:
            template = subset[0]
            result.type_coerced += 1
        seen.add(idea.lower())
        result.ideas.append(Idea(idea=idea, main_type=main_type, type=template.name,
                                 basis=clean_ugc(str(raw.get("basis", "")), config.ugc_chars)))
        if len(result.ideas) == config.max_ideas:
            break
    return result
