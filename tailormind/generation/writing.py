"""Writing: one idea -> a platform-shaped draft (post text + image prompts, or a storyboard).

The ``text`` role answers JSON (``POST_SCHEMA`` / ``VIDEO_SCHEMA``; repaired or re-asked by the
role), or — ``answer_format: fields`` — one plain-text field per question
(:mod:`tailormind.generation.fields`), assembled into the same shape. The answer is then fitted
to the platform file, and every change is recorded in ``Draft.fixes`` (never silent): title cut
to ``title_max_chars``, body to ``body_max_words``, hashtags cleaned, de-duplicated and capped
(topped up from the source items' tags when too few), images capped (topped up from the title
when too few), links kept only where the platform allows them and only as http(s) URLs, shot
durations clamped to [1, 10] s and the storyboard scaled into the platform's
``video_seconds``. An answer that is not usable JSON at all gives a fallback draft built from the
idea — recorded in ``Draft.fallback``. Before the fitting, every link that neither the source
items nor ``generation.link_allowlist`` vouch for is removed from the idea and the answer
(:mod:`tailormind.generation.links`) and listed in ``Draft.removed_links``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from tailormind.config import GenerationConfig
from tailormind.generation.catalog import IdeaTemplate, Platform
from tailormind.generation.fields import (
    answer_format,
    as_answer,
    ask_fields,
    field_asks,
    field_context,
)
from tailormind.generation.links import LinkPolicy, without_unsourced_links
from tailormind.generation.post_record import reader_text
from tailormind.models.roles import TextModel
from tailormind.models.types import GenerationParams, Shot
from tailormind.prompts import render
from tailormind.prompts.ugc import CHARS_PER_TOKEN, clean_ugc, quote_ugc

SHOT_SECONDS = (1.0, 10.0)
DEFAULT_SHOT_SECONDS = 4.0
MAX_LINKS = 3

_STRINGS = {"type": ["string", "array", "object", "number", "null"]}
POST_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "body": {"type": "string"},
                   "hashtags": _STRINGS, "images": _STRINGS, "links": _STRINGS},
    "required": ["title", "body"],
}
VIDEO_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "introduction": {"type": "string"},
                   "hashtags": _STRINGS, "storyboard": {"type": "array"}},
    "required": ["title", "introduction"],
}


@dataclass
class ImagePlan:
    prompt: str
    caption: str = ""


@dataclass
class Draft:
    """One version of a post (``kind == "post"``) or a video plan (``kind == "video"``)."""

    kind: str
    title: str
    body: str  # the post body, or the video's introduction
    hashtags: list[str]
    images: list[ImagePlan]  # the post's images, cover first; for a video: its cover
    links: list[str] = field(default_factory=list)
    shots: list[Shot] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    fallback: str | None = None
    attempts: int = 0
    repaired: bool = False
    format: str = "json"  # how the text model was asked: json or fields
    empty: list[str] = field(default_factory=list)  # fields whose answer was empty
    removed_links: list[str] = field(default_factory=list)  # not in the sources nor allowlisted
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def text(self) -> str:
        """What a reader reads (:func:`reader_text`; scored for relevance)."""
        captions = [i.caption for i in self.images] + [s.caption for s in self.shots]
        return reader_text(self.title, self.body, captions, self.hashtags)

    def summary(self) -> str:
        """The version shown to the writer in a reflection round (compact JSON-ish)."""
        lines = [f"title: {self.title}", f"body: {self.body}",
                 f"hashtags: {' '.join(self.hashtags)}"]
        lines += [f"image {n}: {i.prompt}" for n, i in enumerate(self.images, 1)]
        lines += [f"shot {n} ({s.duration_s:g} s): {s.prompt} / {s.caption}"
                  for n, s in enumerate(self.shots, 1)]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _words(text: str, limit: int) -> tuple[str, bool]:
    words = text.split()
    if len(words) <= limit:
        return text.strip(), False
    return " ".join(words[:limit]).rstrip(",;") + "…", True


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value) if v]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    return [value]


def clean_hashtag(raw: Any) -> str | None:
    """``"sci fi!"`` -> ``"#scifi"``; None when nothing usable is left."""
    core = re.sub(r"[^\w-]", "", str(raw).replace("#", ""), flags=re.UNICODE)[:30]
    return f"#{core}" if core else None


def _fit_title(value: dict[str, Any], idea: str, platform: Platform, ugc_chars: int,
               fixes: list[str]) -> str:
    """The answer's title (else the idea's), cut to ``title_max_chars``."""
    title = clean_ugc(str(value.get("title") or ""), ugc_chars)
    if not title:
        title, _ = clean_ugc(idea, platform.title_max_chars), fixes.append("title from the idea")
    if len(title) > platform.title_max_chars:
        title = clean_ugc(title, platform.title_max_chars - 1)
        fixes.append(f"title cut to {platform.title_max_chars} characters")
    return title


def _fit_body(value: dict[str, Any], kind: str, idea: str, platform: Platform,
              fixes: list[str]) -> str:
    """The answer's body or (video) introduction, else the idea, cut to ``body_max_words``."""
    body_key = "introduction" if kind == "video" else "body"
    body = clean_ugc(str(value.get(body_key) or ""), 20 * platform.body_max_words)
    if not body:
        body = clean_ugc(idea, 20 * platform.body_max_words)
        fixes.append(f"{body_key} from the idea")
    body, cut = _words(body, platform.body_max_words)
    if cut:
        fixes.append(f"{body_key} cut to {platform.body_max_words} words")
    return body


