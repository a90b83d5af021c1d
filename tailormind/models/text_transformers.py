"""``text`` on a local causal LM with transformers (and the embedded SmolLM2 GGUF).

A GGUF file is dequantised by transformers at load time (~25 s for SmolLM2 on 2 cores); the
dequantised float weights are then saved under ``<cache_dir>/weights/`` so later loads take well
under a second. Generation is batched with left padding; ``temperature == 0`` is greedy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Literal

from tailormind.core.atomic import atomic_dir
from tailormind.errors import ModelError
from tailormind.models.backend_config import BackendOptions, resolve_device, resolve_dtype
from tailormind.models.memory import check_fits
from tailormind.models.conversation import json_prefix, text_messages, truncate_at_stop
from tailormind.models.roles import TextModel
from tailormind.models.types import Completion, Conversation, GenerationParams

log = logging.getLogger(__name__)

#: float32 weights of a Q4 GGUF are about 7x the file (4.5 bits -> 32 bits).
GGUF_EXPANSION = 7.5


class TransformersTextOptions(BackendOptions):
    gguf_file: str | None = None
    chat_template: str | None = None
    trust_remote_code: bool = False
    #: Anti-repetition for free text (not applied to JSON answers, which repeat by nature).
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    #: whether whole JSON objects can be asked for (else callers ask field by field)
    follows_json: bool = True


class SmolLM2Options(TransformersTextOptions):
    """A 135M model loops ("a mix of jesus, danish, and a mix of jesus, ...") without a repetition
    penalty. ``no_repeat_ngram_size`` (4) also stops loops but runs in Python per step: profiling
    took 104 s/user with it (with other load on the box) against 18.9 s/user without it, and the
    penalty alone left 1 of 16 updates degenerate (rejected, recorded)."""

    repetition_penalty: float = 1.2
    no_repeat_ngram_size: int = 0
    #: llama.cpp (default; ``tailormind/models/text_llamacpp.py``) or transformers
    runtime: Literal["llamacpp", "transformers"] = "llamacpp"
    #: llama.cpp runtime: the weights it runs (f32 = the dequantised Q4_1 values) and its context
    weights: Literal["f16", "f32", "q8_0", "as_shipped"] = "f16"
    context_tokens: int = 4096
    parallel_sequences: int = 8
    #: SmolLM2-135M missed the ideation/writer JSON keys on every real MovieLens user tried, so
    #: generation asks it field by field in plain text (``generation.answer_format: auto``).
    follows_json: bool = False


class TransformersText(TextModel):
    """Chat completion with ``AutoModelForCausalLM.generate`` on one local model."""

    def __init__(
        self,
        model_dir: Path,
        *,
        gguf_file: str | None = None,
        chat_template: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        weights_cache: Path | None = None,
        max_memory_gib: float | None = None,
        key: str = "models.text",
        trust_remote_code: bool = False,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self._set_free_text_kwargs(repetition_penalty, no_repeat_ngram_size)
        started = time.perf_counter()
        source, file_kwargs, cached = self._weights_source(
            Path(model_dir), gguf_file, weights_cache, max_memory_gib, key)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                source, trust_remote_code=trust_remote_code, **file_kwargs
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch_dtype, trust_remote_code=trust_remote_code, **file_kwargs
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"{key}: cannot load a causal LM from {source}: {exc}") from exc
        self.model.to(self.device).eval()
        if gguf_file and not self.loaded_from_cache and cached is not None:
            _save_dequantised(self.model, self.tokenizer, cached)
        self._set_up_tokenizer(chat_template, source, key)
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s on %s in %.1f s", self.model_id, self.device, self.load_seconds)

    def _set_free_text_kwargs(self, repetition_penalty: float, no_repeat_ngram_size: int) -> None:
        """The anti-repetition settings for free-text answers, and the call-cache salt they
        make (so answers made with other settings are not reused)."""
        self.free_text_kwargs: dict[str, Any] = {}
        if repetition_penalty != 1.0:
            self.free_text_kwargs["repetition_penalty"] = repetition_penalty
        if no_repeat_ngram_size:
            self.free_text_kwargs["no_repeat_ngram_size"] = no_repeat_ngram_size
        self.cache_salt = dict(self.free_text_kwargs)
        if repetition_penalty != 1.0:
            self.cache_salt["penalty_scope"] = "answer"  # see AnswerRepetitionPenalty

    def _weights_source(self, source: Path, gguf_file: str | None, weights_cache: Path | None,
                        max_memory_gib: float | None, key: str
                        ) -> tuple[Path, dict[str, str], Path | None]:
        """``(where to load from, extra from_pretrained kwargs, dequantised-weights cache dir)``:
        a GGUF file's cached float weights when saved earlier (``self.loaded_from_cache``), else
        the model itself once it is known to fit in memory. ``ModelError`` for a missing GGUF."""
        self.loaded_from_cache = False
        if not gguf_file:
            check_fits(source, key, max_gib=max_memory_gib)
            return source, {}, None
        gguf_path = source / gguf_file
        if not gguf_path.is_file():
            raise ModelError(f"{key}: GGUF file {gguf_path} does not exist")
        cached = weights_cache / _gguf_cache_name(gguf_path) if weights_cache else None
        if cached is not None and (cached / "config.json").is_file():
            self.loaded_from_cache = True
            return cached, {}, cached
        check_fits(gguf_path, key, max_gib=max_memory_gib, expansion=GGUF_EXPANSION)
        return source, {"gguf_file": gguf_file}, cached

    def _set_up_tokenizer(self, chat_template: str | None, source: Path, key: str) -> None:
        """Chat template (the configured one wins), pad token and left padding for batching;
        ``ModelError`` when no chat template is known."""
        if chat_template:
            self.tokenizer.chat_template = chat_template
        if not self.tokenizer.chat_template:
            raise ModelError(f"{key}: the tokenizer in {source} has no chat template; set "
                             f"{key}.options.chat_template to a Jinja chat template")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"

    def _generate(
        self, batch: list[Conversation], params: GenerationParams, json_schema: dict | None
    ) -> list[Completion]:
        out: list[Completion] = []
        for start in range(0, len(batch), self.batch_size):
            out.extend(self._generate_batch(batch[start : start + self.batch_size], params,
                                            json_prefix(json_schema)))
        return out

    def _generate_batch(self, batch: list[Conversation], params: GenerationParams,
                        prefix: str = "") -> list[Completion]:
        """``prefix`` pre-fills the answer (``{`` when JSON is asked for), so a small model
        starts inside the JSON value instead of writing prose or code around it."""
        import torch

        prompts = [_chat_prompt(self.tokenizer, c) + prefix for c in batch]
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True,
                                add_special_tokens=False).to(self.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if not prefix:  # free text; a JSON answer (prefix "{") must be free to repeat tokens
            sampling.update(self.free_text_kwargs)
            penalty = sampling.pop("repetition_penalty", 1.0)
            if penalty != 1.0:
                from transformers import LogitsProcessorList

                sampling["logits_processor"] = LogitsProcessorList(
                    [AnswerRepetitionPenalty(penalty, inputs["input_ids"].shape[1])])
        if params.temperature > 0:
            sampling.update({"do_sample": True, "temperature": params.temperature, "top_p": 1.0})
            if params.seed is not None:
                torch.manual_seed(params.seed)
        if params.stop:  # end each row at its stop string (the batch ends when all have)
            sampling.update({"stop_strings": list(params.stop), "tokenizer": self.tokenizer})
        started = time.perf_counter()
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs,
                max_new_tokens=params.max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        elapsed = time.perf_counter() - started
        prompt_width = inputs["input_ids"].shape[1]
        completions = []
        eos = self.tokenizer.eos_token_id
        for row, mask in zip(generated, inputs["attention_mask"], strict=True):
            new = row[prompt_width:].tolist()
            n_new = next((i for i, t in enumerate(new) if t in (eos, self.tokenizer.pad_token_id)),
                         len(new))
            text = self.tokenizer.decode(new[:n_new], skip_special_tokens=True)
            finish = "stop" if n_new < len(new) else "length"
            text, stopped = truncate_at_stop(prefix + text, params.stop)
            completions.append(Completion(
                text=text.strip(),
                prompt_tokens=int(mask.sum()),
                completion_tokens=n_new + (1 if n_new < len(new) else 0),
                model=self.model_id,
                finish_reason="stop" if stopped else finish,
                seconds=elapsed / len(batch),
            ))
        return completions


class AnswerRepetitionPenalty:
    """CTRL's repetition penalty over the *answer's* tokens only: a token already generated has
    its logit divided by ``penalty`` (multiplied when negative). HF's ``repetition_penalty`` also
    penalises every prompt token, which made SmolLM2 avoid the prompt's common words and glue
    words together ("AMemmabookOfFunnily...") once a previous version was in the prompt."""

    def __init__(self, penalty: float, prompt_width: int) -> None:
        self.penalty, self.prompt_width = penalty, prompt_width

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        answer = input_ids[:, self.prompt_width:]
        if answer.shape[1] == 0:
            return scores
        seen = scores.gather(1, answer)
        seen = seen.where(seen < 0, seen / self.penalty).where(seen >= 0, seen * self.penalty)
        return scores.scatter(1, answer, seen)


def _chat_prompt(tokenizer: Any, conversation: Conversation) -> str:
    """The chat-formatted prompt; a final assistant message is continued, not closed."""
    messages = text_messages(conversation)
    if messages[-1]["role"] == "assistant":
        return tokenizer.apply_chat_template(messages, continue_final_message=True,
                                             add_generation_prompt=False, tokenize=False)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _gguf_cache_name(gguf_path: Path) -> str:
    stat = gguf_path.stat()
    digest = hashlib.sha256(f"{gguf_path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return f"{gguf_path.stem}-{digest.hexdigest()[:12]}"


def _save_dequantised(model: Any, tokenizer: Any, target: Path) -> None:
    """Save float weights + tokenizer atomically (a staged directory put in place whole; one
    another process put there first is kept)."""
    try:
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with atomic_dir(target, replace=False) as stage:
            model.save_pretrained(stage)
            tokenizer.save_pretrained(stage)
    except OSError as exc:  # a read-only cache only costs speed next time
        log.warning("could not cache dequantised weights in %s: %s", target, exc)
