"""``data stats`` against hand-computed numbers, and the demo through the console script."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_console_script


def test_stats_hand_computed(cli, tmp_path: Path) -> None:
    # 3 users x 4 items; per-user counts 4, 3, 1 -> 8 interactions, density 8/12
    (tmp_path / "log.csv").write_text(
        "user_id,item_id,timestamp\n"
        "a,w,1\na,x,2\na,y,3\na,z,4\n"
        "b,w,1\nb,x,2\nb,y,3\n"
        "c,z,9\n"
    )
    (tmp_path / "items.csv").write_text("item_id,tags\nw,red|blue\nx,red\ny,\nz,green\n")
    ws = tmp_path / "ws"
    assert cli("data", "import", "-f", "table", tmp_path / "log.csv", "--items", tmp_path / "items.csv", "-w", ws).code == 0
    assert cli("data", "split", "-w", ws, "--negatives", "1").code == 0
    s = json.loads(cli("data", "stats", "-w", ws, "--json").out)
    assert (s["users"], s["items"], s["interactions"], s["tags"], s["tag_assignments"]) == (3, 4, 8, 3, 4)
    assert s["items_with_tags"] == 3
    assert abs(s["density"] - 8 / 12) < 1e-12
    assert s["interactions_per_user"] == {"min": 1, "median": 3.0, "max": 4}
    # a has seen every item, so no negative is left: train-only, counted; b: 1 train + valid + test;
    # c: 1 interaction, train-only
    sp = s["split"]
    assert (sp["train_interactions"], sp["valid_interactions"], sp["test_interactions"]) == (6, 1, 1)
    assert sp["train_only_users_few_interactions"] == 1
    assert sp["train_only_users_too_few_unseen_items"] == 1
    assert sp["evaluated_users"] == 1 and sp["candidate_sets"] == 2
    table = cli("data", "stats", "-w", ws)
    assert table.code == 0 and "density" in table.out and "66.6667%" in table.out


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    fast = {"TAILORMIND_CF__EPOCHS": "2", "TAILORMIND_CF__LAYERS": "1"}
    done = run_console_script("demo", "--workspace", tmp_path / "demo", "--users", "0",
                              env=fast)
    assert done.returncode == 0, done.stderr
    assert "9,742" in done.stdout and "100,836" in done.stdout and "610" in done.stdout
    assert "1,220 x (1 + 99)" in done.stdout
    assert "popularity" in done.stdout and "hypergraph" in done.stdout  # evaluation table
    assert "CF top-10 for user 1" in done.stdout
    assert "demo: where the time went" in done.stdout and "gallery" not in done.stdout
