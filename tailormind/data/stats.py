"""Data set statistics of a workspace (``tailormind data stats``).

density = interactions / (users x items); per-user counts are over all interactions.

The watermark (:mod:`tailormind.data.appends`): the last append's id and time, the appends so
far, and how many appended interactions are newer than what each stage consumed: the profiles
(per user, the rows appended after that user's profile ``watermark``; a profile written before
profiles had one reads as 0), the last CF checkpoint and ``cf_topk`` (their manifest entries'
``watermark``; absent: 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tailormind.data.appends import APPENDED_TABLE, watermark
from tailormind.data.workspace import Workspace
from tailormind.errors import CorruptFileError


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
    stats.update(append_stats(workspace))
    return stats


def append_stats(workspace: Workspace) -> dict[str, Any]:
    """The watermark, the appends so far and the appended interactions each stage has not seen
    (None for a stage that has not run)."""
    mark = watermark(workspace)
    appended = workspace.read(APPENDED_TABLE, columns=["user_id", "append_id"]) \
        if workspace.has(APPENDED_TABLE) else pa.table({"user_id": pa.array([], pa.string()),
                                                        "append_id": pa.array([], pa.int64())})
    ids = appended.column("append_id").to_numpy()
    models = {name.split(":", 1)[1]: entry for name, entry in
              workspace.manifest.get("artifacts", {}).items()
              if name.startswith("cf:") and workspace.has_artifact(name)}
    cf = None
    if models:
        last = max(models.values(), key=lambda e: (str(e.get("written_at", "")),
                                                   int(e.get("watermark", 0))))
        since = int(last.get("watermark", 0))
        cf = {"watermark": since, "interactions": int((ids > since).sum()),
              "models": {name: int(e.get("watermark", 0)) for name, e in sorted(models.items())}}
    topk = None
    if workspace.has("cf_topk"):
        since = int(workspace.manifest["tables"]["cf_topk"].get("watermark", 0))
        topk = {"watermark": since, "interactions": int((ids > since).sum())}
    return {
        "watermark": {"append_id": mark.append_id, "appended_at": mark.appended_at},
        "appends": len(workspace.manifest.get("appends", [])),
        "appended_interactions": appended.num_rows,
        "appended_since_profiles": _since_profiles(workspace, appended),
        "appended_since_cf": cf,
        "appended_since_cf_topk": topk,
    }


def _since_profiles(workspace: Workspace, appended: pa.Table) -> dict[str, int] | None:
    """Over the profiled users: the appended rows newer than each one's profile watermark."""
    if not workspace.has("profiles"):
        return None
    path = workspace.table_path("profiles")
    try:
        has_mark = "watermark" in pq.read_schema(path).names
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise CorruptFileError(f"{path}: corrupt table ({exc})") from None
    profiles = workspace.read("profiles", columns=["user_id", "watermark"] if has_mark
                              else ["user_id"])
    marks = pd.Series(profiles.column("watermark").to_numpy()
                      if "watermark" in profiles.column_names
                      else np.zeros(profiles.num_rows, dtype=np.int64),
                      index=profiles.column("user_id").to_pylist(), dtype=np.int64)
    users = pd.Series(appended.column("user_id").to_pylist(), dtype=object)
    since = users.map(marks)
    newer = since.notna().to_numpy() & (appended.column("append_id").to_numpy()
                                        > since.fillna(0).to_numpy())
    return {"profiled_users": profiles.num_rows, "interactions": int(newer.sum()),
            "users_behind": int(users[newer].nunique())}
