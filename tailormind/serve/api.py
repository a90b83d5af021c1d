"""The TailorMind HTTP API: a FastAPI ingress on Ray Serve over the library's stages.

Routes (every one but ``/healthz``, ``/readyz`` and the docs needs the bearer token, see
:mod:`tailormind.serve.api_guard`):

- ``GET  /v1/users/{user_id}/profile``  the latest version of the stored profile (version,
  parent, evidence watermark, time) and every refinement iteration; ``?history=true`` adds every
  superseded version;
- ``POST /v1/profiles``                 an ad-hoc history in, a profile out (same engine as the
  batch path, on the ``ProfileWorker`` deployment; at most ``api.max_concurrent_profiles`` in
  flight per ingress replica, more get 503 + Retry-After; cancelled when the client goes away or
  after ``api.request_timeout_s``, 504);
- ``POST /v1/users/{user_id}/posts``    a post or video: 200 with the post when it is already
  bundled, else 202 with a job. Jobs live in the ``JobCoordinator`` (one replica, persisted in
  the workspace): the same request through any replica while the job is active returns that
  job; at most ``api.max_pending_jobs`` queued or running, more get 503 + Retry-After;
- ``GET  /v1/jobs/{id}``, ``DELETE /v1/jobs/{id}``  status and progress; cancel (any replica);
- ``GET  /v1/posts/{post_id}``, ``GET /v1/posts/{post_id}/media/{file}``  a bundled post and
  its files (paths never leave the bundle; sandboxed by ``MEDIA_HEADERS``);
- ``/api/rate/``  TailorBench's blind rating page (:mod:`tailormind.serve.rating_app`): the
  token once at sign-in, then a rater session cookie;
- ``GET  /v1/status`` readiness with its reasons; ``GET /healthz`` (the replica answers),
  ``GET /readyz`` (ready or not, nothing more).

The ingress never blocks its event loop: workspace reads run in threads (:mod:`api_lookup`).
Errors are ``{"error": {"code", "message"}}``. Serve's own limits sit in front: the ingress
deployment's ``max_ongoing_requests`` and ``max_queued_requests``, beyond which Serve's proxy
answers 503 with ``Retry-After`` (``backpressure_config``). Metrics: Serve's request counters and
latencies plus ``ray_tailormind_api_*`` (rejections, jobs, active work) on Ray's Prometheus
endpoint (Ray prefixes application metrics with ``ray_``).

No ``from __future__ import annotations``: FastAPI must see the real types of the route methods.
"""

import asyncio
import logging
import mimetypes
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from tailormind.errors import (
    ConfigError,
    CorruptFileError,
    NotFoundError,
    TailorMindError,
    WorkspaceError,
)
from tailormind.data.workspace import Workspace
from tailormind.generation.post_record import PostRecord
from tailormind.serve import api_guard, rating_app
from tailormind.serve.api_jobs import JOB_ID, total_steps
from tailormind.serve.api_lookup import WorkspaceView
from tailormind.serve.api_protocol import (
    AdhocProfile,
    AdhocProfileRequest,
    ErrorResponse,
    Health,
    Job,
    MediaFile,
    Post,
    PostAccepted,
    PostRequest,
    ProfileVersion,
    StoredProfile,
)

logger = logging.getLogger("ray.serve")
APP_NAME = "tailormind-api"
ERRORS = {status: {"model": ErrorResponse}
          for status in (400, 401, 403, 404, 413, 415, 422, 503, 504)}
#: Media and previews are served as files of their own type only, and a generated page runs in
#: a sandbox: no script, no form, no plugin; it may show its own images and video only.
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; "
                               "media-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}

app = FastAPI(
    title="TailorMind API",
    description="Personalized multimodal content generation: user profiles and generated posts "
                "from a TailorMind workspace. Send `Authorization: Bearer <token>`.",
    version="1",
)
app.add_middleware(api_guard.Guard)
app.mount(rating_app.PREFIX, rating_app.MountedRatingApp())


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


