"""The blind rating page (``tailormind bench rate``; ``/api/rate`` on the API) and its JSON API.

Routes, relative to where the app is mounted (``/api/rate``):

- ``GET /``, ``GET /rate.js``, ``GET /rate.css``  the page (no data in it: a login form until
  the browser has a rater session); ``POST /session`` ``{"rater", "token"}`` starts a session
  (the API token is required when one is configured; 401 otherwise) and sets the rater cookie
  (:mod:`tailormind.serve.rater_session`: HttpOnly, SameSite=Strict); ``DELETE /session`` ends it.
- With a session: ``GET /queue`` (the rater's items in their seeded order, each with the
  rater's current rating), ``GET /items/{id}`` (one post as the rater sees it: no method, user
  or path), ``GET /items/{id}/media/{n}`` (its image or video), ``PUT /ratings/{id}`` (store or
  replace the rater's rating; ``{"novelty": 1–5, "aesthetic": 1–5, "hallucination": 0|1,
  "comment"}``).

Every data route answers 401 without a valid session. Errors are ``{"error": {"code",
"message"}}``. Handlers are plain functions: FastAPI runs them in its thread pool, so SQLite and
file reads never block the event loop. The page loads nothing from another origin (its CSP says
``default-src 'self'``) and writes post text with ``textContent`` only.
"""

from __future__ import annotations

import hmac
import mimetypes
import threading
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.rating_set import RatingSet, load_rating_set
from tailormind.bench.report import REPORT_JSON
from tailormind.bench.ratings import MAX_COMMENT_CHARS, RatingStore, valid_rater
from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError, CorruptFileError, WorkspaceError
from tailormind.serve import rater_session

PREFIX = "/api/rate"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; media-src 'self'; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                               "form-action 'none'; base-uri 'none'",
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
MEDIA_HEADERS = {"Content-Security-Policy": "sandbox; default-src 'none'",
                 "Cache-Control": "private, max-age=3600"}


class SessionRequest(BaseModel):
    rater: str = Field(max_length=200)
    token: str = Field("", max_length=4096)


class RatingRequest(BaseModel):
    novelty: Any = None
    aesthetic: Any = None
    hallucination: Any = None
    comment: str = Field("", max_length=MAX_COMMENT_CHARS)


class RatingError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class RatingService:
    """The workspace's ratings store, its rating set (loaded on first use) and the session key."""

    def __init__(self, workspace: Workspace, settings: Settings, token: str | None) -> None:
        self.workspace, self.settings, self.token = workspace, settings, token
        self._set: RatingSet | None = None
        self._stamp: int | None = None  # the report's mtime when the set was read
        self._lock = threading.Lock()

    @cached_property
    def store(self) -> RatingStore:
        """Opened (and created) on first use, not when an API replica starts."""
        return RatingStore.of(self.workspace.root / BENCH_DIR)

    @cached_property
    def key(self) -> bytes:
        return rater_session.session_key(self.store.secret(), self.token)

    def rating_set(self) -> RatingSet:
        """The posts of the current bench report (read again when ``bench run`` rewrote it)."""
        report = self.workspace.root / BENCH_DIR / REPORT_JSON
        with self._lock:
            stamp = report.stat().st_mtime_ns if report.is_file() else None
            if self._set is None or stamp != self._stamp:
                try:
                    self._set = load_rating_set(self.workspace, self.settings,
                                                self.store.secret())
                except (WorkspaceError, CorruptFileError) as exc:
                    raise RatingError(404, "no_bench_report", str(exc)) from None
                self._stamp = stamp
            return self._set

    def rater(self, request: Request) -> str:
        rater = rater_session.verify(self.key, request.cookies.get(rater_session.COOKIE))
        if rater is None:
            raise RatingError(401, "no_session", "sign in with your rater name first")
        return rater

    def item(self, item_id: str) -> Any:
        found = self.rating_set().items.get(item_id)
        if found is None:
            raise RatingError(404, "unknown_item", f"no item {item_id!r} to rate")
        return found

    def queue(self, rater: str) -> dict[str, Any]:
        ratings = {r.item_id: r for r in self.store.ratings(rater)}
        order = self.rating_set().order(rater)
        items = [{"item_id": i, "rating": _scores(ratings.get(i))} for i in order]
        return {"rater": rater, "total": len(order),
                "done": sum(1 for i in order if i in ratings), "items": items}


def _scores(rating: Any) -> dict[str, Any] | None:
    if rating is None:
        return None
    return {"novelty": rating.novelty, "aesthetic": rating.aesthetic,
            "hallucination": rating.hallucination, "comment": rating.comment,
            "revisions": rating.revisions}


def _static(name: str) -> str:
    return resources.files("tailormind.serve").joinpath("html", name).read_text(encoding="utf-8")


