"""Batched decoding on llama.cpp that encodes no prompt token twice when it can keep it.

A batch of prompts (token lists) is decoded as parallel sequences of one llama.cpp context, each
sequence with its own KV cells:

1. a batch whose prompts share a long common prefix P (a draft's field questions over one
   context) encodes P once, in sequence 0, and copies it to the other sequences;
2. otherwise each prompt keeps what its sequence already holds from the previous call up to
   their common prefix (a field question after the draft's context was encoded; the system
   prompt of a user's next profiling step) and encodes only the rest;
3. each prompt's remaining tokens are encoded, with logits for its last token only; then each
   step appends one token per unfinished sequence, all in one ``llama_decode``: 8 sequences step
   in about 3x the time of one.

The next token is the argmax (``temperature == 0``) or a sample from ``softmax(logits / T)``,
after an optional repetition penalty over the answer's own tokens. A sequence ends at an
end-of-generation token, after ``max_tokens`` tokens, or once its text contains a stop string.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailormind.errors import ModelError

#: ``penalise(logits, answer_tokens)`` edits a row of logits in place before the next token.
Penalty = Callable[[np.ndarray, list[int]], None]


@dataclass
class Decoded:
    """One sequence's answer: its tokens (an end token included), text, and why it ended."""

    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "length"  # "stop": an end token or a stop string


@dataclass
class DecodeRequest:
    """What to decode for a batch: prompt tokens per sequence and the decoding rules."""

    prompts: Sequence[list[int]]
    max_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int | None = None
    penalty: Penalty | None = None


_LOG_CALLBACK: list = []  # keeps the ctypes callback alive while llama.cpp may call it
_LOG = logging.getLogger("tailormind.models.llamacpp")


def _route_logs(lib: Any) -> None:
    """llama.cpp's own log (loader tables, per-context notes) goes to Python logging: warnings
    and errors (ggml levels 3 and 4) as warnings, the rest at debug level, instead of to stderr."""
    if _LOG_CALLBACK:
        return

    def forward(level: int, text: bytes, _user: Any) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        # positions count per sequence, so a context larger than the trained one is not a risk
        warn = level in (3, 4) and "training context overflow" not in message
        if message:
            _LOG.log(logging.WARNING if warn else logging.DEBUG, "%s", message)

    callback = lib.llama_log_callback(forward)
    _LOG_CALLBACK.append(callback)
    lib.llama_log_set(callback, ctypes.c_void_p(0))


#: A batch whose prompts share at least this many tokens encodes them once and copies them.
MIN_SHARED_PREFIX = 32


