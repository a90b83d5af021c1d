"""Profiling quality and cost on ml-latest-small, and orchestration overhead at 10,000 users.

    python benchmarks/profiling.py quality  [--workspace WS] [--users 100] [--variants ...]
                                            [--variant-users 30] [--llm-ranker-users 20]
    python benchmarks/profiling.py overhead [--users 10000] [--items 2000]
    python benchmarks/profiling.py describe [--items 17600] [--max-tags 500] [--before-items 4]

``quality`` runs the missing stages on the bundled MovieLens data (import, split, describe,
HypergraphCF + LightGCN, cf_topk), profiles a seeded sample of users with the embedded models,
fits the hybrid ranker on validation, runs the ablations (``nocf`` on the whole sample; no
rejection of worse updates, Z_u with 3 train items, and refinement with the hybrid ranker on the
first ``--variant-users`` of it), then prints the evaluation table (with the listwise LLM ranker
on ``--llm-ranker-users``) and the refinement curve.
``describe`` times the describe stage on a synthetic tag-heavy catalogue (titles plus up to
``--max-tags`` tags from a Zipf-distributed vocabulary, like a music catalogue's user tags):
after = tags cut to the most informative that fit (``profiling.tag_lists: select``, MiniLM only)
on every item; before = the whole title + tag list summarised by SmolLM2 on transformers when
over 600 characters (``tag_lists: summarise``, the old pipeline) on the first
``--before-items`` items, projected to the catalogue.
``overhead`` profiles synthetic users with a zero-latency text model and the MiniLM embedding
ranker, and reports the time per user that is not model time (the orchestration overhead).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tailormind.config import load_config  # noqa: E402
from tailormind.models.roles import TextModel  # noqa: E402
from tailormind.models.types import Completion  # noqa: E402


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    import os

    exe = Path(sys.executable).with_name("tailormind")
    result = subprocess.run([str(exe), *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode:
        raise SystemExit(f"tailormind {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


#: Ablations profiled on the first ``--variant-users`` users of the same seeded sample:
#: name -> environment overrides. ``hybridrank`` refines with the hybrid ranker, whose weights
#: the first ``profile eval`` fits on validation.
VARIANTS = {
    "nocf": {"TAILORMIND_PROFILING__USE_CF": "false"},
    "noreject": {"TAILORMIND_PROFILING__REJECT_WORSE_UPDATES": "false"},
    "z3": {"TAILORMIND_PROFILING__Z_TRAIN_ITEMS": "3"},
    "hybridrank": {"TAILORMIND_PROFILING__RANKER": "hybrid"},
}


def quality(args: argparse.Namespace) -> None:
    from tailormind.data.workspace import MANIFEST, Workspace

    ws = Path(args.workspace)
    if not (ws / MANIFEST).exists():
        cli("data", "import", "--format", "movielens", str(REPO / "data" / "ml-latest-small"),
            "--workspace", str(ws))
    workspace = Workspace.open(ws)
    if not workspace.has("split"):
        cli("data", "split", "--workspace", str(ws))
    if not workspace.has("item_features"):
        cli("profile", "describe", "--workspace", str(ws))
    workspace = Workspace.open(ws)
    for model in ("hypergraph", "lightgcn"):
        if not workspace.has_artifact(f"cf:{model}"):
            cli("cf", "train", "--workspace", str(ws), "--model", model)
    if not Workspace.open(ws).has("cf_topk"):
        cli("cf", "recommend", "--workspace", str(ws))
    timed("profiles", "profile", "run", "--workspace", str(ws), "--users", str(args.users))
    timed("eval (fits the hybrid)", "profile", "eval", "--workspace", str(ws))
    for name in args.variants:
        users = args.users if name == "nocf" else args.variant_users
        timed(f"variant {name}", "profile", "run", "--workspace", str(ws), "--users",
              str(args.users), "--limit", str(users), "--variant", name, env=VARIANTS[name])
    timed("eval", "profile", "eval", "--workspace", str(ws),
          "--llm-ranker-users", str(args.llm_ranker_users))


def timed(label: str, *args: str, env: dict[str, str] | None = None) -> None:
    started = time.perf_counter()
    print(cli(*args, env=env), flush=True)
    print(f"[{label}: {time.perf_counter() - started:.0f} s wall]", flush=True)


class InstantText(TextModel):
    """Zero-latency text model: a fixed, usable answer for every prompt."""

    def __init__(self) -> None:
        super().__init__(backend="instant", model_id="instant")

    def _generate(self, batch, params, json_schema):
        return [Completion(text="Likes thoughtful stories about tag00001 and tag00002, "
                                "and dislikes noise.", model="instant") for _ in batch]


def overhead(args: argparse.Namespace) -> None:
    from tailormind.cf.checkpoint import save_checkpoint
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.recommend import recommend_workspace
    from tailormind.cf.train import train_model
    from tailormind.data.importers import import_synthetic
    from tailormind.data.ingest import save_import
    from tailormind.data.split import split_workspace
    from tailormind.models.registry import load_role
    from tailormind.profiling.evidence import ItemFeatures
    from tailormind.profiling.items import describe_items
    from tailormind.profiling.profiler import Profiler
    from tailormind.profiling.profiles import profile_users
    from tailormind.profiling.rankers import EmbeddingRanker

    with tempfile.TemporaryDirectory(prefix="tailormind-overhead-") as tmp:
        settings = load_config(environ={}, overrides={
            "models": {"cache_dir": tmp, "cache": False}, "cf": {"epochs": 1},
            "profiling": {"batch_users": 64}})
        ws = save_import(import_synthetic(users=args.users, items=args.items,
                                          tags=max(2, args.items // 10), per_user=12, seed=1),
                         Path(tmp) / "ws")
        split_workspace(ws, seed=1, negatives=min(99, args.items - 13))
        data = load_cf_data(ws)
        save_checkpoint(ws, train_model(data, settings.cf, "hypergraph", seed=1), data,
                        settings.cf, name="hypergraph")
        recommend_workspace(ws, "hypergraph", 10)
        describe_items(ws, settings)
        features = ItemFeatures.load(ws)
        embed = load_role("embed", settings)
        ranker = EmbeddingRanker(features, embed)
        model_seconds = 0.0
        original = embed._encode

        def timed_encode(texts):
            nonlocal model_seconds
            began = time.perf_counter()
            try:
                return original(texts)
            finally:
                model_seconds += time.perf_counter() - began

        embed._encode = timed_encode
        started = time.perf_counter()
        report = profile_users(ws, settings,
                               profiler=Profiler(settings, features, ranker, InstantText()))
        total = time.perf_counter() - started
    per_user = total / report.profiled * 1000
    model = model_seconds / report.profiled * 1000
    print(f"{'users':<34}{report.profiled:>10}")
    print(f"{'wall s':<34}{total:>10.1f}")
    print(f"{'ms per user (all)':<34}{per_user:>10.2f}")
    print(f"{'ms per user in the embedder':<34}{model:>10.2f}")
    print(f"{'ms per user orchestration':<34}{per_user - model:>10.2f}")


def tag_catalogue(root: Path, items: int, max_tags: int, seed: int = 7) -> Path:
    """A workspace of ``items`` items titled "Track N" with 0..``max_tags`` distinct tags each
    (uniform count), drawn from a Zipf-weighted vocabulary of 20,000 tags, and 3 interactions per
    item."""
    import json

    import numpy as np

    from tailormind.data.importers import import_table
    from tailormind.data.ingest import save_import

    rng = np.random.default_rng(seed)
    vocabulary = 20_000
    log_weight = -1.1 * np.log(np.arange(1, vocabulary + 1))  # Zipf: rank r has weight r^-1.1
    export = root / "export"
    export.mkdir(parents=True)
    with open(export / "items.jsonl", "w") as out:
        for i in range(items):
            n = int(rng.integers(0, max_tags + 1))
            # n distinct tags drawn by weight (Gumbel top-n), listed most common first
            keys = log_weight + rng.gumbel(size=vocabulary)
            ranks = np.sort(np.argpartition(-keys, n)[:n]) if n else []
            out.write(json.dumps({"item_id": f"t{i}", "title": f"Track {i}",
                                  "tags": [f"tag{r:05d}" for r in ranks]}) + "\n")
    with open(export / "interactions.csv", "w") as out:
        out.write("user_id,item_id,timestamp\n")
        for i in range(items):
            for k in range(3):
                out.write(f"u{(i * 7 + k) % 2000},t{i},{1_700_000_000 + i * 3 + k}\n")
    bundle = import_table(export / "interactions.csv", items=str(export / "items.jsonl"))
    return save_import(bundle, root / "ws").root


def describe_settings(tmp: Path, tag_lists: str, runtime: str):
    """The environment's config with the call cache off, ``tag_lists``, and the embedded
    SmolLM2 on ``runtime`` (a configured non-embedded text backend is left as it is)."""
    models: dict = {"cache": False}
    if load_config().models.text.backend == "smollm2":
        models["text"] = {"options": {"runtime": runtime}}
        models["cache_dir"] = str(tmp / "models")
    return load_config(overrides={"models": models, "profiling": {"tag_lists": tag_lists}})


def describe(args: argparse.Namespace) -> None:
    from tailormind.data.workspace import Workspace
    from tailormind.models.registry import load_role, unload_all
    from tailormind.profiling.items import describe_items

    with tempfile.TemporaryDirectory(prefix="tailormind-describe-") as tmp:
        started = time.perf_counter()
        ws = Workspace.open(tag_catalogue(Path(tmp), args.items, args.max_tags))
        print(f"catalogue: {args.items} items, up to {args.max_tags} tags "
              f"({time.perf_counter() - started:.0f} s to write and import)", flush=True)
        rows = []
        for label, tag_lists, runtime, limit in (
                ("before: summarise tag lists (transformers)", "summarise", "transformers",
                 args.before_items),
                ("after: most informative tags (MiniLM only)", "select", "llamacpp", None)):
            settings = describe_settings(Path(tmp), tag_lists, runtime)
            load_role("embed", settings)  # model loads are not describing
            if tag_lists == "summarise":
                load_role("text", settings)
            began = time.perf_counter()
            report = describe_items(ws, settings, limit=limit, force=True)
            seconds = time.perf_counter() - began
            rows.append((label, report.described, report.counts.get("text_summarised", 0),
                         seconds, seconds / report.described * args.items))
            unload_all()
    print(f"\n| describe | items run | summarised by the text model | wall s | "
          f"projected s for {args.items} items |")
    print("|---|---|---|---|---|")
    for label, items, summarised, seconds, projected in rows:
        print(f"| {label} | {items} | {summarised} | {seconds:.1f} | {projected:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--workspace", default=".bench-profiling")
    q.add_argument("--users", type=int, default=100)
    q.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    q.add_argument("--variant-users", type=int, default=30,
                   help="users per ablation (nocf: all --users)")
    q.add_argument("--llm-ranker-users", type=int, default=20)
    o = sub.add_parser("overhead")
    o.add_argument("--users", type=int, default=10_000)
    o.add_argument("--items", type=int, default=2000,
                   help="catalogue size (at least 20; a few dozen for a smoke run)")
    d = sub.add_parser("describe")
    d.add_argument("--items", type=int, default=17_600)
    d.add_argument("--max-tags", type=int, default=500)
    d.add_argument("--before-items", type=int, default=4,
                   help="items described the old way (projected to --items)")
    args = parser.parse_args()
    {"quality": quality, "overhead": overhead, "describe": describe}[args.what](args)


if __name__ == "__main__":
    main()
