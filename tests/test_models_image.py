"""The ``image`` role: the typographic card (embedded) and a tiny diffusers pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from tailormind.config import load_config
from tailormind.errors import ModelInputError
from tailormind.models.assets import card_font
from tailormind.models.image_card import ASPECT_RATIOS, CARD_LABEL, palette, size_for, wrap
from tailormind.models.images import load_image
from tailormind.models.registry import load_role
from tailormind.models.types import ImageRequest
from tests.tiny_models import tiny_text_to_image


@pytest.fixture
def card(tmp_path: Path):
    return load_role("image", load_config(environ={}, overrides={
        "models": {"cache_dir": str(tmp_path)}}))


@pytest.mark.parametrize("aspect", sorted(ASPECT_RATIOS))
def test_card_sizes(card, aspect: str) -> None:
    width, height = size_for(aspect, 640)
    assert max(width, height) == 640 and width % 2 == 0 and height % 2 == 0
    generated = card.generate(ImageRequest(prompt="Five quiet trails near the city", width=width,
                                           height=height, phrases=("easy", "scenic")))
    assert generated.image.size == (width, height) and generated.kind == "card"
    assert np.asarray(generated.image).std() > 5  # text was drawn on the gradient


def test_card_is_deterministic_and_palette_follows_the_profile(card) -> None:
    request = ImageRequest(prompt="Weekend hike", width=320, height=320, palette_hint="hiking fan")
    a = np.asarray(card.generate(request).image)
    card.cache = None
    b = np.asarray(card.generate(request).image)
    assert np.array_equal(a, b)
    other = ImageRequest(prompt="Weekend hike", width=320, height=320, palette_hint="jazz lover")
    assert not np.array_equal(a, np.asarray(card.generate(other).image))
    assert palette("hiking fan") == palette("hiking fan") != palette("jazz lover")


def test_card_font_covers_chinese() -> None:
    """Every character of a Chinese title has a real glyph, not the font's 'missing' box."""
    font = ImageFont.truetype(str(card_font()), 48)
    missing = font.getmask("\uffff").getbbox()  # a non-character: drawn as .notdef
    for ch in "周末徒步指南城市小众路线":
        assert font.getmask(ch).getbbox() != missing, ch
        assert font.getlength(ch) > 30


def test_chinese_titles_wrap_between_characters() -> None:
    font = ImageFont.truetype(str(card_font()), 40)
    lines = wrap("周末徒步指南：城市周边的五条小众路线 and some English words", font, 300)
    assert len(lines) > 2 and all(font.getlength(line) <= 300 for line in lines)
    assert "".join(lines).replace(" ", "") == "周末徒步指南：城市周边的五条小众路线andsomeEnglishwords"


def test_card_carries_its_label(card) -> None:
    plain = card.generate(ImageRequest(prompt="x", width=400, height=400)).image
    card.label = False
    card.cache = None
    unlabelled = card.generate(ImageRequest(prompt="x", width=400, height=400)).image
    corner = (slice(330, 400), slice(200, 400))
    assert not np.array_equal(np.asarray(plain)[corner], np.asarray(unlabelled)[corner])
    assert "card" in CARD_LABEL


def test_too_small_and_undecodable_images(card, tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="below 16x16"):
        card.generate(ImageRequest(prompt="x", width=8, height=8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(ModelInputError, match="broken.png: cannot decode image"):
        load_image(broken)
    with pytest.raises(ModelInputError, match="does not exist"):
        load_image(tmp_path / "missing.jpg")


@pytest.fixture(scope="module")
def diffusers_image(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("t2i")
    path = tiny_text_to_image(root / "pipeline")
    settings = load_config(environ={}, overrides={"models": {
        "cache": False,
        "image": {"backend": "diffusers", "path": str(path), "device": "cpu",
                  "options": {"num_inference_steps": 2}}}})
    return load_role("image", settings)


def test_diffusers_pipeline_reloads_and_is_seeded(diffusers_image) -> None:
    request = ImageRequest(prompt="a red kite over the sea", width=68, height=44, seed=3,
                           negative_prompt="blurry")
    first = diffusers_image.generate(request)
    assert first.kind == "generated" and first.image.size == (68, 44)  # exact, though /8 inside
    again = diffusers_image.generate(request)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    other = diffusers_image.generate(ImageRequest(prompt="a red kite over the sea", width=68,
                                                  height=44, seed=4))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))
    assert isinstance(first.image, Image.Image) and first.image.mode == "RGB"


def test_cached_image_keeps_its_kind(card) -> None:
    """A cache hit reports the kind that made the image (a card stays a card)."""
    request = ImageRequest(prompt="Kind check", width=64, height=64)
    first = card.generate(request)
    card.kind = "generated"  # as if another backend answered later under the same key
    again = card.generate(request)
    assert again.cached and again.kind == first.kind == "card"
