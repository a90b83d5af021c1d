"""Report helpers: a table cell, a (method, metric) estimate and the flat-judge flag, by hand."""

from __future__ import annotations

import pytest

from tailormind.bench.report import FLAT_SHARE, _flags, _flat, cell, estimate
from tailormind.config import load_config


def test_cell_formats_mean_interval_and_n() -> None:
    assert cell({"mean": 0.51234, "low": 0.4, "high": 0.6251, "n": 20}) == \
        "0.512 [0.400, 0.625] n=20"
    assert cell({"mean": None, "low": None, "high": None, "n": 0}) == "–"
    assert cell(None) == "–"


def test_estimate_counts_missing_values_and_brackets_the_mean() -> None:
    settings = load_config(environ={})
    found = estimate([0.0, 1.0, 1.0, 0.0], settings, expected=6)
    assert found["mean"] == 0.5 and found["n"] == 4 and found["missing"] == 2
    assert 0.0 <= found["low"] <= 0.5 <= found["high"] <= 1.0
    assert estimate([0.7], settings, expected=1) == {"mean": 0.7, "low": 0.7, "high": 0.7,
                                                     "n": 1, "missing": 0}
    assert estimate([], settings, expected=3) == {"mean": None, "low": None, "high": None,
                                                  "n": 0, "missing": 3}
    narrow = load_config(environ={}, overrides={"bench": {"confidence": 0.6}})
    values = [0.1, 0.9, 0.4, 0.6, 0.2, 0.8]
    assert (estimate(values, narrow, 6)["high"] - estimate(values, narrow, 6)["low"]
            < estimate(values, settings, 6)["high"] - estimate(values, settings, 6)["low"])


@pytest.mark.parametrize("values, share", [([1.0] * 9 + [0.5], 0.9), ([0.2, 0.4], 0.5),
                                           ([0.3] * 4, 1.0), ([], 0.0)])
def test_flat_share(values, share) -> None:
    assert _flat(values) == pytest.approx(share)


def _rows(novelty: list[float | None], aesthetic: list[float | None]) -> list[dict]:
    return [{"judge_novelty": n, "judge_aesthetic": a, "hallucination": 0.0}
            for n, a in zip(novelty, aesthetic, strict=True)]


@pytest.mark.parametrize(("novelty", "aesthetic", "expected"), [
    # the same score everywhere: flagged, with the score, the share and the post count
    ([0.7] * 10, [0.1 * i for i in range(10)],
     ["judge_novelty: the judge gave 0.7 to 100% of 10 posts"]),
    # 9 of 10 is the documented 90% threshold: flagged
    ([0.1 * i for i in range(10)], [0.5] * 9 + [0.6],
     ["judge_aesthetic: the judge gave 0.5 to 90% of 10 posts"]),
    # missing answers are not counted
    ([0.4, None, 0.4, 0.4], [0.2, 0.3, None, 0.4],
     ["judge_novelty: the judge gave 0.4 to 100% of 3 posts"]),
    # 8 of 10 (80%), or every score different: not flat, no flag
    ([0.8] * 8 + [0.3, 0.3], [0.1 * i for i in range(10)], []),
    ([0.1 * i for i in range(10)], [0.6] * 8 + [0.2, 0.9], []),
    ([None] * 3, [None] * 3, []),
])
def test_a_flat_judge_is_flagged_and_a_varied_one_is_not(novelty, aesthetic, expected) -> None:
    assert FLAT_SHARE == 0.9  # the documented threshold the cases above are built around
    flags = _flags(_rows(novelty, aesthetic), {}, False, {})
    assert flags == [f"{start} — its scores do not separate the methods" for start in expected]


def test_kept_relevance_follows_the_best_objective_so_far() -> None:
    from tailormind.bench.scoring import kept_relevance
    from tailormind.generation.reflection import RoundRecord

    rounds = [RoundRecord(n, relevance, None, objective, False, 0.0) for n, (relevance, objective)
              in enumerate([(0.3, 0.3), (0.5, 0.5), (0.45, 0.4), (0.6, 0.5)])]
    assert kept_relevance(rounds) == [0.3, 0.5, 0.5, 0.5]  # a tie keeps the earlier version
    assert kept_relevance([]) == []
