"""``video`` with a local diffusers text-to-video pipeline directory.

Each shot is generated as ``frames_per_shot`` frames at the model's native rate, then retimed to
the storyboard's duration and fps (frames held evenly), captions burnt in, and the shots joined and
encoded to H.264 mp4. Shots of a long storyboard are separate generations, as in the paper's
storyboard-driven video types.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tailormind.models.backend_config import BackendOptions
from tailormind.models.image_card import card_font_at, draw_caption
from tailormind.models.image_diffusers import load_pipeline, multiple_of
from tailormind.models.media import encode_h264
from tailormind.models.roles import VideoGenerator
from tailormind.models.types import GeneratedVideo, Storyboard


class DiffusersVideoOptions(BackendOptions):
    num_inference_steps: int = 25
    guidance_scale: float = 9.0
    frames_per_shot: int = 16
    crf: int = 20


class DiffusersVideo(VideoGenerator):
    def __init__(self, path: Path, *, device: str = "auto", dtype: str = "auto",
                 options: DiffusersVideoOptions | None = None, key: str = "models.video",
                 max_memory_gib: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = load_pipeline(path, device=device, dtype=dtype, key=key,
                                      max_memory_gib=max_memory_gib)
        self.device = str(getattr(self.pipeline, "device", ""))  # GPU time is reported on cuda
        self.options = options or DiffusersVideoOptions()
        # Stable Diffusion pipelines insist on multiples of 8 even when the VAE scales by less.
        self.scale = max(8, int(getattr(self.pipeline, "vae_scale_factor", 8) or 8))

    def _shot_frames(self, prompt: str, storyboard: Storyboard, seed: int) -> list[Image.Image]:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.inference_mode():
            result = self.pipeline(
                prompt=prompt,
                num_frames=self.options.frames_per_shot,
                width=multiple_of(storyboard.width, self.scale),
                height=multiple_of(storyboard.height, self.scale),
                num_inference_steps=self.options.num_inference_steps,
                guidance_scale=self.options.guidance_scale,
                generator=generator,
                output_type="np",
            )
        frames = np.asarray(result.frames)
        if frames.ndim == 5:  # (batch, frames, H, W, C)
            frames = frames[0]
        frames = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
        size = (storyboard.width, storyboard.height)
        return [Image.fromarray(f).convert("RGB").resize(size, Image.LANCZOS) for f in frames]

    def _render(self, storyboard: Storyboard, out_path: Path) -> GeneratedVideo:
        font = card_font_at(None, max(14, int(min(storyboard.width, storyboard.height) * 0.045)))
        seed = storyboard.seed or 0

        def frames() -> Iterator[Image.Image]:
            for i, shot in enumerate(storyboard.shots):
                clip = self._shot_frames(shot.prompt, storyboard, seed + i)
                n = max(1, round(shot.duration_s * storyboard.fps))
                for k in range(n):
                    frame = clip[min(len(clip) - 1, k * len(clip) // n)].copy()
                    if shot.caption:
                        draw_caption(frame, shot.caption, font)
                    yield frame

        count = encode_h264(frames(), out_path, fps=storyboard.fps, width=storyboard.width,
                            height=storyboard.height, crf=self.options.crf)
        return GeneratedVideo(path=out_path, duration_s=count / storyboard.fps, frames=count,
                              fps=storyboard.fps, kind=self.kind, model=self.model_id,
                              shot_kinds=[self.kind] * len(storyboard.shots))
