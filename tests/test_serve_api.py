"""The HTTP API on a real local Ray Serve, over real HTTP: every route, auth, bad input,
backpressure (503 + Retry-After), a job polled to completion, cancellation, timeouts, metrics,
and the API composed with the ``tailormind-models`` app (its text role through ``backend:
serve``) as ``serve_configs/local.yaml`` composes them. Models: a tiny random Llama behind the
models app, the embedded MiniLM, cover cards and the slideshow.

The API's text calls pass through ``TextGate``, a deployment in front of the models app's
``TextModel`` that records every call and, when a test holds it, keeps calls waiting until the
test lets them through: work in flight is then an event the test waits for, not a guess about
how long something takes on a loaded machine."""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tailormind.generation.bundle import GENERATIONS
from tailormind.generation.fields import PREFILLS
from tailormind.prompts.ugc import OPEN
from tests.net import free_port, until
from tests.conftest import REPO, fresh
from tests.serve_gate import GATE_APP, Gate, gate_deployment, marked

TOKEN = "api-test-token"
MODELS_KEY_ENV = "SERVE_TEST_MODELS_KEY"  # TAILORMIND_* would be read as config
MODELS_KEY = "models-test-key"
METRICS: dict[str, int] = {}  # the Prometheus port of the test cluster
HTTP: dict[str, int] = {}  # the Serve proxy's port
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: What the tests did that ``ray_tailormind_api_*`` must count: ("rejected", reason) and
#: ("jobs", status), added by each test as it causes them (checked by the metrics test).
LEDGER: Counter = Counter()
#: A post's stages in order with ``generation.reflection_rounds`` = 1 (Generator.generate's
#: steps, with the one reflection round after write_and_reflect).
POST_STAGES = ["inputs", "exemplars", "ideate", "write_and_reflect", "write_and_reflect round 1",
               "media", "bundle"]



@pytest.fixture(scope="module")
def api(generated_base, profiled_ws, models_cache: Path, tmp_path_factory):
    import ray
    from ray import serve

    from tailormind.serve.api import build_app
    from tailormind.serve.model_app import build_app as build_models
    from tests.tiny_models import tiny_llama

    ws, settings = generated_base
    ws = fresh((ws.root, settings), tmp_path_factory.mktemp("api"))
    llm = tiny_llama(tmp_path_factory.mktemp("tiny-llm"))
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    os.environ.pop(MODELS_KEY_ENV, None)  # the key reaches the replicas through the runtime env
    port = HTTP["port"] = free_port()
    METRICS["port"] = free_port()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             _metrics_export_port=METRICS["port"],
             _system_config={"metrics_report_interval_ms": 1000},
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", MODELS_KEY_ENV: MODELS_KEY}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_models({"models": {"cache_dir": str(models_cache),
                                       "text": {"backend": "transformers", "path": str(llm)}},
                            "roles": ["text"], "api_key_env": MODELS_KEY_ENV}),
              name="tailormind-models", route_prefix="/models")
    serve.run(gate_deployment(), name=GATE_APP, route_prefix=None)
    common = {"models": {"cache_dir": str(models_cache),
                         "text": {"backend": "serve", "app": GATE_APP, "deployment": "TextGate"}},
              "generation": {"answer_format": "fields", "reflection_rounds": 1},
              "profiling": {"n_max": 2}}
    serve.run(build_app({"workspace": str(ws.root), "settings": {
        **common, "api": {"token": TOKEN, "max_pending_jobs": 2, "max_concurrent_profiles": 1,
                          "max_history_items": 6, "max_text_chars": 300,
                          "max_body_bytes": 4096, "retry_after_s": 7}}}),
              name="tailormind-api", route_prefix="/api")
    # the same API without a token: loopback clients only, no Authorization needed; a profile
    # running longer than 2 s is cancelled (504)
    serve.run(build_app({"workspace": str(ws.root), "settings": {
        **common, "api": {"request_timeout_s": 2}}}),
              name="tailormind-api-open", route_prefix="/open")
    # ... and over a workspace with item descriptions but no profiles yet
    bare = fresh(profiled_ws, tmp_path_factory.mktemp("bare"))
    serve.run(build_app({"workspace": str(bare.root), "settings": common}),
              name="tailormind-api-bare", route_prefix="/bare")
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=120) as client:
        deadline = time.monotonic() + 180
        ready = client.get("/api/v1/status", headers=AUTH)
        while ready.status_code != 200 and time.monotonic() < deadline:
            assert ready.json()["status"] == "not_ready" and "error" not in json.dumps(
                ready.json()["detail"]), ready.text  # loading, not failing
            time.sleep(0.5)
            ready = client.get("/api/v1/status", headers=AUTH)
        assert ready.status_code == 200, ready.text
        yield client, ws
    serve.shutdown()
    ray.shutdown()


