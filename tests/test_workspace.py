"""Workspace tables: schema round trip, atomic writes, and what is and is not a workspace."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailormind.data import schemas
from tailormind.data.workspace import MANIFEST, Workspace
from tailormind.errors import WorkspaceError

ROWS = {
    "items": [
        {"item_id": "a", "title": "Alpha", "text": "about alpha", "tags": ["x", "y"],
         "image_paths": ["media/a.png"], "video_paths": [], "platform": "rednote",
         "created_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC)},
        {"item_id": "b", "title": None, "text": "", "tags": [], "image_paths": [],
         "video_paths": ["media/b.mp4"], "platform": None, "created_at": None},
    ],
    "interactions": [
        {"user_id": "u1", "item_id": "a", "timestamp": datetime(2024, 5, 2, tzinfo=UTC), "weight": 1.5},
        {"user_id": "u1", "item_id": "b", "timestamp": None, "weight": 1.0},
    ],
    "users": [{"user_id": "u1"}],
    "split": [
        {"user_id": "u1", "item_id": "a", "timestamp": None, "weight": 1.0, "position": 0, "split": "train"},
    ],
    "candidates": [{"user_id": "u1", "split": "test", "positive": "a", "negatives": ["b", "c"]}],
}


@pytest.mark.parametrize("name", list(ROWS))
def test_schema_round_trip(tmp_path: Path, name: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    table = pa.Table.from_pylist(ROWS[name], schema=schemas.TABLES[name])
    ws.write(name, table)
    back = Workspace.open(tmp_path / "ws").read(name)
    assert back.schema.equals(schemas.TABLES[name])
    assert back.to_pylist() == ROWS[name]
    assert Workspace.open(tmp_path / "ws").manifest["tables"][name]["rows"] == len(ROWS[name])


def test_users_keep_attribute_columns(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.write("users", pa.table({"user_id": ["1", "2"], "age": ["24", None]}))
    assert ws.read("users").to_pylist() == [{"user_id": "1", "age": "24"}, {"user_id": "2", "age": None}]


def test_conform_rejects_missing_and_null_required_columns() -> None:
    with pytest.raises(ValueError, match="missing column"):
        schemas.conform(pa.table({"user_id": ["u"]}), schemas.INTERACTIONS)
    bad = pa.table({"user_id": [None], "item_id": ["i"], "timestamp": [None], "weight": [1.0]})
    with pytest.raises(ValueError, match="'user_id' has 1 null"):
        schemas.conform(bad, schemas.INTERACTIONS)


def test_failed_write_keeps_the_old_table_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    ws = Workspace.create(tmp_path / "ws")
    good = pa.Table.from_pylist(ROWS["users"], schema=schemas.USERS)
    ws.write("users", good)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        ws.write("users", pa.table({"user_id": ["other"]}))
    monkeypatch.undo()
    assert Workspace.open(tmp_path / "ws").read("users").to_pylist() == ROWS["users"]
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == sorted([MANIFEST, "users.parquet"])


def test_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a workspace"):
        Workspace.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(WorkspaceError, match=f"no {MANIFEST}"):
        Workspace.open(tmp_path / "plain")
    (tmp_path / "plain" / MANIFEST).write_text("{not json")
    with pytest.raises(WorkspaceError, match="corrupt manifest"):
        Workspace.open(tmp_path / "plain")


def test_create_refuses_a_foreign_directory_and_an_existing_workspace(tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not an empty directory"):
        Workspace.create(tmp_path / "foreign")
    Workspace.create(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="--overwrite"):
        Workspace.create(tmp_path / "ws")
    Workspace.create(tmp_path / "ws", overwrite=True)


def test_reading_a_stage_output_that_does_not_exist_says_what_to_run(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="tailormind data split"):
        ws.read("candidates")


def test_media_path_cannot_leave_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.media_path("media/a.png") == (tmp_path / "ws" / "media" / "a.png").resolve()
    with pytest.raises(WorkspaceError, match="leaves the workspace"):
        ws.media_path("../outside.png")
