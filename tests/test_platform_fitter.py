"""The platform fitter (``generation/writing.py: fit_to_platform``): each platform's limits on the
title, body words, hashtags, images, links and video length, on answers just under, at and just
over each limit, and the fixes it records — expected outputs written out by hand."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from tailormind.generation.catalog import packaged_catalog
from tailormind.generation.writing import Draft, ImagePlan, clean_hashtag, fit_to_platform
from tailormind.models.types import Shot

#: The limits of the packaged platform files, written out here (README "Generation").
LIMITS: dict[str, dict[str, Any]] = {
    "rednote": {"title": 40, "words": 180, "hashtags": (3, 8), "images": (1, 4), "links": False},
    "hupu": {"title": 60, "words": 250, "hashtags": (0, 0), "images": (0, 2), "links": True},
    "bilibili": {"title": 60, "words": 120, "hashtags": (2, 6), "images": (1, 1), "links": False},
}
PLATFORMS = tuple(LIMITS)
TAGS = ["hiking", "sci fi", "drama", "noir", "jazz", "cats", "film"]  # the source items' tags
CUT = "title cut to {} characters"
TOPPED = "hashtags topped up from the source items' tags"
DROPPED = "link dropped (not allowed or not an http(s) URL)"


def fit(platform: str, kind: str = "post", idea: str = "A walk through their favourite films",
        fallback_tags: list[str] | None = None, **value: Any) -> Draft:
    catalog = packaged_catalog()
    template = catalog.templates(kind)[0]
    return fit_to_platform(value, kind=kind, platform=catalog.platform(platform), idea=idea,
                           template=template, fallback_tags=TAGS if fallback_tags is None
                           else fallback_tags, ugc_chars=300)


def ok_tags(platform: str) -> list[str]:
    """As many hashtags as the platform's minimum (no fix needed)."""
    return [f"#t{i}" for i in range(LIMITS[platform]["hashtags"][0])]


def ok_images(platform: str) -> list[dict[str, str]]:
    return [{"prompt": f"picture {i}", "caption": f"c{i}"}
            for i in range(LIMITS[platform]["images"][0])]


def ok_post(platform: str, **value: Any) -> Draft:
    """A post whose every other field is within the platform's limits."""
    return fit(platform, **{"title": "Short title", "body": "A short body.",
                            "hashtags": ok_tags(platform), "images": ok_images(platform),
                            **value})


