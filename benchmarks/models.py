"""Speed of the embedded model roles, and what Ray Serve adds on top of an in-process call.

    python benchmarks/models.py [--skip-serve] [--json] [--tiny] [--cache-dir DIR]

Rows: SmolLM2 load (cold = GGUF dequantisation, cached = the saved float weights), prefill and
decode tokens/s (batch 1 and 8), MiniLM texts/s, cover-card render ms, slideshow encode s, and the
median round trip of the same call in-process vs through the Serve OpenAI route over HTTP.
Every model call runs with the call cache off, so the numbers are compute, not cache hits.
``--tiny`` makes every measurement small (a short prompt, a few tokens, few texts, a small card
and video, one Serve call): a smoke run, not numbers to quote. ``--cache-dir`` keeps SmolLM2's
dequantised weights there between runs (default: a temporary directory, so the cold load is
cold).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tailormind.config import load_config  # noqa: E402
from tailormind.models.assets import smollm2_gguf  # noqa: E402
from tailormind.models.registry import load_role, unload_all  # noqa: E402
from tailormind.models.text_transformers import TransformersText  # noqa: E402
from tailormind.models.types import GenerationParams, ImageRequest, Shot, Storyboard  # noqa: E402

PROMPT_WORDS = ("The user watched science fiction films, slow dramas about families, and "
                "documentaries about mountains and the sea. ")


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    result = None
    started = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    return (time.perf_counter() - started) / repeat, result


#: measurement sizes: normal, and --tiny (a smoke run)
SIZES = {
    False: {"prompt_tokens": 512, "repeat": 3, "batches": (1, 8), "new_tokens": 64,
            "texts": 2000, "card": (1080, 1440), "card_repeat": 10,
            "video": (5, 3.0, 720, 1280, 24)},
    True: {"prompt_tokens": 64, "repeat": 1, "batches": (1, 2), "new_tokens": 8,
           "texts": 64, "card": (270, 360), "card_repeat": 2, "video": (2, 1.0, 128, 128, 8)},
}


def bench_text(rows: list[tuple[str, str, str]], cache_dir: Path,
               size: dict | None = None) -> TransformersText:
    size = size or SIZES[False]
    gguf = smollm2_gguf()

    def load() -> TransformersText:
        return TransformersText(gguf.parent, gguf_file=gguf.name, weights_cache=cache_dir / "weights",
                                backend="smollm2", model_id="smollm2", cache=None)

    cold, _ = timed(load)
    cached, model = timed(load)
    rows.append(("SmolLM2 load, cold (GGUF dequantise + save)", f"{cold:.1f}", "s"))
    rows.append(("SmolLM2 load, cached float weights", f"{cached:.2f}", "s"))

    import torch

    tokenizer = model.tokenizer
    ids = tokenizer(PROMPT_WORDS * 24, return_tensors="pt")["input_ids"][:, :size["prompt_tokens"]]
    with torch.inference_mode():
        model.model(ids)  # warm-up
        prefill, _ = timed(lambda: model.model(ids), repeat=size["repeat"])
    rows.append((f"SmolLM2 prefill ({ids.shape[1]}-token prompt)", f"{ids.shape[1] / prefill:.0f}",
                 "tokens/s"))

    new_tokens = size["new_tokens"]
    for batch in size["batches"]:
        conversations = [[{"role": "user", "content": f"Write a short note about hiking, #{i}."}]
                         for i in range(batch)]
        params = GenerationParams(max_tokens=new_tokens)
        seconds, answers = timed(lambda: model._generate(conversations, params, None))
        tokens = sum(a.completion_tokens for a in answers)
        rows.append((f"SmolLM2 decode, batch {batch} ({new_tokens} new tokens max)",
                     f"{tokens / seconds:.1f}", "tokens/s"))
    return model


def bench_embed(rows: list[tuple[str, str, str]], settings, size: dict | None = None) -> None:
    import pandas as pd

    size = size or SIZES[False]
    movies = pd.read_csv(REPO / "data" / "ml-latest-small" / "movies.csv").head(size["texts"])
    texts = [f"{t}. Genres: {g.replace('|', ', ')}" for t, g in zip(movies.title, movies.genres)]
    embedder = load_role("embed", settings)
    embedder.embed(texts[:64])  # warm-up
    seconds, _ = timed(lambda: embedder.embed(texts))
    rows.append((f"MiniLM embed ({len(texts)} movie texts, batch {embedder.batch_size})",
                 f"{len(texts) / seconds:.0f}", "texts/s"))


def bench_media(rows: list[tuple[str, str, str]], settings, workdir: Path,
                size: dict | None = None) -> None:
    size = size or SIZES[False]
    card = load_role("image", settings)
    width, height = size["card"]
    request = ImageRequest(prompt="Five quiet trails near the city, and what to pack for each",
                           width=width, height=height, phrases=("easy", "scenic", "适合新手"),
                           palette_hint="hiking")
    card.generate(request)
    seconds, _ = timed(lambda: card.generate(request), repeat=size["card_repeat"])
    rows.append((f"cover card render, {width}x{height}", f"{seconds * 1000:.0f}", "ms"))
    video = load_role("video", settings)
    shots, shot_s, width, height, fps = size["video"]
    storyboard = Storyboard(shots=tuple(Shot(f"Shot {i}", shot_s, f"caption {i}")
                                        for i in range(shots)),
                            width=width, height=height, fps=fps)
    seconds, result = timed(lambda: video.render(storyboard, workdir / "bench.mp4"))
    rows.append((f"slideshow encode, {shots * shot_s:g} s {width}x{height} @{fps} fps "
                 f"({result.frames} frames)", f"{seconds:.1f}", "s"))


def bench_serve(rows: list[tuple[str, str, str]], settings, cache_dir: Path, repeat: int) -> None:
    import httpx
    import ray
    from ray import serve

    from tailormind.serve.model_app import build_app

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throw-away local cluster
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app({"models": {"cache": False, "cache_dir": str(cache_dir)},
                             "roles": ["text", "embed"]}),
                  name="tailormind-models", route_prefix="/models")
        base = f"http://127.0.0.1:{port}/models/v1"
        text, embedder = load_role("text", settings), load_role("embed", settings)
        params = GenerationParams(max_tokens=16)
        conversation = [{"role": "user", "content": "Say hello."}]
        chat_body = {"model": "smollm2-135m-instruct", "messages": conversation, "max_tokens": 16}
        embed_body = {"model": "all-minilm-l6-v2", "input": ["a quiet beach at dawn"]}
        with httpx.Client(timeout=120) as client:
            cases = [
                ("embed 1 text", lambda: embedder.embed(["a quiet beach at dawn"]),
                 lambda: client.post(f"{base}/embeddings", json=embed_body).raise_for_status()),
                ("chat, 16 tokens", lambda: text.complete([conversation], params),
                 lambda: client.post(f"{base}/chat/completions",
                                     json=chat_body).raise_for_status()),
            ]
            for name, local, remote in cases:
                local(), remote()  # warm-up
                local_s = statistics.median(timed(local)[0] for _ in range(repeat))
                remote_s = statistics.median(timed(remote)[0] for _ in range(repeat))
                rows.append((f"{name}: in-process / Serve HTTP (median of {repeat})",
                             f"{local_s * 1000:.1f} / {remote_s * 1000:.1f}", "ms"))
                rows.append((f"{name}: Serve overhead", f"{(remote_s - local_s) * 1000:+.1f}", "ms"))
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-serve", action="store_true", help="Skip the Ray Serve rows.")
    parser.add_argument("--repeat", type=int, default=10, help="Calls per Serve timing.")
    parser.add_argument("--json", action="store_true", help="Print JSON rows.")
    parser.add_argument("--tiny", action="store_true",
                        help="Small measurements, one Serve call: a smoke run (tests).")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="Keep SmolLM2's dequantised weights here (default: a temp dir).")
    args = parser.parse_args()
    size = SIZES[args.tiny]
    repeat = 1 if args.tiny else args.repeat
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tailormind-bench-") as tmp:
        workdir = Path(tmp)
        cache_dir = args.cache_dir or workdir
        settings = load_config(environ={}, overrides={"models": {"cache": False,
                                                                 "cache_dir": str(cache_dir)}})
        bench_text(rows, cache_dir, size)
        bench_embed(rows, settings, size)
        bench_media(rows, settings, workdir, size)
        if not args.skip_serve:
            bench_serve(rows, settings, cache_dir, repeat)
        unload_all()
    if args.json:
        print(json.dumps([{"measure": m, "value": v, "unit": u} for m, v, u in rows], indent=2))
        return
    width = max(len(m) for m, _, _ in rows)
    print(f"{'measure':<{width}}  {'value':>14}  unit")
    for measure, value, unit in rows:
        print(f"{measure:<{width}}  {value:>14}  {unit}")


if __name__ == "__main__":
    main()