def common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the longest prefix every prompt shares."""
    first = prompts[0]
    length = min(len(p) for p in prompts)
    for prompt in prompts[1:]:
        n = 0
        while n < length and prompt[n] == first[n]:
            n += 1
        length = n
    return length


class LlamaCppEngine:
    """One GGUF model and one context of ``n_seq_max`` sequences, each with its own KV stream
    of ``n_ctx_seq`` cells (separate streams: a step's attention reads only its own sequence's
    cells; one shared stream made 16 sequences of 800 tokens 2.5x slower per step)."""

    def __init__(self, gguf: Path, *, n_ctx_seq: int = 4096, n_seq_max: int = 8,
                 threads: int | None = None, n_batch: int = 512, kv_f32: bool = False,
                 flash_attention: bool = True, key: str = "models.text") -> None:
        import llama_cpp as lib

        self.lib, self.key = lib, key
        _route_logs(lib)
        lib.llama_backend_init()
        model_params = lib.llama_model_default_params()
        self.model = lib.llama_model_load_from_file(str(gguf).encode(), model_params)
        if not self.model:
            raise ModelError(f"{key}: llama.cpp cannot load {gguf}")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = lib.llama_vocab_n_tokens(self.vocab)
        threads = threads or max(1, len(os.sched_getaffinity(0)))
        params = lib.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx_seq * n_seq_max, n_batch, n_batch
        params.n_seq_max, params.kv_unified = n_seq_max, False
        params.n_threads, params.n_threads_batch = threads, threads
        params.flash_attn_type = (lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention
                                  else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        if kv_f32:
            params.type_k = params.type_v = lib.GGML_TYPE_F32
        self.ctx = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise ModelError(f"{key}: llama.cpp cannot make a context of {n_seq_max} x "
                             f"{n_ctx_seq} tokens")
        self.memory = lib.llama_get_memory(self.ctx)
        self.n_ctx_seq, self.n_seq_max, self.n_batch = n_ctx_seq, n_seq_max, n_batch
        self.batch = lib.llama_batch_init(max(n_batch, n_seq_max), 0, 1)
        #: the tokens each sequence's KV cells hold, reused by the next call's prompts
        self.held: list[list[int]] = [[] for _ in range(n_seq_max)]
        #: tokens run through the model and seconds inside ``llama_decode`` (for benchmarks)
        self.prompt_tokens_encoded = 0
        self.decode_seconds = 0.0

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.lib.llama_model_free(self.model)
            self.ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def forget(self) -> None:
        """Empty the KV cache: the next call encodes its whole prompt (benchmarks, tests)."""
        self.lib.llama_memory_clear(self.memory, True)
        self.held = [[] for _ in range(self.n_seq_max)]

    # -- tokens ------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text``, special tokens (``<|im_start|>``) parsed, no BOS added."""
        raw = text.encode("utf-8")
        size = len(raw) + 16
        out = (self.lib.llama_token * size)()
        n = self.lib.llama_tokenize(self.vocab, raw, len(raw), out, size, False, True)
        if n < 0:
            raise ModelError(f"{self.key}: prompt of {len(raw)} bytes did not tokenize")
        return list(out[:n])

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens`` with special tokens left out (they end an answer, not part of it)."""
        if not tokens:
            return ""
        array = (self.lib.llama_token * len(tokens))(*tokens)
        size = 8 * len(tokens) + 16
        buffer = ctypes.create_string_buffer(size)
        n = self.lib.llama_detokenize(self.vocab, array, len(tokens), buffer, size, False, False)
        return buffer.raw[: max(n, 0)].decode("utf-8", errors="ignore")

    def token_text(self, token: int) -> str:
        """The vocabulary's text of one token (``<|im_end|>``); ``""`` for none (-1)."""
        if token < 0:
            return ""
        return self.lib.llama_vocab_get_text(self.vocab, token).decode("utf-8", errors="replace")

    def is_end(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token))

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, request: DecodeRequest) -> list[Decoded]:
        """Answers for ``request.prompts``: at most ``n_seq_max`` prompts, each of which fits a
        sequence's ``n_ctx_seq`` cells with its answer."""
        prompts = [list(p) for p in request.prompts]
        if not prompts or len(prompts) > self.n_seq_max:
            raise ModelError(f"{self.key}: {len(prompts)} sequences for {self.n_seq_max} slots")
        if any(not p for p in prompts):
            raise ModelError(f"{self.key}: an empty prompt")
        if max(len(p) for p in prompts) + request.max_tokens > self.n_ctx_seq:
            raise ModelError(f"{self.key}: a prompt and its answer exceed the "
                             f"{self.n_ctx_seq}-token context of a sequence")
        try:
            answers = self._decode(prompts, request)
        except BaseException:
            self.forget()  # what the sequences hold is unknown after a failure
            raise
        for seq, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            self.held[seq] = prompt + answer.tokens[:-1]  # the last token was never run
        return answers

    def _decode(self, prompts: list[list[int]], request: DecodeRequest) -> list[Decoded]:
        shared = min(common_prefix(prompts), min(len(p) for p in prompts) - 1)
        if len(prompts) > 1 and shared >= MIN_SHARED_PREFIX:
            self._share_prefix(prompts[0][:shared], len(prompts))
            starts = [shared] * len(prompts)
        else:
            starts = [self._reuse(seq, prompt) for seq, prompt in enumerate(prompts)]
        self._encode_rest(prompts, starts)
        return self._generate(request)

    def _reuse(self, seq: int, prompt: list[int]) -> int:
        """Keep what sequence ``seq`` holds up to its common prefix with ``prompt`` (at least the
        prompt's last token is encoded again, for its logits); returns where encoding starts."""
        keep = min(common_prefix([self.held[seq], prompt]), len(prompt) - 1)
        self.lib.llama_memory_seq_rm(self.memory, seq, keep, -1)
        self.held[seq] = prompt[:keep]
        return keep

    def _share_prefix(self, prefix: list[int], n: int) -> None:
        """Sequence 0 holds exactly ``prefix`` (reusing what it held); sequences 1..n-1 get a
        copy of it (a whole-sequence copy between KV streams)."""
        start = self._reuse(0, prefix + [-1])  # -1: a token no prompt has, so all of prefix fits
        self._encode_rest([prefix], [start], last_logits=False)
        for seq in range(1, n):
            self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
            self.lib.llama_memory_seq_cp(self.memory, 0, seq, -1, -1)
            self.held[seq] = list(prefix)
        self.held[0] = list(prefix)

    def _encode_rest(self, prompts: Sequence[list[int]], starts: Sequence[int], *,
                     last_logits: bool = True) -> None:
        """Encode each prompt from its start: all but the last tokens in full batches, then the
        last token of every prompt in one batch (row ``seq``) whose logits give each first answer
        token (with ``last_logits=False`` the last tokens are encoded with the rest)."""
        stop = -1 if last_logits else None
        body = [(token, pos, seq, False)
                for seq, (prompt, start) in enumerate(zip(prompts, starts, strict=True))
                for pos, token in enumerate(prompt[start:stop], start=start)]
        for first in range(0, len(body), self.n_batch):
            self._run(body[first : first + self.n_batch])
        if last_logits:
            self._run([(p[-1], len(p) - 1, seq, True) for seq, p in enumerate(prompts)])

    def _generate(self, request: DecodeRequest) -> list[Decoded]:
        """Step all unfinished sequences together until each ends."""
        rng = np.random.default_rng(request.seed)
        answers = [Decoded() for _ in request.prompts]
        positions = [len(p) for p in request.prompts]
        rows = {seq: seq for seq in range(len(request.prompts))}  # sequence -> its logits row
        while rows:
            step = []
            for seq, row in rows.items():
                token = self._next_token(row, answers[seq].tokens, request, rng)
                answers[seq].tokens.append(token)
                if not self._finished(answers[seq], token, request):
                    step.append((token, positions[seq], seq, True))
                    positions[seq] += 1
            if not step:
                break
            self._run(step)
            rows = {seq: index for index, (_, _, seq, _) in enumerate(step)}
        for answer in answers:
            if not answer.text:
                answer.text = self.detokenize(answer.tokens)
        return answers

    def _next_token(self, row: int, answer: list[int], request: DecodeRequest,
                    rng: np.random.Generator) -> int:
        pointer = self.lib.llama_get_logits_ith(self.ctx, row)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()
        if request.penalty is not None and answer:
            request.penalty(logits, answer)
        if request.temperature <= 0:
            return int(np.argmax(logits))
        scaled = (logits - logits.max()) / request.temperature
        probs = np.exp(scaled)
        return int(rng.choice(self.n_vocab, p=probs / probs.sum()))

    def _finished(self, answer: Decoded, token: int, request: DecodeRequest) -> bool:
        """Whether this token ends the answer (and why, in ``answer.finish_reason``)."""
        if self.is_end(token):
            answer.finish_reason = "stop"
            answer.text = self.detokenize(answer.tokens[:-1])
            return True
        if request.stop:
            text = self.detokenize(answer.tokens)
            if any(s in text for s in request.stop):
                answer.finish_reason, answer.text = "stop", text
                return True
        if len(answer.tokens) >= request.max_tokens:
            answer.finish_reason = "length"
            return True
        return False

    def _run(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of ``(token, position, sequence, wants logits)`` entries."""
        batch = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i], batch.pos[i] = token, pos
            batch.n_seq_id[i], batch.seq_id[i][0] = 1, seq
            batch.logits[i] = logits
        batch.n_tokens = len(entries)
        self.prompt_tokens_encoded += len(entries)
        started = time.perf_counter()
        status = self.lib.llama_decode(self.ctx, batch)
        self.decode_seconds += time.perf_counter() - started
        if status != 0:
            raise ModelError(f"{self.key}: llama_decode failed with status {status} "
                             f"({len(entries)} tokens)")
