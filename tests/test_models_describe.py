"""The ``describe`` role: a tiny Llava-shaped VLM through the transformers backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tailormind.config import load_config
from tailormind.errors import ModelInputError
from tailormind.models.media import encode_h264
from tailormind.models.registry import load_role
from tests.tiny_models import tiny_vlm


@pytest.fixture(scope="module")
def describer(tmp_path_factory: pytest.TempPathFactory):
    path = tiny_vlm(tmp_path_factory.mktemp("vlm") / "model")
    cache = tmp_path_factory.mktemp("describe-cache")
    return load_role("describe", load_config(environ={}, overrides={"models": {
        "cache_dir": str(cache),
        "describe": {"backend": "transformers", "path": str(path), "max_tokens": 6}}}))


def test_images_in_text_out(describer) -> None:
    red = Image.new("RGB", (40, 30), "red")
    one = describer.describe([red], "Describe the image.")
    two = describer.describe([red, Image.new("RGB", (40, 30), "blue")], "Describe the image.")
    assert one.completion_tokens <= 6 and isinstance(one.text, str)
    assert two.prompt_tokens > one.prompt_tokens  # each frame adds its image tokens
    again = describer.describe([red], "Describe the image.")
    assert again.cached and again.text == one.text
    assert describer.stats["cache_hits"] == 1


def test_video_is_described_as_head_and_tail(describer, tmp_path: Path) -> None:
    frames = [Image.new("RGB", (64, 64), (i * 10 % 255, 0, 0)) for i in range(4 * 20)]
    path = tmp_path / "long.mp4"
    encode_h264(frames, path, fps=4, width=64, height=64)
    video = describer.describe_video(path, "What happens?")
    assert video.tail is not None and video.duration_s == pytest.approx(20, abs=0.3)
    assert video.head.prompt_tokens == video.tail.prompt_tokens  # 4 frames each
    short = tmp_path / "short.mp4"
    encode_h264(frames[:20], short, fps=4, width=64, height=64)
    assert describer.describe_video(short, "What happens?").tail is None


def test_bad_inputs(describer, tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="at least one image"):
        describer.describe([], "x")
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    with pytest.raises(ModelInputError, match="junk.jpg: cannot decode image"):
        describer.describe([junk], "x")
