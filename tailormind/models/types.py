"""What the model roles take and return: chat messages, sampling params, completions, image and
video requests and results, and each role's counters. Plain data, no model code."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

#: One chat message: ``{"role": "system"|"user"|"assistant", "content": str | list[part]}``;
#: a part is ``{"type": "text", "text": ...}`` or ``{"type": "image", "image": PIL.Image}``.
Message = dict[str, Any]
Conversation = list[Message]


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
        """Every field but ``cached`` (what the call cache and the Serve wire carry)."""
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


@dataclass
class VideoDescription:
    """A long video described as two windows, its first and its last seconds
    (``docs/architecture.md``, "Item description")."""

    head: Completion
    tail: Completion | None
    duration_s: float


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


@dataclass(frozen=True)
class Shot:
    """One storyboard shot: what to show, for how long, and the caption/narration under it."""

    prompt: str
    duration_s: float
    caption: str = ""


@dataclass(frozen=True)
class Storyboard:
    """A video to render: its shots in order, frame size, frame rate, seed and cover styling."""

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
    """An mp4 at ``path`` and what made it; ``shot_kinds`` says per shot generated or card."""

    path: Path
    duration_s: float
    frames: int
    fps: int
    kind: str
    model: str
    cached: bool = False
    shot_kinds: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """Every field but ``path`` and ``cached``: what the call cache and the Serve wire carry."""
        return {k: v for k, v in asdict(self).items() if k not in ("path", "cached")}
