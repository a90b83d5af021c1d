"""``describe`` with a local vision-language model directory (``AutoModelForImageTextToText``).

The processor's chat template places one image token per frame before the instruction; greedy
decoding unless a temperature is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from tailormind.errors import ModelError
from tailormind.models.backend_config import resolve_device, resolve_dtype
from tailormind.models.memory import check_fits
from tailormind.models.roles import Describer
from tailormind.models.types import Completion, GenerationParams


class TransformersDescriber(Describer):
    def __init__(self, path: Path, *, device: str = "auto", dtype: str = "auto",
                 key: str = "models.describe", max_memory_gib: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        check_fits(path, key, max_gib=max_memory_gib)
        self.device = resolve_device(device)
        try:
            self.processor = AutoProcessor.from_pretrained(path)
            self.model = AutoModelForImageTextToText.from_pretrained(
                path, dtype=resolve_dtype(dtype, self.device)
            ).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"{key}: cannot load a vision-language model from {path}: {exc}") from exc
        if not getattr(self.processor, "chat_template", None):
            raise ModelError(f"{key}: the processor in {path} has no chat template")

    def _describe(self, images: list[Image.Image], instruction: str,
                  params: GenerationParams) -> Completion:
        import torch

        content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": instruction})
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                    add_generation_prompt=True)
        inputs = self.processor(images=images, text=prompt, return_tensors="pt").to(self.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if params.temperature > 0:
            sampling = {"do_sample": True, "temperature": params.temperature}
            if params.seed is not None:
                torch.manual_seed(params.seed)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, max_new_tokens=params.max_tokens, **sampling)
        new = generated[0, inputs["input_ids"].shape[1]:]
        text = self.processor.decode(new, skip_special_tokens=True).strip()
        return Completion(text=text, prompt_tokens=int(inputs["input_ids"].shape[1]),
                          completion_tokens=int(new.shape[0]), model=self.model_id,
                          finish_reason="length" if new.shape[0] >= params.max_tokens else "stop")
