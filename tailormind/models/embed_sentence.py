"""``embed`` with sentence-transformers on a local model directory (default: the bundled MiniLM)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tailormind.errors import ModelError
from tailormind.models.backend_config import resolve_device
from tailormind.models.memory import check_fits
from tailormind.models.roles import Embedder


class SentenceTransformersEmbedder(Embedder):
    """``SentenceTransformer(path).encode`` — mean pooling and normalisation as the model defines."""

    def __init__(self, model_dir: Path, *, device: str = "auto", key: str = "models.embed",
                 max_memory_gib: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        check_fits(Path(model_dir), key, max_gib=max_memory_gib)
        self.device = resolve_device(device)  # GPU time is reported on cuda
        try:
            self.model = SentenceTransformer(str(model_dir), device=self.device,
                                             local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{key}: cannot load a sentence-transformers model from "
                             f"{model_dir}: {exc}") from exc
        self._dim = int(self.model.get_embedding_dimension()
                        if hasattr(self.model, "get_embedding_dimension")
                        else self.model.get_sentence_embedding_dimension())

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