@pytest.fixture
def gate(api) -> Iterator[Gate]:
    """The text gate, open again after the test whatever happened."""
    gate = Gate()
    try:
        yield gate
    finally:
        gate.release()


def _worker(kind: str, app: str = "tailormind-api") -> Any:
    from ray import serve

    return serve.get_deployment_handle(kind, app_name=app)


def _stats(worker: Any) -> Counter:
    """A worker replica's outcome counters (started, completed, cancelled, failed)."""
    return Counter(worker.ready.remote().result(timeout_s=120)["stats"])



def _asks_for_an_idea(conversation: str) -> bool:
    """Whether a held call's conversation (its messages joined) is an idea question: it ends
    with the idea prefill the answer continues."""
    return conversation.endswith("\n" + PREFILLS["idea"])


def _marked_history(marker: str) -> list[dict[str, str]]:
    """Raw items that each name ``marker`` (so the gate can tell this request's LLM calls
    apart), the last one, held out for validation, unlike the others."""
    return [{"title": f"{marker} night hike", "text": "A lantern walk up the ridge at dusk."},
            {"title": f"{marker} trail kit", "text": "Boots, a paper map and a flask of tea."},
            {"title": f"{marker} rye loaf", "text": "Baking sourdough with a rye starter."}]


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
    # unauthenticated readiness says ready, nothing internal; the details need the token
    assert client.get("/api/readyz").json() == {"status": "ready", "detail": {}}
    status = client.get("/api/v1/status", headers=AUTH).json()
    assert status["status"] == "ready"
    assert status["detail"]["generation_worker"]["models"]["text"]  # the served tiny Llama
    assert set(status["detail"]["jobs"]) == {"queued", "running", "corrupt_records"}
    schema = client.get("/api/openapi.json").json()
    assert {"/v1/profiles", "/v1/users/{user_id}/posts", "/v1/jobs/{job_id}",
            "/v1/posts/{post_id}/media/{name}"} <= set(schema["paths"])


def test_not_ready_says_why_and_profiles_still_work(api) -> None:
    client, ws = api
    ready = client.get("/bare/v1/status")
    for _ in range(60):
        if "error" in ready.json()["detail"]["generation_worker"]:
            break
        time.sleep(0.5)
        ready = client.get("/bare/v1/status")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert client.get("/bare/readyz").json() == {"status": "not_ready", "detail": {}}
    assert client.get("/bare/readyz").status_code == 503
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
    models = OpenAI(base_url=f"{base}/models/v1", api_key=MODELS_KEY, max_retries=0)
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
                         ("DELETE", "/api/v1/jobs/post-000000000000"),
                         ("GET", "/api/v1/posts/post-000000000000"),
                         ("GET", "/api/v1/posts/post-000000000000/media/preview.html"),
                         ("GET", "/api/v1/status")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = client.request(method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers)
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "x-served-by" not in answer.headers  # nothing internal before auth
    # without a configured token, a loopback client needs none
    assert client.get(f"/open/v1/users/{user}/profile").status_code == 200


