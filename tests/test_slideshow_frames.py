"""The slideshow's frames: the faster caption bar and parallel resize give the same pixels as the
straightforward full-frame, one-frame-at-a-time rendering."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tailormind.models.image_card import card_font_at, draw_caption, wrap
from tailormind.models.types import Shot, Storyboard
from tailormind.models.video_slideshow import SlideshowVideo, _zoom, ordered_map


def caption_by_full_frame(image: Image.Image, caption: str, font) -> None:
    """The reference: a full-frame translucent overlay composited, then the text."""
    width, height = image.size
    margin = int(min(width, height) * 0.06)
    lines = wrap(caption, font, width - 2 * margin)[:3]
    line_height = int(font.size * 1.3)
    bar_height = line_height * len(lines) + margin // 2
    top = height - bar_height - margin
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle([0, top - margin // 4, width, top + bar_height],
                                      fill=(0, 0, 0, 150))
    image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        box = draw.textbbox((0, 0), line, font=font)
        draw.text(((width - (box[2] - box[0])) // 2, top + i * line_height), line, font=font,
                  fill=(255, 255, 255))


def noise(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [(720, 1280), (128, 128), (64, 40)])
def test_caption_bar_pixels_equal_the_full_frame_composite(size: tuple[int, int]) -> None:
    font = card_font_at(None, max(14, int(min(size) * 0.045)))
    for caption in ("A quiet trail at dawn, and what to pack for it 适合新手", "x"):
        fast, reference = noise(*size, seed=1), noise(*size, seed=1)
        draw_caption(fast, caption, font)
        caption_by_full_frame(reference, caption, font)
        assert np.array_equal(np.asarray(fast), np.asarray(reference))


def test_frames_equal_the_sequential_rendering() -> None:
    """Zoom, caption and crossfade frame by frame, in order, against ``_frames``."""
    video = SlideshowVideo(image_role=None, backend="slideshow", model_id="slideshow",
                           zoom=0.06, crossfade_s=0.25)
    storyboard = Storyboard(shots=(Shot("a", 1.0, "first caption"), Shot("b", 0.75, ""),
                                   Shot("c", 0.5, "third")), width=96, height=128, fps=8)
    stills = [noise(96, 128, seed) for seed in (1, 2, 3)]
    font = card_font_at(None, 14)
    fade = int(0.25 * 8)
    expected, previous_last = [], None
    for shot, still in zip(storyboard.shots, stills, strict=True):
        n = max(1, round(shot.duration_s * 8))
        for k in range(n):
            frame = _zoom(still, 1.0 + 0.06 * k / max(1, n - 1))
            if shot.caption:
                caption_by_full_frame(frame, shot.caption, font)
            if previous_last is not None and k < fade:
                frame = Image.blend(previous_last, frame, (k + 1) / (fade + 1))
            if k == n - 1:
                previous_last = frame
            expected.append(np.asarray(frame))
    found = [np.asarray(f) for f in video._frames(storyboard, stills)]
    assert len(found) == len(expected) == 8 + 6 + 4
    assert all(np.array_equal(a, b) for a, b in zip(found, expected, strict=True))


def test_ordered_map_keeps_order_bounds_the_queue_and_raises() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def slow_square(x: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01 * (x % 3))
        with lock:
            running -= 1
        return x * x

    squares = list(ordered_map(slow_square, range(20), workers=2, ahead=3))
    assert squares == [x * x for x in range(20)]
    assert most <= 2

    def boom(x: int) -> int:
        if x == 4:
            raise ValueError("frame 4")
        return x

    with pytest.raises(ValueError, match="frame 4"):
        list(ordered_map(boom, range(10)))
