"""MovieLens "latest" layout (ml-latest-small, ml-latest, ml-25m...): movies/ratings/tags CSV.

- items: one per movie; ``tags`` = genres plus the users' free-text tags (lower-cased, de-duplicated,
  genres first); ``text`` = "<title>. Genres: ... Tags: ..."; ``created_at`` = 1 January of the
  year in the title, when there is one.
- interactions: ratings, ``weight`` = the rating, ``timestamp`` = the rating time.
- users: every user who rated (MovieLens ships no user attributes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tailormind.data.readers import RawTable, read_file
from tailormind.data.records import (
    ImportBundle,
    items_table,
    rated_interactions,
    users_table,
)
from tailormind.errors import DataError

NO_GENRES = "(no genres listed)"
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def movie_text(title: str, genres: Sequence[str], tags: Sequence[str] = ()) -> str:
    """``"<title>. Genres: a, b. Tags: c, d."`` (empty parts left out)."""
    text = title + "."
    if genres:
        text += " Genres: " + ", ".join(genres) + "."
    if tags:
        text += " Tags: " + ", ".join(tags) + "."
    return text


def _year_start(title: str) -> int:
    match = _YEAR.search(title)
    if not match:
        return -1
    year = int(match.group(1))
    return int((np.datetime64(f"{year:04d}-01-01") - np.datetime64("1970-01-01")) // np.timedelta64(1, "s"))


def _user_tags(tags: RawTable | None) -> dict[str, list[str]]:
    out: dict[str, dict[str, None]] = {}
    if tags is None:
        return {}
    movie_ids = tags.strings("movieId")
    for movie, tag in zip(movie_ids, tags.strings("tag", allow_empty=True), strict=True):
        tag = " ".join(tag.lower().split())
        if tag:
            out.setdefault(movie, {}).setdefault(tag, None)
    return {movie: list(tags) for movie, tags in out.items()}


def import_movielens(path: str | Path, *, encoding: str = "utf-8") -> ImportBundle:
    """Read ``movies.csv``, ``ratings.csv`` and (optional) ``tags.csv`` from directory ``path``."""
    root = Path(path)
    if not root.is_dir():
        raise DataError("not a directory (expected movies.csv, ratings.csv, tags.csv)", file=root)
    movies = read_file(root / "movies.csv", fmt="csv", encoding=encoding)
    ratings = read_file(root / "ratings.csv", fmt="csv", encoding=encoding)
    tags_file = root / "tags.csv"
    tags = read_file(tags_file, fmt="csv", encoding=encoding) if tags_file.exists() else None

    item_ids = movies.strings("movieId")
    titles = movies.strings("title", allow_empty=True)
    genres = [
        [g.strip().lower() for g in cell.split("|") if g.strip() and g.strip() != NO_GENRES]
        for cell in movies.strings("genres", allow_empty=True)
    ]
    user_tags = _user_tags(tags)
    item_tags: list[list[str]] = []
    texts: list[str] = []
    for item, title, item_genres in zip(item_ids, titles, genres, strict=True):
        free = [t for t in user_tags.get(item, []) if t not in item_genres]
        item_tags.append(item_genres + free)
        texts.append(movie_text(title, item_genres, free))
    if tags is not None:
        known = set(item_ids)
        for i, movie in enumerate(tags.strings("movieId")):
            if movie not in known:
                raise tags.error(i, "movieId", f"tag names unknown movie {movie!r}")

    report: dict[str, object] = {"format": "movielens", "source": str(root)}
    items = items_table(
        item_ids,
        titles=titles,
        texts=texts,
        tags=item_tags,
        platform="movielens",
        created_at=np.array([_year_start(t) for t in titles], dtype=np.int64),
        source=movies,
        id_column="movieId",
    )
    interactions = rated_interactions(ratings, user="userId", item="movieId", rating="rating",
                                      timestamp="timestamp", known_items=set(item_ids), report=report)
    user_ids = interactions.column("user_id").to_pylist()
    report["tag_applications"] = len(tags) if tags is not None else 0
    return ImportBundle(items, interactions, users_table(user_ids), report)
