"""``video`` without a video model: a slideshow of frames from the ``image`` role.

Each shot becomes one still from the image role (a cover card when no image model is configured),
shown for the shot's duration with a slow zoom, its caption burnt in, and a short crossfade into the
next shot; encoded to H.264 mp4 with PyAV.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from tailormind.models.backend_config import BackendOptions
from tailormind.models.image_card import card_font_at, draw_caption
from tailormind.models.media import encode_h264
from tailormind.models.roles import ImageGenerator, VideoGenerator
from tailormind.models.types import GeneratedVideo, ImageRequest, Storyboard

T = TypeVar("T")
R = TypeVar("R")


class SlideshowOptions(BackendOptions):
    zoom: float = 0.06
    crossfade_s: float = 0.4
    crf: int = 23


class SlideshowVideo(VideoGenerator):
    kind = "slideshow"

    def __init__(self, image_role: ImageGenerator, *, zoom: float = 0.06,
                 crossfade_s: float = 0.4, crf: int = 23, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_role = image_role
        self.zoom = zoom
        self.crossfade_s = crossfade_s
        self.crf = crf

    def _render(self, storyboard: Storyboard, out_path: Path) -> GeneratedVideo:
        stills, kinds = [], []
        for i, shot in enumerate(storyboard.shots):
            seed = None if storyboard.seed is None else storyboard.seed + i
            generated = self.image_role.generate(ImageRequest(
                prompt=shot.prompt, width=storyboard.width, height=storyboard.height, seed=seed,
                title=storyboard.title if i == 0 and storyboard.title else shot.prompt,
                palette_hint=storyboard.palette_hint,
            ))
            stills.append(generated.image)
            kinds.append(generated.kind)
        frames = encode_h264(self._frames(storyboard, stills), out_path, fps=storyboard.fps,
                             width=storyboard.width, height=storyboard.height, crf=self.crf)
        return GeneratedVideo(path=out_path, duration_s=frames / storyboard.fps, frames=frames,
                              fps=storyboard.fps, kind=self.kind, model=self.model_id,
                              shot_kinds=kinds)

    def _frames(self, storyboard: Storyboard, stills: list[Image.Image]) -> Iterator[Image.Image]:
        fps = storyboard.fps
        font = card_font_at(getattr(self.image_role, "font_path", None),
                            max(14, int(min(storyboard.width, storyboard.height) * 0.045)))
        fade = max(0, int(self.crossfade_s * fps))
        counts = [max(1, round(shot.duration_s * fps)) for shot in storyboard.shots]
        zooms = ((still, 1.0 + self.zoom * k / max(1, n - 1))
                 for still, n in zip(stills, counts, strict=True) for k in range(n))
        zoomed = ordered_map(lambda job: _zoom(*job), zooms)  # the resize is most of the time
        previous_last: Image.Image | None = None
        for shot, n in zip(storyboard.shots, counts, strict=True):
            for k in range(n):
                frame = next(zoomed)
                if shot.caption:
                    draw_caption(frame, shot.caption, font)
                if previous_last is not None and k < fade:
                    frame = Image.blend(previous_last, frame, (k + 1) / (fade + 1))
                if k == n - 1:
                    previous_last = frame
                yield frame


def ordered_map(function: Callable[[T], R], jobs: Iterable[T], *, workers: int = 2,
                ahead: int = 4) -> Iterator[R]:
    """``map(function, jobs)`` on ``workers`` threads, in order, at most ``ahead`` results
    waiting (PIL releases the GIL while it resamples, so two cores resize two frames at once)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        waiting: deque[Future[R]] = deque()
        for job in jobs:
            waiting.append(pool.submit(function, job))
            if len(waiting) >= ahead:
                yield waiting.popleft().result()
        while waiting:
            yield waiting.popleft().result()


def _zoom(image: Image.Image, factor: float) -> Image.Image:
    """Centre crop by ``factor`` and resize back: a slow push-in."""
    if factor <= 1.0:
        return image.copy()
    width, height = image.size
    w, h = width / factor, height / factor
    box = ((width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2)
    return image.resize((width, height), Image.BILINEAR, box=box)
