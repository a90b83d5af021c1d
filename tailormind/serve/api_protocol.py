"""Request and response bodies of the TailorMind HTTP API (``tailormind/serve/api.py``).

Limits that depend on the config (history length, text lengths, platforms, kinds) are checked by
the ingress against ``api.*``; the shapes here are fixed. Every error is
``{"error": {"code": ..., "message": ...}}`` with the HTTP status saying the class of problem.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tailormind.generation.post_record import PostRecord, ReflectionEntry


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. unknown_user, overloaded.")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "ready", "not_ready"]
    detail: dict[str, Any] = {}


# -- profiles -----------------------------------------------------------------------------------
class ProfileIteration(BaseModel):
    iteration: int
    profile: str
    valid_rank: int = Field(description="1 = the validation item ranked first of the candidates.")
    loss: float
    accepted: bool
    critique: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = Field(0.0, description="Elapsed seconds (the user's share of each batched "
                           "step); iteration 0 holds the initialisation.")
    model_seconds: float | None = Field(None, description="Seconds inside model backends "
                                        "(share); null: not recorded (an older profile).")
    gpu_seconds: float | None = Field(None, description="The part of model_seconds on a GPU; "
                                      "null: no model ran on a GPU, or not recorded.")


class ProfileVersion(BaseModel):
    """One version of a user's profile (``profile update`` makes version + 1 from its parent)."""

    version: int = 1
    parent_version: int | None = None
    watermark: int = 0  # append id of the newest interaction it has seen (0: the import)
    updated_at: str | None = None
    evidence: dict[str, Any] | None = None  # an update's new positives, withheld count, since
    profile: str = ""
    fallback: str | None = None


class StoredProfile(BaseModel):
    user_id: str
    version: int = 1
    parent_version: int | None = None
    watermark: int = 0
    updated_at: str | None = None
    evidence: dict[str, Any] | None = None
    history: list[ProfileVersion] | None = None  # superseded versions, oldest first (?history=true)
    profile: str
    initial_profile: str
    iterations: list[ProfileIteration]
    valid_rank_initial: int
    valid_rank_final: int
    accepted_updates: int
    fallback: str | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    text_model: str
    embed_model: str
    ranker: str
    config_hash: str


class HistoryEntry(_Body):
    """A workspace item by ``item_id``, or a raw item by ``text`` (with optional title and tags)."""

    item_id: str | None = None
    title: str = ""
    text: str = ""
    tags: list[str] = []

    @model_validator(mode="after")
    def _one_kind(self) -> HistoryEntry:
        if self.item_id is None and not (self.text.strip() or self.title.strip()):
            raise ValueError("each history entry needs an item_id or a text (or title)")
        if self.item_id is not None and (self.text or self.title or self.tags):
            raise ValueError("give either item_id or text/title/tags, not both")
        return self


class AdhocProfileRequest(_Body):
    history: list[HistoryEntry] = Field(description="Oldest first; the last one is held out for "
                                        "validation when refining.")
    refine: bool = Field(True, description="Run the textual-gradient refinement (Eq. 10-14).")
    seed: int | None = Field(None, ge=0, lt=2**32,
                             description="Seed of the validation negatives, in [0, 2^32).")
    include_embedding: bool = False


class AdhocProfile(BaseModel):
    profile: str
    initial_profile: str
    iterations: list[ProfileIteration]
    valid_item: str | None
    valid_rank_initial: int | None
    valid_rank_final: int | None
    candidates: int
    history_items: int
    raw_items: int
    fallbacks: list[str]
    notes: list[str]
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    embedding: list[float] | None = None
    models: dict[str, str]


# -- posts and jobs -----------------------------------------------------------------------------
class PostRequest(_Body):
    kind: str = Field("post", description="post (image-text) or video.")
    platform: str | None = Field(None, description="rednote, hupu or bilibili (default: config).")
    seed: int | None = Field(None, ge=0, lt=2**32,
                             description="In [0, 2^32); default: seeds.generation.")


class JobProgress(BaseModel):
    stage: str
    step: int
    of: int = Field(description="Steps of a run with every reflection round (an upper bound).")


class Job(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    user_id: str
    post_id: str
    kind: str
    platform: str
    seed: int
    created_at: str
    updated_at: str
    progress: JobProgress | None = None
    error: str | None = None
    post_url: str | None = None
    attempts: int = Field(0, description="Times a worker took the job (a lost worker's job is "
                          "run again, up to api.max_attempts).")
    lost: list[str] = Field([], description="Why each earlier attempt ended without a result.")


class MediaFile(BaseModel):
    file: str
    url: str
    kind: str = ""
    caption: str = ""


class Post(BaseModel):
    post_id: str
    user_id: str
    kind: str
    platform: str
    title: str
    body: str
    hashtags: list[str]
    media: list[MediaFile]
    preview_url: str
    fallbacks: list[str]
    reflection: ReflectionEntry
    seconds: float
    record: PostRecord = Field(description="The whole post.json of the bundle.")


class PostAccepted(BaseModel):
    """``POST /v1/users/{id}/posts``: 200 with the post when it is already bundled, 202 with the
    job (poll ``job_url``) otherwise."""

    status: Literal["done", "accepted"]
    job: Job | None = None
    job_url: str | None = None
    post: Post | None = None
