"""Profiling and generation cost, and reflection gain, with the embedded models: the text runtime
before (transformers) and after (llama.cpp) side by side on the same users.

    python benchmarks/generation.py --workspace WS [--users 20] [--video-users 5]
                                    [--platform rednote] [--runtimes transformers,llamacpp]
                                    [--cache]

Needs a workspace with item descriptions (`profile describe`) and CF top-K. It works on a
scratch copy of the workspace (profiles are made again there, ``force``), so WS is not changed.
For each runtime of the embedded SmolLM2 (``models.text.options.runtime``; a configured non-
embedded text backend runs once, as "configured"): the seeded sample of ``--users`` users is
profiled (timed), then a post is made for each and a short video for the first
``--video-users`` of them. The model call cache is off unless ``--cache``, so the numbers are
model time.

Prints, per runtime: profiling s and LLM tokens per user; per kind, seconds by stage (inputs,
exemplars, ideate, writing, images, scoring, media, bundle) and LLM tokens per post; relevance
(cosine between the post text and the history centroid) before reflection (round 0) and after
(the kept version), its gain, how many posts improved; the field success rate (ideas repaired
or fallen back, drafts with empty fields); objective novelty (1 - max cosine to a catalogue
item); the fallbacks recorded; then, with two runtimes, each measure as a paired difference
(after − before, the same users) with a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: The generator's clock labels (tailormind.generation.steps.StepClock): steps 1-3, step 4 split
#: into writing / images / scoring, then media (the video) and the bundle.
STAGES = ("inputs", "exemplars", "ideate", "writing", "images", "scoring", "media", "bundle")


def runtime_settings(runtime: str, cache: bool):
    from tailormind.config import load_config

    overrides: dict = {} if cache else {"models": {"cache": False}}
    if runtime != "configured":
        overrides.setdefault("models", {})["text"] = {"options": {"runtime": runtime}}
    return load_config(overrides=overrides)


def run_runtime(ws_root: Path, runtime: str, args: argparse.Namespace) -> dict:
    """Profiles and posts made with one runtime: timings, tokens and the posts' records."""
    from tailormind.core.sampling import sample_users
    from tailormind.data.workspace import Workspace
    from tailormind.generation.batch import generate_users, plan_generations
    from tailormind.generation.bundle_scan import read_bundles
    from tailormind.generation.pipeline import Generator, Roles
    from tailormind.profiling.profiles import profile_users

    settings = runtime_settings(runtime, args.cache)
    ws = Workspace.open(ws_root)
    users = sample_users(ws.read("candidates", columns=["user_id"]).column("user_id").unique()
                         .to_pylist(), args.users, settings.seeds.generation)
    roles = Roles.load(settings)
    started = time.perf_counter()
    report = profile_users(ws, settings, users=users, force=True)
    profiling = {"users": report.profiled, "seconds": time.perf_counter() - started,
                 "tokens": report.prompt_tokens + report.completion_tokens}
    print(f"[{runtime}] profiles: {report.profiled} in {profiling['seconds']:.0f} s", flush=True)
    generator = Generator(ws, settings, roles=roles)
    made: dict[str, list[dict]] = {}
    for kind, chosen in (("post", users), ("video", users[: args.video_users])):
        if not chosen:
            continue
        plan = plan_generations(ws, settings, users=chosen, kinds=[kind],
                                platform=args.platform, force=True)
        ids = {t.post_id for t in plan.todo}
        started = time.perf_counter()
        done = generate_users(ws, settings, plan, generator=generator,
                              progress=lambda n: print(".", end="", flush=True))
        print(f"\n[{runtime}] {kind}: {done.generated} made in "
              f"{time.perf_counter() - started:.0f} s, {len(done.failed)} failed", flush=True)
        made[kind] = [p.record.to_json() for p in read_bundles(ws.root)
                      if p.record.post_id in ids]
    novelty = objective_novelties(ws, roles.embed, made)
    models = {"text": roles.text.model_id, "embed": roles.embed.model_id}
    return {"profiling": profiling, "made": made, "novelty": novelty, "models": models}


