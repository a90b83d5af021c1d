"""CF benchmark: quality and speed of HypergraphCF vs. PyG LightGCN vs. popularity, one table.

    python benchmarks/cf.py                                  # ml-latest-small, all methods
    python benchmarks/cf.py --data synthetic --epochs 3      # TailorBench-Rednote scale, timing + RSS
    python benchmarks/cf.py --data synthetic --device cuda   # on a GPU machine (no Ray needed)
    python benchmarks/cf.py --data tiny --epochs 1           # seconds: a smoke run (tests)

Every method is trained by the project's one loop, in this run, on the same split and candidate
sets (leave-two-out, 1:99, seed 2026). Each model trains in its own subprocess so that its peak
RSS is its own. Ray is never imported. Below the table, every comparison (each model against
popularity, each two models: first named minus second) is a paired difference over the same
test users with a paired-bootstrap interval (per-user values averaged over the training seeds;
B, coverage and seed from config ``bench.bootstrap_resamples``, ``bench.confidence``,
``seeds.bench``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REDNOTE = dict(users=12131, items=94997, tags=8531, per_user=50)
TINY = dict(users=60, items=150, tags=8, per_user=8)  # --data tiny: a smoke run
METHODS = {
    "lightgcn": ("lightgcn", {}),
    "hypergraph": ("hypergraph", {}),
    "hypergraph-notags": ("hypergraph", {"use_tags": False}),
}


def prepare(data: str, root: Path, seed: int) -> Path:
    from tailormind.data.importers import import_movielens, import_synthetic
    from tailormind.data.ingest import save_import
    from tailormind.data.split import split_workspace

    ws_dir = root / f"ws-{data}"
    if (ws_dir / "workspace.json").exists():
        return ws_dir
    if data == "ml":
        bundle = import_movielens(REPO / "data" / "ml-latest-small")
    else:
        bundle = import_synthetic(**(TINY if data == "tiny" else REDNOTE), seed=seed)
    ws = save_import(bundle, ws_dir)
    split_workspace(ws, seed=seed, **({"negatives": 20} if data == "tiny" else {}))
    return ws_dir


def run_one(args: argparse.Namespace) -> None:
    """Child process: train one method, print one JSON line."""
    import torch

    from tailormind.core.metrics import candidate_ranks, metrics_from_ranks
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.train import score_candidates, train_model
    from tailormind.config import CFConfig
    from tailormind.data.workspace import Workspace

    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_cf_data(Workspace.open(args.workspace))
    model, overrides = METHODS[args.single]
    cfg = CFConfig(**{**json.loads(args.cf), **overrides})
    start = time.perf_counter()
    result = train_model(data, cfg, model, seed=args.seed, device=args.device)
    wall = time.perf_counter() - start
    ranks = candidate_ranks(score_candidates(result.user_embeddings, result.item_embeddings, data.test))
    print(json.dumps({
        "method": args.single, "test": metrics_from_ranks(ranks), "test_ranks": ranks.tolist(),
        "valid": result.best_valid,
        "epochs": len(result.history), "best_epoch": result.best_epoch,
        "s_per_epoch": result.seconds_per_epoch, "train_s": wall, "graph": result.graph,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "notes": result.notes,
    }))


def popularity_row(ws_dir: Path) -> dict:
    from tailormind.core.metrics import candidate_metrics, candidate_ranks, metrics_from_ranks
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.popularity import popularity_scores
    from tailormind.data.workspace import Workspace

    data = load_cf_data(Workspace.open(ws_dir))
    ranks = candidate_ranks(popularity_scores(data, data.test))
    return {"method": "popularity", "test": metrics_from_ranks(ranks), "test_ranks": ranks.tolist(),
            "valid": candidate_metrics(popularity_scores(data, data.valid))}


def main() -> None:
    parser = argparse.ArgumentParser(description="CF benchmark (prints one table)")
    parser.add_argument("--data", choices=["ml", "synthetic", "tiny"], default="ml",
                        help="tiny: 60 synthetic users, 1:20 sets (a smoke run)")
    parser.add_argument("--methods", default="popularity,lightgcn,hypergraph,hypergraph-notags")
    parser.add_argument("--epochs", type=int, default=None, help="default: config cf.epochs (ml), 3 (synthetic)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=2026, help="split (and data) seed")
    parser.add_argument("--seeds", default=None,
                        help="training seeds, e.g. 2026,1,2: the table shows means (± std of N@20)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--root", type=Path, default=None, help="where workspaces are kept (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--cf", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        run_one(args)
        return

    from tailormind.config import CFConfig

    root = args.root or Path(tempfile.mkdtemp(prefix="tm-bench-cf-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ws_dir = prepare(args.data, root, args.seed)
    print(f"data: {args.data} workspace {ws_dir} ({time.perf_counter() - t0:.1f} s to import+split)",
          file=sys.stderr)
    epochs = args.epochs or (CFConfig().epochs if args.data == "ml" else 3)
    cf = CFConfig(epochs=epochs).model_dump(mode="json")
    if args.data != "ml":
        cf["early_stop_patience"] = epochs + 1
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    rows = []
    for method in args.methods.split(","):
        if method == "popularity":
            rows.append(popularity_row(ws_dir))
            continue
        if method not in METHODS:
            raise SystemExit(f"unknown method {method!r}; choose from popularity, {', '.join(METHODS)}")
        runs = []
        for seed in seeds:
            cmd = [sys.executable, __file__, "--single", method, "--workspace", str(ws_dir),
                   "--cf", json.dumps(cf), "--seed", str(seed), "--device", args.device,
                   "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {method} seed {seed}: done in {runs[-1]['train_s']:.0f} s", file=sys.stderr)
        rows.append(average(runs))
    print_table(rows, args, epochs, seeds)
    paired = paired_rows(rows, ws_dir)
    print_paired(paired, f"1:{20 if args.data == 'tiny' else 99}")
    if args.json:
        for row in rows:  # per-user ranks stay out of the file: the paired list summarises them
            row.pop("test_ranks", None)
            for run in row.get("runs", []):
                run.pop("test_ranks", None)
        args.json.write_text(json.dumps({"rows": rows, "paired": paired}, indent=2))


def average(runs: list[dict]) -> dict:
    """Mean of the metrics over training seeds (one run: itself), with the std of test N@20."""
    import numpy as np

    row = dict(runs[-1])
    for split in ("test", "valid"):
        row[split] = {k: float(np.mean([r[split][k] for r in runs])) for k in runs[0][split]}
    row["n20_std"] = float(np.std([r["test"]["ndcg@20"] for r in runs]))
    row["s_per_epoch"] = float(np.mean([r["s_per_epoch"] for r in runs]))
    row["peak_rss_gib"] = max(r["peak_rss_gib"] for r in runs)
    row["runs"] = runs
    return row


def paired_rows(rows: list[dict], ws_dir: Path) -> list[dict]:
    """Each model against popularity and each two models (first named minus second), paired over
    the same test users; a model's per-user value is its mean over the training seeds."""
    import numpy as np

    from tailormind.core.metrics import per_set_metrics
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.evaluate import Bootstrap, PerUser, model_pairs, paired_differences
    from tailormind.config import load_config
    from tailormind.data.workspace import Workspace

    users = load_cf_data(Workspace.open(ws_dir)).test.users
    per_user = {}
    for row in rows:
        runs = row.get("runs") or [row]
        values = [per_set_metrics(np.asarray(r["test_ranks"])) for r in runs]
        per_user[row["method"]] = PerUser(users, {k: np.mean([v[k] for v in values], axis=0)
                                                  for k in values[0]})
    models = [r["method"] for r in rows if r["method"] != "popularity"]
    pairs = model_pairs(models) if "popularity" in per_user else [
        (a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    bootstrap = Bootstrap.of(load_config(None))
    return [entry for a, b in pairs
            for entry in paired_differences(a, per_user[a], b, per_user[b], bootstrap=bootstrap,
                                            split="test")]


def print_paired(paired: list[dict], sets: str = "1:99") -> None:
    if not paired:
        return
    print(f"\npaired differences (test, {sets}): a − b over the same {paired[0]['n']} users, "
          f"{paired[0]['confidence']:.0%} paired-bootstrap interval")
    header = f"{'a − b':<34} {'metric':<10} {'diff':>8} {'interval':>20} {'n':>6} {'W/L':>11} {'≠0':>4}"
    print(header)
    print("-" * len(header))
    for p in paired:
        print(f"{p['a'] + ' − ' + p['b']:<34} {p['metric']:<10} {p['difference']:+8.4f} "
              f"{'[' + format(p['low'], '+.4f') + ', ' + format(p['high'], '+.4f') + ']':>20} "
              f"{p['n']:>6} {str(p['wins']) + '/' + str(p['losses']):>11} "
              f"{'yes' if p['excludes_zero'] else 'no':>4}")


def print_table(rows: list[dict], args: argparse.Namespace, epochs: int, seeds: list[int]) -> None:
    print(f"\nCF benchmark: data={args.data} device={args.device} max_epochs={epochs} "
          f"split seed={args.seed} training seeds={','.join(map(str, seeds))} "
          f"(test, 1:{20 if args.data == 'tiny' else 99} candidate sets; means over training "
          "seeds)")
    header = f"{'method':<18} {'R@10':>7} {'R@20':>7} {'N@10':>7} {'N@20':>7} {'±N@20':>6} {'vN@20':>7} " \
             f"{'best/ep':>8} {'s/epoch':>8} {'peakRSS':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        t, v = r["test"], r.get("valid", {})
        ep = f"{r['best_epoch']}/{r['epochs']}" if "epochs" in r else "-"
        spe = f"{r['s_per_epoch']:.2f}" if "s_per_epoch" in r else "-"
        rss = f"{r['peak_rss_gib']:.2f}G" if "peak_rss_gib" in r else "-"
        std = f"{r['n20_std']:.4f}" if "n20_std" in r else "-"
        print(f"{r['method']:<18} {t['recall@10']:7.4f} {t['recall@20']:7.4f} {t['ndcg@10']:7.4f} "
              f"{t['ndcg@20']:7.4f} {std:>6} {v.get('ndcg@20', float('nan')):7.4f} {ep:>8} {spe:>8} {rss:>8}")
    for r in rows:
        for note in r.get("notes", []):
            print(f"note ({r['method']}): {note}")


if __name__ == "__main__":
    main()
