"""Tags with provenance: no held-out item of any user carries that user's own tag in a model input.

MovieLens ``tags.csv`` rows are tags a *user* applied to a movie. In the bundled data 7 users'
test items and 5 users' validation items carry a tag applied by that same user; those tag events
must reach none of: the item-tag relation (``model_items``), the hyperedges (``load_cf_data``),
the item text that is described and embedded (``item_text``), the items' own ``text``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from tailormind.cf.data import load_cf_data
from tailormind.data import schemas
from tailormind.data.ingest import save_import
from tailormind.data.item_tags import model_items
from tailormind.data.records import ImportBundle, interactions_table, items_table, tag_events_table, users_table
from tailormind.data.split import split_workspace
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.data.item_text import item_text
from tests.conftest import run_console_script


def _heldout(ws: Workspace) -> dict[tuple[str, str], str]:
    rows = ws.read("split", columns=["user_id", "item_id", "split"]).to_pylist()
    return {(r["user_id"], r["item_id"]): r["split"] for r in rows if r["split"] != "train"}


def _own_only_tags(ws: Workspace) -> dict[tuple[str, str], set[str]]:
    """(user, held-out item) -> tags on it that only that user's events support (from the raw
    tables, independently of the code under test)."""
    supporters: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in ws.read("tag_events").to_pylist():
        supporters[(e["item_id"], e["tag"])].add(e["user_id"])
    source = {r["item_id"]: set(r["tags"]) for r in ws.read("items", columns=["item_id", "tags"]).to_pylist()}
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (item, tag), users in supporters.items():
        for user in users:
            if (user, item) in _HELD and users == {user} and tag not in source[item]:
                out[(user, item)].add(tag)
    return out


_HELD: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def leaks(movielens_ws: Workspace) -> dict[tuple[str, str], set[str]]:
    _HELD.clear()
    _HELD.update(_heldout(movielens_ws))
    return _own_only_tags(movielens_ws)


def test_the_bundled_data_has_the_leak_the_split_removes(movielens_ws, leaks) -> None:
    """The raw tag events do put users' own tags on their held-out items: 7 test, 5 valid."""
    held = _heldout(movielens_ws)
    own_event_users = defaultdict(set)
    for e in movielens_ws.read("tag_events").to_pylist():
        where = held.get((e["user_id"], e["item_id"]))
        if where:
            own_event_users[where].add(e["user_id"])
    assert {k: len(v) for k, v in own_event_users.items()} == {"test": 7, "valid": 5}
    assert leaks, "some held-out items carry a tag only their own user applied"
    report = movielens_ws.manifest["split"]
    withheld = sum(1 for e in movielens_ws.read("tag_events").to_pylist()
                   if (e["user_id"], e["item_id"]) in held)
    assert report["tag_events_withheld"] == withheld == 31
    assert report["users_with_withheld_tags"] == 9 and report["tag_events"] == 3683


def test_no_model_input_carries_a_users_own_tag_on_their_heldout_item(movielens_ws, leaks) -> None:
    items = {r["item_id"]: r for r in model_items(movielens_ws).to_pylist()}
    data = load_cf_data(movielens_ws)
    edges = {(data.item_ids[i], data.tag_names[t])
             for i, t in zip(data.tag_items.tolist(), data.tag_ids.tolist(), strict=True)}
    for (user, item), tags in leaks.items():
        row = items[item]
        assert not tags & set(row["tags"]), (user, item, tags)
        assert not {(item, t) for t in tags} & edges, (user, item, tags)
        described = item_text(row).lower()
        assert not any(f" {t}," in described or f" {t}." in described for t in tags), described
        assert "Tags:" not in movielens_ws.read("items", columns=["item_id", "text"]).to_pylist()[
            data.item_ids.index(item)]["text"]


