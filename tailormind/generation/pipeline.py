"""One user's post or video, end to end, as numbered steps (:mod:`tailormind.generation.steps`):

1 inputs -> 2 exemplars (Eq. 15) -> 3 ideate (Eq. 16) -> 4 write and reflect (Eq. 17-19, images
rendered and scored every round) -> 5 media (the video of a video post) -> 6 bundle.

Each step is a method of :class:`Generator` returning a typed result; one
:class:`~tailormind.generation.steps.StepClock` times them. The bundle's ``post.json`` is a
:class:`~tailormind.generation.post_record.PostRecord`: everything a reader needs to trust the
post (see ``docs/architecture.md``, "Generation").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from tailormind.config import Settings
from tailormind.core.atomic import new_temp_file
from tailormind.core.vectors import CLIPSCORE_WEIGHT
from tailormind.core.vocabulary import KINDS
from tailormind.data.item_tags import model_items
from tailormind.data.item_text import item_text
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError, WorkspaceError
from tailormind.generation.bundle import bundle_dir, post_id_for, write_bundle
from tailormind.generation.catalog import Catalog, packaged_catalog
from tailormind.generation.exemplars import select_exemplars
from tailormind.generation.ideation import IdeationResult, ideate
from tailormind.generation.media import card_role, render_images, render_video
from tailormind.generation.post_record import (
    DraftEntry,
    IdeationEntry,
    ImageEntry,
    PostRecord,
    ProfileEntry,
    ReflectionEntry,
    Scores,
    VideoEntry,
)
from tailormind.generation.reflection import Reflection, Scored, objective, reflect, relevance
from tailormind.generation.step_results import (
    DraftStep,
    ExemplarStep,
    IdeaStep,
    MediaStep,
    PostInputs,
)
from tailormind.generation.steps import ROUND_STAGE, Meter, StepClock
from tailormind.generation.writing import Draft, write_draft
from tailormind.models.registry import load_role
from tailormind.models.roles import (
    ClipScorer,
    Embedder,
    ImageGenerator,
    Role,
    TextModel,
    VideoGenerator,
    any_on_gpu,
    busy_meter,
)
from tailormind.models.types import GeneratedVideo
from tailormind.profiling.evidence import ItemFeatures, load_evidence
from tailormind.profiling.profiles import PROFILES_TABLE


def profile_version_of(profile: str) -> str:
    return hashlib.sha256(profile.encode()).hexdigest()[:12]


def generation_config_hash(settings: Settings) -> str:
    return settings.config_hash("generation", "models", "seeds")


def planned_post_id(settings: Settings, user_id: str, profile: str, kind: str, platform: str,
                    seed: int | None = None) -> str:
    """The id :meth:`Generator.generate` will give this post — known without loading a model,
    so a job can skip what an earlier (killed) run already bundled."""
    seed = settings.seeds.generation if seed is None else seed
    return post_id_for(user_id, kind, platform, profile_version_of(profile),
                       generation_config_hash(settings), seed)


@dataclass
class Roles:
    text: TextModel
    embed: Embedder
    image: ImageGenerator
    card: ImageGenerator
    clip: ClipScorer | None = None
    video: VideoGenerator | None = None

    @classmethod
    def load(cls, settings: Settings, kinds: tuple[str, ...] = KINDS) -> Roles:
        clip = None if settings.models.clip.backend == "none" else load_role("clip", settings)
        return cls(text=load_role("text", settings), embed=load_role("embed", settings),
                   image=load_role("image", settings), card=card_role(settings), clip=clip,
                   video=load_role("video", settings) if "video" in kinds else None)

    def provenance(self) -> dict[str, dict[str, str]]:
        roles = {"text": self.text, "embed": self.embed, "image": self.image,
                 "clip": self.clip, "video": self.video}
        return {name: role.provenance for name, role in roles.items() if role is not None}

    def _all(self) -> list[Role | None]:
        return [self.text, self.embed, self.image, self.card, self.clip, self.video]

    def meter(self) -> Meter:
        """Total (model seconds, GPU seconds) spent in these roles' backends so far."""
        return busy_meter(self._all())

    @property
    def on_gpu(self) -> bool:
        """Whether any role runs on a CUDA device (then posts record GPU-seconds)."""
        return any_on_gpu(self._all())


