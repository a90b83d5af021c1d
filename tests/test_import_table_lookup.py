"""The table importer on a public data set's shapes (HetRec 2011 Last.fm), without glue.

Tab-separated ``.dat`` files, tag names in a separate Latin-1 file keyed by tag id (a lookup),
user-item-tag rows with the tagging user and a date split in day/month/year (tag events), rows
naming items missing from the items file (``on_dangling``), per-file encodings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tailormind.data.importers import import_table
from tailormind.data.workspace import Workspace
from tests.conftest import run_console_script
from tests.cli_errors import assert_one_line_error

ARTISTS = ("id\tname\turl\tpictureURL\n"
           "1\tMotörhead\thttp://www.last.fm/music/Mot%C3%B6rhead\thttp://img/1.jpg\n"
           "2\tBjörk\thttp://www.last.fm/music/Bj%C3%B6rk\thttp://img/2.jpg\n"
           "3\tSigur Rós\thttp://www.last.fm/music/Sigur+R%C3%B3s\thttp://img/3.jpg\n"
           "4\tDaft Punk\thttp://www.last.fm/music/Daft+Punk\thttp://img/4.jpg\n")
USER_ARTISTS = ("userID\tartistID\tweight\n"
                "2\t1\t13883\n2\t2\t11690\n2\t3\t2000\n3\t1\t500\n"
                "3\t99\t12\n"  # artist 99 is not in artists.dat: dangling
                "4\t2\t700\n")
TAGS = "tagID\ttagValue\n1\tmetal\n2\tblack métal\n3\tmúsica latina\n4\tøresund\n"  # Latin-1 on disk
TAGGED = ("userID\tartistID\ttagID\tday\tmonth\tyear\n"
          "2\t1\t1\t1\t4\t2009\n"
          "2\t1\t2\t1\t4\t2009\n"
          "2\t3\t3\t15\t2\t2008\n"
          "3\t1\t1\t29\t2\t2008\n"    # a leap day
          "3\t99\t1\t1\t1\t2010\n"    # unknown artist
          "4\t2\t77\t1\t5\t2009\n"    # tag 77 is not in tags.dat
          "3\t99\t77\t1\t1\t2010\n"   # both: dropped (and counted) once
          "4\t2\t4\t1\t5\t2009\n"
          "9\t4\t4\t1\t6\t2009\n"     # a user who tagged but has no interactions
          "2\t1\t1\t1\t4\t2009\n")    # the same application again: merged
TAGGED_TS = ("userID\tartistID\ttagID\ttimestamp\n"
             "2\t1\t1\t1238536800000\n"
             "2\t3\t3\t1202860800000\n"
             "3\t99\t1\t1262300400000\n")

LOOKUP = "{lookup: {path: tags.dat, format: tsv, key: tagID, value: tagValue, encoding: latin-1}}"
MAPPING = f"""
interactions: {{path: user_artists.dat, format: tsv, user: userID, item: artistID, weight: weight}}
items: {{path: artists.dat, format: tsv, item: id, title: name}}
item_tags:
  path: user_taggedartists.dat
  format: tsv
  item: artistID
  user: userID
  date: {{year: year, month: month, day: day}}
  tag: {LOOKUP}