def test_other_users_tags_still_reach_the_models(movielens_ws) -> None:
    """Withholding is narrow: Toy Story keeps "pixar" and "fun" (applied by users for whom it is
    not held out) after its genres, and most tag events survive."""
    toy = model_items(movielens_ws).to_pylist()[0]
    assert toy["item_id"] == "1"
    assert toy["tags"][:5] == ["adventure", "animation", "children", "comedy", "fantasy"]
    assert {"pixar", "fun"} <= set(toy["tags"])
    raw_toy = movielens_ws.read("items").to_pylist()[0]
    assert raw_toy["tags"] == ["adventure", "animation", "children", "comedy", "fantasy"]


def _tiny(tmp_path: Path, events: list[tuple[str, str, str]]) -> Workspace:
    items = items_table(list("abcdef"), tags=[["g"], [], [], [], [], []])  # e, f: negatives
    users, its = zip(*[(u, i) for u in ("u1", "u2") for i in ("a", "b", "c", "d")], strict=True)
    ts = [1, 2, 3, 4, 1, 2, 4, 3]  # u1: test d, valid c; u2: test c, valid d
    inter = interactions_table(list(users), list(its), timestamps=__import__("numpy").array(ts))
    tag_events = tag_events_table(*zip(*events, strict=True)) if events else None
    bundle = ImportBundle(items, inter, users_table(list(users)), {}, tag_events=tag_events)
    return save_import(bundle, tmp_path / "ws")


def test_derivation_by_hand(tmp_path: Path) -> None:
    # (item, tag, user): u1 tags its test item d "x" (withheld) and "y", which u3 (who rated
    # nothing) also applies (kept, through u3); u1's "z" on its train item a is kept; u2's "w" on
    # its valid item d and "v" on its test item c are withheld.
    ws = _tiny(tmp_path, [("d", "x", "u1"), ("d", "y", "u1"), ("d", "y", "u3"),
                          ("a", "z", "u1"), ("d", "w", "u2"), ("c", "v", "u2")])
    result = split_workspace(ws, negatives=1, seed=0)
    assert {k: result.report[k] for k in ("tag_events", "tag_events_withheld",
                                          "users_with_withheld_tags")} == {
        "tag_events": 6, "tag_events_withheld": 4, "users_with_withheld_tags": 2}
    tags = {r["item_id"]: r["tags"] for r in model_items(ws).to_pylist()}
    assert tags == {"a": ["g", "z"], "b": [], "c": [], "d": ["y"], "e": [], "f": []}
    stats = run_console_script("data", "stats", "--workspace", ws.root, "--json")
    assert stats.returncode == 0, stats.stderr
    numbers = json.loads(stats.stdout)
    assert numbers["tag_events"] == 6 and numbers["split"]["tag_events_withheld"] == 4


def test_a_workspace_with_tag_events_must_be_split_before_models_read_tags(tmp_path) -> None:
    ws = _tiny(tmp_path, [("a", "z", "u1")])
    with pytest.raises(WorkspaceError, match="data split"):
        model_items(ws)
    assert model_items(ws, columns=["item_id", "title"]).num_rows == 6  # no tags asked: fine


def _fake_features(ws: Workspace) -> None:
    rows = [{"item_id": i, "description": i, "text_source": "passthrough", "image_source": "none",
             "video_source": "none", "embedding": [1.0], "embed_model": "m"} for i in "abcdef"]
    ws.write("item_features", pa.Table.from_pylist(rows, schema=schemas.ITEM_FEATURES))


def test_descriptions_survive_a_resplit_only_when_the_tags_are_unchanged(tmp_path) -> None:
    ws = _tiny(tmp_path, [("a", "z", "u1")])
    split_workspace(ws, negatives=1, seed=0)
    _fake_features(ws)
    split_workspace(ws, negatives=1, seed=0)  # the same item tags: descriptions still hold
    assert ws.has("item_features")
    # a workspace split before tag events existed: its descriptions saw items.tags only
    ws.manifest["tables"].pop("item_tags")
    split_workspace(ws, negatives=1, seed=0)
    assert not ws.has("item_features") and ws.has("item_tags")
