"""Load on the HTTP API as a user deploys it: ``tailormind serve`` with ``serve_configs/local.yaml``.

    python benchmarks/serve_load.py --workspace WS [--concurrency 1 8 32] [--duration 90]
                                    [--routes profile post] [--keep-cache] [--json]
                                    [--tiny] [--text-model DIR]

WS must be profiled (``tailormind demo`` or ``profile run``). The service runs with a random bearer
token and, unless ``--keep-cache``, the call cache off (``TAILORMIND_MODELS__CACHE=false``), so
every request is computed. For each route and concurrency, that many closed-loop clients send
requests for ``--duration`` seconds:

- profile: ``POST /api/v1/profiles`` with a real user's last 8 train items (refined, a new seed
  every request, so no two requests are the same);
- post: ``POST /api/v1/users/{u}/posts`` with a new seed every request (a new post each time),
  then ``GET /api/v1/jobs/{id}`` every 0.5 s until it ends; latency is submit to done.

A 503 is the service's backpressure: the client waits its ``Retry-After`` (at most
``--max-backoff`` s) and goes on. When the time is up, clients finish what they have in flight
(jobs still running after ``--drain`` s are cancelled and counted). Memory is the proportional
set size (PSS) of the serve process tree (driver, Ray, every replica) after warm-up and after the run.

``--tiny`` is a smoke run (tests): one client per route, about one request each, short waits.
``--text-model DIR`` serves a local transformers LM as the ``text`` role instead of SmolLM2
(e.g. a tiny random one: the numbers then measure the plumbing, not a model).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tailormind.data.workspace import Workspace  # noqa: E402


@dataclass
class Cell:
    route: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # successful requests
    rejected_latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: str, latency: float) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == "ok":
                self.latencies.append(latency)
            elif status == "503":
                self.rejected_latencies.append(latency)

    def row(self) -> dict:
        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

        ok = self.statuses.get("ok", 0)
        others = {k: v for k, v in self.statuses.items() if k not in ("ok", "503")}
        return {"route": self.route, "concurrency": self.concurrency,
                "requests": sum(self.statuses.values()), "ok": ok,
                "rejected_503": self.statuses.get("503", 0), "other": others,
                "p50_s": pct(self.latencies, 0.5), "p95_s": pct(self.latencies, 0.95),
                "p99_s": pct(self.latencies, 0.99),
                "ok_per_min": round(ok / self.seconds * 60, 2) if self.seconds else 0.0,
                "p50_503_ms": (round(statistics.median(self.rejected_latencies) * 1000, 1)
                               if self.rejected_latencies else None),
                "seconds": round(self.seconds, 1)}


def tree_pss_mib(pid: int) -> dict[str, float]:
    """Proportional set size (MiB) of ``pid`` and its descendants, by process title (``ray::
    ServeReplica:app:Deployment``, ``raylet``, ...): shared pages (Ray's object store, shared
    libraries) are split between the processes mapping them, so the sum is not inflated the way
    a sum of resident sets is."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    sizes: dict[str, float] = {}
    for process in processes:
        try:
            info = process.memory_full_info()
            title = " ".join(process.cmdline()[:1]) or process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        label = title if title.startswith("ray::") else process.name()
        sizes[label] = sizes.get(label, 0.0) + getattr(info, "pss", info.rss) / 2**20
    return sizes


def start_service(workspace: Path, port: int, token: str, keep_cache: bool,
                  log: Path, text_model: Path | None = None) -> subprocess.Popen:
    spec = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    spec["http_options"]["port"] = port
    if text_model is not None:
        (models_app,) = [a for a in spec["applications"] if a["name"] == "tailormind-models"]
        models_app["args"]["models"] = {"text": {"backend": "transformers",
                                                 "path": str(text_model.resolve())}}
    config = Path(tempfile.mkdtemp(prefix="serve-load-")) / "local.yaml"
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**os.environ, "TAILORMIND_API_TOKEN": token, "RAY_AUTH_MODE": "disabled"}
    if not keep_cache:
        env["TAILORMIND_MODELS__CACHE"] = "false"
    exe = Path(sys.executable).with_name("tailormind")
    return subprocess.Popen([str(exe), "serve", "--config", str(config), "--workspace",
                             str(workspace)], env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)


