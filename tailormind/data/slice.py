"""A seeded slice of an import: N users, their interactions, and the items they touched."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tailormind.core.sampling import sample_users
from tailormind.data.records import ImportBundle
from tailormind.errors import DataError


def slice_users(bundle: ImportBundle, users: int, seed: int) -> ImportBundle:
    """Keep a fixed seeded sample of ``users`` users (``sample_users``: the same ones every run),
    every interaction of theirs, only the items those interactions mention and the tag events on
    those items (by any user: a tag's provenance is kept, whoever applied it)."""
    if users <= 0:
        raise DataError(f"a slice needs at least one user, got {users}")
    all_users = bundle.users.column("user_id").to_pylist()
    chosen = pa.array(sample_users(all_users, users, seed), pa.string())
    interactions = bundle.interactions.filter(pc.is_in(bundle.interactions.column("user_id"), chosen))
    items = pc.unique(interactions.column("item_id"))
    report = {**bundle.report, "slice": {"users": len(chosen), "seed": seed,
                                          "interactions": interactions.num_rows,
                                          "items": len(items)}}
    media = bundle.media  # media keys are workspace paths; unused items' files are harmless
    events = bundle.tag_events
    if events is not None:
        events = events.filter(pc.is_in(events.column("item_id"), items))
    return ImportBundle(
        items=bundle.items.filter(pc.is_in(bundle.items.column("item_id"), items)),
        interactions=interactions,
        users=bundle.users.filter(pc.is_in(bundle.users.column("user_id"), chosen)),
        report=report,
        media=media,
        tag_events=events,
    )
