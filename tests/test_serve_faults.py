"""Fault injection on a real local Ray Serve, over real HTTP: the API with two ingress replicas and
a short job lease (2 s), so the faults a cluster meets happen here in seconds:

1. identical concurrent POSTs through both replicas (eight as the job is created, eight while it
   runs) make one job, run once (counted by the worker itself);
2. ``ray.kill`` of the generation worker mid-job: the job is run again to completion
   (attempts = 2) and leaves exactly one bundle;
3. a DELETE answered by the replica that did not take the POST stops the running generation
   within 10 s.

Text calls pass through ``TextGate`` (tests/serve_gate.py), so "mid-job" is an event: the job
is waiting in a text call the test holds. Each test is bounded in time."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tailormind.generation.bundle import GENERATIONS
from tests.net import free_port, until
from tests.conftest import fresh
from tests.serve_gate import GATE_APP, Gate, gate_deployment

TOKEN = "fault-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEASE_S = 2.0
CORRUPT_JOB, CORRUPT_POST = "post-00000000dead", "post-00000000beef"



@pytest.fixture(scope="module")
def service(generated_base, models_cache: Path, tmp_path_factory):
    import ray
    from ray import serve

    from tailormind.serve.api import TailorMindAPI
    from tailormind.serve.api_workers import GenerationWorker, ProfileWorker
    from tailormind.serve.job_coordinator import JobCoordinator
    from tailormind.serve.model_app import build_app as build_models
    from tests.tiny_models import tiny_llama

    ws, settings = generated_base
    ws = fresh((ws.root, settings), tmp_path_factory.mktemp("faults"))
    llm = tiny_llama(tmp_path_factory.mktemp("tiny-llm"))
    # what a crash mid-write on a disk without atomic renames could leave: read as damaged
    (ws.root / "api" / "jobs").mkdir(parents=True, exist_ok=True)
    (ws.root / "api" / "jobs" / f"{CORRUPT_JOB}.json").write_text('{"job_id": "po')
    damaged = ws.root / GENERATIONS / _users(ws)[0] / CORRUPT_POST
    damaged.mkdir(parents=True)
    (damaged / "post.json").write_text("")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    port = free_port()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_models({"models": {"cache_dir": str(models_cache),
                                       "text": {"backend": "transformers", "path": str(llm)}},
                            "roles": ["text"]}),
              name="tailormind-models", route_prefix="/models")
    serve.run(gate_deployment(), name=GATE_APP, route_prefix=None)
    common = (str(ws.root), None, {
        # no call cache: a job whose calls were all answered before would pass the gate
        "models": {"cache_dir": str(models_cache), "cache": False,
                   "text": {"backend": "serve", "app": GATE_APP, "deployment": "TextGate"}},
        "generation": {"answer_format": "fields", "reflection_rounds": 1},
        "api": {"token": TOKEN, "lease_s": LEASE_S, "max_attempts": 3, "max_pending_jobs": 16}})
    generation = GenerationWorker.bind(*common)  # build_app's graph, with two ingress replicas
    serve.run(TailorMindAPI.options(num_replicas=2).bind(
        ProfileWorker.bind(*common), generation, JobCoordinator.bind(generation, *common),
        *common), name="tailormind-api", route_prefix="/api")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        until(lambda: client.get("/api/v1/status", headers=AUTH).status_code == 200,
               "the API is ready", 300)
        yield client, ws
    serve.shutdown()
    ray.shutdown()



def _stats() -> dict[str, int]:
    from ray import serve

    worker = serve.get_deployment_handle("GenerationWorker", app_name="tailormind-api")
    return worker.ready.remote().result(timeout_s=120)["stats"]


def _users(ws) -> list[str]:
    return sorted(ws.read("profiles").column("user_id").to_pylist())


def _bundles(ws, user: str, post_id: str) -> list[str]:
    """Directories of this post in the user's gallery, hidden staging ones included."""
    folder = ws.root / GENERATIONS / user
    return sorted(p.name for p in folder.iterdir() if post_id in p.name) if folder.is_dir() else []


def _job(client: httpx.Client, url: str) -> dict:
    return client.get(url, headers=AUTH).json()


def _ingress_replicas() -> int:
    from ray import serve

    status = serve.status().applications["tailormind-api"].deployments["TailorMindAPI"]
    return sum(status.replica_states.values())


def test_damaged_records_are_reported_not_missing(service) -> None:
    client, _ = service
    job = client.get(f"/api/v1/jobs/{CORRUPT_JOB}", headers=AUTH)
    assert job.status_code == 503 and job.json()["error"]["code"] == "corrupt_job", job.text
    assert f"{CORRUPT_JOB}.json: corrupt" in job.json()["error"]["message"]
    status = client.get("/api/v1/status", headers=AUTH).json()
    assert [CORRUPT_JOB in line for line in status["detail"]["jobs"]["corrupt_records"]] == [True]
    post = client.get(f"/api/v1/posts/{CORRUPT_POST}", headers=AUTH)
    assert post.status_code == 503 and post.json()["error"]["code"] == "corrupt_post", post.text
    assert "empty file" in post.json()["error"]["message"]
    assert client.get("/api/v1/jobs/post-00000000f00d", headers=AUTH).status_code == 404