def test_the_rating_page_is_mounted_behind_the_token(api) -> None:
    """``/api/rate``: the page shell is public; the data routes need a rater session, which
    needs the API token (a bearer header alone is no rater); the workspace has no bench report,
    which a signed-in rater is told."""
    client, _ = api
    page = client.get("/api/api/rate/")
    assert page.status_code == 200 and 'data-token-required="true"' in page.text
    for headers in ({}, AUTH):
        answer = client.get("/api/api/rate/queue", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "no_session"
    wrong = client.post("/api/api/rate/session", json={"rater": "ann", "token": "wrong"})
    assert wrong.status_code == 401 and not wrong.cookies
    signed = client.post("/api/api/rate/session", json={"rater": "ann", "token": TOKEN})
    assert signed.status_code == 200 and "httponly" in signed.headers["set-cookie"].lower()
    cookie = {"tailormind_rater": signed.cookies["tailormind_rater"]}
    queue = client.get("/api/api/rate/queue", cookies=cookie)
    assert queue.status_code == 404 and queue.json()["error"]["code"] == "no_bench_report"
    # the token-less API (loopback only) asks for a name, no token; its cookie is not the other's
    open_signed = client.post("/open/api/rate/session", json={"rater": "ann"})
    assert open_signed.status_code == 200
    assert client.get("/open/api/rate/queue", cookies=cookie).status_code == 401
    client.cookies.clear()


def test_model_routes_need_the_models_key(api) -> None:
    client, _ = api
    chat = {"model": "anything", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2}
    for path, method in [("/models/v1/chat/completions", "POST"), ("/models/v1/models", "GET"),
                         ("/models/v1/embeddings", "POST")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": MODELS_KEY},
                        AUTH):  # the API's token is not the models key
            answer = client.request(method, path, headers=headers, json=chat)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/models/healthz").status_code == 200


def test_without_a_token_the_host_must_be_loopback_and_posts_json(api) -> None:
    """DNS rebinding (a foreign Host on a loopback connection) and cross-site form posts."""
    client, ws = api
    user = _users(ws)[0]
    for host in ("localhost", "127.0.0.1:8000", "[::1]:8000"):
        answer = client.get(f"/open/v1/users/{user}/profile", headers={"Host": host})
        assert answer.status_code == 200, (host, answer.text)
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example"):
        answer = client.get(f"/open/v1/users/{user}/profile", headers={"Host": host})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "bad_host", host
    assert client.get("/open/healthz", headers={"Host": "attacker.example"}).status_code == 200
    history = json.dumps({"history": [{"text": "x"}]})
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
                         None):
        headers = {"Content-Type": content_type} if content_type else {}
        for path in ("/open/v1/profiles", f"/open/v1/users/{user}/posts"):
            answer = client.post(path, content=history, headers=headers)
            assert answer.status_code == 415, (path, content_type, answer.text)
            assert answer.json()["error"]["code"] == "unsupported_media_type"
    # every answer says nosniff
    assert client.get("/open/healthz").headers["x-content-type-options"] == "nosniff"


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


def test_profile_versions_and_history_after_an_update(api) -> None:
    """After `profile update` the API serves the new version; ``?history=true`` adds the old."""
    from tailormind.config import load_config
    from tailormind.profiling.update import update_profiles
    from tests.fakes import ProfilingText
    from tests.incremental import append_interactions, untouched_items
    from tests.workspaces import make_profiler

    client, ws = api
    user = _users(ws)[-1]
    first = client.get(f"/api/v1/users/{user}/profile?history=true", headers=AUTH).json()
    assert (first["version"], first["parent_version"], first["history"]) == (1, None, [])
    new_item = untouched_items(ws, user, 1)[0]
    append_interactions(ws, [(user, new_item, 1)])
    settings = load_config(environ={})
    update_profiles(ws, settings, users=[user],
                    profiler=make_profiler(ws, settings, ProfilingText()))
    body = client.get(f"/api/v1/users/{user}/profile?history=true", headers=AUTH).json()
    assert (body["version"], body["parent_version"], body["watermark"]) == (2, 1, 1)
    assert body["evidence"]["positives"] == [new_item]
    assert [h["version"] for h in body["history"]] == [1]
    assert body["history"][0]["profile"] == first["profile"]
    latest = client.get(f"/api/v1/users/{user}/profile", headers=AUTH).json()
    assert latest["version"] == 2 and latest["history"] is None


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
    ({"history": [{"text": "x", "tags": ["t" * 150, "u" * 149]}]}, 413, "too_large"),  # 301 joined
    ({"history": [{"text": "x", "tags": ["t"] * 101}]}, 413, "too_large"),  # 101 + 100 ", "
    ({"history": [{"text": "x"}], "seed": -1}, 422, "invalid_request"),
    ({"history": [{"text": "x"}], "seed": 2**32}, 422, "invalid_request"),
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


def _subsequence(part: list, whole: list) -> bool:
    """Whether ``part`` is ``whole`` with some entries left out (order kept)."""
    rest = iter(whole)
    return all(any(x == y for y in rest) for x in part)


