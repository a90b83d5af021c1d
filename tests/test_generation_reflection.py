"""Reflection (Eq. 17–19) with scripted scores: J by hand, best kept, rounds and early stop."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from tailormind.generation.reflection import (
    Scored,
    feedback_text,
    improves,
    kept_rounds,
    objective,
    reflect,
    relevance,
)


def test_objective_by_hand() -> None:
    assert objective(0.4, None, 3.0) == 0.4
    # (R + w·C/2.5) / (1 + w) = (0.4 + 1·2.0/2.5) / 2 = 0.6
    assert objective(0.4, 2.0, 1.0) == pytest.approx(0.6)
    # w = 3: (0.2 + 3·0.5/2.5) / 4 = 0.2
    assert objective(0.2, 0.5, 3.0) == pytest.approx(0.2)
    assert objective(0.5, 0.0, 0.0) == pytest.approx(0.5)


def test_relevance_is_a_cosine_and_zero_for_a_zero_vector() -> None:
    assert relevance(np.array([3.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(1 / math.sqrt(2))
    assert relevance(np.array([0.0, 2.0]), np.array([0.0, -5.0])) == pytest.approx(-1.0)
    assert relevance(np.zeros(2), np.array([1.0, 0.0])) == 0.0
    assert relevance(np.array([1.0, 0.0]), np.zeros(2)) == 0.0


def test_feedback_text_exact() -> None:
    without = Scored("v", relevance=0.456, clip=None, objective=0.456)
    assert feedback_text(without) == (
        "relevance to what the person liked 0.46 (cosine, higher is better: stay on the topics "
        "and style of their items); image-text cohesion was not measured (no clip model "
        "configured).")
    with_clip = Scored("v", relevance=0.1, clip=1.234, objective=0.3)
    assert feedback_text(with_clip) == (
        "relevance to what the person liked 0.10 (cosine, higher is better: stay on the topics "
        "and style of their items); image-text cohesion (CLIPScore) 1.23 of 2.5: make each image "
        "prompt show what its caption and the text say.")


class Script:
    """Versions are strings; each revision appends a letter; scores come from a table."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.revised: list[tuple[str, str]] = []

    def score(self, version: str) -> Scored[str]:
        j = self.scores[version]
        return Scored(version, relevance=j, clip=None, objective=j, media=f"media:{version}")

    def revise(self, version: str, feedback: str) -> str:
        self.revised.append((version, feedback))
        return version + "+"


def test_best_version_is_kept_and_revisions_build_on_it() -> None:
    script = Script({"v": 0.3, "v+": 0.5, "v++": 0.4, "v+++": 0.5})
    script.scores["v++"] = 0.4
    out = reflect("v", script.score, script.revise, rounds=3)
    # Round 2 (0.4) is worse, so round 3 revises the round-1 version again -> "v++" again.
    assert [v for v, _ in script.revised] == ["v", "v+", "v+"]
    assert out.best.version == "v+" and out.best_round == 1 and out.best.media == "media:v+"
    assert [(r.round, r.objective, r.best_so_far) for r in out.rounds] == [
        (0, 0.3, True), (1, 0.5, True), (2, 0.4, False), (3, 0.4, False)]
    assert out.rounds[0].feedback == "" and out.rounds[1].feedback == feedback_text(
        script.score("v"))
    assert out.rounds[2].feedback == feedback_text(script.score("v+"))
    assert all(r.seconds >= 0 for r in out.rounds)


def test_a_tie_keeps_the_earlier_version() -> None:
    script = Script({"v": 0.5, "v+": 0.5})
    out = reflect("v", script.score, script.revise, rounds=1)
    assert out.best.version == "v" and out.best_round == 0
    assert [r.best_so_far for r in out.rounds] == [True, False]


def test_the_best_version_rule_and_the_rounds_it_keeps() -> None:
    assert improves(0.5, None) and improves(0.5, 0.4) and improves(-1.0, -1.5)
    assert not improves(0.5, 0.5) and not improves(0.4, 0.5)  # a tie keeps the earlier one
    assert kept_rounds([]) == []
    assert kept_rounds([0.3]) == [0]
    assert kept_rounds([0.3, 0.5, 0.4, 0.5, 0.7, 0.1]) == [0, 1, 1, 1, 4, 4]
    assert kept_rounds([0.2, 0.1, 0.2]) == [0, 0, 0]
    assert kept_rounds([-0.2, -0.1]) == [0, 1]  # negative objectives (a cosine can be < 0)


def test_every_round_runs_when_sampling_and_greedy_stops_at_the_first_non_improvement() -> None:
    # Sampling: a revision of the same best version may differ from the last one.
    drafts = iter(["s1", "s2", "s3"])
    sampled_scores = {"v": 0.1, "s1": 0.2, "s2": 0.15, "s3": 0.9}
    sampled = reflect("v", lambda v: Scored(v, sampled_scores[v], None, sampled_scores[v]),
                      lambda v, _: next(drafts), rounds=3)
    assert len(sampled.rounds) == 4 and sampled.best_round == 3 and sampled.best.version == "s3"
    greedy_script = Script({"v": 0.1, "v+": 0.2, "v++": 0.15})
    greedy = reflect("v", greedy_script.score, greedy_script.revise, rounds=3, repeatable=True)
    assert [r.round for r in greedy.rounds] == [0, 1, 2]
    assert greedy.best_round == 1 and len(greedy_script.revised) == 2
    improving = Script({"v": 0.1, "v+": 0.2, "v++": 0.3})
    out = reflect("v", improving.score, improving.revise, rounds=2, repeatable=True)
    assert [r.round for r in out.rounds] == [0, 1, 2] and out.best.version == "v++"


def test_zero_rounds_scores_the_first_draft_only() -> None:
    script = Script({"v": 0.7})
    out = reflect("v", script.score, script.revise, rounds=0)
    assert script.revised == [] and out.best.version == "v" and len(out.rounds) == 1


def test_round_records_carry_each_version_scores_feedback_and_its_own_time() -> None:
    table = {"v": (0.2, 1.0, 0.3), "v+": (0.4, 2.0, 0.5)}  # relevance, clip, objective
    told: list[tuple[str, str]] = []

    def score(version: str) -> Scored[str]:
        relevance_, clip, j = table[version]
        return Scored(version, relevance=relevance_, clip=clip, objective=j)

    def revise(version: str, feedback: str) -> str:
        told.append((version, feedback))
        return version + "+"

    before = time.perf_counter()
    out = reflect("v", score, revise, rounds=1)
    elapsed = time.perf_counter() - before
    assert [(r.round, r.relevance, r.clip, r.objective, r.best_so_far) for r in out.rounds] == [
        (0, 0.2, 1.0, 0.3, True), (1, 0.4, 2.0, 0.5, True)]
    assert told == [("v", feedback_text(score("v")))]
    assert out.rounds[1].feedback == told[0][1]
    assert all(0 <= r.seconds <= elapsed for r in out.rounds)