def test_two_replicas_and_eight_identical_posts_make_one_run(service) -> None:
    client, ws = service
    assert _ingress_replicas() == 2
    gate = Gate()
    user = _users(ws)[0]
    before = _stats()
    gate.hold()
    calls = len(gate.calls())
    try:
        request = {"kind": "post", "platform": "rednote", "seed": 31}

        def post_eight() -> list[httpx.Response]:
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda _: client.post(
                    f"/api/v1/users/{user}/posts", headers=AUTH, json=request), range(8)))

        answers = post_eight()  # while the job is being created and queued
        assert len(gate.calls(at_least=calls + 1, timeout_s=120)) > calls  # the run is asking
        answers += post_eight()  # while it runs
        assert [a.status_code for a in answers] == [202] * 16, [a.text for a in answers]
        jobs = [a.json()["job"] for a in answers]
        assert len({j["job_id"] for j in jobs}) == 1
        assert len({j["created_at"] for j in jobs}) == 1  # one record, never re-created
        assert len({a.headers["x-served-by"] for a in answers}) == 2  # both replicas answered
        url = answers[0].json()["job_url"]
    finally:
        gate.release()
    final = until(lambda: (j := _job(client, url))["status"] in ("done", "failed") and j,
                   "the job ends", 300)
    assert final["status"] == "done" and final["attempts"] == 1, final
    after = _stats()
    assert after.get("started", 0) - before.get("started", 0) == 1  # the worker's own count
    assert after.get("completed", 0) - before.get("completed", 0) == 1
    assert _bundles(ws, user, final["post_id"]) == [final["post_id"]]


def _generation_worker_actor() -> Any:
    import ray

    for actor in ray.util.list_named_actors(all_namespaces=True):
        if "GenerationWorker" in actor["name"] and "tailormind-api" in actor["name"]:
            return ray.get_actor(actor["name"], namespace=actor["namespace"])
    raise AssertionError("no GenerationWorker replica")


def test_a_killed_worker_is_replaced_and_its_job_runs_again(service) -> None:
    import ray

    client, ws = service
    gate = Gate()
    user = _users(ws)[1]
    gate.hold()
    try:
        calls = len(gate.calls())
        accepted = client.post(f"/api/v1/users/{user}/posts", headers=AUTH, json={"seed": 32})
        assert accepted.status_code == 202, accepted.text
        url = accepted.json()["job_url"]
        assert len(gate.calls(at_least=calls + 1, timeout_s=120)) > calls  # mid-job, in a call
        assert _job(client, url)["status"] == "running"
        ray.kill(_generation_worker_actor(), no_restart=True)
        # the coordinator sees the call fail (or the lease run out) and queues the job again
        requeued = until(lambda: (j := _job(client, url))["lost"] and j, "the job is requeued",
                          60)
        assert requeued["status"] in ("queued", "running") and len(requeued["lost"]) == 1
    finally:
        gate.release()
    final = until(lambda: (j := _job(client, url))["status"] in ("done", "failed") and j,
                   "the job ends", 300)
    assert final["status"] == "done" and final["attempts"] == 2, final
    assert _bundles(ws, user, final["post_id"]) == [final["post_id"]]
    record = json.loads((ws.root / GENERATIONS / user / final["post_id"] / "post.json")
                        .read_text(encoding="utf-8"))
    assert record["post_id"] == final["post_id"]


def test_a_delete_through_the_other_replica_stops_the_run_within_10_s(service) -> None:
    client, ws = service
    gate = Gate()
    user = _users(ws)[2]
    for seed in range(40, 60):  # until the DELETE lands on the replica that did not take the POST
        before = _stats()
        gate.hold()
        try:
            calls = len(gate.calls())
            accepted = client.post(f"/api/v1/users/{user}/posts", headers=AUTH,
                                   json={"seed": seed})
            assert accepted.status_code == 202, accepted.text
            url = accepted.json()["job_url"]
            assert len(gate.calls(at_least=calls + 1, timeout_s=120)) > calls  # it is asking
            cancel = client.delete(url, headers=AUTH)
            assert cancel.status_code == 200, cancel.text
            asked = time.monotonic()
        finally:
            gate.release()
        final = until(lambda: (j := _job(client, url))["status"] not in ("queued", "running")
                       and j, "the job stops", 10)
        stopped_after = time.monotonic() - asked
        assert final["status"] == "cancelled", final
        assert _bundles(ws, user, final["post_id"]) == []
        after = _stats()
        assert after.get("cancelled", 0) - before.get("cancelled", 0) == 1
        if cancel.headers["x-served-by"] != accepted.headers["x-served-by"]:
            assert stopped_after < 10
            return
    pytest.fail("20 DELETEs in a row reached the replica that took the POST")
