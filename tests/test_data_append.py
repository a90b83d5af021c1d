"""``tailormind data append`` (issue 23): interactions, new items and users added with a monotone
watermark; the held-out sets of users who have them never move, and nothing appended enters
them; new users get a split of their own; a bad file (unknown item, bad or missing timestamp,
duplicate) is one line on stderr and writes nothing, nor does an append that fails mid-write."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailormind.data.append import append_files
from tailormind.data.appends import appended_since, watermark
from tailormind.data.importers import import_table
from tailormind.data.schemas import CF_TOPK, ITEM_FEATURES
from tailormind.data.workspace import Workspace
from tailormind.errors import DataError
from tests.cli_errors import assert_one_line_error

N_ITEMS = 40
NEGATIVES = 5
GENRES = ("Action", "Comedy", "Drama", "Horror")
#: user -> [(item, time)]: six evaluated users, one train-only user ("t": 2 interactions)
BASE = {**{f"u{u}": [(str((u * 7 + k * 3) % N_ITEMS + 1), 1000 * u + 10 * k) for k in range(6)]
           for u in range(1, 7)},
        "t": [("1", 50), ("2", 60)]}


def _movies(ids: list[int]) -> str:
    return "movieId,title,genres\n" + "".join(
        f"{i},Movie {i} (2000),{GENRES[i % len(GENRES)]}\n" for i in ids)


def _ratings(rows: list[tuple[str, str, object]]) -> str:
    return "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},4,{t}\n" for u, i, t in rows)


def source(root: Path, rows: list[tuple[str, str, object]], *, movies: list[int] | None = None,
           tags: list[tuple[str, str, str, int]] | None = None) -> Path:
    """A MovieLens-layout directory: ratings ``rows`` (user, item, time), ``movies`` (ids) and
    tag events (user, item, tag, time); ``movies`` None leaves movies.csv out."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.csv").write_text(_ratings(rows))
    if movies is not None:
        (root / "movies.csv").write_text(_movies(movies))
    if tags is not None:
        (root / "tags.csv").write_text("userId,movieId,tag,timestamp\n"
                                       + "".join(f"{u},{i},{t},{s}\n" for u, i, t, s in tags))
    return root


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BASE users imported (items 1..40, one tag event) and split with 1 + 5 candidates."""
    from tailormind.cli.main import run

    root = tmp_path_factory.mktemp("append")
    rows = [(u, i, t) for u, items in BASE.items() for i, t in items]
    src = source(root / "src", rows, movies=list(range(1, N_ITEMS + 1)),
                 tags=[("u2", "5", "gritty", 5)])
    assert run(["data", "import", "-f", "movielens", str(src), "-w", str(root / "ws")]) == 0
    assert run(["data", "split", "-w", str(root / "ws"), "--negatives", str(NEGATIVES)]) == 0
    return root / "ws"


@pytest.fixture
def ws(base_ws: Path, tmp_path: Path) -> Path:
    shutil.copytree(base_ws, tmp_path / "ws")
    return tmp_path / "ws"


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and modification time."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def held_out(workspace: Workspace) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """Per evaluated user: the validation and test rows of the split, and the candidate rows."""
    split = workspace.read("split")
    held = split.filter(pc.not_equal(split.column("split"), "train")).to_pylist()
    candidates = workspace.read("candidates").to_pylist()
    return ({u: [r for r in held if r["user_id"] == u] for u in {r["user_id"] for r in held}},
            {u: [c for c in candidates if c["user_id"] == u] for u in {c["user_id"] for c in candidates}})


def user_rows(workspace: Workspace, user: str) -> list[dict]:
    split = workspace.read("split")
    return split.filter(pc.equal(split.column("user_id"), user)).to_pylist()


def heldout_items(workspace: Workspace, user: str) -> set[str]:
    return {r["item_id"] for r in user_rows(workspace, user) if r["split"] != "train"}


# -- the watermark and the fixed held-out sets ----------------------------------------------------

def test_two_appends_grow_the_watermark_and_keep_every_held_out_set(ws: Path, tmp_path: Path,
                                                                    cli) -> None:
    before = Workspace.open(ws)
    n_before = before.read("interactions").num_rows
    rows_before, sets_before = held_out(before)
    trains_before = {u: [r for r in user_rows(before, u) if r["split"] == "train"] for u in sets_before}
    first = source(tmp_path / "a1", [("u1", "30", 9000), ("u3", "31", 9100), ("new", "3", 10),
                                     ("new", "4", 20), ("new", "5", 30)])
    done = cli("data", "append", "-w", ws, first)
    assert done.code == 0, done.err
    assert "appended 5 interactions (1 new users, 0 new items)" in done.err
    assert "watermark: append 1" in done.err
    mark1 = watermark(Workspace.open(ws))
    second = source(tmp_path / "a2", [("u1", "32", 9500), ("u4", "33", 9600), ("new", "6", 40)])
    assert cli("data", "append", "-w", ws, second).code == 0
    after = Workspace.open(ws)
    mark2 = watermark(after)
    assert (mark1.append_id, mark2.append_id) == (1, 2)
    assert datetime.fromisoformat(mark2.appended_at) > datetime.fromisoformat(mark1.appended_at)
    rows_after, sets_after = held_out(after)
    for user in sets_before:  # every evaluated user's held-out rows and sets, unchanged
        assert rows_after[user] == rows_before[user]
        assert sets_after[user] == sets_before[user]
        assert user_rows(after, user)[:len(trains_before[user]) + 2] == sorted(
            trains_before[user] + rows_before[user], key=lambda r: r["position"])
    u1 = user_rows(after, "u1")
    assert [(r["item_id"], r["split"]) for r in u1[-2:]] == [("30", "train"), ("32", "train")]
    assert [r["position"] for r in u1] == list(range(len(u1)))
    assert after.read("interactions").num_rows == n_before + 8
    assert appended_since(after, 1).column("item_id").to_pylist() == ["6", "32", "33"]
    assert [a["append_id"] for a in after.manifest["appends"]] == [1, 2]


def test_a_repeat_of_a_held_out_item_is_withheld(ws: Path, tmp_path: Path, cli) -> None:
    before = Workspace.open(ws)
    test_item = next(r["item_id"] for r in user_rows(before, "u2") if r["split"] == "test")
    train_item = next(r["item_id"] for r in user_rows(before, "u2") if r["split"] == "train")
    n_before = before.read("interactions").num_rows
    src = source(tmp_path / "a", [("u2", test_item, 9000), ("u2", train_item, 9001)])
    done = cli("data", "append", "-w", ws, src)
    assert done.code == 0, done.err
    assert "withheld: repeats a held-out item: 1" in done.err
    after = Workspace.open(ws)
    rows = user_rows(after, "u2")
    assert [r["item_id"] for r in rows].count(test_item) == 1  # only its test row
    assert rows[-1]["item_id"] == train_item and rows[-1]["split"] == "train"  # a repeat of train
    assert after.read("appended").num_rows == 2  # the withheld one is still recorded
    assert after.read("interactions").num_rows == n_before + 2
    assert after.manifest["appends"][0]["split"]["withheld_heldout_repeats"] == 1


def test_new_users_get_their_own_split_and_sets_of_untouched_items(ws: Path, tmp_path: Path,
                                                                   cli) -> None:
    alone = source(tmp_path / "alone", [("n1", "1", 1), ("n1", "2", 2), ("n1", "3", 3), ("n1", "4", 4)])
    other = tmp_path / "ws2"
    shutil.copytree(ws, other)
    assert cli("data", "append", "-w", ws, alone).code == 0
    together = source(tmp_path / "together", [("n0", "9", 5), ("n0", "8", 6), ("n0", "7", 7),
                                              ("n1", "1", 1), ("n1", "2", 2), ("n1", "3", 3),
                                              ("n1", "4", 4), ("n2", "5", 1), ("t", "6", 70)])
    done = cli("data", "append", "-w", other, together)
    assert done.code == 0, done.err
    first, second = Workspace.open(ws), Workspace.open(other)
    assert [(r["item_id"], r["split"]) for r in user_rows(first, "n1")] == [
        ("1", "train"), ("2", "train"), ("3", "valid"), ("4", "test")]
    # seeded per user: the other new users change nothing of n1's
    assert user_rows(first, "n1") == user_rows(second, "n1")
    assert held_out(first)[1]["n1"] == held_out(second)[1]["n1"]
    for workspace, user in ((second, "n0"), (second, "n1"), (second, "t")):
        sets = held_out(workspace)[1][user]
        touched = {r["item_id"] for r in user_rows(workspace, user)}
        assert len(sets) == 2 and all(len(s["negatives"]) == NEGATIVES for s in sets)
        assert all(not touched & set(s["negatives"]) for s in sets)
    assert "n2" not in held_out(second)[1]  # one interaction: train-only
    assert [r["split"] for r in user_rows(second, "t")] == ["train", "valid", "test"]  # now 3
    users = second.read("users").column("user_id").to_pylist()
    assert {"n0", "n1", "n2"} <= set(users) and users == sorted(users)
    report = second.manifest["split"]
    assert report["evaluated_users"] == 9 and report["candidate_sets"] == 18
    assert report["negatives"] == NEGATIVES and report["train_only_users_few_interactions"] == 1


def test_new_items_with_the_file_and_existing_rows_kept(ws: Path, tmp_path: Path, cli) -> None:
    src = source(tmp_path / "a", [("u1", "41", 9000), ("u5", "1", 9000)], movies=[1, 41])
    (src / "movies.csv").write_text("movieId,title,genres\n1,Renamed (1999),Drama\n"
                                    "41,Movie 41 (2020),Comedy\n")
    done = cli("data", "append", "-w", ws, src)
    assert done.code == 0, done.err
    assert "items already in the workspace (its rows kept): 1" in done.err
    items = Workspace.open(ws).read("items")
    assert items.num_rows == N_ITEMS + 1
    titles = dict(zip(items.column("item_id").to_pylist(), items.column("title").to_pylist(),
                      strict=True))
    assert titles["1"] == "Movie 1 (2000)" and titles["41"] == "Movie 41 (2020)"
    tags = Workspace.open(ws).read("item_tags")
    assert tags.column("item_id").to_pylist() == items.column("item_id").to_pylist()


def test_table_format_with_an_items_file_and_tag_events(ws: Path, tmp_path: Path, cli) -> None:
    (tmp_path / "log.csv").write_text("uid,iid,ts\nu1,42,9000\nz,42,1\nz,1,2\nz,2,3\n")
    (tmp_path / "items.csv").write_text("item_id,title,tags\n42,Forty-two,space|comedy\n")
    (tmp_path / "tags.csv").write_text("iid,tag,uid\n5,gritty,u3\n42,towel,u1\n2,mine,z\n")
    done = cli("data", "append", "-f", "table", tmp_path / "log.csv", "-w", ws, "--user-col", "uid",
               "--item-col", "iid", "--timestamp-col", "ts", "--items", tmp_path / "items.csv",
               "--item-tags", tmp_path / "tags.csv", "--tag-item-col", "iid", "--tag-user-col", "uid")
    assert done.code == 0, done.err
    after = Workspace.open(ws)
    events = after.read("tag_events")
    assert events.num_rows == 4  # u2's event from the import + three
    tags = dict(zip(after.read("item_tags").column("item_id").to_pylist(),
                    after.read("item_tags").column("tags").to_pylist(), strict=True))
    assert "towel" in tags["42"] and "space" in tags["42"]
    # z's own tag on z's test item 2 is withheld, as the split does
    assert heldout_items(after, "z") == {"1", "2"} and "mine" not in tags["2"]


# -- refused files: one line, nothing written ------------------------------------------------------

REFUSED = {
    "unknown item": ([("u1", "99", 9000)], ["ratings.csv", "line 2", "column 'movieId'",
                                            "unknown item '99'", "neither in the workspace"]),
    "bad timestamp": ([("u1", "3", 9000), ("u1", "4", "yesterday")],
                      ["ratings.csv", "line 3", "column 'timestamp'", "cannot parse timestamp"]),
    "missing timestamp": ([("u1", "3", 9000), ("u1", "4", "")],
                          ["ratings.csv", "line 3", "column 'timestamp'", "no timestamp"]),
    "duplicate in the file": ([("n", "3", 5), ("n", "4", 6), ("n", "3", 5)],
                              ["ratings.csv", "line 4", "duplicate interaction", "line 2"]),
    "duplicate of the workspace": ([("n", "3", 5), ("u1", *BASE["u1"][0])],
                                   ["ratings.csv", "line 3", "duplicate interaction",
                                    f"user 'u1', item '{BASE['u1'][0][0]}' at this time is "
                                    "already in the workspace"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_file_writes_nothing(case: str, ws: Path, tmp_path: Path, cli) -> None:
    rows, needles = REFUSED[case]
    before = files_of(ws)
    result = cli("data", "append", "-w", ws, source(tmp_path / "bad", rows))
    assert_one_line_error(result, *needles)
    assert files_of(ws) == before


def test_a_duplicate_across_two_files_and_a_good_first_file_write_nothing(ws: Path, tmp_path: Path,
                                                                          cli) -> None:
    before = files_of(ws)
    good = source(tmp_path / "good", [("u1", "30", 9000)])
    again = source(tmp_path / "again", [("u2", "30", 9000), ("u1", "30", 9000)])
    assert_one_line_error(cli("data", "append", "-w", ws, good, again),
                          "again/ratings.csv", "line 3", "user 'u1', item '30' at this time",
                          f"or in {good}")
    assert files_of(ws) == before


@pytest.mark.parametrize("args, needles", [
    (["-f", "synthetic"], ["--format synthetic cannot be appended"]),
    (["-f", "table", "--on-dangling", "drop", "--user-col", "userId", "--item-col", "movieId"],
     ["no timestamp column"]),
    (["--on-dangling", "drop"], ["--on-dangling applies to --format table only"]),
])
def test_formats_and_flags_that_cannot_append(args: list[str], needles: list[str], ws: Path,
                                              tmp_path: Path, cli) -> None:
    before = files_of(ws)
    src = source(tmp_path / "a", [("u1", "30", 9000)])
    target = src / "ratings.csv" if "table" in args else src
    if "table" in args:
        (src / "ratings.csv").write_text("userId,movieId\nu1,30\n")
    assert_one_line_error(cli("data", "append", "-w", ws, target, *args), *needles)
    assert files_of(ws) == before


def test_an_append_into_no_workspace(tmp_path: Path, cli) -> None:
    src = source(tmp_path / "a", [("u1", "30", 9000)])
    assert_one_line_error(cli("data", "append", "-w", tmp_path / "none", src), "is not a workspace")


def test_an_append_that_fails_mid_write_leaves_the_old_workspace(ws: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    """Every table is staged before any is renamed: a failure while staging the k-th (disk
    full, a kill) leaves every file as it was and no temporary behind."""
    src = source(tmp_path / "a", [("u1", "30", 9000), ("new", "3", 1), ("new", "4", 2),
                                  ("new", "5", 3)], movies=[41])
    real = pq.write_table
    staged = []

    def failing(table, where, **options):
        staged.append(where)
        if len(staged) == fail_at:
            raise OSError(28, "No space left on device")
        return real(table, where, **options)

    monkeypatch.setattr(pq, "write_table", failing)
    before = files_of(ws)
    fail_at = 0
    while True:  # fail at the first table staged, then the second, ... until none fails
        fail_at += 1
        staged.clear()
        try:
            append_files(Workspace.open(ws), [src], _movielens_reader, fmt="movielens")
        except OSError as exc:
            assert "No space left" in str(exc)
            assert files_of(ws) == before, staged
            continue
        break
    assert fail_at == len(staged) + 1 >= 7  # interactions, appended, items, users, split, ...
    assert watermark(Workspace.open(ws)).append_id == 1


def _movielens_reader(path: Path, rules):
    from tailormind.data.importers import import_movielens

    return import_movielens(path, append=rules)


# -- property: appended interactions never reach a held-out set ----------------------------------

APPENDS = st.lists(
    st.tuples(st.sampled_from([*BASE, "n1", "n2", "n3"]),
              st.integers(1, N_ITEMS).map(str), st.integers(0, 20_000)),
    min_size=1, max_size=25,
).map(lambda rows: list({(u, i, t): None for u, i, t in rows
                         if (u, i, t) not in {(u, i, t) for u, its in BASE.items() for i, t in its}})
       ).filter(bool)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=APPENDS, second=APPENDS)
def test_appends_never_change_an_existing_users_held_out_sets(base_ws: Path, tmp_path: Path,
                                                              first, second) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path)) / "ws"  # one per example
    shutil.copytree(base_ws, root)
    rows_before, sets_before = held_out(Workspace.open(root))
    split_at: dict[str, int] = {}  # a new user -> the append after which it had sets
    for n, rows in enumerate((first, second)):
        log = root.parent / f"log{n}.csv"
        log.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
        try:
            append_files(Workspace.open(root), [log],
                         lambda p, rules: import_table(p, append=rules), fmt="table",
                         negatives=NEGATIVES)
        except DataError as exc:  # the second list repeats a (user, item, time) of the first
            assert n == 1 and "duplicate interaction" in str(exc)
        for user in held_out(Workspace.open(root))[1]:
            split_at.setdefault(user, n)
    after = Workspace.open(root)
    rows_after, sets_after = held_out(after)
    for user in sets_before:
        assert rows_after[user] == rows_before[user] and sets_after[user] == sets_before[user]
    split = after.read("split")
    held = split.filter(pc.not_equal(split.column("split"), "train"))
    appended = set(zip(*(after.read("appended").column(c).to_pylist()
                         for c in ("user_id", "item_id")), strict=True))
    for user, item in zip(held.column("user_id").to_pylist(), held.column("item_id").to_pylist(),
                          strict=True):
        if user in sets_before:  # nothing appended ever enters an old user's held-out rows
            assert item in {r["item_id"] for r in rows_before[user]}
        trains = split.filter(pc.and_(pc.equal(split.column("user_id"), user),
                                      pc.equal(split.column("split"), "train")))
        assert item not in trains.column("item_id").to_pylist()  # never train and held out
    by_append = [{(u, i) for u, i, _ in rows} for rows in (first, second)]
    for user, sets in sets_after.items():
        if user not in sets_before:  # negatives: untouched when drawn (later appends may not be)
            seen = set().union(*by_append[: split_at[user] + 1]) & appended
            touched = {i for u, i in seen if u == user} | {i for i, _ in BASE.get(user, [])}
            assert all(not touched & set(s["negatives"]) for s in sets)
    assert watermark(after).append_id in (1, 2)


# -- stats, descriptions, a later split ------------------------------------------------------------

def _register(workspace: Workspace, name: str, table: pa.Table, **info) -> None:
    pq.write_table(table, workspace.table_path(name))
    workspace.manifest["tables"][name] = {"rows": table.num_rows, **info}
    workspace.update_manifest()


def test_stats_show_the_watermark_and_what_each_stage_has_not_seen(ws: Path, tmp_path: Path,
                                                                   cli) -> None:
    stats = json.loads(cli("data", "stats", "-w", ws, "--json").out)
    assert stats["watermark"] == {"append_id": 0, "appended_at": None}
    workspace = Workspace.open(ws)
    _register(workspace, "profiles", pa.table({"user_id": ["u1", "u2"], "watermark": [0, 1]}))
    (ws / "cf").mkdir()
    (ws / "cf" / "hypergraph.pt").write_bytes(b"x")
    workspace.record_artifact("cf:hypergraph", "cf/hypergraph.pt", watermark=1)
    _register(workspace, "cf_topk", CF_TOPK.empty_table(), watermark=0)
    assert cli("data", "append", "-w", ws, source(tmp_path / "a1", [("u1", "30", 9000),
                                                                   ("u2", "30", 9000)])).code == 0
    assert cli("data", "append", "-w", ws, source(tmp_path / "a2", [("u1", "31", 9100),
                                                                   ("u2", "31", 9100),
                                                                   ("u3", "31", 9100)])).code == 0
    stats = json.loads(cli("data", "stats", "-w", ws, "--json").out)
    assert stats["watermark"]["append_id"] == 2 and stats["appends"] == 2
    assert stats["appended_interactions"] == 5
    # u1 (profile at 0): 2 rows; u2 (at 1): 1 row; u3 has no profile
    assert stats["appended_since_profiles"] == {"profiled_users": 2, "interactions": 3,
                                                "users_behind": 2}
    assert stats["appended_since_cf"]["interactions"] == 3
    assert stats["appended_since_cf"]["models"] == {"hypergraph": 1}
    assert stats["appended_since_cf_topk"] == {"watermark": 0, "interactions": 5}
    table = cli("data", "stats", "-w", ws).out
    assert "watermark (append id, time)" in table and "2 at " in table
    assert "appended since the last CF checkpoint" in table


def test_profiles_without_a_watermark_count_from_zero(ws: Path, tmp_path: Path, cli) -> None:
    workspace = Workspace.open(ws)
    _register(workspace, "profiles", pa.table({"user_id": ["u1"]}))
    assert cli("data", "append", "-w", ws, source(tmp_path / "a", [("u1", "30", 9000)])).code == 0
    stats = json.loads(cli("data", "stats", "-w", ws, "--json").out)
    assert stats["appended_since_profiles"]["interactions"] == 1


def _features(item_ids: list[str]) -> pa.Table:
    row = {"description": "d", "text_description": "d", "image_description": None,
           "video_description": None, "text_source": "passthrough", "image_source": "none",
           "video_source": "none", "fallback": None, "embedding": [0.0], "embed_model": "m"}
    return pa.Table.from_pylist([{"item_id": i, **row} for i in item_ids], schema=ITEM_FEATURES)


def test_new_items_and_items_whose_tags_changed_need_descriptions(ws: Path, tmp_path: Path,
                                                                  cli) -> None:
    workspace = Workspace.open(ws)
    ids = [str(i) for i in range(1, N_ITEMS + 1)]
    _register(workspace, "item_features", _features(ids), models={"embed": "m"})
    src = source(tmp_path / "a", [("u1", "41", 9000), ("u4", "7", 9001)], movies=[41],
                 tags=[("u4", "7", "fresh", 9001)])
    done = cli("data", "append", "-w", ws, src)
    assert done.code == 0, done.err
    assert ("2 items (1 new, 1 whose tags changed) need descriptions: run "
            "`tailormind profile describe") in done.err
    after = Workspace.open(ws)
    described = set(after.read("item_features").column("item_id").to_pylist())
    assert described == set(ids) - {"7"}  # item 7 has a new tag: its description went
    assert after.manifest["tables"]["item_features"]["models"] == {"embed": "m"}


def test_a_later_split_sees_one_interaction_per_user_and_item(ws: Path, tmp_path: Path, cli) -> None:
    test_item = next(r["item_id"] for r in user_rows(Workspace.open(ws), "u2") if r["split"] == "test")
    assert cli("data", "append", "-w", ws, source(tmp_path / "a", [("u2", test_item, 1)])).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", str(NEGATIVES)).code == 0
    after = Workspace.open(ws)
    rows = user_rows(after, "u2")
    assert [r["item_id"] for r in rows].count(test_item) == 1
    assert after.has("appended") and watermark(after).append_id == 1  # source data: kept
