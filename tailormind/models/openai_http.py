"""``text``, ``embed`` and ``describe`` over any OpenAI-compatible HTTP server.

vLLM, Ray Serve LLM, or this project's own Serve deployment (``tailormind/serve/openai_app.py``).
Requests run ``concurrency`` at a time; a timeout, a connection error, 429 or 5xx is retried
``max_retries`` times with exponential backoff (0.5 s, 1 s, 2 s, ...), then raised as one
:class:`~tailormind.errors.ModelError` naming the URL and the last status. Images travel as base64
``image_url`` content parts (the OpenAI vision format vLLM accepts).
"""

from __future__ import annotations

import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tailormind.errors import ConfigError, ModelError
from tailormind.models.backend_config import BackendOptions
from tailormind.models.images import png_bytes
from tailormind.models.roles import Describer, Embedder, TextModel
from tailormind.models.types import Completion, Conversation, GenerationParams

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
BACKOFF_S = 0.5


class OpenAIOptions(BackendOptions):
    #: Send ``response_format: json_schema`` when a schema is asked for (vLLM guided decoding).
    structured_output: bool = True
    #: Embedding width, if known (else learnt from the first answer).
    dim: int | None = None
    #: Extra fields merged into every request body (e.g. vLLM sampling extras).
    extra_body: dict[str, Any] = {}


class OpenAIClient:
    """POST JSON to ``base_url + path`` with auth, timeout, retries and a concurrency limit."""

    def __init__(self, base_url: str, *, api_key: str | None, timeout_s: float, max_retries: int,
                 concurrency: int, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.key = key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers,
                                 timeout=httpx.Timeout(timeout_s),
                                 limits=httpx.Limits(max_connections=concurrency))
        self.retries_done = 0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries_done += 1
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                response = self.http.post(path, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.http.timeout.read} s"
                continue
            except httpx.TransportError as exc:
                last = f"cannot connect ({exc})"
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}: {_error_text(response)}"
                continue
            if response.status_code >= 400:
                raise ModelError(f"{self.key}: {url} answered HTTP {response.status_code}: "
                                 f"{_error_text(response)}")
            try:
                return response.json()
            except ValueError as exc:
                raise ModelError(f"{self.key}: {url} answered with a body that is not JSON") from exc
        raise ModelError(f"{self.key}: {url} failed after {self.max_retries + 1} attempts: {last}")

    def map(self, path: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST every body, ``concurrency`` at a time; results in order."""
        if len(bodies) <= 1:
            return [self.post(path, body) for body in bodies]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies))) as pool:
            return list(pool.map(lambda body: self.post(path, body), bodies))


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            error = body.get("error", body.get("detail", body))
            if isinstance(error, dict):
                error = error.get("message", error)
            return str(error)[:300]
    except ValueError:
        pass
    return response.text[:300]


def make_client(config: Any, key: str) -> OpenAIClient:
    """An :class:`OpenAIClient` from a role's config block (``base_url``, ``api_key_env``...)."""
    if not config.base_url:
        raise ConfigError(f"{key}.base_url: the openai backend needs the server's URL, "
                          f"e.g. http://127.0.0.1:8000/v1")
    if not config.model:
        raise ConfigError(f"{key}.model: the openai backend needs the served model's name")
    api_key = None
    if config.api_key_env:
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            raise ConfigError(f"{key}.api_key_env: environment variable {config.api_key_env} "
                              f"is not set")
    return OpenAIClient(config.base_url, api_key=api_key, timeout_s=config.timeout_s,
                        max_retries=config.max_retries, concurrency=config.concurrency, key=key)


def image_part(image: Image.Image) -> dict[str, Any]:
    """A PNG data-URL content part."""
    data = base64.b64encode(png_bytes(image)).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def wire_messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Our messages in OpenAI wire format (images become base64 ``image_url`` parts)."""
    out = []
    for message in conversation:
        content = message["content"]
        if isinstance(content, list):
            content = [image_part(part["image"]) if part.get("type") == "image" else part
                       for part in content]
        out.append({"role": message["role"], "content": content})
    return out


def _chat_body(model: str, messages: list[dict[str, Any]], params: GenerationParams,
               extra: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages,
                            "max_tokens": params.max_tokens, "temperature": params.temperature}
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    if messages and messages[-1]["role"] == "assistant":
        # continue the pre-filled answer (vLLM's chat-template options; see TextModel)
        body["continue_final_message"], body["add_generation_prompt"] = True, False
    body.update(extra)
    return body


def _completion(answer: dict[str, Any], model: str, key: str) -> Completion:
    try:
        choice = answer["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"{key}: the server's answer has no choices[0].message.content") from exc
    usage = answer.get("usage") or {}
    return Completion(text=text.strip(), prompt_tokens=int(usage.get("prompt_tokens", 0)),
                      completion_tokens=int(usage.get("completion_tokens", 0)),
                      model=answer.get("model", model),
                      finish_reason=choice.get("finish_reason") or "stop")


class OpenAIText(TextModel):
    def __init__(self, client: OpenAIClient, model: str, options: OpenAIOptions,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client, self.model, self.options = client, model, options

    def _generate(self, batch: list[Conversation], params: GenerationParams,
                  json_schema: dict | None) -> list[Completion]:
        extra = dict(self.options.extra_body)
        if json_schema is not None and self.options.structured_output:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "answer", "schema": json_schema}}
        bodies = [_chat_body(self.model, wire_messages(c), params, extra) for c in batch]
        answers = self.client.map("/chat/completions", bodies)
        return [_completion(a, self.model, self.client.key) for a in answers]


class OpenAIEmbedder(Embedder):
    def __init__(self, client: OpenAIClient, model: str, options: OpenAIOptions,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client, self.model = client, model
        self._dim = options.dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._encode(["dimension probe"]).shape[1])
        return self._dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        answer = self.client.post("/embeddings", {"model": self.model, "input": texts})
        try:
            rows = sorted(answer["data"], key=lambda row: row["index"])
            matrix = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{self.client.key}: the embeddings answer is malformed") from exc
        if matrix.shape[0] != len(texts):
            raise ModelError(f"{self.client.key}: asked for {len(texts)} embeddings, got "
                             f"{matrix.shape[0]}")
        self._dim = int(matrix.shape[1])
        return matrix


class OpenAIDescriber(Describer):
    """A VLM behind an OpenAI-compatible server: frames as image parts, then the instruction."""

    def __init__(self, client: OpenAIClient, model: str, options: OpenAIOptions,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client, self.model, self.options = client, model, options

    def _describe(self, images: list[Image.Image], instruction: str,
                  params: GenerationParams) -> Completion:
        content = [image_part(image) for image in images] + [{"type": "text", "text": instruction}]
        body = _chat_body(self.model, [{"role": "user", "content": content}], params,
                          dict(self.options.extra_body))
        return _completion(self.client.post("/chat/completions", body), self.model,
                           self.client.key)
