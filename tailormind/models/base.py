"""The six model roles: small interfaces every backend implements, and what they return.

Code outside ``tailormind/models/`` asks :func:`tailormind.models.registry.load_role` for a role
and only ever sees these classes. Each role's public method goes through the on-disk
:class:`~tailormind.models.cache.CallCache` (key = backend, model, inputs, params), then calls the
backend's one private method for the misses. Counters in :class:`RoleStats` make every fallback
and failure visible to the caller instead of hidden.
"""

from __future__ import annotations

import io
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tailormind.core.atomic import atomic_path, write_bytes_atomic
from tailormind.errors import ModelInputError
from tailormind.models.cache import CallCache
from tailormind.models.json_repair import JsonAnswerError, parse_json_answer

#: One chat message: ``{"role": "system"|"user"|"assistant", "content": str | list[part]}``;
#: a part is ``{"type": "text", "text": ...}`` or ``{"type": "image", "image": PIL.Image}``.
Message = dict[str, Any]
Conversation = list[Message]

#: CLIPScore (Hessel et al. 2021): ``w · max(cos, 0)`` with ``w = 2.5``.
CLIPSCORE_WEIGHT = 2.5


class RoleStats(Counter):
    """Counters of one role instance: calls, cache hits, tokens, JSON repairs/retries/failures."""

    def as_dict(self) -> dict[str, int]:
        return {key: int(value) for key, value in sorted(self.items())}


@dataclass(frozen=True)
class GenerationParams:
    """Sampling knobs of one text/describe call; ``temperature == 0`` is greedy decoding."""

    max_tokens: int = 512
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def key(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    """One answer with its token counts; ``cached`` when it came from the call cache."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    finish_reason: str = "stop"
    seconds: float = 0.0
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("cached")
        return out


@dataclass
class JsonAnswer:
    """A structured answer: ``value`` is None when every attempt failed (``error`` says why)."""

    value: Any
    completions: list[Completion]
    attempts: int
    repaired: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.completions)


class Role(ABC):
    """Common state: the backend/model id (for provenance), the call cache and the counters."""

    role: str = ""

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

    def _cache_key(self, kind: str, payload: Any) -> str | None:
        if self.cache is None:
            return None
        if self.cache_salt:
            payload = {"payload": payload, "salt": self.cache_salt}
        return self.cache.key(self.backend, self.model_id, kind, payload)


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
            _check_conversation(conversation)
        results: list[Completion | None] = [None] * len(batch)
        keys = [
            self._cache_key("chat", {"messages": _message_key(c), "params": params.key(),
                                     "schema": json_schema})
            for c in batch
        ]
        todo = []
        for i, key in enumerate(keys):
            hit = self.cache.get_json(key) if key and self.cache is not None else None
            if hit is not None:
                results[i] = Completion(**hit, cached=True)
                self.stats["cache_hits"] += 1
            else:
                todo.append(i)
        if todo:
            started = time.perf_counter()
            fresh = self._generate([batch[i] for i in todo], params, json_schema)
            elapsed = time.perf_counter() - started
            for i, completion in zip(todo, fresh, strict=True):
                if not completion.seconds:
                    completion.seconds = elapsed / len(todo)
                results[i] = completion
                self.stats["prompt_tokens"] += completion.prompt_tokens
                self.stats["completion_tokens"] += completion.completion_tokens
                if keys[i] and self.cache is not None:
                    self.cache.put_json(keys[i], completion.to_json())
        self.stats["calls"] += len(batch)
        return [r for r in results if r is not None]

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
                answer = answers[i]
                answer.completions.append(completion)
                answer.attempts = attempt + 1
                try:
                    answer.value, answer.repaired = parse_json_answer(completion.text, schema)
                    answer.error = None
                except JsonAnswerError as exc:
                    answer.error = str(exc)
                    conversations[i] = conversations[i] + [
                        {"role": "assistant", "content": completion.text},
                        {"role": "user", "content": _retry_message(str(exc), schema)},
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


#: The reason an answer failed, quoted back to the model, is cut to this many characters.
RETRY_ERROR_CHARS = 400


def _retry_message(error: str, schema: dict) -> str:
    """The re-ask after an unusable answer. ``error`` can carry the answer's own text (which may
    echo quoted UGC), so it is quoted too."""
    from tailormind.prompts.ugc import quote_ugc
    from tailormind.prompts import render

    return render("json_retry.txt", error=quote_ugc(error, label="error", limit=RETRY_ERROR_CHARS),
                  schema=schema)


def _check_conversation(conversation: Conversation) -> None:
    if not conversation:
        raise ModelInputError("a conversation needs at least one message")
    for message in conversation:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ModelInputError(f"a message needs 'role' and 'content', got {message!r:.120}")
        if message["role"] not in ("system", "user", "assistant"):
            raise ModelInputError(f"unknown message role {message['role']!r}")


def _message_key(conversation: Conversation) -> list[Any]:
    """JSON-able form of a conversation for the cache key (images by content hash)."""
    out = []
    for message in conversation:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image", "sha256": image_digest(part["image"])}
                if part.get("type") == "image" else part
                for part in content
            ]
        out.append({"role": message["role"], "content": content})
    return out


class Embedder(Role):
    """``embed``: texts -> L2-normalised float32 matrix ``(len(texts), dim)``, batched and cached."""

    role = "embed"

    def __init__(self, *, batch_size: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Backend: raw embeddings of one batch (normalised by the caller)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        rows: list[np.ndarray | None] = [None] * len(texts)
        keys = [self._cache_key("embed", t) for t in texts]
        todo = []
        for i, key in enumerate(keys):
            hit = self.cache.get_array(key) if key and self.cache is not None else None
            if hit is not None:
                rows[i] = hit
                self.stats["cache_hits"] += 1
            else:
                todo.append(i)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            vectors = l2_normalize(np.asarray(self._encode([texts[i] for i in chunk]),
                                              dtype=np.float32))
            for i, vector in zip(chunk, vectors, strict=True):
                rows[i] = vector
                if keys[i] and self.cache is not None:
                    self.cache.put_array(keys[i], vector)
        self.stats["calls"] += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([r for r in rows if r is not None]).astype(np.float32, copy=False)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding width."""


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm; an all-zero row stays zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass
class VideoDescription:
    """A long video described as two windows (DESIGN.md): its first and its last seconds."""

    head: Completion
    tail: Completion | None
    duration_s: float


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
        params = params or self.default_params
        frames = [load_image(image) for image in images]
        if not frames:
            raise ModelInputError("describe needs at least one image")
        key = self._cache_key("describe", {"images": [image_digest(f) for f in frames],
                                           "instruction": instruction, "params": params.key()})
        hit = self.cache.get_json(key) if key and self.cache is not None else None
        self.stats["calls"] += 1
        if hit is not None:
            self.stats["cache_hits"] += 1
            return Completion(**hit, cached=True)
        completion = self._describe(frames, instruction, params)
        self.stats["completion_tokens"] += completion.completion_tokens
        if key and self.cache is not None:
            self.cache.put_json(key, completion.to_json())
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
        frames = [load_image(image) for image in images]
        self.stats["images"] += len(frames)
        return l2_normalize(np.asarray(self._image_features(frames), dtype=np.float32))

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        self.stats["texts"] += len(texts)
        return l2_normalize(np.asarray(self._text_features(list(texts)), dtype=np.float32))

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