@dataclass
class GeneratedPost:
    user_id: str
    post_id: str
    path: Path
    record: PostRecord


class Generator:
    """Generates posts for users of one profiled workspace (roles loaded once).

    The benchmark's ablations use the same generator: ``profiles_table`` reads another profiles
    table (``profiles__nocf``), ``fixed_profile`` gives every user the same profile text (the
    profile-free baseline), ``output_root`` bundles under another directory than the workspace
    (``generations/`` below it), so ablation posts never mix with the product's posts.
    """

    def __init__(self, workspace: Workspace, settings: Settings, roles: Roles | None = None,
                 catalog: Catalog | None = None, *, profiles_table: str = PROFILES_TABLE,
                 fixed_profile: str | None = None, output_root: Path | None = None) -> None:
        if fixed_profile is None and not workspace.has(profiles_table):
            raise WorkspaceError(f"workspace {workspace.root} has no {profiles_table} table; run "
                                 f"`tailormind profile run --workspace {workspace.root}` first")
        self.workspace, self.settings = workspace, settings
        self.config = settings.generation
        self.catalog = catalog or packaged_catalog()
        self.roles = roles or Roles.load(settings)
        self.features = ItemFeatures.load(workspace)
        self.output_root = Path(output_root) if output_root is not None else workspace.root
        self.fixed_profile = fixed_profile
        if fixed_profile is not None:
            vector = self.roles.embed.embed([fixed_profile])[0]
            self._fixed_row = {"profile": fixed_profile, "embedding": vector,
                               "config_hash": "", "text_model": "", "fallback": ""}
            self.profiles = {}
        else:
            self.profiles = {r["user_id"]: r for r in workspace.read(profiles_table).to_pylist()}
        self.profiles_table = profiles_table
        items = model_items(workspace, columns=["item_id", "title", "text", "tags"]).to_pylist()
        self.items = {r["item_id"]: r for r in items}
        self.config_hash = generation_config_hash(settings)

    def _profile_row(self, user_id: str) -> dict[str, Any]:
        if self.fixed_profile is not None:
            self._known_user(user_id)
            return self._fixed_row
        row = self.profiles.get(user_id)
        if row is not None:
            return row
        self._known_user(user_id)
        raise WorkspaceError(f"user {user_id!r} has no profile in {self.profiles_table}; run "
                             f"`tailormind profile run --workspace {self.workspace.root} --user "
                             f"{user_id}` first")

    def _known_user(self, user_id: str) -> None:
        users = self.workspace.read("users", columns=["user_id"])
        if not pc.any(pc.equal(users.column("user_id"), user_id)).as_py():
            raise WorkspaceError(f"unknown user {user_id!r} in workspace {self.workspace.root}")

    def _item_text(self, item_id: str) -> str:
        item = self.items.get(item_id)
        return (item_text(item, max_tags=12) if item else "") or self.features.describe(item_id)

    def _tags(self, item_id: str) -> list[str]:
        return list(self.items.get(item_id, {}).get("tags") or [])

    # -- the post ------------------------------------------------------------------------------
    def generate(self, user_id: str, *, platform: str | None = None, kind: str | None = None,
                 seed: int | None = None,
                 progress: Callable[[str], None] | None = None) -> GeneratedPost:
        """Run :data:`~tailormind.generation.steps.STEPS` for one post and bundle it.

        ``progress(name)`` is called as each step (and each reflection round) starts, with the
        names of :func:`~tailormind.generation.steps.progress_stages`; an exception it raises
        stops the post, and nothing is bundled."""
        report = progress or (lambda stage: None)
        clock = StepClock(meter=self.roles.meter())
        report("inputs")
        clock.switch("inputs")
        inputs = self.inputs(user_id, platform, kind, seed)
        report("exemplars")
        clock.switch("exemplars")
        exemplars = self.exemplars(inputs)
        report("ideate")
        clock.switch("ideate")
        idea = self.ideate(inputs, exemplars, clock)
        report("write_and_reflect")
        drafts = self.write_and_reflect(inputs, exemplars, idea, clock, report)
        report("media")
        clock.switch("media")
        post_id = planned_post_id(self.settings, user_id, inputs.profile, inputs.kind,
                                  inputs.platform.name, inputs.seed)
        target = bundle_dir(self.output_root, user_id, post_id)
        media = self.media(inputs, drafts, target)
        try:
            report("bundle")
            clock.switch("bundle")
            record = self.record(post_id, inputs, exemplars, idea, drafts, media, clock)
            path = self.bundle(target, record, inputs, drafts, media)
        finally:
            if media.path is not None:
                media.path.unlink(missing_ok=True)  # moved into the bundle unless it failed
        return GeneratedPost(user_id, post_id, path, record)

    # -- 1 ---------------------------------------------------------------------------------------
    def inputs(self, user_id: str, platform: str | None, kind: str | None,
               seed: int | None) -> PostInputs:
        """The post's settings and evidence; a bad kind or an unknown user is an error."""
        platform_cfg = self.catalog.platform(platform or self.config.platform)
        kind = kind or platform_cfg.default_kind
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        if kind == "video" and self.roles.video is None:
            raise ConfigError("video generation needs the video role; load Roles with 'video'")
        row = self._profile_row(user_id)
        evidence = load_evidence(self.workspace, [user_id], use_cf=(
            self.config.use_cf and self.workspace.has("cf_topk")))[user_id]
        fallbacks = [f"profile: {row['fallback']}"] if row.get("fallback") else []
        return PostInputs(user_id, kind, platform_cfg,
                          self.settings.seeds.generation if seed is None else seed,
                          row, evidence, fallbacks)

    # -- 2 ---------------------------------------------------------------------------------------
    def exemplars(self, inputs: PostInputs) -> ExemplarStep:
        """Eq. 15 exemplars, and the history centroid relevance is measured against."""
        evidence, fallbacks = inputs.evidence, []
        exemplars = (select_exemplars(inputs.profile_vector, evidence.history, evidence.cf,
                                      self.features, self.config.exemplar_top_k)
                     if self.config.use_exemplars else [])
        texts = [(f"item {e.item_id}", self._item_text(e.item_id)) for e in exemplars]
        tags = [t for e in exemplars for t in self._tags(e.item_id)]
        tags += [t for i in evidence.history[::-1] for t in self._tags(i)]
        reference_items = evidence.history or evidence.cf
        if reference_items:
            history_vector = self.features.vectors(reference_items).mean(axis=0)
        else:
            history_vector = inputs.profile_vector
            fallbacks.append("no usable history: relevance is measured against the profile")
        if not evidence.history and self.config.use_exemplars:
            fallbacks.append("no train history: exemplars come from CF only" if evidence.cf
                             else "no history and no CF items: no exemplars")
        return ExemplarStep(exemplars, texts, tags, history_vector, fallbacks)

    # -- 3 ---------------------------------------------------------------------------------------
    def ideate(self, inputs: PostInputs, exemplars: ExemplarStep, clock: StepClock) -> IdeaStep:
        """Eq. 16: the template subset and ideas; the first idea is the one written."""
        templates = self.catalog.templates(inputs.kind)
        ideas = ideate(profile=inputs.profile, profile_vector=inputs.profile_vector,
                       exemplar_texts=exemplars.texts, kind=inputs.kind,
                       platform=inputs.platform, templates=templates, text=self.roles.text,
                       embedder=self.roles.embed, config=self.config)
        clock.tokens["ideate"] += ideas.prompt_tokens + ideas.completion_tokens
        idea = ideas.ideas[0]
        return IdeaStep(ideas, idea, next(t for t in templates if t.name == idea.type))

    # -- 4 ---------------------------------------------------------------------------------------
    def write_and_reflect(self, inputs: PostInputs, exemplars: ExemplarStep, idea: IdeaStep,
                          clock: StepClock, report: Callable[[str], None]) -> DraftStep:
        """A draft, then Eq. 17-19: up to ``reflection_rounds`` revisions of the best version,
        each scored with its rendered images; the best is kept. The clock splits the step's
        time into ``writing``, ``images`` and ``scoring``."""
        drafts: list[Draft] = []

        def write(previous: Draft | None = None, feedback: str | None = None) -> Draft:
            if drafts:
                report(ROUND_STAGE.format(n=len(drafts)))
            clock.switch("writing")
            draft = write_draft(kind=inputs.kind, platform=inputs.platform,
                                template=idea.template, idea=idea.idea.idea,
                                profile=inputs.profile, exemplar_texts=exemplars.texts,
                                text=self.roles.text, config=self.config,
                                fallback_tags=exemplars.tags, previous=previous, feedback=feedback)
            clock.tokens["writing"] += draft.prompt_tokens + draft.completion_tokens
            drafts.append(draft)
            return draft

        reflection = reflect(write(), lambda draft: self._score(draft, inputs, exemplars, clock),
                             lambda best, feedback: write(best, feedback),
                             self.config.reflection_rounds,
                             repeatable=self.roles.text.default_params.temperature == 0)
        return DraftStep(drafts, reflection)

    def _score(self, draft: Draft, inputs: PostInputs, exemplars: ExemplarStep,
               clock: StepClock) -> Scored[Draft]:
        """J of one version (:func:`~tailormind.generation.reflection.objective`)."""
        clock.switch("images")
        images = render_images(draft, self.roles.image, inputs.platform, inputs.seed,
                               self.roles.card)
        clock.switch("scoring")
        rel = relevance(self.roles.embed.embed([draft.text()])[0], exemplars.history_vector)
        clip = None
        if self.roles.clip is not None and images:
            clip = float(np.mean(self.roles.clip.clip_score(
                [i.image for i in images], [i.plan.caption or draft.title for i in images])))
        return Scored(draft, rel, clip, objective(rel, clip, self.config.clip_weight), images)

    # -- 5 ---------------------------------------------------------------------------------------
    def media(self, inputs: PostInputs, drafts: DraftStep, target: Path) -> MediaStep:
        """The video of a video post, hidden beside the bundle ``target`` (moved into it by
        step 6, or removed — by recovery if we are killed). A failed video is a fallback."""
        if inputs.kind != "video":
            return MediaStep()
        assert self.roles.video is not None
        path = new_temp_file(target, suffix=".mp4")
        made, error = render_video(drafts.best, self.roles.video, inputs.platform, path,
                                   inputs.seed)
        if made is None:
            path.unlink(missing_ok=True)
            return MediaStep(error=error or "video failed")
        return MediaStep(made, path)

    # -- 6 ---------------------------------------------------------------------------------------
    def record(self, post_id: str, inputs: PostInputs, exemplars: ExemplarStep, idea: IdeaStep,
               drafts: DraftStep, media: MediaStep, clock: StepClock) -> PostRecord:
        """The typed ``post.json`` of the finished steps."""
        best, images, reflection = drafts.best, drafts.images, drafts.reflection
        kinds = {r.kind for r in images}
        clock.switch("bundle")
        return PostRecord(
            post_id=post_id, user_id=inputs.user_id, kind=inputs.kind,
            platform=inputs.platform.name,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            title=best.title, body=best.body, hashtags=best.hashtags, links=best.links,
            images=[ImageEntry(file=name, prompt=r.plan.prompt, caption=r.plan.caption,
                               kind=r.kind, model=r.model)
                    for name, r in zip(image_files(len(images)), images, strict=True)],
            video=video_entry(media.video), storyboard=best.shots,
            media_note=("images are typeset text cards, not drawn pictures"
                        if kinds == {"card"} else ""),
            idea=idea.idea, ideation=ideation_entry(idea.ideation),
            exemplars=exemplars.exemplars,
            profile=ProfileEntry(text=inputs.profile, version=profile_version_of(inputs.profile),
                                 config_hash=inputs.profile_row["config_hash"],
                                 text_model=inputs.profile_row["text_model"],
                                 source=("fixed" if self.fixed_profile is not None
                                         else self.profiles_table)),
            reflection=self._reflection_entry(reflection),
            drafts=[draft_entry(d) for d in drafts.drafts],
            fallbacks=post_fallbacks(inputs, exemplars, idea, drafts, media),
            models=self.roles.provenance(), config_hash=self.config_hash, seed=inputs.seed,
            seconds_by_stage={k: round(v, 3) for k, v in clock.seconds.items()},
            model_seconds_by_stage={k: round(clock.model_seconds[k], 3) for k in clock.seconds},
            gpu_seconds_by_stage=({k: round(clock.gpu_seconds[k], 3) for k in clock.seconds}
                                  if self.roles.on_gpu else None),
            tokens_by_stage=dict(clock.tokens), seconds=round(clock.total(), 3))

    def _reflection_entry(self, reflection: Reflection[Draft]) -> ReflectionEntry:
        w, measured = self.config.clip_weight, self.roles.clip is not None
        best = reflection.best
        return ReflectionEntry(
            objective=(f"(relevance + {w:g}·CLIPScore/{CLIPSCORE_WEIGHT:g})/(1 + {w:g})" if measured
                       else "relevance"),
            clip_measured=measured,
            note="" if measured else ("image–text cohesion was not measured: no clip model is "
                                      "configured"),
            best_round=reflection.best_round,
            best=Scores(relevance=best.relevance, clip=best.clip, objective=best.objective),
            rounds=reflection.rounds)

    def bundle(self, target: Path, record: PostRecord, inputs: PostInputs, drafts: DraftStep,
               media: MediaStep) -> Path:
        """Write the bundle whole (:func:`~tailormind.generation.bundle.write_bundle`)."""
        return write_bundle(target, record, inputs.platform,
                            [(entry.file, r.image) for entry, r
                             in zip(record.images, drafts.images, strict=True)], media.path)


