"""The HTTP API on a real local Ray Serve, over real HTTP: every route, auth, bad input,
backpressure (503 + Retry-After), a job polled to completion, cancellation, and the API
composed with the ``tailormind-models`` app (its text and embed roles through ``backend: serve``)
as ``serve_configs/local.yaml`` composes them. Models: a tiny random Llama behind the models
app, the embedded MiniLM, cover cards and the slideshow."""

from __future__ import annotations

import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tailormind.generation.bundle import GENERATIONS
from tests.conftest import REPO, fresh
from tests.test_generation_pipeline import generated_ws  # noqa: F401

TOKEN = "api-test-token"
METRICS: dict[str, int] = {}  # the Prometheus port of the test cluster
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def api(generated_ws, profiled_ws, models_cache: Path, tmp_path_factory):  # noqa: F811
    import ray
    from ray import serve

    from tailormind.serve.api import build_app
    from tailormind.serve.model_app import build_app as build_models
    from tests.tiny_models import tiny_llama

    ws, settings = generated_ws
    ws = fresh((ws.root, settings), tmp_path_factory.mktemp("api"))
    llm = tiny_llama(tmp_path_factory.mktemp("tiny-llm"))
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    port = _free_port()
    METRICS["port"] = _free_port()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             _metrics_export_port=METRICS["port"],
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_models({"models": {"cache_dir": str(models_cache),
                                       "text": {"backend": "transformers", "path": str(llm)}},
                            "roles": ["text"]}),
              name="tailormind-models", route_prefix="/models")
    common = {"models": {"cache_dir": str(models_cache), "text": {"backend": "serve"}},
              "generation": {"answer_format": "fields", "reflection_rounds": 1},
              "profiling": {"n_max": 2}}
    serve.run(build_app({"workspace": str(ws.root), "settings": {
        **common, "api": {"token": TOKEN, "max_pending_jobs": 2, "max_concurrent_profiles": 1,
                          "max_history_items": 6, "max_text_chars": 300,
                          "max_body_bytes": 4096, "retry_after_s": 7}}}),
              name="tailormind-api", route_prefix="/api")
    # the same API without a token: loopback clients only, no Authorization needed
    serve.run(build_app({"workspace": str(ws.root), "settings": common}),
              name="tailormind-api-open", route_prefix="/open")
    # ... and over a workspace with item descriptions but no profiles yet
    bare = fresh(profiled_ws, tmp_path_factory.mktemp("bare"))
    serve.run(build_app({"workspace": str(bare.root), "settings": common}),
              name="tailormind-api-bare", route_prefix="/bare")
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=120) as client:
        deadline = time.monotonic() + 180
        ready = client.get("/api/readyz")
        while ready.status_code != 200 and time.monotonic() < deadline:
            assert ready.json()["status"] == "not_ready" and "error" not in json.dumps(
                ready.json()["detail"]), ready.text  # loading, not failing
            time.sleep(0.5)
            ready = client.get("/api/readyz")
        assert ready.status_code == 200, ready.text
        yield client, ws
    serve.shutdown()
    ray.shutdown()


def _users(ws) -> list[str]:
    return sorted(ws.read("profiles").column("user_id").to_pylist())


