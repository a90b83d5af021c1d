"""GPU check: every model part of TailorMind on one CUDA machine without a network, one table.

    python benchmarks/gpu_check.py                        # CUDA (meant to take < 8 min on an H100)
    python benchmarks/gpu_check.py --only cf,serve        # some parts
    python benchmarks/gpu_check.py --json                 # the rows as one JSON list on stdout
    python benchmarks/gpu_check.py --device cpu --small   # a CPU smoke run (1-2 min on 2 cores)

Parts (``--only``): ``cf`` (HypergraphCF and PyG LightGCN, trained by TailorMind's own loop on a
synthetic graph at TailorBench-Rednote scale: 12,131 users x 94,997 items, ~600k interactions),
``text`` (transformers), ``embed`` (sentence-transformers), ``clip`` (open_clip), ``image``
(diffusers, an SD- and an SDXL-shaped pipeline), ``video`` (diffusers text-to-video) and
``serve`` (the image and video Ray Serve deployments, ``num_gpus: 1``, one app at a time, called
over HTTP).

Every model is built on the spot with tiny random weights (``benchmarks/tiny_weights.py``) and
loaded through the TailorMind backend a config names, on ``--device``; nothing is downloaded.
The tiny models' numbers measure the path (loading, device placement, backend overhead), not a
real model's speed; the ``cf`` rows are at full scale. Each row: part, device, what was
measured, value, unit, ok or FAIL with the error. A part that raises is a FAIL row and the other
parts still run. Exit status: 0 all ok, 1 a part failed, 2 ``--device cuda`` without a CUDA GPU.
``--small`` shrinks every size (a 300 x 2,000 graph, 1 epoch, a few tokens/texts/pixels).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PARTS = ("cf", "text", "embed", "clip", "image", "video", "serve")
CF_REFERENCE = "PyG LightGCN 0.88 s/epoch on an H200"
MODELS_APP = "tailormind-models"
HTTP_APP = "gpu-check-http"
PROMPT = "a mountain trail at dawn"  # within the tiny CLIP tokenizer's 32 bytes


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is (full, and ``--small`` for a CPU smoke run)."""

    cf_graph: dict[str, int]  # import_synthetic's users, items, tags, per_user
    cf_epochs: int
    text_batch: int
    text_tokens: int
    embed_texts: int
    clip_images: int
    image_px: int
    image_steps: int
    images: int
    video_px: int
    video_frames: int
    serve_px: int


SIZES = {
    False: Sizes(cf_graph=dict(users=12131, items=94997, tags=8531, per_user=50), cf_epochs=3,
                 text_batch=8, text_tokens=64, embed_texts=4096, clip_images=1024,
                 image_px=512, image_steps=20, images=3, video_px=256, video_frames=16,
                 serve_px=256),
    True: Sizes(cf_graph=dict(users=300, items=2000, tags=40, per_user=20), cf_epochs=1,
                text_batch=2, text_tokens=8, embed_texts=32, clip_images=8,
                image_px=64, image_steps=2, images=1, video_px=64, video_frames=4,
                serve_px=64),
}


@dataclass
class Row:
    part: str
    device: str
    measure: str
    value: float | None
    unit: str
    ok: bool = True
    error: str = ""
    note: str = ""


