"""OpenAI-compatible ingress over the role deployments: ``/v1/models``, ``/v1/chat/completions``,
``/v1/embeddings``, so the official ``openai`` client (and TailorMind's own ``openai`` backend) can
use the embedded models through Serve exactly as they use vLLM in production.

Errors use OpenAI's shape, ``{"error": {"message", "type", "code"}}``. Every route but
``/healthz`` is behind :class:`~tailormind.serve.model_key_guard.ModelKeyGuard`: with a key in
the replica's environment (``api_key_env``, else ``$TAILORMIND_MODELS_API_KEY``, else
``$TAILORMIND_API_TOKEN``) it needs ``Authorization: Bearer <key>``; without one it answers
loopback clients only.

No ``from __future__ import annotations`` here: FastAPI must see the real ``Request`` and body
types on the ingress methods, which Serve re-wraps.
"""


import base64
import time
import uuid
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from tailormind.errors import ModelError, ModelInputError
from tailormind.serve import model_key_guard
from tailormind.serve.openai_protocol import (
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorBody,
    ModelCard,
    ModelList,
    Usage,
)

app = FastAPI(
    title="TailorMind models (OpenAI-compatible)",
    description="The model roles of TailorMind behind OpenAI's chat, embeddings and models routes.",
    version="1",
)
app.add_middleware(model_key_guard.ModelKeyGuard)


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, ErrorBody(message=message, type=kind, code=code)


@app.exception_handler(APIError)
async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return JSONResponse({"error": exc.body.model_dump()}, status_code=exc.status)


@app.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    body = ErrorBody(message=f"{where}: {first['msg']}" if where else first["msg"],
                     type="invalid_request_error", code="invalid_request")
    return JSONResponse({"error": body.model_dump()}, status_code=422)


# Helpers come before the ingress class: `serve.ingress` serialises the app when the class is
# decorated, so names defined after it are missing in the replica (NameError).


async def _call(response: Any) -> Any:
    """Await a handle call, mapping model errors to HTTP statuses."""
    try:
        return await response
    except ModelInputError as exc:
        raise APIError(400, str(exc), "invalid_request_error", "bad_input") from exc
    except ModelError as exc:
        raise APIError(503, str(exc), "server_error", "model_unavailable") from exc




def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    return [_message(m.role, m.content) for m in messages]


def _served_list(names: dict[str, str]) -> str:
    return ", ".join(f"{n} ({r})" for r, n in names.items()) or "none"


def _embedding_data(matrix: np.ndarray, encoding: str) -> list[EmbeddingData]:
    return [EmbeddingData(index=i, embedding=_encode(row, encoding)) for i, row in enumerate(matrix)]


def _approximate_tokens(texts: list[str]) -> int:
    """The embedder does not expose token counts; whitespace words approximate them."""
    return sum(len(t.split()) for t in texts)


def _message(role: str, content: str | list[dict[str, Any]] | None) -> dict[str, Any]:
    role = "system" if role == "developer" else role
    if content is None:
        return {"role": role, "content": ""}
    if isinstance(content, str):
        return {"role": role, "content": content}
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise APIError(400, f"content part type {part.get('type')!r} is not supported by "
                           f"this text model", "invalid_request_error", "unsupported")
        texts.append(str(part.get("text", "")))
    return {"role": role, "content": "\n".join(texts)}


def _schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    return spec.get("schema")


def _encode(row: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode()
    return row.astype(float).tolist()


@serve.deployment(name="OpenAIIngress", max_ongoing_requests=128,
                  ray_actor_options={"num_cpus": 0.25})
@serve.ingress(app)
class OpenAIIngress:
    def __init__(self, handles: dict[str, DeploymentHandle], served_names: dict[str, str],
                 api_key_env: str | None = None) -> None:
        self.handles = handles
        self.names = served_names  # role -> served model name
        model_key_guard.configure(api_key_env)
        self.created = int(time.time())

    def _handle_for(self, role: str, model: str) -> DeploymentHandle:
        if role not in self.handles or self.names.get(role) != model:
            served = _served_list(self.names)
            raise APIError(404, f"model {model!r} is not served here; served: {served}",
                           "invalid_request_error", "model_not_found")
        return self.handles[role]

    @app.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", response_model=ModelList)
    async def models(self, request: Request) -> ModelList:
        cards = []
        for role, name in self.names.items():
            info = await self.handles[role].info.remote()
            cards.append(ModelCard(id=name, created=self.created, role=role,
                                   backend=info["backend"]))
        return ModelList(data=cards)

    @app.post("/v1/chat/completions", response_model=ChatCompletionResponse)
    async def chat(self, body: ChatCompletionRequest, request: Request) -> ChatCompletionResponse:
        handle = self._handle_for("text", body.model)
        if body.stream:
            raise APIError(400, "stream=true is not supported; ask without streaming",
                           "invalid_request_error", "unsupported")
        if body.n != 1:
            raise APIError(400, "only n=1 is supported", "invalid_request_error", "unsupported")
        messages = _messages(body.messages)
        params: dict[str, Any] = {"max_tokens": body.max_completion_tokens or body.max_tokens or 512,
                                  "temperature": body.temperature or 0.0,
                                  "stop": [body.stop] if isinstance(body.stop, str)
                                  else list(body.stop or []),
                                  "seed": body.seed}
        schema = _schema_of(body.response_format)
        answer = await _call(handle.chat.remote((messages, params, schema)))
        usage = Usage(prompt_tokens=answer["prompt_tokens"],
                      completion_tokens=answer["completion_tokens"],
                      total_tokens=answer["prompt_tokens"] + answer["completion_tokens"])
        return ChatCompletionResponse(
            id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model,
            choices=[ChatChoice(index=0, message=ChatChoiceMessage(content=answer["text"]),
                                finish_reason=answer["finish_reason"])],
            usage=usage,
        )

    @app.post("/v1/embeddings", response_model=EmbeddingResponse)
    async def embeddings(self, body: EmbeddingRequest, request: Request) -> EmbeddingResponse:
        handle = self._handle_for("embed", body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts:
            raise APIError(400, "input is empty", "invalid_request_error", "invalid_request")
        matrix = np.asarray(await _call(handle.embed.remote(texts)), dtype=np.float32)
        data = _embedding_data(matrix, body.encoding_format)
        words = _approximate_tokens(texts)
        return EmbeddingResponse(data=data, model=body.model,
                                 usage=Usage(prompt_tokens=words, total_tokens=words))
