"""The typed result of each generator step (:data:`tailormind.generation.steps.STEPS`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tailormind.generation.catalog import IdeaTemplate, Platform
from tailormind.generation.exemplars import Exemplar
from tailormind.generation.ideation import Idea, IdeationResult
from tailormind.generation.media import RenderedImage
from tailormind.generation.reflection import Reflection
from tailormind.generation.writing import Draft
from tailormind.models.types import GeneratedVideo
from tailormind.profiling.evidence import UserEvidence


@dataclass
class PostInputs:
    """Step 1."""

    user_id: str
    kind: str
    platform: Platform
    seed: int
    profile_row: dict[str, Any]
    evidence: UserEvidence
    fallbacks: list[str]

    @property
    def profile(self) -> str:
        return self.profile_row["profile"]

    @property
    def profile_vector(self) -> np.ndarray:
        return np.asarray(self.profile_row["embedding"], dtype=np.float32)


@dataclass
class ExemplarStep:
    """Step 2: the exemplars, their texts (the writer's sources), tags to fall back on, and the
    vector relevance is measured against."""

    exemplars: list[Exemplar]
    texts: list[tuple[str, str]]
    tags: list[str]
    history_vector: np.ndarray
    fallbacks: list[str]


@dataclass
class IdeaStep:
    """Step 3."""

    ideation: IdeationResult
    idea: Idea
    template: IdeaTemplate


@dataclass
class DraftStep:
    """Step 4: every draft written, the reflection over them, and the kept version's images."""

    drafts: list[Draft]
    reflection: Reflection[Draft]

    @property
    def best(self) -> Draft:
        return self.reflection.best.version

    @property
    def images(self) -> list[RenderedImage]:
        return self.reflection.best.media


@dataclass
class MediaStep:
    """Step 5: the video (a hidden file beside the bundle until step 6 moves it in)."""

    video: GeneratedVideo | None = None
    path: Path | None = None
    error: str | None = None