class Weights:
    """The tiny models under ``root``, each built the first time a part asks for it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def llama(self) -> Path:
        from benchmarks.tiny_weights import tiny_llama

        return tiny_llama(self.root / "llama")

    @cached_property
    def sentence_bert(self) -> Path:
        from benchmarks.tiny_weights import tiny_sentence_bert

        return tiny_sentence_bert(self.root / "sentence-bert")

    @cached_property
    def open_clip(self) -> tuple[str, Path, Path]:
        from benchmarks.tiny_weights import tiny_open_clip

        return tiny_open_clip(self.root / "open-clip")

    @cached_property
    def sd(self) -> Path:
        from benchmarks.tiny_weights import tiny_text_to_image

        return tiny_text_to_image(self.root / "sd")

    @cached_property
    def sdxl(self) -> Path:
        from benchmarks.tiny_weights import tiny_text_to_image_xl

        return tiny_text_to_image_xl(self.root / "sdxl")

    @cached_property
    def video(self) -> Path:
        from benchmarks.tiny_weights import tiny_text_to_video

        return tiny_text_to_video(self.root / "t2v")


@dataclass
class Check:
    """What every part gets: the device, the sizes, the tiny weights, and the rows so far."""

    device: str
    sizes: Sizes
    root: Path
    rows: list[Row] = field(default_factory=list)
    part: str = ""

    @cached_property
    def weights(self) -> Weights:
        return Weights(self.root / "weights")

    def add(self, measure: str, value: float, unit: str, note: str = "") -> None:
        """A measured row; a value that is not a positive finite number is a FAIL."""
        value = float(value)
        ok = math.isfinite(value) and value > 0
        self.rows.append(Row(self.part, self.device, measure, value, unit, ok,
                             "" if ok else "not a positive number", note))

    def settings(self, role: str, block: dict[str, Any]) -> Any:
        """TailorMind settings with ``block`` as ``models.<role>`` on this device, call cache
        off (every call computes), and no ``TAILORMIND_*`` from the environment."""
        from tailormind.config import load_config

        return load_config(environ={}, overrides={"models": {
            "cache": False, "cache_dir": str(self.root / "cache"),
            role: {"device": self.device, **block}}})

    def pipeline_dtype(self) -> str:
        """float16 for diffusers on a GPU, as serve_configs/gpu.yaml has it; float32 on CPU."""
        return "float16" if self.device.startswith("cuda") else "float32"


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(device: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, fn())``, with the device's queued work finished before and after."""
    synchronize(device)
    started = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - started, out


def load(check: Check, role: str, block: dict[str, Any]) -> tuple[float, Any]:
    """Load ``role`` through its TailorMind backend; ``(seconds, role object)``."""
    from tailormind.models.registry import load_role

    return timed(check.device, lambda: load_role(role, check.settings(role, block)))


# --- cf ------------------------------------------------------------------------------------------

def synthetic_cf_data(root: Path, graph: dict[str, int], seed: int = 2026) -> Any:
    """A synthetic data set imported, split (leave-two-out, 1:99) and read as CF indices, the
    way ``benchmarks/cf.py --data synthetic`` builds it."""
    from tailormind.cf.data import load_cf_data
    from tailormind.data.importers import import_synthetic
    from tailormind.data.ingest import save_import
    from tailormind.data.split import split_workspace
    from tailormind.data.workspace import Workspace

    workspace = save_import(import_synthetic(**graph, seed=seed), root / "ws")
    split_workspace(workspace, seed=seed)
    return load_cf_data(Workspace.open(root / "ws"))


def epoch_seconds(history: list[Any]) -> tuple[float, str]:
    """Mean seconds of the epochs after the first (which carries the warm-up), and how."""
    seconds = [h.seconds for h in history]
    if len(seconds) == 1:
        return seconds[0], "1 epoch"
    rest = seconds[1:]
    return sum(rest) / len(rest), f"mean of epochs 2-{len(seconds)}; epoch 1 {seconds[0]:.2f} s"


def part_cf(check: Check) -> None:
    """HypergraphCF and PyG LightGCN trained by ``tailormind.cf.train.train_model``: s/epoch."""
    from tailormind.cf.train import train_model
    from tailormind.config import CFConfig

    seconds, data = timed("cpu", lambda: synthetic_cf_data(check.root / "cf", check.sizes.cf_graph))
    graph = (f"{data.n_users:,} users x {data.n_items:,} items, "
             f"{len(data.train_users):,} train interactions")
    check.add("synthetic data: import + split + load", seconds, "s", graph)
    epochs = check.sizes.cf_epochs
    cfg = CFConfig(epochs=epochs, eval_every=epochs, early_stop_patience=epochs + 1)
    for model, label, reference in (("hypergraph", "HypergraphCF", ""),
                                    ("lightgcn", "PyG LightGCN", f"ref: {CF_REFERENCE}")):
        result = train_model(data, cfg, model, device=check.device)
        per_epoch, how = epoch_seconds(result.history)
        note = "; ".join(n for n in (how, f"{result.graph['edges']:,} edges", reference) if n)
        check.add(f"{label} train (BPR, batch {cfg.batch_size})", per_epoch, "s/epoch", note)


