"""The generic table importer: CSV/TSV/JSONL/Parquet logs with a column mapping, no code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailormind.data.importers import import_table
from tailormind.data.workspace import Workspace


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def platform_dir(tmp_path: Path) -> Path:
    """A small Rednote-like export: clicks (TSV), notes (JSONL), note tags, users (Parquet), media."""
    d = tmp_path / "export"
    _write(d / "clicks.tsv", "uid\tnote\tts\tdwell\n"
           "u1\tn1\t2024-01-01T10:00:00Z\t3\n"
           "u1\tn2\t2024-01-02T10:00:00Z\t\n"
           "u2\tn1\t1704067200000\t1.5\n"  # epoch milliseconds
           "u1\tn1\t2024-01-03T10:00:00Z\t4\n")  # repeat of (u1, n1): merged into the latest
    notes = [
        {"id": "n1", "title": "火锅攻略", "body": "成都火锅", "topics": ["food", "chengdu"],
         "imgs": ["img/n1_a.jpg", "img/n1_b.jpg"], "published": "2023-12-30"},
        {"id": "n2", "title": "Hiking", "body": "trail notes", "topics": [], "imgs": [], "published": None},
        {"id": "n3", "title": "Unread", "body": "", "topics": ["misc"], "imgs": [], "published": None},
    ]
    _write(d / "notes.jsonl", "\n".join(json.dumps(n, ensure_ascii=False) for n in notes) + "\n")
    _write(d / "note_tags.csv", "note,tag\nn2,outdoor\nn2,hiking\nn1,food\n")
    (d / "img").mkdir()
    for name in ("n1_a.jpg", "n1_b.jpg"):
        (d / "img" / name).write_bytes(b"\xff\xd8fake-jpeg")
    pq.write_table(pa.table({"uid": ["u1", "u3"], "city": ["chengdu", "beijing"]}), d / "users.parquet")
    return d


def test_flags_mapping(platform_dir: Path) -> None:
    b = import_table(
        platform_dir / "clicks.tsv", user_col="uid", item_col="note", timestamp_col="ts",
        weight_col="dwell", items=str(platform_dir / "notes.jsonl"), items_id_col="id",
        title_col="title", text_col="body", tags_col="topics", image_col="imgs",
        created_col="published", item_tags=str(platform_dir / "note_tags.csv"), tag_item_col="note",
        users=str(platform_dir / "users.parquet"), users_id_col="uid", platform="rednote",
    )
    inter = {(r["user_id"], r["item_id"]): r for r in b.interactions.to_pylist()}
    assert set(inter) == {("u1", "n1"), ("u1", "n2"), ("u2", "n1")}
    assert inter[("u1", "n1")]["weight"] == 4.0  # the latest of the two (u1, n1) rows
    assert inter[("u1", "n2")]["weight"] == 1.0  # empty weight cell means 1
    assert inter[("u2", "n1")]["timestamp"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert b.report["duplicate_interactions_merged"] == 1
    items = {r["item_id"]: r for r in b.items.to_pylist()}
    assert items["n1"]["title"] == "火锅攻略"
    assert items["n1"]["tags"] == ["food", "chengdu"]  # tag table adds nothing new
    assert items["n2"]["tags"] == ["outdoor", "hiking"]  # from the item-tag table
    assert items["n1"]["image_paths"] == ["media/img/n1_a.jpg", "media/img/n1_b.jpg"]
    assert items["n1"]["created_at"] == datetime(2023, 12, 30, tzinfo=UTC)
    assert items["n1"]["platform"] == "rednote"
    users = {r["user_id"]: r for r in b.users.to_pylist()}
    assert users == {"u1": {"user_id": "u1", "city": "chengdu"},
                     "u2": {"user_id": "u2", "city": None},
                     "u3": {"user_id": "u3", "city": "beijing"}}
    assert b.report["users_without_attributes"] == 1 and b.report["users_without_interactions"] == 1


def test_yaml_mapping_through_the_cli_copies_media(platform_dir: Path, tmp_path: Path, cli) -> None:
    spec = _write(platform_dir / "mapping.yaml", """
interactions: {path: clicks.tsv, user: uid, item: note, timestamp: ts, weight: dwell}
items: {path: notes.jsonl, item: id, title: title, text: body, tags: topics,
        image_paths: imgs, created_at: published}
item_tags: {path: note_tags.csv, item: note}
platform: rednote
""")
    ws_dir = tmp_path / "ws"
    result = cli("data", "import", "--format", "table", spec, "--workspace", ws_dir)
    assert result.code == 0, result.err
    ws = Workspace.open(ws_dir)
    paths = [p for row in ws.read("items").column("image_paths").to_pylist() for p in row]
    assert paths == ["media/img/n1_a.jpg", "media/img/n1_b.jpg"]
    assert ws.media_path(paths[0]).read_bytes() == b"\xff\xd8fake-jpeg"
    stats = json.loads(cli("data", "stats", "-w", ws_dir, "--json").out)
    assert (stats["users"], stats["items"], stats["interactions"], stats["tags"]) == (2, 3, 3, 5)
    assert stats["items_with_images"] == 1


def test_canonical_column_names_need_no_mapping(tmp_path: Path) -> None:
    src = _write(tmp_path / "log.csv", "user_id,item_id,timestamp,weight\na,x,10,2\na,y,20,1\nb,x,5,1\n")
    b = import_table(src)
    assert b.report["columns"] == {"user": "user_id", "item": "item_id", "timestamp": "timestamp", "weight": "weight"}
    assert b.items.column("item_id").to_pylist() == ["x", "y"]  # no items file: ids only, counted
    assert b.report["items_without_metadata"] == 2


def test_parquet_interactions_and_list_separator(tmp_path: Path) -> None:
    pq.write_table(pa.table({"u": [1, 1, 2], "i": [10, 11, 10]}), tmp_path / "inter.parquet")
    _write(tmp_path / "items.csv", "item_id;title;tags\n10;Ten;a,b\n11;Eleven;\n")
    b = import_table(tmp_path / "inter.parquet", user_col="u", item_col="i",
                     items=str(tmp_path / "items.csv"), sep=";", list_sep=",")
    assert b.interactions.column("user_id").to_pylist() == ["1", "1", "2"]  # ints become id strings
    assert b.items.column("tags").to_pylist() == [["a", "b"], []]


def test_missing_timestamps_are_reported_and_split_in_seeded_random_order(tmp_path: Path, cli) -> None:
    rows = "".join(f"u{u},i{i}\n" for u in range(5) for i in range(6))
    src = _write(tmp_path / "log.csv", "user,item\n" + rows)
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "table", src, "--user-col", "user", "--item-col", "item",
               "-w", ws).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", "3", "--seed", "1").code == 0
    stats = json.loads(cli("data", "stats", "-w", ws, "--json").out)
    assert stats["interactions_without_timestamp"] == 30
    assert "seeded random order" in stats["order_note"]
    assert stats["split"]["timestamps_missing"] == 30
    first = Workspace.open(ws).read("split").to_pylist()
    assert cli("data", "split", "-w", ws, "--negatives", "3", "--seed", "1").code == 0
    assert Workspace.open(ws).read("split").to_pylist() == first  # same seed, same order
    assert cli("data", "split", "-w", ws, "--negatives", "3", "--seed", "2").code == 0
    assert Workspace.open(ws).read("split").to_pylist() != first
