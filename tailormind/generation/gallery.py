"""``generations/index.html``: every generated post beside the history it was made from.

One self-contained page (inline CSS, no network; one inline script flags images that did not
load and counts them on ``<body data-images-shown data-images-broken>``): per post its cover,
title, body, platform and kind, reflection scores, recorded fallbacks and a link to the bundle's
``preview.html``; beside it the user's last ``history_items`` train items (title and tags) and
the profile. Every reference is relative and stays inside ``generations/``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tailormind.core.atomic import write_text_atomic
from tailormind.data.item_tags import model_items
from tailormind.data.workspace import Workspace
from tailormind.generation.bundle import GENERATIONS, render_html
from tailormind.generation.bundle_scan import read_bundles, recover_bundles
from tailormind.profiling.evidence import load_evidence

GALLERY = "index.html"


def write_gallery(workspace: Workspace, history_items: int = 8,
                  unreadable: list[str] | None = None) -> Path:
    """Write ``<workspace>/generations/index.html`` atomically; returns its path. Lists the live
    bundles after repairing what a killed writer left (never a staging or ``.old`` directory);
    bundles whose ``post.json`` cannot be read are left out, named on the page and in
    ``unreadable``."""
    skipped: list[str] = [] if unreadable is None else unreadable
    recover_bundles(workspace.root)
    listed = read_bundles(workspace.root, skipped)
    users = sorted({p.record.user_id for p in listed})
    evidence = load_evidence(workspace, users, use_cf=False) if users else {}
    items = {r["item_id"]: r for r in
             model_items(workspace, columns=["item_id", "title", "tags"]).to_pylist()}
    posts = []
    for p in listed:
        r, user = p.record, p.record.user_id
        history = evidence[user].history[-history_items:][::-1] if user in evidence else []
        rounds = r.reflection.rounds
        posts.append({
            "post_id": r.post_id, "user_id": user, "platform": r.platform,
            "kind": r.kind, "title": r.title, "body": r.body,
            "dir": Path(p.directory).relative_to(GENERATIONS).as_posix(),
            "cover": r.images[0].file if r.images else "",
            "video": r.video, "idea_type": r.idea.type,
            "relevance_first": rounds[0].relevance, "rounds": len(rounds),
            "relevance_best": r.reflection.best.relevance,
            "clip": r.reflection.best.clip, "seconds": r.seconds, "tokens": r.llm_tokens,
            "text_model": r.models.get("text", {}).get("model", ""),
            "fallbacks": r.fallbacks, "profile": r.profile.text,
            "history": [{"title": items.get(i, {}).get("title") or i,
                         "tags": (items.get(i, {}).get("tags") or [])[:4]} for i in history],
        })
    html = render_html("gallery.html.j2",
        posts=posts, users=len(users), workspace=workspace.root.name, unreadable=skipped,
        made_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    target = workspace.root / GENERATIONS / GALLERY
    write_text_atomic(target, html)
    return target
