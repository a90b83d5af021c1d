"""MovieLens-100K, in either of its two common layouts (detected from the files present):

- GroupLens: ``u.data`` (user, item, rating, timestamp; tab), ``u.item`` (``|``-separated, latin-1:
  id, title, release date, video date, URL, 19 genre flags), ``u.genre``, optional ``u.user``.
- RecBole atomic files, as shipped in the PyPI package ``recbole`` under
  ``recbole/dataset_example/ml-100k/``: ``ml-100k.inter``, ``ml-100k.item``, ``ml-100k.user``
  (tab-separated, ``name:type`` headers).

Tags are the genres (lower-cased); weight is the rating. Appended (``append``:
:mod:`tailormind.data.append_rules`), the directory has the same layout; its ratings may name
items of the workspace too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tailormind.data.append_rules import AppendRules
from tailormind.data.readers import RawTable, read_file
from tailormind.data.records import (
    MISSING_TIME,
    ImportBundle,
    items_table,
    rated_interactions,
    users_table,
)
from tailormind.data.importers.movielens import movie_text
from tailormind.errors import DataError

GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip


def _strip_types(raw: RawTable) -> RawTable:
    """RecBole headers are ``name:type``; keep the name."""
    raw.frame.columns = [c.split(":", 1)[0] for c in raw.columns]
    return raw


def _import_grouplens(root: Path, encoding: str, append: AppendRules | None) -> ImportBundle:
    genre_file = root / "u.genre"
    genre_names = list(GROUPLENS_GENRES)
    if genre_file.exists():
        genre = read_file(genre_file, fmt="csv", sep="|", header=False, names=["name", "index"],
                          encoding=encoding)
        genre_names = genre.strings("name")
    item_columns = ["item_id", "title", "release_date", "video_release_date", "url", *genre_names]
    item = read_file(root / "u.item", fmt="csv", sep="|", header=False, names=item_columns,
                     encoding=encoding)
    item_ids = item.strings("item_id")
    titles = item.strings("title", allow_empty=True)
    flags = np.column_stack([np.array(item.require(g)) == "1" for g in genre_names])
    genres = [[genre_names[j].lower() for j in np.flatnonzero(row)] for row in flags]
    released = pd.to_datetime(pd.Series(item.strings("release_date", allow_empty=True)),
                              format="%d-%b-%Y", errors="coerce", utc=True)
    seconds = (released - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    created = seconds.fillna(MISSING_TIME).to_numpy(dtype=np.int64)
    data = read_file(root / "u.data", fmt="csv", sep="\t", header=False,
                     names=["user_id", "item_id", "rating", "timestamp"], encoding=encoding)
    users_file = root / "u.user"
    attributes = None
    users_raw = None
    if users_file.exists():
        users_raw = read_file(users_file, fmt="csv", sep="|", header=False,
                              names=["user_id", "age", "gender", "occupation", "zip_code"],
                              encoding=encoding)
        attributes = users_raw.frame
    return _bundle(root, item, item_ids, titles, genres, created, data, attributes, users_raw,
                   append)


def _import_recbole(root: Path, encoding: str, append: AppendRules | None) -> ImportBundle:
    item = _strip_types(read_file(root / "ml-100k.item", fmt="csv", sep="\t", encoding=encoding))
    item_ids = item.strings("item_id")
    titles = item.strings("movie_title", allow_empty=True)
    years = item.strings("release_year", allow_empty=True)
    titles = [f"{t} ({y})" if y else t for t, y in zip(titles, years, strict=True)]
    genres = [[g.lower() for g in cell.split()] for cell in item.strings("class", allow_empty=True)]
    created = np.array(
        [(np.datetime64(f"{int(y):04d}-01-01", "s").astype(np.int64) if y.isdigit() else MISSING_TIME)
         for y in years],
        dtype=np.int64,
    )
    data = _strip_types(read_file(root / "ml-100k.inter", fmt="csv", sep="\t", encoding=encoding))
    users_file = root / "ml-100k.user"
    users_raw = None
    attributes = None
    if users_file.exists():
        users_raw = _strip_types(read_file(users_file, fmt="csv", sep="\t", encoding=encoding))
        attributes = users_raw.frame
    return _bundle(root, item, item_ids, titles, genres, created, data, attributes, users_raw,
                   append)


def _bundle(
    root: Path,
    item: RawTable,
    item_ids: list[str],
    titles: list[str],
    genres: list[list[str]],
    created: np.ndarray,
    data: RawTable,
    attributes: pd.DataFrame | None,
    users_raw: RawTable | None,
    append: AppendRules | None = None,
) -> ImportBundle:
    report: dict[str, object] = {"format": "ml100k", "source": str(root)}
    items = items_table(item_ids, titles=titles, texts=[movie_text(t, g) for t, g in zip(titles, genres, strict=True)], tags=genres,
                        platform="movielens", created_at=created, source=item)
    interactions = rated_interactions(data, user="user_id", item="item_id", rating="rating",
                                      timestamp="timestamp", report=report, append=append,
                                      known_items=append.known(item_ids) if append else set(item_ids))
    user_ids = interactions.column("user_id").to_pylist()
    users = users_table(user_ids, attributes=attributes, source=users_raw, report=report)
    return ImportBundle(items, interactions, users, report)


def import_ml100k(path: str | Path, *, encoding: str | None = None,
                  append: AppendRules | None = None) -> ImportBundle:
    """Import directory ``path`` in the GroupLens or the RecBole layout (``append``: as an append
    to a workspace)."""
    root = Path(path)
    if (root / "u.data").is_file() and (root / "u.item").is_file():
        return _import_grouplens(root, encoding or "latin-1", append)
    if (root / "ml-100k.inter").is_file() and (root / "ml-100k.item").is_file():
        return _import_recbole(root, encoding or "utf-8", append)
    raise DataError(
        "not an ml-100k directory: expected u.data + u.item (GroupLens) or "
        "ml-100k.inter + ml-100k.item (RecBole)",
        file=root,
    )
