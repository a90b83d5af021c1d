"""The leak-free item–tag relation that every model input reads.

A tag event (u, i, t) says user u applied tag t to item i. If i is one of u's held-out items
(u's validation or test positive), that event is u's label for i: it must not reach any model.
The split therefore derives, for every item i::

    tags(i) = items.tags(i)  ∪  { t : (v, i, t) ∈ tag_events,  i ∉ heldout(v) }

in that order (source tags first, then event tags in source order, de-duplicated). The withheld
events are those with i ∈ heldout(u); a tag that another user also applied to i stays, through
that other user's event. Hyperedges (``cf/data.py``), item descriptions, profile evidence,
exemplars and hashtags all read tags through :func:`model_items`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tailormind.data import schemas
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError

ITEM_TAGS = "item_tags"
TAG_EVENTS = "tag_events"


def heldout_pairs(split: pa.Table) -> set[tuple[str, str]]:
    """(user, item) of every validation and test interaction."""
    held = split.filter(pc.invert(pc.equal(split.column("split"), "train")))
    return set(zip(held.column("user_id").to_pylist(), held.column("item_id").to_pylist(),
                   strict=True))


def derive_item_tags(items: pa.Table, tag_events: pa.Table | None, split: pa.Table
                     ) -> tuple[pa.Table, dict[str, Any]]:
    """The ``item_tags`` table (one row per item, in ``items`` order) and what was withheld."""
    ids = items.column("item_id").to_pylist()
    tags: dict[str, dict[str, None]] = {
        item: dict.fromkeys(t or []) for item, t in zip(ids, items.column("tags").to_pylist(),
                                                        strict=True)}
    withheld: list[tuple[str, str]] = []
    events = 0
    if tag_events is not None and tag_events.num_rows:
        held = heldout_pairs(split)
        columns = (tag_events.column(c).to_pylist() for c in ("user_id", "item_id", "tag"))
        for user, item, tag in zip(*columns, strict=True):
            events += 1
            if (user, item) in held:
                withheld.append((user, item))
            elif item in tags:
                tags[item].setdefault(tag, None)
    table = pa.Table.from_pydict(
        {"item_id": pa.array(ids, pa.string()),
         "tags": pa.array([list(tags[i]) for i in ids], pa.list_(pa.string()))},
        schema=schemas.ITEM_TAGS)
    report = {"tag_events": events, "tag_events_withheld": len(withheld),
              "users_with_withheld_tags": len({u for u, _ in withheld}),
              "items_with_withheld_tags": len({i for _, i in withheld})}
    return table, report


def model_items(workspace: Workspace, columns: list[str] | None = None) -> pa.Table:
    """The ``items`` table as models may see it: ``tags`` replaced by the split's leak-free
    relation. A workspace without tag events needs no split (its tags have no applier); one with
    tag events must be split first."""
    items = workspace.read("items", columns=columns)
    if "tags" not in items.column_names:
        return items
    if workspace.has(ITEM_TAGS):
        derived = workspace.read(ITEM_TAGS)
        if derived.column("item_id").to_pylist() != items.column("item_id").to_pylist():
            raise WorkspaceError(f"{ITEM_TAGS} does not match the items of {workspace.root}; "
                                 "re-run `tailormind data split`")
        return items.set_column(items.column_names.index("tags"), "tags", derived.column("tags"))
    if workspace.has(TAG_EVENTS):
        raise WorkspaceError(f"workspace {workspace.root} has tag events but no split: run "
                             "`tailormind data split` first (it derives the item tags without "
                             "any user's own tags on that user's held-out items)")
    return items
