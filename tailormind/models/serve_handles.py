"""The ``serve`` backend: a role whose model runs in this project's Ray Serve deployment.

The process must be connected to the Ray cluster that runs the ``tailormind-models`` app
(``serve_configs/local.yaml`` or ``gpu.yaml``): inside a Ray job or Serve replica it already is;
elsewhere ``RAY_ADDRESS`` (default ``auto``) says where. Images and videos cross as encoded bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tailormind.config import ModelBackendConfig
from tailormind.core.atomic import write_bytes_atomic
from tailormind.core.backends import ROLE_SPECS
from tailormind.errors import ModelError
from tailormind.models.images import decode_png, png_bytes
from tailormind.models.roles import (
    ClipScorer,
    Describer,
    Embedder,
    ImageGenerator,
    TextModel,
    VideoGenerator,
)
from tailormind.models.types import (
    Completion,
    Conversation,
    GeneratedVideo,
    GenerationParams,
    ImageRequest,
    Storyboard,
)


class _Remote:
    """Calls one deployment's methods and turns Serve failures into :class:`ModelError`."""

    def __init__(self, handle: Any, key: str, timeout_s: float) -> None:
        self.handle, self.key, self.timeout_s = handle, key, timeout_s

    def __call__(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.handle, method).remote(*args).result(timeout_s=self.timeout_s)
        except TimeoutError as exc:
            raise ModelError(f"{self.key}: the Serve deployment did not answer {method} within "
                             f"{self.timeout_s} s") from exc
        except ModelError:
            raise
        except Exception as exc:  # Ray wraps the replica's exception; keep its message
            cause = getattr(exc, "cause", None) or exc
            raise ModelError(f"{self.key}: the Serve deployment failed in {method}: "
                             f"{type(cause).__name__}: {cause}") from exc


def build_serve_role(role: str, config: ModelBackendConfig, common: dict[str, Any]) -> Any:
    import ray
    from ray import serve

    key = f"models.{role}"
    if not ray.is_initialized():
        try:
            ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False)
        except ConnectionError as exc:
            raise ModelError(f"{key}: backend 'serve' needs a running Ray cluster with the Serve "
                             f"app {config.app!r} (`serve run serve_configs/local.yaml`); "
                             f"none found: {exc}") from exc
    name = config.deployment or ROLE_SPECS[role].deployment
    try:
        handle = serve.get_deployment_handle(name, app_name=config.app)
    except Exception as exc:  # Serve raises several types for "no such app/deployment"
        raise ModelError(f"{key}: no Serve deployment {name!r} in app {config.app!r} "
                         f"({type(exc).__name__}: {exc}); deploy serve_configs/local.yaml or set "
                         f"{key}.app / {key}.deployment") from exc
    remote = _Remote(handle, key, config.timeout_s)
    cls = {"text": ServeText, "embed": ServeEmbedder, "describe": ServeDescriber,
           "clip": ServeClip, "image": ServeImage, "video": ServeVideo}[role]
    extra: dict[str, Any] = {}
    if role == "text":
        extra = {"json_retries": config.json_retries,
                 "default_params": GenerationParams(max_tokens=config.max_tokens,
                                                    temperature=config.temperature)}
    elif role == "embed":
        extra = {"batch_size": config.batch_size}
    return cls(remote, **extra, **common)


class ServeText(TextModel):
    def __init__(self, remote: _Remote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote

    def _generate(self, batch: list[Conversation], params: GenerationParams,
                  json_schema: dict | None) -> list[Completion]:
        answers = self.remote("chat_batch", (batch, params.key(), json_schema))
        return [Completion(**{k: v for k, v in a.items() if k != "cached"}) for a in answers]


class ServeEmbedder(Embedder):
    def __init__(self, remote: _Remote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.remote("dim"))
        return self._dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.remote("embed", texts), dtype=np.float32)


class ServeDescriber(Describer):
    def __init__(self, remote: _Remote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote

    def _describe(self, images: list[Image.Image], instruction: str,
                  params: GenerationParams) -> Completion:
        answer = self.remote("describe", [png_bytes(i) for i in images], instruction, params.key())
        return Completion(**{k: v for k, v in answer.items() if k != "cached"})


class ServeClip(ClipScorer):
    def __init__(self, remote: _Remote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote

    def _image_features(self, images: list[Image.Image]) -> np.ndarray:
        return np.asarray(self.remote("image_features", [png_bytes(i) for i in images]))

    def _text_features(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.remote("text_features", texts))


class ServeImage(ImageGenerator):
    def __init__(self, remote: _Remote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote

    def _render(self, request: ImageRequest) -> Image.Image:
        answer = self.remote("generate", request.key())
        self.kind = answer["kind"]
        return decode_png(answer["png"])


class ServeVideo(VideoGenerator):
    def __init__(self, remote: _Remote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote

    def _render(self, storyboard: Storyboard, out_path: Path) -> GeneratedVideo:
        answer = self.remote("render", storyboard.key())
        write_bytes_atomic(out_path, answer["mp4"])
        meta = answer["meta"]
        return GeneratedVideo(path=out_path, **meta)