def objective_novelties(ws, embed, made: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Objective novelty per kind and user: 1 - max cosine between a post and any catalogue
    item."""
    import numpy as np

    from tailormind.bench.content_metrics import objective_novelty
    from tailormind.generation.post_record import parse_post_record

    features = ws.read("item_features", columns=["embedding"]).column("embedding").to_pylist()
    catalogue = np.asarray(features, dtype=np.float32)
    out = {}
    for kind, records in made.items():
        texts = [parse_post_record(r).reader_text() for r in records]
        if texts:
            vectors = embed.embed(texts)
            out[kind] = {r["user_id"]: objective_novelty(v, catalogue)
                         for r, v in zip(records, vectors, strict=True)}
    return out


def print_profiling(results: dict[str, dict]) -> None:
    print("\n| runtime | users profiled | s per user | LLM tokens per user |")
    print("|---|---|---|---|")
    for runtime, result in results.items():
        p = result["profiling"]
        n = max(p["users"], 1)
        print(f"| {runtime} | {p['users']} | {p['seconds'] / n:.1f} | {p['tokens'] / n:.0f} |")


def print_stages(results: dict[str, dict]) -> None:
    print("\n| runtime | kind | posts | " + " | ".join(f"{s} s" for s in STAGES)
          + " | total s | LLM tokens (ideation / writing) |")
    print("|---|---|---|" + "---|" * (len(STAGES) + 2))
    for runtime, result in results.items():
        for kind, records in result["made"].items():
            if not records:
                continue
            seconds = defaultdict(list)
            for r in records:
                for stage in STAGES:
                    seconds[stage].append(r["seconds_by_stage"].get(stage, 0.0))
            tokens = {s: mean(r["tokens_by_stage"].get(s, 0) for r in records)
                      for s in ("ideate", "writing")}
            print(f"| {runtime} | {kind} | {len(records)} | "
                  + " | ".join(f"{mean(seconds[s]):.1f}" for s in STAGES)
                  + f" | {mean(r['seconds'] for r in records):.1f} | "
                  f"{tokens['ideate'] + tokens['writing']:.0f} ({tokens['ideate']:.0f} / "
                  f"{tokens['writing']:.0f}) |")


def print_quality(results: dict[str, dict]) -> None:
    print("\n| runtime | kind | posts | relevance round 0 | relevance kept | mean gain | improved "
          "| rounds run (mean) | ideas repaired | ideas fell back | drafts with empty fields | "
          "objective novelty |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for runtime, result in results.items():
        for kind, records in result["made"].items():
            if records:
                novelty = result["novelty"].get(kind, {})
                print(f"| {runtime} | {kind} | {quality_cells(records)} | "
                      f"{mean(novelty.values()) if novelty else float('nan'):.3f} |")
    for runtime, result in results.items():
        fallbacks: Counter = Counter()
        for records in result["made"].values():
            for r in records:
                fallbacks.update(f.split(":")[0] for f in r["fallbacks"])
        print(f"\nfallbacks recorded ({runtime}): "
              + (", ".join(f"{k} {v}" for k, v in fallbacks.most_common()) or "none"))


#: Per-post measures compared between the runtimes, paired by user: name -> value of a record.
PAIRED = {
    "relevance kept": lambda r: r["reflection"]["best"]["relevance"],
    "relevance round 0": lambda r: r["reflection"]["rounds"][0]["relevance"],
    "drafts with empty fields": lambda r: sum(bool(d.get("empty")) for d in r["drafts"]),
    "seconds": lambda r: r["seconds"],
}


def print_paired(results: dict[str, dict]) -> None:
    """after − before per measure and kind over the users both runtimes made a post for, with a
    95% paired-bootstrap interval (``tailormind.core.bootstrap.paired_difference``)."""
    from tailormind.core.bootstrap import paired_difference

    if len(results) < 2:
        return
    (before, first), (after, last) = list(results.items())[0], list(results.items())[-1]
    print(f"\n| kind | measure | {after} − {before} [95% paired bootstrap] | n | "
          f"{after} higher / lower |")
    print("|---|---|---|---|---|")
    for kind in first["made"]:
        a = {r["user_id"]: r for r in last["made"].get(kind, [])}
        b = {r["user_id"]: r for r in first["made"][kind]}
        users = sorted(a.keys() & b.keys())
        measures = {name: ([get(a[u]) for u in users], [get(b[u]) for u in users])
                    for name, get in PAIRED.items()}
        novelty = (last["novelty"].get(kind, {}), first["novelty"].get(kind, {}))
        measures["objective novelty"] = ([novelty[0].get(u) for u in users],
                                         [novelty[1].get(u) for u in users])
        for name, (after_values, before_values) in measures.items():
            d = paired_difference(after_values, before_values, a=after, b=before, metric=name)
            e = d.difference
            print(f"| {kind} | {name} | {e.mean:+.3f} [{e.low:+.3f}, {e.high:+.3f}] | {e.n} | "
                  f"{d.wins} / {d.losses} |")


def quality_cells(records: list[dict]) -> str:
    first = [r["reflection"]["rounds"][0]["relevance"] for r in records]
    kept = [r["reflection"]["best"]["relevance"] for r in records]
    improved = sum(k > f + 1e-9 for f, k in zip(first, kept, strict=True))
    ideation = [r["ideation"] for r in records]
    repaired = sum(bool(i.get("repaired") or i.get("empty") or i.get("type_coerced"))
                   for i in ideation)
    fell_back = sum(bool(i.get("fallback")) for i in ideation)
    drafts = [d for r in records for d in r["drafts"]]
    empty = sum(bool(d.get("empty")) for d in drafts)
    return (f"{len(records)} | {mean(first):.3f} | {mean(kept):.3f} | "
            f"{mean(kept) - mean(first):+.3f} | {improved}/{len(records)} | "
            f"{mean(len(r['reflection']['rounds']) for r in records):.1f} | "
            f"{repaired}/{len(records)} | {fell_back}/{len(records)} | {empty}/{len(drafts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--video-users", type=int, default=5)
    parser.add_argument("--platform", default=None)
    parser.add_argument("--runtimes", default="transformers,llamacpp",
                        help="SmolLM2 runtimes to compare (before,after)")
    parser.add_argument("--cache", action="store_true", help="keep the model call cache on")
    args = parser.parse_args()

    from tailormind.models.registry import unload_all

    embedded = runtime_settings("configured", args.cache).models.text.backend == "smollm2"
    runtimes = args.runtimes.split(",") if embedded else ["configured"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tailormind-genbench-") as tmp:
        for runtime in runtimes:
            scratch = Path(tmp) / runtime / Path(args.workspace).name
            shutil.copytree(args.workspace, scratch, ignore=shutil.ignore_patterns("generations"))
            results[runtime] = run_runtime(scratch, runtime, args)
            unload_all()
    name, models = Path(args.workspace).name, next(iter(results.values()))["models"]
    print(f"\n## Generation on {name} — text {models['text']} ({', '.join(runtimes)}), "
          f"embed {models['embed']}")
    print_profiling(results)
    print_stages(results)
    print_quality(results)
    print_paired(results)


if __name__ == "__main__":
    main()
