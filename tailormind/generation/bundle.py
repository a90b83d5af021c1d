"""A generated post on disk: ``generations/<user>/<post_id>/`` with ``post.json`` (text, media,
idea, exemplars, profile version, reflection scores, model ids, config hash), the media files and
a self-contained ``preview.html`` that references only files inside the bundle.

The bundle is built in a hidden sibling directory, flushed to disk and put in place in one step
(:func:`~tailormind.core.atomic.atomic_dir`), so a crash never leaves a half-written post;
writing the same post id again swaps the new bundle for the old one whole, and a reader never
finds the post missing meanwhile. Every value in ``preview.html`` is HTML-escaped and only
``http(s)`` links are links: a generated or imported text cannot run script in the page.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from functools import lru_cache
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
from PIL import Image

from tailormind.core.atomic import (
    atomic_dir,
    live_path,
    old_name,
    read_json_record,
    write_json_atomic,
    write_text_atomic,
)
from tailormind.errors import CorruptFileError
from tailormind.generation.catalog import Platform
from tailormind.generation.post_record import PostRecord, parse_post_record

GENERATIONS = "generations"
POST_JSON = "post.json"
PREVIEW = "preview.html"


def safe_component(value: str) -> str:
    """A file-name-safe form of an id; ids that had to change get a short hash (no collisions)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", value).strip(".") or "_"
    if cleaned == value and len(value) <= 80:
        return value
    return f"{cleaned[:60]}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def post_id_for(user_id: str, kind: str, platform: str, profile_version: str,
                config_hash: str, seed: int) -> str:
    """Deterministic: the same user, settings and profile give the same id (resumable jobs)."""
    key = json.dumps([user_id, kind, platform, profile_version, config_hash, seed])
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def bundle_dir(root: Path, user_id: str, post_id: str) -> Path:
    return root / GENERATIONS / safe_component(user_id) / post_id


def live_bundle(directory: Path) -> Path | None:
    """The directory holding the post ``directory`` names right now: itself, or — only in the
    instant a replace without an atomic exchange is between its two renames — the previous copy
    beside it. None when the post does not exist."""
    return live_path(directory, POST_JSON)


def read_post(directory: Path) -> PostRecord | None:
    """The ``post.json`` of the bundle ``directory`` (a replace in progress is no gap: see
    :func:`live_bundle`); None only when the post does not exist. An empty, truncated or
    non-JSON one raises :class:`CorruptFileError`; one that is not a post this version reads,
    its subclass :class:`~tailormind.generation.post_record.PostRecordError`."""
    for _ in range(3):  # a replace may finish (and its old copy go) between our looks
        for place in (directory, old_name(directory)):
            data = read_json_record(place / POST_JSON, POST_JSON)
            if data is not None:
                return parse_post_record(data, str(place / POST_JSON))
    return None


def web_link(value: object) -> bool:
    """A link a page may make clickable: an absolute ``http``/``https`` URL (never
    ``javascript:``, ``data:`` or a relative path)."""
    if not isinstance(value, str):
        return False
    parsed = urlparse(value.strip())
    return parsed.scheme.lower() in ("http", "https") and bool(parsed.netloc)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    def load(name: str) -> str | None:
        path = resources.files("tailormind.generation").joinpath("html", name)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.tests["web_link"] = web_link
    return env


def render_html(name: str, **values: Any) -> str:
    return _templates().get_template(name).render(**values)


def write_bundle(target: Path, record: PostRecord, platform: Platform,
                 images: list[tuple[str, Image.Image]], video: Path | None = None) -> Path:
    """Write ``record`` (its ``images[i].file`` / ``video.file`` name the files) as the bundle
    ``target``, all or nothing; an existing bundle there is replaced in one step. ``video`` is
    moved into the bundle."""
    with atomic_dir(target) as stage:
        for name, image in images:
            image.save(stage / name, format="PNG")
        if video is not None and record.video is not None:
            shutil.move(str(video), stage / record.video.file)
        write_json_atomic(stage / POST_JSON, record.to_json(), ensure_ascii=False)
        write_text_atomic(stage / PREVIEW, render_html("preview.html.j2", post=record,
                                                       platform=platform, theme=platform.theme))
        problems = bundle_problems(stage)
        if problems:
            raise RuntimeError(f"bundle for {target} is incomplete: {'; '.join(problems)}")
    return target


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "poster", "srcset") and value:
                self.refs.append(value)
            if tag == "link" and name == "href" and value:
                self.refs.append(value)


def local_references(html: str) -> list[str]:
    """Every media/style reference in ``html`` (src, poster, srcset, <link href>)."""
    parser = _References()
    parser.feed(html)
    return parser.refs


def bundle_problems(directory: Path) -> list[str]:
    """What is wrong with a bundle: a missing or corrupt ``post.json``, missing files, or
    references that leave it."""
    problems: list[str] = []
    try:
        data = read_json_record(directory / POST_JSON, POST_JSON)
        if data is None:
            return [f"{POST_JSON} is missing"]
        files = parse_post_record(data, POST_JSON).media_files
    except CorruptFileError as exc:
        return [str(exc)]
    preview = directory / PREVIEW
    if not preview.is_file():
        problems.append(f"{PREVIEW} is missing")
    else:
        files += local_references(preview.read_text(encoding="utf-8"))
    root = directory.resolve()
    for name in files:
        if not name:
            continue
        parsed = urlparse(name)
        if parsed.scheme or parsed.netloc or name.startswith("/"):
            problems.append(f"{name!r} is not a file inside the bundle")
            continue
        path = (directory / name).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{name!r} leaves the bundle")
        elif not path.is_file() or path.stat().st_size == 0:
            problems.append(f"{name!r} is missing or empty")
    return problems