on_dangling: drop
"""


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def lastfm(tmp_path: Path) -> Path:
    """HetRec-2011-Last.fm-shaped files; tags.dat is Latin-1, the others UTF-8."""
    d = tmp_path / "hetrec2011-lastfm-2k"
    _write(d / "artists.dat", ARTISTS)
    _write(d / "user_artists.dat", USER_ARTISTS)
    _write(d / "tags.dat", TAGS, "latin-1")
    _write(d / "user_taggedartists.dat", TAGGED)
    _write(d / "user_taggedartists-timestamps.dat", TAGGED_TS)
    return d


def _mapping(d: Path, text: str = MAPPING) -> Path:
    return _write(d / "mapping.yaml", text)


def test_lastfm_shapes_import_with_lookup_dates_and_dropped_dangling_rows(lastfm: Path) -> None:
    b = import_table(_mapping(lastfm))
    titles = dict(zip(b.items.column("item_id").to_pylist(), b.items.column("title").to_pylist(), strict=True))
    assert titles == {"1": "Motörhead", "2": "Björk", "3": "Sigur Rós", "4": "Daft Punk"}
    inter = {(r["user_id"], r["item_id"]): r["weight"] for r in b.interactions.to_pylist()}
    assert inter == {("2", "1"): 13883, ("2", "2"): 11690, ("2", "3"): 2000, ("3", "1"): 500, ("4", "2"): 700}
    events = [(r["item_id"], r["tag"], r["user_id"], r["timestamp"]) for r in b.tag_events.to_pylist()]
    assert events == [
        ("1", "metal", "2", datetime(2009, 4, 1, tzinfo=UTC)),
        ("1", "black métal", "2", datetime(2009, 4, 1, tzinfo=UTC)),
        ("3", "música latina", "2", datetime(2008, 2, 15, tzinfo=UTC)),
        ("1", "metal", "3", datetime(2008, 2, 29, tzinfo=UTC)),
        ("2", "øresund", "4", datetime(2009, 5, 1, tzinfo=UTC)),
        ("4", "øresund", "9", datetime(2009, 6, 1, tzinfo=UTC)),
    ]
    assert b.items.column("tags").to_pylist() == [[], [], [], []]  # tag events are not provenance-free tags
    assert b.report["dropped_dangling"] == {"user_artists.dat": 1, "user_taggedartists.dat": 3}
    assert b.report["dropped_dangling_reasons"] == {
        "user_artists.dat": {"unknown item": 1},
        "user_taggedartists.dat": {"tagID not in tags.dat": 2, "unknown item": 1},
    }
    assert b.report["tag_events"] == 6 and b.report["duplicate_tag_events_merged"] == 1
    assert b.report["tag_event_users_without_interactions"] == 1  # user 9
    assert b.report["columns_item_tags"]["date"] == {"year": "year", "month": "month", "day": "day"}
    assert b.users.column("user_id").to_pylist() == ["2", "3", "4"]


def test_tag_events_from_epoch_millisecond_timestamps(lastfm: Path) -> None:
    text = MAPPING.replace("user_taggedartists.dat", "user_taggedartists-timestamps.dat").replace(
        "date: {year: year, month: month, day: day}", "timestamp: timestamp")
    b = import_table(_mapping(lastfm, text))
    assert [(r["item_id"], r["tag"], r["timestamp"]) for r in b.tag_events.to_pylist()] == [
        ("1", "metal", datetime.fromtimestamp(1238536800, UTC)),
        ("3", "música latina", datetime.fromtimestamp(1202860800, UTC)),
    ]
    assert b.report["dropped_dangling"] == {"user_artists.dat": 1, "user_taggedartists-timestamps.dat": 1}


def test_tags_without_a_user_are_merged_into_items_tags_through_the_lookup(lastfm: Path) -> None:
    _write(lastfm / "artist_tags.dat", "artistID\ttagID\n1\t1\n1\t2\n3\t3\n1\t1\n")
    b = import_table(_mapping(lastfm, f"""
interactions: {{path: user_artists.dat, format: tsv, user: userID, item: artistID}}
items: {{path: artists.dat, format: tsv, item: id, title: name}}
item_tags: {{path: artist_tags.dat, format: tsv, item: artistID, tag: {LOOKUP}}}
on_dangling: drop
"""))
    assert b.tag_events is None
    assert b.items.column("tags").to_pylist() == [["metal", "black métal"], [], ["música latina"], []]


def test_lookup_with_an_explicit_column_and_the_global_encoding(lastfm: Path) -> None:
    """``column`` names the referencing column when it differs from the lookup's key; a lookup
    without its own encoding takes the global one."""
    _write(lastfm / "artist_tags.dat", "artist\ttag_ref\n1\t2\n")
    _write(lastfm / "artists_latin1.dat", ARTISTS, "latin-1")
    b = import_table(_mapping(lastfm, """
interactions: {path: user_artists.dat, format: tsv, user: userID, item: artistID, encoding: utf-8}
items: {path: artists_latin1.dat, format: tsv, item: id, title: name}
item_tags: {path: artist_tags.dat, format: tsv, item: artist,
            tag: {column: tag_ref, lookup: {path: tags.dat, format: tsv, key: tagID, value: tagValue}}}
