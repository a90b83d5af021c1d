"""Speed of the embedded model roles, and what Ray Serve adds on top of an in-process call.

    python benchmarks/models.py [--skip-serve] [--json] [--tiny] [--cache-dir DIR]

SmolLM2 rows compare its two runtimes on the same prompts, side by side: before = transformers
(the Q4_1 GGUF dequantised to float32), after = llama.cpp (a float32 GGUF of the same values,
batched sequences sharing the prompt prefix). Per runtime: load (cold = convert the GGUF and
save it, cached = load the saved copy), chat templating + tokenisation, prefill tokens/s, decode
tokens/s at batch 1 and 8, a draft's six field questions over one context (what the writer
asks), and for llama.cpp the share of that time spent outside ``llama_decode`` (Python).
Then MiniLM texts/s, cover-card render ms, slideshow encode s, and the median round trip of the
same call in-process vs through the Serve OpenAI route over HTTP.
Every model call runs with the call cache off, so the numbers are compute, not cache hits.
``--tiny`` makes every measurement small (a short prompt, a few tokens, few texts, a small card
and video, one Serve call): a smoke run, not numbers to quote. ``--cache-dir`` keeps SmolLM2's
converted weights there between runs (default: a temporary directory, so the cold load is
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
from tailormind.models.registry import load_role, unload_all  # noqa: E402
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
            "field_context": 4,
            "texts": 2000, "card": (1080, 1440), "card_repeat": 10,
            "video": (5, 3.0, 720, 1280, 24)},
    True: {"prompt_tokens": 64, "repeat": 1, "batches": (1, 2), "new_tokens": 8,
           "field_context": 1,
           "texts": 64, "card": (270, 360), "card_repeat": 2, "video": (2, 1.0, 128, 128, 8)},
}


#: The text runtimes compared side by side: before (transformers) and after (llama.cpp).
RUNTIMES = ("transformers", "llamacpp")
#: A draft's field questions: one context, six questions (title, body, pictures), as the writer
#: asks them (tailormind/generation/fields.py).
FIELD_QUESTIONS = ("Give it a catchy title.", "Write the body of the post.",
                   "Describe picture 1.", "Describe picture 2.", "Describe picture 3.",
                   "Name the mood in two words.")


def load_text(runtime: str, cache_dir: Path):
    """SmolLM2 on ``runtime`` with its converted weights under ``cache_dir`` (call cache off)."""
    settings = load_config(environ={}, overrides={"models": {
        "cache": False, "cache_dir": str(cache_dir), "text": {"options": {"runtime": runtime}}}})
    return load_role("text", settings)


def bench_text(cache_dir: Path, size: dict | None = None) -> dict[str, dict[str, float]]:
    """``{measure: {runtime: value}}`` for both runtimes on the same prompts."""
    size = size or SIZES[False]
    out: dict[str, dict[str, float]] = {}
    for runtime in RUNTIMES:
        for measure, value in text_measures(runtime, cache_dir, size).items():
            out.setdefault(measure, {})[runtime] = value
        unload_all()
    return out


def text_measures(runtime: str, cache_dir: Path, size: dict) -> dict[str, float]:
    cold, _ = timed(lambda: load_text(runtime, cache_dir))
    unload_all()
    cached, model = timed(lambda: load_text(runtime, cache_dir))
    rows = {"load, cold (convert the GGUF + save) s": cold, "load, cached s": cached}
    words = PROMPT_WORDS * 24
    long_ask = [{"role": "user", "content": words}]
    tokenise, tokens = timed(lambda: prompt_tokens(model, long_ask), repeat=size["repeat"])
    rows["chat template + tokenise, one prompt ms"] = tokenise * 1000
    n = min(size["prompt_tokens"], len(tokens))
    cut = [{"role": "user", "content": model_text_of(model, tokens[:n])}]
    def prefill_once() -> None:
        if hasattr(model, "engine"):
            model.engine.forget()  # no prefix kept from the previous repeat
        model._generate([cut], GenerationParams(max_tokens=1), None)

    prefill, _ = timed(prefill_once, repeat=size["repeat"])
    rows[f"prefill, {n}-token prompt tokens/s"] = n / prefill
    for batch in size["batches"]:
        conversations = [[{"role": "user", "content": f"Write a short note about hiking, #{i}."}]
                         for i in range(batch)]
        params = GenerationParams(max_tokens=size["new_tokens"])
        seconds, answers = timed(lambda: model._generate(conversations, params, None))
        rows[f"decode, batch {batch} ({size['new_tokens']} new tokens max) tokens/s"] = (
            sum(a.completion_tokens for a in answers) / seconds)
    context = PROMPT_WORDS * size["field_context"]
    fields = [[{"role": "user", "content": f"{context}\n\n{q}"}] for q in FIELD_QUESTIONS]
    params = GenerationParams(max_tokens=size["new_tokens"], stop=("\n",))
    if hasattr(model, "engine"):
        model.engine.forget()
    seconds, _ = timed(lambda: model._generate(fields, params, None))
    rows["a draft's 6 field questions over one context s"] = seconds
    engine = getattr(model, "engine", None)
    if engine is not None:  # where llama.cpp's time goes: inside llama_decode or around it
        engine.decode_seconds = 0.0
        seconds, _ = timed(lambda: model._generate(fields, params, None))
        rows["a draft's 6 field questions, share outside llama_decode (Python) %"] = (
            100 * (seconds - engine.decode_seconds) / seconds)
    return rows


def prompt_tokens(model, conversation) -> list[int]:
    """The chat-formatted prompt's tokens, as the runtime makes them."""
    if hasattr(model, "engine"):
        from tailormind.models.text_llamacpp import render_chat

        return model.engine.tokenize(render_chat(model.template, conversation, model.engine))
    from tailormind.models.text_transformers import _chat_prompt

    return model.tokenizer(_chat_prompt(model.tokenizer, conversation),
                           add_special_tokens=False)["input_ids"]


