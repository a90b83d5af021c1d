"""One user's post or video, end to end (DESIGN.md "Generation"):

profile -> exemplars (Eq. 15) -> ideas (Eq. 16) -> draft -> cohesion reflection (Eq. 17–19,
images rendered and scored every round) -> video (for ``kind == "video"``) -> bundle.

Everything a reader of ``post.json`` needs to trust the post is recorded: the idea and the
template subset, the exemplars and their scores, the profile text and version, every reflection
round's scores, what was fixed or fell back and why, the model of every role, the config hash,
and seconds and LLM tokens per stage.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from tailormind.config import Settings
from tailormind.core.atomic import new_temp_file
from tailormind.core.vocabulary import KINDS
from tailormind.data.item_tags import model_items
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError, WorkspaceError
from tailormind.generation.bundle import bundle_dir, post_id_for, write_bundle
from tailormind.generation.catalog import Catalog, packaged_catalog
from tailormind.generation.exemplars import select_exemplars
from tailormind.generation.ideation import ideate
from tailormind.generation.media import RenderedImage, card_role, render_images, render_video
from tailormind.generation.reflection import Scored, objective, reflect, relevance
from tailormind.generation.writing import Draft, write_draft
from tailormind.models.registry import load_role
from tailormind.models.roles import ClipScorer, Embedder, ImageGenerator, TextModel, VideoGenerator
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


@dataclass
class GeneratedPost:
    user_id: str
    post_id: str
    path: Path
    record: dict[str, Any]


@dataclass
class _Stages:
    seconds: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)

    def time(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now


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

    # -- inputs ---------------------------------------------------------------------------------
    def _profile(self, user_id: str) -> dict[str, Any]:
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
        item = self.items.get(item_id, {})
        parts = [item.get("title") or "", item.get("text") or ""]
        tags = item.get("tags") or []
        if tags:
            parts.append("Tags: " + ", ".join(tags[:12]))
        return ". ".join(p for p in parts if p) or self.features.describe(item_id)

    # -- one post -------------------------------------------------------------------------------
    def generate(self, user_id: str, *, platform: str | None = None, kind: str | None = None,
                 seed: int | None = None,
                 progress: Callable[[str], None] | None = None) -> GeneratedPost:
        """Generate and bundle one post. ``progress(stage)`` is called as each stage starts
        (``exemplars``, ``ideation``, ``writing``, ``scoring``, ``revision N``, ``video``,
        ``bundle``); an exception it raises stops the post (nothing is bundled)."""
        stages = _Stages()
        started = time.perf_counter()
        report = progress or (lambda stage: None)
        report("exemplars")
        platform_cfg = self.catalog.platform(platform or self.config.platform)
        kind = kind or platform_cfg.default_kind
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        if kind == "video" and self.roles.video is None:
            raise ConfigError("video generation needs the video role; load Roles with 'video'")
        seed = self.settings.seeds.generation if seed is None else seed
        row = self._profile(user_id)
        profile, profile_vector = row["profile"], np.asarray(row["embedding"], dtype=np.float32)
        profile_version = profile_version_of(profile)
        evidence = load_evidence(self.workspace, [user_id], use_cf=(
            self.config.use_cf and self.workspace.has("cf_topk")))[user_id]
        fallbacks: list[str] = []
        if row.get("fallback"):
            fallbacks.append(f"profile: {row['fallback']}")

        exemplars = (select_exemplars(profile_vector, evidence.history, evidence.cf,
                                      self.features, self.config.exemplar_top_k)
                     if self.config.use_exemplars else [])
        exemplar_texts = [(f"item {e.item_id}", self._item_text(e.item_id)) for e in exemplars]
        tags = [t for e in exemplars for t in (self.items.get(e.item_id, {}).get("tags") or [])]
        tags += [t for i in evidence.history[::-1] for t in (self.items.get(i, {}).get("tags")
                                                              or [])]
        reference_items = evidence.history or evidence.cf
        if reference_items:
            history_vector = self.features.vectors(reference_items).mean(axis=0)
        else:
            history_vector = profile_vector
            fallbacks.append("no usable history: relevance is measured against the profile")
        if not evidence.history and self.config.use_exemplars:
            fallbacks.append("no train history: exemplars come from CF only" if evidence.cf
                             else "no history and no CF items: no exemplars")
        clock = stages.time("exemplars", started)

        report("ideation")
        templates = self.catalog.templates(kind)
        ideas = ideate(profile=profile, profile_vector=profile_vector,
                       exemplar_texts=exemplar_texts, kind=kind, platform=platform_cfg,
                       templates=templates, text=self.roles.text, embedder=self.roles.embed,
                       config=self.config)
        stages.tokens["ideation"] += ideas.prompt_tokens + ideas.completion_tokens
        if ideas.fallback:
            fallbacks.append(ideas.fallback)
        idea = ideas.ideas[0]
        template = next(t for t in templates if t.name == idea.type)
        clock = stages.time("ideation", clock)

        drafts: list[Draft] = []

        def write(previous: Draft | None = None, feedback: str | None = None) -> Draft:
            nonlocal clock
            clock = stages.time("reflection" if drafts else "writing", clock)
            report(f"revision {len(drafts)}" if drafts else "writing")
            draft = write_draft(kind=kind, platform=platform_cfg, template=template,
                                idea=idea.idea, profile=profile, exemplar_texts=exemplar_texts,
                                text=self.roles.text, config=self.config, fallback_tags=tags,
                                previous=previous, feedback=feedback)
            stages.tokens["writing"] += draft.prompt_tokens + draft.completion_tokens
            drafts.append(draft)
            clock = stages.time("writing", clock)
            return draft

        def score(draft: Draft) -> Scored[Draft]:
            nonlocal clock
            report("scoring")
            images = render_images(draft, self.roles.image, platform_cfg, seed, self.roles.card)
            clock = stages.time("media", clock)
            rel = relevance(self.roles.embed.embed([draft.text()])[0], history_vector)
            clip = None
            if self.roles.clip is not None and images:
                clip = float(np.mean(self.roles.clip.clip_score(
                    [i.image for i in images], [i.plan.caption or draft.title for i in images])))
            clock = stages.time("reflection", clock)
            return Scored(draft, rel, clip, objective(rel, clip, self.config.clip_weight), images)

        reflection = reflect(write(), score,
                             lambda best, feedback: write(best, feedback),
                             self.config.reflection_rounds,
                             repeatable=self.roles.text.default_params.temperature == 0)
        best: Draft = reflection.best.version
        rendered: list[RenderedImage] = reflection.best.media
        if best.fallback:
            fallbacks.append(best.fallback)
        fallbacks += [f"link removed (in neither the source items nor generation.link_allowlist):"
                      f" {url}" for url in best.removed_links]
        fallbacks += [i.error for i in rendered if i.error]

        post_id = planned_post_id(self.settings, user_id, profile, kind, platform_cfg.name, seed)
        target = bundle_dir(self.output_root, user_id, post_id)
        video_record, video_path = None, None
        if kind == "video":
            assert self.roles.video is not None
            report("video")
            # hidden beside the bundle: moved into it, or removed (by recovery if we are killed)
            video_path = new_temp_file(target, suffix=".mp4")
            made, error = render_video(best, self.roles.video, platform_cfg, video_path, seed)
            if made is None:
                fallbacks.append(error or "video failed")
                video_path.unlink(missing_ok=True)
                video_path = None
            else:
                video_record = {"file": "video.mp4", "duration_s": round(made.duration_s, 3),
                                "frames": made.frames, "fps": made.fps, "kind": made.kind,
                                "model": made.model, "shot_kinds": made.shot_kinds}
            clock = stages.time("video", clock)

        image_files = [("cover.png" if n == 0 else f"image-{n + 1}.png", r)
                       for n, r in enumerate(rendered)]
        kinds = {r.kind for r in rendered}
        record: dict[str, Any] = {
            "post_id": post_id, "user_id": user_id, "kind": kind, "platform": platform_cfg.name,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "title": best.title, "body": best.body, "hashtags": best.hashtags,
            "links": best.links,
            "images": [{"file": name, "prompt": r.plan.prompt, "caption": r.plan.caption,
                        "kind": r.kind, "model": r.model} for name, r in image_files],
            "video": video_record,
            "storyboard": [asdict(s) for s in best.shots],
            "media_note": ("images are typeset text cards, not drawn pictures"
                           if kinds == {"card"} else ""),
            "idea": asdict(idea),
            "ideation": {"subset": ideas.subset, "ideas": [asdict(i) for i in ideas.ideas],
                         "format": ideas.format, "attempts": ideas.attempts,
                         "repaired": ideas.repaired, "empty": ideas.empty,
                         "type_coerced": ideas.type_coerced, "fallback": ideas.fallback},
            "exemplars": [asdict(e) for e in exemplars],
            "profile": {"text": profile, "version": profile_version,
                        "config_hash": row["config_hash"], "text_model": row["text_model"],
                        "source": ("fixed" if self.fixed_profile is not None
                                   else self.profiles_table)},
            "reflection": {
                "objective": ("relevance" if self.roles.clip is None else
                              f"(relevance + {self.config.clip_weight:g}·CLIPScore/2.5)"
                              f"/(1 + {self.config.clip_weight:g})"),
                "clip_measured": self.roles.clip is not None,
                "note": ("" if self.roles.clip is not None else
                         "image–text cohesion was not measured: no clip model is configured"),
                "best_round": reflection.best_round,
                "best": {"relevance": reflection.best.relevance, "clip": reflection.best.clip,
                         "objective": reflection.best.objective},
                "rounds": [asdict(r) for r in reflection.rounds],
            },
            "drafts": [{"format": d.format, "fixes": d.fixes, "empty": d.empty,
                        "fallback": d.fallback, "attempts": d.attempts, "repaired": d.repaired}
                       for d in drafts],
            "fallbacks": fallbacks,
            "models": self.roles.provenance(),
            "config_hash": self.config_hash,
            "seed": seed,
        }
        clock = stages.time("bundle", clock)
        record["seconds_by_stage"] = {k: round(v, 3) for k, v in stages.seconds.items()}
        record["tokens_by_stage"] = dict(stages.tokens)
        record["seconds"] = round(time.perf_counter() - started, 3)
        try:
            report("bundle")
            path = write_bundle(target, record, platform_cfg,
                                [(name, r.image) for name, r in image_files], video_path)
        finally:
            if video_path is not None:
                video_path.unlink(missing_ok=True)  # moved into the bundle unless it failed
        return GeneratedPost(user_id, post_id, path, record)