def test_the_packaged_platform_files_have_the_documented_limits() -> None:
    catalog = packaged_catalog()
    assert sorted(catalog.platforms) == sorted(PLATFORMS)
    for name, limits in LIMITS.items():
        p = catalog.platform(name)
        assert (p.title_max_chars, p.body_max_words, p.hashtags, p.images, p.links,
                p.video_seconds) == (limits["title"], limits["words"], limits["hashtags"],
                                     limits["images"], limits["links"], (8.0, 45.0)), name


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_post_within_every_limit_is_unchanged(platform: str) -> None:
    draft = ok_post(platform)
    assert draft.fixes == []
    assert (draft.title, draft.body, draft.hashtags) == ("Short title", "A short body.",
                                                         ok_tags(platform))
    assert [asdict(i) for i in draft.images] == ok_images(platform)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_title_at_and_just_over_the_limit(platform: str) -> None:
    limit = LIMITS[platform]["title"]
    at = "x" * (limit - 5) + " yyyy"  # exactly `limit` characters
    assert len(at) == limit
    draft = ok_post(platform, title=at)
    assert draft.title == at and draft.fixes == []
    # one character over: cut at the last word boundary before limit - 1, plus an ellipsis
    over = "x" * (limit - 5) + " yyyyy"
    draft = ok_post(platform, title=over)
    assert draft.title == "x" * (limit - 5) + "…"
    assert draft.fixes == [CUT.format(limit)]
    # no space to cut at: limit - 1 characters and the ellipsis, exactly `limit` in all
    draft = ok_post(platform, title="z" * (limit + 1))
    assert draft.title == "z" * (limit - 1) + "…" and len(draft.title) == limit
    assert draft.fixes == [CUT.format(limit)]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_body_at_and_just_over_the_word_limit(platform: str) -> None:
    n = LIMITS[platform]["words"]
    at = " ".join(f"w{i}" for i in range(1, n + 1))
    draft = ok_post(platform, body=at)
    assert draft.body == at and draft.fixes == []
    over = " ".join([f"w{i}" for i in range(1, n)] + ["last,", "extra"])  # n + 1 words
    draft = ok_post(platform, body=over)
    # the first n words, the trailing comma dropped, an ellipsis
    assert draft.body == " ".join([f"w{i}" for i in range(1, n)] + ["last"]) + "…"
    assert draft.fixes == [f"body cut to {n} words"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_empty_title_and_body_come_from_the_idea(platform: str) -> None:
    draft = ok_post(platform, title="", body="  ")
    assert draft.title == draft.body == "A walk through their favourite films"
    assert draft.fixes == ["title from the idea", "body from the idea"]


def test_hashtags_cleaned_deduplicated_and_capped_on_rednote() -> None:
    raw = ["#sci fi!", "SciFi", "#", "trail-running", *(f"#{c}" for c in "abcdefg")]
    draft = ok_post("rednote", hashtags=raw)
    # "#sci fi!" -> "#scifi"; "SciFi" repeats it (case-insensitive); "#" is empty: 9 left -> 8
    assert draft.hashtags == ["#scifi", "#trail-running", "#a", "#b", "#c", "#d", "#e", "#f"]
    assert draft.fixes == ["hashtags capped at 8"]
    eight = [f"#h{i}" for i in range(8)]
    assert ok_post("rednote", hashtags=eight).hashtags == eight  # at the limit: kept
    assert ok_post("rednote", hashtags="#a, #b #c").hashtags == ["#a", "#b", "#c"]  # one string


def test_too_few_hashtags_are_topped_up_from_the_source_tags() -> None:
    # "Hiking" would repeat "#hiking"; "sci fi" -> "#scifi"; "drama" reaches the minimum of 3
    draft = fit("rednote", title="T", body="B", hashtags=["hiking"], images=ok_images("rednote"),
                fallback_tags=["Hiking", "sci fi", "drama", "noir"])
    assert draft.hashtags == ["#hiking", "#scifi", "#drama"]
    assert draft.fixes == [TOPPED]
    # not enough source tags: as many as there are, still recorded
    draft = fit("rednote", title="T", body="B", hashtags=[], images=ok_images("rednote"),
                fallback_tags=["jazz"])
    assert draft.hashtags == ["#jazz"] and draft.fixes == [TOPPED]
    draft = fit("bilibili", title="T", body="B", hashtags=["#one"], images=ok_images("bilibili"),
                fallback_tags=["two words", "three"])
    assert draft.hashtags == ["#one", "#twowords"] and draft.fixes == [TOPPED]


def test_hupu_takes_no_hashtags_and_bilibili_at_most_six() -> None:
    draft = ok_post("hupu", hashtags=["#a"])
    assert draft.hashtags == [] and draft.fixes == ["hashtags capped at 0"]
    assert ok_post("hupu", hashtags=[]).fixes == []  # none wanted, none given: nothing to fix
    draft = ok_post("bilibili", hashtags=[f"#b{i}" for i in range(7)])
    assert draft.hashtags == [f"#b{i}" for i in range(6)]
    assert draft.fixes == ["hashtags capped at 6"]


def test_clean_hashtag() -> None:
    assert clean_hashtag("sci fi!") == "#scifi"
    assert clean_hashtag("##Noir") == "#Noir"
    assert clean_hashtag("电影 推荐") == "#电影推荐"
    assert clean_hashtag("x" * 40) == "#" + "x" * 30
    assert clean_hashtag("!!!") is None and clean_hashtag("#") is None


@pytest.mark.parametrize(("platform", "given", "kept", "fixes"), [
    ("rednote", 5, 4, ["images capped at 4"]),
    ("rednote", 4, 4, []),
    ("hupu", 3, 2, ["images capped at 2"]),
    ("hupu", 2, 2, []),
    ("hupu", 0, 0, []),
    ("bilibili", 2, 1, ["images capped at 1"]),
])
def test_images_capped(platform: str, given: int, kept: int, fixes: list[str]) -> None:
    images = [{"prompt": f"p{i}", "caption": f"c{i}"} for i in range(given)]
    draft = ok_post(platform, images=images)
    assert [asdict(i) for i in draft.images] == images[:kept]
    assert draft.fixes == fixes


@pytest.mark.parametrize("platform", ["rednote", "bilibili"])
def test_a_post_without_images_gets_one_from_the_title(platform: str) -> None:
    draft = ok_post(platform, title="Night trails", images=[{"prompt": "", "caption": "x"}])
    assert draft.images == [ImagePlan("Night trails", "Night trails")]  # empty prompt skipped
    assert draft.fixes == ["image prompt from the title"]


def test_links_only_on_hupu_and_only_http_urls() -> None:
    links = ["https://a.example/x", "ftp://files.example/y", "http://b.example",
             "see http://c.example"]
    draft = ok_post("hupu", links=links)
    assert draft.links == ["https://a.example/x", "http://b.example"]
    assert draft.fixes == [DROPPED, DROPPED]
    four = [f"https://site{i}.example/p" for i in range(4)]
    draft = ok_post("hupu", links=four)
    assert draft.links == four[:3] and draft.fixes == ["links capped at 3"]
    draft = ok_post("hupu", links="https://a.example/x http://b.example")  # one string
    assert draft.links == ["https://a.example/x", "http://b.example"] and draft.fixes == []
    for platform in ("rednote", "bilibili"):
        draft = ok_post(platform, links=["https://a.example/x", "http://b.example"])
        assert draft.links == [] and draft.fixes == [DROPPED, DROPPED], platform


def test_every_fix_of_one_over_limit_hupu_answer_in_order() -> None:
    draft = fit("hupu", title="t" * 61, body=" ".join(["word"] * 251),
                hashtags=["#nba"], images=[{"prompt": f"p{i}"} for i in range(3)],
                links=["https://a.example/x", "mailto:me@example.com"])
    assert draft.title == "t" * 59 + "…"
    assert draft.body == " ".join(["word"] * 250) + "…"
    assert (draft.hashtags, len(draft.images), draft.links) == ([], 2, ["https://a.example/x"])
    assert draft.fixes == [CUT.format(60), "body cut to 250 words", "hashtags capped at 0",
                           "images capped at 2", DROPPED]


def _video(**value: Any) -> Draft:
    return fit("bilibili", kind="video", **{"title": "Three scenes", "introduction": "Intro.",
                                            "hashtags": ["#a", "#b"], **value})


def test_video_shots_clamped_to_1_to_10_seconds() -> None:
    draft = _video(storyboard=[{"prompt": "opening", "duration": 3, "caption": "Hi"},
                               {"prompt": "middle", "duration": 90, "caption": "Look"},
                               {"prompt": "end", "duration": "soon", "caption": "Bye"},
                               {"prompt": "", "duration": 5}])  # no prompt: dropped
    assert draft.shots == [Shot("opening", 3.0, "Hi"), Shot("middle", 10.0, "Look"),
                           Shot("end", 4.0, "Bye")]  # "soon" is no number: the default 4 s
    assert draft.fixes == ["shot 2: duration 90 s clamped to 10 s"]  # 17 s in all: in [8, 45]
    assert draft.images == [ImagePlan("Three scenes: opening", "Three scenes")]
    draft = _video(storyboard=[{"prompt": "a", "duration": 0.5}, {"prompt": "b", "duration": 8}])
    assert [s.duration_s for s in draft.shots] == [1.0, 8.0]
    assert draft.fixes == ["shot 1: duration 0.5 s clamped to 1 s"]


def test_video_length_scaled_into_8_to_45_seconds() -> None:
    draft = _video(storyboard=[{"prompt": "a", "duration": 2}, {"prompt": "b", "duration": 2}])
    assert [s.duration_s for s in draft.shots] == [4.0, 4.0]  # 4 s -> 8 s
    assert draft.fixes == ["storyboard scaled from 4 s to 8 s"]
    draft = _video(storyboard=[{"prompt": f"s{i}", "duration": 10} for i in range(6)])
    assert [s.duration_s for s in draft.shots] == [7.5] * 6  # 60 s -> 45 s
    assert draft.fixes == ["storyboard scaled from 60 s to 45 s"]
    draft = _video(storyboard=[{"prompt": "a", "duration": 4}, {"prompt": "b", "duration": 4}])
    assert draft.fixes == []  # exactly 8 s


def test_a_video_without_a_usable_storyboard_uses_the_template_parts() -> None:
    draft = _video(storyboard="not a list")
    structure = packaged_catalog().templates("video")[0].structure
    assert draft.shots == [Shot(f"Three scenes: {part}", 4.0, part.capitalize())
                           for part in structure]
    assert draft.fixes == ["storyboard built from the template's parts (none usable in the answer)"]


def test_video_introduction_cut_to_the_platform_words() -> None:
    draft = _video(introduction=" ".join(["so"] * 121),
                   storyboard=[{"prompt": "a", "duration": 8}])
    assert draft.body == " ".join(["so"] * 120) + "…"
    assert draft.fixes == ["introduction cut to 120 words"]
