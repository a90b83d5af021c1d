"""Prompt kinds: every template declares one on its first line (a Jinja comment, so the prompt a
model sees is unchanged), ``kind_of`` recognises each template's renders — in every branch, and
still after the template is reworded — and the scripted models of tests/fakes.py answer by kind,
never by wording."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import jinja2
import pytest

import tailormind.prompts as prompts
from tailormind.generation.catalog import packaged_catalog
from tailormind.generation.fields import PREFILLS
from tailormind.prompts import kind_of, render, template_kind, template_names
from tailormind.prompts.ugc import quote_each, quote_ugc
from tests.fakes import Call, ProfilingText

#: A Jinja tag or comment: what a rewording leaves alone.
TAG = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.S)


def renders() -> Iterator[tuple[str, str]]:
    """(template, rendered prompt) for every template, through each of its branches."""
    catalog = packaged_catalog()
    items = quote_each(["Heat (1995). A crime epic.", "Alien (1979). Horror in space."],
                       label="item", limit=200)
    profile = quote_ugc("Likes crime films and long takes.", label="profile", limit=200)
    for json_answer in (True, False):
        for name in ("aesthetic", "coherence", "hallucination", "novelty"):
            yield f"bench/judge_{name}.txt", render(
                f"bench/judge_{name}.txt", post=quote_ugc("A post.", label="post", limit=99),
                history=items, sources=items, json_answer=json_answer)
    for name in ("bench/generic_profile.txt", "bench/judge_image_aesthetic.txt",
                 "profiling/system.txt", "ugc_notice.txt"):
        yield name, render(name)
    for kind, platform in (("post", "rednote"), ("post", "hupu"), ("video", "bilibili")):
        platform, templates = catalog.platform(platform), catalog.templates(kind)
        for field in ("idea", "title", "body", "image", "shot"):
            yield "generation/field_ask.txt", render(
                "generation/field_ask.txt", field=field, kind=kind, platform=platform,
                template=templates[0], index=2, part="the ending")
        for idea, previous in itertools.product(("", "A night drive"), ("", "Old title")):
            yield "generation/field_context.txt", render(
                "generation/field_context.txt", platform=platform, kind=kind, profile=profile,
                exemplars=items, template=templates[0], idea=idea, previous=previous,
                feedback="relevance 0.40")
        yield "generation/ideate.txt", render(
            "generation/ideate.txt", platform=platform, kind=kind, main_type="image-text",
            profile=profile, exemplars=items, templates=templates[:3], max_ideas=3)
        for feedback in ("", "relevance 0.40"):
            yield f"generation/write_{kind}.txt", render(
                f"generation/write_{kind}.txt", platform=platform, template=templates[0],
                idea="A night drive", profile=profile, exemplars=items, feedback=feedback,
                previous="Old version")
    yield "json_retry.txt", render("json_retry.txt", error="no JSON object",
                                   schema={"type": "object"})
    yield "profiling/critique.txt", render(
        "profiling/critique.txt", rank=3, total=31, profile=profile, wrong=items,
        positives=quote_each(["Heat (1995)."], label="chosen item", limit=99), max_words=20)
    for platform, title in itertools.product(("", "rednote"), ("", "Autumn")):
        yield "profiling/describe_image.txt", render(
            "profiling/describe_image.txt", max_words=40, platform=platform, title=title)
        yield "profiling/describe_video.txt", render(
            "profiling/describe_video.txt", segment="first", seconds=8, max_words=40,
            title=title)
    for title, tags in itertools.product(("", "Heat"), ("", "crime")):
        yield "profiling/item_text.txt", render("profiling/item_text.txt", max_words=40,
                                                title=title, tags=tags, text="A long text.")
    for cf in ([], items):
        yield "profiling/profile_init.txt", render("profiling/profile_init.txt", max_words=40,
                                                   history=items, cf=cf)
    yield "profiling/rank.txt", render("profiling/rank.txt", profile=profile,
                                       items=list(enumerate(items, 1)), n=2)
    yield "profiling/update.txt", render("profiling/update.txt", profile=profile,
                                         critique="Stress crime.", max_words=40)
    yield "profiling/video_merge.txt", render("profiling/video_merge.txt", max_words=40,
                                              seconds=8, head="Opening.", tail="Ending.")


def reword(source: str) -> str:
    """The template with every word of 4 letters or more of its literal text spelt backwards;
    Jinja tags and comments (the kind declaration) unchanged."""
    return "".join(part if TAG.fullmatch(part) else
                   re.sub(r"[A-Za-z]{4,}", lambda m: m.group(0)[::-1], part)
                   for part in TAG.split(source))


@pytest.fixture
def templates_from(monkeypatch: pytest.MonkeyPatch):
    """``use(load)``: the prompts package reads its templates through ``load`` for this test."""
    original = prompts._load

    def use(load) -> None:
        monkeypatch.setattr(prompts, "_load", lambda name: load(name, original(name)))
        prompts._environment.cache_clear()
        prompts._signatures.cache_clear()

    yield use
    prompts._environment.cache_clear()  # the next call reads the real files again
    prompts._signatures.cache_clear()


def test_every_template_declares_a_kind_that_does_not_render() -> None:
    kinds = {name: template_kind(name) for name in template_names()}
    assert set(kinds) == {name for name, _ in renders()}  # every template is sampled below
    for name, text in renders():
        assert "kind:" not in text and text == text.strip(), name
    # templates share a kind only when they make one prompt together (a field question)
    shared = {kind for kind in kinds.values() if list(kinds.values()).count(kind) > 1}
    assert shared == {"field"}
    assert {n for n, k in kinds.items() if k == "field"} == {
        "generation/field_context.txt", "generation/field_ask.txt"}


def test_every_render_is_recognised_as_its_templates_kind() -> None:
    for name, text in renders():
        assert kind_of(text) == template_kind(name), (name, text[:300])


def test_a_field_question_is_the_context_and_one_ask() -> None:
    catalog = packaged_catalog()
    platform, template = catalog.platform("rednote"), catalog.templates("post")[0]
    context = render("generation/field_context.txt", platform=platform, kind="post",
                     profile="Likes crime films.", exemplars=[], template=template, idea="",
                     previous="", feedback="")
    ask = render("generation/field_ask.txt", field="title", kind="post", platform=platform,
                 template=template)
    assert kind_of(f"{context}\n\n{ask}") == "field"


def test_the_best_covering_template_wins_and_other_text_has_no_kind() -> None:
    generic = render("bench/generic_profile.txt")
    catalog = packaged_catalog()
    # a prompt quoting a whole other template (the generic profile) is still its own kind
    ideate = render("generation/ideate.txt", platform=catalog.platform("rednote"), kind="post",
                    main_type="image-text", profile=quote_ugc(generic, label="profile",
                                                              limit=999),
                    exemplars=[], templates=catalog.templates("post")[:2], max_ideas=2)
    assert kind_of(generic) == "generic_profile" and kind_of(ideate) == "ideate"
    for text in ("", "Rank.", "an idea", "Give a catchy title for a post about hiking.",
                 "The characters. Write the words."):
        assert kind_of(text) is None, text


def test_a_reworded_template_keeps_its_kind(templates_from) -> None:
    before = list(renders())
    templates_from(lambda name, source: reword(source) if source is not None else None)
    after = list(renders())
    for (name, old), (_, new) in zip(before, after, strict=True):
        assert new != old and kind_of(new) == template_kind(name), (name, new[:300])
    critique = next(text for name, text in after if name == "profiling/critique.txt")
    assert "came only at position" not in critique and "emac ylno at noitisop" in critique
    # and a scripted model still answers it as a critique, naming the chosen item
    call = Call([{"role": "user", "content": critique}], None, None)
    assert call.kind == "critique"
    assert ProfilingText().answer(call) == "Stress this: Heat (1995)."


def test_a_template_without_a_kind_is_refused(templates_from) -> None:
    templates_from(lambda name, source: source.split("\n", 1)[1]
                   if name == "profiling/rank.txt" else source)
    with pytest.raises(ValueError, match="profiling/rank.txt declares no kind"):
        template_kind("profiling/rank.txt")
    with pytest.raises(jinja2.TemplateNotFound):
        template_kind("profiling/nope.txt")


def test_field_prefills_name_every_field_once() -> None:
    """The field writer in tests/fakes.py tells the fields apart by their prefills."""
    assert len(set(PREFILLS.values())) == len(PREFILLS)