@app.exception_handler(APIError)
async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message, exc.headers)


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    return _error(422, "invalid_request", f"{where}: {first['msg']}" if where else first["msg"])


@app.exception_handler(StarletteHTTPException)
async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, str(exc.detail))


@app.exception_handler(Exception)
async def _internal(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error in the TailorMind API")
    return _error(500, "internal", f"internal error ({type(exc).__name__}); see the replica log")


# Helpers come before the ingress class: `serve.ingress` serialises the app when the class is
# decorated, so names defined after it are missing in the replica.


def _overloaded(what: str, limit: int, retry_after_s: int) -> APIError:
    return APIError(503, "overloaded", f"{what}: {limit} already in flight on this replica; "
                    f"retry after {retry_after_s} s", {"Retry-After": str(retry_after_s)})


def _post_of(record: PostRecord, base: str) -> Post:
    files = [MediaFile(file=i.file, url=f"{base}/media/{i.file}", kind=i.kind, caption=i.caption)
             for i in record.images]
    if record.video is not None:
        files.append(MediaFile(file=record.video.file, url=f"{base}/media/{record.video.file}",
                               kind=record.video.kind))
    return Post(post_id=record.post_id, user_id=record.user_id, kind=record.kind,
                platform=record.platform, title=record.title, body=record.body,
                hashtags=record.hashtags, media=files, preview_url=f"{base}/media/preview.html",
                fallbacks=record.fallbacks, reflection=record.reflection, seconds=record.seconds,
                record=record)


def _version_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A profile row's version columns (defaults for a table written before them)."""
    import json

    evidence = row.get("evidence")
    return {"version": row.get("version") or 1, "parent_version": row.get("parent_version"),
            "watermark": row.get("watermark") or 0, "updated_at": row.get("updated_at"),
            "evidence": json.loads(evidence) if evidence else None,
            "profile": row.get("profile", ""), "fallback": row.get("fallback")}


def _job_view(job: dict[str, Any], prefix: str) -> Job:
    post_url = f"{prefix}/v1/posts/{job['post_id']}" if job["status"] == "done" else None
    return Job(**{k: v for k, v in job.items() if k in Job.model_fields}, post_url=post_url)


def _replica_id() -> str:
    try:
        return serve.get_replica_context().replica_tag
    except Exception:  # outside a Serve replica
        return ""


def _prefix(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


class _Metrics:
    """``tailormind_api_*`` on Ray's metrics endpoint (absent outside a Ray worker); the job
    counter is the coordinator's (``job_coordinator.py``)."""

    def __init__(self) -> None:
        try:
            from ray.util.metrics import Counter, Gauge

            self.rejected = Counter("tailormind_api_rejected_total",
                                    description="Requests refused with 503 by the API's limits.",
                                    tag_keys=("reason",))
            self.active = Gauge("tailormind_api_active", description="Work in flight.",
                                tag_keys=("what",))
        except Exception:  # pragma: no cover - metrics are optional
            self.rejected = self.active = None

    def reject(self, reason: str) -> None:
        if self.rejected is not None:
            self.rejected.inc(tags={"reason": reason})

    def gauge(self, what: str, value: int) -> None:
        if self.active is not None:
            self.active.set(value, tags={"what": what})


@serve.deployment(name="TailorMindAPI", max_ongoing_requests=64, max_queued_requests=64,
                  backpressure_config={"status_code": 503, "retry_after_s": 5},
                  ray_actor_options={"num_cpus": 0.1})
@serve.ingress(app)
class TailorMindAPI:
    def __init__(self, profile_worker: DeploymentHandle, generation_worker: DeploymentHandle,
                 coordinator: DeploymentHandle, workspace: str, config: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        from tailormind.generation.catalog import packaged_catalog
        from tailormind.serve.api_workers import api_settings

        self.settings = api_settings(config, overrides)
        self.limits = self.settings.api
        token = self.limits.resolved_token()
        api_guard.configure(token, self.limits.max_body_bytes, self.limits.allowed_hosts,
                            served_by=_replica_id())
        if token is None:
            logger.warning("TailorMind API: no token configured (api.token / "
                           "TAILORMIND_API_TOKEN): answering loopback clients only")
        self.view = WorkspaceView(workspace, self.settings)
        rating_app.configure_mounted(Workspace.open(self.view.root), self.settings, token)
        for line in self.view.repaired:
            logger.warning("TailorMind API: repaired %s", line)
        self.profile_worker, self.generation_worker = profile_worker, generation_worker
        self.coordinator = coordinator
        self.catalog = packaged_catalog()
        self.profiles_in_flight = 0
        self.metrics = _Metrics()

    # -- health ---------------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        return Health(status="ok")

    async def _readiness(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {}
        for name, call in (("profile_worker", self.profile_worker.ready.remote()),
                           ("generation_worker", self.generation_worker.ready.remote()),
                           ("jobs", self.coordinator.status.remote())):
            try:
                detail[name] = await asyncio.wait_for(call, timeout=30)
            except Exception as exc:  # a deployment that does not answer is not ready
                detail[name] = {"ready": False, "error": f"{type(exc).__name__}: {exc}"}
        ready = all(detail[w].get("ready") for w in ("profile_worker", "generation_worker"))
        detail["profiles_in_flight"] = self.profiles_in_flight
        return ready and "error" not in detail["jobs"], detail

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    async def readyz(self) -> Any:
        """Ready or not, nothing more (unauthenticated); the details: ``GET /v1/status``."""
        ready, _ = await self._readiness()
        body = Health(status="ready" if ready else "not_ready")
        return body if ready else JSONResponse(body.model_dump(), status_code=503)

    @app.get("/v1/status", response_model=Health, responses={**ERRORS, 503: {"model": Health}})
    async def service_status(self) -> Any:
        """Readiness with the reasons (503 when not ready): each worker's models, load errors
        and counters, and the jobs queued and running."""
        ready, detail = await self._readiness()
        body = Health(status="ready" if ready else "not_ready", detail=detail)
        return body if ready else JSONResponse(body.model_dump(), status_code=503)

    # -- profiles -------------------------------------------------------------------------------
    @app.get("/v1/users/{user_id}/profile", response_model=StoredProfile,
             response_model_exclude_none=False, responses=ERRORS)
    async def stored_profile(self, user_id: str, history: bool = False) -> StoredProfile:
        """The latest version of the user's profile; with ``?history=true`` also every
        superseded version, oldest first."""
        import json

        row = await self._profile_row(user_id)
        found = StoredProfile(**{**_version_fields(row),
                                 **{k: v for k, v in row.items()
                                    if k in StoredProfile.model_fields
                                    and k not in ProfileVersion.model_fields},
                                 "profile": row["profile"],
                                 "iterations": json.loads(row["iterations"] or "[]")})
        if history:
            rows = await self._read(self.view.profile_history, user_id)
            found.history = [ProfileVersion(**_version_fields(r)) for r in rows]
        return found

    @app.post("/v1/profiles", response_model=AdhocProfile, responses=ERRORS)
    async def adhoc_profile(self, body: AdhocProfileRequest) -> AdhocProfile:
        limits = self.limits
        if not body.history:
            raise APIError(422, "invalid_request", "history: give at least one item")
        if len(body.history) > limits.max_history_items:
            raise APIError(413, "too_large", f"history: {len(body.history)} items, at most "
                           f"{limits.max_history_items} (api.max_history_items)")
        for n, entry in enumerate(body.history):
            for field in ("title", "text"):
                if len(getattr(entry, field)) > limits.max_text_chars:
                    raise APIError(413, "too_large", f"history.{n}.{field}: longer than "
                                   f"{limits.max_text_chars} characters (api.max_text_chars)")
            tags = ", ".join(entry.tags)
            if len(tags) > limits.max_text_chars:
                raise APIError(413, "too_large", f"history.{n}.tags: {len(entry.tags)} tags, "
                               f"{len(tags)} characters joined, over {limits.max_text_chars} "
                               f"(api.max_text_chars)")
        if self.profiles_in_flight >= limits.max_concurrent_profiles:
            self.metrics.reject("profiles")
            raise _overloaded("ad-hoc profiles", limits.max_concurrent_profiles,
                              limits.retry_after_s)
        self.profiles_in_flight += 1
        self.metrics.gauge("profiles", self.profiles_in_flight)
        try:
            history = [e.model_dump() for e in body.history]
            response = self.profile_worker.profile.remote(history, body.refine, body.seed)
            result = await asyncio.wait_for(response, timeout=limits.request_timeout_s)
        except TimeoutError:
            # timing out only stops waiting here; cancelling the call stops the worker's work
            response.cancel()
            raise APIError(504, "timeout", f"the profile took longer than "
                           f"{limits.request_timeout_s:g} s (api.request_timeout_s) and was "
                           f"cancelled") from None
        except NotFoundError as exc:
            raise APIError(422, "unknown_item", str(exc)) from None
        except TailorMindError as exc:
            raise APIError(503, "model_unavailable", str(exc)) from None
        finally:
            self.profiles_in_flight -= 1
            self.metrics.gauge("profiles", self.profiles_in_flight)
        if not body.include_embedding:
            result["embedding"] = None
        return AdhocProfile(**result)

    async def _read(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` (workspace I/O) in a thread, its errors as API errors."""
        try:
            return await asyncio.to_thread(fn, *args)
        except NotFoundError as exc:
            raise APIError(404, "unknown_user", str(exc)) from None
        except CorruptFileError as exc:
            raise APIError(503, "corrupt_workspace", str(exc)) from None
        except WorkspaceError as exc:
            raise APIError(404, "no_profile", str(exc)) from None

    async def _profile_row(self, user_id: str) -> dict[str, Any]:
        return await self._read(self.view.profile, user_id)

    # -- posts and jobs -------------------------------------------------------------------------
    @app.post("/v1/users/{user_id}/posts", response_model=PostAccepted, status_code=202,
              responses={200: {"model": PostAccepted}, **ERRORS})
    async def request_post(self, user_id: str, request: Request,
                           body: PostRequest | None = None) -> Any:
        body = body or PostRequest()
        limits = self.limits
        if body.kind not in limits.kinds:
            raise APIError(422, "invalid_request", f"kind: {body.kind!r} is not offered here; "
                           f"choose one of {', '.join(limits.kinds)}")
        platform = body.platform or self.settings.generation.platform
        if platform not in limits.platforms:
            raise APIError(422, "invalid_request", f"platform: {platform!r} is not offered here;"
                           f" choose one of {', '.join(limits.platforms)}")
        try:
            self.catalog.platform(platform)
        except ConfigError as exc:
            raise APIError(422, "invalid_request", f"platform: {exc}") from None
        seed = self.settings.seeds.generation if body.seed is None else body.seed
        post_id = await self._read(self.view.post_id, user_id, body.kind, platform, seed)
        prefix = _prefix(request)
        bundle = await self._read(self.view.bundle_of, user_id, post_id)
        if bundle is not None:
            record = await self._record(bundle, post_id)
            post = _post_of(record, f"{prefix}/v1/posts/{post_id}")
            return JSONResponse(PostAccepted(status="done", post=post).model_dump(),
                                status_code=200)
        steps = total_steps(self.settings.generation.reflection_rounds)
        reply = await self.coordinator.submit.remote(
            {"job_id": post_id, "user_id": user_id, "kind": body.kind, "platform": platform,
             "seed": seed, "steps": steps})
        if "overloaded" in reply:
            self.metrics.reject("jobs")
            raise APIError(503, "overloaded", f"{reply['overloaded']}; retry after "
                           f"{limits.retry_after_s} s", {"Retry-After": str(limits.retry_after_s)})
        self.view.remember(post_id, user_id)
        return self._accepted(reply["job"], prefix)

    def _accepted(self, job: dict[str, Any], prefix: str) -> JSONResponse:
        url = f"{prefix}/v1/jobs/{job['job_id']}"
        body = PostAccepted(status="accepted", job=_job_view(job, prefix), job_url=url)
        return JSONResponse(body.model_dump(), status_code=202, headers={"Location": url})

    async def _job(self, job_id: str, cancel: bool = False) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise APIError(404, "unknown_job", f"no job {job_id!r}")
        call = self.coordinator.cancel if cancel else self.coordinator.get
        job = await call.remote(job_id)
        if job is None:
            raise APIError(404, "unknown_job", f"no job {job_id!r}")
        if "corrupt" in job:
            raise APIError(503, "corrupt_job", f"job {job_id}: {job['corrupt']}; ask for the "
                           f"post again to replace it")
        return job

    @app.get("/v1/jobs/{job_id}", response_model=Job, responses=ERRORS)
    async def job_status(self, job_id: str, request: Request) -> Job:
        return _job_view(await self._job(job_id), _prefix(request))

    @app.delete("/v1/jobs/{job_id}", response_model=Job, responses=ERRORS)
    async def cancel_job(self, job_id: str, request: Request) -> Job:
        """Cancel through the job coordinator, whichever replica is asked: a queued job never
        starts; a running one stops at its next step."""
        return _job_view(await self._job(job_id, cancel=True), _prefix(request))

    async def _bundle(self, post_id: str) -> Any:
        bundle = await self._read(self.view.bundle, post_id)
        if bundle is None:
            raise APIError(404, "unknown_post", f"no post {post_id!r}")
        return bundle

    async def _record(self, bundle: Any, post_id: str) -> PostRecord:
        try:
            record = await asyncio.to_thread(self.view.record, bundle)
        except CorruptFileError as exc:
            raise APIError(503, "corrupt_post", f"post {post_id}: {exc}") from None
        if record is None:
            raise APIError(404, "unknown_post", f"no post {post_id!r}")
        return record

    @app.get("/v1/posts/{post_id}", response_model=Post, responses=ERRORS)
    async def get_post(self, post_id: str, request: Request) -> Post:
        bundle = await self._bundle(post_id)
        record = await self._record(bundle, post_id)
        return _post_of(record, f"{_prefix(request)}/v1/posts/{post_id}")

    @app.get("/v1/posts/{post_id}/media/{name:path}", response_class=FileResponse,
             responses=ERRORS)
    async def get_media(self, post_id: str, name: str) -> FileResponse:
        bundle = await self._bundle(post_id)
        try:
            path = await asyncio.to_thread(self.view.media_file, bundle, name)
        except ValueError as exc:
            raise APIError(400, "bad_path", str(exc)) from None
        except FileNotFoundError:
            raise APIError(404, "unknown_file", f"post {post_id} has no file {name!r}") from None
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, headers=MEDIA_HEADERS)


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Bind the API for ``serve run`` / ``serve deploy``; see :class:`ApiAppArgs`."""
    from tailormind.serve.api_args import parse_api_args
    from tailormind.serve.api_workers import GenerationWorker, ProfileWorker
    from tailormind.serve.job_coordinator import JobCoordinator

    parsed = parse_api_args(args)
    common = (parsed.workspace, parsed.config, parsed.settings or None)
    generation = GenerationWorker.bind(*common)
    return TailorMindAPI.bind(ProfileWorker.bind(*common), generation,
                              JobCoordinator.bind(generation, *common), *common)
