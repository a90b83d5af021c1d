"""Links in a post (issue 19): a link stays only when the post's source items contain it verbatim
or its host is on ``generation.link_allowlist``; every other one is removed from the text and
listed, written out by hand here."""

from __future__ import annotations

import json

import pytest

from tailormind.config import GenerationConfig, load_config
from tailormind.errors import ConfigError
from tailormind.generation.catalog import packaged_catalog
from tailormind.generation.fields import field_asks
from tailormind.generation.links import LinkPolicy, find_links, without_unsourced_links
from tailormind.generation.writing import write_draft
from tailormind.models.roles import TextModel
from tests.fakes import ScriptedText

SOURCE = ("Heat (1995). Michael Mann's crime epic; the full review is at "
          "https://reviews.example/heat-1995 (spoilers).")


class LinkingWriter(ScriptedText):
    """Answers every draft with ``answer`` (JSON) or, asked field by field, with ``line``."""

    def __init__(self, answer: dict, line: str = "", *, follows_json: bool = True) -> None:
        super().__init__({"write_post": json.dumps(answer), "field": line},
                         model_id="linking-writer", follows_json=follows_json)


def _draft(writer: TextModel, *, platform: str = "hupu", idea: str = "Why Heat still works",
           allowlist: list[str] | None = None, answer_format: str = "json"):
    catalog = packaged_catalog()
    return write_draft(kind="post", platform=catalog.platform(platform),
                       template=catalog.templates("post")[0], idea=idea,
                       profile="Likes crime films.", exemplar_texts=[("item 6", SOURCE)],
                       text=writer, fallback_tags=["crime"],
                       config=GenerationConfig(answer_format=answer_format,
                                               link_allowlist=allowlist or []))


def test_a_link_stays_only_when_a_source_item_or_the_allowlist_vouches_for_it() -> None:
    writer = LinkingWriter({
        "title": "Heat, again https://evil.example/t",
        "body": ("Read https://reviews.example/heat-1995. Cast: https://www.imdb.com/title/"
                 "tt0113277/ then javascript:alert(1) or https://evil.example/win now."),
        "links": ["https://reviews.example/heat-1995", "https://imdb.com@evil.example/",
                  "https://reviews.example/heat", "https://en.imdb.com/x"],
        "images": [{"prompt": "A diner at night https://evil.example/pic", "caption": "Diner"}],
    })
    draft = _draft(writer, allowlist=["imdb.com"])
    assert draft.title == "Heat, again"
    assert draft.body == ("Read https://reviews.example/heat-1995. Cast: https://www.imdb.com/"
                          "title/tt0113277/ then or now.")
    # verbatim from the source, and a subdomain of an allowlisted host; a look-alike userinfo
    # host and a shortened source link are not the same link
    assert draft.links == ["https://reviews.example/heat-1995", "https://en.imdb.com/x"]
    assert draft.images[0].prompt == "A diner at night"
    assert draft.removed_links == ["https://evil.example/t", "javascript:alert(1)",
                                   "https://evil.example/win", "https://imdb.com@evil.example/",
                                   "https://reviews.example/heat", "https://evil.example/pic"]
    assert "link dropped (not allowed or not an http(s) URL)" not in draft.fixes


def test_without_an_allowlist_only_the_sources_links_stay() -> None:
    writer = LinkingWriter({"title": "Heat", "body": "See https://www.imdb.com/title/tt0113277/ "
                            "and https://reviews.example/heat-1995",
                            "links": ["https://www.imdb.com/title/tt0113277/"]})
    draft = _draft(writer)
    assert draft.body == "See and https://reviews.example/heat-1995"
    assert draft.links == []
    assert draft.removed_links == ["https://www.imdb.com/title/tt0113277/"] * 2


def test_a_title_that_was_only_a_link_falls_back_to_the_idea_and_the_idea_is_cleaned() -> None:
    """The field-by-field path too; a link in the idea (which a fallback title copies) goes."""
    writer = LinkingWriter({}, line=" https://evil.example/only", follows_json=False)
    draft = _draft(writer, idea="Heat at www.evil.example/heat tonight", answer_format="fields",
                   platform="rednote")
    assert draft.title == "Heat at tonight" and "title from the idea" in draft.fixes
    assert draft.removed_links[0] == "www.evil.example/heat"
    # one per question: the title, the body and each picture (the field cleaning capitalises
    # a picture's answer)
    catalog = packaged_catalog()
    questions = field_asks("post", catalog.platform("rednote"), catalog.templates("post")[0])
    assert [url.lower() for url in draft.removed_links[1:]] == \
        ["https://evil.example/only"] * len(questions)
    assert not any("evil" in text for text in (draft.title, draft.body,
                                                *(i.prompt for i in draft.images)))


@pytest.mark.parametrize(("url", "kept"), [
    ("https://reviews.example/heat-1995", True),  # in the source
    ("https://imdb.com/title/tt0113277/", True),
    ("http://www.IMDB.com/x", True),
    ("www.imdb.com/x", True),
    ("https://notimdb.com/x", False),  # not a subdomain
    ("https://imdb.com.evil.example/x", False),
    ("https://imdb.com@evil.example/", False),
    ("https://evil.example\\@imdb.com/", False),
    ("javascript://imdb.com/%0aalert(1)", False),  # the host matches, the scheme does not
    ("ftp://imdb.com/file", False),
    ("data:text/html,hi", False),
    ("http://[::1", False),  # does not parse
])
def test_the_policy_of_one_link(url: str, kept: bool) -> None:
    policy = LinkPolicy.from_sources([SOURCE], ["imdb.com"])
    assert policy.allows(url) is kept


def test_links_are_found_without_their_sentence_punctuation() -> None:
    text = ("(see https://en.wikipedia.org/wiki/Heat_(1995_film)), javascript:alert(1); "
            "mailto:a@b.example. www.x.example, not a link: data: 5 films")
    assert find_links(text) == ["https://en.wikipedia.org/wiki/Heat_(1995_film)",
                                "javascript:alert(1)", "mailto:a@b.example", "www.x.example"]


def test_only_strings_are_cleaned_and_a_list_item_that_was_only_a_link_goes() -> None:
    policy = LinkPolicy.from_sources([], [])
    value = {"title": "Heat", "hashtags": ["#heat", "https://evil.example"], "n": 3,
             "images": [{"prompt": "javascript:x()", "caption": "c"}]}
    cleaned, removed = without_unsourced_links(value, policy)
    assert cleaned == {"title": "Heat", "hashtags": ["#heat"], "n": 3,
                       "images": [{"prompt": "", "caption": "c"}]}
    assert removed == ["https://evil.example", "javascript:x()"]


def test_the_allowlist_is_empty_by_default_and_takes_host_names_only() -> None:
    assert load_config(environ={}).generation.link_allowlist == []
    settings = load_config(environ={"TAILORMIND_GENERATION__LINK_ALLOWLIST": "[IMDb.com, a.b.]"})
    assert settings.generation.link_allowlist == ["imdb.com", "a.b"]
    for bad in ("[https://imdb.com]", "[imdb.com/x]", "['imdb.com:443']", "['-x.com']"):
        with pytest.raises(ConfigError, match="generation.link_allowlist"):
            load_config(environ={"TAILORMIND_GENERATION__LINK_ALLOWLIST": bad})
