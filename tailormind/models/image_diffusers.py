"""``image`` with a local diffusers text-to-image pipeline directory (``save_pretrained`` layout).

``DiffusionPipeline.from_pretrained(path, local_files_only=True)`` picks the pipeline class from
``model_index.json``; nothing is downloaded. Sizes are rounded down to the VAE's multiple of 8 and
the result resized to the exact request; a seed makes the output reproducible on one device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from tailormind.errors import ModelError
from tailormind.models.backend_config import BackendOptions, resolve_device, resolve_dtype
from tailormind.models.memory import check_fits
from tailormind.models.roles import ImageGenerator
from tailormind.models.types import ImageRequest


class DiffusersImageOptions(BackendOptions):
    num_inference_steps: int = 30
    guidance_scale: float = 7.0


def load_pipeline(path: Path, *, device: str, dtype: str, key: str,
                  max_memory_gib: float | None) -> Any:
    """A diffusers pipeline from a local directory, on ``device``, progress bars off."""
    import diffusers

    check_fits(path, key, max_gib=max_memory_gib)
    device = resolve_device(device)
    try:
        pipeline = diffusers.DiffusionPipeline.from_pretrained(
            str(path), dtype=resolve_dtype(dtype, device), local_files_only=True
        )
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelError(f"{key}: cannot load a diffusers pipeline from {path}: {exc}") from exc
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def multiple_of(value: int, step: int) -> int:
    return max(step, value // step * step)


class DiffusersImage(ImageGenerator):
    def __init__(self, path: Path, *, device: str = "auto", dtype: str = "auto",
                 options: DiffusersImageOptions | None = None, key: str = "models.image",
                 max_memory_gib: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = load_pipeline(path, device=device, dtype=dtype, key=key,
                                      max_memory_gib=max_memory_gib)
        self.device = str(getattr(self.pipeline, "device", ""))  # GPU time is reported on cuda
        self.options = options or DiffusersImageOptions()
        # Stable Diffusion pipelines insist on multiples of 8 even when the VAE scales by less.
        self.scale = max(8, int(getattr(self.pipeline, "vae_scale_factor", 8) or 8))

    def _render(self, request: ImageRequest) -> Image.Image:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(request.seed or 0)
        with torch.inference_mode():
            result = self.pipeline(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                width=multiple_of(request.width, self.scale),
                height=multiple_of(request.height, self.scale),
                num_inference_steps=self.options.num_inference_steps,
                guidance_scale=self.options.guidance_scale,
                generator=generator,
                output_type="pil",
            )
        return result.images[0]
