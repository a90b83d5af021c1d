"""A generated post on disk: ``generations/<user>/<post_id>/`` with ``post.json`` (text, media,
idea, exemplars, profile version, reflection scores, model ids, config hash), the media files and
a self-contained ``preview.html`` that references only files inside the bundle.

The bundle is built in a hidden sibling directory and renamed into place, so a crash never leaves
a half-written post; writing the same post id again replaces the old bundle whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from functools import lru_cache
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
from PIL import Image

from tailormind.generation.catalog import Platform

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


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    def load(name: str) -> str | None:
        path = resources.files("tailormind.generation").joinpath("html", name)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def render_html(name: str, **values: Any) -> str:
    return _templates().get_template(name).render(**values)


def write_bundle(target: Path, record: dict[str, Any], platform: Platform,
                 images: list[tuple[str, Image.Image]], video: Path | None = None) -> Path:
    """Write ``record`` (its ``images[i].file`` / ``video.file`` name the files) atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, image in images:
            image.save(stage / name, format="PNG")
        if video is not None:
            shutil.move(str(video), stage / record["video"]["file"])
        (stage / POST_JSON).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
        (stage / PREVIEW).write_text(render_html("preview.html.j2", post=record,
                                                 platform=platform, theme=platform.theme),
                                     encoding="utf-8")
        problems = bundle_problems(stage)
        if problems:
            raise RuntimeError(f"bundle for {target} is incomplete: {'; '.join(problems)}")
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(stage, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
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
    """What is wrong with a bundle: missing files, or references that leave it."""
    problems: list[str] = []
    record_path = directory / POST_JSON
    if not record_path.is_file():
        return [f"{POST_JSON} is missing"]
    record = json.loads(record_path.read_text(encoding="utf-8"))
    files = [i["file"] for i in record.get("images", [])]
    if record.get("video"):
        files.append(record["video"]["file"])
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