def clip_score_from_cosine(cos: np.ndarray | float) -> np.ndarray:
    """``2.5 · max(cos, 0)``."""
    return CLIPSCORE_WEIGHT * np.maximum(np.asarray(cos, dtype=np.float32), 0.0)


@dataclass(frozen=True)
class ImageRequest:
    """What to draw. Generative backends use ``prompt``/``negative_prompt``/``seed``; the card
    backend typesets ``title`` (default: the prompt) and ``phrases`` in a palette from ``palette_hint``.
    """

    prompt: str
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    negative_prompt: str | None = None
    title: str | None = None
    phrases: tuple[str, ...] = ()
    palette_hint: str | None = None
    caption: str | None = None

    def key(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRequest:
        return cls(**{**data, "phrases": tuple(data.get("phrases", ()))})


@dataclass
class GeneratedImage:
    """An image and what made it: ``kind`` is ``"generated"`` or ``"card"`` (typeset, not drawn)."""

    image: Image.Image
    kind: str
    model: str
    cached: bool = False


class ImageGenerator(Role):
    """``image``: prompt (+ size, seed, negative prompt) -> image."""

    role = "image"
    kind = "generated"

    @abstractmethod
    def _render(self, request: ImageRequest) -> Image.Image:
        """Backend: the image for one request, exactly ``width × height``."""

    def generate(self, request: ImageRequest) -> GeneratedImage:
        if request.width < 16 or request.height < 16:
            raise ModelInputError(f"image size {request.width}x{request.height} is below 16x16")
        key = self._cache_key("image", request.key())
        self.stats["calls"] += 1
        if key and self.cache is not None:
            data = self.cache.get_bytes(key)
            kind = self.cache.get_json(key + ":kind")
            if data is not None and kind is not None:
                self.stats["cache_hits"] += 1
                return GeneratedImage(Image.open(io.BytesIO(data)).convert("RGB"), kind,
                                      self.model_id, cached=True)
        image = self._render(request).convert("RGB")
        if image.size != (request.width, request.height):
            image = image.resize((request.width, request.height), Image.LANCZOS)
        if key and self.cache is not None:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            self.cache.put_bytes(key, buffer.getvalue())
            # the kind is stored too: a card from a Serve deployment must stay labelled a card
            self.cache.put_json(key + ":kind", self.kind)
        return GeneratedImage(image, self.kind, self.model_id)


@dataclass(frozen=True)
class Shot:
    """One storyboard shot: what to show, for how long, and the caption/narration under it."""

    prompt: str
    duration_s: float
    caption: str = ""


@dataclass(frozen=True)
class Storyboard:
    shots: tuple[Shot, ...]
    width: int = 720
    height: int = 1280
    fps: int = 24
    seed: int | None = None
    title: str | None = None
    palette_hint: str | None = None

    @property
    def duration_s(self) -> float:
        return float(sum(shot.duration_s for shot in self.shots))

    def key(self) -> dict[str, Any]:
        out = asdict(self)
        out["shots"] = [asdict(s) for s in self.shots]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Storyboard:
        return cls(**{**data, "shots": tuple(Shot(**shot) for shot in data["shots"])})


@dataclass
class GeneratedVideo:
    path: Path
    duration_s: float
    frames: int
    fps: int
    kind: str
    model: str
    cached: bool = False
    shot_kinds: list[str] = field(default_factory=list)


class VideoGenerator(Role):
    """``video``: storyboard -> H.264 mp4 file at ``out_path``."""

    role = "video"
    kind = "generated"

    @abstractmethod
    def _render(self, storyboard: Storyboard, out_path: Path) -> GeneratedVideo:
        """Backend: write the mp4 and describe it."""

    def render(self, storyboard: Storyboard, out_path: str | Path) -> GeneratedVideo:
        out_path = Path(out_path)
        if not storyboard.shots:
            raise ModelInputError("a storyboard needs at least one shot")
        for i, shot in enumerate(storyboard.shots):
            if shot.duration_s <= 0:
                raise ModelInputError(f"shot {i + 1}: duration must be > 0 s, got {shot.duration_s}")
        if storyboard.width % 2 or storyboard.height % 2:
            raise ModelInputError(f"H.264 needs even frame sizes, got "
                                  f"{storyboard.width}x{storyboard.height}")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        key = self._cache_key("video", storyboard.key())
        self.stats["calls"] += 1
        if key and self.cache is not None:
            hit = self.cache.get_bytes(key)
            meta = self.cache.get_json(key + ":meta")
            if hit is not None and meta is not None:
                self.stats["cache_hits"] += 1
                write_bytes_atomic(out_path, hit)
                return GeneratedVideo(path=out_path, cached=True, **meta)
        with atomic_path(out_path, suffix=".partial.mp4") as tmp:
            video = self._render(storyboard, tmp)
        video.path = out_path
        if key and self.cache is not None:
            self.cache.put_bytes(key, out_path.read_bytes())
            meta = {k: v for k, v in asdict(video).items() if k not in ("path", "cached")}
            self.cache.put_json(key + ":meta", meta)
        return video


#: An image given to a role: a path, raw encoded bytes, or a PIL image.
ImageInput = str | Path | bytes | Image.Image


def load_image(image: ImageInput) -> Image.Image:
    """An RGB PIL image; a file or bytes that do not decode raise :class:`ModelInputError`."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        if isinstance(image, bytes):
            with Image.open(io.BytesIO(image)) as opened:
                return opened.convert("RGB")
        with Image.open(image) as opened:
            return opened.convert("RGB")
    except FileNotFoundError as exc:
        raise ModelInputError(f"{image}: image file does not exist") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        where = "image bytes" if isinstance(image, bytes) else str(image)
        raise ModelInputError(f"{where}: cannot decode image ({exc})") from exc


def image_digest(image: Image.Image) -> str:
    """Content hash of an image (mode, size, pixels) for cache keys."""
    import hashlib

    image = image if isinstance(image, Image.Image) else load_image(image)
    digest = hashlib.sha256(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()
