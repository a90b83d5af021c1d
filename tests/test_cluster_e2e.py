"""End to end on a real local Ray cluster: `ray start --head`, `ray job submit jobs/pipeline.py`.

A small slice of the bundled MovieLens data with the embedded models; the cluster runs in its own
process group and is stopped in teardown whatever the test's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tailormind.data.workspace import Workspace
from tests.net import free_port
from tests.conftest import REPO

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent



def _alive(group: int) -> list[str]:
    """Processes of the process group ``group`` that are not zombies (``pid comm``)."""
    ps = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,comm="], capture_output=True, text=True)
    rows = [line.split(None, 3) for line in ps.stdout.splitlines()]
    return [f"{r[0]} {r[3]}" for r in rows if len(r) == 4 and r[1] == str(group)
            and not r[2].startswith("Z")]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the cluster's process group, SIGKILL what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not _alive(proc.pid):
            break
    proc.wait(timeout=10)


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head node with 4 CPUs, its dashboard on loopback; (dashboard address, job env)."""
    port, dashboard = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILORMIND_", "RAY_"))}
    env.update(RAY_AUTH_MODE="disabled",  # this test's throw-away cluster only
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    temp_dir = tempfile.mkdtemp(prefix="ray-e2e-", dir="/tmp")  # short: Ray's socket paths
    log = open(tmp_path / "ray-start.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--num-cpus", "4", "--port", str(port),
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
         "--temp-dir", temp_dir, "--disable-usage-stats", "--block"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("ray start failed:\n" + (tmp_path / "ray-start.log").read_text())
                time.sleep(1)
        yield address, env
    finally:
        _stop(proc)
        log.close()
        assert not _alive(proc.pid), f"cluster processes left: {_alive(proc.pid)}"


def test_pipeline_job_on_a_real_cluster(ray_cluster, tmp_path: Path) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    address, env = ray_cluster
    root = tmp_path / "ws"
    job_id = f"tailormind-e2e-{uuid.uuid4().hex[:8]}"
    runtime_env = {"excludes": [".git", "tests", "benchmarks"],
                   "env_vars": {"TAILORMIND_MODELS__CACHE_DIR": str(tmp_path / "cache"),
                                "PYTHONUNBUFFERED": "1"}}
    submit = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", address, "--submission-id", job_id,
         "--working-dir", str(REPO), "--runtime-env-json", json.dumps(runtime_env), "--no-wait",
         "--", "python", "jobs/pipeline.py", "--workspace", str(root),
         "--data", "data/ml-latest-small", "--slice-users", "12", "--users", "2",
         "--kind", "post", "--cf-epochs", "5", "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=300)
    assert submit.returncode == 0, submit.stdout + submit.stderr

    client = JobSubmissionClient(address)
    deadline = time.monotonic() + 900
    while (status := client.get_job_status(job_id)) not in (
            JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.monotonic() < deadline, client.get_job_logs(job_id)[-5000:]
        time.sleep(5)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs[-5000:]
    for stage in ("import", "describe", "cf", "profile", "fit", "generate", "evaluate"):
        assert f"pipeline: {stage} done in" in logs

    ws = Workspace.open(root)
    users = sorted(ws.read("profiles", columns=["user_id"]).column("user_id").to_pylist())
    assert len(users) == 2
    topk = ws.read("cf_topk")
    posts = ws.read("generations")
    for user in users:
        assert topk.filter(pc.equal(topk.column("user_id"), user)).num_rows > 0
        mine = posts.filter(pc.equal(posts.column("user_id"), user))
        assert mine.num_rows == 1 and mine.column("kind")[0].as_py() == "post"
    record = json.loads((root / "pipeline" / "last_run.json").read_text())
    statuses = {s["stage"]: s["status"] for s in record["stages"]}
    done = ("import", "describe", "cf", "profile", "fit", "generate", "evaluate")
    assert statuses == {**dict.fromkeys(done, "done"), "update": "skipped"}  # nothing appended
    assert "pipeline: update skipped in" in logs
    print("stage seconds:", {s["stage"]: round(s["seconds"], 1) for s in record["stages"]})
