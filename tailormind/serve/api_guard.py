"""ASGI middleware in front of every API route: bearer-token auth and the request-body limit.

- With a token (``api.token`` or ``$TAILORMIND_API_TOKEN``), every route but the health routes
  and the OpenAPI docs needs ``Authorization: Bearer <token>`` (compared in constant time): 401.
- Without one, only loopback clients are answered (403 for others), and only when the ``Host``
  header names loopback (or a host in ``api.allowed_hosts``): a page on another site that
  rebinds its DNS name to 127.0.0.1 is refused (403). ``tailormind serve`` also binds 127.0.0.1
  and says so at start-up.
- A POST, PUT or PATCH must say ``Content-Type: application/json`` (415 otherwise), so a
  cross-site HTML form (which can only send form or text bodies) never reaches a route.
- The rating page under ``/api/rate`` (:mod:`tailormind.serve.rating_app`) authenticates its
  own routes: a browser cannot send a bearer header on a page load, so the page asks for the
  token once and gets a signed rater session cookie; every data route there needs that cookie.
  The loopback, ``Host``, JSON and body-size checks above apply to it as to every route.
- Every response carries ``X-Content-Type-Options: nosniff``.
- A body over ``api.max_body_bytes`` gets 413, whether it announces its length or is chunked
  (the body is read, at most one byte over the limit, then replayed to the route).

The settings live in a process-wide :data:`GUARD`, set by the ingress replica's ``__init__``:
Serve ships the FastAPI app to the replica as a copy, so state set on ``app`` would not be seen.
Until the replica has set them, requests get 503.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Paths answered without a token (the health checks and the API's own description).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc",
                          "/openapi.json"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Routes that check the token themselves (the rating page's session cookie).
OWN_AUTH_PREFIX = "/api/rate"


def own_auth(path: str) -> bool:
    return path == OWN_AUTH_PREFIX or path.startswith(OWN_AUTH_PREFIX + "/")


@dataclass
class GuardSettings:
    token: str | None = None
    max_body_bytes: int = 1_048_576
    allowed_hosts: tuple[str, ...] = ()
    served_by: str = ""
    configured: bool = False


GUARD = GuardSettings()


def configure(token: str | None, max_body_bytes: int, allowed_hosts: Sequence[str] = (),
              served_by: str = "") -> None:
    """``served_by`` (the replica) goes out as ``X-Served-By`` on routes behind the auth check."""
    GUARD.token, GUARD.max_body_bytes, GUARD.served_by = token, max_body_bytes, served_by
    GUARD.allowed_hosts = tuple(h.lower() for h in allowed_hosts)
    GUARD.configured = True


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def token_matches(header: str, token: str) -> bool:
    supplied = header[7:] if header[:7].lower() == "bearer " else ""
    return hmac.compare_digest(supplied.encode(), token.encode())


async def _reply(send: Any, status: int, code: str, message: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _route_path(scope: dict[str, Any]) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/"


def _with_header(send: Any, name: bytes, value: str) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", []) if h[0].lower() != name]
            message = {**message, "headers": [*headers, (name, value.encode("latin-1"))]}
        await send(message)

    return wrapped


class Guard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._guarded(scope, receive, _with_header(send, b"x-content-type-options",
                                                         "nosniff"))

    async def _guarded(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not GUARD.configured:
            await _reply(send, 503, "starting", "the API replica is starting",
                         [(b"retry-after", b"1")])
            return
        path = _route_path(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path not in PUBLIC_PATHS:
            client = (scope.get("client") or ("", 0))[0]
            if GUARD.token is None and not is_loopback(client):
                await _reply(send, 403, "loopback_only",
                             "no API token is configured, so this server answers local clients "
                             "only; set api.token or TAILORMIND_API_TOKEN")
                return
            host = host_name(headers.get("host", ""))
            if GUARD.token is None and not (is_loopback(host) or host in GUARD.allowed_hosts):
                await _reply(send, 403, "bad_host",
                             f"Host {host!r} is not loopback: without an API token this server "
                             f"answers for localhost only (api.allowed_hosts adds names)")
                return
            if GUARD.token is not None and not own_auth(path) \
                    and not token_matches(headers.get("authorization", ""), GUARD.token):
                await _reply(send, 401, "unauthorized", "missing or wrong bearer token",
                             [(b"www-authenticate", b"Bearer")])
                return
            if GUARD.served_by:
                send = _with_header(send, b"x-served-by", GUARD.served_by)
        if scope.get("method") in BODY_METHODS:
            if not is_json(headers.get("content-type", "")):
                await _reply(send, 415, "unsupported_media_type",
                             "send the body as JSON with Content-Type: application/json")
                return
            limit = GUARD.max_body_bytes
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _reply(send, 413, "too_large", f"request body is over {limit} bytes")
                return
            body, more = bytearray(), True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    await _reply(send, 413, "too_large", f"request body is over {limit} bytes")
                    return
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)
