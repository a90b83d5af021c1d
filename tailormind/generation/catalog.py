"""The idea templates, video types and platform styles — data files in ``catalog/``, validated.

A file that does not parse, a missing field or a duplicate name is a :class:`ConfigError` naming
the file; code never hard-codes a template.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tailormind.core.vocabulary import PLATFORMS, Kind, PlatformName
from tailormind.errors import ConfigError


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdeaTemplate(_Entry):
    """One of the R idea templates (image-text) or one video type."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str
    structure: tuple[str, ...] = Field(min_length=1)


class Theme(_Entry):
    """Colours and width of the platform-like ``preview.html``."""

    page: str = Field("#f4f4f4", pattern=r"^#[0-9a-fA-F]{6}$")
    accent: str = Field("#333333", pattern=r"^#[0-9a-fA-F]{6}$")
    tag: str = Field("#1d6fd8", pattern=r"^#[0-9a-fA-F]{6}$")
    width: int = Field(480, ge=240, le=1600)


class Platform(_Entry):
    """How content looks on one platform: voice, lengths, hashtags, images, links, video length
    and sizes. ``default_kind`` is what the platform is mostly about (Bilibili: video)."""

    name: PlatformName
    title: str
    default_kind: Kind
    style: str
    title_max_chars: int = Field(gt=0)
    body_max_words: int = Field(gt=0)
    hashtags: tuple[int, int]
    images: tuple[int, int]
    links: bool
    video_seconds: tuple[float, float] = (8.0, 45.0)
    image_size: tuple[int, int] = (1024, 1024)
    video_size: tuple[int, int] = (720, 1280)
    theme: Theme = Theme()

    @model_validator(mode="after")
    def _ranges(self) -> Platform:
        for name in ("hashtags", "images", "video_seconds"):
            low_high = getattr(self, name)
            if not 0 <= low_high[0] <= low_high[1]:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
        if self.video_seconds[0] <= 0:
            raise ValueError("video_seconds must be positive")
        if any(w < 16 or h < 16 or (w % 2) or (h % 2) for w, h in (self.image_size,
                                                                 self.video_size)):
            raise ValueError("image_size / video_size must be even and at least 16x16")
        return self


class Catalog(BaseModel):
    ideas: tuple[IdeaTemplate, ...]
    video_types: tuple[IdeaTemplate, ...]
    platforms: dict[str, Platform]

    def templates(self, kind: str) -> tuple[IdeaTemplate, ...]:
        return self.video_types if kind == "video" else self.ideas

    def platform(self, name: str) -> Platform:
        try:
            return self.platforms[name]
        except KeyError:
            raise ConfigError(f"unknown platform {name!r}; choose one of "
                              f"{', '.join(sorted(self.platforms))}") from None


def _read(path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def _templates(path) -> tuple[IdeaTemplate, ...]:
    data = _read(path)
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: expected a non-empty list of templates")
    try:
        out = tuple(IdeaTemplate.model_validate(entry) for entry in data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: duplicate template name "
                          f"{next(n for n in names if names.count(n) > 1)!r}")
    return out


def load_catalog(root=None) -> Catalog:
    """Every template and platform under ``root`` (default: the packaged ``catalog/``)."""
    base = root if root is not None else resources.files(__package__).joinpath("catalog")
    platforms: dict[str, Platform] = {}
    for path in sorted(base.joinpath("platforms").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml"):
            continue
        try:
            platform = Platform.model_validate(_read(path))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        platforms[platform.name] = platform
    return Catalog(ideas=_templates(base.joinpath("ideas.yaml")),
                   video_types=_templates(base.joinpath("video_types.yaml")),
                   platforms=platforms)


@lru_cache(maxsize=1)
def packaged_catalog() -> Catalog:
    """The packaged catalogue: a style file for every platform of the vocabulary."""
    catalog = load_catalog()
    missing = [name for name in PLATFORMS if name not in catalog.platforms]
    if missing:
        raise ConfigError(f"the packaged catalogue has no style file for platform(s) "
                          f"{', '.join(missing)} (tailormind/generation/catalog/platforms/)")
    return catalog
