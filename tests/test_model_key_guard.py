"""The key check in front of the model routes (``/models/v1/*``, and vLLM's ``/llm/v1/*`` through
``llm_app``), as ASGI: which variable holds the key, 401 without it, loopback only without any
key (client address and Host header), ``/healthz`` always open."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tailormind.serve import model_key_guard
from tailormind.serve.llm_app import LLM_KEY_ENV, key_envs, serving_args
from tailormind.serve.model_key_guard import ModelKeyGuard, resolve_key

KEYS = ("TAILORMIND_MODELS_API_KEY", "TAILORMIND_API_TOKEN", "TAILORMIND_LLM_API_KEY",
        "CUSTOM_KEY")


async def _ok(_):
    return JSONResponse({"ok": True})


def _call(client_host: str, path: str, headers: dict[str, str], host: str = "localhost",
          key_envs: tuple[str, ...] | None = None) -> httpx.Response:
    app = Starlette(routes=[Route("/v1/chat/completions", _ok, methods=["POST"]),
                            Route("/healthz", _ok)])
    app.add_middleware(ModelKeyGuard, key_envs=key_envs)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_host, 5555))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            if path == "/healthz":
                return await client.get(path, headers=headers)
            return await client.post(path, headers=headers, json={})

    return asyncio.run(call())


@pytest.fixture
def environ(monkeypatch):
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(model_key_guard.CONFIGURED, "key_envs", model_key_guard.DEFAULT_KEY_ENVS)
    return monkeypatch


@pytest.mark.parametrize(("env", "headers", "status"), [
    ({"TAILORMIND_API_TOKEN": "api"}, {}, 401),  # only the API token set: it guards the models
    ({"TAILORMIND_API_TOKEN": "api"}, {"Authorization": "Bearer api"}, 200),
    ({"TAILORMIND_MODELS_API_KEY": "m", "TAILORMIND_API_TOKEN": "api"},
     {"Authorization": "Bearer api"}, 401),  # a models key of its own wins
    ({"TAILORMIND_MODELS_API_KEY": "m"}, {"Authorization": "Bearer m"}, 200),
    ({"TAILORMIND_MODELS_API_KEY": "m"}, {"Authorization": "Bearer mm"}, 401),
    ({"TAILORMIND_MODELS_API_KEY": "m"}, {"Authorization": "m"}, 401),
])
def test_a_key_is_needed_from_anywhere(environ, env, headers, status) -> None:
    for name, value in env.items():
        environ.setenv(name, value)
    for client in ("127.0.0.1", "10.0.0.7"):
        answer = _call(client, "/v1/chat/completions", headers)
        assert answer.status_code == status, (client, answer.text)
        if status == 401:
            assert answer.json()["error"]["code"] == "invalid_api_key"
            assert answer.headers["www-authenticate"] == "Bearer"
    assert _call("10.0.0.7", "/healthz", {}).status_code == 200


@pytest.mark.parametrize(("client", "host", "status"), [
    ("127.0.0.1", "localhost:8000", 200),
    ("::1", "[::1]:8000", 200),
    ("10.0.0.7", "localhost", 403),  # a remote client
    ("127.0.0.1", "rebound.example", 403),  # DNS rebinding: a loopback connection, foreign Host
])
def test_without_a_key_loopback_only(environ, client, host, status) -> None:
    answer = _call(client, "/v1/chat/completions", {}, host=host)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert answer.json()["error"]["code"] == "loopback_only"


def test_the_replica_names_its_key_variable(environ) -> None:
    model_key_guard.configure("CUSTOM_KEY")
    environ.setenv("CUSTOM_KEY", "c")
    environ.setenv("TAILORMIND_API_TOKEN", "api")
    assert _call("10.0.0.7", "/v1/chat/completions",
                 {"Authorization": "Bearer c"}).status_code == 200
    assert _call("10.0.0.7", "/v1/chat/completions",
                 {"Authorization": "Bearer api"}).status_code == 401
    assert resolve_key(("A", "B"), {"A": "", "B": "b"}) == "b"
    assert resolve_key(("A",), {}) is None


def test_llm_app_reads_its_own_key_first_and_passes_the_rest_to_ray() -> None:
    assert key_envs({}) == (LLM_KEY_ENV, "TAILORMIND_MODELS_API_KEY", "TAILORMIND_API_TOKEN")
    assert key_envs({"api_key_env": "X"})[0] == "X"
    assert serving_args({"api_key_env": "X", "llm_configs": []}) == {"llm_configs": []}
