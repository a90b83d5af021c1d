"""Data set statistics of a workspace (``tailormind data stats``).

density = interactions / (users x items); per-user counts are over all interactions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.compute as pc

from tailormind.data.workspace import Workspace


def workspace_stats(workspace: Workspace) -> dict[str, Any]:
    """Users, items, tags, interactions, density, per-user min/median/max, and the split sizes."""
    items = workspace.read("items", columns=["item_id", "tags", "image_paths", "video_paths"])
    interactions = workspace.read("interactions", columns=["user_id", "timestamp"])
    users = workspace.read("users", columns=["user_id"])
    n_users = users.num_rows
    n_items = items.num_rows
    tags = pc.list_flatten(items.column("tags"))
    per_user = interactions.group_by("user_id").aggregate([("user_id", "count")])
    counts = per_user.column("user_id_count").to_numpy() if per_user.num_rows else np.zeros(1)
    n_inter = interactions.num_rows
    stats: dict[str, Any] = {
        "workspace": str(workspace.root),
        "source": workspace.manifest.get("import", {}).get("source"),
        "users": n_users,
        "items": n_items,
        "tags": len(pc.unique(tags)) if len(tags) else 0,
        "tag_assignments": len(tags),
        "items_with_tags": int(pc.sum(pc.greater(pc.list_value_length(items.column("tags")), 0)).as_py() or 0),
        "items_with_images": int(pc.sum(pc.greater(pc.list_value_length(items.column("image_paths")), 0)).as_py() or 0),
        "items_with_videos": int(pc.sum(pc.greater(pc.list_value_length(items.column("video_paths")), 0)).as_py() or 0),
        "interactions": n_inter,
        "density": n_inter / (n_users * n_items) if n_users and n_items else 0.0,
        "interactions_per_user": {
            "min": int(counts.min()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
        },
        "users_without_interactions": n_users - per_user.num_rows,
        "interactions_without_timestamp": interactions.column("timestamp").null_count,
    }
    report = workspace.manifest.get("import", {})
    if "duplicate_interactions_merged" in report:
        stats["duplicate_interactions_merged"] = report["duplicate_interactions_merged"]
    # rows the table importer dropped under on_dangling: drop, per file name (and by reason)
    stats["dropped_dangling"] = dict(report.get("dropped_dangling", {}))
    if report.get("dropped_dangling_reasons"):
        stats["dropped_dangling_reasons"] = report["dropped_dangling_reasons"]
    if stats["interactions_without_timestamp"]:
        stats["order_note"] = (
            "interactions without timestamp are ordered per user by a seeded random order"
        )
    stats["tag_events"] = workspace.read("tag_events", columns=["item_id"]).num_rows \
        if workspace.has("tag_events") else 0
    split = workspace.manifest.get("split")
    if split is not None and workspace.has("split"):
        stats["split"] = {k: v for k, v in split.items() if k != "order"}
    else:
        stats["split"] = None
    return stats