# --- text, embed, clip ---------------------------------------------------------------------------

def part_text(check: Check) -> None:
    """The transformers text backend on a tiny Llama: greedy generation, new tokens/s."""
    from tailormind.models.types import GenerationParams

    batch, tokens = check.sizes.text_batch, check.sizes.text_tokens
    seconds, model = load(check, "text", {"backend": "transformers",
                                          "path": str(check.weights.llama), "batch_size": batch})
    check.add("load tiny Llama (transformers backend)", seconds, "s")
    conversations = [[{"role": "user", "content": f"Write about hiking trail number {i}."}]
                     for i in range(batch)]
    params = GenerationParams(max_tokens=tokens, temperature=0.0)
    model.complete(conversations[:1], params)  # warm-up
    seconds, answers = timed(check.device, lambda: model.complete(conversations, params))
    generated = sum(a.completion_tokens for a in answers)
    check.add(f"generate, batch {batch}, <= {tokens} new tokens each", generated / seconds,
              "tokens/s", f"{generated} tokens in {seconds:.3f} s")


def part_embed(check: Check) -> None:
    """The sentence-transformers backend on a tiny BERT: texts/s, unit vectors."""
    import numpy as np

    n = check.sizes.embed_texts
    seconds, model = load(check, "embed", {"backend": "sentence_transformers",
                                           "path": str(check.weights.sentence_bert),
                                           "batch_size": 256})
    check.add("load tiny BERT (sentence_transformers backend)", seconds, "s")
    texts = [f"the user likes science fiction films and hiking, note {i}" for i in range(n)]
    model.embed(texts[:8])  # warm-up
    seconds, vectors = timed(check.device, lambda: model.embed(texts))
    if vectors.shape != (n, model.dim) or not np.allclose(np.linalg.norm(vectors, axis=1), 1,
                                                          atol=1e-3):
        raise AssertionError(f"embeddings of shape {vectors.shape} are not {n} unit vectors")
    check.add(f"embed {n} texts, batch 256", n / seconds, "texts/s", f"dim {model.dim}")


def part_clip(check: Check) -> None:
    """The open_clip backend on a tiny CLIP: image-text pairs scored (CLIPScore) per second."""
    import numpy as np
    from PIL import Image

    n = check.sizes.clip_images
    name, weights, config_file = check.weights.open_clip
    seconds, model = load(check, "clip", {"backend": "open_clip", "model": name,
                                          "path": str(weights), "batch_size": 64,
                                          "options": {"model_config_file": str(config_file)}})
    check.add("load tiny CLIP (open_clip backend)", seconds, "s")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)) for _ in range(n)]
    texts = [f"a photo of trail {i}" for i in range(n)]
    model.clip_score(images[:2], texts[:2])  # warm-up
    seconds, scores = timed(check.device, lambda: model.clip_score(images, texts))
    if scores.shape != (n,) or not np.all((scores >= 0) & (scores <= 2.5)):
        raise AssertionError(f"CLIPScores {scores[:4]} ... are not {n} values in [0, 2.5]")
    check.add(f"CLIPScore {n} image-text pairs, batch 64", n / seconds, "images/s")


# --- image, video --------------------------------------------------------------------------------