encoding: latin-1
on_dangling: drop
"""))
    assert b.items.column("tags").to_pylist()[0] == ["black métal"]
    assert b.items.column("title").to_pylist()[0] == "Motörhead"


@pytest.mark.parametrize("section", ["interactions", "items", "item_tags", "lookup"])
def test_a_file_encoding_overrides_the_global_one(section: str, tmp_path: Path) -> None:
    """Each kind of file is written in Latin-1 (the rest in UTF-8) and says so itself; the global
    encoding stays UTF-8. Without the per-file setting its non-ASCII bytes would not decode."""
    d = tmp_path / "enc"
    files = {"interactions": ("log.tsv", "user\titem\njörg\ta\nanna\tb\n"),
             "items": ("items.tsv", "item\ttitle\na\tCafé\nb\tNaïve\n"),
             "item_tags": ("tags.tsv", "item\ttag\tuser\na\t1\tjörg\nb\t2\tanna\n"),
             "lookup": ("names.tsv", "id\tname\n1\tmötal\n2\tchanson française\n")}
    for name, (file, text) in files.items():
        _write(d / file, text, "latin-1" if name == section else "utf-8")
    enc = {name: ", encoding: latin-1" if name == section else "" for name in files}
    b = import_table(_write(d / "m.yaml", f"""
interactions: {{path: log.tsv, user: user, item: item{enc['interactions']}}}
items: {{path: items.tsv, item: item, title: title{enc['items']}}}
item_tags: {{path: tags.tsv, item: item, user: user{enc['item_tags']},
            tag: {{lookup: {{path: names.tsv, key: id, value: name{enc['lookup']}}}, column: tag}}}}
encoding: utf-8
"""))
    assert sorted(b.users.column("user_id").to_pylist()) == ["anna", "jörg"]
    assert b.items.column("title").to_pylist() == ["Café", "Naïve"]
    assert [(r["item_id"], r["tag"], r["user_id"]) for r in b.tag_events.to_pylist()] == [
        ("a", "mötal", "jörg"), ("b", "chanson française", "anna")]


def test_format_tsv_per_file_wins_over_the_global_sep_and_dat_headers_are_sniffed(tmp_path: Path) -> None:
    _write(tmp_path / "log.dat", "u;i\nx;a\ny;b\n")
    _write(tmp_path / "items.dat", "item_id\ttitle\na\tA; the first\nb\tB\n")
    b = import_table(_write(tmp_path / "m.yaml", """
interactions: {path: log.dat, user: u, item: i}
items: {path: items.dat, format: tsv}
sep: ";"
"""))
    assert b.items.column("title").to_pylist() == ["A; the first", "B"]
    # no format, no sep anywhere: a .dat header with a tab and no comma means tab-separated
    _write(tmp_path / "log2.dat", "u\ti\nx\ta,b\n")
    _write(tmp_path / "tags.dat", "item_id\ttag\na,b\tone\n")
    b = import_table(_write(tmp_path / "m2.yaml", "interactions: {path: log2.dat, user: u, item: i}\n"
                                                  "item_tags: {path: tags.dat}\n"))
    assert b.items.column("tags").to_pylist() == [["one"]]


def test_date_with_time_of_day_columns_on_interactions(tmp_path: Path) -> None:
    _write(tmp_path / "log.csv", "u,i,y,m,d,hh,mm,ss\nx,a,2024,2,29,13,5,9\nx,b,,,,,,\ny,a,1970,1,1,0,0,1\n")
    b = import_table(_write(tmp_path / "m.yaml", """
interactions: {path: log.csv, user: u, item: i,
               date: {year: y, month: m, day: d, hour: hh, minute: mm, second: ss}}
