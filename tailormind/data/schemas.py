"""Arrow schemas of every workspace table (the TailorBench format).

Ids are strings everywhere (platform ids are often not integers); timestamps are UTC seconds.

=================  ==============================================================================
table              columns
=================  ==============================================================================
``items``          item_id, title, text, tags (list), image_paths (list), video_paths (list),
                   platform, created_at
``interactions``   user_id, item_id, timestamp (nullable: no timestamp = seeded random order),
                   weight
``users``          user_id (+ optional attribute columns, kept as strings)
``split``          user_id, item_id, timestamp, weight, position (0 = oldest), split
                   (train | valid | test)
``candidates``     user_id, split (valid | test), positive, negatives (list, never seen by the user)
``tag_events``     item_id, tag, user_id (who applied it), timestamp (nullable): tags with provenance
``item_tags``      item_id, tags (list): the item-tag relation every model input reads, derived by
                   the split (``items.tags`` + tag events, without any user's own tags on that
                   user's held-out items)
``cf_topk``        user_id, item_id, score, rank (1 = best): the K unseen-in-train items per user
``appended``       user_id, item_id, timestamp, weight, append_id: what ``data append`` added
``item_features``  item_id, description (what profiling reads), one description per modality
                   (text/image/video, null when absent), their sources, fallback reasons,
                   embedding (float32 list), the models that made them
``profiles``       user_id, final and initial profile (+ embeddings), the iteration history (JSON:
                   profile, validation rank, loss, accepted, critique, tokens, seconds),
                   fallbacks, token and time totals, models, ranker, config hash
=================  ==============================================================================
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("s", tz="UTC")

ITEMS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("image_paths", pa.list_(pa.string())),
        pa.field("video_paths", pa.list_(pa.string())),
        pa.field("platform", pa.string()),
        pa.field("created_at", TIMESTAMP),
    ]
)

INTERACTIONS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP),
        pa.field("weight", pa.float32(), nullable=False),
    ]
)

#: Required columns of ``users``; any further attribute columns are kept as strings.
USERS = pa.schema([pa.field("user_id", pa.string(), nullable=False)])

SPLIT_NAMES = ("train", "valid", "test")

SPLIT = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP),
        pa.field("weight", pa.float32(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)

CANDIDATES = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("positive", pa.string(), nullable=False),
        pa.field("negatives", pa.list_(pa.string()), nullable=False),
    ]
)

#: A tag somebody applied (MovieLens ``tags.csv``; the table importer's ``item_tags`` with a
#: ``user`` column). ``items.tags`` holds only tags without a known applier (genres, topics).
TAG_EVENTS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("tag", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP),
    ]
)

#: The leak-free item-tag relation of one split, one row per item (see ``data/item_tags.py``).
ITEM_TAGS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("tags", pa.list_(pa.string())),
    ]
)

#: Interactions added by ``data append``, with the append that added them
#: (``data/appends.py``; they are in ``interactions`` too).
APPENDED = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP),
        pa.field("weight", pa.float32(), nullable=False),
        pa.field("append_id", pa.int64(), nullable=False),
    ]
)

CF_TOPK = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
    ]
)

ITEM_FEATURES = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("text_description", pa.string()),
        pa.field("image_description", pa.string()),
        pa.field("video_description", pa.string()),
        # passthrough | text:<model> | none
        pa.field("text_source", pa.string(), nullable=False),
        # describe:<model> | not configured | failed | none
        pa.field("image_source", pa.string(), nullable=False),
        pa.field("video_source", pa.string(), nullable=False),
        pa.field("fallback", pa.string()),  # why something fell back; null when nothing did
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),
        pa.field("embed_model", pa.string(), nullable=False),
    ]
)

PROFILES = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("profile", pa.string(), nullable=False),
        pa.field("initial_profile", pa.string(), nullable=False),
        pa.field("iterations", pa.string(), nullable=False),  # JSON list, one entry per iteration
        pa.field("valid_rank_initial", pa.int32(), nullable=False),  # 1 = first of M
        pa.field("valid_rank_final", pa.int32(), nullable=False),
        pa.field("iterations_run", pa.int32(), nullable=False),
        pa.field("accepted_updates", pa.int32(), nullable=False),
        pa.field("fallback", pa.string()),
        pa.field("prompt_tokens", pa.int64(), nullable=False),
        pa.field("completion_tokens", pa.int64(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # of the final profile
        pa.field("initial_embedding", pa.list_(pa.float32()), nullable=False),
        pa.field("text_model", pa.string(), nullable=False),
        pa.field("embed_model", pa.string(), nullable=False),
        pa.field("ranker", pa.string(), nullable=False),
        pa.field("config_hash", pa.string(), nullable=False),
        # Versions (issue 23): each `profile update` makes version + 1 from its parent; the
        # watermark is the append id of the newest interaction the profile has seen
        # (``data/appends.py``). Tables written before these columns read with the defaults.
        pa.field("version", pa.int32(), nullable=False, metadata={"default": "1"}),
        pa.field("parent_version", pa.int32(), metadata={"default": ""}),
        pa.field("watermark", pa.int64(), nullable=False, metadata={"default": "0"}),
        pa.field("updated_at", pa.string(), metadata={"default": ""}),
        # an update's new evidence, JSON {"since", "positives", "withheld"}; null: version 1
        pa.field("evidence", pa.string(), metadata={"default": ""}),
    ]
)
#: Superseded profile versions (``profile update`` moves a user's row here before replacing it).
PROFILE_HISTORY = PROFILES

#: Table name -> schema; ``users`` is checked on its required prefix only.
TABLES: dict[str, pa.Schema] = {
    "items": ITEMS,
    "interactions": INTERACTIONS,
    "users": USERS,
    "split": SPLIT,
    "candidates": CANDIDATES,
    "tag_events": TAG_EVENTS,
    "item_tags": ITEM_TAGS,
    "cf_topk": CF_TOPK,
    "appended": APPENDED,
    "item_features": ITEM_FEATURES,
    "profiles": PROFILES,
    "profile_history": PROFILE_HISTORY,
}


def schema_for(name: str) -> pa.Schema | None:
    """The schema of table ``name``; a variant ``base__variant`` (e.g. ``profiles__nocf``, an
    ablation) has its base table's schema."""
    return TABLES.get(name) or TABLES.get(name.split("__", 1)[0])


