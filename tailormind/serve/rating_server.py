"""``tailormind bench rate``: the rating page on its own small server (uvicorn), with the API's
guard in front (:mod:`tailormind.serve.api_guard`: loopback-only without a token, JSON bodies,
body limit) and the page at ``/api/rate/``, exactly where the API mounts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError
from tailormind.serve import api_guard
from tailormind.serve.rating_app import PREFIX, rating_app


def rating_server_app(workspace: Workspace, settings: Settings) -> Any:
    """``/`` redirects to the page (no token needed to be told where it is); everything else
    goes through the guard; ``/api/rate/`` is the page and its API."""
    token = settings.api.resolved_token()
    api_guard.configure(token, settings.api.max_body_bytes, settings.api.allowed_hosts)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(PREFIX, rating_app(workspace, settings, token))
    guarded = api_guard.Guard(app)
    home = RedirectResponse(PREFIX + "/")

    async def server(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in ("", "/"):
            await home(scope, receive, send)
            return
        await guarded(scope, receive, send)

    return server


def serve_rating(workspace: Workspace, settings: Settings, host: str, port: int,
                 announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted. A host other than loopback needs an API token (``api.token`` or
    ``$TAILORMIND_API_TOKEN``): without one the guard would refuse every other client anyway."""
    import uvicorn

    if settings.api.resolved_token() is None and not api_guard.is_loopback(host):
        raise ConfigError(f"serving the rating page on {host} needs an access token: set "
                          "api.token or TAILORMIND_API_TOKEN (raters type it once to sign in)")
    app = rating_server_app(workspace, settings)
    shown = f"[{host}]" if ":" in host else host
    announce(f"rating page: http://{shown}:{port}{PREFIX}/ (Ctrl+C stops; ratings are saved "
             f"in {workspace.root / 'bench' / 'ratings.sqlite'} as they are made)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
