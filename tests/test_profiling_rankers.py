"""Rankers: the embedding ranker's arithmetic and the listwise LLM ranker's windows, by id."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from tailormind.models.roles import Embedder
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.rankers import (RANKING_SCHEMA, EmbeddingRanker, LLMRanker, RankQuery,
                                         _position, presentation_order)
from tailormind.prompts.ugc import CHARS_PER_TOKEN, CLOSE
from tests.fakes import ReverseRanker, ScriptedText


def features(n: int) -> ItemFeatures:
    ids = [f"m{i}" for i in range(n)]
    matrix = np.eye(n, dtype=np.float32)
    return ItemFeatures(ids=ids, index={k: i for i, k in enumerate(ids)},
                        descriptions=[f"Movie number {i}" for i in range(n)], matrix=matrix,
                        model="eye")


class AxisEmbedder(Embedder):
    """'axis 3' -> the unit vector e_3 (a hand-made embedding space)."""

    def __init__(self, dim: int) -> None:
        super().__init__(backend="axis", model_id="axis")
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts):
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, int(text.split()[1])] = 1.0
        return out


def test_embedding_ranker_scores_are_cosines_and_audited() -> None:
    ranker = EmbeddingRanker(features(6), AxisEmbedder(6))
    [scores] = ranker.score([RankQuery("u1", "axis 2", ["m0", "m2", "m5"])])
    np.testing.assert_allclose(scores, [0.0, 1.0, 0.0])
    assert ranker.seen == {"u1": [["m0", "m2", "m5"]]}


def test_llm_ranker_windows_final_round_and_counts() -> None:
    text = ReverseRanker()
    ranker = LLMRanker(features(40), text, window=10, seed=5)
    candidates = [f"m{i}" for i in range(40)]
    query = RankQuery("u1", "a profile", candidates)
    shown = presentation_order(query, 5)  # what the model sees: the seeded order, not ours
    assert shown != candidates and sorted(shown) == sorted(candidates)
    [scores] = ranker.score([query])
    assert text.windows == 5  # 4 windows of 10, then one final window of their tops
    assert ranker.stats["unknown_ids"] == 5 and ranker.stats["unranked"] == 5
    assert ranker.stats["windows"] == 5
    order = [candidates[i] for i in np.argsort(-scores, kind="stable")]
    assert len(set(order)) == 40 and np.all(np.isfinite(scores))
    windows = [shown[w * 10:(w + 1) * 10] for w in range(4)]
    # each window is ranked by descending number with its best (number 10) dropped to the end;
    # the top 2 of each meet in the final window, ranked 7..1 with label 8 dropped
    tops = [w[8 - r] for w in windows for r in range(2)]
    assert order[:8] == [tops[i] for i in (6, 5, 4, 3, 2, 1, 0)] + [tops[7]]
    assert order[8:12] == [w[6] for w in windows]  # then round-robin by window rank
    assert order[-4:] == [w[9] for w in windows]  # the unranked, last


def scripted_ranker(answer) -> ScriptedText:
    """Answers each window with ``answer(numbers shown)`` (a JSON text); records every call."""
    return ScriptedText({"rank": lambda call: answer(call.numbers("item"))})


def asked(text: ScriptedText) -> list[tuple[list[str], object, dict | None]]:
    """Each call of ``text``: its prompts, params and schema."""
    return [([c.prompt for c in batch], batch[0].params, batch[0].json_schema)
            for batch in text.batches]


def numbers_shown(prompt: str) -> list[int]:
    return [int(line[1:line.index("]")]) for line in prompt.splitlines()
            if line.startswith("[") and "]" in line]


def ranking(numbers: list[int]) -> str:
    return json.dumps({"ranking": numbers})


def final_order(candidates: list[str], scores: np.ndarray) -> list[str]:
    return [candidates[i] for i in np.argsort(-scores, kind="stable")]


@pytest.mark.parametrize(("label", "n", "position"), [
    (3, 5, 2), ("3", 5, 2), ("[3]", 5, 2), ("(3)", 5, 2), ("#3", 5, 2), ("3.", 5, 2),
    (" [3] ", 5, 2), ("1", 5, 0), ("5", 5, 4), ("6", 5, None), ("0", 5, None), ("-1", 5, None),
    ("X3", 5, None), ("three", 5, None), ("3a", 5, None), ("", 5, None), (None, 5, None)])
def test_window_labels_are_one_based_numbers_in_range(label, n: int, position) -> None:
    assert _position(label, n) == position


def test_presentation_order_is_a_seeded_function_of_the_set() -> None:
    candidates = [f"m{i}" for i in range(8)]
    query = RankQuery("u1", "p", candidates)
    shown = presentation_order(query, 2026)
    # the documented recipe, written out: sorted ids permuted by a generator seeded with
    # (seed, crc32(user), crc32(split), iteration) — the same in every process and machine
    rng = np.random.default_rng([2026, zlib.crc32(b"u1"), zlib.crc32(b"valid"), 0])
    assert shown == [sorted(candidates)[i] for i in rng.permutation(8)]
    assert presentation_order(RankQuery("u1", "p", candidates[::-1]), 2026) == shown
    assert presentation_order(RankQuery("u1", "other profile", candidates), 2026) == shown
    assert query.split == "valid" and query.iteration == 0
    assert presentation_order(RankQuery("u1", "p", candidates, "valid", 0), 2026) == shown
    for other in (RankQuery("u2", "p", candidates), RankQuery("u1", "p", candidates, "test"),
                  RankQuery("u1", "p", candidates, iteration=1)):
        assert presentation_order(other, 2026) != shown
    assert presentation_order(query, 2027) != shown


def test_llm_ranker_defaults_are_the_configs() -> None:
    from tailormind.config import load_config

    settings = load_config(environ={})
    text = scripted_ranker(lambda shown: ranking(shown))
    long_features = features(45)
    long_features.descriptions[:] = [f"{i:02d}" + "x" * 300 for i in range(45)]
    ranker = LLMRanker(long_features, text)
    assert settings.profiling.llm_window == 20 and settings.profiling.prompt_item_chars == 150
    assert settings.seeds.profiling == 2026
    assert ranker.profile_chars == CHARS_PER_TOKEN * settings.profiling.profile_tokens
    candidates = [f"m{i}" for i in range(45)]
    query = RankQuery("u1", "likes quiet films", candidates)
    [scores] = ranker.score([query])
    (window_prompts, params, schema), (final_prompts, _, _) = asked(text)
    assert [numbers_shown(p) for p in window_prompts] == [list(range(1, 21))] * 2 + [[1, 2, 3, 4, 5]]
    shown = presentation_order(query, 2026)
    # each description quoted, cut to prompt_item_chars (no space to cut at: 150 characters + …)
    first = long_features.describe(shown[0])
    assert f"[1] <<<ugc item 1>>>\n{first[:150]}…\n{CLOSE}\n" in window_prompts[0]
    assert first[:151] not in window_prompts[0]
    assert params.max_tokens == 256 and schema == RANKING_SCHEMA
    assert all("likes quiet films" in p for p in window_prompts + final_prompts)
    assert "Rank these 20 items" in window_prompts[0] and "Rank these 5 items" in window_prompts[2]
    # the model keeps every window's order: the first 20 // 3 = 6 of each window (all 5 of the
    # last) meet in the final window
    assert numbers_shown(final_prompts[0]) == list(range(1, 18))
    assert final_order(candidates, scores)[:17] == shown[0:6] + shown[20:26] + shown[40:45]


def test_one_window_needs_no_final_round_and_scores_are_minus_ranks() -> None:
    text = scripted_ranker(lambda shown: ranking([2, 4, "[2]", 1, 7, "x"]))  # a repeat, two unknown
    ranker = LLMRanker(features(10), text, window=5, seed=3)
    candidates = ["m0", "m3", "m6", "m8", "m9"]
    query = RankQuery("u1", "p", candidates)
    [scores] = ranker.score([query])
    assert len(asked(text)) == 1 and len(asked(text)[0][0]) == 1
    shown = presentation_order(query, 3)
    expected = [shown[1], shown[3], shown[0], shown[2], shown[4]]
    assert scores.dtype == np.float64
    assert {c: s for c, s in zip(candidates, scores, strict=True)} == {
        item: -float(rank) for rank, item in enumerate(expected)}
    assert ranker.stats == {"unknown_ids": 2, "unranked": 2, "windows": 1}


def test_failed_windows_are_counted_and_keep_the_seeded_order() -> None:
    text = scripted_ranker(lambda shown: "no idea")
    ranker = LLMRanker(features(12), text, window=4, seed=9)
    candidates = [f"m{i}" for i in range(12)]
    query = RankQuery("u1", "p", candidates)
    [scores] = ranker.score([query])
    shown = presentation_order(query, 9)
    # three windows of four, then a final window of each one's first max(1, 4 // 3) = 1 item
    assert [len(p) for p, _, _ in asked(text)] == [3, 1]
    assert numbers_shown(asked(text)[1][0][0]) == [1, 2, 3]
    assert ranker.stats == {"failed_windows": 4, "unranked": 15, "windows": 4}
    firsts = [shown[0], shown[4], shown[8]]
    rest = [shown[w + r] for r in range(1, 4) for w in (0, 4, 8)]  # round-robin by window rank
    assert final_order(candidates, scores) == firsts + rest
    assert sorted(scores.tolist()) == [-float(r) for r in range(11, -1, -1)]


def test_queries_of_every_size_in_one_call() -> None:
    """Windows of unequal length, a one-window query between two multi-window ones, no candidates."""
    text = scripted_ranker(lambda shown: ranking(shown[::-1]))  # the last shown is best
    ranker = LLMRanker(features(30), text, window=4, seed=1)
    queries = [RankQuery("u1", "p", [f"m{i}" for i in range(10)]),
               RankQuery("u2", "p", ["m20", "m21", "m22"]),
               RankQuery("u3", "p", []),
               RankQuery("u4", "p", [f"m{i}" for i in range(10, 19)]),
               RankQuery("u5", "p", [f"m{i}" for i in range(23, 30)])]
    scores = ranker.score(queries)
    assert [len(s) for s in scores] == [10, 3, 0, 9, 7]
    assert [len(p) for p, _, _ in asked(text)] == [3 + 1 + 3 + 2, 3]  # then three final windows
    shown = [presentation_order(q, 1) for q in queries]
    assert final_order(queries[1].candidates, scores[1]) == shown[1][::-1]
    # u1: windows of 4, 4, 2 reversed; each keeps max(1, 4 // 3) = 1 for the final window
    w1 = [shown[0][3::-1], shown[0][7:3:-1], shown[0][9:7:-1]]
    tops = [w[0] for w in w1]
    rest = [w[r] for r in range(1, 4) for w in w1 if r < len(w)]
    assert final_order(queries[0].candidates, scores[0]) == tops[::-1] + rest
    w4 = [shown[3][3::-1], shown[3][7:3:-1], shown[3][8:]]
    rest4 = [w[r] for r in range(1, 4) for w in w4 if r < len(w)]
    assert final_order(queries[3].candidates, scores[3]) == [w[0] for w in w4][::-1] + rest4
    # u5: two windows (4 and 3) still meet in a final window of their first 4 // 2 = 2 each
    w5 = [shown[4][3::-1], shown[4][6:3:-1]]
    final5 = (w5[0][:2] + w5[1][:2])[::-1]
    rest5 = [w[r] for r in range(4) for w in w5 if r < len(w) and w[r] not in final5]
    assert final_order(queries[4].candidates, scores[4]) == final5 + rest5
    assert ranker.seen == {q.user_id: [q.candidates] for q in queries}