def stop_service(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def wait_ready(client: httpx.Client, process: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"tailormind serve exited with {process.returncode}")
        try:
            if client.get("/api/readyz", timeout=300).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise SystemExit(f"the service was not ready after {timeout:.0f} s")


class Load:
    def __init__(self, client: httpx.Client, users: list[str], histories: dict[str, list[str]],
                 max_backoff: float, drain: float) -> None:
        self.client, self.users, self.histories = client, users, histories
        self.max_backoff, self.drain = max_backoff, drain
        self.counter = 0
        # seeds new to this run: a post id is a function of the seed, and a bundled post would be
        # answered at once (200) instead of being generated
        self.seed_base = secrets.randbelow(10**9)
        self.lock = threading.Lock()

    def next_n(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def backoff(self, answer: httpx.Response) -> None:
        time.sleep(min(float(answer.headers.get("retry-after", "1")), self.max_backoff))

    def profile_once(self, cell: Cell) -> None:
        n = self.next_n()
        user = self.users[n % len(self.users)]
        body = {"history": [{"item_id": i} for i in self.histories[user][-8:]],
                "seed": self.seed_base + n}
        started = time.monotonic()
        try:
            answer = self.client.post("/api/v1/profiles", json=body, timeout=900)
        except httpx.HTTPError as exc:
            cell.record(type(exc).__name__, time.monotonic() - started)
            return
        latency = time.monotonic() - started
        if answer.status_code == 200:
            cell.record("ok", latency)
        else:
            cell.record(str(answer.status_code), latency)
            if answer.status_code == 503:
                self.backoff(answer)

    def post_once(self, cell: Cell, deadline: float) -> None:
        n = self.next_n()
        user = self.users[n % len(self.users)]
        started = time.monotonic()
        try:
            answer = self.client.post(f"/api/v1/users/{user}/posts",
                                      json={"kind": "post", "seed": self.seed_base + n}, timeout=120)
        except httpx.HTTPError as exc:
            cell.record(type(exc).__name__, time.monotonic() - started)
            return
        if answer.status_code == 503:
            cell.record("503", time.monotonic() - started)
            self.backoff(answer)
            return
        if answer.status_code == 200:  # already bundled: not a generation, not an error
            cell.record("already_bundled", time.monotonic() - started)
            return
        if answer.status_code != 202:
            cell.record(str(answer.status_code), time.monotonic() - started)
            return
        url = answer.json()["job_url"]
        while True:
            time.sleep(0.5)
            if time.monotonic() > deadline + self.drain:
                self.client.delete(url)
                cell.record("cancelled_at_end", time.monotonic() - started)
                return
            try:
                job = self.client.get(url, timeout=60).json()
            except httpx.HTTPError:
                continue
            if job["status"] == "done":
                cell.record("ok", time.monotonic() - started)
                return
            if job["status"] in ("failed", "cancelled"):
                cell.record(f"job_{job['status']}", time.monotonic() - started)
                return

    def run(self, route: str, concurrency: int, duration: float) -> Cell:
        cell = Cell(route, concurrency)
        deadline = time.monotonic() + duration
        started = time.monotonic()

        def client_loop() -> None:
            while time.monotonic() < deadline:
                if route == "profile":
                    self.profile_once(cell)
                else:
                    self.post_once(cell, deadline)

        threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cell.seconds = time.monotonic() - started
        return cell


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--routes", nargs="+", default=["profile", "post"],
                        choices=["profile", "post"])
    parser.add_argument("--duration", type=float, default=90.0, help="Seconds per cell.")
    parser.add_argument("--drain", type=float, default=300.0)
    parser.add_argument("--max-backoff", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep-cache", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tiny", action="store_true",
                        help="A smoke run: 1 client, ~1 request per route, short waits.")
    parser.add_argument("--text-model", type=Path, default=None,
                        help="A local transformers LM directory served as the text role.")
    args = parser.parse_args(argv)
    if args.tiny:
        args.concurrency, args.duration, args.drain = [1], 1.0, min(args.drain, 120.0)
    settle = (1.0, 1.0) if args.tiny else (5.0, 10.0)  # s before each memory reading

    workspace = Workspace.open(args.workspace)
    users = sorted(workspace.read("profiles", columns=["user_id"]).column("user_id").to_pylist())
    split = workspace.read("split", columns=["user_id", "item_id", "position", "split"])
    histories: dict[str, list[str]] = {}
    for row in sorted(split.to_pylist(), key=lambda r: (r["user_id"], r["position"])):
        if row["split"] == "train":
            histories.setdefault(row["user_id"], []).append(row["item_id"])
    token = secrets.token_hex(16)
    log = Path(tempfile.gettempdir()) / "serve_load.log"
    process = start_service(args.workspace.resolve(), args.port, token, args.keep_cache, log,
                            args.text_model)
    cells: list[Cell] = []
    memory: dict = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}",
                          headers={"Authorization": f"Bearer {token}"}) as client:
            ready_s = wait_ready(client, process, 900)
            load = Load(client, users, histories, args.max_backoff, args.drain)
            # warm-up: one of each route, then the baseline
            for route in args.routes:
                load.run(route, 1, 0.001)
            time.sleep(settle[0])
            before = tree_pss_mib(process.pid)
            for route in args.routes:
                for concurrency in args.concurrency:
                    cell = load.run(route, concurrency, args.duration)
                    cells.append(cell)
                    print(f"# {route} c={concurrency}: {cell.row()}", file=sys.stderr, flush=True)
            time.sleep(settle[1])
            after = tree_pss_mib(process.pid)
            ready = client.get("/api/v1/status", timeout=300).json()  # with the workers' stats
    finally:
        stop_service(process)
    memory["before_mib"], memory["after_mib"] = sum(before.values()), sum(after.values())
    memory["change_pct"] = round(100 * (memory["after_mib"] / memory["before_mib"] - 1), 1)
    growth = sorted(((after.get(k, 0.0) - before.get(k, 0.0), k) for k in set(before) | set(after)),
                    reverse=True)
    memory["largest_changes_mib"] = {k: round(d, 1) for d, k in growth[:5]}
    rows = [c.row() for c in cells]
    # a job the client cancelled when its drain time ran out is not a server error
    unexpected = sum(v for r in rows for k, v in r["other"].items()
                     if k not in ("cancelled_at_end", "already_bundled"))
    result = {"ready_s": round(ready_s, 1), "memory": memory, "rows": rows,
              "unexpected_errors": unexpected, "worker_stats": {
                  k: v.get("stats") for k, v in ready["detail"].items() if isinstance(v, dict)}}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"service ready after {ready_s:.0f} s (tailormind serve, serve_configs/local.yaml, "
          f"call cache {'on' if args.keep_cache else 'off'}); log: {log}\n")
    print("| route | clients | requests | ok | 503 | other | p50 s | p95 s | p99 s | ok/min | "
          "503 p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        other = ", ".join(f"{k}: {v}" for k, v in r["other"].items()) or "0"
        print(f"| {r['route']} | {r['concurrency']} | {r['requests']} | {r['ok']} | "
              f"{r['rejected_503']} | {other} | {fmt(r['p50_s'])} | {fmt(r['p95_s'])} | "
              f"{fmt(r['p99_s'])} | {r['ok_per_min']:.1f} | {fmt(r['p50_503_ms'])} |")
    print(f"\nmemory (PSS of the serve process tree): {memory['before_mib']:.0f} MiB after "
          f"warm-up, {memory['after_mib']:.0f} MiB after the run ({memory['change_pct']:+.1f}%)")
    print("largest changes: " + ", ".join(f"{k} {d:+.0f} MiB"
                                          for k, d in memory["largest_changes_mib"].items()))
    print(f"errors other than the intended 503 (HTTP 4xx/5xx, failed jobs, transport): "
          f"{unexpected}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