def _deduped(values: list) -> list:
    """``values`` without consecutive repeats."""
    return [v for n, v in enumerate(values) if n == 0 or values[n - 1] != v]


def test_a_post_job_polled_to_completion_then_served(api, gate) -> None:
    """The job is walked through its stages one text call at a time: while a call is held at
    the gate the job cannot move, so the stage it reports then is exactly where it is."""
    client, ws = api
    user = _users(ws)[1]
    generation = _worker("GenerationWorker")
    before = _stats(generation)
    gate.hold()
    calls = len(gate.calls())
    request = {"kind": "post", "platform": "hupu", "seed": 11}
    accepted = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json=request)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["job"]
    assert accepted.headers["location"] == accepted.json()["job_url"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["status"] == "queued" and job["post_id"] == job["job_id"]
    assert job["job_id"].startswith("post-") and job["error"] is None
    assert job["progress"] == {"stage": "queued", "step": 0, "of": len(POST_STAGES)}
    # the same request while the job runs (it cannot finish: its text calls are held) returns
    # that job: the same record, not a second job over the same id
    again = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json=request)
    assert again.status_code == 202, again.text
    assert again.json()["job"]["job_id"] == job["job_id"]
    assert again.json()["job"]["created_at"] == job["created_at"]
    url = accepted.json()["job_url"]
    seen, held = [], []  # (stage, step) of every poll; of every poll while a call was held
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        log = gate.calls(at_least=calls + 1, timeout_s=2)
        record = client.get(url, headers=AUTH).json()
        progress = record["progress"]
        seen.append((progress["stage"], progress["step"]))
        assert progress["of"] == len(POST_STAGES), record
        if len(log) > calls:  # a text call of this job is held: the job waits inside a stage
            assert record["status"] == "running", record
            prompts = [c for call in log[calls:] for c in call]
            held.append((progress["stage"], progress["step"], prompts))
            gate.release(len(log) - calls)
            calls = len(log)
        elif record["status"] in ("done", "failed", "cancelled"):
            break
    final = client.get(url, headers=AUTH).json()
    assert final["status"] == "done", final
    assert final["progress"] == {"stage": "done", "step": len(POST_STAGES),
                                 "of": len(POST_STAGES)}
    assert final["post_url"] == f"/api/v1/posts/{job['post_id']}"
    # what the polls saw is the post's stages in order, each at its own step, ending done
    walk = [("queued", 0), ("started", 0), *((stage, n) for n, stage in enumerate(POST_STAGES, 1)),
            ("done", len(POST_STAGES))]
    assert _subsequence(_deduped(seen), walk) and seen[-1] == ("done", len(POST_STAGES)), seen
    # the stages that ask the text model were each seen while one of their calls was held,
    # and the held calls are that stage's questions
    assert _deduped([(stage, step) for stage, step, _ in held]) == [
        ("ideate", 3), ("write_and_reflect", 4), ("write_and_reflect round 1", 5)], held
    for stage, _, prompts in held:
        ideas = [_asks_for_an_idea(p) for p in prompts]
        revised = [OPEN.format(label="previous version") in p for p in prompts]
        assert all(ideas) if stage == "ideate" else not any(ideas), (stage, prompts)
        assert all(revised) if stage.endswith("round 1") else not any(revised), (stage, prompts)
    after = _stats(generation)
    assert after["started"] - before["started"] == 1  # one generation for the two requests
    assert after["completed"] - before["completed"] == 1
    LEDGER["jobs", "done"] += 1
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
    for media in (cover, preview):  # served as what they are, the page in a sandbox
        assert media.headers["x-content-type-options"] == "nosniff"
        policy = media.headers["content-security-policy"]
        assert policy.startswith("sandbox;") and "default-src 'none'" in policy
        assert "script-src" not in policy
    # asked again once bundled: 200 with the post, no job
    done = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json=request)
    assert done.status_code == 200 and done.json()["post"]["post_id"] == job["post_id"]
    assert _stats(generation)["started"] == after["started"]
    # paths never leave the bundle
    base = final["post_url"]
    for name, status in [("..%2F..%2F..%2Fworkspace.json", 400), ("%2E%2E/post.json", 400),
                         ("%2Fetc%2Fpasswd", 400), ("nothing.png", 404)]:
        answer = client.get(f"{base}/media/{name}", headers=AUTH)
        assert answer.status_code == status, (name, answer.text)
    # a link inside the bundle that points out of it (fault test 7)
    escape = bundle / "escape.png"
    escape.symlink_to(ws.root / "workspace.json")
    try:
        answer = client.get(f"{base}/media/escape.png", headers=AUTH)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_path"
    finally:
        escape.unlink()
    assert client.get("/api/v1/posts/post-ffffffffffff", headers=AUTH).status_code == 404
    assert client.get("/api/v1/posts/..%2Fx", headers=AUTH).status_code == 404


