"""ASGI middleware in front of the model routes on the HTTP port (``/models/v1/*`` of
``tailormind-models``, ``/llm/v1/*`` of the vLLM app in ``gpu.yaml``).

The key is read from the replica's environment on every request: the first non-empty variable
of ``key_envs`` (by default ``$TAILORMIND_MODELS_API_KEY``, then ``$TAILORMIND_API_TOKEN``, so a
service deployed with only the API token protects its model routes with the same token).

- With a key, every path but ``/healthz`` needs ``Authorization: Bearer <key>`` (constant-time
  comparison): 401 in OpenAI's error shape otherwise.
- Without one, only loopback clients whose ``Host`` header names loopback are answered (403),
  as the API does without a token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from tailormind.config import API_TOKEN_ENV
from tailormind.serve.api_guard import host_name, is_loopback, token_matches

MODELS_KEY_ENV = "TAILORMIND_MODELS_API_KEY"
DEFAULT_KEY_ENVS = (MODELS_KEY_ENV, API_TOKEN_ENV)
PUBLIC_PATHS = frozenset({"/healthz"})
#: What a guard built without ``key_envs`` reads: set by the replica (``configure``), since Serve
#: ships the FastAPI app (and its middleware list) to the replica as a copy.
CONFIGURED: dict[str, tuple[str, ...]] = {"key_envs": DEFAULT_KEY_ENVS}


def configure(api_key_env: str | None) -> None:
    """The replica's key variable first, then the defaults."""
    names = [api_key_env] if api_key_env else []
    CONFIGURED["key_envs"] = tuple(dict.fromkeys([*names, *DEFAULT_KEY_ENVS]))


def resolve_key(key_envs: Sequence[str], environ: dict[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in key_envs if environ.get(name)), None)


async def _refuse(send: Any, status: int, message: str, kind: str, code: str) -> None:
    body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_path(scope: dict[str, Any]) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return (path[len(root):] if root and path.startswith(root) else path) or "/"


class ModelKeyGuard:
    def __init__(self, app: Any, key_envs: Sequence[str] | None = None) -> None:
        self.app, self._key_envs = app, None if key_envs is None else tuple(key_envs)

    @property
    def key_envs(self) -> tuple[str, ...]:
        return self._key_envs or CONFIGURED["key_envs"]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _route_path(scope) in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = resolve_key(self.key_envs)
        if key is None:
            client = (scope.get("client") or ("", 0))[0]
            if not (is_loopback(client) and is_loopback(host_name(headers.get("host", "")))):
                await _refuse(send, 403, f"no API key is set ({' / '.join(self.key_envs)}), so "
                              f"the model routes answer local clients only",
                              "permission_error", "loopback_only")
                return
        elif not token_matches(headers.get("authorization", ""), key):
            await _refuse(send, 401, "missing or wrong API key", "authentication_error",
                          "invalid_api_key")
            return
        await self.app(scope, receive, send)
