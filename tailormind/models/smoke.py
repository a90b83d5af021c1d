"""One tiny real call per role: what ``tailormind models check`` runs to prove a config works."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tailormind.config import Settings
from tailormind.errors import ModelError, ModelNotConfiguredError, TailorMindError
from tailormind.models.registry import load_role
from tailormind.models.types import GenerationParams, ImageRequest, Shot, Storyboard


@dataclass
class SmokeResult:
    role: str
    status: str  # ok | not configured | failed
    model: str
    load_s: float
    call_s: float
    detail: str


def check_role(role: str, settings: Settings) -> SmokeResult:
    started = time.perf_counter()
    try:
        model = load_role(role, settings)
    except ModelNotConfiguredError as exc:
        return SmokeResult(role, "not configured", "", 0.0, 0.0,
                           str(exc).split(" — ", 1)[-1].split(";")[0])
    except (ModelError, TailorMindError) as exc:
        return SmokeResult(role, "failed", "", time.perf_counter() - started, 0.0, str(exc))
    loaded = time.perf_counter()
    try:
        detail = _call(role, model)
    except TailorMindError as exc:
        return SmokeResult(role, "failed", model.model_id, loaded - started,
                           time.perf_counter() - loaded, str(exc))
    return SmokeResult(role, "ok", model.model_id, loaded - started, time.perf_counter() - loaded,
                       detail)


def _call(role: str, model: object) -> str:
    if role == "text":
        answer = model.complete([[{"role": "user", "content": "Say hello in three words."}]],
                                GenerationParams(max_tokens=16))[0]
        return f"{answer.completion_tokens} tokens: {answer.text[:60]!r}"
    if role == "embed":
        vectors = model.embed(["a quiet beach at dawn", "sunrise over the sea", "tax forms"])
        close, far = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
        return f"dim {vectors.shape[1]}; cos(related)={close:.2f} > cos(unrelated)={far:.2f}"
    if role == "image":
        image = model.generate(ImageRequest(prompt="Smoke test", width=256, height=256, seed=0))
        return f"{image.kind} {image.image.size[0]}x{image.image.size[1]}"
    if role == "video":
        with tempfile.TemporaryDirectory() as tmp:
            video = model.render(Storyboard(shots=(Shot("Smoke test", 1.0, "caption"),),
                                            width=256, height=256, fps=8),
                                 Path(tmp) / "smoke.mp4")
            return f"{video.kind} {video.frames} frames, {video.duration_s:.1f} s"
    if role == "clip":
        from PIL import Image

        score = model.clip_score([Image.new("RGB", (64, 64), "red")], ["a red square"])
        return f"CLIPScore {float(np.asarray(score)[0]):.3f}"
    if role == "describe":
        from PIL import Image

        answer = model.describe([Image.new("RGB", (64, 64), "red")], "Describe the image.",
                                GenerationParams(max_tokens=16))
        return f"{answer.text[:60]!r}"
    raise AssertionError(role)
