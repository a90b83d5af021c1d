"""MovieLens "latest" layout (ml-latest-small, ml-latest, ml-25m...): movies/ratings/tags CSV.

- items: one per movie; ``tags`` = the genres (lower-cased); ``text`` = "<title>. Genres: ...";
  ``created_at`` = 1 January of the year in the title, when there is one.
- tag_events: every row of ``tags.csv`` — a tag a *user* applied to a movie, with that user and
  time (lower-cased, whitespace collapsed). They are not item tags: the split derives the item-tag
  relation without any user's own tags on that user's held-out movies (``data/item_tags.py``).
- interactions: ratings, ``weight`` = the rating, ``timestamp`` = the rating time.
- users: every user who rated (MovieLens ships no user attributes).

Appended (``append``: :mod:`tailormind.data.append_rules`), ``movies.csv`` may be left out: the
ratings and tags then name movies of the workspace only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from tailormind.data.append_rules import AppendRules
from tailormind.data.readers import RawTable, read_file
from tailormind.data.records import (
    MISSING_TIME,
    ImportBundle,
    items_table,
    parse_timestamps,
    rated_interactions,
    tag_events_table,
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
        return MISSING_TIME
    year = int(match.group(1))
    return int((np.datetime64(f"{year:04d}-01-01") - np.datetime64("1970-01-01")) // np.timedelta64(1, "s"))


def _tag_events(tags: RawTable, known: set[str], why: str = "") -> pa.Table:
    """``tags.csv`` (userId, movieId, tag, timestamp) as tag events; an unknown movie is an error
    (``why``: the reason its message gives)."""
    movies = tags.strings("movieId")
    for i, movie in enumerate(movies):
        if movie not in known:
            raise tags.error(i, "movieId", f"tag names unknown movie {movie!r}{why}")
    names = [" ".join(t.lower().split()) for t in tags.strings("tag", allow_empty=True)]
    keep = [i for i, name in enumerate(names) if name]
    users = tags.strings("userId")
    times = parse_timestamps(tags.require("timestamp"), tags, "timestamp")
    return tag_events_table([movies[i] for i in keep], [names[i] for i in keep],
                            [users[i] for i in keep], timestamps=times[keep])


def _movies(root: Path, encoding: str, append: AppendRules | None
            ) -> tuple[RawTable | None, list[str], list[str], list[list[str]]]:
    """``movies.csv`` (None when an append leaves it out), its ids, titles and genres."""
    if append is not None and not (root / "movies.csv").exists():
        return None, [], [], []
    movies = read_file(root / "movies.csv", fmt="csv", encoding=encoding)
    genres = [
        [g.strip().lower() for g in cell.split("|") if g.strip() and g.strip() != NO_GENRES]
        for cell in movies.strings("genres", allow_empty=True)
    ]
    return movies, movies.strings("movieId"), movies.strings("title", allow_empty=True), genres


def import_movielens(path: str | Path, *, encoding: str = "utf-8",
                     append: AppendRules | None = None) -> ImportBundle:
    """Read ``movies.csv``, ``ratings.csv`` and (optional) ``tags.csv`` from directory ``path``;
    ``append``: as an append to a workspace (:mod:`tailormind.data.append_rules`)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError("not a directory (expected movies.csv, ratings.csv, tags.csv)", file=root)
    movies, item_ids, titles, genres = _movies(root, encoding, append)
    ratings = read_file(root / "ratings.csv", fmt="csv", encoding=encoding)
    tags_file = root / "tags.csv"
    tags = read_file(tags_file, fmt="csv", encoding=encoding) if tags_file.exists() else None

    texts = [movie_text(title, item_genres) for title, item_genres in zip(titles, genres,
                                                                           strict=True)]
    known = append.known(item_ids) if append is not None else set(item_ids)
    why = f" ({append.unknown('movies.csv' if movies is not None else None)})" if append is not None else ""
    events = _tag_events(tags, known, why) if tags is not None else None

    report: dict[str, object] = {"format": "movielens", "source": str(root)}
    items = items_table(
        item_ids,
        titles=titles,
        texts=texts,
        tags=genres,
        platform="movielens",
        created_at=np.array([_year_start(t) for t in titles], dtype=np.int64),
        source=movies,
        id_column="movieId",
    )
    interactions = rated_interactions(ratings, user="userId", item="movieId", rating="rating",
                                      timestamp="timestamp", known_items=known, report=report,
                                      append=append)
    user_ids = interactions.column("user_id").to_pylist()
    report["tag_applications"] = len(tags) if tags is not None else 0
    report["tag_events"] = events.num_rows if events is not None else 0
    return ImportBundle(items, interactions, users_table(user_ids), report, tag_events=events)
