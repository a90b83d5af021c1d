"""What the raters see: every post of the bench's last report (every method, the ground-truth
UGC included) for the bench users, anonymised and in a per-rater seeded order.

An item's id is ``i`` + 12 hex digits of HMAC-SHA256(store secret, method, user): it names
neither, and cannot be guessed without the workspace's ratings store. Beside each post the rater
sees the user's recent history (most recent first) and the post's source items — for a
generated post its exemplars and the recent history (what the judge's hallucination check
reads), for the ground truth its own catalogue entry and the recent history — sorted by title,
so their order tells nothing either. Each rater's order is a shuffle seeded by
(``seeds.bench``, rater), so it is the same on every visit and differs between raters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.report import REPORT_JSON
from tailormind.bench.users import BenchUser, select_users
from tailormind.config import Settings
from tailormind.data.item_tags import model_items
from tailormind.data.workspace import Workspace
from tailormind.errors import CorruptFileError, WorkspaceError
from tailormind.generation.bundle import read_post
from tailormind.generation.catalog import packaged_catalog

SOURCE_CHARS = 300
HASHTAGS = 12


@dataclass(frozen=True)
class Media:
    kind: str  # "image" or "video"
    path: Path


@dataclass(frozen=True)
class RatingItem:
    item_id: str
    method: str  # never sent to a rater
    user_id: str  # never sent to a rater
    platform: str  # the platform's name (rednote, hupu, bilibili)
    title: str
    body: str
    hashtags: list[str]
    media: list[Media]
    history: list[str]
    sources: list[dict[str, str]]

    def for_rater(self) -> dict[str, Any]:
        """What the page shows: no method, no user id, no path; the platform's title and colours
        (its catalogue theme), so the post looks as it would there."""
        platform = packaged_catalog().platform(self.platform)
        theme = platform.theme.model_dump(mode="json")
        return {"item_id": self.item_id, "platform": platform.title, "theme": theme,
                "title": self.title,
                "body": self.body, "hashtags": self.hashtags,
                "media": [{"kind": m.kind, "url": f"items/{self.item_id}/media/{n}"}
                          for n, m in enumerate(self.media)],
                "history": self.history, "sources": self.sources}


@dataclass
class RatingSet:
    items: dict[str, RatingItem]
    seed: int
    methods: list[str] = field(default_factory=list)

    def order(self, rater: str) -> list[str]:
        """The item ids in ``rater``'s seeded order."""
        ids = sorted(self.items)
        digest = hashlib.sha256(f"{self.seed}\x00{rater}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
        return [ids[i] for i in rng.permutation(len(ids))]


def anonymous_id(secret: str, method: str, user_id: str) -> str:
    mac = hmac.new(secret.encode(), f"{method}\x00{user_id}".encode(), hashlib.sha256)
    return "i" + mac.hexdigest()[:12]


def read_report(workspace: Workspace) -> dict[str, Any]:
    """``bench/report.json``; a WorkspaceError says to run the bench when there is none."""
    path = workspace.root / BENCH_DIR / REPORT_JSON
    if not path.is_file():
        raise WorkspaceError(f"{workspace.root} has no bench report to rate; run `tailormind "
                             f"bench run --workspace {workspace.root}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: not a bench report ({exc}); run `tailormind bench "
                               "run` again") from None


def _source(item: dict[str, Any], item_id: str) -> dict[str, str]:
    return {"title": item.get("title") or f"item {item_id}",
            "text": (item.get("text") or "")[:SOURCE_CHARS],
            "tags": ", ".join(list(item.get("tags") or [])[:HASHTAGS])}


def _sources(ids: list[str], items: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    found = [_source(items.get(i) or {}, i) for i in dict.fromkeys(ids)]
    return sorted(found, key=lambda s: (s["title"].lower(), s["text"]))


def _ground_truth(workspace: Workspace, row_id: str, user: BenchUser, platform: str,
                  items: dict[str, dict[str, Any]], recent: list[str]) -> RatingItem:
    item = items.get(user.target) or {}
    images = [workspace.media_path(p) for p in item.get("image_paths") or []]
    return RatingItem(row_id, "ground_truth", user.user_id, platform, item.get("title") or "",
                      item.get("text") or "", list(item.get("tags") or [])[:HASHTAGS],
                      [Media("image", p) for p in images if p.is_file()],
                      [], _sources([user.target, *recent], items))


def _generated(workspace: Workspace, row_id: str, method: str, user: BenchUser, path: str,
               items: dict[str, dict[str, Any]], recent: list[str]) -> RatingItem | None:
    bundle = workspace.root / path
    record = read_post(bundle)
    if record is None:
        return None
    media = [Media("image", bundle / i.file) for i in record.images]
    if record.video is not None:
        media.append(Media("video", bundle / record.video.file))
    sources = [e.item_id for e in record.exemplars] + recent
    return RatingItem(row_id, method, user.user_id, record.platform, record.title, record.body,
                      list(record.hashtags), [m for m in media if m.path.is_file()], [],
                      _sources(sources, items))


def load_rating_set(workspace: Workspace, settings: Settings, secret: str) -> RatingSet:
    """Every post scored in the last bench report (a post whose bundle is gone is left out)."""
    report = read_report(workspace)
    users = {u.user_id: u for u in select_users(workspace, len(report["users"]),
                                                settings.seeds.bench, report["users"])}
    items = {r["item_id"]: r for r in model_items(
        workspace, columns=["item_id", "title", "text", "tags", "image_paths"]).to_pylist()}
    platform = report["config"]["generation"]["platform"]
    shown = settings.bench.judge_history_items
    found: dict[str, RatingItem] = {}
    for row in report["per_post"]:
        user = users.get(row["user_id"])
        if user is None:
            continue
        recent = user.history[::-1][:shown]
        row_id = anonymous_id(secret, row["method"], row["user_id"])
        if row["method"] == "ground_truth":
            item = _ground_truth(workspace, row_id, user, platform, items, recent)
        else:
            item = _generated(workspace, row_id, row["method"], user, row["path"], items, recent)
        if item is not None:
            history = [(items.get(i) or {}).get("title") or f"item {i}" for i in recent]
            found[row_id] = RatingItem(**{**item.__dict__, "history": history})
    return RatingSet(found, settings.seeds.bench, [m["name"] for m in report["methods"]])