def _wait_job(client: httpx.Client, url: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = client.get(url, headers=AUTH).json()
        seen.append((job["status"], (job.get("progress") or {}).get("stage")))
        if job["status"] in ("done", "failed", "cancelled"):
            job["seen"] = seen
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {url} did not finish: {seen[-5:]}")


def test_health_ready_and_docs_need_no_token(api) -> None:
    client, _ = api
    assert client.get("/api/healthz").json() == {"status": "ok", "detail": {}}
    ready = client.get("/api/readyz").json()
    assert ready["status"] == "ready"
    assert ready["detail"]["generation_worker"]["models"]["text"]  # the served tiny Llama
    schema = client.get("/api/openapi.json").json()
    assert {"/v1/profiles", "/v1/users/{user_id}/posts", "/v1/jobs/{job_id}",
            "/v1/posts/{post_id}/media/{name}"} <= set(schema["paths"])


def test_not_ready_says_why_and_profiles_still_work(api) -> None:
    client, ws = api
    ready = client.get("/bare/readyz")
    for _ in range(60):
        if "error" in ready.json()["detail"]["generation_worker"]:
            break
        time.sleep(0.5)
        ready = client.get("/bare/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert "has no profiles" in ready.json()["detail"]["generation_worker"]["error"]
    assert ready.json()["detail"]["profile_worker"]["ready"] is True
    user = _users(ws)[0]
    missing = client.post(f"/bare/v1/users/{user}/posts", json={})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_profile"
    assert "profile run" in missing.json()["error"]["message"]
    items = ws.read("items", columns=["item_id"]).column("item_id").to_pylist()[:2]
    adhoc = client.post("/bare/v1/profiles", json={"history": [{"item_id": i} for i in items]})
    assert adhoc.status_code == 200 and adhoc.json()["profile"]


def test_the_models_app_beside_it_answers_the_official_openai_client(api) -> None:
    from openai import OpenAI

    client, _ = api
    base = str(client.base_url).rstrip("/")
    models = OpenAI(base_url=f"{base}/models/v1", api_key="unused", max_retries=0)
    served = [m.id for m in models.models.list().data]
    assert len(served) == 1  # the text role only: the API's serve backend uses it too
    chat = models.chat.completions.create(model=served[0], max_tokens=5, temperature=0,
                                          messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].finish_reason in ("stop", "length") and chat.usage.completion_tokens


def test_every_other_route_needs_the_token(api) -> None:
    client, ws = api
    user = _users(ws)[0]
    for method, path in [("GET", f"/api/v1/users/{user}/profile"), ("POST", "/api/v1/profiles"),
                         ("POST", f"/api/v1/users/{user}/posts"),
                         ("GET", "/api/v1/jobs/post-000000000000"),
                         ("GET", "/api/v1/posts/post-000000000000")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = client.request(method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers)
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
    # without a configured token, a loopback client needs none
    assert client.get(f"/open/v1/users/{user}/profile").status_code == 200


def test_stored_profile_with_its_iterations(api) -> None:
    client, ws = api
    user = _users(ws)[0]
    row = next(r for r in ws.read("profiles").to_pylist() if r["user_id"] == user)
    body = client.get(f"/api/v1/users/{user}/profile", headers=AUTH).json()
    assert body["user_id"] == user and body["profile"] == row["profile"]
    assert body["iterations"] == json.loads(row["iterations"])
    assert body["valid_rank_final"] == row["valid_rank_final"]
    missing = client.get("/api/v1/users/nobody-here/profile", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_user"


def test_adhoc_profile_from_item_ids_and_raw_texts(api) -> None:
    client, ws = api
    catalogue = ws.read("items", columns=["item_id"]).column("item_id").to_pylist()
    items = catalogue[:3]
    history = [{"item_id": items[0]}, {"title": "Night hike", "text": "A lantern walk up the "
               "ridge, with notes on gear.", "tags": ["outdoors"]}, {"item_id": items[1]},
               {"item_id": items[2]}]
    answer = client.post("/api/v1/profiles", headers=AUTH,
                         json={"history": history, "seed": 3, "include_embedding": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["history_items"] == 4 and body["raw_items"] == 1
    assert body["valid_item"] == items[2]  # the last item is held out for validation
    # the positive + 99 negatives the history does not hold (this catalogue has fewer to spare)
    assert body["candidates"] == 1 + min(99, len(catalogue) - 3)
    assert body["iterations"][0]["iteration"] == 0
    assert 1 <= body["valid_rank_final"] <= 100 and body["profile"]
    assert len(body["embedding"]) == 384 and any("no CF evidence" in n for n in body["notes"])
    # one item: no validation item to refine on, said so
    single = client.post("/api/v1/profiles", headers=AUTH,
                         json={"history": [{"item_id": items[0]}]}).json()
    assert single["valid_item"] is None and single["iterations"] == []
    assert any("no refinement" in n for n in single["notes"]) and single["embedding"] is None


@pytest.mark.parametrize(("payload", "status", "code"), [
    ('{"history": [', 422, "invalid_request"),  # malformed JSON
    ({"history": []}, 422, "invalid_request"),
    ({"history": [{"item_id": "no-such-item"}]}, 422, "unknown_item"),
    ({"history": [{"item_id": "1", "text": "both"}]}, 422, "invalid_request"),
    ({"history": [{"tags": ["x"]}]}, 422, "invalid_request"),
    ({"history": [{"text": "x"}] * 7}, 413, "too_large"),  # api.max_history_items = 6
    ({"history": [{"text": "x" * 301}]}, 413, "too_large"),  # api.max_text_chars = 300
    ({"history": [{"text": "x" * 5000}]}, 413, "too_large"),  # body over api.max_body_bytes
    ({"history": [{"text": "x"}], "extra": 1}, 422, "invalid_request"),
])
def test_bad_profile_requests(api, payload, status, code) -> None:
    client, _ = api
    content = payload if isinstance(payload, str) else json.dumps(payload)
    answer = client.post("/api/v1/profiles", content=content,
                         headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_chunked_oversize_body_is_refused(api) -> None:
    client, _ = api

    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    answer = client.post("/api/v1/profiles", content=chunks(),
                         headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"


def test_a_post_job_polled_to_completion_then_served(api) -> None:
    client, ws = api
    user = _users(ws)[1]
    accepted = client.post(f"/api/v1/users/{user}/posts", headers=AUTH,
                           json={"kind": "post", "platform": "hupu", "seed": 11})
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["job"]
    assert accepted.headers["location"] == accepted.json()["job_url"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["status"] in ("queued", "running") and job["post_id"].startswith("post-")
    # the same request while the job runs returns that job, it does not start a second one
    again = client.post(f"/api/v1/users/{user}/posts", headers=AUTH,
                        json={"kind": "post", "platform": "hupu", "seed": 11})
    assert again.status_code in (200, 202) and (again.status_code == 200 or
                                                again.json()["job"]["job_id"] == job["job_id"])
    final = _wait_job(client, accepted.json()["job_url"])
    assert final["status"] == "done", final
    stages = [stage for _, stage in final["seen"]]
    assert final["progress"] == {"stage": "done", "step": final["progress"]["of"],
                                 "of": final["progress"]["of"]}
    assert final["post_url"] == f"/api/v1/posts/{job['post_id']}"
    assert set(stages) - {"queued", "done", None} <= {"exemplars", "ideation", "writing",
                                                      "scoring", "revision 1", "bundle"}
    post = client.get(final["post_url"], headers=AUTH).json()
    bundle = ws.root / GENERATIONS / user / job["post_id"]
    record = json.loads((bundle / "post.json").read_text(encoding="utf-8"))
    assert post["title"] == record["title"] and post["platform"] == "hupu"
    assert post["record"]["models"]["text"]["backend"] == "serve"
    cover = client.get(post["media"][0]["url"], headers=AUTH)
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/png"
    assert cover.content == (bundle / post["media"][0]["file"]).read_bytes()
    preview = client.get(post["preview_url"], headers=AUTH)
    assert preview.status_code == 200 and "text/html" in preview.headers["content-type"]
    # asked again once bundled: 200 with the post, no job
    done = client.post(f"/api/v1/users/{user}/posts", headers=AUTH,
                       json={"kind": "post", "platform": "hupu", "seed": 11})
    assert done.status_code == 200 and done.json()["post"]["post_id"] == job["post_id"]
    # paths never leave the bundle
    base = final["post_url"]
    for name, status in [("..%2F..%2F..%2Fworkspace.json", 400), ("%2E%2E/post.json", 400),
                         ("%2Fetc%2Fpasswd", 400), ("nothing.png", 404)]:
        answer = client.get(f"{base}/media/{name}", headers=AUTH)
        assert answer.status_code == status, (name, answer.text)
    assert client.get("/api/v1/posts/post-ffffffffffff", headers=AUTH).status_code == 404
    assert client.get("/api/v1/posts/..%2Fx", headers=AUTH).status_code == 404


@pytest.mark.parametrize(("user", "body", "status", "code"), [
    ("nobody-here", {}, 404, "unknown_user"),
    (None, {"kind": "podcast"}, 422, "invalid_request"),
    (None, {"platform": "myspace"}, 422, "invalid_request"),
    (None, {"seed": "x"}, 422, "invalid_request"),
])
def test_bad_post_requests(api, user, body, status, code) -> None:
    client, ws = api
    user = user or _users(ws)[0]
    answer = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    unknown_job = client.get("/api/v1/jobs/post-000000000000", headers=AUTH)
    assert unknown_job.status_code == 404 and unknown_job.json()["error"]["code"] == "unknown_job"


def test_job_queue_is_bounded_and_a_queued_job_can_be_cancelled(api) -> None:
    client, ws = api
    user = _users(ws)[2]
    first = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 101})
    second = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 102})
    third = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 103})
    assert first.status_code == second.status_code == 202
    assert third.status_code == 503 and third.headers["retry-after"] == "7"
    assert third.json()["error"]["code"] == "overloaded"
    cancel = client.delete(second.json()["job_url"], headers=AUTH)
    assert cancel.status_code == 200
    assert _wait_job(client, first.json()["job_url"])["status"] == "done"
    cancelled = _wait_job(client, second.json()["job_url"])
    assert cancelled["status"] == "cancelled" and "cancelled" in cancelled["error"]
    assert not (ws.root / GENERATIONS / user / cancelled["post_id"]).exists()
    # with the queue drained, the refused request goes through
    retry = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 103})
    assert retry.status_code == 202
    assert _wait_job(client, retry.json()["job_url"])["status"] == "done"


def test_metrics_reach_rays_prometheus_endpoint(api) -> None:
    """The API's own metrics beside Serve's request counters (Ray exports every few seconds,
    hence the polling)."""
    client, ws = api
    item = ws.read("items", columns=["item_id"]).column("item_id")[0].as_py()
    answer = client.post("/api/v1/profiles", headers=AUTH, json={"history": [{"item_id": item}]})
    assert answer.status_code == 200, answer.text
    wanted = ['ray_tailormind_api_active', 'what="profiles"', 'ray_serve_num_http_requests_total']
    deadline, text = time.monotonic() + 90, ""
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{METRICS['port']}/metrics", timeout=30).text
        if all(w in text for w in wanted):
            break
        time.sleep(2)
    assert [w for w in wanted if w not in text] == []


def test_profile_requests_beyond_the_limit_get_503(api) -> None:
    client, ws = api
    items = ws.read("items", columns=["item_id"]).column("item_id").to_pylist()
    bodies = [{"history": [{"item_id": i} for i in items[n:n + 4]], "seed": n} for n in range(4)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda b: client.post("/api/v1/profiles", headers=AUTH, json=b),
                                bodies))
    codes = sorted(a.status_code for a in answers)
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers["retry-after"] == "7"


