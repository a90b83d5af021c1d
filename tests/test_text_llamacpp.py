"""The llama.cpp text runtime: the embedded SmolLM2 in float32, batched with a shared prefix."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailormind.config import load_config
from tailormind.errors import ConfigError, ModelError, ModelInputError
from tailormind.models.llamacpp_engine import DecodeRequest, common_prefix
from tailormind.models.registry import load_role, unload_all
from tailormind.models.text_llamacpp import answer_penalty, render_chat
from tailormind.models.types import GenerationParams
from tests.tiny_models import CHATML, tiny_tokenizer

CONTEXT = ("You write posts for Rednote about hiking trails, quiet cafes and old films. The user "
           "likes slow mornings, mountain walks and black-and-white cinema. ") * 4
QUESTIONS = ("Give it a catchy title.", "Describe picture 1.", "Describe picture 2.",
             "Write the first sentence of the post.", "Name the mood in two words.")


@pytest.fixture(scope="module")
def smollm2(embedded_settings):
    model = load_role("text", embedded_settings)
    assert type(model).__name__ == "LlamaCppText"
    return model


def prompts(model, prefill: str = "") -> list[list[int]]:
    out = []
    for question in QUESTIONS:
        conversation = [{"role": "user", "content": f"{CONTEXT}\n\n{question}"}]
        if prefill:
            conversation.append({"role": "assistant", "content": prefill})
        out.append(model.engine.tokenize(render_chat(model.template, conversation, model.engine)))
    return out


def fresh_decode(model, tokens: list[int], **rules) -> list[int]:
    """One prompt alone in an empty context (nothing reused from an earlier call)."""
    model.engine.forget()
    return model.engine.decode(DecodeRequest([tokens], **rules))[0].tokens


def test_a_shared_prefix_batch_says_what_each_prompt_says_alone(smollm2) -> None:
    """Greedy answers of five prompts sharing a context: identical token for token whether they
    run as one batch (the context encoded once) or one by one in an empty context; and the
    batch encodes the shared context once, a repeat of it not at all."""
    asked = prompts(smollm2, prefill="Title:")
    shared = common_prefix(asked)
    assert shared > 100
    engine = smollm2.engine
    engine.forget()
    engine.prompt_tokens_encoded = 0
    rules = {"max_tokens": 24, "stop": ("\n",)}
    batch = engine.decode(DecodeRequest(asked, **rules))
    suffixes = sum(len(p) - shared for p in asked)
    stepped = sum(len(a.tokens) - 1 for a in batch)  # every answer token but the last is run
    assert engine.prompt_tokens_encoded == shared + suffixes + stepped
    engine.prompt_tokens_encoded = 0
    again = engine.decode(DecodeRequest(asked, **rules))
    assert [a.tokens for a in again] == [a.tokens for a in batch]
    assert engine.prompt_tokens_encoded == suffixes + stepped  # the context is reused
    alone = [fresh_decode(smollm2, p, **rules) for p in asked]
    assert [a.tokens for a in batch] == alone


def test_answers_end_at_stop_strings_end_tokens_and_the_length(smollm2) -> None:
    [title] = smollm2.complete([[{"role": "user", "content": "Give a title for a hiking post."},
                                 {"role": "assistant", "content": "Title:"}]],
                               GenerationParams(max_tokens=40, stop=("\n",)))
    assert title.text and "\n" not in title.text and "Title:" not in title.text
    [long] = smollm2.complete([[{"role": "user", "content": "Describe a cafe in detail."}]],
                              GenerationParams(max_tokens=12))
    assert long.finish_reason == "length" and long.completion_tokens == 12
    [short] = smollm2.complete([[{"role": "user", "content": "Say only: yes."}]],
                               GenerationParams(max_tokens=64))
    assert short.finish_reason == "stop" and short.completion_tokens < 64


def test_json_answers_start_inside_the_object(smollm2) -> None:
    [answer] = smollm2.complete([[{"role": "user", "content": "Give JSON with key title."}]],
                                GenerationParams(max_tokens=24), json_schema={"type": "object"})
    assert answer.text.startswith("{")


def test_sampling_is_seeded(smollm2, monkeypatch) -> None:
    monkeypatch.setattr(smollm2, "cache", None)  # compute every time
    ask = [[{"role": "user", "content": f"Name a {thing}."}] for thing in ("colour", "city", "dog")]

    def sample(seed: int) -> list[str]:
        return [c.text for c in smollm2.complete(ask, GenerationParams(
            max_tokens=12, temperature=1.5, seed=seed))]

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_a_prompt_longer_than_the_context_is_an_input_error(smollm2) -> None:
    huge = [[{"role": "user", "content": "word " * 5000}]]
    with pytest.raises(ModelInputError, match="exceeds options.context_tokens"):
        smollm2.complete(huge, GenerationParams(max_tokens=8))


def test_the_chat_prompt_is_the_one_transformers_renders(smollm2, tmp_path: Path) -> None:
    """SmolLM2's own template (from the GGUF) and ChatML, rendered by us and by transformers'
    ``apply_chat_template``: the same string, with and without a continued assistant turn."""
    tokenizer = tiny_tokenizer(tmp_path)
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Give a title."}, {"role": "assistant", "content": "Title:"}],
    ]
    for template in (smollm2.template, CHATML):
        tokenizer.chat_template = template
        for conversation in conversations:
            continuing = conversation[-1]["role"] == "assistant"
            expected = tokenizer.apply_chat_template(
                conversation, tokenize=False, continue_final_message=continuing,
                add_generation_prompt=not continuing)
            assert render_chat(template, conversation, smollm2.engine) == expected


def test_answer_penalty_by_hand() -> None:
    """Answer so far [3, 3, 4]: logits 6 -> 3 (positive: divided), -2 -> -4 (negative:
    multiplied), once per token however often it was written; the others untouched."""
    logits = np.array([1.0, 4.0, 6.0, -2.0, 6.0], dtype=np.float32)
    answer_penalty(logits, [3, 3, 4], 2.0)
    assert logits.tolist() == [1.0, 4.0, 6.0, -4.0, 3.0]


@given(st.lists(st.lists(st.integers(0, 3), max_size=6), min_size=1, max_size=5))
def test_common_prefix_is_the_longest_shared_start(token_lists: list[list[int]]) -> None:
    n = common_prefix(token_lists)
    assert all(t[:n] == token_lists[0][:n] for t in token_lists)
    if all(len(t) > n for t in token_lists):
        assert len({t[n] for t in token_lists}) > 1


def test_runtime_choice_and_clear_errors(tmp_path: Path, monkeypatch) -> None:
    def settings(**options):
        return load_config(environ={}, overrides={"models": {
            "cache_dir": str(tmp_path), "text": {"backend": "smollm2", "options": options}}})

    with pytest.raises(ConfigError, match="no_repeat_ngram_size: the llamacpp runtime"):
        load_role("text", settings(no_repeat_ngram_size=4))
    with pytest.raises(ConfigError, match=r"options\.weights"):
        load_role("text", settings(weights="q2"))
    tiny = load_config(environ={}, overrides={"models": {
        "cache_dir": str(tmp_path), "text": {"backend": "smollm2", "max_memory_gib": 1e-6}}})
    with pytest.raises(ModelError, match=r"needs about .* more than models\.text\.max_memory_gib"):
        load_role("text", tiny)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ModelError,
                       match=r"needs llama-cpp-python .*text\.options\.runtime: transformers"):
        load_role("text", settings(weights="q8_0"))
    with pytest.raises(ConfigError, match=r"models\.text\.path: backend 'llamacpp' needs"):
        load_role("text", load_config(environ={}, overrides={"models": {
            "text": {"backend": "llamacpp"}}}))
    unload_all()


#: A fixed prompt set: two contexts (a platform brief, a user's history) x eight questions.
FIXED_CONTEXTS = (
    "You write posts for Rednote about hiking trails, quiet cafes and old films. " * 6,
    "The user rated Toy Story, Heat and Casino highly and likes crime dramas with long "
    "dialogues. " * 4,
)
FIXED_QUESTIONS = ("Give it a catchy title.", "Describe picture 1.", "Describe picture 2.",
                   "Write the body of the post.", "Describe picture 3.",
                   "Summarise the user's taste.", "Name three films the user may like.",
                   "Write a critique of this profile.")


def test_llamacpp_says_what_transformers_says(smollm2, embedded_settings, monkeypatch) -> None:
    """The runtime change keeps the model's answers: on the fixed prompt set (16 prompts, one
    batch, greedy, SmolLM2's repetition penalty), every answer of llama.cpp with the float16 copy
    equals the transformers runtime's answer on the float32 dequantised weights."""
    settings = embedded_settings.model_copy(deep=True)
    settings.models.text.options = {"runtime": "transformers"}
    before = load_role("text", settings)
    asked = [[{"role": "user", "content": context + question}]
             for context in FIXED_CONTEXTS for question in FIXED_QUESTIONS]
    params = GenerationParams(max_tokens=48)
    for model in (before, smollm2):
        monkeypatch.setattr(model, "cache", None)
    expected = [c.text for c in before.complete(asked, params)]
    assert len(expected) == 16 and all(expected)
    assert [c.text for c in smollm2.complete(asked, params)] == expected


