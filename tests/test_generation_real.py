"""The whole demo with the real embedded models (SmolLM2-135M, MiniLM, typeset cards, slideshow)
on the bundled MovieLens data: one real user profiled, a post and a short video made, the
gallery written and rendered in headless Chromium. Slow (minutes): ``make test-slow``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tailormind.data.workspace import Workspace
from tailormind.generation.batch import GENERATIONS_TABLE
from tailormind.generation.bundle import GENERATIONS, bundle_problems
from tests.browser import dump_dom, gallery_problems
from tests.conftest import run_console_script


@pytest.mark.slow
def test_demo_makes_a_real_post_and_video_for_a_movielens_user(tmp_path: Path) -> None:
    fast_cf = {"TAILORMIND_CF__EPOCHS": "5"}
    done = run_console_script("demo", "--workspace", tmp_path / "demo", "--users", "1",
                              env=fast_cf, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "demo: where the time went" in done.stdout and "gallery:" in done.stdout
    ws = Workspace.open(tmp_path / "demo")
    table = ws.read(GENERATIONS_TABLE)
    assert sorted(table.column("kind").to_pylist()) == ["post", "video"]
    for row in table.to_pylist():
        bundle = ws.root / row["path"]
        assert bundle_problems(bundle) == []
        record = json.loads((bundle / "post.json").read_text(encoding="utf-8"))
        assert "SmolLM2" in record["models"]["text"]["model"]
        assert record["ideation"]["format"] == "fields"
        # a real model wrote it: a title and a body of words, not the idea copied by a fallback
        assert record["title"] and len(record["body"].split()) >= 5
        assert not any(f.startswith(("writer:", "ideation:")) for f in record["fallbacks"])
        assert record["reflection"]["best"]["relevance"] >= record["reflection"]["rounds"][0][
            "relevance"]
    gallery = ws.root / GENERATIONS / "index.html"
    dom = dump_dom(gallery, tmp_path / "profile")
    assert gallery_problems(dom, set(table.column("post_id").to_pylist())) == []
    assert re.search(r"User \d+ liked", dom)
