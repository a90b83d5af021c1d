"""Generic importer for any platform's logs: a column mapping instead of code.

Files may be CSV, TSV, JSONL or Parquet. The mapping comes from a small YAML file, from CLI flags,
or both (flags win)::

    interactions: {path: clicks.csv, user: uid, item: note_id, timestamp: ts, weight: dwell}
    items: {path: notes.jsonl, item: id, title: title, text: body, tags: topics,
            image_paths: images, video_paths: videos, created_at: published}
    item_tags: {path: note_tags.tsv, item: note_id, tag: tag}   # optional
    users: {path: users.parquet, user: uid}                    # optional, other columns kept
    sep: ","          # delimited files (TSV defaults to tab)
    encoding: utf-8
    list_sep: "|"     # list cells in delimited files
    platform: rednote
    data_root: media/ # media paths are relative to this (default: the items file's directory)

A column left unset is taken from a column of the canonical name when the file has one
(``timestamp``, ``weight``, ``title``, ...). Without timestamps the split orders each user's
interactions in a seeded random order, and ``data stats`` says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tailormind.config import yaml_error_line
from tailormind.data.readers import RawTable, read_file
from tailormind.data.records import (
    ImportBundle,
    interactions_table,
    items_table,
    media_paths,
    parse_timestamps,
    parse_weights,
    split_list,
    users_table,
)
from tailormind.errors import DataError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileSpec(_Spec):
    path: Path
    format: str | None = None
    sep: str | None = None
    encoding: str | None = None


class InteractionsSpec(FileSpec):
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = None
    weight: str | None = None


class ItemsSpec(FileSpec):
    item: str = "item_id"
    title: str | None = None
    text: str | None = None
    tags: str | None = None
    image_paths: str | None = None
    video_paths: str | None = None
    platform: str | None = None
    created_at: str | None = None


class ItemTagsSpec(FileSpec):
    item: str = "item_id"
    tag: str = "tag"


class UsersSpec(FileSpec):
    user: str = "user_id"


class TableSpec(_Spec):
    interactions: InteractionsSpec
    items: ItemsSpec | None = None
    item_tags: ItemTagsSpec | None = None
    users: UsersSpec | None = None
    sep: str | None = None
    encoding: str = "utf-8"
    list_sep: str = "|"
    platform: str | None = None
    data_root: Path | None = None


#: CLI flag name -> (section, key) in the spec.
FLAG_KEYS: dict[str, tuple[str | None, str]] = {
    "items": ("items", "path"),
    "item_tags": ("item_tags", "path"),
    "users": ("users", "path"),
    "user_col": ("interactions", "user"),
    "item_col": ("interactions", "item"),
    "timestamp_col": ("interactions", "timestamp"),
    "weight_col": ("interactions", "weight"),
    "items_id_col": ("items", "item"),
    "title_col": ("items", "title"),
    "text_col": ("items", "text"),
    "tags_col": ("items", "tags"),
    "image_col": ("items", "image_paths"),
    "video_col": ("items", "video_paths"),
    "created_col": ("items", "created_at"),
    "tag_item_col": ("item_tags", "item"),
    "tag_col": ("item_tags", "tag"),
    "users_id_col": ("users", "user"),
    "sep": (None, "sep"),
    "encoding": (None, "encoding"),
    "list_sep": (None, "list_sep"),
    "platform": (None, "platform"),
    "data_root": (None, "data_root"),
}


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> TableSpec:
    """The mapping from a YAML spec (``.yaml``/``.yml``) or an interactions file, plus flags."""
    path = Path(path)
    base = Path.cwd()
    if path.suffix.lower() in (".yaml", ".yml"):
        if not path.is_file():
            raise DataError("mapping file does not exist", file=path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise DataError(f"not valid YAML ({yaml_error_line(exc)})", file=path) from None
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason})", file=path) from None
        if not isinstance(raw, dict):
            raise DataError("the mapping must be a YAML mapping", file=path)
        base = path.parent
    else:
        raw = {"interactions": {"path": str(path)}}
    for flag, value in (overrides or {}).items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise DataError(f"unknown table-import option {flag!r}")
        section, key = FLAG_KEYS[flag]
        if section is None:
            raw[key] = value
        else:
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                raise DataError(f"mapping section {section!r} must be a mapping", file=path)
            if key == "path":
                value = Path(value).resolve()
            raw[section][key] = value
    for section in ("items", "item_tags", "users"):
        if isinstance(raw.get(section), dict) and "path" not in raw[section]:
            raise DataError(f"mapping section '{section}' needs a 'path' (or pass --{section.replace('_', '-')})",
                            file=path)
    try:
        spec = TableSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise DataError(f"mapping key '{key}': {message}", file=path) from None
    for section in (spec.interactions, spec.items, spec.item_tags, spec.users):
        if section is not None and not section.path.is_absolute():
            section.path = base / section.path
    if spec.data_root is not None and not spec.data_root.is_absolute():
        spec.data_root = base / spec.data_root
    return spec


def _read(spec: TableSpec, file: FileSpec) -> RawTable:
    return read_file(file.path, fmt=file.format, sep=file.sep or spec.sep,
                     encoding=file.encoding or spec.encoding)


def _column(raw: RawTable, explicit: str | None, canonical: str) -> str | None:
    """The explicit column (must exist), else the canonical name when present, else None."""
    if explicit is not None:
        raw.require(explicit)
        return explicit
    return canonical if canonical in raw.columns else None


def import_table(path: str | Path, **overrides: Any) -> ImportBundle:
    """Import interactions (+ items, item tags, users) described by ``path`` and flag overrides."""
    spec = load_spec(path, overrides)
    report: dict[str, Any] = {"format": "table", "source": str(Path(path))}
    media: dict[str, Path] = {}

    inter = _read(spec, spec.interactions)
    ic = spec.interactions
    user_ids = inter.strings(ic.user, "user id")
    item_ids = inter.strings(ic.item, "item id")
    ts_col = _column(inter, ic.timestamp, "timestamp")
    w_col = _column(inter, ic.weight, "weight")
    timestamps = parse_timestamps(inter.require(ts_col), inter, ts_col) if ts_col else None
    weights = parse_weights(inter.require(w_col), inter, w_col) if w_col else None
    report["columns"] = {"user": ic.user, "item": ic.item, "timestamp": ts_col, "weight": w_col}

    tags_by_item: dict[str, list[str]] = {}
    if spec.item_tags is not None:
        tag_raw = _read(spec, spec.item_tags)
        for item, tag in zip(tag_raw.strings(spec.item_tags.item, "item id"),
                             tag_raw.strings(spec.item_tags.tag, "tag", allow_empty=True),
                             strict=True):
            if tag and tag not in tags_by_item.setdefault(item, []):
                tags_by_item[item].append(tag)

    if spec.items is not None:
        items_raw = _read(spec, spec.items)
        s = spec.items
        ids = items_raw.strings(s.item, "item id")
        data_root = spec.data_root or s.path.parent
        cols = {k: _column(items_raw, getattr(s, k), k) for k in
                ("title", "text", "tags", "image_paths", "video_paths", "platform", "created_at")}

        def values(key: str) -> list[Any] | None:
            return items_raw.require(cols[key]) if cols[key] else None

        def texts(key: str) -> list[str] | None:
            return items_raw.strings(cols[key], allow_empty=True) if cols[key] else None

        tag_cells = values("tags")
        item_tags = [split_list(c, spec.list_sep) for c in tag_cells] if tag_cells else [[] for _ in ids]
        for i, item in enumerate(ids):
            for tag in tags_by_item.get(item, []):
                if tag not in item_tags[i]:
                    item_tags[i].append(tag)
        images = values("image_paths")
        videos = values("video_paths")
        created = values("created_at")
        items = items_table(
            ids,
            titles=texts("title"),
            texts=texts("text"),
            tags=item_tags,
            image_paths=media_paths(images, data_root, spec.list_sep, items_raw,
                                    cols["image_paths"] or "", media) if images else None,
            video_paths=media_paths(videos, data_root, spec.list_sep, items_raw,
                                    cols["video_paths"] or "", media) if videos else None,
            platform=texts("platform") or spec.platform,
            created_at=parse_timestamps(created, items_raw, cols["created_at"] or "") if created else None,
            source=items_raw,
            id_column=s.item,
        )
        known = set(ids)
        report["columns_items"] = {k: v for k, v in cols.items() if v}
    else:
        known = None
        ids = list(dict.fromkeys(item_ids))
        items = items_table(ids, titles=ids, tags=[tags_by_item.get(i, []) for i in ids],
                            platform=spec.platform)
        report["items_without_metadata"] = len(ids)
    if spec.item_tags is not None and spec.items is not None:
        unknown = sorted(set(tags_by_item) - known) if known is not None else []
        if unknown:
            raise DataError(f"{len(unknown)} tagged item(s) are not in the items file, e.g. {unknown[0]!r}",
                            file=spec.item_tags.path, column=spec.item_tags.item)

    interactions = interactions_table(user_ids, item_ids, timestamps=timestamps, weights=weights,
                                      known_items=known, source=inter, item_column=ic.item,
                                      report=report)
    attributes: pd.DataFrame | None = None
    users_raw = None
    if spec.users is not None:
        users_raw = _read(spec, spec.users)
        users_raw.require(spec.users.user, "user id")
        attributes = users_raw.frame.rename(columns={spec.users.user: "user_id"})
    users = users_table(user_ids, attributes=attributes, source=users_raw,
                        id_column=spec.users.user if spec.users else "user_id", report=report)
    report["media_files"] = len(media)
    return ImportBundle(items, interactions, users, report, media)
