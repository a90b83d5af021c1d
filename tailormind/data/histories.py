"""Each user's items in split order (``split.position``), from chosen parts of the split."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tailormind.data.workspace import Workspace


def split_histories(workspace: Workspace, users: set[str],
                    parts: tuple[str, ...] = ("train", "valid")) -> dict[str, list[str]]:
    """user -> item ids of ``parts`` (train, valid, test), oldest first; [] for a user without
    any."""
    split = workspace.read("split", columns=["user_id", "item_id", "position", "split"])
    wanted = pa.array(sorted(users), split.column("user_id").type)
    keep = pc.and_(pc.is_in(split.column("user_id"), value_set=wanted),
                   pc.is_in(split.column("split"), value_set=pa.array(list(parts))))
    rows = split.filter(keep).sort_by([("user_id", "ascending"), ("position", "ascending")])
    out: dict[str, list[str]] = {u: [] for u in users}
    for user, item in zip(rows.column("user_id").to_pylist(), rows.column("item_id").to_pylist(),
                          strict=True):
        out[user].append(item)
    return out