@pytest.mark.parametrize(("user", "body", "status", "code"), [
    ("nobody-here", {}, 404, "unknown_user"),
    (None, {"kind": "podcast"}, 422, "invalid_request"),
    (None, {"platform": "myspace"}, 422, "invalid_request"),
    (None, {"seed": "x"}, 422, "invalid_request"),
    (None, {"seed": -1}, 422, "invalid_request"),
    (None, {"seed": 2**32}, 422, "invalid_request"),
    (None, {"seed": 1.5}, 422, "invalid_request"),
])
def test_bad_post_requests(api, user, body, status, code) -> None:
    client, ws = api
    user = user or _users(ws)[0]
    answer = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    unknown_job = client.get("/api/v1/jobs/post-000000000000", headers=AUTH)
    assert unknown_job.status_code == 404 and unknown_job.json()["error"]["code"] == "unknown_job"


def test_job_queue_is_bounded_and_a_queued_job_can_be_cancelled(api, gate) -> None:
    client, ws = api
    user = _users(ws)[2]
    gate.hold()  # the first job stays in flight (and the second queued) until released
    first = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 101})
    second = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 102})
    third = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 103})
    assert first.status_code == second.status_code == 202
    assert third.status_code == 503 and third.headers["retry-after"] == "7"
    assert third.json()["error"]["code"] == "overloaded"
    LEDGER["rejected", "jobs"] += 1
    cancel = client.delete(second.json()["job_url"], headers=AUTH)
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"  # at once
    gate.release()
    assert _wait_job(client, first.json()["job_url"])["status"] == "done"
    cancelled = _wait_job(client, second.json()["job_url"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == "cancelled before it started"
    assert cancelled["progress"] == {"stage": "queued", "step": 0, "of": len(POST_STAGES)}
    assert not (ws.root / GENERATIONS / user / cancelled["post_id"]).exists()
    # with the queue drained, the refused request goes through
    retry = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 103})
    assert retry.status_code == 202
    assert _wait_job(client, retry.json()["job_url"])["status"] == "done"
    LEDGER["jobs", "done"] += 2
    LEDGER["jobs", "cancelled"] += 1


def test_cancelling_a_running_job_stops_it(api, gate) -> None:
    """DELETE while the job waits in its first text call (ideation): once the call returns,
    the job stops at the next stage: no writing question is asked, no post is written."""
    client, ws = api
    user = _users(ws)[3]
    generation = _worker("GenerationWorker")
    before = _stats(generation)
    gate.hold()
    calls = len(gate.calls())
    accepted = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 7})
    assert accepted.status_code == 202, accepted.text
    url = accepted.json()["job_url"]
    assert len(gate.calls(at_least=calls + 1, timeout_s=180)) > calls  # it is asking
    running = client.get(url, headers=AUTH).json()
    assert running["status"] == "running"
    assert running["progress"] == {"stage": "ideate", "step": 3, "of": len(POST_STAGES)}
    cancel = client.delete(url, headers=AUTH)
    assert cancel.status_code == 200 and cancel.json()["status"] == "running"  # until it stops
    gate.release()
    final = _wait_job(client, url)
    assert final["status"] == "cancelled" and final["error"] == "cancelled", final
    assert final["progress"] == running["progress"]  # it never started writing
    assert final["post_url"] is None
    asked = [c for call in gate.calls()[calls:] for c in call]
    assert asked and all(_asks_for_an_idea(c) for c in asked), asked  # ideation only
    assert not (ws.root / GENERATIONS / user / final["post_id"]).exists()
    after = _stats(generation)
    assert after - before == Counter({"started": 1, "cancelled": 1})
    LEDGER["jobs", "cancelled"] += 1


