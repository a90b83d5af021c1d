"""Rankers: the embedding ranker's arithmetic and the listwise LLM ranker's windows, by id."""

from __future__ import annotations

import json

import numpy as np

from tailormind.models.base import Completion, Embedder, TextModel
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.rankers import EmbeddingRanker, LLMRanker, RankQuery, presentation_order


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


class ReverseRanker(TextModel):
    """Ranks each window by descending item number, but drops one and invents one."""

    def __init__(self) -> None:
        super().__init__(backend="reverse", model_id="reverse", json_retries=0)
        self.windows = 0

    def _generate(self, batch, params, json_schema):
        out = []
        for conversation in batch:
            prompt = conversation[-1]["content"]
            numbers = [int(line[1:line.index("]")]) for line in prompt.splitlines()
                       if line.startswith("[") and "]" in line]
            order = sorted(numbers, reverse=True)[1:] + [99]  # drops the best, invents [99]
            self.windows += 1
            out.append(Completion(text=json.dumps({"ranking": order}), model="reverse"))
        return out


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