def image_pipeline(check: Check, label: str, path: Path, expected: str) -> None:
    """Load one pipeline through the diffusers image backend (it must come back as the
    ``expected`` pipeline class) and time ``images`` generations after a warm-up one."""
    from tailormind.models.types import ImageRequest

    px, steps, n = check.sizes.image_px, check.sizes.image_steps, check.sizes.images
    seconds, model = load(check, "image", {
        "backend": "diffusers", "path": str(path), "dtype": check.pipeline_dtype(),
        "options": {"num_inference_steps": steps}})
    loaded = type(model.pipeline).__name__
    if loaded != expected:
        raise AssertionError(f"{label}: the backend loaded a {loaded}, not a {expected}")
    check.add(f"load tiny {label}-shaped pipeline (diffusers backend)", seconds, "s", loaded)
    requests = [ImageRequest(prompt=PROMPT, width=px, height=px, seed=i) for i in range(n + 1)]
    model.generate(requests[-1])  # warm-up
    seconds, images = timed(check.device, lambda: [model.generate(r) for r in requests[:n]])
    if any(im.image.size != (px, px) or im.kind != "generated" for im in images):
        raise AssertionError(f"{label}: expected generated {px}x{px} images")
    check.add(f"{label}: {px}x{px}, {steps} steps", seconds / n, "s/image",
              f"{check.pipeline_dtype()}, mean of {n}")


def part_image(check: Check) -> None:
    """The diffusers image backend on an SD-shaped and an SDXL-shaped pipeline (SDXL is what
    serve_configs/gpu.yaml names): s/image."""
    image_pipeline(check, "SD", check.weights.sd, "StableDiffusionPipeline")
    image_pipeline(check, "SDXL", check.weights.sdxl, "StableDiffusionXLPipeline")


def part_video(check: Check) -> None:
    """The diffusers video backend on a tiny text-to-video pipeline: s/video (H.264 included)."""
    from tailormind.models.media import probe_video
    from tailormind.models.types import Shot, Storyboard

    px, frames, steps = check.sizes.video_px, check.sizes.video_frames, check.sizes.image_steps
    seconds, model = load(check, "video", {
        "backend": "diffusers", "path": str(check.weights.video), "dtype": check.pipeline_dtype(),
        "options": {"num_inference_steps": steps, "frames_per_shot": frames}})
    check.add("load tiny text-to-video pipeline (diffusers backend)", seconds, "s",
              type(model.pipeline).__name__)
    storyboard = Storyboard(shots=(Shot(PROMPT, 1.0, "dawn"), Shot("the ridge at noon", 1.0)),
                            width=px, height=px, fps=8, seed=0)
    model.render(Storyboard(shots=storyboard.shots[:1], width=px, height=px, fps=8),
                 check.root / "warm-up.mp4")
    seconds, video = timed(check.device, lambda: model.render(storyboard, check.root / "v.mp4"))
    info = probe_video(video.path)
    if (info.codec, info.width, info.height, info.frames) != ("h264", px, px, 16):
        raise AssertionError(f"expected a 16-frame {px}x{px} H.264 video, got {info}")
    check.add(f"2 shots x {frames} frames, {px}x{px}, {steps} steps", seconds, "s/video",
              f"{check.pipeline_dtype()}, mp4 encoded")


# --- serve ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def models_app_spec(check: Check, role: str, path: Path) -> dict[str, Any]:
    """A Serve config application for ``tailormind.serve.model_app:build_app`` hosting ``role``
    on the tiny pipeline, with one GPU for its replica on CUDA (as serve_configs/gpu.yaml)."""
    from tailormind.core.backends import ROLE_SPECS

    size = check.sizes
    options = {"num_inference_steps": size.image_steps}
    if role == "video":
        options["frames_per_shot"] = size.video_frames
    block = {"backend": "diffusers", "path": str(path), "device": check.device,
             "dtype": check.pipeline_dtype(), "options": options}
    gpus = 1 if check.device.startswith("cuda") else 0
    return {"name": MODELS_APP, "route_prefix": "/models",
            "import_path": "tailormind.serve.model_app:build_app",
            "args": {"models": {"cache": False, role: block}, "roles": [role]},
            "deployments": [
                {"name": ROLE_SPECS[role].deployment,
                 "ray_actor_options": {"num_cpus": 1, "num_gpus": gpus}},
                {"name": "OpenAIIngress", "ray_actor_options": {"num_cpus": 0.25}}]}


