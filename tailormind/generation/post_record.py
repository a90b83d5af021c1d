"""``post.json``: the typed record of one generated post, versioned.

Everything a reader needs to trust a post is in it: the text and media, the idea and template
subset, the exemplars, the profile text and version, every reflection round, every fix and
fallback, the model of every role, the config hash, and seconds and LLM tokens per step. The
generator builds it (:mod:`tailormind.generation.pipeline`); the API, the gallery, the
``generations`` table, the batch path and the bench read it through :func:`parse_post_record`.

Versions: ``schema_version`` 2 added the field itself; a version-1 file (no ``schema_version``)
has the same fields and loads. Version 3 added ``model_seconds_by_stage`` (seconds spent inside
model backends per step; call-cache hits cost nothing) and ``gpu_seconds_by_stage`` (the part of
it on a CUDA device; None when no role of the generator ran on one); an older file loads with both
None, "not recorded" — never zero. A file that does not fit the schema, or comes from a newer
TailorMind, raises :class:`PostRecordError` saying to re-generate the post.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tailormind.core.vocabulary import Kind, PlatformName
from tailormind.errors import CorruptFileError
from tailormind.generation.exemplars import Exemplar
from tailormind.generation.ideation import Idea
from tailormind.generation.reflection import RoundRecord
from tailormind.models.types import Shot

POST_SCHEMA_VERSION = 3
#: A ``post.json`` without ``schema_version`` was written before the field existed.
UNVERSIONED = 1


class PostRecordError(CorruptFileError):
    """A ``post.json`` that parses as JSON but is not a post this version can read."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageEntry(_Part):
    file: str
    prompt: str
    caption: str = ""
    kind: str  # "generated" or "card"
    model: str


class VideoEntry(_Part):
    file: str
    duration_s: float
    frames: int
    fps: float
    kind: str
    model: str
    shot_kinds: list[str] = Field(default_factory=list)


class IdeationEntry(_Part):
    subset: list[str]
    ideas: list[Idea]
    format: str = "json"
    attempts: int = 0
    repaired: bool = False
    empty: int = 0
    type_coerced: int = 0
    fallback: str | None = None


class ProfileEntry(_Part):
    text: str
    version: str
    config_hash: str
    text_model: str
    source: str  # the profiles table, or "fixed" (the profile-free baseline)


class Scores(_Part):
    relevance: float
    clip: float | None
    objective: float


class ReflectionEntry(_Part):
    objective: str  # the formula J used
    clip_measured: bool
    note: str = ""
    best_round: int
    best: Scores
    rounds: list[RoundRecord] = Field(min_length=1)  # round 0 scores the first draft


class DraftEntry(_Part):
    format: str
    fixes: list[str]
    empty: list[str]
    fallback: str | None
    attempts: int
    repaired: bool


def reader_text(title: str, body: str, captions: list[str], hashtags: list[str]) -> str:
    """What a reader reads, as one text: title, body, captions, then the hashtags (``#``-led).

    The reflection scores this text for relevance and the bench judges it, so both see the same.
    """
    tags = " ".join(f"#{t.lstrip('#')}" for t in hashtags if t.lstrip("#"))
    return "\n".join(p for p in [title, body, *captions, tags] if p)


class PostRecord(_Part):
    """One bundle's ``post.json``."""

    schema_version: int = POST_SCHEMA_VERSION
    post_id: str
    user_id: str
    kind: Kind
    platform: PlatformName
    created_at: str
    title: str
    body: str
    hashtags: list[str]
    links: list[str] = Field(default_factory=list)
    images: list[ImageEntry]
    video: VideoEntry | None = None
    storyboard: list[Shot] = Field(default_factory=list)
    media_note: str = ""
    idea: Idea
    ideation: IdeationEntry
    exemplars: list[Exemplar]
    profile: ProfileEntry
    reflection: ReflectionEntry
    drafts: list[DraftEntry]
    fallbacks: list[str]
    models: dict[str, dict[str, str]]
    config_hash: str
    seed: int
    seconds_by_stage: dict[str, float]  # wall seconds per step (StepClock label)
    tokens_by_stage: dict[str, int]  # LLM prompt + completion tokens (steps that ask the LLM)
    seconds: float
    #: seconds inside model backends per step; None: not recorded (written before version 3)
    model_seconds_by_stage: dict[str, float] | None = None
    #: the part of it on a CUDA device; None: no role ran on a GPU, or not recorded
    gpu_seconds_by_stage: dict[str, float] | None = None

    @property
    def llm_tokens(self) -> int:
        return int(sum(self.tokens_by_stage.values()))

    @property
    def media_files(self) -> list[str]:
        """The bundle's media file names: the images, cover first, then the video."""
        return [i.file for i in self.images] + ([self.video.file] if self.video else [])

    def reader_text(self) -> str:
        captions = [i.caption for i in self.images] + [s.caption for s in self.storyboard]
        return reader_text(self.title, self.body, captions, self.hashtags)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_post_record(data: Any, where: str = "post.json") -> PostRecord:
    """The record in ``data`` (parsed JSON); :class:`PostRecordError` names ``where`` and why."""
    if not isinstance(data, dict):
        raise PostRecordError(f"{where}: not a post record (a JSON object is expected)")
    version = data.get("schema_version", UNVERSIONED)
    if not isinstance(version, int) or version > POST_SCHEMA_VERSION:
        raise PostRecordError(f"{where}: post schema version {version!r} is newer than this "
                              f"TailorMind reads ({POST_SCHEMA_VERSION}); upgrade TailorMind")
    try:
        return PostRecord.model_validate({**data, "schema_version": POST_SCHEMA_VERSION})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"]))
        raise PostRecordError(f"{where}: not a post this TailorMind reads ({field}: {first['msg']}; "
                              f"{exc.error_count()} problem(s)); re-generate it with "
                              f"`tailormind generate --force`") from None
