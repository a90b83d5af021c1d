"""The table importer's mapping: files, columns, lookups, dates and the dangling-row policy.

Parsed from YAML (``load_spec``) and CLI flags (``FLAG_KEYS``; flags win) into a checked
:class:`TableSpec`; relative paths are resolved against the YAML file's directory. Every problem
is a one-line :class:`~tailormind.errors.DataError` naming the mapping key. The mapping's full
syntax is in :mod:`tailormind.data.importers.table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from tailormind.config import yaml_error_line
from tailormind.errors import DataError

ON_DANGLING = ("error", "drop")
ENCODING_HINT = "set 'encoding' for this file in the mapping, or pass --encoding"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileSpec(_Spec):
    """One input file; ``format``/``sep``/``encoding`` override the top-level settings."""

    path: Path
    format: str | None = None
    sep: str | None = None
    encoding: str | None = None


class LookupSpec(FileSpec):
    """A file that maps ids (its ``key`` column) to values (its ``value`` column)."""

    key: str
    value: str


class ColumnRef(_Spec):
    """A column of ids, optionally replaced by the values a lookup file gives them."""

    column: str | None = None
    lookup: LookupSpec | None = None

    @model_validator(mode="after")
    def _named(self) -> ColumnRef:
        if self.column is None and self.lookup is None:
            raise ValueError("set 'column', 'lookup' or both")
        return self

    @property
    def name(self) -> str:
        """The column of the referencing file that holds the ids."""
        return self.column or self.lookup.key  # type: ignore[union-attr]


def _as_ref(value: Any) -> Any:
    return value if isinstance(value, (dict, ColumnRef)) else {"column": value}


#: A column name (``tag: tagID``) or a mapping (``tag: {column: tagID, lookup: {...}}``).
Ref = Annotated[ColumnRef, BeforeValidator(_as_ref)]


def _ref(column: str) -> Any:
    return Field(default_factory=lambda: ColumnRef(column=column))


class DateSpec(_Spec):
    """A UTC date (and time of day) split over whole-number columns."""

    year: str
    month: str
    day: str
    hour: str | None = None
    minute: str | None = None
    second: str | None = None


class InteractionsSpec(FileSpec):
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = None
    date: DateSpec | None = None
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
    item: Ref = _ref("item_id")
    tag: Ref = _ref("tag")
    user: Ref | None = None  # set: the rows are tag events
    timestamp: str | None = None
    date: DateSpec | None = None


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
    on_dangling: Literal["error", "drop"] = "error"


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
    "tag_user_col": ("item_tags", "user"),
    "tag_timestamp_col": ("item_tags", "timestamp"),
    "users_id_col": ("users", "user"),
    "sep": (None, "sep"),
    "encoding": (None, "encoding"),
    "list_sep": (None, "list_sep"),
    "platform": (None, "platform"),
    "data_root": (None, "data_root"),
    "on_dangling": (None, "on_dangling"),
}


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> TableSpec:
    """The mapping from a YAML spec (``.yaml``/``.yml``) or an interactions file, plus flags.

    Relative paths (of files and lookups) are relative to the YAML file's directory, else to the
    working directory. Every problem is a one-line DataError naming the mapping key."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        raw, base = _read_mapping(path), path.parent
    else:
        raw, base = {"interactions": {"path": str(path)}}, Path.cwd()
    _apply_flags(raw, overrides or {}, path)
    for section in ("items", "item_tags", "users"):
        if isinstance(raw.get(section), dict) and "path" not in raw[section]:
            raise DataError(f"mapping section '{section}' needs a 'path' (or pass --{section.replace('_', '-')})",
                            file=path)
    try:
        spec = TableSpec.model_validate(raw)
    except ValidationError as exc:
        raise DataError(_validation_message(exc), file=path) from None
    _check_times(spec, path)
    for file in _files(spec):
        if not file.path.is_absolute():
            file.path = base / file.path
    if spec.data_root is not None and not spec.data_root.is_absolute():
        spec.data_root = base / spec.data_root
    return spec


def _read_mapping(path: Path) -> dict[str, Any]:
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
    return raw


def _apply_flags(raw: dict[str, Any], overrides: dict[str, Any], path: Path) -> None:
    """Write CLI flag values (None: not given) into the raw mapping; flags win."""
    for flag, value in overrides.items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise DataError(f"unknown table-import option {flag!r}")
        section, key = FLAG_KEYS[flag]
        if section is None:
            raw[key] = value
            continue
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise DataError(f"mapping section {section!r} must be a mapping", file=path)
        raw[section][key] = Path(value).resolve() if key == "path" else value


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif key == "on_dangling":
        message = f"must be one of {', '.join(ON_DANGLING)} (--on-dangling), got {first['input']!r}"
    else:
        message = first["msg"].removeprefix("Value error, ")
    return f"mapping key '{key}': {message}"


def _check_times(spec: TableSpec, path: Path) -> None:
    for name, section in (("interactions", spec.interactions), ("item_tags", spec.item_tags)):
        if section is not None and section.timestamp is not None and section.date is not None:
            raise DataError(f"mapping key '{name}': set 'timestamp' or 'date', not both", file=path)
    tags = spec.item_tags
    if tags is not None and tags.user is None and (tags.timestamp or tags.date):
        key = "timestamp" if tags.timestamp else "date"
        raise DataError(f"mapping key 'item_tags.{key}': only tag events have a time; set "
                        f"'item_tags.user' (who applied the tag) too", file=path)


def _files(spec: TableSpec) -> list[FileSpec]:
    """Every file the mapping names: the sections and their lookups."""
    files: list[FileSpec] = [f for f in (spec.interactions, spec.items, spec.item_tags, spec.users) if f]
    if spec.item_tags is not None:
        refs = (spec.item_tags.item, spec.item_tags.tag, spec.item_tags.user)
        files += [r.lookup for r in refs if r is not None and r.lookup is not None]
    return files