def _one_profile_refused(client: httpx.Client, gate: Gate, marker: str) -> None:
    """With one profile in flight (held at its first text call), the next one gets 503 +
    Retry-After; once the first is answered, the same request goes through."""
    gate.hold()
    body = {"history": _marked_history(marker), "seed": 1}
    other = {"history": _marked_history(marker.replace("MARK", "NEXT")), "seed": 2}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/api/v1/profiles", headers=AUTH, json=body)
        assert gate.wait_for_call(marker) == 1
        refused = client.post("/api/v1/profiles", headers=AUTH, json=other)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "7"
        assert refused.json()["error"]["code"] == "overloaded"
        LEDGER["rejected", "profiles"] += 1
        gate.release()
        assert first.result().status_code == 200, first.result().text
    again = client.post("/api/v1/profiles", headers=AUTH, json=other)
    assert again.status_code == 200, again.text


def test_profile_requests_beyond_the_limit_get_503(api, gate) -> None:
    client, _ = api
    _one_profile_refused(client, gate, "OVERLAPMARK")


def _stops_before_its_next_step(worker: Any, gate: Gate, marker: str, before: Counter) -> None:
    """After a cancel reached ``worker``: the cancelled profile asks nothing more once its held
    call is let through. A profile sent next (one at a time per replica, so it runs only after
    the cancelled one's thread stopped) completes; only it is counted completed."""
    at_cancel = marked(gate.calls(), marker)
    gate.release()
    other = marker.replace("MARK", "NEXT")
    follow = worker.profile.remote([{"title": f"{other} lake", "text": "A quiet lake."}],
                                   False, 1).result(timeout_s=300)
    assert follow["history_items"] == 1
    assert marked(gate.calls(), marker) == at_cancel
    assert _stats(worker) - before == Counter({"started": 2, "cancelled": 1, "completed": 1})


