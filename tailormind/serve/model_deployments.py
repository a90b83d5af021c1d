"""One Ray Serve deployment per model role: the weights load once per replica, for a whole cluster.

Each deployment builds its role with :func:`tailormind.models.registry.load_role` from the app's
TailorMind config (a YAML path and/or an inline ``models:`` block), so the same backends run
in-process and behind Serve. Model calls run in a worker thread, one at a time per replica (an
``asyncio.Lock``), so health checks and queued requests stay responsive. ``TextModel.chat`` and
``Embedder.embed_one`` use ``@serve.batch`` so concurrent single requests (the OpenAI routes)
share one forward pass; ``TextModel.chat_batch`` does the same for the ``serve`` backend's
batches, so the API's concurrent profiles and posts share forward passes.

Default CPU shares are small so the whole app fits a 2-core laptop; GPU configs set ``num_gpus``
and CPUs per deployment in the Serve config.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from tailormind.config import Settings, load_config
from tailormind.core.backends import ROLE_SPECS
from tailormind.models.images import png_bytes
from tailormind.models.registry import load_role
from tailormind.models.types import GenerationParams, ImageRequest, Storyboard
from tailormind.serve.heap_trim import HeapTrimmer


def role_settings(config: str | None, models: dict[str, Any] | None) -> Settings:
    return load_config(config, overrides={"models": models} if models else None)


def params_from(data: dict[str, Any] | None) -> GenerationParams | None:
    if not data:
        return None
    return GenerationParams(**{**data, "stop": tuple(data.get("stop") or ())})


class _RoleHost:
    role_name = ""

    def __init__(self, config: str | None = None, models: dict[str, Any] | None = None) -> None:
        self.settings = role_settings(config, models)
        self.role = load_role(self.role_name, self.settings)
        self._lock = asyncio.Lock()
        self._trim = HeapTrimmer()
        #: ``@serve.batch`` method -> {batch size: batches of that size} on this replica.
        self.batch_sizes: dict[str, Counter[int]] = defaultdict(Counter)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            finally:
                self._trim()

    async def info(self) -> dict[str, Any]:
        """Provenance and counters of this replica's role, and the sizes of the batches its
        ``@serve.batch`` methods were called with."""
        return {**self.role.provenance, "stats": self.role.stats.as_dict(),
                "batch_sizes": {name: dict(sizes) for name, sizes in self.batch_sizes.items()}}

    async def check_health(self) -> None:
        if self.role is None:  # pragma: no cover - __init__ raises instead
            raise RuntimeError("role not loaded")


@serve.deployment(name=ROLE_SPECS["text"].deployment, max_ongoing_requests=64,
                  ray_actor_options={"num_cpus": 1})
class TextDeployment(_RoleHost):
    role_name = "text"

    async def chat_many(self, batch: list[list[dict]], params: dict | None,
                        schema: dict | None) -> list[dict[str, Any]]:
        completions = await self._run(self.role.complete, batch, params_from(params),
                                      json_schema=schema)
        return [{**c.to_json(), "cached": c.cached} for c in completions]

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def chat(self, requests: list[tuple[list[dict], dict | None, dict | None]]
                   ) -> list[dict[str, Any]]:
        """Concurrent single conversations, grouped by (params, schema) into batched calls."""
        self.batch_sizes["chat"][len(requests)] += 1
        answers = await self.chat_groups([([messages], params, schema)
                                          for messages, params, schema in requests])
        return [a[0] for a in answers]

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.05)
    async def chat_batch(self, requests: list[tuple[list[list[dict]], dict | None, dict | None]]
                         ) -> list[list[dict[str, Any]]]:
        """Concurrent batches of conversations (the ``serve`` text backend: several profiles or
        posts in flight), merged by (params, schema) into one forward batch each."""
        self.batch_sizes["chat_batch"][len(requests)] += 1
        return await self.chat_groups(requests)

    async def chat_groups(self, requests: list[tuple[list[list[dict]], dict | None, dict | None]]
                          ) -> list[list[dict[str, Any]]]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, (_, params, schema) in enumerate(requests):
            groups[repr((sorted((params or {}).items()), schema))].append(i)
        out: list[list[dict[str, Any]]] = [[] for _ in requests]
        for indices in groups.values():
            _, params, schema = requests[indices[0]]
            merged = [c for i in indices for c in requests[i][0]]
            answers = await self.chat_many(merged, params, schema)
            start = 0
            for i in indices:
                out[i] = answers[start : start + len(requests[i][0])]
                start += len(requests[i][0])
        return out


@serve.deployment(name=ROLE_SPECS["embed"].deployment, max_ongoing_requests=64,
                  ray_actor_options={"num_cpus": 0.5})
class EmbedDeployment(_RoleHost):
    role_name = "embed"

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self._run(self.role.embed, texts)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.02)
    async def embed_one(self, texts: list[str]) -> list[np.ndarray]:
        return list(await self.embed(texts))

    async def dim(self) -> int:
        return int(self.role.dim)


@serve.deployment(name=ROLE_SPECS["describe"].deployment, max_ongoing_requests=16,
                  ray_actor_options={"num_cpus": 1})
class DescribeDeployment(_RoleHost):
    role_name = "describe"

    async def describe(self, images: list[bytes], instruction: str,
                       params: dict | None) -> dict[str, Any]:
        completion = await self._run(self.role.describe, images, instruction, params_from(params))
        return completion.to_json()


@serve.deployment(name=ROLE_SPECS["clip"].deployment, max_ongoing_requests=32,
                  ray_actor_options={"num_cpus": 0.5})
class ClipDeployment(_RoleHost):
    role_name = "clip"

    async def image_features(self, images: list[bytes]) -> np.ndarray:
        return await self._run(self.role.image_features, images)

    async def text_features(self, texts: list[str]) -> np.ndarray:
        return await self._run(self.role.text_features, texts)


@serve.deployment(name=ROLE_SPECS["image"].deployment, max_ongoing_requests=16,
                  ray_actor_options={"num_cpus": 0.5})
class ImageDeployment(_RoleHost):
    role_name = "image"

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        generated = await self._run(self.role.generate, ImageRequest.from_dict(request))
        return {"png": png_bytes(generated.image), "kind": generated.kind,
                "model": generated.model}


@serve.deployment(name=ROLE_SPECS["video"].deployment, max_ongoing_requests=8,
                  ray_actor_options={"num_cpus": 0.5})
class VideoDeployment(_RoleHost):
    role_name = "video"

    async def render(self, storyboard: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="tailormind-video-") as tmp:
            path = Path(tmp) / "video.mp4"
            video = await self._run(self.role.render, Storyboard.from_dict(storyboard), path)
            return {"mp4": path.read_bytes(), "meta": video.meta()}


ROLE_DEPLOYMENTS = {
    "text": TextDeployment,
    "embed": EmbedDeployment,
    "describe": DescribeDeployment,
    "clip": ClipDeployment,
    "image": ImageDeployment,
    "video": VideoDeployment,
}
