"""Candidate order carries no information: information-free listwise rankers land at chance.

Three scripted text models that never look at the items — one never answers, one always answers
"1, 2, 3, …", one always answers in reverse — rank 500 seeded 1+99 queries whose lists are built
POSITIVE FIRST (the worst a caller can do). Recall@K of the positive must be K/100: 0.10 ± 0.04
and 0.20 ± 0.05, through the ranker itself, through `profile eval`'s LLM-ranker row and through
the validation rank refinement sees. Before the seeded shuffle the never-answering model scored
R@10 = 1.000 and the reverse one 0.000.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tailormind.cf.data import CandidateIndex, CFData
from tailormind.config import Settings
from tailormind.core.metrics import candidate_metrics
from tailormind.profiling.evaluate import _llm_ranker_row
from tailormind.profiling.evidence import ItemFeatures, UserEvidence
from tailormind.profiling.profiler import Profiler, ProfileState
from tailormind.profiling.rankers import LLMRanker, RankQuery, presentation_order
from tests.fakes import Call, ScriptedText

QUERIES, ITEMS, NEGATIVES = 500, 2000, 99


class ScriptedRanker(ScriptedText):
    """Answers every ranking prompt without reading the items: ``never``, ``ascending`` or
    ``descending`` item numbers."""

    def __init__(self, mode: str) -> None:
        super().__init__({"rank": self._rank}, model_id=mode)
        self.mode = mode

    def _rank(self, call: Call) -> str:
        numbers = list(range(1, len(call.numbers("item")) + 1))
        return {"never": "",
                "ascending": json.dumps({"ranking": numbers}),
                "descending": json.dumps({"ranking": numbers[::-1]})}[self.mode]


MODES = ("never", "ascending", "descending")


@pytest.fixture(scope="module")
def catalogue() -> ItemFeatures:
    ids = [f"i{n}" for n in range(ITEMS)]
    return ItemFeatures(ids=ids, index={k: i for i, k in enumerate(ids)},
                        descriptions=[f"Item {n}" for n in range(ITEMS)],
                        matrix=np.zeros((ITEMS, 4), dtype=np.float32), model="none")


@pytest.fixture(scope="module")
def query_sets() -> list[tuple[str, str, list[str]]]:
    """(user, positive, negatives) for 500 users, seeded."""
    rng = random.Random(7)
    out = []
    for q in range(QUERIES):
        picked = rng.sample(range(ITEMS), NEGATIVES + 1)
        out.append((f"u{q}", f"i{picked[0]}", [f"i{j}" for j in picked[1:]]))
    return out


def _assert_chance(metrics: dict[str, float], what: str) -> None:
    assert abs(metrics["recall@10"] - 0.10) <= 0.04, (what, metrics)
    assert abs(metrics["recall@20"] - 0.20) <= 0.05, (what, metrics)


def _ranks_positive_first(scores: list[np.ndarray]) -> dict[str, float]:
    return candidate_metrics(np.stack(scores))


@pytest.mark.parametrize("mode", MODES)
def test_ranker_on_positive_first_lists_is_at_chance(mode, catalogue, query_sets) -> None:
    text = ScriptedRanker(mode)
    ranker = LLMRanker(catalogue, text, window=20, seed=2026)
    queries = [RankQuery(u, "a profile", [p, *n], split="test") for u, p, n in query_sets]
    metrics = _ranks_positive_first(ranker.score(queries))
    _assert_chance(metrics, mode)
    assert len(text.calls) == QUERIES * 6  # 5 windows of 20 + the final window, per query
    if mode == "never":
        assert ranker.stats["failed_windows"] == QUERIES * 6
        assert ranker.stats["unranked"] == QUERIES * (100 + 20)


def test_presentation_order_depends_on_the_set_not_the_given_order(query_sets) -> None:
    user, positive, negatives = query_sets[0]
    first = RankQuery(user, "p", [positive, *negatives])
    last = RankQuery(user, "p", [*negatives, positive])
    assert presentation_order(first, 2026) == presentation_order(last, 2026)
    assert sorted(presentation_order(first, 2026)) == sorted(first.candidates)
    other_iteration = RankQuery(user, "p", first.candidates, iteration=1)
    assert presentation_order(other_iteration, 2026) != presentation_order(first, 2026)
    other_split = RankQuery(user, "p", first.candidates, split="test")
    assert presentation_order(other_split, 2026) != presentation_order(first, 2026)
    # the positive's place is spread over the list across users, not pinned
    places = [presentation_order(RankQuery(u, "p", [p, *n]), 2026).index(p)
              for u, p, n in query_sets]
    assert 40 <= np.mean(places) <= 59 and min(places) < 5 and max(places) > 94


@pytest.mark.parametrize("mode", MODES)
def test_profile_eval_llm_row_is_at_chance(mode, catalogue, query_sets) -> None:
    index = catalogue.index
    users = [u for u, _, _ in query_sets]
    items = np.array([[index[p], *(index[n] for n in negs)] for _, p, negs in query_sets])
    test = CandidateIndex(np.arange(QUERIES), items)
    empty = np.zeros(0, dtype=np.int64)
    data = CFData(user_ids=users, item_ids=catalogue.ids, tag_names=[], train_users=empty,
                  train_items=empty, tag_items=empty, tag_ids=empty,
                  valid=CandidateIndex(empty, np.zeros((0, 100), np.int64)), test=test,
                  heldout_users=empty, heldout_items=empty)
    profiles = [{"user_id": u, "profile": "a profile"} for u in users]
    row = _llm_ranker_row(data, Settings(), catalogue, profiles, QUERIES, text=ScriptedRanker(mode))
    assert row["users"] == QUERIES and "seeded shuffle" in row["candidate_order"]
    _assert_chance(row["sample"], mode)


@pytest.mark.parametrize("mode", MODES)
def test_validation_rank_seen_by_refinement_is_at_chance(mode, catalogue, query_sets) -> None:
    text = ScriptedRanker(mode)
    settings = Settings()
    profiler = Profiler(settings, catalogue, LLMRanker(catalogue, text, seed=2026), text)
    states = [ProfileState(UserEvidence(u, history=[], cf=[], valid_positive=p,
                                        valid_negatives=n), profile="a profile")
              for u, p, n in query_sets]
    results = profiler.losses(states, [s.profile for s in states], iteration=0)
    ranks = np.array([rank - 1 for _, rank, _ in results])  # 1-based -> 0-based
    metrics = {"recall@10": float((ranks < 10).mean()), "recall@20": float((ranks < 20).mean())}
    _assert_chance(metrics, mode)
    # every list handed to the ranker had the positive somewhere other than a fixed place
    places = [profiler.ranker.seen[u][0].index(p) for u, p, _ in query_sets]
    assert len(set(places)) > 50