def _fit_hashtags(raw_tags: Any, platform: Platform, fallback_tags: list[str],
                  fixes: list[str]) -> list[str]:
    """Cleaned hashtags without case-insensitive repeats, capped at the platform's maximum and
    topped up towards its minimum from ``fallback_tags``."""
    low, high = platform.hashtags
    tags: list[str] = []
    for raw in _as_list(raw_tags):
        tag = clean_hashtag(raw)
        if tag and tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    if len(tags) > high:
        tags, _ = tags[:high], fixes.append(f"hashtags capped at {high}")
    if len(tags) < low:
        for raw in fallback_tags:
            tag = clean_hashtag(raw)
            if tag and tag.lower() not in {t.lower() for t in tags}:
                tags.append(tag)
            if len(tags) == low:
                break
        fixes.append("hashtags topped up from the source items' tags")
    return tags


def _fit_images(raw_images: Any, platform: Platform, title: str, idea: str, ugc_chars: int,
                fixes: list[str]) -> list[ImagePlan]:
    """A post's image prompts (strings or ``{prompt, caption}``), capped at the platform's
    maximum and topped up to its minimum from the title."""
    images: list[ImagePlan] = []
    for raw in _as_list(raw_images):
        prompt = raw.get("prompt") if isinstance(raw, dict) else raw
        caption = raw.get("caption", "") if isinstance(raw, dict) else ""
        prompt = clean_ugc(str(prompt or ""), ugc_chars)
        if prompt:
            images.append(ImagePlan(prompt, clean_ugc(str(caption or ""), ugc_chars)))
    low_i, high_i = platform.images
    if len(images) > high_i:
        images, _ = images[:high_i], fixes.append(f"images capped at {high_i}")
    while len(images) < low_i:
        images.append(ImagePlan(title if not images else f"{title}: {idea}", title))
        fixes.append("image prompt from the title")
    return images


def _fit_links(raw_links: Any, platform: Platform, fixes: list[str]) -> list[str]:
    """http(s) URLs where the platform allows links, at most :data:`MAX_LINKS`."""
    links: list[str] = []
    for raw in _as_list(raw_links):
        url = str(raw).strip()
        if platform.links and re.fullmatch(r"https?://[^\s<>\"']{3,300}", url):
            links.append(url)
        else:
            fixes.append("link dropped (not allowed or not an http(s) URL)")
    if len(links) > MAX_LINKS:
        links, _ = links[:MAX_LINKS], fixes.append(f"links capped at {MAX_LINKS}")
    return links


def fit_to_platform(value: dict[str, Any], *, kind: str, platform: Platform, idea: str,
                    template: IdeaTemplate, fallback_tags: list[str], ugc_chars: int) -> Draft:
    """The model's JSON fitted to the platform's rules; every change listed in ``fixes``
    (title, body, hashtags, images or storyboard, links — in that order)."""
    fixes: list[str] = []
    title = _fit_title(value, idea, platform, ugc_chars, fixes)
    body = _fit_body(value, kind, idea, platform, fixes)
    tags = _fit_hashtags(value.get("hashtags"), platform, fallback_tags, fixes)
    shots: list[Shot] = []
    if kind == "post":
        images = _fit_images(value.get("images"), platform, title, idea, ugc_chars, fixes)
    else:
        shots = _storyboard(value.get("storyboard"), platform, template, title, fixes, ugc_chars)
        images = [ImagePlan(f"{title}: {shots[0].prompt}", title)]
    links = _fit_links(value.get("links"), platform, fixes)
    return Draft(kind=kind, title=title, body=body, hashtags=tags, images=images, links=links,
                 shots=shots, fixes=fixes)


