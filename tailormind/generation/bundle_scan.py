"""Which bundles exist: ``<root>/generations/<user>/<post_id>/post.json``, live ones only.

A bundle is written in a hidden staging directory beside its final name and swapped into place
(:func:`~tailormind.generation.bundle.write_bundle`); a writer killed mid-way can leave that
staging directory, or — where the filesystem cannot swap in one step — the previous bundle at
``.<post_id>.old`` with no bundle at ``<post_id>``. :func:`post_files` never lists a hidden
directory, so no scan (the ``generations`` table, the gallery, the benchmark, the API) sees a
phantom post; :func:`recover_bundles` puts back an ``.old`` whose post is missing and removes
the leftovers, so no post goes missing either. Call it before a scan, and once at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tailormind.core.atomic import LEFTOVER_AGE_S, is_hidden, read_json_record, recover_dir
from tailormind.errors import CorruptFileError
from tailormind.generation.bundle import GENERATIONS, POST_JSON
from tailormind.generation.post_record import PostRecord, parse_post_record


def _visible_dirs(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if not is_hidden(p.name) and p.is_dir())


def post_files(root: Path) -> list[Path]:
    """``post.json`` of every live bundle under ``root/generations``, sorted; staging,
    ``.old`` and other hidden directories are never listed."""
    return [bundle / POST_JSON
            for user in _visible_dirs(Path(root) / GENERATIONS)
            for bundle in _visible_dirs(user)
            if (bundle / POST_JSON).is_file()]


@dataclass
class ListedPost:
    """A live bundle's record and its directory, relative to the scanned root."""

    record: PostRecord
    directory: str


def read_bundles(root: Path, unreadable: list[str] | None = None) -> list[ListedPost]:
    """Every live bundle's ``post.json`` under ``root/generations`` (never a staging or ``.old``
    directory: :func:`post_files`), by user then creation time (oldest first). One that is
    corrupt or not a post this version reads is not listed; its path goes to ``unreadable`` so
    the caller can say so (bundles are written whole, so this means a disk fault, a file edited
    or copied in by hand, or a bundle to re-generate)."""
    listed = []
    for path in post_files(root):
        relative = str(path.relative_to(root))
        try:
            data = read_json_record(path, POST_JSON)
            record = parse_post_record(data, relative) if data is not None else None
        except CorruptFileError:
            record = None
        if record is None:
            if unreadable is not None:
                unreadable.append(relative)
            continue
        listed.append(ListedPost(record, str(path.parent.relative_to(root))))
    listed.sort(key=lambda p: (p.record.user_id, p.record.created_at))
    return listed


def recover_bundles(root: Path, *, min_age_s: float = LEFTOVER_AGE_S) -> list[str]:
    """Repair what killed bundle writers left under ``root/generations``: every ``.old``
    bundle whose post is missing is put back; leftover staging directories and temporary
    files untouched for ``min_age_s`` seconds are removed (a writer still at work in another
    process keeps its own). Returns one line per repair; safe to call at any time."""
    generations = Path(root) / GENERATIONS
    done = recover_dir(generations, min_age_s=min_age_s)
    for user in _visible_dirs(generations):
        done += recover_dir(user, min_age_s=min_age_s)
    return done
