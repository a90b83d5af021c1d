"""``tailormind serve`` for real: the installed console script deploys ``serve_configs/local.yaml``
(the embedded models and the TailorMind API) on a throw-away local Ray cluster, answers over
real HTTP with the bearer token from the environment, and on Ctrl-C (SIGINT to its process group,
as a terminal sends it) exits and takes the cluster with it. Slow: a whole Ray cluster and every
replica of local.yaml start on this machine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.net import free_port
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TOKEN = "deploy-test-token"
START_S = 600  # the cluster, the models and every replica, on 2 loaded cores
STOP_S = 180



def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{proc.pid} {proc.name()}")
        except psutil.NoSuchProcess:
            pass
    return out


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def test_tailormind_serve_deploys_local_yaml_and_stops_on_ctrl_c(
        generated_ws, models_cache: Path, tmp_path: Path) -> None:
    ws, _ = generated_ws
    user = sorted(ws.read("profiles").column("user_id").to_pylist())[0]
    stored = next(r for r in ws.read("profiles").to_pylist() if r["user_id"] == user)
    # local.yaml as shipped, on a free port (8000 may be taken on a shared machine)
    shipped = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    port = free_port()
    spec = {**shipped, "http_options": {**shipped["http_options"], "port": port}}
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TAILORMIND_", "RAY_ADDRESS"))}
    env.update({"RAY_AUTH_MODE": "disabled",  # a throw-away local cluster for this test only
                "TAILORMIND_API_TOKEN": TOKEN,
                "TAILORMIND_MODELS__CACHE_DIR": str(models_cache)})
    exe = Path(sys.executable).with_name("tailormind")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(exe), "serve", "--config", str(config),
                                 "--workspace", str(ws.root)], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    tree: list[psutil.Process] = []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_S
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"{base}/api/healthz", timeout=10)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        assert health is not None and health.status_code == 200, log.read_text(
            errors="replace")[-4000:]
        assert health.json() == {"status": "ok", "detail": {}}
        # one authenticated request (the token from the environment), and one without it
        answer = httpx.get(f"{base}/api/v1/users/{user}/profile",
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["user_id"] == user and answer.json()["profile"] == stored["profile"]
        assert httpx.get(f"{base}/api/v1/users/{user}/profile", timeout=60).status_code == 401
        # the model routes on the same port: the API token guards them too
        chat = {"model": "smollm2-135m-instruct", "max_tokens": 2,
                "messages": [{"role": "user", "content": "Hi"}]}
        refused = httpx.post(f"{base}/models/v1/chat/completions", json=chat, timeout=60)
        assert refused.status_code == 401, refused.text
        answered = httpx.post(f"{base}/models/v1/chat/completions", json=chat, timeout=120,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert answered.status_code == 200, answered.text
        # the cluster `serve run` started under it: Ray's own processes among them
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = {p.name() for p in tree if p.is_running()}
        assert {"raylet", "gcs_server"} <= names, names
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        code = proc.wait(timeout=STOP_S)
        gone = psutil.wait_procs(tree, timeout=STOP_S)[1]
        assert _alive(gone) == [], log.read_text(errors="replace")[-4000:]
        assert code == 130, (code, log.read_text(errors="replace")[-4000:])  # interrupted
        assert "Got KeyboardInterrupt, shutting down" in log.read_text(errors="replace")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/api/healthz", timeout=10)
    finally:  # whatever happened: nothing this test started outlives it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        _kill(tree)


def _start(config: Path, ws_root: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("tailormind")
    with log.open("ab") as out:
        return subprocess.Popen([str(exe), "serve", "--config", str(config), "--workspace",
                                 str(ws_root)], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/api/readyz", timeout=10).status_code == 200:
                return
        time.sleep(1)
    raise AssertionError(log.read_text(errors="replace")[-4000:])


def _kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL to the command, its process group and every process under it (Ray's too)."""
    tree = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    _kill(tree)
    proc.wait(timeout=60)
    psutil.wait_procs(tree, timeout=60)


def test_a_job_survives_sigkill_of_the_whole_service(
        generated_ws, models_cache: Path, tmp_path: Path, tmp_path_factory) -> None:
    """Fault test 4: SIGKILL of `tailormind serve` (and its Ray cluster) while a job runs, then a
    restart over the same workspace: the job is re-queued from its record and finishes, once."""
    from tests.conftest import fresh

    ws = fresh((generated_ws[0].root, None), tmp_path_factory.mktemp("sigkill"))
    user = sorted(ws.read("profiles").column("user_id").to_pylist())[0]
    shipped = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    port = free_port()
    spec = {**shipped, "http_options": {**shipped["http_options"], "port": port}}
    api_app = next(a for a in spec["applications"] if a["name"] == "tailormind-api")
    api_app["args"]["settings"]["api"]["lease_s"] = 5  # a dead worker's lease runs out in 5 s
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TAILORMIND_", "RAY_ADDRESS"))}
    env.update({"RAY_AUTH_MODE": "disabled", "TAILORMIND_API_TOKEN": TOKEN,
                "TAILORMIND_MODELS__CACHE_DIR": str(models_cache)})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _start(config, ws.root, env, log)
    try:
        _wait_ready(base, proc, log)
        accepted = httpx.post(f"{base}/api/v1/users/{user}/posts", headers=auth, timeout=60,
                              json={"seed": 5})
        assert accepted.status_code == 202, accepted.text
        url = f"{base}{accepted.json()['job_url']}"
        deadline = time.monotonic() + 300
        job = accepted.json()["job"]
        while job["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            job = httpx.get(url, headers=auth, timeout=60).json()
        assert job["status"] == "running", job
        _kill_all(proc)
        record = json.loads((ws.root / "api" / "jobs" / f"{job['job_id']}.json").read_text())
        assert record["status"] == "running"  # as the killed service left it
        proc = _start(config, ws.root, env, log)
        _wait_ready(base, proc, log)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            job = httpx.get(url, headers=auth, timeout=60).json()
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(1)
        assert job["status"] == "done", job
        assert job["attempts"] == 2 and len(job["lost"]) == 1, job
        folder = ws.root / "generations" / user
        assert sorted(p.name for p in folder.iterdir() if job["post_id"] in p.name) == [
            job["post_id"]]
    finally:
        _kill_all(proc)
