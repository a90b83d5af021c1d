"""The TailorBench judge: score parsing, JSON and plain-text paths, grounded hallucination."""

from __future__ import annotations

import pytest

from tailormind.bench.judge import Judge, cites, parse_score
from tests.fakes import ScriptedText, in_turn

POST = ("Heat (1995) pits Al Pacino against Robert De Niro. The diner scene is quiet and tense. "
        "Directed by Steven Spielberg, it won five Oscars. Watch it tonight!")
SOURCES = ["Heat (1995) — Action|Crime|Thriller. Al Pacino, Robert De Niro; dir. Michael Mann."]


def scripted_judge(answers: list[str], *, follows_json: bool) -> ScriptedText:
    """A dummy engine: answers the judge's prompts from a script, in order; records them."""
    script = in_turn(answers)
    return ScriptedText({kind: script for kind in ("judge_novelty", "judge_aesthetic",
                                                   "judge_hallucination")},
                        model_id="scripted-judge", follows_json=follows_json)


@pytest.mark.parametrize("text, value", [
    ("7", 0.7), (" 8/10 because", 0.8), ("Score: 10.", 1.0), ("4.5 out of 10", 0.45),
    ("0", 0.0), ("I'd say 100", None), ("great!", None), ("", None),
])
def test_parse_score(text, value) -> None:
    assert parse_score(text) == (pytest.approx(value) if value is not None else None)


def test_cites_requires_the_claim_to_be_in_the_post() -> None:
    assert cites(POST, "directed by  STEVEN Spielberg")  # case and spacing ignored
    assert cites(POST, "Directed by Steven Spielberg it won 5 Oscars")  # 6 of 8 words in one sentence
    assert not cites(POST, "Tom Cruise starred in it")
    assert not cites(POST, "")


def test_plain_text_scores_with_prefill_and_counted_failures() -> None:
    model = scripted_judge(["7", "no idea", "9/10"], follows_json=False)
    judge = Judge(model)
    scores = judge.novelty([POST, POST], [["Heat (1995)"], ["Alien (1979)"]])
    assert [s.value for s in scores] == [0.7, None]
    assert judge.stats["unparsed"] == 1
    asked = model.conversations[0]
    assert asked[-1] == {"role": "assistant", "content": "Score:"}
    assert "<<<ugc liked item 1>>>\nHeat (1995)\n<<<end ugc>>>" in asked[0]["content"]
    assert "one number from 0 to 10" in asked[0]["content"]
    assert judge.aesthetic([POST])[0].value == 0.9


def test_json_scores() -> None:
    model = scripted_judge(['{"score": 6, "reason": "clear hook"}', '{"score": 11}'],
                          follows_json=True)
    judge = Judge(model)
    scores = judge.aesthetic([POST, POST])
    assert scores[0].value == 0.6 and scores[0].reason == "clear hook"
    assert scores[1].value is None and judge.stats["unparsed"] == 1  # 11 is out of range
    assert '"score": <integer 0-10>' in model.conversations[0][0]["content"]


def test_hallucination_json_is_grounded_and_cited() -> None:
    model = scripted_judge([
        '{"unsupported_claims": ["Directed by Steven Spielberg", "it won five Oscars"]}',
        '{"unsupported_claims": []}',
        '{"unsupported_claims": ["Tom Cruise plays the lead"]}',
        "not json at all",
    ], follows_json=True)
    judge = Judge(model)
    verdicts = judge.hallucination([POST] * 4, [SOURCES] * 4)
    assert [v.hallucinated for v in verdicts] == [1, 0, None, None]
    assert verdicts[0].claims == ["Directed by Steven Spielberg", "it won five Oscars"]
    assert verdicts[2].uncited == ["Tom Cruise plays the lead"]
    assert judge.stats["uncited"] == 1 and judge.stats["unparsed"] == 1
    prompt = model.conversations[0][0]["content"]
    assert SOURCES[0] in prompt and "there is no web access" in prompt


def test_hallucination_plain_text() -> None:
    model = scripted_judge([' "Directed by Steven Spielberg, it won five Oscars."', "NONE.",
                           "The moon is made of cheese"], follows_json=False)
    verdicts = Judge(model).hallucination([POST] * 3, [SOURCES] * 3)
    assert [v.hallucinated for v in verdicts] == [1, 0, None]
    assert model.conversations[0][-1] == {"role": "assistant", "content": "Unsupported:"}
