"""Item descriptions φ_m (Eq. 8): one text per modality per item, merged, and embedded.

- text: the item's free text (title and text) and its tags. Free text up to ``short_text_chars``
  passes through unchanged (``profiling.passthrough_short_text``: a 135M model only loses
  information rewriting it); longer free text is summarised by the ``text`` role. Tags are
  structured data: never rewritten, they are cut to the most informative that fit
  (:mod:`tailormind.data.tag_idf`), so a tag-heavy catalogue needs no text model at all.
- image: the first ``max_images_per_item`` images, described together by the ``describe`` role.
- video: the first video, its first and last 8 s described separately by ``describe``, then
  merged by ``text`` (``docs/architecture.md``, "Item description").

Whatever cannot be described (no describe model configured, an image that does not decode, a
server that fails) falls back to the remaining modalities; the reason is recorded per item in
``fallback`` and counted in :class:`DescribeReport`. Every item gets an embedding of its merged
description. Output: the ``item_features`` table, written as resumable parts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tailormind.config import ProfilingConfig, Settings
from tailormind.data.item_tags import model_items
from tailormind.data.item_text import item_text
from tailormind.data.tag_idf import TagIdf
from tailormind.data.schemas import ITEM_FEATURES
from tailormind.data.workspace import Workspace
from tailormind.errors import ModelError, ModelNotConfiguredError, TailorMindError
from tailormind.models.registry import load_role
from tailormind.models.roles import Describer, Embedder, TextModel
from tailormind.models.types import GenerationParams
from tailormind.profiling.parts import PartWriter
from tailormind.prompts import render
from tailormind.prompts.ugc import CHARS_PER_TOKEN, quote_ugc

ITEM_COLUMNS = ["item_id", "title", "text", "tags", "image_paths", "video_paths", "platform"]
#: Item text (title, tags, text, platform) enters a describing prompt quoted and cut to this many
#: characters (the start of a long text carries its subject; prompt length is the cost).
QUOTED_ITEM_CHARS = 8000


def _quoted(text: str, label: str) -> str:
    """Item-provided ``text`` as a quoted block, or ``""`` when it is empty."""
    return quote_ugc(text, label=label, limit=QUOTED_ITEM_CHARS) if text else ""


@dataclass
class DescribeReport:
    items: int = 0
    described: int = 0
    skipped_done: int = 0
    complete: bool = False
    seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)
    models: dict[str, str] = field(default_factory=dict)


class ItemDescriber:
    """Holds the model roles and turns a batch of item rows into ``item_features`` rows.

    Roles are loaded from ``settings`` unless given (tests inject tiny models). A ``describe``
    role that is not configured is not an error: images and videos fall back, counted.
    """

    def __init__(self, settings: Settings, workspace: Workspace, *, text: TextModel | None = None,
                 embed: Embedder | None = None, describe: Describer | None = None,
                 describe_reason: str | None = None, tag_idf: TagIdf | None = None) -> None:
        self.settings = settings
        self.config = settings.profiling
        self.workspace = workspace
        self._text = text
        self.embed = embed or load_role("embed", settings)
        self.describe = describe
        self.describe_reason = describe_reason
        if describe is None and describe_reason is None:
            try:
                self.describe = load_role("describe", settings)
            except ModelNotConfiguredError:
                self.describe_reason = "not configured"
        self._tag_idf = tag_idf
        self.params = GenerationParams(max_tokens=self.config.item_description_tokens)
        self.max_words = max(20, int(self.config.item_description_tokens * 0.6))

    @property
    def text(self) -> TextModel:
        if self._text is None:  # loaded only when some text is long or a video needs merging
            self._text = load_role("text", self.settings)
        return self._text

    @property
    def tag_idf(self) -> TagIdf:
        """Document frequencies of the workspace's tags, read when first needed."""
        if self._tag_idf is None:
            tags = model_items(self.workspace, columns=["item_id", "tags"]).column("tags")
            self._tag_idf = TagIdf.from_tag_lists(tags.to_pylist())
        return self._tag_idf

    def models(self) -> dict[str, str]:
        out = {"embed": self.embed.model_id}
        if self._text is not None:
            out["text"] = self._text.model_id
        if self.describe is not None:
            out["describe"] = self.describe.model_id
        return out

    # -- one batch ---------------------------------------------------------------------------
    def describe_rows(self, rows: list[dict[str, Any]]) -> pa.Table:
        fallbacks: list[list[str]] = [[] for _ in rows]
        text_desc, text_src = self._texts(rows, fallbacks)
        image_desc, image_src = self._images(rows, fallbacks)
        video_desc, video_src = self._videos(rows, fallbacks)
        descriptions = []
        for i in range(len(rows)):
            parts = [text_desc[i] or ""]
            if image_desc[i]:
                parts.append(f"Images: {image_desc[i]}")
            if video_desc[i]:
                parts.append(f"Video: {video_desc[i]}")
            description = " ".join(p for p in parts if p).strip()
            if not description:
                fallbacks[i].append("no text, tags or usable media: empty description")
            descriptions.append(description)
        vectors = self.embed.embed(descriptions)
        vectors[np.array([not d for d in descriptions], dtype=bool)] = 0.0  # no evidence: no vector
        return pa.Table.from_pydict({
            "item_id": [row["item_id"] for row in rows],
            "description": descriptions,
            "text_description": text_desc,
            "image_description": image_desc,
            "video_description": video_desc,
            "text_source": text_src,
            "image_source": image_src,
            "video_source": video_src,
            "fallback": ["; ".join(f) if f else None for f in fallbacks],
            "embedding": [v.astype(np.float32).tolist() for v in vectors],
            "embed_model": [self.embed.model_id] * len(rows),
        }, schema=ITEM_FEATURES)

    def _texts(self, rows: list[dict], fallbacks: list[list[str]]
               ) -> tuple[list[str | None], list[str]]:
        """Each item's text description: its free text (title and text) as it is up to
        ``short_text_chars``, else summarised by ``text``; then its most informative tags that
        fit what is left of ``short_text_chars`` (at least a quarter of it), never rewritten
        (:mod:`tailormind.data.tag_idf`). ``tag_lists: summarise`` summarises the tags with the
        text instead (the behaviour before tags were cut; hours on a tag-heavy catalogue)."""
        whole = self.config.tag_lists == "summarise"
        free = [item_text(row) if whole else item_text({**row, "tags": None}) for row in rows]
        sources = ["passthrough" if t else "none" for t in free]
        limit = self.config.short_text_chars
        long = [i for i, t in enumerate(free)
                if t and not (self.config.passthrough_short_text and len(t) <= limit)]
        bodies = list(free)
        for i, (body, source) in self._summaries(rows, free, long, whole, fallbacks).items():
            bodies[i], sources[i] = body, source
        if whole:
            return [b or None for b in bodies], sources
        out: list[str | None] = []
        for row, body in zip(rows, bodies, strict=True):
            unmentioned = [t for t in row.get("tags") or [] if t and t.lower() not in body.lower()]
            kept = self.tag_idf.fit(unmentioned, max(limit - len(body) - 1, limit // 4))
            out.append(item_text({"text": body, "tags": kept}) or None)
        return out, sources

    def _summaries(self, rows: list[dict], texts: list[str], long: list[int], with_tags: bool,
                   fallbacks: list[list[str]]) -> dict[int, tuple[str, str]]:
        """``{row: (summary, source)}`` for the ``long`` texts, one batched ``text`` call; a
        failed or empty summary is the text cut to ``short_text_chars``, recorded."""
        if not long:
            return {}
        prompts = [[{"role": "user", "content": render(
            "profiling/item_text.txt", max_words=self.max_words,
            title=_quoted(rows[i].get("title") or "", "title"),
            tags=_quoted(", ".join(rows[i].get("tags") or []), "tags") if with_tags else "",
            text=_quoted(texts[i], "text"))}] for i in long]
        cut = self.config.short_text_chars
        try:
            answers = [a.text.strip() for a in self.text.complete(prompts, self.params)]
        except ModelError as exc:
            for i in long:
                fallbacks[i].append(f"text model failed ({exc}); text truncated")
            return {i: (texts[i][:cut], "passthrough (truncated)") for i in long}
        out = {}
        for i, answer in zip(long, answers, strict=True):
            if answer:
                out[i] = (answer, f"text:{self.text.model_id}")
            else:
                out[i] = (texts[i][:cut], "passthrough (truncated)")
                fallbacks[i].append("text model returned an empty summary; text truncated")
        return out

    def _media(self, row: dict, column: str) -> list[Any]:
        return [self.workspace.media_path(p) for p in (row.get(column) or [])]

    def _images(self, rows: list[dict], fallbacks: list[list[str]]
                ) -> tuple[list[str | None], list[str]]:
        out: list[str | None] = [None] * len(rows)
        sources = ["none"] * len(rows)
        for i, row in enumerate(rows):
            paths = self._media(row, "image_paths")[: self.config.max_images_per_item]
            if not paths:
                continue
            if self.describe is None:
                sources[i] = self.describe_reason or "not configured"
                fallbacks[i].append(f"{len(paths)} image(s) not described: describe model "
                                    f"{self.describe_reason}")
                continue
            instruction = render("profiling/describe_image.txt", max_words=self.max_words,
                                 platform=_quoted(row.get("platform") or "", "platform"),
                                 title=_quoted(row.get("title") or "", "title"))
            try:
                answer = self.describe.describe(paths, instruction, self.params)
            except TailorMindError as exc:
                sources[i] = "failed"
                fallbacks[i].append(f"images not described: {exc}")
                continue
            out[i], sources[i] = answer.text or None, f"describe:{self.describe.model_id}"
        return out, sources

    def _videos(self, rows: list[dict], fallbacks: list[list[str]]
                ) -> tuple[list[str | None], list[str]]:
        out: list[str | None] = [None] * len(rows)
        sources = ["none"] * len(rows)
        merges: list[tuple[int, str, str]] = []
        for i, row in enumerate(rows):
            paths = self._media(row, "video_paths")
            if not paths:
                continue
            if self.describe is None:
                sources[i] = self.describe_reason or "not configured"
                fallbacks[i].append(f"video not described: describe model {self.describe_reason}")
                continue
            window = self.describe.window_s
            try:
                head_instruction = render("profiling/describe_video.txt", segment="first",
                                          seconds=int(window), max_words=self.max_words,
                                          title=_quoted(row.get("title") or "", "title"))
                video = self.describe.describe_video(paths[0], head_instruction, self.params)
            except TailorMindError as exc:
                sources[i] = "failed"
                fallbacks[i].append(f"video not described: {exc}")
                continue
            sources[i] = f"describe:{self.describe.model_id}"
            if video.tail is None:
                out[i] = video.head.text or None
            else:
                merges.append((i, video.head.text, video.tail.text))
        if merges:
            half_chars = CHARS_PER_TOKEN * self.config.item_description_tokens
            prompts = [[{"role": "user", "content": render(
                "profiling/video_merge.txt", max_words=self.max_words,
                seconds=int(self.describe.window_s),
                head=quote_ugc(head, label="opening", limit=half_chars),
                tail=quote_ugc(tail, label="ending", limit=half_chars))}]
                for _, head, tail in merges]
            try:
                answers = [a.text for a in self.text.complete(prompts, self.params)]
            except ModelError as exc:
                answers = [""] * len(merges)
                for i, _, _ in merges:
                    fallbacks[i].append(f"video halves not merged ({exc}); both kept")
            for (i, head, tail), merged in zip(merges, answers, strict=True):
                out[i] = merged.strip() or f"Opening: {head} Ending: {tail}"
        return out, sources


@dataclass
class DescribePlan:
    """What a (re-)run of the describe stage has to do."""

    writer: PartWriter
    rows: list[dict[str, Any]]
    report: DescribeReport


def plan_describe(workspace: Workspace, settings: Settings, *, limit: int | None = None,
                  force: bool = False) -> DescribePlan:
    """The items not described yet (all of them with ``force``), at most ``limit``."""
    writer = PartWriter(workspace, "item_features", "item_id")
    items = model_items(workspace, columns=ITEM_COLUMNS)
    report = DescribeReport(items=items.num_rows)
    if force:
        writer.clear()
    elif workspace.has("item_features") and not writer.parts():
        existing = set(workspace.read("item_features", columns=["item_id"])
                       .column("item_id").to_pylist())
        if existing >= set(items.column("item_id").to_pylist()):
            report.skipped_done, report.complete = len(existing), True
            return DescribePlan(writer, [], report)
    done = writer.done()
    report.skipped_done = len(done)
    rows = [row for row in items.to_pylist() if row["item_id"] not in done]
    return DescribePlan(writer, rows[:limit] if limit is not None else rows, report)


def count_outcomes(table: pa.Table) -> Counter:
    """How each modality was handled in a batch of ``item_features`` rows."""
    counts: Counter = Counter()
    for row in table.select(["text_source", "image_source", "video_source", "description"]
                            ).to_pylist():
        text = row["text_source"]
        counts["text_passthrough" if text == "passthrough" else
               "text_summarised" if text.startswith("text:") else
               "text_fallback" if text.startswith("passthrough (") else "text_none"] += 1
        for modality in ("image", "video"):
            source = row[f"{modality}_source"]
            if source.startswith("describe:"):
                counts[f"{modality}_described"] += 1
            elif source != "none":
                counts[f"{modality}_fallback"] += 1
        if not row["description"]:
            counts["empty"] += 1
    counts.pop("text_none", None)
    return counts


def finish_describe(plan: DescribePlan, models: dict[str, str], started: float) -> DescribeReport:
    """Consolidate the parts into ``item_features`` once every item is described."""
    report = plan.report
    report.models = models
    if report.skipped_done + report.described >= report.items:
        plan.writer.consolidate(models=models, fallbacks=dict(report.counts))
        report.complete = True
    report.seconds = time.perf_counter() - started
    return report


def describe_items(
    workspace: Workspace,
    settings: Settings,
    *,
    describer: ItemDescriber | None = None,
    limit: int | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DescribeReport:
    """Describe every item not described yet, in resumable parts, in this process."""
    started = time.perf_counter()
    plan = plan_describe(workspace, settings, limit=limit, force=force)
    if plan.report.complete:
        return plan.report
    describer = describer or ItemDescriber(settings, workspace)
    for batch in describe_parts(plan.rows, settings.profiling):
        table = describer.describe_rows(batch)
        plan.writer.write(table)
        plan.report.described += len(batch)
        plan.report.counts.update(count_outcomes(table))
        if progress:
            progress(len(batch))
    return finish_describe(plan, describer.models(), started)


def describe_parts(rows: list[dict], config: ProfilingConfig) -> Iterable[list[dict]]:
    """``rows`` in order, cut into parts of at most ``describe_batch_size`` items of which at most
    ``describe_model_items_per_part`` need a model (free text to summarise, images or a video):
    each part is saved when done, so progress is saved every few minutes whatever the mix."""
    part: list[dict] = []
    model_items = 0
    for row in rows:
        needs_model = _needs_model(row, config)
        if part and (len(part) == config.describe_batch_size or
                     (needs_model and model_items == config.describe_model_items_per_part)):
            yield part
            part, model_items = [], 0
        part.append(row)
        model_items += needs_model
    if part:
        yield part


def _needs_model(row: dict, config: ProfilingConfig) -> bool:
    if row.get("image_paths") or row.get("video_paths"):
        return True
    free = item_text(row) if config.tag_lists == "summarise" else item_text({**row, "tags": None})
    return bool(free) and not (config.passthrough_short_text
                               and len(free) <= config.short_text_chars)