def _cookie_path(request: Request) -> str:
    return (request.scope.get("root_path", "").rstrip("/") or "") + "/"


def _page_routes(app: FastAPI, service: RatingService) -> None:
    """The page, its script and style, and signing in and out (no session needed)."""

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        if not request.url.path.endswith("/"):
            return RedirectResponse(request.url.path + "/")
        html = _static("rate.html").replace(
            "{{TOKEN_REQUIRED}}", "true" if service.token else "false")
        return Response(html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @app.get("/rate.js", include_in_schema=False)
    def script() -> Response:
        return Response(_static("rate.js"), media_type="text/javascript; charset=utf-8",
                        headers=PAGE_HEADERS)

    @app.get("/rate.css", include_in_schema=False)
    def style() -> Response:
        return Response(_static("rate.css"), media_type="text/css; charset=utf-8",
                        headers=PAGE_HEADERS)

    @app.post("/session")
    def start_session(body: SessionRequest, request: Request) -> JSONResponse:
        if service.token is not None and not hmac.compare_digest(body.token.encode(),
                                                                 service.token.encode()):
            raise RatingError(401, "unauthorized", "wrong access token")
        try:
            rater = valid_rater(body.rater)
        except ConfigError as exc:
            raise RatingError(422, "invalid_rater", str(exc)) from None
        reply = JSONResponse({"rater": rater})
        reply.set_cookie(rater_session.COOKIE, rater_session.sign(service.key, rater),
                         max_age=rater_session.MAX_AGE_S, path=_cookie_path(request),
                         httponly=True, samesite="strict",
                         secure=request.url.scheme == "https")
        return reply

    @app.delete("/session")
    def end_session(request: Request) -> JSONResponse:
        reply = JSONResponse({"rater": None})
        reply.delete_cookie(rater_session.COOKIE, path=_cookie_path(request))
        return reply


def _data_routes(app: FastAPI, service: RatingService) -> None:
    """The rater's queue, items, media and ratings (each needs a rater session)."""

    @app.get("/queue")
    def queue(request: Request) -> dict[str, Any]:
        return service.queue(service.rater(request))

    @app.get("/items/{item_id}")
    def item(item_id: str, request: Request) -> dict[str, Any]:
        rater = service.rater(request)
        found = service.item(item_id)
        mine = next((r for r in service.store.ratings(rater) if r.item_id == item_id), None)
        return {**found.for_rater(), "rating": _scores(mine)}

    @app.get("/items/{item_id}/media/{number}")
    def media(item_id: str, number: int, request: Request) -> FileResponse:
        service.rater(request)
        files = service.item(item_id).media
        if not 0 <= number < len(files) or not Path(files[number].path).is_file():
            raise RatingError(404, "unknown_file", f"item {item_id} has no media {number}")
        path = files[number].path
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=kind, headers=MEDIA_HEADERS)

    @app.put("/ratings/{item_id}")
    def rate(item_id: str, body: RatingRequest, request: Request) -> dict[str, Any]:
        rater = service.rater(request)
        found = service.item(item_id)
        try:
            saved = service.store.save(rater, item_id, found.method, found.user_id,
                                       novelty=body.novelty, aesthetic=body.aesthetic,
                                       hallucination=body.hallucination, comment=body.comment)
        except ConfigError as exc:
            raise RatingError(422, "invalid_rating", str(exc)) from None
        progress = service.queue(rater)
        return {"rating": _scores(saved), "done": progress["done"], "total": progress["total"]}


def rating_app(workspace: Workspace, settings: Settings, token: str | None) -> FastAPI:
    """The page and its API over ``workspace`` (``token``: the API token, or None)."""
    app = FastAPI(title="TailorBench rating", docs_url=None, redoc_url=None, openapi_url=None)
    service = RatingService(workspace, settings, token)

    @app.exception_handler(RatingError)
    async def _rating_error(_: Request, exc: RatingError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return _error(422, "invalid_request", f"{where}: {first['msg']}" if where
                      else first["msg"])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "not_found" if exc.status_code == 404 else "http_error",
                      str(exc.detail))

    _page_routes(app, service)
    _data_routes(app, service)
    return app


class MountedRatingApp:
    """The rating app as the API mounts it: configured by the ingress replica (Serve ships the
    API's FastAPI app to the replica as a copy, so the configured app lives in this module)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if _MOUNTED["app"] is None:
            response = _error(503, "starting", "the rating page is starting")
            await response(scope, receive, send)
            return
        await _MOUNTED["app"](scope, receive, send)


_MOUNTED: dict[str, FastAPI | None] = {"app": None}


def configure_mounted(workspace: Workspace, settings: Settings, token: str | None) -> None:
    _MOUNTED["app"] = rating_app(workspace, settings, token)