def test_a_next_prompt_reuses_what_its_sequence_holds(smollm2) -> None:
    """After a batch, a prompt that starts with what sequence 0 holds (the context and the first
    question) encodes only its new tokens, and answers as it would in an empty context."""
    engine = smollm2.engine
    engine.forget()
    asked = prompts(smollm2)
    first = engine.decode(DecodeRequest(asked, max_tokens=8))[0]
    follow_up = asked[0] + first.tokens + engine.tokenize(" And a second title:")
    engine.prompt_tokens_encoded = 0
    [answer] = engine.decode(DecodeRequest([follow_up], max_tokens=8))
    held = len(asked[0]) + len(first.tokens) - 1  # the last answer token was never run
    assert engine.prompt_tokens_encoded == len(follow_up) - held + len(answer.tokens) - 1
    assert answer.tokens == fresh_decode(smollm2, follow_up, max_tokens=8)


def test_a_failed_decode_leaves_nothing_stale(smollm2) -> None:
    """Fault injection: the logits hook fails mid-answer; the engine forgets what its sequences
    held, and the same batch then answers exactly as in an empty context."""
    engine = smollm2.engine
    asked = prompts(smollm2, prefill="Title:")
    calls = 0

    def failing(logits, answer) -> None:
        nonlocal calls
        calls += 1
        if calls == 7:
            raise RuntimeError("injected fault")

    with pytest.raises(RuntimeError, match="injected fault"):
        engine.decode(DecodeRequest(asked, max_tokens=16, penalty=failing))
    assert all(not held for held in engine.held)
    again = [a.tokens for a in engine.decode(DecodeRequest(asked, max_tokens=16))]
    assert again == [fresh_decode(smollm2, p, max_tokens=16) for p in asked]
