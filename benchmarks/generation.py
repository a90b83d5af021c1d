"""Generation cost and reflection gain on ml-latest-small with the embedded models.

    python benchmarks/generation.py --workspace WS [--users 20] [--video-users 5]
                                    [--platform rednote] [--cache]

Needs a workspace with item descriptions (`profile describe`) and CF top-K; users of the seeded
sample without a profile are profiled first (timed apart). Then every post is made again
(``force``; the model call cache is off unless ``--cache``, so the numbers are model time), a
post for each of ``--users`` users and a short video for the first ``--video-users`` of them.

Prints, per kind: seconds and LLM tokens per post by stage (exemplars, ideation, writing,
media, reflection, video, bundle); relevance (cosine between the post text and the history
centroid) before reflection (round 0) and after (the kept version), its mean gain and how many
posts improved; the share of ideas that needed repair (JSON repaired or re-asked, a field answer
empty, a type coerced) or fell back; the fallbacks recorded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: The generator's clock labels (tailormind.generation.steps.StepClock): steps 1-3, step 4 split
#: into writing / images / scoring, then media (the video) and the bundle.
STAGES = ("inputs", "exemplars", "ideate", "writing", "images", "scoring", "media", "bundle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--video-users", type=int, default=5)
    parser.add_argument("--platform", default=None)
    parser.add_argument("--cache", action="store_true", help="keep the model call cache on")
    args = parser.parse_args()

    from tailormind.config import load_config
    from tailormind.data.workspace import Workspace
    from tailormind.generation.batch import generate_users, plan_generations
    from tailormind.generation.bundle_scan import read_bundles
    from tailormind.generation.pipeline import Generator, Roles
    from tailormind.core.sampling import sample_users
    from tailormind.profiling.profiles import profile_users

    overrides = {} if args.cache else {"models": {"cache": False}}
    settings = load_config(overrides=overrides)
    ws = Workspace.open(args.workspace)
    users = sample_users(ws.read("candidates", columns=["user_id"]).column("user_id").unique()
                         .to_pylist(), args.users, settings.seeds.generation)
    started = time.perf_counter()
    report = profile_users(ws, settings, users=users)
    print(f"profiles: {report.profiled} made now, {report.skipped_done} reused "
          f"({time.perf_counter() - started:.0f} s)", flush=True)

    roles = Roles.load(settings)
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
        print(f"\n{kind}: {done.generated} made in {time.perf_counter() - started:.0f} s, "
              f"{len(done.failed)} failed", flush=True)
        made[kind] = [p.record.to_json() for p in read_bundles(ws.root)
                      if p.record.post_id in ids]

    text_model = roles.text.model_id
    print(f"\n## Generation on {ws.root.name} — text {text_model}, embed {roles.embed.model_id}, "
          f"image {roles.image.model_id}, video {roles.video.model_id if roles.video else '-'}, "
          f"clip {'none' if roles.clip is None else roles.clip.model_id}\n")
    print("| kind | posts | " + " | ".join(f"{s} s" for s in STAGES) + " | total s | "
          "LLM tokens (ideation / writing) |")
    print("|---|---|" + "---|" * (len(STAGES) + 2))
    for kind, records in made.items():
        if not records:
            continue
        seconds = defaultdict(list)
        for r in records:
            for stage in STAGES:
                seconds[stage].append(r["seconds_by_stage"].get(stage, 0.0))
        tokens = {s: mean(r["tokens_by_stage"].get(s, 0) for r in records)
                  for s in ("ideate", "writing")}
        print(f"| {kind} | {len(records)} | "
              + " | ".join(f"{mean(seconds[s]):.1f}" for s in STAGES)
              + f" | {mean(r['seconds'] for r in records):.1f} | "
              f"{tokens['ideate'] + tokens['writing']:.0f} ({tokens['ideate']:.0f} / "
              f"{tokens['writing']:.0f}) |")

    print("\n| kind | posts | relevance round 0 | relevance kept | mean gain | improved | "
          "rounds run (mean) | ideas repaired | ideas fell back | drafts with empty fields |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fallbacks: Counter = Counter()
    for kind, records in made.items():
        if not records:
            continue
        first = [r["reflection"]["rounds"][0]["relevance"] for r in records]
        kept = [r["reflection"]["best"]["relevance"] for r in records]
        improved = sum(k > f + 1e-9 for f, k in zip(first, kept, strict=True))
        ideation = [r["ideation"] for r in records]
        repaired = sum(bool(i.get("repaired") or i.get("empty") or i.get("type_coerced"))
                       for i in ideation)
        fell_back = sum(bool(i.get("fallback")) for i in ideation)
        drafts = [d for r in records for d in r["drafts"]]
        empty = sum(bool(d.get("empty")) for d in drafts)
        for r in records:
            fallbacks.update(f.split(":")[0] for f in r["fallbacks"])
        print(f"| {kind} | {len(records)} | {mean(first):.3f} | {mean(kept):.3f} | "
              f"{mean(kept) - mean(first):+.3f} | {improved}/{len(records)} | "
              f"{mean(len(r['reflection']['rounds']) for r in records):.1f} | "
              f"{repaired}/{len(records)} | {fell_back}/{len(records)} | "
              f"{empty}/{len(drafts)} |")
    print("\nfallbacks recorded: " + (", ".join(f"{k} {v}" for k, v in fallbacks.most_common())
                                     or "none"))


if __name__ == "__main__":
    main()
