"""The ``text`` role on real weights: a tiny Llama through the transformers backend, and SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailormind.config import load_config
from tailormind.errors import ConfigError, ModelError, ModelInputError
from tailormind.models.registry import load_role
from tailormind.models.types import GenerationParams
from tests.tiny_models import tiny_llama


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "llama")


def text_settings(path: Path, cache_dir: Path, **extra):
    block = {"backend": "transformers", "path": str(path), **extra}
    return load_config(environ={}, overrides={"models": {"cache_dir": str(cache_dir),
                                                         "text": block}})


def test_tiny_llama_batch_is_deterministic_and_counted(llama_dir: Path, tmp_path: Path) -> None:
    model = load_role("text", text_settings(llama_dir, tmp_path, batch_size=2))
    assert load_role("text", text_settings(llama_dir, tmp_path, batch_size=2)) is model
    batch = [[{"role": "user", "content": "hi"}],
             [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a longer question"}],
             [{"role": "user", "content": "third"}]]
    params = GenerationParams(max_tokens=6)
    first = model.complete(batch, params)
    assert len(first) == 3
    assert all(c.completion_tokens <= 6 + 1 and c.prompt_tokens > 0 for c in first)
    assert first[1].prompt_tokens > first[0].prompt_tokens  # left padding not counted
    model.cache = None  # recompute, not read back
    again = model.complete(batch, params)
    assert [c.text for c in again] == [c.text for c in first]
    # alone or in a batch: the same greedy answer (left padding is masked)
    alone = model.complete([batch[0]], params)
    assert alone[0].text == first[0].text
    assert model.stats["prompt_tokens"] > 0 and model.stats["calls"] == 7


def test_sampling_with_a_seed_is_reproducible(llama_dir: Path, tmp_path: Path) -> None:
    """Temperature 1.5 really samples (not the greedy answer), the same seed gives the same
    answer, another seed another one (random weights: near-uniform next-token odds)."""
    model = load_role("text", text_settings(llama_dir, tmp_path / "c"))
    model.cache = None

    def answer(prompt: str, seed: int | None) -> str:
        params = (GenerationParams(max_tokens=12) if seed is None else
                  GenerationParams(max_tokens=12, temperature=1.5, seed=seed))
        return model.complete([[{"role": "user", "content": prompt}]], params)[0].text

    prompts, seeds = ("tell me", "hi"), (7, 8)
    greedy = {p: answer(p, None) for p in prompts}
    sampled = {(p, s): answer(p, s) for p in prompts for s in seeds}
    assert all(answer(p, s) == sampled[(p, s)] for p, s in sampled)  # the same seed reproduces
    assert any(sampled[(p, s)] != greedy[p] for p, s in sampled)  # sampling is not greedy
    assert any(sampled[(p, 7)] != sampled[(p, 8)] for p in prompts)  # the seed matters


def test_stop_strings_cut_the_answer(llama_dir: Path, tmp_path: Path) -> None:
    model = load_role("text", text_settings(llama_dir, tmp_path / "s"))
    full = model.complete([[{"role": "user", "content": "x"}]], GenerationParams(max_tokens=12))[0]
    assert len(full.text) >= 3  # seeded random weights: a fixed, long enough answer
    stop = full.text[2]
    cut = model.complete([[{"role": "user", "content": "x"}]],
                         GenerationParams(max_tokens=12, stop=(stop,)))[0]
    assert cut.text == full.text[: full.text.index(stop)].strip()
    assert cut.finish_reason == "stop"


def test_random_weights_fail_json_after_retries_without_raising(llama_dir: Path, tmp_path: Path) -> None:
    model = load_role("text", text_settings(llama_dir, tmp_path / "j", json_retries=1))
    schema = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}
    [answer] = model.complete_json([[{"role": "user", "content": "json please"}]], schema,
                                   GenerationParams(max_tokens=5))
    assert not answer.ok and answer.attempts == 2 and answer.value is None
    assert answer.completions[0].text.startswith("{")  # the JSON prefill reached the model
    assert model.stats["json_failed"] == 1


def test_images_are_refused_by_the_text_role(llama_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    model = load_role("text", text_settings(llama_dir, tmp_path / "i"))
    message = {"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (4, 4))},
                                           {"type": "text", "text": "what is it"}]}
    with pytest.raises(ModelInputError, match="send images to 'describe'"):
        model.complete([[message]])


def test_missing_chat_template_names_the_option(tmp_path: Path) -> None:
    path = tiny_llama(tmp_path / "no-template", chat_template=False)
    with pytest.raises(ModelError, match=r"models\.text\.options\.chat_template"):
        load_role("text", text_settings(path, tmp_path))


def test_bad_paths_and_options(tmp_path: Path, llama_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"models\.text\.path: .*nowhere does not exist"):
        load_role("text", text_settings(tmp_path / "nowhere", tmp_path))
    with pytest.raises(ConfigError, match=r"models\.text\.path: backend 'transformers' needs"):
        load_role("text", load_config(environ={}, overrides={
            "models": {"text": {"backend": "transformers"}}}))
    with pytest.raises(ConfigError, match=r"models\.text\.options\.temperature_x: Extra inputs"):
        load_role("text", text_settings(llama_dir, tmp_path, options={"temperature_x": 1}))
    with pytest.raises(ModelError, match=r"needs about .* more than models\.text\.max_memory_gib"):
        load_role("text", text_settings(llama_dir, tmp_path / "m", max_memory_gib=1e-6))


def test_smollm2_answers(embedded_settings) -> None:
    """The embedded model: loads from the PyPI package, answers in English, follows the prefill."""
    model = load_role("text", embedded_settings)
    [answer] = model.complete([[{"role": "user", "content": "Name a famous science fiction film."}]],
                              GenerationParams(max_tokens=24))
    assert answer.text and answer.completion_tokens > 0 and "SmolLM2" in answer.model
    schema = {"type": "object", "required": ["title", "tags"],
              "properties": {"title": {"type": "string"},
                             "tags": {"type": "array", "items": {"type": "string"}}}}
    [structured] = model.complete_json(
        [[{"role": "user", "content": 'Give JSON with keys "title" (string) and "tags" (list of '
                                      'strings) for a post about hiking.'}]],
        schema, GenerationParams(max_tokens=64))
    assert structured.ok, structured.error
    assert isinstance(structured.value["title"], str)
    weights = list((Path(embedded_settings.models.cache_dir) / "weights").glob("*-f16.gguf"))
    assert weights, "the float16 GGUF is kept for the next load"


def test_smollm2_on_the_transformers_runtime(tmp_path: Path) -> None:
    """``options.runtime: transformers``: the same GGUF dequantised by transformers, saved as
    float weights for the next load."""
    settings = load_config(environ={}, overrides={"models": {
        "cache_dir": str(tmp_path), "text": {"options": {"runtime": "transformers"}}}})
    model = load_role("text", settings)
    assert type(model).__name__ == "TransformersText"
    [answer] = model.complete([[{"role": "user", "content": "Name a famous film."}]],
                              GenerationParams(max_tokens=8))
    assert answer.text and answer.completion_tokens > 0
    assert list((tmp_path / "weights").glob("*/model.safetensors"))


def test_a_final_assistant_message_is_continued(llama_dir: Path, tmp_path: Path) -> None:
    """Prefill: the prompt ends inside the assistant turn (no end-of-turn token after the
    prefill, no new assistant header), and the answer is only what follows it."""
    from tailormind.models.text_transformers import _chat_prompt

    model = load_role("text", text_settings(llama_dir, tmp_path / "p"))
    asked = [{"role": "user", "content": "Give a title."}]
    opened = _chat_prompt(model.tokenizer, asked)
    continued = _chat_prompt(model.tokenizer, [*asked, {"role": "assistant",
                                                        "content": "Title:"}])
    assert continued.rstrip().endswith("Title:")
    assert continued.startswith(opened) or opened.rstrip() in continued
    [answer] = model.complete([[*asked, {"role": "assistant", "content": "Title:"}]],
                              GenerationParams(max_tokens=5))
    assert "Title:" not in answer.text  # the prefill is not echoed into the answer
    assert answer.prompt_tokens == len(model.tokenizer(continued,
                                                       add_special_tokens=False)["input_ids"])


def test_repetition_penalty_covers_the_answer_not_the_prompt() -> None:
    """Hand-computed: prompt tokens [1, 2] (width 2), answer so far [3, 3]; penalty 2 divides a
    positive logit of a generated token and multiplies a negative one; prompt tokens untouched."""
    import torch

    from tailormind.models.text_transformers import AnswerRepetitionPenalty

    scores = torch.tensor([[1.0, 4.0, 6.0, -2.0, 8.0]])
    ids = torch.tensor([[1, 2, 3, 3]])
    out = AnswerRepetitionPenalty(2.0, prompt_width=2)(ids, scores.clone())
    assert out.tolist() == [[1.0, 4.0, 6.0, -4.0, 8.0]]
    ids = torch.tensor([[1, 2, 4, 3]])
    out = AnswerRepetitionPenalty(2.0, prompt_width=2)(ids, scores.clone())
    assert out.tolist() == [[1.0, 4.0, 6.0, -4.0, 4.0]]
    assert AnswerRepetitionPenalty(2.0, 4)(ids, scores.clone()).tolist() == scores.tolist()


def test_smollm2_is_asked_field_by_field_and_follows_a_prefill(embedded_settings) -> None:
    model = load_role("text", embedded_settings)
    assert model.follows_json is False
    [answer] = model.complete(
        [[{"role": "user", "content": "Give a catchy title for a post about hiking."},
          {"role": "assistant", "content": "Title:"}]],
        GenerationParams(max_tokens=20, stop=("\n",)))
    assert answer.text and "\n" not in answer.text and not answer.text.startswith("Title:")
