"""Bad input: a one-line error naming file, row (line) and column; exit code 2; nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailormind.data.workspace import Workspace
from tests.cli_errors import assert_one_line_error

MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,Heat (1995),Action\n3,Up (2009),Animation\n"
RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,3.5,200\n1,3,5.0,300\n2,1,2.0,150\n"
TAGS = "userId,movieId,tag,timestamp\n1,1,pixar,100\n"


def movielens_dir(root: Path, *, movies: str | bytes = MOVIES, ratings: str | bytes = RATINGS,
                  tags: str | bytes = TAGS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in (("movies.csv", movies), ("ratings.csv", ratings), ("tags.csv", tags)):
        data = content.encode() if isinstance(content, str) else content
        (root / name).write_bytes(data)
    return root


CASES = {
    "missing column": (dict(ratings="userId,movieId,timestamp\n1,1,100\n"),
                       ["ratings.csv", "missing column 'rating'", "column 'rating'"]),
    "duplicate id": (dict(movies=MOVIES + "2,Heat again (1995),Action\n"),
                     ["movies.csv", "line 5", "column 'movieId'", "duplicate item id '2' (first at line 3)"]),
    "undecodable byte": (dict(ratings=RATINGS.encode() + b"2,\xff3,1.0,400\n"),
                         ["ratings.csv", "line 6", "column 'movieId'", "cannot be decoded as utf-8"]),
    "unknown item": (dict(ratings=RATINGS + "2,99,1.0,400\n"),
                     ["ratings.csv", "line 6", "column 'movieId'", "unknown item '99'"]),
    "empty file": (dict(ratings=""), ["ratings.csv", "file is empty"]),
    "header only": (dict(movies="movieId,title,genres\n"), ["movies.csv", "header but no rows"]),
    "bad timestamp": (dict(ratings=RATINGS + "2,2,1.0,yesterday\n"),
                      ["line 6", "column 'timestamp'", "cannot parse timestamp 'yesterday'"]),
    "bad weight": (dict(ratings=RATINGS + "2,2,five,400\n"),
                   ["line 6", "column 'rating'", "weight 'five' is not a finite number"]),
    "tag of unknown movie": (dict(tags=TAGS + "1,42,x,1\n"),
                             ["tags.csv", "line 3", "column 'movieId'", "unknown movie '42'"]),
    "empty id": (dict(ratings=RATINGS + ",2,1.0,400\n"), ["line 6", "column 'userId'", "empty value"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_movielens_bad_input(case: str, tmp_path: Path, cli) -> None:
    overrides, needles = CASES[case]
    src = movielens_dir(tmp_path / "src", **overrides)
    ws = tmp_path / "ws"
    result = cli("data", "import", "--format", "movielens", src, "--workspace", ws)
    assert_one_line_error(result, *needles)
    assert not ws.exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_failed_reimport_keeps_the_existing_workspace(tmp_path: Path, cli) -> None:
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "movielens", movielens_dir(tmp_path / "good"), "-w", ws).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", "1").code == 0
    before = {p.name: p.read_bytes() for p in ws.iterdir()}
    bad = movielens_dir(tmp_path / "bad", ratings=RATINGS + "2,99,1.0,400\n")
    assert_one_line_error(cli("data", "import", "-f", "movielens", bad, "-w", ws, "--overwrite"),
                          "unknown item '99'")
    assert {p.name: p.read_bytes() for p in ws.iterdir()} == before


def test_reimport_needs_overwrite_and_then_drops_stale_split(tmp_path: Path, cli) -> None:
    ws = tmp_path / "ws"
    src = movielens_dir(tmp_path / "src")
    assert cli("data", "import", "-f", "movielens", src, "-w", ws).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", "1").code == 0
    assert_one_line_error(cli("data", "import", "-f", "movielens", src, "-w", ws), "--overwrite")
    assert cli("data", "import", "-f", "movielens", src, "-w", ws, "--overwrite").code == 0
    assert not Workspace.open(ws).has("split")
    assert not (ws / "split.parquet").exists()


def test_import_into_a_foreign_directory_is_refused(tmp_path: Path, cli) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "thesis.tex").write_text("precious")
    result = cli("data", "import", "-f", "movielens", movielens_dir(tmp_path / "src"), "-w", tmp_path / "ws")
    assert_one_line_error(result, "not an empty directory nor a workspace")
    assert (tmp_path / "ws" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("command", [["data", "stats"], ["data", "split"]])
def test_a_workspace_that_is_not_one(tmp_path: Path, cli, command: list[str]) -> None:
    (tmp_path / "plain").mkdir()
    assert_one_line_error(cli(*command, "-w", tmp_path / "plain"), "is not a workspace", "workspace.json")
    assert_one_line_error(cli(*command, "-w", tmp_path / "nowhere"), "is not a workspace")


def test_media_path_outside_the_data_root(tmp_path: Path, cli) -> None:
    (tmp_path / "secret.jpg").write_bytes(b"x")
    d = tmp_path / "export"
    d.mkdir()
    (d / "log.csv").write_text("user_id,item_id\nu,a\nu,b\nu,c\n")
    (d / "items.jsonl").write_text(
        json.dumps({"item_id": "a", "image_paths": []}) + "\n"
        + json.dumps({"item_id": "b", "image_paths": ["../secret.jpg"]}) + "\n"
        + json.dumps({"item_id": "c"}) + "\n"
    )
    result = cli("data", "import", "-f", "table", d / "log.csv", "--items", d / "items.jsonl",
                 "-w", tmp_path / "ws")
    assert_one_line_error(result, "items.jsonl", "line 2", "column 'image_paths'", "outside the data root")
    assert not (tmp_path / "ws").exists()


def test_missing_media_file(tmp_path: Path, cli) -> None:
    (tmp_path / "log.csv").write_text("user_id,item_id\nu,a\n")
    (tmp_path / "items.csv").write_text("item_id,image_paths\na,img/none.png\n")
    result = cli("data", "import", "-f", "table", tmp_path / "log.csv", "--items", tmp_path / "items.csv",
                 "-w", tmp_path / "ws")
    assert_one_line_error(result, "items.csv", "line 2", "column 'image_paths'", "does not exist")


def test_jsonl_line_that_is_not_json(tmp_path: Path, cli) -> None:
    (tmp_path / "log.jsonl").write_text('{"user_id": "u", "item_id": "a"}\n{"user_id": "u", \n')
    assert_one_line_error(cli("data", "import", "-f", "table", tmp_path / "log.jsonl", "-w", tmp_path / "ws"),
                          "log.jsonl", "line 2", "not valid JSON")


def test_mapping_names_a_column_the_file_lacks(tmp_path: Path, cli) -> None:
    (tmp_path / "log.csv").write_text("uid,iid\nu,a\n")
    assert_one_line_error(cli("data", "import", "-f", "table", tmp_path / "log.csv", "--user-col", "user",
                              "-w", tmp_path / "ws"),
                          "log.csv", "missing column 'user'", "the file has: uid, iid")


def test_mapping_yaml_with_unknown_key(tmp_path: Path, cli) -> None:
    (tmp_path / "log.csv").write_text("user_id,item_id\nu,a\n")
    (tmp_path / "m.yaml").write_text("interactions: {path: log.csv, usr: uid}\n")
    assert_one_line_error(cli("data", "import", "-f", "table", tmp_path / "m.yaml", "-w", tmp_path / "ws"),
                          "m.yaml", "interactions.usr", "unknown key")


def test_unknown_format_and_missing_path(tmp_path: Path, cli) -> None:
    assert_one_line_error(cli("data", "import", "-f", "xml", tmp_path, "-w", tmp_path / "ws"), "unknown --format 'xml'")
    assert_one_line_error(cli("data", "import", "-f", "movielens", "-w", tmp_path / "ws"), "needs a PATH")


def test_wrong_encoding_flag(tmp_path: Path, cli) -> None:
    latin = "user_id,item_id\nu,caf\xe9\n".encode("latin-1")
    (tmp_path / "log.csv").write_bytes(latin)
    assert_one_line_error(cli("data", "import", "-f", "table", tmp_path / "log.csv", "-w", tmp_path / "ws"),
                          "line 2", "column 'item_id'", "--encoding")
    ok = cli("data", "import", "-f", "table", tmp_path / "log.csv", "--encoding", "latin-1", "-w", tmp_path / "ws")
    assert ok.code == 0, ok.err
    assert Workspace.open(tmp_path / "ws").read("items").column("item_id").to_pylist() == ["café"]


def test_error_text_with_brackets_is_printed_verbatim(tmp_path: Path, cli) -> None:
    (tmp_path / "log.csv").write_text("user_id,item_id,[x],[x]\nu,a,1,2\n")
    assert_one_line_error(cli("data", "import", "-f", "table", tmp_path / "log.csv", "-w", tmp_path / "ws"),
                          "duplicate header name(s) ['[x]']")


def test_unknown_option_is_a_usage_error_not_a_traceback(cli) -> None:
    # typer vendors click; its usage errors used to escape the CLI's handler as a traceback
    result = cli("config", "show", "--no-such-flag")
    assert result.code == 2
    assert "No such option: --no-such-flag" in result.err and "Traceback" not in result.err