def http_forwarder(deployments: dict[str, str]) -> Any:
    """An HTTP front for the role deployments (the models app's own routes are the OpenAI ones,
    which have no image or video): ``POST /image`` with an ImageRequest, ``POST /video`` with a
    Storyboard; answers the size of what came back. Built in a function so that Ray ships the
    class by value."""
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(name="GpuCheckHTTP", ray_actor_options={"num_cpus": 0.1})
    class GpuCheckHTTP:
        async def __call__(self, request: Request) -> JSONResponse:
            role = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            handle = serve.get_deployment_handle(deployments[role], app_name=MODELS_APP)
            body = await request.json()
            if role == "image":
                out = await handle.generate.remote(body)
                return JSONResponse({"bytes": len(out["png"]), "kind": out["kind"]})
            out = await handle.render.remote(body)
            return JSONResponse({"bytes": len(out["mp4"]), "frames": out["meta"]["frames"]})

    return GpuCheckHTTP.bind()


def deploy(spec: dict[str, Any], timeout_s: float = 180) -> None:
    """Deploy one Serve config application as ``serve run config.yaml`` does (per-deployment
    ``ray_actor_options`` applied), and wait until it runs."""
    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    _get_global_client().deploy_apps(ServeDeploySchema.model_validate({"applications": [spec]}))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = serve.status().applications.get(spec["name"])
        if app is not None and app.status == "RUNNING":
            return
        if app is not None and app.status == "DEPLOY_FAILED":
            raise RuntimeError(f"{spec['name']} failed to deploy: {app.message[-500:]}")
        time.sleep(0.5)
    raise TimeoutError(f"{spec['name']} not running after {timeout_s:.0f} s")