def image_files(n: int) -> list[str]:
    """The bundle's image file names: the cover, then ``image-2.png``..."""
    return ["cover.png" if i == 0 else f"image-{i + 1}.png" for i in range(n)]


def video_entry(video: GeneratedVideo | None) -> VideoEntry | None:
    if video is None:
        return None
    return VideoEntry(file="video.mp4", duration_s=round(video.duration_s, 3),
                      frames=video.frames, fps=video.fps, kind=video.kind, model=video.model,
                      shot_kinds=list(video.shot_kinds))


def ideation_entry(ideas: IdeationResult) -> IdeationEntry:
    return IdeationEntry(subset=ideas.subset, ideas=ideas.ideas, format=ideas.format,
                         attempts=ideas.attempts, repaired=ideas.repaired, empty=ideas.empty,
                         type_coerced=ideas.type_coerced, fallback=ideas.fallback)


def draft_entry(draft: Draft) -> DraftEntry:
    return DraftEntry(format=draft.format, fixes=draft.fixes, empty=draft.empty,
                      fallback=draft.fallback, attempts=draft.attempts, repaired=draft.repaired)


def post_fallbacks(inputs: PostInputs, exemplars: ExemplarStep, idea: IdeaStep,
                   drafts: DraftStep, media: MediaStep) -> list[str]:
    """Every fallback of every step, in step order (each is recorded, never silent)."""
    best = drafts.best
    out = [*inputs.fallbacks, *exemplars.fallbacks]
    out += [idea.ideation.fallback] if idea.ideation.fallback else []
    out += [best.fallback] if best.fallback else []
    out += [f"link removed (in neither the source items nor generation.link_allowlist): {url}"
            for url in best.removed_links]
    out += [i.error for i in drafts.images if i.error]
    out += [media.error] if media.error else []
    return out