def _storyboard(raw: Any, platform: Platform, template: IdeaTemplate, title: str,
                fixes: list[str], ugc_chars: int) -> list[Shot]:
    low_s, high_s = platform.video_seconds
    shots: list[Shot] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            item = {"prompt": str(item)}
        prompt = clean_ugc(str(item.get("prompt") or ""), ugc_chars)
        if not prompt:
            continue
        try:
            seconds = float(item.get("duration", DEFAULT_SHOT_SECONDS))
        except (TypeError, ValueError):
            seconds = DEFAULT_SHOT_SECONDS
        clamped = min(max(seconds, SHOT_SECONDS[0]), SHOT_SECONDS[1])
        if clamped != seconds:
            fixes.append(f"shot {len(shots) + 1}: duration {seconds:g} s clamped to {clamped:g} s")
        shots.append(Shot(prompt, clamped, clean_ugc(str(item.get("caption") or ""), ugc_chars)))
    if not shots:
        fixes.append("storyboard built from the template's parts (none usable in the answer)")
        shots = [Shot(f"{title}: {part}", DEFAULT_SHOT_SECONDS, part.capitalize())
                 for part in template.structure]
    total = sum(s.duration_s for s in shots)
    if total < low_s or total > high_s:
        target = min(max(total, low_s), high_s)
        scale = target / total
        shots = [Shot(s.prompt, round(s.duration_s * scale, 2), s.caption) for s in shots]
        fixes.append(f"storyboard scaled from {total:g} s to {target:g} s")
    return shots


def write_draft(*, kind: str, platform: Platform, template: IdeaTemplate, idea: str,
                profile: str, exemplar_texts: list[tuple[str, str]], text: TextModel,
                config: GenerationConfig, fallback_tags: list[str],
                previous: Draft | None = None, feedback: str | None = None) -> Draft:
    """One draft (or, with ``previous`` and ``feedback``, one reflection-round revision).

    ``exemplar_texts`` are the source items: the only links the draft may carry besides
    http(s) links to ``config.link_allowlist`` hosts are theirs."""
    links = LinkPolicy.from_sources([body for _, body in exemplar_texts], config.link_allowlist)
    idea, removed_from_idea = links.strip(idea)

    def fitted(value: dict[str, Any]) -> Draft:
        value, removed = without_unsourced_links(value, links)
        draft = fit_to_platform(value, kind=kind, platform=platform, idea=idea,
                                template=template, fallback_tags=fallback_tags,
                                ugc_chars=config.ugc_chars)
        draft.removed_links = removed_from_idea + removed
        return draft

    if answer_format(config, text) == "fields":
        context = field_context(platform=platform, kind=kind, profile=profile,
                                exemplar_texts=exemplar_texts, config=config, template=template,
                                idea=idea, previous=previous.summary() if previous else "",
                                feedback=feedback or "")
        answers = ask_fields(text, context, field_asks(kind, platform, template), config,
                             platform)
        draft = fitted(as_answer(answers.values, kind, template))
        draft.format, draft.attempts, draft.empty = "fields", 1, answers.empty
        draft.prompt_tokens, draft.completion_tokens = (answers.prompt_tokens,
                                                        answers.completion_tokens)
        return draft
    prompt = render(
        "generation/write_video.txt" if kind == "video" else "generation/write_post.txt",
        platform=platform, template=template,
        idea=quote_ugc(idea, label="idea", limit=config.ugc_chars),
        profile=quote_ugc(profile, label="profile", limit=config.ugc_chars * 2),
        exemplars=[quote_ugc(body, label=label, limit=config.ugc_chars)
                   for label, body in exemplar_texts],
        previous=quote_ugc(previous.summary(), label="previous version",
                           limit=CHARS_PER_TOKEN * config.write_tokens)
        if previous is not None else "", feedback=feedback or "")
    params = GenerationParams(max_tokens=config.write_tokens,
                              temperature=text.default_params.temperature)
    schema = VIDEO_SCHEMA if kind == "video" else POST_SCHEMA
    (answer,) = text.complete_json([[{"role": "user", "content": prompt}]], schema, params)
    draft = fitted(answer.value if answer.ok else {})
    if not answer.ok:
        draft.fallback = f"writer: no usable JSON ({answer.error}); draft built from the idea"
    draft.attempts, draft.repaired = answer.attempts, answer.repaired
    draft.prompt_tokens, draft.completion_tokens = answer.prompt_tokens, answer.completion_tokens
    return draft
