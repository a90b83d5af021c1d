"""benchmarks/generation.py's runtime comparison: paired by user, differences computed by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("generation_benchmark",
                                                  REPO / "benchmarks" / "generation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(user: str, first: float, kept: float, seconds: float, empty: int) -> dict:
    return {"user_id": user, "seconds": seconds,
            "reflection": {"rounds": [{"relevance": first}], "best": {"relevance": kept}},
            "drafts": [{"empty": ["title"]}] * empty + [{"empty": []}]}


def test_paired_differences_by_user(capsys) -> None:
    """Users u1, u2 made by both runtimes (u3 only before: left out). relevance kept: after
    0.5, 0.7 vs before 0.4, 0.4 -> +0.1, +0.3, mean +0.200; seconds 10, 20 vs 40, 60 -> -35.0;
    objective novelty 0.3, 0.3 vs 0.3, 0.5 -> mean -0.100 (one tie, one lower)."""
    bench = load_benchmark()
    before = {"made": {"post": [record("u1", 0.4, 0.4, 40, 1), record("u2", 0.3, 0.4, 60, 0),
                                record("u3", 0.1, 0.9, 50, 0)]},
              "novelty": {"post": {"u1": 0.3, "u2": 0.5, "u3": 0.9}}}
    after = {"made": {"post": [record("u2", 0.5, 0.7, 20, 0), record("u1", 0.5, 0.5, 10, 0)]},
             "novelty": {"post": {"u1": 0.3, "u2": 0.3}}}
    bench.print_paired({"transformers": before, "llamacpp": after})
    lines = {line.split(" | ")[1]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("| post |")}
    assert lines["relevance kept"].startswith("| post | relevance kept | +0.200 [")
    assert lines["relevance kept"].endswith("| 2 | 2 / 0 |")
    assert "| seconds | -35.000 [-40.000, -30.000] | 2 | 0 / 2 |" in lines["seconds"]
    assert "| objective novelty | -0.100 [" in lines["objective novelty"]
    assert lines["objective novelty"].endswith("| 2 | 0 / 1 |")
    assert "| drafts with empty fields | -0.500 [" in lines["drafts with empty fields"]