def model_text_of(model, tokens: list[int]) -> str:
    if hasattr(model, "engine"):
        return model.engine.detokenize(tokens)
    return model.tokenizer.decode(tokens, skip_special_tokens=True)


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


def text_rows(measures: dict[str, dict[str, float]]) -> list[tuple[str, str, str, str]]:
    """``(measure, before, after, unit)``: transformers before, llama.cpp after."""
    rows = []
    for label, values in measures.items():
        measure, unit = label.rsplit(" ", 1)
        before, after = (values.get(r) for r in RUNTIMES)
        rows.append((f"SmolLM2 {measure}", _fmt(before), _fmt(after), unit))
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-serve", action="store_true", help="Skip the Ray Serve rows.")
    parser.add_argument("--repeat", type=int, default=10, help="Calls per Serve timing.")
    parser.add_argument("--json", action="store_true", help="Print JSON rows.")
    parser.add_argument("--tiny", action="store_true",
                        help="Small measurements, one Serve call: a smoke run (tests).")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="Keep SmolLM2's converted weights here (default: a temp dir).")
    args = parser.parse_args()
    size = SIZES[args.tiny]
    repeat = 1 if args.tiny else args.repeat
    other: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tailormind-bench-") as tmp:
        workdir = Path(tmp)
        cache_dir = args.cache_dir or workdir
        settings = load_config(environ={}, overrides={"models": {"cache": False,
                                                                 "cache_dir": str(cache_dir)}})
        rows = text_rows(bench_text(cache_dir, size))
        bench_embed(other, settings, size)
        bench_media(other, settings, workdir, size)
        if not args.skip_serve:
            bench_serve(other, settings, cache_dir, repeat)
        unload_all()
    rows += [(measure, "-", value, unit) for measure, value, unit in other]
    if args.json:
        print(json.dumps([{"measure": m, "before": b, "after": a, "unit": u}
                          for m, b, a, u in rows], indent=2))
        return
    width = max(len(m) for m, _, _, _ in rows)
    print("before: SmolLM2 on transformers (float32); after: on llama.cpp (float16 GGUF, "
          "shared-prefix batches)")
    print(f"{'measure':<{width}}  {'before':>10}  {'after':>14}  unit")
    for measure, before, after, unit in rows:
        print(f"{measure:<{width}}  {before:>10}  {after:>14}  {unit}")


if __name__ == "__main__":
    main()
