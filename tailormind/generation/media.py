"""Media for a draft: images through the ``image`` role, the video through the ``video`` role.

One image that fails (the model raises) does not sink the post: it is replaced by a typeset card
from the embedded ``card`` backend and the reason is recorded. A video that fails leaves the post
with its cover and storyboard and a recorded reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tailormind.config import Settings
from tailormind.errors import ModelError
from tailormind.generation.catalog import Platform
from tailormind.generation.writing import Draft, ImagePlan
from tailormind.models.registry import load_role
from tailormind.models.roles import ImageGenerator, VideoGenerator
from tailormind.models.types import GeneratedVideo, ImageRequest, Storyboard


@dataclass
class RenderedImage:
    plan: ImagePlan
    image: Image.Image
    kind: str  # "generated" or "card"
    model: str
    error: str | None = None  # why the configured model was not used


def card_role(settings: Settings) -> ImageGenerator:
    """The embedded card backend, whatever ``models.image`` is (the fallback for one image)."""
    data = settings.model_dump(mode="json")
    data["models"]["image"] = {"backend": "card"}
    return load_role("image", Settings.model_validate(data))


def image_request(draft: Draft, plan: ImagePlan, n: int, platform: Platform,
                  seed: int) -> ImageRequest:
    width, height = platform.image_size
    return ImageRequest(prompt=plan.prompt, width=width, height=height, seed=seed + n,
                        title=draft.title if n == 0 else (plan.caption or plan.prompt),
                        phrases=tuple(draft.hashtags[:3]), caption=plan.caption or None)


def render_images(draft: Draft, image: ImageGenerator, platform: Platform, seed: int,
                  fallback: ImageGenerator | None = None) -> list[RenderedImage]:
    out = []
    for n, plan in enumerate(draft.images):
        request = image_request(draft, plan, n, platform, seed)
        try:
            made = image.generate(request)
            out.append(RenderedImage(plan, made.image, made.kind, made.model))
        except ModelError as exc:
            if fallback is None:
                raise
            made = fallback.generate(request)
            out.append(RenderedImage(plan, made.image, made.kind, made.model,
                                     error=f"image {n + 1}: {image.backend} failed ({exc}); "
                                           f"a typeset card stands in"))
    return out


def storyboard(draft: Draft, platform: Platform, seed: int, fps: int = 24) -> Storyboard:
    width, height = platform.video_size
    return Storyboard(shots=tuple(draft.shots), width=width, height=height, fps=fps, seed=seed,
                      title=draft.title)


def render_video(draft: Draft, video: VideoGenerator, platform: Platform, out_path: Path,
                 seed: int) -> tuple[GeneratedVideo | None, str | None]:
    """The mp4 at ``out_path``, or (None, reason) when the video model fails."""
    try:
        return video.render(storyboard(draft, platform, seed), out_path), None
    except ModelError as exc:
        out_path.unlink(missing_ok=True)
        return None, f"video: {video.backend} failed ({exc}); the post keeps its storyboard"