def test_a_client_that_disconnects_cancels_its_profile(api, gate) -> None:
    """The client hangs up while its profile waits in its first text call."""
    worker = _worker("ProfileWorker")
    before = _stats(worker)
    gate.hold()
    body = json.dumps({"history": _marked_history("HANGUPMARK"), "seed": 99}).encode()
    sock = socket.create_connection(("127.0.0.1", HTTP["port"]), timeout=60)
    try:
        sock.sendall(b"POST /api/v1/profiles HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert gate.wait_for_call("HANGUPMARK") == 1  # in flight, at its first LLM step
    finally:
        sock.close()
    until(lambda: _stats(worker)["cancelled"] > before["cancelled"], "the cancel")
    _stops_before_its_next_step(worker, gate, "HANGUPMARK", before)


def test_a_profile_past_the_request_timeout_is_cancelled_with_504(api, gate) -> None:
    """/open has ``api.request_timeout_s`` = 2: a profile whose text calls are held past it
    gets 504, and the work is cancelled."""
    client, _ = api
    worker = _worker("ProfileWorker", "tailormind-api-open")
    until(lambda: worker.ready.remote(30.0).result(timeout_s=120)["ready"], "models loaded")
    before = _stats(worker)
    gate.hold()
    answer = client.post("/open/v1/profiles",
                         json={"history": _marked_history("TIMEOUTMARK"), "seed": 5})
    assert answer.status_code == 504, answer.text
    assert answer.json() == {"error": {"code": "timeout", "message": (
        "the profile took longer than 2 s (api.request_timeout_s) and was cancelled")}}
    until(lambda: _stats(worker)["cancelled"] > before["cancelled"], "the cancel")
    _stops_before_its_next_step(worker, gate, "TIMEOUTMARK", before)


def _scrape(name: str, label: str) -> dict[str, float]:
    """``name``'s samples on Ray's Prometheus endpoint, summed by ``label``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{METRICS['port']}/metrics", timeout=30).text
    out: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[sample.labels[label]] += sample.value
    return dict(out)


def test_api_counters_on_rays_prometheus_endpoint(api, gate) -> None:
    """What a user scrapes: ``ray_tailormind_api_rejected_total{reason}`` counts exactly the
    503s of the API's limits (not 401s or bad input) and ``ray_tailormind_api_jobs_total
    {status}`` the jobs by final status, as the tests above caused them; beside them the
    ``active`` gauge and Serve's own request counter. Ray exports every second here."""
    client, ws = api
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert client.post("/api/v1/profiles", headers=headers, json={}).status_code == 401
    assert client.post("/api/v1/profiles", headers=AUTH, json={"history": []}).status_code == 422
    _one_profile_refused(client, gate, "METRICSMARK")
    rejected = {reason: float(n) for (what, reason), n in LEDGER.items() if what == "rejected"}
    jobs = {status: float(n) for (what, status), n in LEDGER.items() if what == "jobs"}

    def exported() -> bool:
        now = (_scrape("ray_tailormind_api_rejected_total", "reason"),
               _scrape("ray_tailormind_api_jobs_total", "status"))
        for seen, wanted in zip(now, (rejected, jobs), strict=True):
            over = {k: v for k, v in seen.items() if v > wanted.get(k, 0)}
            assert not over, (over, wanted)  # counters only grow: more now is more for good
        return now == (rejected, jobs)

    until(exported, "the API's counters on the metrics endpoint", timeout_s=90)
    text = httpx.get(f"http://127.0.0.1:{METRICS['port']}/metrics", timeout=30).text
    assert 'ray_tailormind_api_active{' in text and 'what="profiles"' in text
    assert "ray_serve_num_http_requests_total" in text


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
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            answer = await client.get("/v1/x", headers=headers)
            health = await client.get("/healthz")
            big = await client.post("/v1/x", content=b"x" * 2000,
                                    headers={**headers, "Content-Type": "application/json"})
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
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
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


def test_serve_command_binds_loopback_without_a_token(cli, serve_calls, tmp_path, generated_base,
                                                      monkeypatch) -> None:
    import yaml

    ws, _ = generated_base
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


class _FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_heap_trimmer_trims_at_most_once_per_interval_and_after_a_burst() -> None:
    """On an injected clock (and an event loop running on the same clock), so no real time
    passes and nothing depends on how fast this machine is."""
    import asyncio

    from tailormind.serve.heap_trim import HeapTrimmer

    clock = _FakeClock(100.0)
    trimmer = HeapTrimmer(interval_s=5.0, clock=clock)
    trimmer()  # never trimmed before: trims now
    assert trimmer.trims == 1
    clock.now = 104.9
    trimmer()  # within the interval, outside a loop: skipped, nothing scheduled
    assert trimmer.trims == 1
    clock.now = 105.0  # exactly one interval after the last trim
    trimmer()
    assert trimmer.trims == 2

    class Loop(asyncio.SelectorEventLoop):
        def time(self) -> float:  # the loop schedules call_later on the same clock
            return clock()

    async def turns(n: int = 3) -> None:
        for _ in range(n):  # let the loop run whatever is due
            await asyncio.sleep(0)

    async def burst() -> list[int]:
        seen = []
        clock.now = 105.5
        for _ in range(5):
            trimmer()  # a burst within the interval: one deferred trim, due at 110.0
        await turns()
        seen.append(trimmer.trims)
        clock.now = 109.9
        await turns()
        seen.append(trimmer.trims)  # not due yet
        clock.now = 110.0
        await turns()
        seen.append(trimmer.trims)  # the end of the burst is trimmed, once
        clock.now = 200.0
        await turns()
        seen.append(trimmer.trims)  # and nothing else was scheduled
        return seen

    loop = Loop()
    try:
        assert loop.run_until_complete(burst()) == [2, 2, 3, 3]
    finally:
        loop.close()


def test_the_ingress_never_reads_the_workspace_on_its_event_loop() -> None:
    """Every workspace read of the ingress (``self.view.<method>``) is handed to a thread
    (``self._read`` / ``asyncio.to_thread``), never called on the event loop; only ``remember``
    (a dict update) is called directly."""
    import ast
    import inspect

    from tailormind.serve import api

    tree = ast.parse(inspect.getsource(api))
    ingress = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TailorMindAPI")
    direct = []
    for node in ast.walk(ingress):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "view"
                and node.func.attr != "remember"):
            direct.append(f"line {node.lineno}: self.view.{node.func.attr}(...)")
    assert direct == []
    handed = [n for n in ast.walk(ingress) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Attribute) and n.value.attr == "view"]
    assert {n.attr for n in handed} >= {"profile", "post_id", "bundle_of", "bundle", "record",
                                        "media_file"}