def with_defaults(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every column that ``schema`` gives a default (field metadata ``default``;
    empty: null) filled in where it is missing — a table written before the column existed — or
    null (rows built without it, e.g. ``Table.from_pylist`` with the schema)."""
    for field in schema:
        if not field.metadata or b"default" not in field.metadata:
            continue
        raw = field.metadata[b"default"].decode()
        value = None if raw == "" else pa.scalar(raw).cast(field.type).as_py()
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.array([value] * table.num_rows, field.type))
        elif value is not None and table.column(field.name).null_count:
            index = table.column_names.index(field.name)
            filled = pc.fill_null(table.column(field.name), pa.scalar(value, field.type))
            table = table.set_column(index, table.schema.field(index), filled)
    return table


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast ``table`` to ``schema`` (extra columns kept for ``users`` only).

    Raises ``ValueError`` naming the first missing column or a failed cast.
    """
    table = with_defaults(table, schema)
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    columns = []
    fields = []
    for field in schema:
        col = table.column(field.name)
        if not col.type.equals(field.type):
            col = col.cast(field.type)
        if not field.nullable and col.null_count:
            raise ValueError(f"column '{field.name}' has {col.null_count} null value(s)")
        columns.append(col)
        fields.append(field)
    if schema.names == USERS.names:
        for name in table.column_names:
            if name not in schema.names:
                columns.append(table.column(name).cast(pa.string()))
                fields.append(pa.field(name, pa.string()))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