def test_a_client_that_disconnects_cancels_its_profile(api) -> None:
    client, ws = api
    items = ws.read("items", columns=["item_id"]).column("item_id").to_pylist()

    def stats() -> dict:
        return client.get("/api/readyz").json()["detail"]["profile_worker"]["stats"]

    before = stats()
    body = {"history": [{"item_id": i} for i in items[10:16]], "seed": 99}
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/v1/profiles", headers=AUTH, json=body, timeout=0.3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = stats()
        if after.get("cancelled", 0) > before.get("cancelled", 0):
            break
        time.sleep(0.2)
    assert after.get("cancelled", 0) == before.get("cancelled", 0) + 1
    assert after.get("completed", 0) == before.get("completed", 0)


# -- without Ray: the guard on its own, and `tailormind serve`'s start-up decisions ----------------
def _guarded_app():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tailormind.serve.api_guard import Guard

    async def echo(request):
        return JSONResponse({"bytes": len(await request.body())})

    app = Starlette(routes=[Route("/v1/x", echo, methods=["GET", "POST"]),
                            Route("/healthz", echo)])
    app.add_middleware(Guard)
    return app


@pytest.mark.parametrize(("client_host", "token", "headers", "status"), [
    ("127.0.0.1", None, {}, 200),
    ("::1", None, {}, 200),
    ("10.1.2.3", None, {}, 403),  # no token configured: remote clients are refused
    ("10.1.2.3", "s3cret", {"Authorization": "Bearer s3cret"}, 200),
    ("10.1.2.3", "s3cret", {"Authorization": "bearer s3cret"}, 200),
    ("10.1.2.3", "s3cret", {"Authorization": "Bearer s3cre"}, 401),
    ("127.0.0.1", "s3cret", {}, 401),  # a token, once configured, is needed from anywhere
])
def test_guard_auth(monkeypatch, client_host, token, headers, status) -> None:
    import asyncio

    from tailormind.serve import api_guard

    monkeypatch.setattr(api_guard, "GUARD", api_guard.GuardSettings())
    api_guard.configure(token, 1024)

    async def call():
        transport = httpx.ASGITransport(app=_guarded_app(), client=(client_host, 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/v1/x", headers=headers)
            health = await client.get("/healthz")
            big = await client.post("/v1/x", content=b"x" * 2000, headers=headers)
            return answer, health, big

    answer, health, big = asyncio.run(call())
    assert answer.status_code == status and health.status_code == 200
    assert big.status_code == (413 if status == 200 else status)


def test_guard_refuses_until_configured(monkeypatch) -> None:
    import asyncio

    from tailormind.serve import api_guard

    monkeypatch.setattr(api_guard, "GUARD", api_guard.GuardSettings())

    async def call():
        transport = httpx.ASGITransport(app=_guarded_app(), client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/v1/x")

    answer = asyncio.run(call())
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"


@pytest.fixture
def serve_calls(monkeypatch):
    """`tailormind serve` up to the point where it would exec `serve run` (recorded instead)."""
    import yaml

    from tailormind.cli import serve_cmd

    calls = []

    def record(command, env):
        calls.append({"command": command, "env": env,
                      "spec": yaml.safe_load(Path(command[2]).read_text())})
        return 0

    monkeypatch.setattr(serve_cmd.subprocess, "call", record)
    return calls


def test_serve_command_binds_loopback_without_a_token(cli, serve_calls, tmp_path, generated_ws,  # noqa: F811
                                                      monkeypatch) -> None:
    import yaml

    ws, _ = generated_ws
    spec = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    spec["http_options"]["host"] = "0.0.0.0"
    config = tmp_path / "open.yaml"
    config.write_text(yaml.safe_dump(spec))
    result = cli("serve", "--config", config, "--workspace", ws.root)
    assert result.code == 0, result.err
    assert "binding 127.0.0.1 instead of 0.0.0.0" in result.err
    assert serve_calls[-1]["spec"]["http_options"]["host"] == "127.0.0.1"
    assert serve_calls[-1]["env"]["TAILORMIND_WORKSPACE"] == str(ws.root.resolve())
    monkeypatch.setenv("TAILORMIND_API_TOKEN", "t0ken")
    assert cli("serve", "--config", config, "--workspace", ws.root).code == 0
    assert serve_calls[-1]["spec"]["http_options"]["host"] == "0.0.0.0"


def test_serve_command_bad_input(cli, serve_calls, tmp_path) -> None:
    missing = cli("serve", "--config", REPO / "serve_configs" / "local.yaml")
    assert missing.code == 2 and "needs a workspace" in missing.err
    not_ws = cli("serve", "--config", REPO / "serve_configs" / "local.yaml",
                 "--workspace", tmp_path)
    assert not_ws.code == 2 and "not a TailorMind workspace" in not_ws.err
    broken = tmp_path / "broken.yaml"
    broken.write_text("applications:\n  - name: x\n    import_path: tailormind.serve.api:build_app"
                      "\n    args: {workspace: /w, colour: blue}\n")
    bad = cli("serve", "--config", broken)
    assert bad.code == 2 and "colour" in bad.err
    assert serve_calls == []


def test_job_records_report_lost_work(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from tailormind.serve.api_jobs import JobStore, total_steps

    store = JobStore(tmp_path)
    job = store.new(job_id="post-0123456789ab", user_id="7", kind="post", platform="rednote",
                    seed=1, steps=total_steps("post", 3))
    assert job["progress"] == {"stage": "queued", "step": 0, "of": 4 + 2 * 3 + 1}
    assert total_steps("video", 0) == 4 + 1 + 1
    assert store.effective(job, 60, 600)["status"] == "queued"

    def aged(record: dict, seconds: float) -> dict:
        stamp = datetime.now(UTC) - timedelta(seconds=seconds)
        return {**record, "updated_at": stamp.isoformat(timespec="milliseconds")}

    running = {**job, "status": "running"}
    assert store.effective(aged(running, 30), 60, 600)["status"] == "running"
    lost = store.effective(aged(running, 90), 60, 600)
    assert lost["status"] == "failed" and lost["error"].startswith("lost: no progress for 90 s")
    assert store.effective(aged(job, 90), 60, 600)["status"] == "queued"  # queued: job timeout
    assert store.effective(aged(job, 700), 60, 600)["status"] == "failed"
    assert store.effective(aged({**job, "status": "done"}, 10_000), 60, 600)["status"] == "done"
    assert store.read("post-0123456789ab")["status"] == "queued"  # never rewritten by a reader
    store.request_cancel(job["job_id"])
    assert store.cancel_requested(job["job_id"])
    store.new(job_id=job["job_id"], user_id="7", kind="post", platform="rednote", seed=1, steps=5)
    assert not store.cancel_requested(job["job_id"])  # a fresh job starts without the old cancel
    with pytest.raises(ValueError, match="not a job id"):
        store.path("../../etc/passwd")


def test_heap_trimmer_trims_at_most_once_per_interval_and_after_a_burst() -> None:
    import asyncio

    from tailormind.serve.heap_trim import HeapTrimmer

    trimmer = HeapTrimmer(interval_s=1.0)
    trimmer()
    trimmer()  # within the interval, outside a loop: skipped
    assert trimmer.trims == 1

    async def burst() -> None:
        for _ in range(5):
            trimmer()  # one deferred trim is scheduled for the end of the interval
        assert trimmer.trims == 1
        deadline = time.monotonic() + 30
        while trimmer.trims == 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)  # and no second one

    asyncio.run(burst())
    assert trimmer.trims == 2
