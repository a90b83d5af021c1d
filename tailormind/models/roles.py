"""The six model roles: small interfaces every backend implements.

Code outside ``tailormind/models/`` asks :func:`tailormind.models.registry.load_role` for a role
and only ever sees these classes (their inputs and outputs are in :mod:`tailormind.models.types`).
Each role's public method goes through the on-disk :class:`~tailormind.models.cache.CallCache`
(key = backend, model, inputs, params) with :func:`~tailormind.models.cache.cached_batch`, then
calls the backend's one private method for the misses. Counters in
:class:`~tailormind.models.types.RoleStats` make every fallback and failure visible to the caller
instead of hidden.

Every role also keeps ``busy_seconds``, the time spent in its backend (cache hits cost nothing),
and ``gpu_seconds``, the part of it spent by a backend whose model sits on a CUDA device
(:attr:`Role.on_gpu`); :func:`busy_meter` sums them over roles so a caller can charge the
difference to its own stages (the generator's ``StepClock``, the profiler).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from tailormind.core.atomic import atomic_path, write_bytes_atomic
from tailormind.core.vectors import clip_score_from_cosine, unit_rows
from tailormind.errors import ModelInputError
from tailormind.models.cache import CallCache, Codec, cached_batch
from tailormind.models.conversation import check_conversation, message_key, retry_message
from tailormind.models.images import ImageInput, decode_png, image_digest, load_image, png_bytes
from tailormind.models.json_repair import JsonAnswerError, parse_json_answer
from tailormind.models.types import (
    Completion,
    Conversation,
    GeneratedImage,
    GeneratedVideo,
    GenerationParams,
    ImageRequest,
    JsonAnswer,
    RoleStats,
    Storyboard,
    VideoDescription,
)

T = TypeVar("T")


def _load_completion(cache: CallCache, key: str) -> Completion | None:
    hit = cache.get_json(key)
    return Completion(**hit, cached=True) if hit is not None else None


COMPLETIONS: Codec[Completion] = Codec(
    _load_completion, lambda cache, key, value: cache.put_json(key, value.to_json()))
VECTORS: Codec[np.ndarray] = Codec(CallCache.get_array, CallCache.put_array)


class Role(ABC):
    """Common state: the backend/model id (for provenance), the call cache and the counters."""

    role: str = ""
    #: seconds spent in the backend (cache misses only), and the part of it on a CUDA device
    busy_seconds: float = 0.0
    gpu_seconds: float = 0.0

    def __init__(self, *, backend: str, model_id: str, cache: CallCache | None = None) -> None:
        self.backend = backend
        self.model_id = model_id
        self.cache = cache
        self.stats = RoleStats()
        #: backend settings that change the output (decoding options); part of every cache key
        self.cache_salt: dict[str, Any] = {}

    @property
    def provenance(self) -> dict[str, str]:
        """What to record beside an output: which backend and model made it."""
        return {"role": self.role, "backend": self.backend, "model": self.model_id}

    @property
    def on_gpu(self) -> bool:
        """True when this backend runs its model on a CUDA device (its ``device``): its busy time
        is then reported as GPU time. Remote backends (HTTP, Serve handles) cannot tell: False."""
        return str(getattr(self, "device", "") or "").startswith("cuda")

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """Charge the time of the enclosed backend call to ``busy_seconds`` (and
        ``gpu_seconds`` when :attr:`on_gpu`)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.busy_seconds += elapsed
            if self.on_gpu:
                self.gpu_seconds += elapsed

    def _cache_key(self, kind: str, payload: Any) -> str | None:
        if self.cache is None:
            return None
        if self.cache_salt:
            payload = {"payload": payload, "salt": self.cache_salt}
        return self.cache.key(self.backend, self.model_id, kind, payload)

    def _cached(self, kind: str, payloads: Sequence[Any], codec: Codec[T],
                compute: Callable[[list[int]], Sequence[T]]) -> list[T]:
        """One result per payload: cached ones reused, the misses' indices computed in one call
        of ``compute`` and stored (see :func:`~tailormind.models.cache.cached_batch`)."""
        keys = [self._cache_key(kind, payload) for payload in payloads]
        return cached_batch(self.cache, keys, codec, compute, self.stats)


