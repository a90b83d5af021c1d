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

from pathlib import Path

from tailormind.core.atomic import LEFTOVER_AGE_S, is_hidden, recover_dir
from tailormind.generation.bundle import GENERATIONS, POST_JSON


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