"""))
    times = {(r["user_id"], r["item_id"]): r["timestamp"] for r in b.interactions.to_pylist()}
    assert times == {("x", "a"): datetime(2024, 2, 29, 13, 5, 9, tzinfo=UTC), ("x", "b"): None,
                     ("y", "a"): datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)}
    assert b.report["interactions_without_timestamp"] == 1


def test_tags_of_items_no_interaction_names_are_dangling_without_an_items_file(tmp_path: Path) -> None:
    _write(tmp_path / "log.csv", "user_id,item_id\nu,a\n")
    _write(tmp_path / "tags.csv", "item_id,tag\na,x\nz,y\n")
    b = import_table(_write(tmp_path / "m.yaml", "interactions: {path: log.csv}\n"
                                                 "item_tags: {path: tags.csv}\non_dangling: drop\n"))
    assert b.items.column("tags").to_pylist() == [["x"]]
    assert b.report["dropped_dangling"] == {"tags.csv": 1}


# -- bad input: one line naming file, row (line) and column; exit code 2; nothing written ------

DANGLING = {
    "interaction of an unknown item": (
        "user_artists.dat", ["user_artists.dat", "line 6", "column 'artistID'", "unknown item '99'",
                             "not in the items file artists.dat", "on_dangling: drop"]),
    "tag row of an unknown item": (
        "user_taggedartists.dat", ["user_taggedartists.dat", "line 6", "column 'artistID'",
                                   "tag row names unknown item '99'", "on_dangling: drop"]),
    "tag id missing from the lookup": (
        "user_taggedartists.dat", ["user_taggedartists.dat", "line 6", "column 'tagID'",
                                   "tag '77' is not in lookup file tags.dat (column 'tagID')"]),
}


@pytest.mark.parametrize("case", list(DANGLING))
def test_dangling_rows_are_an_error_by_default(case: str, lastfm: Path, tmp_path: Path, cli) -> None:
    # keep only the dangling rows of the case's kind, so each case meets its own first error
    keep = {"interaction of an unknown item": lambda line: True,
            "tag row of an unknown item": lambda line: "\t77\t" not in line,
            "tag id missing from the lookup": lambda line: "\t99\t" not in line}[case]
    if case != "interaction of an unknown item":
        _write(lastfm / "user_artists.dat", USER_ARTISTS.replace("3\t99\t12\n", ""))
    _write(lastfm / "user_taggedartists.dat", "".join(l for l in TAGGED.splitlines(True) if keep(l)))
    spec = _mapping(lastfm, MAPPING.replace("on_dangling: drop\n", ""))
    assert_one_line_error(cli("data", "import", "-f", "table", spec, "-w", tmp_path / "ws"), *DANGLING[case][1])
    assert not (tmp_path / "ws").exists()


BAD_MAPPINGS = {
    "lookup file missing": (lambda m: m.replace("path: tags.dat", "path: tag_names.dat"),
                            ["tag_names.dat", "lookup file of item_tags.tag does not exist"]),
    "lookup key column missing": (lambda m: m.replace("{lookup: {path: tags.dat", "{column: tagID, lookup: {path: tags.dat")
                                  .replace("key: tagID", "key: tag_id"),
                                  ["tags.dat", "column 'tag_id'", "missing column 'tag_id' (lookup key)",
                                   "the file has: tagID, tagValue"]),
    "lookup value column missing": (lambda m: m.replace("value: tagValue", "value: name"),
                                    ["tags.dat", "missing column 'name' (lookup value)"]),
    "lookup encoding wrong": (lambda m: m.replace(", encoding: latin-1", ""),
                              ["tags.dat", "line 3", "column 'tagValue'", "cannot be decoded as utf-8",
                               "set 'encoding' for this file in the mapping"]),
    "unknown encoding": (lambda m: m.replace("encoding: latin-1", "encoding: latin-99"),
                         ["tags.dat", "unknown encoding 'latin-99'"]),
    "unknown on_dangling": (lambda m: m.replace("on_dangling: drop", "on_dangling: skip"),
                            ["mapping.yaml", "mapping key 'on_dangling'", "must be one of error, drop",
                             "got 'skip'"]),
    "lookup without key": (lambda m: m.replace("key: tagID, ", ""),
                           ["mapping.yaml", "mapping key 'item_tags.tag.lookup.key': Field required"]),
    "column reference without column or lookup": (lambda m: m.replace(LOOKUP, "{}"),
                                                  ["mapping key 'item_tags.tag': set 'column', 'lookup' or both"]),
    "timestamp and date": (lambda m: m.replace("  date:", "  timestamp: day\n  date:"),
                           ["mapping key 'item_tags': set 'timestamp' or 'date', not both"]),
    "tag time without a user": (lambda m: m.replace("  user: userID\n", ""),
                                ["mapping key 'item_tags.date': only tag events have a time"]),
    "date column missing": (lambda m: m.replace("day: day", "day: dd"),
                            ["user_taggedartists.dat", "missing column 'dd' (date day)"]),
}


@pytest.mark.parametrize("case", list(BAD_MAPPINGS))
def test_bad_mapping_or_lookup(case: str, lastfm: Path, tmp_path: Path, cli) -> None:
    edit, needles = BAD_MAPPINGS[case]
    spec = _mapping(lastfm, edit(MAPPING))
    assert_one_line_error(cli("data", "import", "-f", "table", spec, "-w", tmp_path / "ws"), *needles)
    assert not (tmp_path / "ws").exists()


BAD_DATES = {
    "month 13": ("3\t1\t1\t1\t13\t2008\n", ["line 2", "column 'month'", "date month '13' is not a whole number from 1 to 12"]),
    "30 February": ("3\t1\t1\t30\t2\t2008\n", ["line 2", "column 'day'", "day 30 does not exist in 2008-02"]),
    "a day that is not a number": ("3\t1\t1\tfirst\t2\t2008\n", ["column 'day'", "date day 'first'"]),
    "an empty year beside a month": ("3\t1\t1\t1\t2\t\n", ["line 2", "column 'year'", "empty date year"]),
}


@pytest.mark.parametrize("case", list(BAD_DATES))
def test_bad_split_date(case: str, lastfm: Path, tmp_path: Path, cli) -> None:
    row, needles = BAD_DATES[case]
    _write(lastfm / "user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear\n" + row)
    assert_one_line_error(cli("data", "import", "-f", "table", _mapping(lastfm), "-w", tmp_path / "ws"),
                          "user_taggedartists.dat", *needles)


def test_duplicate_lookup_key_names_both_rows(lastfm: Path, tmp_path: Path, cli) -> None:
    _write(lastfm / "tags.dat", TAGS + "2\tblack metal\n", "latin-1")
    assert_one_line_error(cli("data", "import", "-f", "table", _mapping(lastfm), "-w", tmp_path / "ws"),
                          "tags.dat", "line 6", "column 'tagID'", "duplicate lookup key id '2' (first at line 3)")


def test_unknown_on_dangling_flag(lastfm: Path, tmp_path: Path, cli) -> None:
    assert_one_line_error(cli("data", "import", "-f", "table", _mapping(lastfm), "--on-dangling", "ignore",
                              "-w", tmp_path / "ws"), "mapping key 'on_dangling'", "got 'ignore'")
    assert_one_line_error(cli("data", "import", "-f", "movielens", lastfm, "--on-dangling", "drop",
                              "-w", tmp_path / "ws"), "--on-dangling applies to --format table only")


# -- end to end, as a user runs it ---------------------------------------------------------------

def test_cli_import_and_stats_end_to_end(lastfm: Path, tmp_path: Path) -> None:
    """The installed ``tailormind``: the mapping says nothing of dangling rows, the flag drops them."""
    spec = _mapping(lastfm, MAPPING.replace("on_dangling: drop\n", ""))
    ws = tmp_path / "ws"
    failed = run_console_script("data", "import", "--format", "table", spec, "--workspace", ws)
    assert failed.returncode == 2 and "unknown item '99'" in failed.stderr and not ws.exists()
    done = run_console_script("data", "import", "--format", "table", spec, "--workspace", ws,
                              "--on-dangling", "drop")
    assert done.returncode == 0, done.stderr
    assert "dropped (dangling) from user_taggedartists.dat: 3" in done.stderr
    stats = json.loads(run_console_script("data", "stats", "--workspace", ws, "--json").stdout)
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 4, 5)
    assert stats["dropped_dangling"] == {"user_artists.dat": 1, "user_taggedartists.dat": 3}
    assert stats["dropped_dangling_reasons"]["user_taggedartists.dat"] == {"tagID not in tags.dat": 2,
                                                                          "unknown item": 1}
    manifest = json.loads((ws / "workspace.json").read_text())
    assert manifest["import"]["dropped_dangling"] == stats["dropped_dangling"]
    assert Workspace.open(ws).read("tag_events").num_rows == 6
    text = run_console_script("data", "stats", "--workspace", ws, env={"COLUMNS": "200"}).stdout
    assert "dropped (dangling) from user_artists.dat" in text
    assert "3 (tagID not in tags.dat: 2, unknown item: 1)" in text