class TextModel(Role):
    """``text``: chat completion over a batch of conversations, optionally as validated JSON.

    A conversation whose last message is from the ``assistant`` is *continued*: the answer is
    what follows that message (a pre-filled start such as ``"Title:"``), without the prefill.
    ``follows_json`` says whether the model can be trusted with a whole JSON object per answer;
    callers ask a model that cannot (a 135M model) field by field in plain text instead.
    """

    role = "text"

    def __init__(self, *, json_retries: int = 2, default_params: GenerationParams | None = None,
                 follows_json: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.json_retries = json_retries
        self.default_params = default_params or GenerationParams()
        self.follows_json = follows_json

    @abstractmethod
    def _generate(
        self, batch: list[Conversation], params: GenerationParams, json_schema: dict | None
    ) -> list[Completion]:
        """Backend: one completion per conversation, in order."""

    def complete(
        self,
        batch: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        json_schema: dict | None = None,
    ) -> list[Completion]:
        """One completion per conversation; cached answers are reused, the rest run as one batch."""
        params = params or self.default_params
        batch = [list(conversation) for conversation in batch]
        for conversation in batch:
            check_conversation(conversation)
        payloads = [{"messages": message_key(c), "params": params.key(), "schema": json_schema}
                    for c in batch]
        results = self._cached("chat", payloads, COMPLETIONS, lambda todo: self._fresh(
            [batch[i] for i in todo], params, json_schema))
        self.stats["calls"] += len(batch)
        return results

    def _fresh(self, batch: list[Conversation], params: GenerationParams,
               json_schema: dict | None) -> list[Completion]:
        """The backend's completions, timed (per answer, unless it timed them) and counted."""
        started = time.perf_counter()
        with self._busy():
            fresh = self._generate(batch, params, json_schema)
        elapsed = time.perf_counter() - started
        for completion in fresh:
            if not completion.seconds:
                completion.seconds = elapsed / len(batch)
            self.stats["prompt_tokens"] += completion.prompt_tokens
            self.stats["completion_tokens"] += completion.completion_tokens
        return fresh

    def complete_json(
        self,
        batch: Sequence[Conversation],
        schema: dict,
        params: GenerationParams | None = None,
        *,
        retries: int | None = None,
    ) -> list[JsonAnswer]:
        """Answers parsed as JSON and validated against ``schema``.

        A malformed answer is repaired (code fences, trailing commas, truncation, Python literals);
        if that fails, the model is re-asked with the parse error, at most ``retries`` times
        (default: the role's ``json_retries``). What still fails comes back with ``value=None``
        and ``error`` set, and is counted in ``stats["json_failed"]`` — never raised.
        """
        retries = self.json_retries if retries is None else retries
        conversations = [list(c) for c in batch]
        answers = [JsonAnswer(value=None, completions=[], attempts=0) for _ in conversations]
        pending = list(range(len(conversations)))
        for attempt in range(retries + 1):
            if not pending:
                break
            completions = self.complete([conversations[i] for i in pending], params,
                                        json_schema=schema)
            still = []
            for i, completion in zip(pending, completions, strict=True):
                if not _take_json_answer(answers[i], completion, attempt, schema):
                    conversations[i] = conversations[i] + [
                        {"role": "assistant", "content": completion.text},
                        {"role": "user", "content": retry_message(str(answers[i].error), schema)},
                    ]
                    still.append(i)
            if attempt and completions:
                self.stats["json_retried"] += len(pending)
            pending = still
        for answer in answers:
            if answer.ok:
                self.stats["json_repaired" if answer.repaired else "json_ok"] += 1
            else:
                self.stats["json_failed"] += 1
        return answers


def _take_json_answer(answer: JsonAnswer, completion: Completion, attempt: int,
                      schema: dict) -> bool:
    """Record one attempt's completion on ``answer``; True when it parsed and validated."""
    answer.completions.append(completion)
    answer.attempts = attempt + 1
    try:
        answer.value, answer.repaired = parse_json_answer(completion.text, schema)
    except JsonAnswerError as exc:
        answer.error = str(exc)
        return False
    answer.error = None
    return True


class Embedder(Role):
    """``embed``: texts -> L2-normalised float32 matrix ``(len(texts), dim)``, batched and cached."""

    role = "embed"

    def __init__(self, *, batch_size: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Backend: raw embeddings of one batch (normalised by the caller)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding width."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit float32 row per text; cached rows reused, the rest encoded ``batch_size``
        at a time."""
        texts = [str(t) for t in texts]
        rows = self._cached("embed", texts, VECTORS,
                            lambda todo: self._encode_unit([texts[i] for i in todo]))
        self.stats["calls"] += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def _encode_unit(self, texts: list[str]) -> list[np.ndarray]:
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            with self._busy():
                raw = self._encode(texts[start : start + self.batch_size])
            rows.extend(unit_rows(raw, dtype=np.float32))
        return rows


class Describer(Role):
    """``describe``: image(s) + instruction -> text; video via frames of its first/last seconds."""

    role = "describe"

    def __init__(self, *, default_params: GenerationParams | None = None,
                 window_s: float = 8.0, frames_per_window: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_params = default_params or GenerationParams(max_tokens=256)
        self.window_s = window_s
        self.frames_per_window = frames_per_window

    @abstractmethod
    def _describe(self, images: list[Image.Image], instruction: str,
                  params: GenerationParams) -> Completion:
        """Backend: one description of these frames."""

    def describe(self, images: Sequence[ImageInput], instruction: str,
                 params: GenerationParams | None = None) -> Completion:
        """One description of these frames together (cached)."""
        params = params or self.default_params
        frames = [load_image(image) for image in images]
        if not frames:
            raise ModelInputError("describe needs at least one image")
        payload = {"images": [image_digest(f) for f in frames], "instruction": instruction,
                   "params": params.key()}
        self.stats["calls"] += 1
        [completion] = self._cached("describe", [payload], COMPLETIONS,
                                    lambda _: [self._fresh(frames, instruction, params)])
        return completion

    def _fresh(self, frames: list[Image.Image], instruction: str,
               params: GenerationParams) -> Completion:
        with self._busy():
            completion = self._describe(frames, instruction, params)
        self.stats["completion_tokens"] += completion.completion_tokens
        return completion

    def describe_video(self, path: str | Path, instruction: str,
                       params: GenerationParams | None = None) -> VideoDescription:
        """Frames from the first and the last ``window_s`` seconds, described separately.

        A video no longer than one window gets only ``head``.
        """
        from tailormind.models.media import sample_video_windows

        windows = sample_video_windows(path, self.window_s, self.frames_per_window)
        head = self.describe(windows.head, instruction, params)
        tail = self.describe(windows.tail, instruction, params) if windows.tail else None
        return VideoDescription(head=head, tail=tail, duration_s=windows.duration_s)


class ClipScorer(Role):
    """``clip``: cosine similarity between images and texts in a joint space.

    ``clip_score(images, texts)`` is the paired CLIPScore ``2.5 · max(cos(I_i, T_i), 0)``.
    """

    role = "clip"

    @abstractmethod
    def _image_features(self, images: list[Image.Image]) -> np.ndarray:
        """Backend: image embeddings (any norm)."""

    @abstractmethod
    def _text_features(self, texts: list[str]) -> np.ndarray:
        """Backend: text embeddings (any norm)."""

    def image_features(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Unit float32 image embeddings, one row per image."""
        frames = [load_image(image) for image in images]
        self.stats["images"] += len(frames)
        with self._busy():
            raw = self._image_features(frames)
        return unit_rows(raw, dtype=np.float32)

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """Unit float32 text embeddings, one row per text."""
        self.stats["texts"] += len(texts)
        with self._busy():
            raw = self._text_features(list(texts))
        return unit_rows(raw, dtype=np.float32)

    def similarity(self, images: Sequence[ImageInput], texts: Sequence[str]) -> np.ndarray:
        """Cosine matrix ``(len(images), len(texts))`` in [-1, 1]."""
        return self.image_features(images) @ self.text_features(texts).T

    def clip_score(self, images: Sequence[ImageInput], texts: Sequence[str]) -> np.ndarray:
        """Paired CLIPScore per (image_i, text_i), in [0, 2.5]."""
        if len(images) != len(texts):
            raise ModelInputError(f"clip_score pairs images with texts: {len(images)} images, "
                                  f"{len(texts)} texts")
        cos = np.sum(self.image_features(images) * self.text_features(texts), axis=1)
        return clip_score_from_cosine(cos)


def _image_codec(model_id: str) -> Codec[GeneratedImage]:
    """PNG bytes under the key, the kind under ``key:kind`` (a card from a Serve deployment must
    stay labelled a card); a hit needs both."""

    def load(cache: CallCache, key: str) -> GeneratedImage | None:
        data, kind = cache.get_bytes(key), cache.get_json(key + ":kind")
        if data is None or kind is None:
            return None
        return GeneratedImage(decode_png(data), kind, model_id, cached=True)

    def store(cache: CallCache, key: str, value: GeneratedImage) -> None:
        cache.put_bytes(key, png_bytes(value.image))
        cache.put_json(key + ":kind", value.kind)

    return Codec(load, store)


class ImageGenerator(Role):
    """``image``: prompt (+ size, seed, negative prompt) -> image."""

    role = "image"
    kind = "generated"

    @abstractmethod
    def _render(self, request: ImageRequest) -> Image.Image:
        """Backend: the image for one request, exactly ``width × height``."""

    def generate(self, request: ImageRequest) -> GeneratedImage:
        """The RGB image of exactly the requested size (cached)."""
        if request.width < 16 or request.height < 16:
            raise ModelInputError(f"image size {request.width}x{request.height} is below 16x16")
        self.stats["calls"] += 1
        [image] = self._cached("image", [request.key()], _image_codec(self.model_id),
                               lambda _: [self._fresh(request)])
        return image

    def _fresh(self, request: ImageRequest) -> GeneratedImage:
        with self._busy():
            image = self._render(request).convert("RGB")
        if image.size != (request.width, request.height):
            image = image.resize((request.width, request.height), Image.LANCZOS)
        return GeneratedImage(image, self.kind, self.model_id)


def _video_codec(out_path: Path) -> Codec[GeneratedVideo]:
    """The mp4's bytes under the key, its :meth:`GeneratedVideo.meta` under ``key:meta``; a hit
    is written to ``out_path``."""

    def load(cache: CallCache, key: str) -> GeneratedVideo | None:
        data, meta = cache.get_bytes(key), cache.get_json(key + ":meta")
        if data is None or meta is None:
            return None
        write_bytes_atomic(out_path, data)
        return GeneratedVideo(path=out_path, cached=True, **meta)

    def store(cache: CallCache, key: str, value: GeneratedVideo) -> None:
        cache.put_bytes(key, value.path.read_bytes())
        cache.put_json(key + ":meta", value.meta())

    return Codec(load, store)


class VideoGenerator(Role):
    """``video``: storyboard -> H.264 mp4 file at ``out_path``."""

    role = "video"
    kind = "generated"

    @abstractmethod
    def _render(self, storyboard: Storyboard, out_path: Path) -> GeneratedVideo:
        """Backend: write the mp4 and describe it."""

    def render(self, storyboard: Storyboard, out_path: str | Path) -> GeneratedVideo:
        """The storyboard as an mp4 at ``out_path``, written atomically (cached)."""
        out_path = Path(out_path)
        _check_storyboard(storyboard)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        self.stats["calls"] += 1
        [video] = self._cached("video", [storyboard.key()], _video_codec(out_path),
                               lambda _: [self._fresh(storyboard, out_path)])
        return video

    def _fresh(self, storyboard: Storyboard, out_path: Path) -> GeneratedVideo:
        with atomic_path(out_path, suffix=".partial.mp4") as tmp, self._busy():
            video = self._render(storyboard, tmp)
        video.path = out_path
        return video


def _check_storyboard(storyboard: Storyboard) -> None:
    """Raise :class:`ModelInputError` for no shots, a shot of no length, or odd frame sizes."""
    if not storyboard.shots:
        raise ModelInputError("a storyboard needs at least one shot")
    for i, shot in enumerate(storyboard.shots):
        if shot.duration_s <= 0:
            raise ModelInputError(f"shot {i + 1}: duration must be > 0 s, got {shot.duration_s}")
    if storyboard.width % 2 or storyboard.height % 2:
        raise ModelInputError(f"H.264 needs even frame sizes, got "
                              f"{storyboard.width}x{storyboard.height}")


def busy_meter(roles: Iterable[Role | None]) -> Callable[[], tuple[float, float]]:
    """A function returning the total ``(busy_seconds, gpu_seconds)`` so far of ``roles``
    (each distinct role once; None skipped): differences between two calls are the time spent
    in model backends in between (one thread per role set)."""
    distinct = list({id(r): r for r in roles if r is not None}.values())
    return lambda: (sum(r.busy_seconds for r in distinct), sum(r.gpu_seconds for r in distinct))


def any_on_gpu(roles: Iterable[Role | None]) -> bool:
    """True when at least one of ``roles`` runs its model on a CUDA device."""
    return any(r is not None and r.on_gpu for r in roles)
