"""The replay behind ``benchmarks/incremental.py`` (issue 23): every rating lands in exactly one
of the base and the increments, increments come in time order and bring their new movies, and
the users with fixed test sets have their two latest ratings in the base, after everything the
increments bring them — so the incremental and the full path are scored on the same sets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.incremental import SOURCE, build_replay

KEYS = ["userId", "movieId", "timestamp"]


def _read(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(directory / name)


def _keys(frame: pd.DataFrame) -> list[tuple[int, int, int]]:
    return sorted(map(tuple, frame[KEYS].to_numpy().tolist()))


@pytest.mark.parametrize("base, increments, users", [(0.8, 4, None), (0.5, 3, 60), (0.9, 2, 25)])
def test_the_replay_partitions_the_ratings_in_time_order(tmp_path: Path, base: float,
                                                         increments: int, users: int | None) -> None:
    replay = build_replay(tmp_path, base, increments, users)
    ratings = _read(SOURCE, "ratings.csv")
    if users is not None:
        ratings = ratings[ratings["userId"].isin(sorted(ratings["userId"].unique())[:users])]
    parts = [_read(d, "ratings.csv") for d in [replay.base, *replay.increments]]
    assert len(parts) == increments + 1 and all(len(p) for p in parts)
    assert _keys(pd.concat(parts)) == _keys(ratings)  # each rating exactly once
    for earlier, later in zip(parts[1:], parts[2:]):
        assert earlier["timestamp"].max() <= later["timestamp"].min()
    moved = {(u, m) for u in map(int, replay.fixed_users)
             for m in ratings[ratings["userId"] == u].sort_values("timestamp").tail(2)["movieId"]}
    kept = parts[0][[(u, m) not in moved for u, m in zip(parts[0]["userId"], parts[0]["movieId"])]]
    assert kept["timestamp"].max() <= parts[1]["timestamp"].min()
    assert abs(len(kept) - base * len(ratings)) <= 1
    for n, directory in enumerate(replay.cumulative, start=1):
        assert _keys(_read(directory, "ratings.csv")) == _keys(pd.concat(parts[: n + 1]))


def test_each_increment_brings_the_movies_it_names_first(tmp_path: Path) -> None:
    replay = build_replay(tmp_path, 0.8, 4)
    known = set(_read(replay.base, "movies.csv")["movieId"])
    everywhere = set(_read(SOURCE, "ratings.csv")["movieId"]) | set(_read(SOURCE, "tags.csv")["movieId"])
    in_base = set(_read(replay.base, "ratings.csv")["movieId"]) | set(
        _read(replay.base, "tags.csv")["movieId"])
    assert known & everywhere == in_base  # a base movie is named in the base (or nowhere)
    for directory in replay.increments:
        own = set(_read(directory, "movies.csv")["movieId"])
        named = set(_read(directory, "ratings.csv")["movieId"]) | set(
            _read(directory, "tags.csv")["movieId"])
        assert not own & known and named <= known | own and own <= named
        known |= own
    assert known == set(_read(SOURCE, "movies.csv")["movieId"])


def test_fixed_users_are_tested_after_everything_the_increments_bring(tmp_path: Path) -> None:
    replay = build_replay(tmp_path, 0.8, 4)
    base = _read(replay.base, "ratings.csv")
    later = pd.concat([_read(d, "ratings.csv") for d in replay.increments])
    assert len(replay.fixed_users) >= 20
    for user in map(int, replay.fixed_users):
        mine = base[base["userId"] == user].sort_values(["timestamp", "movieId"])
        held_out = mine.tail(2)
        assert len(mine) >= 3  # the split evaluates them (min_interactions = 3)
        arriving = later[later["userId"] == user]
        assert (arriving["timestamp"] <= held_out["timestamp"].min()).all()
    others = set(base["userId"]) - set(map(int, replay.fixed_users))
    for user in list(others)[:50]:  # nobody else got a rating moved forward
        newest = base[base["userId"] == user]["timestamp"].max()
        assert newest <= later["timestamp"].min()
