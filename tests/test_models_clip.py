"""The ``clip`` role: CLIPScore arithmetic and open_clip with local weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tailormind.config import load_config
from tailormind.core.vectors import clip_score_from_cosine
from tailormind.errors import ConfigError, ModelInputError, ModelNotConfiguredError
from tailormind.models.registry import load_role
from tests.tiny_models import tiny_open_clip


def test_clipscore_is_2_5_times_positive_cosine() -> None:
    np.testing.assert_allclose(clip_score_from_cosine(np.array([-0.3, 0.0, 0.2, 0.31, 1.0])),
                               [0.0, 0.0, 0.5, 0.775, 2.5], rtol=1e-6)


@pytest.fixture(scope="module")
def clip_settings(tmp_path_factory: pytest.TempPathFactory):
    name, weights, config_file = tiny_open_clip(tmp_path_factory.mktemp("clip"))
    return load_config(environ={}, overrides={"models": {"cache": False, "clip": {
        "backend": "open_clip", "model": name, "path": str(weights), "device": "cpu",
        "options": {"model_config_file": str(config_file)}}}})


def test_open_clip_shapes_ranges_determinism(clip_settings) -> None:
    scorer = load_role("clip", clip_settings)
    images = [Image.new("RGB", (50, 40), colour) for colour in ("red", "blue", "white")]
    texts = ["a red square", "a blue square"]
    similarity = scorer.similarity(images, texts)
    assert similarity.shape == (3, 2) and np.all(np.abs(similarity) <= 1.0 + 1e-5)
    np.testing.assert_allclose(scorer.similarity(images, texts), similarity, atol=1e-6)
    scores = scorer.clip_score(images[:2], texts)
    np.testing.assert_allclose(scores, 2.5 * np.maximum(np.diag(similarity[:2]), 0), atol=1e-5)
    assert np.all((scores >= 0) & (scores <= 2.5))
    with pytest.raises(ModelInputError, match="pairs images with texts"):
        scorer.clip_score(images, texts)


def test_open_clip_config_errors(clip_settings, tmp_path: Path) -> None:
    block = clip_settings.models.clip.model_dump()
    with pytest.raises(ConfigError, match=r"models\.clip\.model: open_clip has no model 'ViT-X'"):
        load_role("clip", load_config(environ={}, overrides={"models": {
            "clip": {**block, "model": "ViT-X", "options": {}}}}))
    with pytest.raises(ConfigError, match=r"models\.clip\.model: the open_clip backend needs"):
        load_role("clip", load_config(environ={}, overrides={"models": {
            "clip": {**block, "model": None}}}))


def test_unconfigured_clip_says_what_to_do() -> None:
    with pytest.raises(ModelNotConfiguredError) as info:
        load_role("clip", load_config(environ={}))
    message = str(info.value)
    assert "models.clip: not configured" in message and "falls back to text relevance" in message
    assert "open_clip" in message
