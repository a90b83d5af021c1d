"""``clip`` with open_clip: a model name plus a local weights file (never a hub tag).

``options.model_config`` may name an open_clip model-config JSON (or a folder of them) for an
architecture open_clip does not ship; it is registered before the model is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tailormind.errors import ConfigError, ModelError
from tailormind.models.backend_config import BackendOptions, resolve_device
from tailormind.models.memory import check_fits
from tailormind.models.roles import ClipScorer


class OpenClipOptions(BackendOptions):
    model_config_file: Path | None = None


class OpenClipScorer(ClipScorer):
    def __init__(self, name: str | None, weights: Path, *, device: str = "auto",
                 options: OpenClipOptions | None = None, batch_size: int = 32,
                 key: str = "models.clip", max_memory_gib: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import open_clip

        if not name:
            raise ConfigError(f"{key}.model: the open_clip backend needs a model name "
                              f"(e.g. ViT-B-32); {key}.path is its weights file")
        options = options or OpenClipOptions()
        if options.model_config_file is not None:
            if not Path(options.model_config_file).exists():
                raise ModelError(f"{key}.options.model_config_file: {options.model_config_file} "
                                 f"does not exist")
            open_clip.add_model_config(str(options.model_config_file))
        if name not in open_clip.list_models():
            raise ConfigError(f"{key}.model: open_clip has no model {name!r} (see "
                              f"open_clip.list_models(), or set {key}.options.model_config_file)")
        check_fits(weights, key, max_gib=max_memory_gib)
        self.device = resolve_device(device)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=str(weights), device=self.device
            )
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelError(f"{key}: cannot load open_clip {name} from {weights}: {exc}") from exc
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(name)
        self.batch_size = batch_size

    def _image_features(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                pixels = torch.stack([self.preprocess(im) for im in
                                      images[start : start + self.batch_size]]).to(self.device)
                out.append(self.model.encode_image(pixels).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def _text_features(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(texts[start : start + self.batch_size]).to(self.device)
                out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)
