"""JSON answers: repair of what small models get wrong, re-asks, and counted failures."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailormind.models.json_repair import JsonAnswerError, parse_json_answer
from tailormind.models.types import GenerationParams
from tests.fakes import ScriptedText, in_turn

IDEA_SCHEMA = {
    "type": "object",
    "properties": {"idea": {"type": "string"}, "type": {"type": "string"}},
    "required": ["idea", "type"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"idea": "x", "type": "News"}\n```', {"idea": "x", "type": "News"}),
        ('Sure! Here it is: {"idea": "x", "type": "News"} Hope it helps.',
         {"idea": "x", "type": "News"}),
        ('{"idea": "x", "type": "News",}', {"idea": "x", "type": "News"}),
        ("{'idea': 'x', 'type': 'News'}", {"idea": "x", "type": "News"}),
        ('{"idea": "x", "type": "News", "ok": True, "none": None}',
         {"idea": "x", "type": "News", "ok": True, "none": None}),
        ('{"idea": "a truncated answer", "type": "Ne', {"idea": "a truncated answer", "type": "Ne"}),
        ('[{"idea": "x", "type": "a"}, {"idea": "y", "type": "b"', None),
    ],
)
def test_repairs(text: str, expected: dict | None) -> None:
    value, repaired = parse_json_answer(text)
    assert repaired
    if expected is not None:
        assert value == expected
    else:
        assert value == [{"idea": "x", "type": "a"}, {"idea": "y", "type": "b"}]


def test_valid_json_is_not_marked_repaired() -> None:
    assert parse_json_answer('{"idea": "x", "type": "y"}', IDEA_SCHEMA) == (
        {"idea": "x", "type": "y"}, False)


def test_true_inside_a_string_is_kept() -> None:
    value, _ = parse_json_answer('{"idea": "True story", "type": "None of them",}')
    assert value == {"idea": "True story", "type": "None of them"}
    value, _ = parse_json_answer(r'{"a": "say \"True\" now", "b": True,}')
    assert value == {"a": 'say "True" now', "b": True}
    value, _ = parse_json_answer(r'{"a": "ends in a backslash \\", "b": [1, 2')
    assert value == {"a": "ends in a backslash \\", "b": [1, 2]}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("I cannot answer that.", "no JSON object"),
        ('{"idea": "x"}', "schema at (top level): 'type' is a required property"),
        ('{"idea": 3, "type": "x"}', "schema at idea: 3 is not of type 'string'"),
    ],
)
def test_unusable_answers_say_why(text: str, reason: str) -> None:
    with pytest.raises(JsonAnswerError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_json_answer(text, IDEA_SCHEMA)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4),
       before=st.sampled_from(["", "Here you go:\n", "```json\n", "Answer: "]),
       after=st.sampled_from(["", "\n```", " Let me know!", "\n\nThanks"]))
def test_wrapped_json_round_trips(value: dict, before: str, after: str) -> None:
    """Any JSON object wrapped in prose or a fence parses back to itself."""
    text = before + json.dumps(value, ensure_ascii=False) + after
    assert parse_json_answer(text)[0] == value


def scripted(answers: list[str]) -> ScriptedText:
    """A dummy engine (as textgrad tests do): answers prompts of no template from a script
    (``model.script.left``: the unused answers), records what it was asked."""
    script = in_turn(answers)
    model = ScriptedText({None: script}, json_retries=2, tokens=(10, 5))
    model.script = script
    return model


def test_reask_with_the_error_then_succeed() -> None:
    model = scripted(["no json here", '{"idea": "x", "type": "Opinion Posts"}'])
    [answer] = model.complete_json([[{"role": "user", "content": "an idea"}]], IDEA_SCHEMA)
    assert answer.ok and answer.value == {"idea": "x", "type": "Opinion Posts"}
    assert answer.attempts == 2 and answer.completion_tokens == 10
    retry = model.conversations[1]
    assert retry[1] == {"role": "assistant", "content": "no json here"}
    assert "no JSON object" in retry[2]["content"] and '"required"' in retry[2]["content"]
    assert model.stats["json_ok"] == 1 and model.stats["json_retried"] == 1


def test_failure_after_retries_is_counted_not_raised() -> None:
    # round 1 answers a then b; round 2 and 3 re-ask only a
    model = scripted(["nope", '{"idea": "x", "type": "y"}', "still nope", "never"])
    batch = [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    first, second = model.complete_json(batch, IDEA_SCHEMA)
    assert (first.ok, first.attempts, first.value) == (False, 3, None)
    assert "no JSON object" in first.error
    assert (second.ok, second.attempts, second.value) == (True, 1, {"idea": "x", "type": "y"})
    assert model.stats["json_failed"] == 1 and model.stats["json_ok"] == 1
    assert model.stats["json_retried"] == 2


def test_three_attempts_then_failure_exactly() -> None:
    model = scripted(["a", "b", "c", "unused"])
    [answer] = model.complete_json([[{"role": "user", "content": "x"}]], IDEA_SCHEMA)
    assert not answer.ok and answer.attempts == 3 and len(answer.completions) == 3
    assert model.script.left == ["unused"]
    assert model.stats["json_failed"] == 1


def test_bad_messages_are_refused() -> None:
    from tailormind.errors import ModelInputError

    model = scripted([])
    with pytest.raises(ModelInputError, match="at least one message"):
        model.complete([[]])
    with pytest.raises(ModelInputError, match="unknown message role 'robot'"):
        model.complete([[{"role": "robot", "content": "x"}]])


def test_cached_answers_are_reused(tmp_path) -> None:
    from tailormind.models.cache import CallCache

    model = scripted(['{"idea": "x", "type": "y"}'])
    model.cache = CallCache(tmp_path)
    conversation = [{"role": "user", "content": "same question"}]
    first = model.complete([conversation], GenerationParams(max_tokens=9))
    again = model.complete([conversation], GenerationParams(max_tokens=9))
    assert again[0].text == first[0].text and again[0].cached and not first[0].cached
    assert model.stats["cache_hits"] == 1
    with pytest.raises(IndexError):  # different params are a different call: the script is empty
        model.complete([conversation], GenerationParams(max_tokens=10))
