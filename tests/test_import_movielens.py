"""MovieLens latest-small: the bundled real data, through the library and the console script."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc

from tailormind.data.workspace import Workspace
from tests.conftest import run_console_script


def test_counts_and_item_content(movielens_ws: Workspace) -> None:
    items = movielens_ws.read("items")
    interactions = movielens_ws.read("interactions")
    assert items.num_rows == 9742
    assert interactions.num_rows == 100836
    assert movielens_ws.read("users").num_rows == 610
    toy_story = items.filter(pc.equal(items.column("item_id"), "1")).to_pylist()[0]
    # the genres only: the users' free-text tags are tag events with their user and time
    assert toy_story["tags"] == ["adventure", "animation", "children", "comedy", "fantasy"]
    events = movielens_ws.read("tag_events")
    assert events.num_rows == 3683 and movielens_ws.manifest["import"]["tag_events"] == 3683
    toy_events = events.filter(pc.equal(events.column("item_id"), "1")).to_pylist()
    assert {"pixar", "fun"} <= {e["tag"] for e in toy_events}
    pixar = next(e for e in toy_events if e["tag"] == "pixar")
    assert pixar["user_id"] == "336" and pixar["timestamp"].year == 2006  # its first "pixar" row in tags.csv
    assert toy_story["title"] == "Toy Story (1995)"
    assert toy_story["created_at"].year == 1995
    casablanca = items.filter(pc.equal(items.column("item_id"), "912")).to_pylist()[0]
    assert casablanca["created_at"].year == 1942  # before 1970 is a time, not "missing"
    assert toy_story["text"] == ("Toy Story (1995). Genres: adventure, animation, children, "
                                 "comedy, fantasy.")
    first = interactions.slice(0, 1).to_pylist()[0]
    assert first["user_id"] == "1" and first["weight"] in {0.5 * k for k in range(1, 11)}
    # "(no genres listed)" is not a tag
    assert "(no genres listed)" not in set(items.column("tags").combine_chunks().flatten().to_pylist())


def test_console_script_import_and_stats(tmp_path: Path, ml_small: Path) -> None:
    ws = tmp_path / "ws"
    done = run_console_script("data", "import", "--format", "movielens", ml_small, "--workspace", ws)
    assert done.returncode == 0, done.stderr
    stats = run_console_script("data", "stats", "--workspace", ws, "--json")
    assert stats.returncode == 0, stats.stderr
    numbers = json.loads(stats.stdout)
    assert (numbers["users"], numbers["items"], numbers["interactions"]) == (610, 9742, 100836)
    assert numbers["interactions_per_user"]["min"] == 20  # README: every user rated at least 20
    assert abs(numbers["density"] - 100836 / (610 * 9742)) < 1e-12
    assert numbers["split"] is None
