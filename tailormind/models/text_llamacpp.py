"""``text`` on a GGUF model with llama.cpp (the embedded SmolLM2's default runtime).

The shipped SmolLM2 file is Q4_1. llama.cpp runs a copy of it made once under
``<cache_dir>/weights/`` (option ``weights``):

- ``f16`` (SmolLM2's default): the Q4_1 values in float16. On a fixed set of 16 prompts its
  greedy answers are identical to the transformers runtime's, which computes with the float32
  values (``tests/test_text_llamacpp.py``); decoding reads half the bytes of float32;
- ``f32``: the Q4_1 values dequantised to float32, as transformers has them;
- ``q8_0``: 8-bit, faster still, but it changes answers (5 of 16 identical: activations are
  quantised too), so it is not a default;
- ``as_shipped`` (the default of the ``llamacpp`` backend, for any GGUF): the file itself.

Decoding is :class:`~tailormind.models.llamacpp_engine.LlamaCppEngine`: the batch's shared
prompt prefix is encoded once and every sequence steps together. The chat prompt is the model's
own Jinja template (from the GGUF), rendered as transformers renders it, and the KV cache is
float32, so prompts and logits are those of the transformers runtime up to rounding.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tailormind.core.atomic import atomic_path
from tailormind.errors import ModelError, ModelInputError
from tailormind.models.backend_config import BackendOptions
from tailormind.models.llamacpp_engine import DecodeRequest, LlamaCppEngine
from tailormind.models.conversation import json_prefix, text_messages, truncate_at_stop
from tailormind.models.roles import TextModel
from tailormind.models.types import Completion, Conversation, GenerationParams

log = logging.getLogger(__name__)

WeightsFormat = Literal["f16", "f32", "q8_0", "as_shipped"]
#: Size of the weights llama.cpp holds over a Q4_1 file's size (4.5 bits per weight), by format.
WEIGHT_EXPANSION: dict[str, float] = {"f16": 3.6, "f32": 7.2, "q8_0": 1.9, "as_shipped": 1.0}


class LlamaCppOptions(BackendOptions):
    weights: WeightsFormat = "as_shipped"
    #: KV cells of each sequence: a prompt plus its answer must fit.
    context_tokens: int = 4096
    #: sequences decoded together (each reserves context_tokens KV cells up front)
    parallel_sequences: int = 8
    chat_template: str | None = None
    #: CTRL repetition penalty over the answer's tokens (free text only).
    repetition_penalty: float = 1.0
    follows_json: bool = True


class LlamaCppText(TextModel):
    """Chat completion on one GGUF file with :class:`LlamaCppEngine`."""

    def __init__(self, gguf: Path, *, weights: WeightsFormat = "as_shipped",
                 weights_cache: Path | None = None, parallel_sequences: int = 8,
                 context_tokens: int = 4096, chat_template: str | None = None,
                 repetition_penalty: float = 1.0, key: str = "models.text", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        started = time.perf_counter()
        self.key = key
        source = converted_gguf(gguf, weights, weights_cache, key)
        self.engine = LlamaCppEngine(source, n_ctx_seq=context_tokens,
                                     n_seq_max=parallel_sequences, threads=_threads(), key=key)
        self.template = chat_template or _gguf_meta(self.engine, "tokenizer.chat_template")
        if not self.template:
            raise ModelError(f"{key}: {gguf} has no chat template; set "
                             f"{key}.options.chat_template to a Jinja chat template")
        self.repetition_penalty = repetition_penalty
        self.cache_salt = {"runtime": "llamacpp", "weights": weights}
        if repetition_penalty != 1.0:
            self.cache_salt.update(repetition_penalty=repetition_penalty, penalty_scope="answer")
        self._lock = threading.Lock()  # one context: one batch at a time
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s (llama.cpp, %s) in %.1f s", self.model_id, weights, self.load_seconds)

    def _generate(self, batch: list[Conversation], params: GenerationParams,
                  json_schema: dict | None) -> list[Completion]:
        prefix = json_prefix(json_schema)
        prompts = [self.engine.tokenize(render_chat(self.template, c, self.engine) + prefix)
                   for c in batch]
        for prompt in prompts:
            if len(prompt) + params.max_tokens > self.engine.n_ctx_seq:
                raise ModelInputError(
                    f"{self.key}: a prompt of {len(prompt)} tokens plus {params.max_tokens} to "
                    f"write exceeds options.context_tokens ({self.engine.n_ctx_seq})")
        out: list[Completion] = []
        slots = self.engine.n_seq_max
        with self._lock:
            for start in range(0, len(prompts), slots):
                out.extend(self._decode_group(prompts[start : start + slots], params, prefix))
        return out

    def _decode_group(self, prompts: list[list[int]], params: GenerationParams,
                      prefix: str) -> list[Completion]:
        penalty = None
        if not prefix and self.repetition_penalty != 1.0:  # JSON may repeat tokens freely
            penalty = partial(answer_penalty, penalty=self.repetition_penalty)
        started = time.perf_counter()
        answers = self.engine.decode(DecodeRequest(
            prompts, params.max_tokens, tuple(params.stop), params.temperature, params.seed,
            penalty))
        elapsed = time.perf_counter() - started
        completions = []
        for prompt, answer in zip(prompts, answers, strict=True):
            text, stopped = truncate_at_stop(prefix + answer.text, params.stop)
            completions.append(Completion(
                text=text.strip(), prompt_tokens=len(prompt),
                completion_tokens=len(answer.tokens), model=self.model_id,
                finish_reason="stop" if stopped else answer.finish_reason,
                seconds=elapsed / len(prompts)))
        return completions


def answer_penalty(logits: np.ndarray, answer: list[int], penalty: float) -> None:
    """CTRL's repetition penalty over the answer's own tokens, in place: a token already written
    has its logit divided by ``penalty`` when positive, multiplied when negative (the numpy twin
    of :class:`~tailormind.models.text_transformers.AnswerRepetitionPenalty`)."""
    seen = np.unique(np.asarray(answer, dtype=np.int64))
    values = logits[seen]
    logits[seen] = np.where(values < 0, values * penalty, values / penalty)


def render_chat(template: str, conversation: Conversation, engine: LlamaCppEngine) -> str:
    """The chat-formatted prompt as transformers' ``apply_chat_template`` makes it: a final
    assistant message is continued (the text is cut right after its content), else the
    generation prompt is added."""
    messages = text_messages(conversation)
    continuing = messages[-1]["role"] == "assistant"
    rendered = _jinja(template).render(
        messages=messages, add_generation_prompt=not continuing,
        bos_token=engine.token_text(engine.lib.llama_vocab_bos(engine.vocab)),
        eos_token=engine.token_text(engine.lib.llama_vocab_eos(engine.vocab)))
    if continuing:
        final = messages[-1]["content"].strip()
        if final not in rendered:
            raise ModelError("the chat template dropped the continued assistant message")
        rendered = rendered[: rendered.rindex(final) + len(final)]
    return rendered


_TEMPLATES: dict[str, Any] = {}


def _jinja(template: str) -> Any:
    """The compiled template, in a sandbox as transformers uses (``raise_exception`` too)."""
    if template not in _TEMPLATES:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                           extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = raise_exception
        _TEMPLATES[template] = env.from_string(template)
    return _TEMPLATES[template]


def converted_gguf(gguf: Path, weights: WeightsFormat, cache: Path | None, key: str) -> Path:
    """The GGUF to load: ``gguf`` itself (``as_shipped``), else its copy in ``weights`` under
    ``cache``, written once, all or nothing (a killed conversion leaves no half file)."""
    if not gguf.is_file():
        raise ModelError(f"{key}: GGUF file {gguf} does not exist")
    if weights == "as_shipped" or cache is None:
        return gguf
    import llama_cpp as lib

    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    target = cache / f"{gguf.stem}-{digest.hexdigest()[:12]}-{weights}.gguf"
    if target.is_file():
        return target
    params = lib.llama_model_quantize_default_params()
    params.ftype = {"f16": lib.LLAMA_FTYPE_MOSTLY_F16, "f32": lib.LLAMA_FTYPE_ALL_F32,
                    "q8_0": lib.LLAMA_FTYPE_MOSTLY_Q8_0}[weights]
    params.allow_requantize, params.nthread = True, _threads()
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".gguf") as partial:
        if lib.llama_model_quantize(str(gguf).encode(), str(partial).encode(),
                                    ctypes.byref(params)):
            raise ModelError(f"{key}: llama.cpp could not convert {gguf} to {weights}")
    return target


def _gguf_meta(engine: LlamaCppEngine, name: str) -> str:
    """A string from the GGUF's metadata, ``""`` when absent."""
    size = 1 << 16
    buffer = ctypes.create_string_buffer(size)
    n = engine.lib.llama_model_meta_val_str(engine.model, name.encode(), buffer, size)
    return buffer.value.decode("utf-8") if n >= 0 else ""


def _threads() -> int:
    """Ray sets ``OMP_NUM_THREADS`` to an actor's CPUs; else every CPU this process may use."""
    return int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