def post_json(url: str, body: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def local_ray(check: Check, port: int) -> Iterator[None]:
    """A throw-away local Ray cluster (one GPU on CUDA) with Serve's HTTP proxy on ``port``."""
    import ray
    from ray import serve

    os.environ["RAY_AUTH_MODE"] = "disabled"  # this cluster lives for this run only
    gpus = 1 if check.device.startswith("cuda") else 0
    env = {"HF_HUB_OFFLINE": "1", **({} if gpus else {"OMP_NUM_THREADS": "1"})}
    ray.init(num_cpus=max(4, os.cpu_count() or 1), num_gpus=gpus, include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": env})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield
    finally:
        serve.shutdown()
        ray.shutdown()


def serve_role(check: Check, role: str, path: Path, url: str, body: dict[str, Any]) -> None:
    """Deploy the models app hosting ``role`` only, time two HTTP requests, delete the app."""
    from ray import serve

    from tailormind.core.backends import ROLE_SPECS

    gpus = "num_gpus 1" if check.device.startswith("cuda") else "num_gpus 0 (cpu run)"
    spec = models_app_spec(check, role, path)
    seconds, _ = timed("cpu", lambda: deploy(spec))
    check.add(f"{role}: deploy {ROLE_SPECS[role].deployment} until running", seconds, "s", gpus)
    for attempt in ("1st", "2nd"):
        seconds, out = timed("cpu", lambda: post_json(url, body))
        if out["bytes"] <= 0:
            raise AssertionError(f"{role}: an empty answer over HTTP: {out}")
        check.add(f"{role}: HTTP round trip, {attempt} request", seconds, "s",
                  f"{gpus}; {body['width']}x{body['height']}")
    serve.delete(MODELS_APP)  # frees the GPU for the next role's replica


def part_serve(check: Check) -> None:
    """The image and video deployments of the models app, one at a time (each takes the whole
    GPU): seconds until deployed, and the round trips of two HTTP requests each."""
    from ray import serve

    from tailormind.core.backends import ROLE_SPECS
    from tailormind.models.types import ImageRequest, Shot, Storyboard

    px, port = check.sizes.serve_px, free_port()
    bodies = {"image": asdict(ImageRequest(prompt=PROMPT, width=px, height=px, seed=1)),
              "video": asdict(Storyboard(shots=(Shot(PROMPT, 1.0, "dawn"),), width=px,
                                         height=px, fps=8, seed=1))}
    with local_ray(check, port):
        serve.run(http_forwarder({r: ROLE_SPECS[r].deployment for r in bodies}),
                  name=HTTP_APP, route_prefix="/gpu-check")
        for role, path in (("image", check.weights.sd), ("video", check.weights.video)):
            serve_role(check, role, path, f"http://127.0.0.1:{port}/gpu-check/{role}",
                       bodies[role])


# --- running and reporting -------------------------------------------------------------------

PART_FUNCTIONS: dict[str, Callable[[Check], None]] = {
    "cf": part_cf, "text": part_text, "embed": part_embed, "clip": part_clip,
    "image": part_image, "video": part_video, "serve": part_serve,
}


def run_part(check: Check, part: str) -> None:
    """Run one part; an exception becomes a FAIL row (rows it measured before stay)."""
    from tailormind.models.registry import unload_all

    check.part = part
    started = time.perf_counter()
    print(f"[gpu_check] {part} ...", file=sys.stderr, flush=True)
    try:
        PART_FUNCTIONS[part](check)
    except Exception as exc:  # noqa: BLE001 - one part's failure must not stop the others
        traceback.print_exc(file=sys.stderr)
        error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        check.rows.append(Row(part, check.device, "(part raised)", None, "", False, error[:300]))
    finally:
        unload_all()
        if check.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
    print(f"[gpu_check] {part}: {time.perf_counter() - started:.1f} s", file=sys.stderr,
          flush=True)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to stdout meanwhile (by Python code, by a library writing to file
    descriptor 1, by a process started meanwhile) to stderr: stdout holds the table or JSON only."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def print_table(rows: list[Row], header_line: str) -> None:
    print(header_line)
    head = f"{'part':<6} {'device':<7} {'measured':<52} {'value':>10} {'unit':<9} status"
    print(head)
    print("-" * len(head))
    for r in rows:
        value = "-" if r.value is None else f"{r.value:.4g}"
        status = "ok" if r.ok else f"FAIL {r.error}"
        note = f"  ({r.note})" if r.note else ""
        print(f"{r.part:<6} {r.device:<7} {r.measure:<52} {value:>10} {r.unit:<9} {status}{note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes: a CPU smoke run")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts (default: all): {','.join(PARTS)}")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown or not args.parts:
        parser.error(f"--only: unknown part(s) {','.join(unknown) or '(none given)'}; "
                     f"parts: {','.join(PARTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: --device cuda, but torch sees no CUDA GPU (run with --device cpu "
              "for a CPU smoke run)", file=sys.stderr)
        return 2
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tm-gpu-check-") as tmp:
        check = Check(args.device, SIZES[args.small], Path(tmp))
        with stdout_to_stderr():  # libraries' chatter stays off the table
            for part in args.parts:
                run_part(check, part)
    wall = time.perf_counter() - started
    failed = sorted({r.part for r in check.rows if not r.ok})
    if args.json:
        print(json.dumps([asdict(r) for r in check.rows]))
    else:
        print_table(check.rows, f"TailorMind GPU check on {where} ({args.device}"
                                f"{', --small' if args.small else ''}), tiny random weights "
                                f"except the cf graph size")
        print(f"\n{len(check.rows)} rows, {len(failed)} part(s) failed"
              f"{': ' + ', '.join(failed) if failed else ''}; wall time {wall:.1f} s")
    print(f"gpu_check: wall time {wall:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
